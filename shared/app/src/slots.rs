//! A provider's slot for one call: taken before the call and given back after it, on the state the
//! whole fleet shares (what the state allows: `son1k_domain::providers`; where it is stored:
//! `son1k_store::providers`). Each change reads the state, decides with the clock read then, and
//! writes it back unless another worker changed it meanwhile; then it is decided again.

use crate::ports::{ProviderStates, Time};
use crate::retry;
use son1k_domain::providers::{CallEnd, Limits, ProviderState, Unavailable};
use son1k_store::{Attempt, StoreError};

/// Tries at one change of a provider's state while other workers change it too.
const STATE_ATTEMPTS: u32 = 8;

/// Takes a slot of provider `name` for `job` (a token, a place in flight, and the probe when the
/// circuit is half open), or says why it cannot be called now.
pub async fn take(
    app: &(impl Time + ProviderStates),
    name: &str,
    limits: &Limits,
    job: &str,
) -> Result<Result<(), Unavailable>, StoreError> {
    change(app, name, |read, now_ms| read.take(limits, job, now_ms)).await
}

/// Records how `job`'s call to provider `name` ended, giving its slot back.
pub async fn end(
    app: &(impl Time + ProviderStates),
    name: &str,
    job: &str,
    end: CallEnd,
) -> Result<(), StoreError> {
    change(app, name, |read, now_ms| {
        Ok::<_, std::convert::Infallible>(read.end(job, end, now_ms))
    })
    .await
    .map(|_| ())
}

async fn change<Why>(
    app: &(impl Time + ProviderStates),
    name: &str,
    decide: impl Fn(&ProviderState, i64) -> Result<ProviderState, Why>,
) -> Result<Result<(), Why>, StoreError> {
    retry::until_done("PutItem provider", STATE_ATTEMPTS, || async {
        let store = app.providers();
        let read = store.get(name).await?;
        let next = match decide(&read, app.clock().now().timestamp_millis()) {
            Ok(next) => next,
            Err(why) => return Ok(Attempt::Done(Err(why))),
        };
        Ok(match store.put(name, &read, &next).await? {
            true => Attempt::Done(Ok(())),
            false => Attempt::Busy,
        })
    })
    .await
}
