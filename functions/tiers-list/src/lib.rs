//! `GET /api/tiers`: the tier table, in the order of the product card. It needs no AWS service, so
//! its binary builds no `AppState` (`respond` takes nothing).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::tiers::TIERS;
use son1k_http::request::{json, render, request_id, HandlerResult};

pub async fn handler(_state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    respond(req).await
}

/// The handler without state (what the Lambda binary runs).
pub async fn respond(req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle())
}

fn handle() -> HandlerResult {
    json(StatusCode::OK, &serde_json::json!({ "tiers": TIERS }))
}
