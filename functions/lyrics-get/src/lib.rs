//! `GET /api/lyrics/{lyrics_id}[?version=N]`: a draft's latest version (or version N) for its owner
//! or an admin; 404 for anyone else. `ETag` is the version. An admin's read of another user's draft
//! is written to the audit log.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::audit::Via;
use son1k_app::AppState;
use son1k_domain::ids::LyricsId;
use son1k_http::auth;
use son1k_http::request::{
    json_versioned, path_param, query_value, render, request_id, HandlerResult,
};
use son1k_http::ApiError;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = LyricsId::parse(&path_param(&req, "lyrics_id")?)?;
    let version = query_value(&req, "version")?
        .map(|raw| {
            raw.parse::<u32>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| ApiError::invalid("version", "must be a whole number from 1"))
        })
        .transpose()?;
    let request_id = request_id(&req).unwrap_or_default();
    let via = Via {
        route: "GET /api/lyrics/{lyrics_id}",
        request_id: &request_id,
    };
    let record = son1k_app::lyrics::get(state, &caller, &id, version, via).await?;
    json_versioned(StatusCode::OK, &record.view(), record.version)
}
