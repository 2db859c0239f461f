//! `POST /api/generations`: reserves one unit of the caller's quota with a generation job and
//! queues it (202); the same `generation_id` again answers the job's state (200).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::jobs::{submit, SubmitOutcome};
use son1k_app::AppState;
use son1k_domain::jobs::{NewJob, SubmitRequest};
use son1k_http::auth;
use son1k_http::request::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let request: SubmitRequest = parse_json(&req, BODY_LIMIT)?;
    let job = NewJob::try_from(request)?;
    match submit(state, &caller, &job).await? {
        SubmitOutcome::Queued(body) => json(StatusCode::ACCEPTED, &body),
        SubmitOutcome::Existing(view) => json(StatusCode::OK, &view),
    }
}
