//! `POST /api/tiers/webhook` (public, authenticated by Stripe's signature): a verified event is
//! applied once and never moves a user back to an older state; every handled or ignored event is
//! acknowledged with `200 {"received": true}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::billing::signature::verify;
use son1k::billing::webhook::handle_event;
use son1k::billing::BillingError;
use son1k::domain::billing::StripeEvent;
use son1k::http::{body_bytes, json, render, request_id, HandlerResult};
use son1k::{ApiError, AppState};

/// Stripe's events are far smaller; the contract allows 256 KiB.
pub const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let body = body_bytes(&req, WEBHOOK_BODY_LIMIT)?;
    let secret = state
        .config
        .billing
        .webhook_secret
        .as_ref()
        .ok_or_else(|| ApiError::from(BillingError::NotConfigured("STRIPE_WEBHOOK_SECRET")))?;
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    verify(body, header, secret.expose(), state.clock.now())?;
    let event = StripeEvent::parse(body)?;
    handle_event(state, &event).await?;
    json(StatusCode::OK, &serde_json::json!({"received": true}))
}
