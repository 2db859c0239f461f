//! `GET /api/tiers`: the tier table, in the order of the product card.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::domain::tiers::TIERS;
use son1k::http::{json, render, request_id, HandlerResult};
use son1k::AppState;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(_state: &AppState, _req: Request) -> HandlerResult {
    json(StatusCode::OK, &serde_json::json!({ "tiers": TIERS }))
}
