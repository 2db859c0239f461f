//! The record-generation use case: read the user, decide (`domain::metering`), spend one unit with a
//! single-item update (`store::generations::spend`), then store the generation with the numbers that
//! update returned.
//!
//! A user's parallel requests do not race: DynamoDB applies single-item updates of one item one after
//! another, and the spend is conditioned only on what the decision needs (the period's counter below
//! the cap, the entitlement and the jobs' reservations as read), so a sibling's spend never makes it
//! stale while quota remains. Its returned counter and paid history give each request its own `used`
//! and exactly one request each 20th paid generation. A spend is lost only to a change of the
//! entitlement or of the reservations (decided again from the user the refusal returned, no read) or
//! to the limit (then final: 429). The generation's transaction touches no item the spend did; if it
//! does not commit (the id is taken, or it failed) the unit is given back.

use crate::caller::Caller;
use crate::clock::rfc3339;
use crate::clock::Clock;
use crate::ports::{Analytics, Generations, RequestBudgets, Time, Users};
use crate::rate::RateLimited;
use crate::retry;
use chrono::{DateTime, Utc};
use son1k_domain::analytics::Event;
use son1k_domain::generation::{NewGeneration, PoolContribution, RecordedGeneration};
use son1k_domain::ids::GenerationId;
use son1k_domain::metering::{decide_with_credit, Grant, Refusal};
use son1k_domain::pool::points;
use son1k_domain::rate::RateStep;
use son1k_store::analytics::Tally;
use son1k_store::generations::{
    generation_pk, AudioState, GenerationRecord, RecordOutcome, RecordWrite, Spend, GEN_SK,
};
use son1k_store::pool::ContributionRecord;
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

/// Spends of one request (record-generation's, and a job submission's reservation): each lost one saw
/// the entitlement change, the last unit taken or an expired reservation taken out by a sibling (or
/// the user item in a job's commit) and is decided again at once from the user as it now is.
pub const SPEND_ATTEMPTS: u32 = 12;
/// Tries of the record transaction while another transaction holds one of its items (the user's
/// analytics shard or preference counter, written by the user's other requests in AWS).
pub const RECORD_ATTEMPTS: u32 = 12;

/// Tries of a give-back while the user item is in other transactions.
pub const GIVE_BACK_ATTEMPTS: u32 = 12;
/// Tries of a batch read while DynamoDB leaves keys unprocessed.
pub const READ_ATTEMPTS: u32 = 6;

/// The end of a spend's attempts without an answer: the user item kept changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted(pub u32);

/// The user as read, or made by the caller's first request (every caller's first request makes its
/// user, whatever the answer).
pub(crate) async fn user_or_new(
    app: &(impl Time + Users),
    caller: &Caller,
    found: Option<UserRecord>,
) -> Result<UserRecord, StoreError> {
    match found {
        Some(user) => Ok(user),
        None => Ok(app
            .users()
            .create(caller.new_user(app.clock().now()))
            .await?
            .0),
    }
}

/// The spend loop of record-generation and job submission: each attempt decides and spends from the
/// user as it last was, with the clock read again (a retry that crosses midnight counts in the new
/// day), at most `SPEND_ATTEMPTS` times.
pub(crate) struct SpendLoop<'a> {
    clock: &'a dyn Clock,
    what: &'static str,
    user: UserRecord,
    attempt: u32,
}

impl<'a> SpendLoop<'a> {
    pub(crate) fn new(app: &'a impl Time, what: &'static str, user: UserRecord) -> Self {
        Self {
            clock: app.clock(),
            what,
            user,
            attempt: 0,
        }
    }

    /// The next attempt's number (from 1) and its clock; `None` once every attempt is spent.
    pub(crate) fn next(&mut self) -> Option<(u32, DateTime<Utc>)> {
        (self.attempt < SPEND_ATTEMPTS).then(|| {
            self.attempt += 1;
            (self.attempt, self.clock.now())
        })
    }

    /// The user as the last attempt left it.
    pub(crate) fn user(&self) -> &UserRecord {
        &self.user
    }

    /// The user item changed under the attempt: the next one decides from it as it now is.
    pub(crate) fn changed(&mut self, current: Box<UserRecord>) {
        self.user = *current;
    }

    /// Another transaction held the user item: the pause before the next attempt.
    pub(crate) async fn busy(&self) {
        retry::pause(self.attempt).await;
    }

