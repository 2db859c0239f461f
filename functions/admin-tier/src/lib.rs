//! `PUT /api/admin/users/{user_id}/tier`: an admin grants a tier without Stripe; answers the user's
//! limits as `GET /api/tiers/limits/{user_id}` shows them.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use son1k_app::AppState;
use son1k_domain::tiers::Tier;
use son1k_http::auth;
use son1k_http::request::{
    json, parse_json, path_param, render, request_id, HandlerResult, BODY_LIMIT,
};
use son1k_http::ApiError;

#[derive(Debug, Deserialize)]
struct GrantTierRequest {
    tier: Tier,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let raw_target = path_param(&req, "user_id")?;
    let target = auth::target_id(&caller, &raw_target)?;
    let GrantTierRequest { tier } = parse_json(&req, BODY_LIMIT)?;
    auth::require_admin(&caller)?;
    let limits = son1k_app::admin::grant_tier(state, &target, tier)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    tracing::info!(admin = %caller.id, user_id = %target, tier = %tier, "tier granted");
    json(StatusCode::OK, &limits)
}
