//! Stripe Checkout sessions for the caller's one Stripe customer (created once and reused):
//! - `POST /api/tiers/checkout {"tier", "interval"?}` → `200 {"checkout_url", "session_id"}` a
//!   subscription to a paid tier, monthly or yearly, with the tier's trial on a first checkout;
//! - `POST /api/credits/checkout {"pack"}` → `200 {"checkout_url", "session_id"}` a one-time
//!   payment for a pack of credits (`400` for a pack not on sale).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::billing::api::CheckoutLink;
use son1k_app::billing::checkout::{
    return_url, start_checkout, start_pack_checkout, PackCheckoutError, ReturnUrls,
};
use son1k_app::AppState;
use son1k_domain::billing::Interval;
use son1k_domain::tiers::Tier;
use son1k_http::auth;
use son1k_http::request::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};
use son1k_http::ApiError;

/// Stripe replaces `{CHECKOUT_SESSION_ID}` with the session's id when it redirects.
const SUCCESS_PATH: &str = "/billing/success?session_id={CHECKOUT_SESSION_ID}";
const CANCEL_PATH: &str = "/billing/cancel";

/// Where a pack's buyer returns to.
const PACK_SUCCESS_PATH: &str = "/usage?credits=success&session_id={CHECKOUT_SESSION_ID}";
const PACK_CANCEL_PATH: &str = "/usage";

#[derive(Debug, Deserialize)]
struct CheckoutRequest {
    tier: Tier,
    #[serde(default)]
    interval: Interval,
    #[serde(default)]
    success_url: Option<String>,
    #[serde(default)]
    cancel_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PackRequest {
    pack: String,
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
    if req.uri().path().starts_with("/api/credits/") {
        return handle_pack(state, req).await;
    }
    let caller = auth::caller(&req)?;
    let body: CheckoutRequest = parse_json(&req, BODY_LIMIT)?;
    if !body.tier.is_paid() {
        return Err(ApiError::invalid("tier", "must be CREATOR, PRO or STUDIO"));
    }
    let (success, cancel) = return_urls(
        state,
        (body.success_url.as_deref(), body.cancel_url.as_deref()),
        (SUCCESS_PATH, CANCEL_PATH),
    )?;
    son1k_app::rate::admit(state, &caller).await?;
    let urls = ReturnUrls {
        success: &success,
        cancel: &cancel,
    };
    let link = start_checkout(state, &caller, (body.tier, body.interval), urls).await?;
    answer(link)
}

/// The caller's return URLs (success, cancel), or the defaults, checked against the frontend's
/// origin.
fn return_urls(
    state: &AppState,
    (success, cancel): (Option<&str>, Option<&str>),
    (success_path, cancel_path): (&str, &str),
) -> Result<(String, String), ApiError> {
    let frontend = &state.config.billing.frontend_url;
    Ok((
        return_url(frontend, "success_url", success, success_path)?,
        return_url(frontend, "cancel_url", cancel, cancel_path)?,
    ))
}

fn answer(link: CheckoutLink) -> HandlerResult {
    json(
        StatusCode::OK,
        &CheckoutResponse {
            checkout_url: link.url,
            session_id: link.session_id,
        },
    )
}

async fn handle_pack(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let body: PackRequest = parse_json(&req, BODY_LIMIT)?;
    let (success, cancel) = return_urls(
        state,
        (body.success_url.as_deref(), body.cancel_url.as_deref()),
        (PACK_SUCCESS_PATH, PACK_CANCEL_PATH),
    )?;
    son1k_app::rate::admit(state, &caller).await?;
    let urls = ReturnUrls {
        success: &success,
        cancel: &cancel,
    };
    let link = match start_pack_checkout(state, &caller, &body.pack, urls).await {
        Ok(link) => link,
        Err(PackCheckoutError::UnknownPack) => {
            return Err(ApiError::invalid(
                "pack",
                "is not a pack on sale (GET /api/credits/packs)",
            ))
        }
        Err(PackCheckoutError::Billing(err)) => return Err(err.into()),
    };
    answer(link)
}
