//! Community pool use cases: play, like, a manual contribution, a claim.

use crate::caller::Caller;
use crate::ports::{Analytics, AudioBucket, Generations, Pool, RequestBudgets, Time, Users};
use crate::retry;
use son1k_domain::analytics::Event;
use son1k_domain::ids::GenerationId;
use son1k_domain::pool::{points, rank, RankedRow, Timeframe};
use son1k_domain::storage::AUDIO_LINK_SECONDS;
use son1k_store::analytics::Tally;
use son1k_store::generations::AudioState;
use son1k_store::pool::{
    claim_pk, contribution_pk, ClaimOutcome, ClaimRecord, ContributionRecord, Contributor,
    ALL_LISTED,
};
use son1k_store::{Attempt, StoreError};

/// Tries of a contribution that keeps losing races to other transactions.
const CONTRIBUTE_ATTEMPTS: u32 = 5;

/// Claims a FREE user may make per UTC day.
pub const DAILY_CLAIMS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CommunityError {
    #[error("only FREE users claim")]
    OnlyFreeTier,
    #[error("daily claims spent")]
    DailyClaimLimit {
        reset_at: chrono::DateTime<chrono::Utc>,
        retry_after: u64,
    },
    #[error("claimed before")]
    AlreadyClaimed,
    #[error("nothing left to claim")]
    PoolEmpty,
    #[error("no such pool item")]
    ItemNotFound,
    #[error("only paid tiers contribute")]
    OnlyPaidTiers,
    #[error("not the caller's generation")]
    NotFound,
    #[error("already in the pool")]
    AlreadyContributed,
    /// Sung in a cloned voice: never shared.
    #[error("a generation in a cloned voice")]
    ClonedVoice,
    #[error(transparent)]
    RateLimited(#[from] crate::rate::RateLimited),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tries of a play lost to other transactions on its items (each waits a little longer).
const PLAY_CONFLICTS: u32 = 10;

/// Tries of a play that learned something and changed its request: the bucket's form (at most
/// twice: idle to busy, once the caller's item exists), the user item made, the hour's play found.
/// Each happens only after another request made progress, so they do not count as conflicts.
const PLAY_LEARNED: u32 = 5;

/// A play: the item's plays after it, and a short-lived link to its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub plays: u64,
    pub audio_url: String,
}

/// Plays listed item `id` for the caller: one request of their budget, taken in the play's own
/// transaction, and one counted play per user, item and UTC hour (`store::pool::PoolStore::play`);
/// then a link to the audio, valid for `AUDIO_LINK_SECONDS`.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, contribution_id = %id))]
pub async fn play(
    app: &(impl Time + Users + Pool + AudioBucket + RequestBudgets),
    caller: &Caller,
    id: &str,
) -> Result<Play, CommunityError> {
    let played = count_play(app, caller, id).await?;
    let link = app
        .audio()
        .presign_get(&played.audio_key, app.clock().now(), AUDIO_LINK_SECONDS)
        .await?;
    Ok(Play {
        plays: played.plays,
        audio_url: link.url,
    })
}

/// The play counted (or found counted this hour) in one transaction with the request budget.
async fn count_play(
    app: &(impl Time + Users + Pool + RequestBudgets),
    caller: &Caller,
    id: &str,
) -> Result<son1k_store::pool::Played, CommunityError> {
    use son1k_store::pool::PlayTry;
    let budget = app.request_budget();
    let (mut seen_tat, mut counted_before) = (None, false);
    let (mut conflicts, mut learned) = (0, 0);
    while conflicts < PLAY_CONFLICTS && learned < PLAY_LEARNED {
        // The clock on every attempt.
        let now = app.clock().now();
        let rate = budget.step(seen_tat, now.timestamp_millis());
        if let son1k_domain::rate::RateStep::Refused { retry_after } = rate {
            return Err(crate::rate::RateLimited { retry_after }.into());
        }
        match app
            .pool()
            .play(id, &caller.id, &rate, counted_before, now)
            .await?
        {
            PlayTry::Played(played) => return Ok(played),
            PlayTry::NotListed => return Err(CommunityError::ItemNotFound),
            PlayTry::CountedBefore => {
                counted_before = true;
                learned += 1;
            }
            PlayTry::RateStale => {
                match app.users().get(&caller.id).await? {
                    Some(user) => seen_tat = user.rate_tat,
                    None => {
                        app.users().get_or_create(caller.new_user(now)).await?;
                    }
                }
                learned += 1;
            }
            PlayTry::Busy => {
                retry::pause(conflicts).await;
                conflicts += 1;
            }
        }
    }
    Err(StoreError::unavailable("TransactWriteItems pool play", "every attempt lost a race").into())
}

/// Tries of a like lost to other transactions on its items.
const LIKE_ATTEMPTS: u32 = 10;

/// Likes (`true`) or unlikes listed item `id` for the caller, once whatever the retries. The likes
/// after this request's own effect: the item read back once the like committed or found itself
/// made already (a parallel like by the same user, or another user's meanwhile, is in it). `None`
/// for no such listed item. Three calls: the item (its genre, for the caller's preferences), the
/// transaction, the read-back.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, contribution_id = %id))]
pub async fn like(
    app: &(impl Time + Pool),
    caller: &Caller,
    id: &str,
    like: bool,
) -> Result<Option<u64>, StoreError> {
    let Some(item) = app.pool().contribution(id).await?.filter(|c| c.listed) else {
        return Ok(None);
    };
    let item = &item;
    retry::until_done(
        "TransactWriteItems pool like",
        LIKE_ATTEMPTS,
        || async move {
            app.pool()
                .like(item, &caller.id, like, app.clock().now())
                .await
        },
    )
    .await?;
    app.pool().likes_now(id).await
}

/// Shares the caller's own recorded generation with the pool: same points and ranking rows as an
/// automatic contribution; once per generation, however many requests race.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %id))]
pub async fn contribute(
    app: &(impl Time + Users + Generations),
    caller: &Caller,
    id: &GenerationId,
) -> Result<ContributionRecord, CommunityError> {
    let now = app.clock().now();
    let user = app.users().get_or_create(caller.new_user(now)).await?;
    let tier = user.entitlement(now).tier;
    if !tier.is_paid() {
        return Err(CommunityError::OnlyPaidTiers);
    }
    for attempt in 0..CONTRIBUTE_ATTEMPTS {
        let generation = app
            .generations()
            .get(id)
            .await?
            .filter(|g| g.owner_id == caller.id)
            .ok_or(CommunityError::NotFound)?;
        if generation.contribution_id.is_some() {
            return Err(CommunityError::AlreadyContributed);
        }
        if generation.voice_id.is_some() {
            return Err(CommunityError::ClonedVoice);
        }
        let record = ContributionRecord::new(
            &user,
            id,
            generation.genre.as_deref(),
            generation.title.as_deref(),
            generation.quality,
            points(generation.quality),
            now,
        );
        // Audio stored before the contribution: listed at once (storage-events lists the others).
        let record = if generation.audio_state == AudioState::Stored {
            record.listed()
        } else {
            record
        };
        let contributor = Contributor::of(&user, tier);
        let tally = manual_contribution(&record, id, now);
        match app
            .generations()
            .contribute(&generation, &record, contributor, &tally, now)
            .await?
        {
            Attempt::Done(true) => return Ok(record),
            Attempt::Done(false) => return Err(CommunityError::AlreadyContributed),
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable("contribute", "every attempt lost a race").into())
}

/// The analytics of a manual contribution.
fn manual_contribution(
    record: &ContributionRecord,
    id: &GenerationId,
    now: chrono::DateTime<chrono::Utc>,
) -> Tally {
    Tally::new(&record.contributor_id, now).with(
        Event::PoolContribution,
        [
            ("contribution_id", record.contribution_id.as_str()),
            ("generation_id", id.as_str()),
            ("via", "manual"),
        ],
    )
}

/// A claim made: what the client gets back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Claimed {
    pub claim_id: String,
    pub contribution_id: String,
    pub generation_id: String,
    pub audio_url: String,
    pub claims_used: u32,
    pub claims_remaining: u32,
    pub reset_at: String,
}

/// The UTC day claims are counted in at `now`, and its label in the claim counter's key.
pub(crate) fn claim_day(
    now: chrono::DateTime<chrono::Utc>,
) -> (son1k_domain::period::Period, String) {
    let day = son1k_domain::period::Period::utc_day(now);
    let label = day.start.format("%Y-%m-%d").to_string();
    (day, label)
}

/// A FREE user claims a listed item (`id`), or a random one they have not claimed: 3 a UTC day,
/// never the same item twice, counted as a play; safe under parallel claims.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn claim(
    app: &(impl Time + Users + Pool + Analytics + AudioBucket),
    caller: &Caller,
    id: Option<&str>,
) -> Result<Claimed, CommunityError> {
    let user = app
        .users()
        .get_or_create(caller.new_user(app.clock().now()))
        .await?;
    if user.entitlement(app.clock().now()).tier.is_paid() {
        return Err(CommunityError::OnlyFreeTier);
    }
    let mut refused = std::collections::BTreeSet::new();
    for attempt in 0..CLAIM_ATTEMPTS {
        let now = app.clock().now();
        let (day, day_label) = claim_day(now);
        let used = claims_left(app, caller, &day, &day_label, now).await?;
        let target = match id {
            Some(id) => app
                .pool()
                .contribution(id)
                .await?
                .filter(|c| c.listed)
                .ok_or(CommunityError::ItemNotFound)?,
            None => pick(app, caller, &refused).await?,
        };
        let record = claim_record(caller, &target, now);
        let expires_at = (day.end + chrono::Duration::days(2)).timestamp();
        let pool = app.pool();
        match pool
            .claim(&record, &caller.id, &day_label, used, expires_at)
            .await?
        {
            ClaimOutcome::Claimed => return claimed(app, &target, record, used, &day, now).await,
            ClaimOutcome::AlreadyClaimed if id.is_some() => {
                return Err(CommunityError::AlreadyClaimed)
            }
            ClaimOutcome::Gone if id.is_some() => return Err(CommunityError::ItemNotFound),
            ClaimOutcome::AlreadyClaimed | ClaimOutcome::Gone => {
                refused.insert(record.contribution_id);
            }
            ClaimOutcome::CountChanged => {}
        }
        retry::pause(attempt).await;
    }
    Err(StoreError::unavailable("claim", "every attempt lost a race").into())
}

