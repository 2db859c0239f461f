//! `POST /api/tiers/record-generation`: records a completed generation and spends one unit of the
//! caller's quota, atomically and idempotently (the `generation_id` is the idempotency key).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::metering::{record_generation, Recorded};
use son1k_app::AppState;
use son1k_domain::generation::{NewGeneration, RecordGenerationRequest};
use son1k_http::auth;
use son1k_http::request::{parse_json, raw_json, render, request_id, HandlerResult, BODY_LIMIT};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let request: RecordGenerationRequest = parse_json(&req, BODY_LIMIT)?;
    let generation = NewGeneration::try_from(request)?;
    match record_generation(state, &caller, &generation).await? {
        Recorded::Created(body) => raw_json(StatusCode::CREATED, body.into_bytes()),
        Recorded::Replayed(body) => raw_json(StatusCode::OK, body.into_bytes()),
    }
}
