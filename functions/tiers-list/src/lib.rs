//! The catalogue, public and from configuration alone:
//! - `GET /api/tiers` → `200 {"tiers"}` the tier table, in the order of the product card;
//! - `GET /api/credits/packs` → `200 {"items": [{"pack", "generations", "price_cents", "currency"}]}`
//!   the packs of credits on sale (`CREDIT_PACKS`), in the configured order.
//!
//! It needs no AWS service, so its binary builds no `AppState` (`respond` takes the packs only).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::credits::Packs;
use son1k_domain::tiers::TIERS;
use son1k_http::request::{json, render, request_id, HandlerResult};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    respond(&state.config.billing.packs, req).await
}

/// The handler without state (what the Lambda binary runs).
pub async fn respond(packs: &Packs, req: Request) -> Result<Response<Body>, Error> {
    let id = request_id(&req);
    if req.uri().path().trim_end_matches('/').ends_with("/packs") {
        return render(id, packs_page(packs));
    }
    render(id, tiers())
}

fn tiers() -> HandlerResult {
    json(StatusCode::OK, &serde_json::json!({ "tiers": TIERS }))
}

fn packs_page(packs: &Packs) -> HandlerResult {
    json(
        StatusCode::OK,
        &serde_json::json!({ "items": packs.items() }),
    )
}