    /// Every attempt lost.
    pub(crate) fn exhausted(&self) -> Exhausted {
        tracing::warn!(
            attempts = SPEND_ATTEMPTS,
            "{}: the user item kept changing",
            self.what
        );
        Exhausted(SPEND_ATTEMPTS)
    }
}

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
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// Another user recorded this generation id.
    #[error("generation id recorded by another user")]
    IdTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Lost every attempt (`SPEND_ATTEMPTS` or `RECORD_ATTEMPTS`).
    #[error("gave up after {attempts} attempts")]
    BudgetSpent { attempts: u32 },
}

impl From<Exhausted> for RecordError {
    fn from(Exhausted(attempts): Exhausted) -> Self {
        Self::BudgetSpent { attempts }
    }
}

/// Records `generation` for `caller`: created once, replayed on every retry, refused as the metering
/// decision says (unless it was recorded before: a retry always gets its stored answer).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %generation.generation_id))]
pub async fn record_generation(
    app: &(impl Time + Users + Generations + Analytics + RequestBudgets),
    caller: &Caller,
    generation: &NewGeneration,
) -> Result<Recorded, RecordError> {
    let (user, recorded) = user_and_generation(app, &caller.id, &generation.generation_id).await?;
    let user = user_or_new(app, caller, user).await?;
    // A retry of a recorded generation gets its stored answer whatever the quota says now.
    if let Some(replay) = replay_of(caller, recorded)? {
        return Ok(replay);
    }
    let id = &generation.generation_id;
    let mut spends = SpendLoop::new(app, "record-generation", user);
    while let Some((attempt, now)) = spends.next() {
        let user = spends.user();
        // A parallel duplicate of this request spent for it: its answer is this one's.
        if user.in_flight(id, now) {
            match await_original(app, caller, id).await? {
                Waited::Answered(replay) => return Ok(replay),
                Waited::GaveUp(current) => {
                    spends.changed(current);
                    continue;
                }
            }
        }
        // The request budget, from the bucket as read; taken in the spend's own update.
        let rate = crate::rate::step(app, user, now)?;
        let credit = user.next_credit(now);
        let grant =
            match decide_with_credit(&user.usage(now), credit, Some(generation.quality), now) {
                Ok(grant) => grant,
                Err(refusal) => return refused(app, caller, id, refusal, &rate, now).await,
            };
        match app
            .generations()
            .spend(user, &grant, &rate, id, now)
            .await?
        {
            Spend::Spent(after) => {
                let spent = Spent {
                    after: &after,
                    grant: &grant,
                    spends: attempt,
                };
                return store(app, caller, spent, generation, now).await;
            }
            Spend::Stale(Some(current)) => spends.changed(current),
            Spend::Stale(None) => {
                return Err(StoreError::corrupt("the user vanished while recording").into())
            }
            Spend::Busy => spends.busy().await,
        }
    }
    Err(spends.exhausted().into())
}

/// A refused spend: parallel requests with this id hold units until one of them records it, so a
/// refusal yields to that record; a refusal that stands is counted.
async fn refused(
    app: &(impl Generations + Analytics),
    caller: &Caller,
    id: &GenerationId,
    refusal: Refusal,
    rate: &RateStep,
    now: DateTime<Utc>,
) -> Result<Recorded, RecordError> {
    let answer = replay_or(app, caller, id, refusal).await;
    if let Err(RecordError::Refused(refusal)) = &answer {
        count_limit_hit(app, caller, refusal, rate, now).await;
    }
    answer
}

/// How waiting for a parallel duplicate ended.
enum Waited {
    /// It recorded the generation (or another user had): this request's answer.
    Answered(Recorded),
    /// It gave its unit back (its record did not land) or died: the user as it now is, to decide
    /// again from.
    GaveUp(Box<UserRecord>),
}

/// Waits for the parallel request that spent for `id` to record it, reading the user and the record
/// together between pauses, for as long as that request may still be running (`INFLIGHT_KEPT`).
///
/// [`INFLIGHT_KEPT`]: son1k_store::generations::INFLIGHT_KEPT
async fn await_original(
    app: &(impl Time + Generations),
    caller: &Caller,
    id: &GenerationId,
) -> Result<Waited, RecordError> {
    for round in 0..AWAIT_ROUNDS {
        retry::pause(round).await;
        let (user, record) = user_and_generation(app, &caller.id, id).await?;
        if let Some(answer) = replay_of(caller, record)? {
            return Ok(Waited::Answered(answer));
        }
        let user = user.ok_or_else(|| StoreError::corrupt("the user vanished while recording"))?;
        if !user.in_flight(id, app.clock().now()) {
            return Ok(Waited::GaveUp(Box::new(user)));
        }
    }
    Err(RecordError::BudgetSpent {
        attempts: AWAIT_ROUNDS,
    })
}

