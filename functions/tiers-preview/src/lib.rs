//! `GET /api/tiers/preview?tier=`: the caller's limits now and after changing to `tier`, when the
//! change takes effect, and what Stripe would bill (`son1k_app::preview`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::tiers::Tier;
use son1k_domain::DomainError;
use son1k_http::auth;
use son1k_http::request::{json, query_param, render, request_id, HandlerResult};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let raw = query_param(&req, "tier")?
        .ok_or_else(|| DomainError::new("tier", "is required: FREE, CREATOR, PRO or STUDIO"))?;
    let target = Tier::parse(&raw)?;
    let preview = son1k_app::preview::preview(state, &caller, target).await?;
    json(StatusCode::OK, &preview)
}
