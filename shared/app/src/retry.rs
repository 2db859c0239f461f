//! The one retry policy of the use cases: attempts bounded by a count, never by time, with a pause
//! of full jitter under a ceiling of 5 ms doubling to 80 ms between them. The store makes one
//! attempt per call and says when it lost to another request (`son1k_store::Attempt::Busy`,
//! `Transacted::Busy`); what to do then is decided here and in the use cases.

use son1k_store::{Attempt, StoreError};
use std::future::Future;
use std::time::Duration;

/// The pause after losing attempt number `attempt` (from 0).
pub async fn pause(attempt: u32) {
    let ceiling = 5u64 << attempt.min(4);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ceiling))).await;
}

/// Runs `attempt` until it is done, pausing after each `Busy`, at most `attempts` times; a store
/// failure named `operation` when every one was busy.
pub async fn until_done<T, F, Fut>(
    operation: &'static str,
    attempts: u32,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, StoreError>>,
{
    for n in 0..attempts {
        match attempt().await? {
            Attempt::Done(done) => return Ok(done),
            Attempt::Busy => pause(n).await,
        }
    }
    Err(StoreError::unavailable(
        operation,
        "its items stayed in other requests",
    ))
}
