//! `PUT /api/lyrics/{lyrics_id}` with `If-Match: <version>`: the owner's edit becomes the next
//! version (200); an edit of a version that is no longer the latest is refused (412) and nothing is
//! overwritten; earlier versions stay readable.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::ids::LyricsId;
use son1k_domain::lyrics::{parse_if_match, EditRequest};
use son1k_http::auth;
use son1k_http::request::{
    header, json_versioned, parse_json, path_param, render, request_id, HandlerResult, BODY_LIMIT,
};
use son1k_http::{ApiError, ErrorCode};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = LyricsId::parse(&path_param(&req, "lyrics_id")?)?;
    let if_match = header(&req, "if-match").ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            ErrorCode::PreconditionRequired,
            "send If-Match with the version you edited (the ETag of GET /api/lyrics/{lyrics_id})",
        )
    })?;
    let if_match = parse_if_match(if_match)?;
    let request: EditRequest = parse_json(&req, BODY_LIMIT)?;
    let record = son1k_app::lyrics::edit(state, &caller, &id, if_match, request).await?;
    json_versioned(StatusCode::OK, &record.view(), record.version)
}
