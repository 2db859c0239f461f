//! `POST /api/community/contribute`: a paid user shares one of their own recorded generations with
//! the pool, once; `201 {"contribution_id", "points"}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::community::contribute;
use son1k_app::AppState;
use son1k_domain::ids::GenerationId;
use son1k_http::auth;
use son1k_http::request::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};

#[derive(Debug, Deserialize)]
struct ContributeRequest {
    generation_id: GenerationId,
}

#[derive(Debug, Serialize)]
struct ContributeResponse {
    contribution_id: String,
    points: u32,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let body: ContributeRequest = parse_json(&req, BODY_LIMIT)?;
    let record = contribute(state, &caller, &body.generation_id).await?;
    json(
        StatusCode::CREATED,
        &ContributeResponse {
            contribution_id: record.contribution_id,
            points: record.points,
        },
    )
}
