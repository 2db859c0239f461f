//! `GET /health`: the service answers, with its version and clock.

use chrono::SecondsFormat;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::http::{json, render, request_id, HandlerResult};
use son1k::AppState;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, _req: Request) -> HandlerResult {
    let now = state.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    json(
        StatusCode::OK,
        &serde_json::json!({ "status": "healthy", "version": son1k::VERSION, "time": now }),
    )
}
