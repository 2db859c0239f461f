//! `POST /api/community/pool/like/{id}` and `DELETE /api/community/pool/like/{id}`: one like per
//! user per listed item, whatever the retries and races; `200 {"liked", "likes"}`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_domain::pool::contribution_id;
use son1k_http::auth;
use son1k_http::request::{json, path_param, render, request_id, HandlerResult};
use son1k_http::ApiError;

#[derive(Debug, Serialize)]
struct LikeResponse {
    liked: bool,
    likes: u64,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = contribution_id(&path_param(&req, "id")?)
        .ok_or_else(|| ApiError::not_found("no such item in the pool"))?;
    let like = req.method() != Method::DELETE;
    son1k_app::rate::admit(state, &caller).await?;
    let likes = son1k_app::community::like(state, &caller, &id, like)
        .await?
        .ok_or_else(|| ApiError::not_found("no such item in the pool"))?;
    json(StatusCode::OK, &LikeResponse { liked: like, likes })
}
