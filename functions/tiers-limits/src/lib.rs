//! `GET /api/tiers/limits/{user_id}[?quality=]`: what a user may still generate in the current period.
//! An admin's read of another user is written to the audit log first.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::audit::Via;
use son1k_app::AppState;
use son1k_domain::tiers::Quality;
use son1k_http::auth;
use son1k_http::request::{json, path_param, query_value, render, request_id, HandlerResult};
use son1k_http::ApiError;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

#[tracing::instrument(skip_all)]
async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let quality = query_value(&req, "quality")?
        .map(|q| Quality::parse(&q))
        .transpose()?;
    let target = auth::resolve_target(&caller, &path_param(&req, "user_id")?)?;
    // An admin reading another user's data: recorded before anything is read.
    let request_id = request_id(&req).unwrap_or_default();
    let via = Via {
        route: "GET /api/tiers/limits/{user_id}",
        request_id: &request_id,
    };
    son1k_app::audit::admin_read(state, &caller, via, &target, "limits").await?;
    let limits = son1k_app::limits::of(state, &caller, &target, quality)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    json(StatusCode::OK, &limits)
}
