//! `DELETE /api/voices/{voice_id}` → `202`: the caller's voice marked deleted with its storage given
//! back, the worker told to delete its copy, and every S3 version of its recordings and model
//! deleted. Repeated until the worker confirmed, it does it all again; then `410 voice_deleted`.
//! The consent records stay (who, when, the phrase, the recording's hash), never the audio.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::ids::VoiceId;
use son1k_http::auth;
use son1k_http::request::{json, path_param, render, request_id, HandlerResult};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = VoiceId::parse(&path_param(&req, "voice_id")?)?;
    son1k_app::voices::delete(state, &caller, &id).await?;
    json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "voice_id": id, "status": "deleted" }),
    )
}
