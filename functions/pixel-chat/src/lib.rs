//! `POST /api/pixel/chat`: a message to Pixel, the companion; its reply and suggestions computed
//! from the caller's own state (one unit of the daily message allowance, given back on failure).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::auth::Caller;
use son1k::domain::pixel::ChatRequest;
use son1k::http::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};
use son1k::AppState;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = Caller::from_request(&req)?;
    let request: ChatRequest = parse_json(&req, BODY_LIMIT)?;
    let reply = son1k::pixel::chat(state, &caller, request).await?;
    json(StatusCode::OK, &reply)
}
