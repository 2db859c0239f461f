//! The audit log of admin actions, for admins only (read-only: no route changes an entry):
//! - `GET /api/admin/audit?actor=&action=&target=&from=&to=&cursor=` → `{"items", "next_cursor"}`,
//!   newest first; `from`/`to` are RFC 3339 instants, both included.
//! - `GET /api/admin/audit/verify?from=&to=` → `{"ok", "checked"}`, with `first_bad` (the first
//!   entry that does not follow from the chain) when it is broken.

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_domain::audit::{Action, Entry};
use son1k_domain::ids::UserId;
use son1k_http::auth;
use son1k_http::request::{json, query_param, query_value, render, request_id, HandlerResult};
use son1k_http::ApiError;
use son1k_store::audit::{Filter, Position};

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<Entry>,
    next_cursor: Option<String>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

/// An RFC 3339 instant from the query, as epoch ms.
fn instant(req: &Request, name: &'static str) -> Result<Option<i64>, ApiError> {
    query_value(req, name)?
        .map(|raw| {
            DateTime::parse_from_rfc3339(&raw)
                .map(|at| at.with_timezone(&Utc).timestamp_millis())
                .map_err(|_| ApiError::invalid(name, "must be an RFC 3339 date-time"))
        })
        .transpose()
}

fn range(req: &Request) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let (from, to) = (instant(req, "from")?, instant(req, "to")?);
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::invalid("from", "must not be after to"));
        }
    }
    Ok((from, to))
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    auth::require_admin(&caller)?;
    let (from_ms, to_ms) = range(&req)?;
    if req.uri().path().trim_end_matches('/').ends_with("/verify") {
        let verdict = son1k_app::audit::verify(state, from_ms, to_ms).await?;
        if !verdict.ok {
            tracing::error!(first_bad = ?verdict.first_bad, checked = verdict.checked, "audit chain broken");
        }
        return json(StatusCode::OK, &verdict);
    }
    let user = |name: &'static str| -> Result<Option<UserId>, ApiError> {
        query_param(&req, name)?
            .map(|raw| UserId::parse(&raw).map_err(|_| ApiError::invalid(name, "is not a user id")))
            .transpose()
    };
    let action = query_value(&req, "action")?
        .map(|raw| {
            Action::parse(&raw)
                .ok_or_else(|| ApiError::invalid("action", "is not an audited action"))
        })
        .transpose()?;
    let after = query_param(&req, "cursor")?
        .map(|raw| {
            Position::parse_cursor(&raw)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this listing gave out"))
        })
        .transpose()?;
    let query = son1k_app::audit::Query {
        filter: Filter {
            actor: user("actor")?,
            action,
            target: user("target")?,
            from_ms,
            to_ms,
        },
        after,
    };
    let page = son1k_app::audit::list(state, &query).await?;
    json(
        StatusCode::OK,
        &Page {
            items: page.items,
            next_cursor: page.next.map(Position::to_cursor),
        },
    )
}
