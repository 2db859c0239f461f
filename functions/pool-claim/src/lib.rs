//! `POST /api/community/pool/claim`: a FREE user claims a listed item (body `{"contribution_id"}`)
//! or a random one they have not claimed; 3 per UTC day, never the same item twice, counted as a
//! play; `201` with a short-lived audio link.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use son1k_app::community::claim;
use son1k_app::AppState;
use son1k_domain::pool::contribution_id;
use son1k_http::auth;
use son1k_http::request::{
    json, parse_optional_json, render, request_id, HandlerResult, BODY_LIMIT,
};

#[derive(Debug, Default, Deserialize)]
struct ClaimRequest {
    #[serde(default)]
    contribution_id: Option<String>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let body: ClaimRequest = parse_optional_json(&req, BODY_LIMIT)?;
    // Pool item ids are ULIDs; anything else names no item.
    let id = match body.contribution_id {
        Some(raw) => Some(
            contribution_id(&raw)
                .ok_or_else(|| son1k_http::ApiError::not_found("no such item in the pool"))?,
        ),
        None => None,
    };
    son1k_app::rate::admit(state, &caller).await?;
    let claimed = claim(state, &caller, id.as_deref()).await?;
    json(StatusCode::CREATED, &claimed)
}
