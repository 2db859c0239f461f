//! `GET /api/generations/{generation_id}`: a generation job's state, for its owner or an admin
//! (404 for anyone else), with a short-lived link to the audio once it succeeded.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::auth::Caller;
use son1k::domain::ids::GenerationId;
use son1k::http::{json, path_param, render, request_id, HandlerResult};
use son1k::{ApiError, AppState};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = Caller::from_request(&req)?;
    let id = GenerationId::parse(&path_param(&req, "generation_id")?)?;
    match son1k::jobs::status(state, &caller, &id).await? {
        Some(view) => json(StatusCode::OK, &view),
        None => Err(ApiError::not_found("no such generation job")),
    }
}
