//! `GET /api/community/ranking?timeframe=week|month|all_time&limit=` (public): contributors by points
//! earned in the current ISO week, calendar month (UTC) or all time; ties by contributions, then id.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k::domain::pool::{rank, RankedRow, Timeframe};
use son1k::http::{json, query_param, render, HandlerResult};
use son1k::{ApiError, AppState};

#[derive(Debug, Serialize)]
struct RankingResponse {
    timeframe: &'static str,
    period: String,
    ranking: Vec<RankedRow>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(handle(state, req).await)
}

/// `limit`: 1..100, default 20.
fn limit(req: &Request) -> Result<usize, ApiError> {
    match query_param(req, "limit") {
        None => Ok(20),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 100")),
    }
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let timeframe = match query_param(&req, "timeframe") {
        Some(raw) => Timeframe::parse(&raw)?,
        None => Timeframe::Week,
    };
    let limit = limit(&req)?;
    let now = state.clock.now();
    let standings = state
        .pool()
        .standings(&timeframe.period_key(now), limit)
        .await?;
    json(
        StatusCode::OK,
        &RankingResponse {
            timeframe: timeframe.as_str(),
            period: timeframe.label(now),
            ranking: rank(standings, limit),
        },
    )
}
