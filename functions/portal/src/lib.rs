//! `POST /api/tiers/portal`: a Stripe billing portal session for the caller's customer.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::billing::checkout::{open_portal, return_url};
use son1k_app::AppState;
use son1k_http::auth;
use son1k_http::request::{
    json, parse_optional_json, render, request_id, HandlerResult, BODY_LIMIT,
};

const RETURN_PATH: &str = "/billing";

/// The body is optional; `return_url` must be on the frontend's origin.
#[derive(Debug, Default, Deserialize)]
struct PortalRequest {
    #[serde(default)]
    return_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct PortalResponse {
    portal_url: String,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let body: PortalRequest = parse_optional_json(&req, BODY_LIMIT)?;
    let back = return_url(
        &state.config.billing.frontend_url,
        "return_url",
        body.return_url.as_deref(),
        RETURN_PATH,
    )?;
    son1k_app::rate::admit(state, &caller).await?;
    let portal_url = open_portal(state, &caller, &back).await?;
    json(StatusCode::OK, &PortalResponse { portal_url })
}
