//! `GET /api/generations/{generation_id}/audio`: 302 to a short-lived presigned GET of the stored
//! audio, for its owner or an admin; 404 otherwise, or when nothing is stored. An admin's read of
//! another user's audio is written to the audit log.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::audit::Via;
use son1k_app::storage::audio_link;
use son1k_app::AppState;
use son1k_domain::ids::GenerationId;
use son1k_http::auth;
use son1k_http::request::{path_param, render, request_id, HandlerResult};
use son1k_http::ApiError;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = GenerationId::parse(&path_param(&req, "generation_id")?)?;
    let request_id = request_id(&req).unwrap_or_default();
    let via = Via {
        route: "GET /api/generations/{generation_id}/audio",
        request_id: &request_id,
    };
    let link = audio_link(state, &caller, &id, via).await?;
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", link.url)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .map_err(|err| {
            tracing::error!(error = %err, "redirect did not build");
            ApiError::internal()
        })
}
