//! The scheduled housekeeping (`scheduled-reset`): Stripe users whose stored paid tier has lapsed get
//! FREE stored (`son1k_store::housekeeping`), and the daily run accounts again the uploads granted on
//! the two days before (`storage::reconcile_uploads`). Periods need no reset: a counter names its
//! period, so a new period starts at zero by construction.

use crate::storage::{reconcile_uploads, ReconcileReport};
use crate::AppState;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use son1k_store::housekeeping::{expire_lapsed_subscriptions, LapseReport};
use son1k_store::uploads::upload_day;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetKind {
    Daily,
    Monthly,
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

/// One run of `kind`, stopping its pages at `deadline`.
pub async fn run(state: &AppState, kind: ResetKind, deadline: Instant) -> ResetReport {
    let now = state.clock.now();
    let lapsed_subscriptions =
        expire_lapsed_subscriptions(state.dynamo(), &state.config.names, now, deadline).await;
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
    report
}

/// The UTC days whose upload grants the daily run reconciles: the two before `now`'s (a link
/// granted just before midnight can be used after it; the run is at 00:00).
pub fn reconciled_days(now: DateTime<Utc>) -> Vec<String> {
    [1, 2]
        .iter()
        .map(|back| upload_day(now - chrono::Duration::days(*back)))
        .collect()
}
