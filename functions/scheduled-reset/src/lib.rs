//! `scheduled-reset` (EventBridge, daily and monthly at 00:00 UTC, input `{"kind":"daily"|"monthly"}`).
//!
//! Periods are computed on every request, so there is no counter to reset: a new period's counter
//! starts at zero by construction. This function only does housekeeping and reports counts: Stripe
//! users whose stored paid tier has lapsed get FREE stored, found through the sparse `lapsing` index
//! page by page within the invocation's time, passing over (and counting) a user it cannot update.
//! Expired items are left to DynamoDB's TTL. Running it twice, late, or never changes nothing a user
//! can see or do. The daily run also accounts again every upload granted on the two days before
//! (`storage::reconcile_uploads`): an object whose S3 event was lost or failed for good is counted.

use chrono::SecondsFormat;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use son1k_app::storage::{reconcile_uploads, ReconcileReport};
use son1k_app::AppState;
use son1k_store::housekeeping::{expire_lapsed_subscriptions, LapseReport};
use son1k_store::uploads::upload_day;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    pub lapsed_subscriptions: LapseReport,
    /// The daily run's: uploads granted on the two UTC days before this one, accounted again.
    pub uploads: Option<ReconcileReport>,
}

/// The UTC days whose upload grants the daily run reconciles: the two before `now`'s (a link
/// granted just before midnight can be used after it; the run is at 00:00).
pub fn reconciled_days(now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    [1, 2]
        .iter()
        .map(|back| upload_day(now - chrono::Duration::days(*back)))
        .collect()
}

/// Time kept back from the invocation's deadline to finish the page's updates and report.
const MARGIN: Duration = Duration::from_secs(10);
/// The budget when the runtime gives no deadline (a local run).
const LOCAL_BUDGET: Duration = Duration::from_secs(60);

pub async fn handler(
    state: &AppState,
    event: LambdaEvent<serde_json::Value>,
) -> Result<ResetReport, Error> {
    let ResetEvent { kind } = serde_json::from_value(event.payload)
        .map_err(|err| format!(r#"expected {{"kind": "daily"|"monthly"}}: {err}"#))?;
    let now = state.clock.now();
    let deadline = deadline(event.context.deadline);
    let lapsed_subscriptions =
        expire_lapsed_subscriptions(&state.dynamo, &state.config.names, now, deadline).await;
    let uploads = match kind {
        ResetKind::Daily => Some(reconcile_uploads(state, &reconciled_days(now), deadline).await),
        ResetKind::Monthly => None,
    };
    let report = ResetReport {
        kind,
        ran_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        lapsed_subscriptions,
        uploads,
    };
    tracing::info!(?report, "housekeeping done");
    Ok(report)
}

/// When to stop: `MARGIN` before the invocation's deadline (epoch milliseconds; 0 when there is none).
fn deadline(epoch_ms: u64) -> Instant {
    if epoch_ms == 0 {
        return Instant::now() + LOCAL_BUDGET;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(epoch_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(MARGIN)
}
