//! Analytics use cases: counting the events that come with no other write, and the admin summary.
//! (Events that come with a write are counted inside that write's transaction by the store.)

use crate::ports::Analytics;
use crate::retry;
use serde::Serialize;
use son1k_domain::analytics::{Counts, DayRange};
use son1k_store::analytics::Tally;
use son1k_store::{Attempt, StoreError};

/// Counts events that write nothing else (a limit hit, a checkout started). The action stands
/// whatever happens here: a failure is logged with the events it lost, never turned into the
/// caller's error.
pub async fn count_alone(app: &impl Analytics, tally: &Tally) {
    count_refusal(app, tally, None).await;
}

/// `count_alone` of a refusal that takes one request of the caller's budget with it (`rate`).
pub async fn count_refusal(
    app: &impl Analytics,
    tally: &Tally,
    rate: Option<(&son1k_domain::ids::UserId, &son1k_domain::rate::RateStep)>,
) {
    if let Err(err) = count(app, tally, rate).await {
        let events: Vec<&str> = tally.events().map(|e| e.as_str()).collect();
        tracing::error!(?events, error = %err, "analytics count lost");
    }
}

/// Tries of a count that stands alone while its shard is in other transactions (a user's parallel
/// refusals count on one shard).
const COUNT_ATTEMPTS: u32 = 8;

async fn count(
    app: &impl Analytics,
    tally: &Tally,
    mut rate: Option<(&son1k_domain::ids::UserId, &son1k_domain::rate::RateStep)>,
) -> Result<(), StoreError> {
    for attempt in 0..COUNT_ATTEMPTS {
        match app.analytics().count_taking(tally, rate).await? {
            Attempt::Done(true) => return Ok(()),
            // The bucket moved (a parallel request took from it): the count goes in without it.
            Attempt::Done(false) => rate = None,
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable(
        "TransactWriteItems analytics",
        "every attempt lost a race",
    ))
}

/// One day of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct DaySummary {
    pub date: String,
    pub counts: Counts,
}

/// `GET /api/analytics/summary`: every day of the range, zeros included, and the totals.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub days: Vec<DaySummary>,
    pub totals: Counts,
}

#[tracing::instrument(skip_all, fields(from = %range.from, to = %range.to))]
pub async fn summary(app: &impl Analytics, range: &DayRange) -> Result<Summary, StoreError> {
    let days = app.analytics().days(range).await?;
    let mut totals = Counts::default();
    for (_, counts) in &days {
        totals.merge(counts);
    }
    Ok(Summary {
        from: range.from.to_string(),
        to: range.to.to_string(),
        days: days
            .into_iter()
            .map(|(day, counts)| DaySummary {
                date: day.to_string(),
                counts,
            })
            .collect(),
        totals,
    })
}
