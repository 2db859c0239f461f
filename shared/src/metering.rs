//! The record-generation use case: read the user, decide (`domain::metering`), write (`store::generations`),
//! and take turns with the user's other requests until one answer is final.
//!
//! The period counters are updated with expected-value conditions, not a blind `ADD`: the 201 body
//! (with `used` and `remaining`) is stored in the same transaction, so its numbers must be known before
//! it commits. A user's parallel requests therefore take turns: a loser gets the user as it now is in
//! the cancellation (`ALL_OLD`), reads the clock again and retries after a short pause, for as long as
//! `RETRY_BUDGET` allows. A loser only loses to a winner, so while quota remains every request gets its
//! turn; past the limit every loser ends in 429; an error means the store failed or time ran out.

use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::domain::analytics::Event;
use crate::domain::generation::{NewGeneration, PoolContribution, RecordedGeneration};
use crate::domain::ids::GenerationId;
use crate::domain::metering::{decide, Grant, Refusal};
use crate::domain::pool::points;
use crate::store::analytics::Tally;
use crate::store::generations::{
    generation_pk, AudioState, GenerationRecord, RecordOutcome, RecordWrite, GEN_SK,
};
use crate::store::pool::ContributionRecord;
use crate::store::users::UserRecord;
use crate::store::StoreError;
use crate::AppState;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How long one request may keep retrying lost races before giving up: far more than a burst of one
/// user's parallel requests needs to take turns (16 parallel clients of one user: about 3.5 s at p99
/// on DynamoDB Local on 2 cores since analytics ride in the transaction, and once just over 6 s with
/// the whole test suite running beside it; past 10 s, once in 192, with a release build beside the
/// suite), with one last call's operation timeout still inside the function's timeout (20 s in
/// template.yaml, checked by a test).
pub const RETRY_BUDGET: Duration = Duration::from_secs(14);
/// Upper bound of one backoff pause.
pub const BACKOFF_CAP: Duration = Duration::from_millis(100);
const BACKOFF_BASE: Duration = Duration::from_millis(2);
/// How fast the backoff ceiling shrinks with the time a request has already waited.
const AGING: Duration = Duration::from_secs(1);

/// What record-generation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Newly recorded: this body, first time.
    Created(String),
    /// Recorded before by this caller: the stored body, byte for byte.
    Replayed(String),
}

/// Why a generation was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// Another user recorded this generation id.
    #[error("generation id recorded by another user")]
    IdTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Lost races for the whole `RETRY_BUDGET`.
    #[error("retry budget spent after {attempts} attempts")]
    BudgetSpent { attempts: u32 },
}

/// Records `generation` for `caller`: created once, replayed on every retry, refused as the metering
/// decision says (unless it was recorded before: a retry always gets its stored answer).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %generation.generation_id))]
pub async fn record_generation(
    state: &AppState,
    caller: &Caller,
    generation: &NewGeneration,
) -> Result<Recorded, RecordError> {
    let mut user = state
        .users()
        .get_or_create(caller.new_user(state.clock.now()))
        .await?;
    let started = tokio::time::Instant::now();
    for attempt in 0u32.. {
        // The clock on every attempt: a retry that crosses midnight counts in the new day.
        let now = state.clock.now();
        let grant = match decide(&user.usage(now), Some(generation.quality), now) {
            Ok(grant) => grant,
            Err(refusal) => {
                let answer = replay_or(state, caller, &generation.generation_id, refusal).await;
                if let Err(RecordError::Refused(refusal)) = &answer {
                    count_limit_hit(state, caller, refusal, now).await;
                }
                return answer;
            }
        };
        match attempt_once(state, &user, &grant, generation, now).await? {
            Attempt::Done(recorded) => return Ok(recorded),
            Attempt::IdTaken(record) => {
                let record = match record {
                    Some(record) => Some(record),
                    None => state.generations().get(&generation.generation_id).await?,
                };
                // Taken, yet unreadable an instant later: try again.
                if let Some(replay) = replay_of(caller, record)? {
                    return Ok(replay);
                }
            }
            Attempt::Lost(Some(current)) => user = current,
            Attempt::Lost(None) => user = reread(state, caller).await?,
        }
        let pause = backoff(attempt, started.elapsed());
        if started.elapsed() + pause >= RETRY_BUDGET {
            tracing::warn!(
                attempts = attempt + 1,
                "record-generation retry budget spent"
            );
            return Err(RecordError::BudgetSpent {
                attempts: attempt + 1,
            });
        }
        tokio::time::sleep(pause).await;
    }
    Err(RecordError::BudgetSpent { attempts: u32::MAX })
}

