//! The one retry policy of the use cases: attempts bounded by a count, never by time, with a pause
//! of full jitter under a ceiling of 5 ms doubling to 80 ms between them. The store makes one
//! attempt per call and says when it lost to another request (`son1k_store::Attempt::Busy`,
//! `Transacted::Busy`); what to do then is decided here and in the use cases.

use son1k_store::{Attempt, StoreError};
use std::future::Future;
use std::time::Duration;

/// The user `id` read again after a lost race, while `doing` something to it: it must still be
/// there (users are never deleted while they act).
pub async fn reread(
    app: &impl crate::ports::Users,
    id: &son1k_domain::ids::UserId,
    doing: &'static str,
) -> Result<son1k_store::users::UserRecord, StoreError> {
    app.users()
        .get(id)
        .await?
        .ok_or_else(|| StoreError::corrupt(format!("the user vanished while {doing}")))
}

/// The pause after losing attempt number `attempt` (from 0).
pub async fn pause(attempt: u32) {
    let ceiling = 5u64 << attempt.min(4);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ceiling))).await;
}

/// Runs `attempt` until it is done, at most `attempts` times with a pause before each retry (none
/// after the last); a store failure named `operation` when every one was busy.
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
        if n > 0 {
            pause(n - 1).await;
        }
        if let Attempt::Done(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(StoreError::unavailable(
        operation,
        "its items stayed in other requests",
    ))
}

/// What one attempt of an audited change did: done, or lost, having read the audit log's head at
/// `head_seq` (`None`: it could not read it).
#[derive(Debug, Clone, PartialEq)]
pub enum Linked<T> {
    Done(T),
    Lost { head_seq: Option<u64> },
}

/// Attempts in a row that an audited change may lose while the audit log's head does not move.
pub const LINK_STALLS: u32 = 8;

/// Runs an audited change's `attempt` until it is done. Audit entries form one chain, so parallel
/// admin actions are serialised on its head: an attempt that lost while the head moved on lost to
/// another entry that was written, and is tried again without counting. Only attempts that lost
/// while the head stayed where it was (a transaction in flight, throttling, the audited item changing)
/// count, [`LINK_STALLS`] of them in a row at most, with a pause before each retry. So every loss
/// is another action's progress, and `n` parallel actions all finish in at most `n` rounds.
pub async fn until_linked<T, F, Fut>(
    operation: &'static str,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Linked<T>, StoreError>>,
{
    let mut stalls = 0;
    let mut seen: Option<u64> = None;
    loop {
        let head_seq = match attempt().await? {
            Linked::Done(done) => return Ok(done),
            Linked::Lost { head_seq } => head_seq,
        };
        let moved = matches!((seen, head_seq), (Some(was), Some(now)) if now > was);
        stalls = if moved { 1 } else { stalls + 1 };
        seen = head_seq.or(seen);
        if stalls > LINK_STALLS {
            return Err(StoreError::unavailable(
                operation,
                "the audit log's head stayed in other requests",
            ));
        }
        pause(stalls - 1).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_busy_attempt_is_tried_again_until_it_is_done() {
        let tries = AtomicU32::new(0);
        let done = until_done("test", 5, || async {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            Ok(if n < 2 {
                Attempt::Busy
            } else {
                Attempt::Done(n)
            })
        })
        .await;
        assert_eq!(done.ok(), Some(2));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn every_attempt_busy_is_a_store_failure_after_exactly_that_many() {
        let tries = AtomicU32::new(0);
        let done: Result<(), _> = until_done("test", 4, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok(Attempt::Busy)
        })
        .await;
        assert!(matches!(done, Err(StoreError::Unavailable { .. })));
        assert_eq!(tries.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn losing_to_a_moving_head_is_not_counted_but_a_stalled_one_is() {
        // 30 losses while the head moves on each time: more than the stall budget, still done.
        let tries = AtomicU32::new(0);
        let done = until_linked("test", || async {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            Ok(if n < 30 {
                Linked::Lost {
                    head_seq: Some(u64::from(n)),
                }
            } else {
                Linked::Done(n)
            })
        })
        .await;
        assert_eq!(done.ok(), Some(30));
        // The head never moves: the stall budget, then a store failure.
        let tries = AtomicU32::new(0);
        let done: Result<(), _> = until_linked("test", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok(Linked::Lost { head_seq: Some(7) })
        })
        .await;
        assert!(matches!(done, Err(StoreError::Unavailable { .. })));
        assert_eq!(tries.load(Ordering::SeqCst), LINK_STALLS + 1);
    }

    #[tokio::test]
    async fn a_store_failure_ends_the_attempts_at_once() {
        let tries = AtomicU32::new(0);
        let done: Result<(), _> = until_done("test", 4, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::corrupt("broken"))
        })
        .await;
        assert!(matches!(done, Err(StoreError::Corrupt(_))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
