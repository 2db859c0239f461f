//! `POST /api/tiers/checkout`: a Stripe Checkout session (subscription mode) for a paid tier; the
//! user's Stripe customer is created once and reused.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::billing::checkout::{return_url, start_checkout};
use son1k_app::AppState;
use son1k_domain::tiers::Tier;
use son1k_http::auth;
use son1k_http::request::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};
use son1k_http::ApiError;

/// Stripe replaces `{CHECKOUT_SESSION_ID}` with the session's id when it redirects.
const SUCCESS_PATH: &str = "/billing/success?session_id={CHECKOUT_SESSION_ID}";
const CANCEL_PATH: &str = "/billing/cancel";

#[derive(Debug, Deserialize)]
struct CheckoutRequest {
    tier: Tier,
    #[serde(default)]
    success_url: Option<String>,
    #[serde(default)]
    cancel_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct CheckoutResponse {
    checkout_url: String,
    session_id: String,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let body: CheckoutRequest = parse_json(&req, BODY_LIMIT)?;
    if !body.tier.is_paid() {
        return Err(ApiError::invalid("tier", "must be CREATOR, PRO or STUDIO"));
    }
    let frontend = &state.config.billing.frontend_url;
    let success = return_url(
        frontend,
        "success_url",
        body.success_url.as_deref(),
        SUCCESS_PATH,
    )?;
    let cancel = return_url(
        frontend,
        "cancel_url",
        body.cancel_url.as_deref(),
        CANCEL_PATH,
    )?;
    son1k_app::rate::admit(state, &caller).await?;
    let link = start_checkout(state, &caller, body.tier, &success, &cancel).await?;
    json(
        StatusCode::OK,
        &CheckoutResponse {
            checkout_url: link.url,
            session_id: link.session_id,
        },
    )
}