/// One attempt's result, as the loop sees it.
enum Attempt {
    Done(Recorded),
    IdTaken(Option<GenerationRecord>),
    Lost(Option<UserRecord>),
}

async fn attempt_once(
    state: &AppState,
    user: &UserRecord,
    grant: &Grant,
    generation: &NewGeneration,
    now: DateTime<Utc>,
) -> Result<Attempt, RecordError> {
    let contribution = grant
        .contributes
        .then(|| contribution(user, generation, now));
    let body = body(generation, grant, contribution.as_ref())?;
    let record = generation_record(user, grant, generation, &body, contribution.as_ref(), now);
    let tally = tally(user, grant, generation, contribution.as_ref(), now);
    let write = RecordWrite {
        user,
        grant,
        generation: &record,
        contribution: contribution.as_ref(),
        tally: &tally,
        now,
    };
    Ok(match state.generations().record(&write).await? {
        RecordOutcome::Committed => {
            tally.log();
            Attempt::Done(Recorded::Created(body))
        }
        RecordOutcome::IdTaken(record) => Attempt::IdTaken(record.map(|r| *r)),
        RecordOutcome::UserChanged(user) => Attempt::Lost(user.map(|u| *u)),
    })
}

/// The events of a recorded generation: the generation, and its pool contribution when it makes one.
fn tally(
    user: &UserRecord,
    grant: &Grant,
    generation: &NewGeneration,
    contribution: Option<&ContributionRecord>,
    now: DateTime<Utc>,
) -> Tally {
    generation_tally(
        &user.user_id,
        &generation.generation_id,
        (generation.quality, grant.tier),
        None,
        contribution,
        now,
    )
    .prefer(generation.genre.as_deref())
}

/// The events of a recorded generation of `quality` on `tier` (`via` a job, or record-generation when
/// `None`) and of its pool contribution when it makes one.
pub(crate) fn generation_tally(
    user: &crate::domain::ids::UserId,
    generation: &GenerationId,
    (quality, tier): (crate::domain::tiers::Quality, crate::domain::tiers::Tier),
    via: Option<&str>,
    contribution: Option<&ContributionRecord>,
    now: DateTime<Utc>,
) -> Tally {
    let id = generation.as_str();
    let mut properties = vec![
        ("generation_id", id),
        ("quality", quality.as_str()),
        ("tier", tier.as_str()),
    ];
    properties.extend(via.map(|via| ("via", via)));
    let tally = Tally::new(user, now).with(Event::GenerationRecorded, properties);
    match contribution {
        Some(c) => tally.with(
            Event::PoolContribution,
            [
                ("contribution_id", c.contribution_id.as_str()),
                ("generation_id", id),
                ("via", "automatic"),
            ],
        ),
        None => tally,
    }
}

/// Counts a refusal for a spent quota (a quality outside the tier is not a limit hit).
pub(crate) async fn count_limit_hit(
    state: &AppState,
    caller: &Caller,
    refusal: &Refusal,
    now: DateTime<Utc>,
) {
    let Refusal::LimitReached { period, .. } = refusal else {
        return;
    };
    let tally = Tally::new(&caller.id, now).with(
        Event::LimitReached,
        [("limit", "generations"), ("period", period.as_str())],
    );
    crate::analytics::count_alone(state, &tally).await;
}

