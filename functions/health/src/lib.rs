//! `GET /health`: the service answers, with its version and clock. It needs no AWS service, so its
//! binary builds no `AppState` (`respond` takes only the clock).

use chrono::SecondsFormat;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::clock::Clock;
use son1k_app::AppState;
use son1k_http::request::{json, render, request_id, HandlerResult};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    respond(state.clock.as_ref(), req).await
}

/// The handler over a clock alone (what the Lambda binary runs).
pub async fn respond(clock: &dyn Clock, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(clock))
}

fn handle(clock: &dyn Clock) -> HandlerResult {
    let now = clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    json(
        StatusCode::OK,
        &serde_json::json!({ "status": "healthy", "version": son1k_app::VERSION, "time": now }),
    )
}
