//! `GET /api/analytics/summary?from=YYYY-MM-DD&to=YYYY-MM-DD`: admins only; every UTC day of the
//! range with the count of each business event (zeros included), and the totals.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k::analytics::summary;
use son1k::auth::Caller;
use son1k::domain::analytics::DayRange;
use son1k::http::{json, query_param, render, request_id, HandlerResult};
use son1k::AppState;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = Caller::from_request(&req)?;
    caller.require_admin()?;
    let range = DayRange::parse(
        query_param(&req, "from")?.as_deref(),
        query_param(&req, "to")?.as_deref(),
    )?;
    json(StatusCode::OK, &summary(state, &range).await?)
}
