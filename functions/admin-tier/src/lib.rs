//! The admin routes that change a user, each written to the audit log with its change:
//! - `PUT /api/admin/users/{user_id}/tier {"tier"}`: grants a tier without Stripe; answers the user's
//!   limits as `GET /api/tiers/limits/{user_id}` shows them.
//! - `PUT /api/admin/users/{user_id}/hold {"hold", "reason"}`: places or lifts a legal hold (an
//!   account on hold cannot be deleted); answers `{"user_id", "legal_hold"}`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::audit::AdminAct;
use son1k_app::AppState;
use son1k_domain::account::LegalHold;
use son1k_domain::ids::UserId;
use son1k_domain::tiers::Tier;
use son1k_http::auth;
use son1k_http::request::{
    json, parse_json, path_param, render, request_id, HandlerResult, BODY_LIMIT,
};
use son1k_http::ApiError;

#[derive(Debug, Deserialize)]
struct GrantTierRequest {
    tier: Tier,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    hold: bool,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct HoldView {
    user_id: UserId,
    legal_hold: Option<LegalHold>,
}

/// The longest reason a hold keeps.
const REASON_MAX_CHARS: usize = 500;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let raw_target = path_param(&req, "user_id")?;
    let target = auth::target_id(&caller, &raw_target)?;
    let request_id = request_id(&req).unwrap_or_default();
    if req.uri().path().trim_end_matches('/').ends_with("/hold") {
        let HoldRequest { hold, reason } = parse_json(&req, BODY_LIMIT)?;
        let reason = reason
            .map(|r| son1k_domain::trim_text(&r).to_owned())
            .unwrap_or_default();
        if hold && reason.is_empty() {
            return Err(ApiError::invalid("reason", "is required to place a hold"));
        }
        if reason.chars().count() > REASON_MAX_CHARS {
            return Err(ApiError::invalid("reason", "is longer than 500 characters"));
        }
        auth::require_admin(&caller)?;
        let act = AdminAct {
            admin: &caller.id,
            via: "PUT /api/admin/users/{user_id}/hold",
            request_id: &request_id,
        };
        let legal_hold = son1k_app::audit::set_hold(state, &act, &target, hold, &reason)
            .await?
            .ok_or_else(|| ApiError::not_found("no such user"))?;
        return json(
            StatusCode::OK,
            &HoldView {
                user_id: target,
                legal_hold,
            },
        );
    }
    let GrantTierRequest { tier } = parse_json(&req, BODY_LIMIT)?;
    auth::require_admin(&caller)?;
    let act = AdminAct {
        admin: &caller.id,
        via: "PUT /api/admin/users/{user_id}/tier",
        request_id: &request_id,
    };
    let limits = son1k_app::admin::grant_tier(state, &act, &target, tier)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    json(StatusCode::OK, &limits)
}
