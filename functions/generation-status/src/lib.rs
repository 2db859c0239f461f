//! `GET /api/generations/{generation_id}`: a generation job's state, for its owner or an admin
//! (404 for anyone else), with a short-lived link to the audio once it succeeded. An admin's read of
//! another user's job is written to the audit log.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::audit::Via;
use son1k_app::AppState;
use son1k_domain::ids::GenerationId;
use son1k_http::auth;
use son1k_http::request::{json, path_param, render, request_id, HandlerResult};
use son1k_http::ApiError;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = GenerationId::parse(&path_param(&req, "generation_id")?)?;
    let request_id = request_id(&req).unwrap_or_default();
    let via = Via {
        route: "GET /api/generations/{generation_id}",
        request_id: &request_id,
    };
    match son1k_app::jobs::status(state, &caller, &id, via).await? {
        Some(view) => json(StatusCode::OK, &view),
        None => Err(ApiError::not_found("no such generation job")),
    }
}
