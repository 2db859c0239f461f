//! The scheduled housekeeping (`scheduled-reset`): Stripe users whose stored paid tier has lapsed get
//! FREE stored (`son1k_store::housekeeping`), and the daily run accounts again the uploads granted on
//! the two days before (`storage::reconcile_uploads`). Periods need no reset: a counter names its
//! period, so a new period starts at zero by construction.

use crate::ports::{AudioBucket, Generations, Housekeeping, Pool, Time, Uploads, Users};
use crate::storage::{reconcile_uploads, ReconcileReport};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_store::uploads::upload_day;
use son1k_store::users::UserRecord;
use son1k_store::StoreError;
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
pub async fn run(
    app: &(impl Time + Users + Generations + Pool + AudioBucket + Uploads + Housekeeping),
    kind: ResetKind,
    deadline: Instant,
) -> ResetReport {
    let now = app.clock().now();
    let lapsed_subscriptions = expire_lapsed_subscriptions(app, now, deadline).await;
    let uploads = match kind {
        ResetKind::Daily => Some(reconcile_uploads(app, &reconciled_days(now), deadline).await),
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

/// What a run of `expire_lapsed_subscriptions` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapseReport {
    /// Users the index listed as lapsed by now.
    pub checked: u64,
    /// Users stored as FREE.
    pub expired: u64,
    /// Users whose update failed (each logged); the next run finds them again.
    pub failed: u64,
    /// Whether every lapsed user was seen (false: the time budget ran out, or a page failed).
    pub complete: bool,
}

/// Stores FREE for every Stripe user whose stored paid tier has lapsed (canceled, unpaid, or past
/// period end + grace without a renewal), found through the sparse `lapsing` index, page by page,
/// until `deadline`. A failed user is counted and passed over.
pub async fn expire_lapsed_subscriptions(
    app: &impl Housekeeping,
    now: DateTime<Utc>,
    deadline: Instant,
) -> LapseReport {
    let mut report = LapseReport::default();
    let mut start = None;
    loop {
        if Instant::now() >= deadline {
            tracing::warn!(?report, "housekeeping stopped at its time budget");
            return report;
        }
        let Ok(page) = app.housekeeping().lapsing(now, start.take()).await else {
            return report;
        };
        for user in page.users {
            report.checked += 1;
            match expire_one(app, user, now).await {
                Ok(true) => report.expired += 1,
                Ok(false) => {}
                Err(_) => report.failed += 1,
            }
        }
        match page.next {
            Some(next) => start = Some(next),
            None => {
                report.complete = true;
                return report;
            }
        }
    }
}

/// Expires one user from the index; `Ok(false)` when its entitlement is still paid or a change won.
async fn expire_one(
    app: &impl Housekeeping,
    user: Result<UserRecord, StoreError>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let user = user?;
    if user.tier_source != TierSource::Stripe || user.entitlement(now).tier != Tier::Free {
        return Ok(false);
    }
    match app.housekeeping().store_free(&user).await {
        Ok(expired) => {
            if expired {
                tracing::info!(user_id = %user.user_id, "lapsed subscription expired to FREE");
            }
            Ok(expired)
        }
        Err(err) => {
            tracing::warn!(user_id = %user.user_id, "lapsed user not expired; the next run retries");
            Err(err)
        }
    }
}

/// The UTC days whose upload grants the daily run reconciles: the two before `now`'s (a link
/// granted just before midnight can be used after it; the run is at 00:00).
pub fn reconciled_days(now: DateTime<Utc>) -> Vec<String> {
    [1, 2]
        .iter()
        .map(|back| upload_day(now - chrono::Duration::days(*back)))
        .collect()
}
