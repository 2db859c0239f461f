//! `POST /api/pixel/chat`: a message to Pixel, the companion; its reply and suggestions computed
//! from the caller's own state (one unit of the daily message allowance, given back on failure).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::pixel::ChatRequest;
use son1k_http::auth;
use son1k_http::request::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let request: ChatRequest = parse_json(&req, BODY_LIMIT)?;
    let reply = son1k_app::pixel::chat(state, &caller, request).await?;
    json(StatusCode::OK, &reply)
}
