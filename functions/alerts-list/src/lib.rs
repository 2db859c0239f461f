//! `GET /api/me/alerts?cursor=`: the caller's usage alerts, newest first, each with its deliveries.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_http::auth;
use son1k_http::request::{json, query_param, render, request_id, HandlerResult};
use son1k_store::alerts::AlertView;

#[derive(Debug, Serialize)]
struct AlertsPage {
    items: Vec<AlertView>,
    next_cursor: Option<String>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let after = query_param(&req, "cursor")?
        .map(|raw| son1k_app::alerts::cursor(&raw))
        .transpose()?;
    let page = son1k_app::alerts::list(state, &caller, after.as_deref()).await?;
    json(
        StatusCode::OK,
        &AlertsPage {
            items: page.items.iter().map(|alert| alert.view()).collect(),
            next_cursor: page.next,
        },
    )
}