/// Reads of a duplicate waiting for its original, about 40 ms apart: about as long as
/// `INFLIGHT_KEPT`, a bound for a clock that does not move (tests) or a store that keeps answering the
/// same.
pub const AWAIT_ROUNDS: u32 = 750;

/// Stores the generation whose unit was spent (`after` is the user as the spend left it). Whatever
/// keeps it from being stored gives the unit back: the id taken (a replay, or another user's id), a
/// failure DynamoDB answered, or every try meeting another transaction.
/// A unit spent: the user as the spend left it, the grant it was spent for, and how many spends it
/// took.
struct Spent<'a> {
    after: &'a UserRecord,
    grant: &'a Grant,
    spends: u32,
}

async fn store(
    app: &(impl Generations + Time),
    caller: &Caller,
    Spent {
        after,
        grant,
        spends,
    }: Spent<'_>,
    generation: &NewGeneration,
    now: DateTime<Utc>,
) -> Result<Recorded, RecordError> {
    let grant = grant.settled(
        after.used_in(&grant.period_key),
        after.paid_generations_total,
    );
    let contribution = grant
        .contributes
        .then(|| contribution(after, generation, now));
    let body = body(after, generation, &grant, contribution.as_ref(), now)?;
    let record = generation_record(after, &grant, generation, &body, contribution.as_ref(), now);
    let tally = tally(after, &grant, generation, contribution.as_ref(), now);
    let mut alerts = crate::alerts::of_generation(after, &grant, now);
    let mut attempt = 0;
    while attempt < RECORD_ATTEMPTS {
        let write = RecordWrite {
            user: after,
            grant: &grant,
            generation: &record,
            contribution: contribution.as_ref(),
            tally: &tally,
            alerts: &alerts,
            now,
        };
        match app.generations().record(&write).await {
            Ok(RecordOutcome::Committed) => {
                tally.log();
                alerts.log();
                // The attempts each write took (`make load` reads them off the log).
                tracing::info!(spends, records = attempt + 1, "generation recorded");
                return Ok(Recorded::Created(body));
            }
            Ok(RecordOutcome::IdTaken(taken)) => {
                return id_taken(app, caller, &record, &grant, taken).await
            }
            // Thresholds that fired before (the unit was given back and spent again): the
            // generation goes without them, at once.
            Ok(RecordOutcome::AlertsFired(fired)) => {
                alerts = alerts.without(&fired);
                continue;
            }
            Ok(RecordOutcome::Busy) => retry::pause(attempt).await,
            Err(err) => {
                give_back_unless_recorded(app, &record, &grant).await;
                return Err(err.into());
            }
        }
        attempt += 1;
    }
    give_back(app, &record, &grant).await?;
    tracing::warn!(
        attempts = RECORD_ATTEMPTS,
        "record-generation: its items stayed in other transactions"
    );
    Err(RecordError::BudgetSpent {
        attempts: RECORD_ATTEMPTS,
    })
}

/// Another request recorded the id meanwhile: the unit spent for `ours` goes back, and that
/// record (as the cancellation returned it, or read) answers.
async fn id_taken(
    app: &(impl Generations + Time),
    caller: &Caller,
    ours: &GenerationRecord,
    grant: &Grant,
    taken: Option<Box<GenerationRecord>>,
) -> Result<Recorded, RecordError> {
    give_back(app, ours, grant).await?;
    let taken = match taken {
        Some(record) => Some(*record),
        None => recorded(app, &ours.owner_id, &ours.generation_id).await?,
    };
    replay_of(caller, taken)?
        .ok_or_else(|| StoreError::corrupt("a taken generation id has no record").into())
}

/// Gives back the unit spent for `generation` (not recorded) to the counter it came from.
async fn give_back(
    app: &(impl Generations + Time),
    generation: &GenerationRecord,
    grant: &Grant,
) -> Result<(), StoreError> {
    retry::until_done(
        "UpdateItem give back generation",
        GIVE_BACK_ATTEMPTS,
        || async move {
            app.generations()
                .give_back(
                    &generation.owner_id,
                    son1k_store::generations::Holder::InFlight(&generation.generation_id),
                    son1k_store::generations::Unit::of(grant),
                    app.clock().now(),
                )
                .await
        },
    )
    .await
}

