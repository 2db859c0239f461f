//! `POST /api/community/pool/{id}/play`: counts a play of a listed item and returns a short-lived
//! link to its audio; `200 {"plays", "audio_url"}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_domain::pool::contribution_id;
use son1k_http::auth;
use son1k_http::request::{json, path_param, render, request_id, HandlerResult};
use son1k_http::ApiError;

#[derive(Debug, Serialize)]
struct PlayResponse {
    plays: u64,
    audio_url: String,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let raw = path_param(&req, "id")?;
    let not_found = || ApiError::not_found("no such item in the pool");
    let id = contribution_id(&raw).ok_or_else(not_found)?;
    let played = son1k_app::community::play(state, &caller, &id).await?;
    json(
        StatusCode::OK,
        &PlayResponse {
            plays: played.plays,
            audio_url: played.audio_url,
        },
    )
}
