//! `scheduled-reset` (EventBridge, daily and monthly at 00:00 UTC, input `{"kind":"daily"|"monthly"}`).
//!
//! Periods are computed on every request, so there is no counter to reset: a new period's counter
//! starts at zero by construction. This function only does housekeeping and reports counts: Stripe
//! users whose entitlement has lapsed get FREE stored, and items past their `expires_at` are deleted
//! (DynamoDB's TTL does that in AWS within days; moto never does). Running it twice, late, or never
//! changes nothing a user can see or do.

use chrono::SecondsFormat;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use son1k::store::housekeeping::{delete_expired_items, expire_lapsed_subscriptions};
use son1k::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetKind {
    Daily,
    Monthly,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResetEvent {
    pub kind: ResetKind,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetReport {
    pub kind: ResetKind,
    pub ran_at: String,
    pub users_scanned: u64,
    pub subscriptions_expired: u64,
    pub expired_items_deleted: u64,
}

pub async fn handler(
    state: &AppState,
    event: LambdaEvent<serde_json::Value>,
) -> Result<ResetReport, Error> {
    let ResetEvent { kind } = serde_json::from_value(event.payload)
        .map_err(|err| format!(r#"expected {{"kind": "daily"|"monthly"}}: {err}"#))?;
    let now = state.clock.now();
    let (users_scanned, subscriptions_expired) =
        expire_lapsed_subscriptions(&state.dynamo, &state.config, now).await?;
    let mut expired_items_deleted = 0;
    for table in [&state.config.stats_table, &state.config.pool_table] {
        expired_items_deleted += delete_expired_items(&state.dynamo, table, now).await?;
    }
    let report = ResetReport {
        kind,
        ran_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        users_scanned,
        subscriptions_expired,
        expired_items_deleted,
    };
    tracing::info!(?report, "housekeeping done");
    Ok(report)
}
