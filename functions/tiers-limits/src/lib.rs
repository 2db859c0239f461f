//! `GET /api/tiers/limits/{user_id}[?quality=]`: what a user may still generate in the current period.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::auth::Caller;
use son1k::domain::tiers::Quality;
use son1k::http::{json, path_param, query_param, render, request_id, HandlerResult};
use son1k::{ApiError, AppState};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

#[tracing::instrument(skip_all)]
async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = Caller::from_request(&req)?;
    let quality = query_param(&req, "quality")?
        .map(|q| Quality::parse(&q))
        .transpose()?;
    let target = caller.resolve_target(&path_param(&req, "user_id")?)?;
    let now = state.clock.now();
    let user = if target == caller.id {
        state.users().get_or_create(caller.new_user(now)).await?
    } else {
        state
            .users()
            .get(&target)
            .await?
            .ok_or_else(|| ApiError::not_found("no such user"))?
    };
    json(StatusCode::OK, &user.limits(quality, now))
}