/// After the record transaction failed: unless `ours` is what is stored (the failure was a lost
/// answer of a commit), gives the unit back. If even that read fails the unit stays spent (logged):
/// never more than the quota is granted.
async fn give_back_unless_recorded(
    app: &(impl Generations + Time),
    ours: &GenerationRecord,
    grant: &Grant,
) {
    match recorded(app, &ours.owner_id, &ours.generation_id).await {
        Ok(Some(stored))
            if (stored.owner_id == ours.owner_id
                && stored.recorded_at == ours.recorded_at
                && stored.response == ours.response) => {}
        Ok(_) => {
            if give_back(app, ours, grant).await.is_err() {
                tracing::error!("a unit of a generation that was not recorded stays spent");
            }
        }
        Err(_) => {
            tracing::error!("unknown whether the generation was recorded: its unit stays spent")
        }
    }
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
        (None, grant.credit.as_deref()),
        contribution,
        now,
    )
    .prefer(generation.genre.as_deref())
}

/// The events of a recorded generation of `quality` on `tier` (`via` a job, or record-generation when
/// `None`), of the credit that paid it (its block) and of its pool contribution when it makes one.
pub(crate) fn generation_tally(
    user: &son1k_domain::ids::UserId,
    generation: &GenerationId,
    (quality, tier): (son1k_domain::tiers::Quality, son1k_domain::tiers::Tier),
    (via, credit): (Option<&str>, Option<&str>),
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
    let mut tally = Tally::new(user, now).with(Event::GenerationRecorded, properties);
    if let Some(block) = credit {
        tally = tally.with(
            Event::CreditSpent,
            [("generation_id", id), ("block_id", block)],
        );
    }
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
    app: &impl Analytics,
    caller: &Caller,
    refusal: &Refusal,
    rate: &RateStep,
    now: DateTime<Utc>,
) {
    let Refusal::LimitReached { period, .. } = refusal else {
        return;
    };
    let tally = Tally::new(&caller.id, now).with(
        Event::LimitReached,
        [("limit", "generations"), ("period", period.as_str())],
    );
    crate::analytics::count_refusal(app, &tally, Some((&caller.id, rate))).await;
}

/// A refusal stands only if the generation was not recorded before: a retry of a recorded generation
/// gets its stored answer whatever the quota says now.
async fn replay_or(
    app: &impl Generations,
    caller: &Caller,
    id: &GenerationId,
    refusal: Refusal,
) -> Result<Recorded, RecordError> {
    let record = recorded(app, &caller.id, id).await?;
    replay_of(caller, record)?.ok_or(RecordError::Refused(refusal))
}

/// The record of generation `id`, read as the request's first read is (with the user's item), so
/// record-generation needs one read action of each table.
async fn recorded(
    app: &impl Generations,
    user: &son1k_domain::ids::UserId,
    id: &GenerationId,
) -> Result<Option<GenerationRecord>, StoreError> {
    Ok(user_and_generation(app, user, id).await?.1)
}

/// The user's item and the record of generation `id`, read together in one call (asked again while
/// DynamoDB leaves keys unprocessed).
async fn user_and_generation(
    app: &impl Generations,
    user: &son1k_domain::ids::UserId,
    id: &GenerationId,
) -> Result<(Option<UserRecord>, Option<GenerationRecord>), StoreError> {
    retry::until_done(
        "BatchGetItem user and generation",
        READ_ATTEMPTS,
        || async move { app.generations().user_and_generation(user, id).await },
    )
    .await
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
    after: &UserRecord,
    generation: &NewGeneration,
    grant: &Grant,
    contribution: Option<&ContributionRecord>,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let body = RecordedGeneration {
        generation_id: generation.generation_id.clone(),
        recorded: true,
        used: grant.used_after,
        // The allowance left and the credits, as the limits answer counts them.
        remaining: grant
            .remaining
            .saturating_add(son1k_domain::credits::balance(&after.credits, now)),
        reset_at: rfc3339(grant.reset_at),
        pool_contribution: contribution.map(|c| PoolContribution {
            contribution_id: c.contribution_id.clone(),
            points: c.points,
        }),
        credit_block_id: grant.credit.clone(),
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
        voice_id: None,
    }
}
