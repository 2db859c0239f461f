//! `GET /api/lyrics?limit=&cursor=`: the caller's own drafts, newest first.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_http::auth;
use son1k_http::request::{json, limit_param, query_param, render, request_id, HandlerResult};
use son1k_store::lyrics::EntryView;

#[derive(Debug, Serialize)]
struct LyricsPage<'a> {
    items: Vec<EntryView<'a>>,
    next_cursor: Option<String>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let limit = limit_param(&req)?;
    let cursor = query_param(&req, "cursor")?;
    let page = son1k_app::lyrics::list(state, &caller, cursor.as_deref(), limit).await?;
    json(
        StatusCode::OK,
        &LyricsPage {
            items: page.items.iter().map(|entry| entry.view()).collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        },
    )
}
