//! `POST /api/tiers/webhook` (public, authenticated by Stripe's signature): a verified event is
//! applied once and never moves a user back to an older state; every handled or ignored event is
//! acknowledged with `200 {"received": true}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::billing::webhook::{authenticate, handle_event};
use son1k_app::AppState;
use son1k_domain::billing::StripeEvent;
use son1k_http::request::{body_bytes, json, render, request_id, HandlerResult};

/// Stripe's events are far smaller; the contract allows 256 KiB.
pub const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let body = body_bytes(&req, WEBHOOK_BODY_LIMIT)?;
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    authenticate(state, body, header).await?;
    let event = StripeEvent::parse(body)?;
    handle_event(state, &event).await?;
    json(StatusCode::OK, &serde_json::json!({"received": true}))
}
