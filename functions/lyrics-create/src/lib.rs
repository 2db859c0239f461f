//! `POST /api/lyrics`: the language model writes lyrics to the asked song structure (one unit of
//! the caller's daily lyrics allowance, given back when the model fails); 201 with version 1.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::lyrics::{Brief, LyricsRequest};
use son1k_http::auth;
use son1k_http::request::{
    json_versioned, parse_json, render, request_id, HandlerResult, BODY_LIMIT,
};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let request: LyricsRequest = parse_json(&req, BODY_LIMIT)?;
    let brief = Brief::try_from(request)?;
    let record = son1k_app::lyrics::create(state, &caller, &brief).await?;
    json_versioned(StatusCode::CREATED, &record.view(), record.version)
}
