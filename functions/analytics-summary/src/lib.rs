//! `GET /api/analytics/summary?from=YYYY-MM-DD&to=YYYY-MM-DD`: admins only; every UTC day of the
//! range with the count of each business event (zeros included), and the totals.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::analytics::summary;
use son1k_app::AppState;
use son1k_domain::analytics::DayRange;
use son1k_http::auth;
use son1k_http::request::{json, query_value, render, request_id, HandlerResult};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    auth::require_admin(&caller)?;
    let range = DayRange::parse(
        query_value(&req, "from")?.as_deref(),
        query_value(&req, "to")?.as_deref(),
    )?;
    json(StatusCode::OK, &summary(state, &range).await?)
}