/// The caller's claims used on the UTC day `day` (`day_label`), or the refusal (counted) once the
/// day's are spent.
async fn claims_left(
    app: &(impl Pool + Analytics),
    caller: &Caller,
    day: &son1k_domain::period::Period,
    day_label: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u32, CommunityError> {
    let used = app.pool().claims_on(&caller.id, day_label).await?;
    if used < DAILY_CLAIMS {
        return Ok(used);
    }
    let tally = Tally::new(&caller.id, now).with(
        Event::LimitReached,
        [("limit", "pool_claims"), ("period", "day")],
    );
    crate::analytics::count_alone(app, &tally).await;
    Err(CommunityError::DailyClaimLimit {
        reset_at: day.end,
        retry_after: day.seconds_until_end(now),
    })
}

/// The claim of `target` by the caller at `now`.
fn claim_record(
    caller: &Caller,
    target: &ContributionRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> ClaimRecord {
    ClaimRecord {
        pk: claim_pk(&caller.id),
        sk: contribution_pk(&target.contribution_id),
        claim_id: ulid::Ulid::generate().to_string(),
        contribution_id: target.contribution_id.clone(),
        generation_id: target.generation_id.clone(),
        contributor_id: target.contributor_id.clone(),
        genre: target.genre.clone(),
        claimed_at: now,
    }
}

/// What the claimer gets: the claim, a link to the audio, and the day's claims.
async fn claimed(
    app: &impl AudioBucket,
    target: &ContributionRecord,
    record: ClaimRecord,
    used: u32,
    day: &son1k_domain::period::Period,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Claimed, CommunityError> {
    let link = app
        .audio()
        .presign_get(&target.object_key(), now, AUDIO_LINK_SECONDS)
        .await?;
    Ok(Claimed {
        claim_id: record.claim_id,
        contribution_id: record.contribution_id,
        generation_id: record.generation_id.to_string(),
        audio_url: link.url,
        claims_used: used + 1,
        claims_remaining: DAILY_CLAIMS - used - 1,
        reset_at: crate::clock::rfc3339(day.end),
    })
}

/// Tries of a claim that keeps losing races (the user's own parallel claims take turns).
const CLAIM_ATTEMPTS: u32 = 12;

/// How many of the newest listed items a random claim chooses among.
const PICK_WINDOW: usize = 100;

/// A random listed item among the newest the caller has not claimed (nor just lost).
async fn pick(
    app: &impl Pool,
    caller: &Caller,
    refused: &std::collections::BTreeSet<String>,
) -> Result<ContributionRecord, CommunityError> {
    let claimed = app.pool().claimed_by(&caller.id).await?;
    let page = app
        .pool()
        .listing("recent", "lst", ALL_LISTED, PICK_WINDOW, None)
        .await?;
    let open: Vec<ContributionRecord> = page
        .items
        .into_iter()
        .filter(|c| !claimed.contains(&c.contribution_id) && !refused.contains(&c.contribution_id))
        .collect();
    if open.is_empty() {
        return Err(CommunityError::PoolEmpty);
    }
    let index = fastrand::usize(..open.len());
    open.into_iter().nth(index).ok_or(CommunityError::PoolEmpty)
}

/// The contributors of `timeframe`'s current period (its label, as of now) by points, best first,
/// at most `limit` of them.
pub async fn ranking(
    app: &(impl Time + Pool),
    timeframe: Timeframe,
    limit: usize,
) -> Result<(String, Vec<RankedRow>), StoreError> {
    let now = app.clock().now();
    let standings = app
        .pool()
        .standings(&timeframe.period_key(now), limit)
        .await?;
    Ok((timeframe.label(now), rank(standings, limit)))
}
