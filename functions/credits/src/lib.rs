//! Credit blocks beside the subscription:
//! - `GET /api/credits` → `200 {"balance", "blocks"}` the caller's blocks that can still pay, in the
//!   order they are spent;
//! - `GET /api/credits/ledger?cursor=` → `200 {"items", "next_cursor"}` every change of the caller's
//!   credits, newest first;
//! - `POST /api/admin/users/{user_id}/credits {"generations", "expires_at", "reason"}` → `201` the
//!   promotional block an admin granted (`403` for anyone else, `404` for no such user).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::audit::AdminAct;
use son1k_app::AppState;
use son1k_domain::credits::{GrantRequest, LedgerKind};
use son1k_http::auth;
use son1k_http::request::{
    json, parse_json, path_param, query_param, render, request_id, whole_number, HandlerResult,
    BODY_LIMIT,
};
use son1k_http::ApiError;
use son1k_store::credits::LedgerRecord;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    #[serde(deserialize_with = "whole_number")]
    generations: u64,
    expires_at: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct LedgerEntry {
    at: String,
    kind: LedgerKind,
    block_id: String,
    generations: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_id: Option<String>,
}

impl From<&LedgerRecord> for LedgerEntry {
    fn from(entry: &LedgerRecord) -> Self {
        Self {
            at: son1k_domain::clock::rfc3339(entry.at),
            kind: entry.kind,
            block_id: entry.block_id.clone(),
            generations: entry.generations,
            generation_id: entry.generation_id.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Serialize)]
struct LedgerPage {
    items: Vec<LedgerEntry>,
    next_cursor: Option<String>,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    if req.method() == Method::POST {
        let target = auth::target_id(&caller, &path_param(&req, "user_id")?)?;
        let body: GrantBody = parse_json(&req, BODY_LIMIT)?;
        auth::require_admin(&caller)?;
        let now = son1k_app::ports::Time::clock(state).now();
        let request = GrantRequest::new(body.generations, &body.expires_at, &body.reason, now)?;
        let request_id = request_id(&req).unwrap_or_default();
        let act = AdminAct {
            admin: &caller.id,
            via: "POST /api/admin/users/{user_id}/credits",
            request_id: &request_id,
        };
        let block = son1k_app::credits::grant(state, &act, &target, &request)
            .await?
            .ok_or_else(|| ApiError::not_found("no such user"))?;
        return json(StatusCode::CREATED, &block);
    }
    if req.uri().path().trim_end_matches('/').ends_with("/ledger") {
        let after = query_param(&req, "cursor")?
            .map(|raw| son1k_app::credits::cursor(&raw))
            .transpose()?;
        let page = son1k_app::credits::ledger(state, &caller, after.as_deref()).await?;
        return json(
            StatusCode::OK,
            &LedgerPage {
                items: page.items.iter().map(LedgerEntry::from).collect(),
                next_cursor: page.next,
            },
        );
    }
    json(
        StatusCode::OK,
        &son1k_app::credits::view(state, &caller).await?,
    )
}
