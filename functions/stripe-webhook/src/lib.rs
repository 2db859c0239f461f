//! `POST /api/tiers/webhook` (public, authenticated by Stripe's signature): a verified event is
//! applied once and never moves a user back to an older state; every handled or ignored event is
//! acknowledged with `200 {"received": true}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::billing::signature::{verify, SignatureError};
use son1k_app::billing::webhook::handle_event;
use son1k_app::billing::BillingError;
use son1k_app::config::Secret;
use son1k_app::AppState;
use son1k_domain::billing::StripeEvent;
use son1k_http::request::{body_bytes, json, render, request_id, HandlerResult};
use son1k_http::ApiError;

/// The webhook signing secret (`webhook_secret` of the Stripe secret); 503 without it.
async fn webhook_secret(state: &AppState, name: &str) -> Result<Secret, ApiError> {
    state
        .secrets
        .field(name, "webhook_secret")
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::from(BillingError::NotConfigured(
                "the Stripe secret's webhook_secret",
            ))
        })
}

/// Stripe's events are far smaller; the contract allows 256 KiB.
pub const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let body = body_bytes(&req, WEBHOOK_BODY_LIMIT)?;
    let name = state
        .config
        .billing
        .secret_name
        .as_deref()
        .ok_or_else(|| ApiError::from(BillingError::NotConfigured("STRIPE_SECRET_NAME")))?;
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let now = state.clock.now();
    let checked = verify(
        body,
        header,
        webhook_secret(state, name).await?.expose(),
        now,
    );
    // A signature made with a rotated secret: read the secret again, at most once a while.
    if checked == Err(SignatureError::Mismatch)
        && state
            .secrets
            .forget_if_older(name, son1k_app::secrets::REREAD_AFTER)
            .await
    {
        verify(
            body,
            header,
            webhook_secret(state, name).await?.expose(),
            now,
        )?;
    } else {
        checked?;
    }
    let event = StripeEvent::parse(body)?;
    handle_event(state, &event).await?;
    json(StatusCode::OK, &serde_json::json!({"received": true}))
}
