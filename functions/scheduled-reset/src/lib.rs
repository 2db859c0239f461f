//! `scheduled-reset` (EventBridge, daily and monthly at 00:00 UTC, input `{"kind":"daily"|"monthly"}`).
//!
//! Periods are computed on every request, so there is no counter to reset: a new period's counter
//! starts at zero by construction. This function only does housekeeping and reports counts: Stripe
//! users whose stored paid tier has lapsed get FREE stored, found through the sparse `lapsing` index
//! page by page within the invocation's time, passing over (and counting) a user it cannot update.
//! Expired items are left to DynamoDB's TTL. Running it twice, late, or never changes nothing a user
//! can see or do. The daily run also accounts again every upload granted on the two days before
//! (`storage::reconcile_uploads`): an object whose S3 event was lost or failed for good is counted.
//! The work is `son1k_app::housekeeping`; this reads the event and the invocation's deadline.

use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
pub use son1k_app::housekeeping::{ResetKind, ResetReport};
use son1k_app::AppState;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Deserialize)]
pub struct ResetEvent {
    pub kind: ResetKind,
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
    Ok(son1k_app::housekeeping::run(state, kind, deadline(event.context.deadline)).await)
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