async fn reread(state: &AppState, caller: &Caller) -> Result<UserRecord, RecordError> {
    state
        .users()
        .get(&caller.id)
        .await?
        .ok_or_else(|| StoreError::corrupt("the user vanished while recording").into())
}

/// Full jitter, uniform in `0..=ceiling`, where the ceiling grows as `base * 2^attempt` up to the cap
/// (losers spread out instead of colliding again at once) and decays as `e^(-waited / AGING)`, so a
/// request that has waited long retries more often than a fresh loser.
pub(crate) fn backoff(attempt: u32, waited: Duration) -> Duration {
    let grown = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(10))
        .min(BACKOFF_CAP);
    let ceiling = grown.mul_f64((-waited.as_secs_f64() / AGING.as_secs_f64()).exp());
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(fastrand::u64(0..=micros))
}

/// A refusal stands only if the generation was not recorded before: a retry of a recorded generation
/// gets its stored answer whatever the quota says now.
async fn replay_or(
    state: &AppState,
    caller: &Caller,
    id: &GenerationId,
    refusal: Refusal,
) -> Result<Recorded, RecordError> {
    let record = state.generations().get(id).await?;
    replay_of(caller, record)?.ok_or(RecordError::Refused(refusal))
}

/// What a stored generation record means for `caller`: its replay, `IdTaken`, or nothing.
fn replay_of(
    caller: &Caller,
    record: Option<GenerationRecord>,
) -> Result<Option<Recorded>, RecordError> {
    match record {
        Some(record) if record.owner_id == caller.id => {
            Ok(Some(Recorded::Replayed(record.response)))
        }
        Some(_) => Err(RecordError::IdTaken),
        None => Ok(None),
    }
}

/// The pool contribution of a granted 20th paid generation.
fn contribution(
    user: &UserRecord,
    generation: &NewGeneration,
    now: DateTime<Utc>,
) -> ContributionRecord {
    ContributionRecord::new(
        user,
        &generation.generation_id,
        generation.genre.as_deref(),
        generation.title.as_deref(),
        generation.quality,
        points(generation.quality),
        now,
    )
}

/// The exact 201 body, stored with the generation and replayed byte for byte.
fn body(
    generation: &NewGeneration,
    grant: &Grant,
    contribution: Option<&ContributionRecord>,
) -> Result<String, StoreError> {
    let body = RecordedGeneration {
        generation_id: generation.generation_id.clone(),
        recorded: true,
        used: grant.used_after,
        remaining: grant.remaining,
        reset_at: rfc3339(grant.reset_at),
        pool_contribution: contribution.map(|c| PoolContribution {
            contribution_id: c.contribution_id.clone(),
            points: c.points,
        }),
    };
    serde_json::to_string(&body).map_err(StoreError::invalid_request)
}

fn generation_record(
    user: &UserRecord,
    grant: &Grant,
    generation: &NewGeneration,
    body: &str,
    contribution: Option<&ContributionRecord>,
    now: DateTime<Utc>,
) -> GenerationRecord {
    GenerationRecord {
        pk: generation_pk(&generation.generation_id),
        sk: GEN_SK.to_owned(),
        generation_id: generation.generation_id.clone(),
        owner_id: user.user_id.clone(),
        quality: generation.quality,
        tier: grant.tier,
        genre: generation.genre.clone(),
        title: generation.title.clone(),
        prompt: generation.prompt.clone(),
        duration_seconds: generation.duration_seconds,
        period_key: grant.period_key.clone(),
        recorded_at: now,
        response: body.to_owned(),
        contribution_id: contribution.map(|c| c.contribution_id.clone()),
        audio_state: AudioState::None,
        upload: None,
        audio: None,
    }
}
