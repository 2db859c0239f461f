//! The per-user request budget of the costly routes (`domain::rate`), for the routes whose common
//! path does not already update the user item: one conditional update of it before anything else
//! (record-generation, submit, lyrics and Pixel take theirs in the update they make anyway).

use crate::caller::Caller;
use crate::ports::{RequestBudgets, Time, Users};
use son1k_store::users::AdmitTry;
use son1k_store::StoreError;

/// The caller's budget is spent for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request budget spent; retry after {retry_after} s")]
pub struct RateLimited {
    /// Whole seconds until the next request is admitted (`Retry-After`).
    pub retry_after: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Limited(#[from] RateLimited),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tries of one admission lost to transactions on the user item (each waits a little longer).
const ADMIT_CONFLICTS: u32 = 8;

/// Tries of one admission that found the bucket in the other form, or the user item missing. A
/// form fails only after another request was admitted meanwhile (`domain::rate`), so a request
/// switches at most from idle to busy, then is admitted or refused.
const ADMIT_LEARNED: u32 = 4;

/// The step of `user`'s request budget at `now`, from the bucket as read: refused, or the step a
/// write of the request takes it in (the spend's or the reservation's own update of the user item).
pub fn step(
    app: &impl RequestBudgets,
    user: &son1k_store::users::UserRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<son1k_domain::rate::RateStep, RateLimited> {
    match app
        .request_budget()
        .step(user.rate_tat, now.timestamp_millis())
    {
        son1k_domain::rate::RateStep::Refused { retry_after } => Err(RateLimited { retry_after }),
        step => Ok(step),
    }
}

/// Takes one request from the caller's budget, or refuses with the wait. A caller with no user item
/// yet gets one (as their first request to any route would).
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn admit(
    app: &(impl Time + Users + RequestBudgets),
    caller: &Caller,
) -> Result<(), AdmitError> {
    let budget = app.request_budget();
    let mut seen = None;
    let (mut conflicts, mut learned) = (0, 0);
    while conflicts < ADMIT_CONFLICTS && learned < ADMIT_LEARNED {
        // The clock on every attempt.
        let now = app.clock().now();
        let step = budget.step(seen, now.timestamp_millis());
        if let son1k_domain::rate::RateStep::Refused { retry_after } = step {
            tracing::info!(retry_after, "request budget spent");
            return Err(RateLimited { retry_after }.into());
        }
        match app.users().try_admit(&caller.id, &step).await? {
            AdmitTry::Admitted => return Ok(()),
            AdmitTry::Seen(tat) => {
                seen = tat;
                learned += 1;
            }
            // A first request ever: the user item is made with this request already taken.
            AdmitTry::NoUser => {
                let mut fresh = caller.new_user(now);
                if let son1k_domain::rate::RateStep::Idle { new_tat_ms, .. } = step {
                    fresh.rate_tat = Some(new_tat_ms);
                }
                let (user, created) = app.users().create(fresh).await?;
                if created && user.rate_tat.is_some() {
                    return Ok(());
                }
                seen = user.rate_tat;
                learned += 1;
            }
            AdmitTry::Busy => {
                crate::retry::pause(conflicts).await;
                conflicts += 1;
            }
        }
    }
    Err(
        StoreError::unavailable("UpdateItem request budget", "the user's item kept changing")
            .into(),
    )
}
