//! `GET /api/community/ranking?timeframe=week|month|all_time&limit=` (public): contributors by points
//! earned in the current ISO week, calendar month (UTC) or all time; ties by contributions, then id.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_domain::pool::{RankedRow, Timeframe};
use son1k_http::request::{json, limit_param, query_value, render, request_id, HandlerResult};

#[derive(Debug, Serialize)]
struct RankingResponse {
    timeframe: &'static str,
    period: String,
    ranking: Vec<RankedRow>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let timeframe = match query_value(&req, "timeframe")? {
        Some(raw) => Timeframe::parse(&raw)?,
        None => Timeframe::Week,
    };
    let limit = limit_param(&req)?;
    let (period, ranking) = son1k_app::community::ranking(state, timeframe, limit).await?;
    json(
        StatusCode::OK,
        &RankingResponse {
            timeframe: timeframe.as_str(),
            period,
            ranking,
        },
    )
}
