//! Generation jobs: submit (reserve a unit and queue the job), status, and the worker's run (a
//! provider from the pool, the audio streamed into S3, then commit or release).
//!
//! Quota is spent only for audio that exists: the unit reserved at submission becomes a recorded
//! generation when the audio is stored, and comes back when the job fails. A reservation that is
//! never finished stops counting after `RESERVATION_TTL` (computed on read).

use crate::audit::{self, Via};
use crate::caller::Caller;
use crate::clock::rfc3339;
use crate::metering::{
    user_or_new, Exhausted, SpendLoop, AWAIT_ROUNDS, GIVE_BACK_ATTEMPTS, READ_ATTEMPTS,
};
use crate::ports::{
    Analytics, AudioBucket, Audit, Jobs, JobsQueues, Lyrics, ProviderStates, RequestBudgets, Time,
    Users, Voices,
};
use crate::providers::{Audio, GenerationRequest, MusicProvider, ProviderConfig, ProviderError};
use crate::{retry, AppState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::alerts::{Alert, AlertKind};
use son1k_domain::generation::{PoolContribution, RecordedGeneration};
use son1k_domain::ids::{GenerationId, UserId};
use son1k_domain::jobs::{JobFailure, JobStatus, JobView, NewJob, Reservation, Submitted};
use son1k_domain::metering::{decide_with_credit, Grant, Refusal};
use son1k_domain::pool::points;
use son1k_domain::providers::CallEnd;
use son1k_domain::storage::{audio_key, most_used_for, UsedAtMost, AUDIO_LINK_SECONDS};
use son1k_store::alerts::{AlertWrites, Fired};
use son1k_store::analytics::Tally;
use son1k_store::audio::ObjectInfo;
use son1k_store::generations::{
    generation_pk, AudioState, GenerationRecord, Spend, StoredAudio, GEN_SK, INFLIGHT_KEPT,
};
use son1k_store::jobs::{CommitWrite, FinishOutcome, JobEnd, JobRecord, VoiceRef, JOB_SK};
use son1k_store::pool::ContributionRecord;
use son1k_store::users::UserRecord;
use son1k_store::StoreError;
use std::time::Duration;

/// Provider calls one job may make, over all its runs.
pub const MAX_PROVIDER_CALLS: u32 = 3;
/// How long one worker run holds a job: the worker function's timeout (300 s in template.yaml; the
/// queue's visibility timeout is longer), so a run that crashed has let go by the time SQS delivers
/// the message again. A provider call is started only with its whole timeout left in the lease.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(300);
/// How long a run waits for a provider that is cooling down or out of rate before it gives the
/// job back to the queue.
const WAIT_FOR_PROVIDER: Duration = Duration::from_secs(20);

/// The queue message of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub generation_id: GenerationId,
    pub owner_id: son1k_domain::ids::UserId,
}

/// The jobs queue (SQS). Its client is built on the first send, not at cold start: a submission
/// that is refused (400, 403, 429) never needs it.
#[derive(Debug, Clone)]
pub struct JobsQueue {
    client: std::sync::Arc<std::sync::OnceLock<aws_sdk_sqs::Client>>,
    /// What the client is built from: the state's SDK settings and SQS endpoint override.
    source: Option<(aws_config::SdkConfig, Option<String>)>,
    url: String,
    /// How many providers the worker runs jobs through (`GENERATION_PROVIDERS`): with none, a
    /// submission is refused before anything is reserved.
    providers: usize,
}

impl JobsQueue {
    /// The queue at `url`, its jobs run by `providers` providers.
    pub fn new(client: aws_sdk_sqs::Client, url: String, providers: usize) -> Self {
        Self {
            client: std::sync::Arc::new(std::sync::OnceLock::from(client)),
            source: None,
            url,
            providers,
        }
    }

    /// The queue of `JOBS_QUEUE_URL`, with the state's SDK settings (and `AWS_ENDPOINT_URL_SQS`),
    /// and the worker's providers as `GENERATION_PROVIDERS` lists them (the same parameter).
    pub fn from_env(state: &AppState) -> Result<Self, crate::StartError> {
        let url = std::env::var("JOBS_QUEUE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or("JOBS_QUEUE_URL is not set: the function needs it (template.yaml sets it)")?;
        let providers = match std::env::var("GENERATION_PROVIDERS") {
            Ok(raw) if !raw.trim().is_empty() => crate::providers::parse_providers(&raw)?.len(),
            _ => 0,
        };
        if providers == 0 {
            tracing::error!(
                "GENERATION_PROVIDERS lists no provider: every submission answers 503 \
                 no_provider_configured"
            );
        }
        Ok(Self {
            client: std::sync::Arc::new(std::sync::OnceLock::new()),
            source: Some((state.sdk.clone(), state.endpoints.sqs.clone())),
            url,
            providers,
        })
    }

    fn client(&self) -> &aws_sdk_sqs::Client {
        // `new` sets the client; `from_env` leaves it to be built here, from its source.
        self.client.get_or_init(|| match &self.source {
            Some((sdk, endpoint)) => crate::state::sqs_client(sdk, endpoint.as_deref()),
            None => aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::Config::builder().build()),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, message: &JobMessage) -> Result<(), StoreError> {
        let body = serde_json::to_string(message).map_err(StoreError::invalid_request)?;
        self.client()
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                StoreError::unavailable(
                    "SendMessage",
                    aws_sdk_sqs::error::DisplayErrorContext(&err).to_string(),
                )
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    RateLimited(#[from] crate::rate::RateLimited),
    #[error("generation id taken")]
    IdTaken,
    /// `lyrics_id` names no draft of the caller's.
    #[error("no such lyrics")]
    NoSuchLyrics,
    /// The deployment has no generation provider: a job could only fail.
    #[error("no generation provider is configured")]
    NoProvider,
    /// The owner's free storage is below what the job's audio may take.
    #[error("storage quota exceeded")]
    StorageFull(son1k_domain::storage::QuotaExceeded),
    /// `voice_id` is not the caller's ready voice.
    #[error(transparent)]
    Voice(#[from] crate::voices::VoiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Lost every attempt (`SPEND_ATTEMPTS`, or `AWAIT_ROUNDS` waiting for a parallel copy).
    #[error("gave up after {attempts} attempts")]
    BudgetSpent { attempts: u32 },
}

impl From<Exhausted> for SubmitError {
    fn from(Exhausted(attempts): Exhausted) -> Self {
        Self::BudgetSpent { attempts }
    }
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    /// Reserved and queued: the 202 body.
    Queued(Submitted),
    /// The caller submitted this id before: the job as it now is.
    Existing(JobView),
}

/// Reserves a unit of `caller`'s quota for the job, stores the job and queues it. The same id again
/// by the same caller answers the job's state (and queues it again while it is queued: a lost message
/// is sent again by the client's retry; the worker runs a job once whatever it receives).
///
/// One read (the user, the job and a recorded generation of this id together), one single-item
/// update of the user item (the unit and the reservation: a user's parallel submissions queue there,
/// see `crate::metering`), one put of the job. A parallel copy of the submission finds the
/// reservation its original made and waits for that job instead of reserving a second unit.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %job.generation_id))]
pub async fn submit(
    app: &(impl Time
          + Users
          + Analytics
          + Lyrics
          + Jobs
          + JobsQueues
          + AudioBucket
          + RequestBudgets
          + Voices),
    caller: &Caller,
    job: &NewJob,
) -> Result<SubmitOutcome, SubmitError> {
    let (queue, voice) = ready_queue(app, caller, job).await?;
    let id = &job.generation_id;
    let (user, existing, recorded) = retry::until_done(
        "BatchGetItem user, job and generation",
        READ_ATTEMPTS,
        || async move { app.jobs().user_job_and_generation(&caller.id, id).await },
    )
    .await?;
    if let Some(existing) = existing {
        return existing_job(app, queue, caller, existing).await;
    }
    if recorded.is_some() {
        return Err(SubmitError::IdTaken);
    }
    let user = user_or_new(app, caller, user).await?;
    reserve(app, queue, caller, job, user, voice).await
}

/// The queue a job can be placed on: the deployment has one and a provider to serve it, and the
/// job's lyrics (when it names a draft) are the caller's.
async fn ready_queue<'a>(
    app: &'a (impl Lyrics + JobsQueues + Voices),
    caller: &Caller,
    job: &NewJob,
) -> Result<(&'a JobsQueue, Option<VoiceRef>), SubmitError> {
    let queue = app
        .jobs_queue()
        .ok_or_else(|| StoreError::unavailable("SendMessage", "JOBS_QUEUE_URL is not set"))?;
    if queue.providers == 0 {
        return Err(SubmitError::NoProvider);
    }
    if let Some(lyrics) = &job.lyrics_id {
        if app.lyrics().entry(&caller.id, lyrics).await?.is_none() {
            return Err(SubmitError::NoSuchLyrics);
        }
    }
    let voice = match &job.voice_id {
        Some(id) => {
            let voice = crate::voices::usable(app, &caller.id, id).await?;
            let model_key = voice.model_key.ok_or(crate::voices::VoiceError::NotReady(
                son1k_domain::voices::Status::Training.as_str(),
            ))?;
            Some(VoiceRef {
                voice_id: voice.voice_id,
                model_key,
            })
        }
        None => None,
    };
    Ok((queue, voice))
}

/// Decides and reserves the job's unit from `user` as it last was (the clock read on every
/// attempt), then stores and queues the job; a parallel copy's reservation is waited for instead.
async fn reserve(
    app: &(impl Time + Users + Analytics + Lyrics + Jobs + AudioBucket + RequestBudgets),
    queue: &JobsQueue,
    caller: &Caller,
    job: &NewJob,
    user: UserRecord,
    voice: Option<VoiceRef>,
) -> Result<SubmitOutcome, SubmitError> {
    let id = &job.generation_id;
    let mut spends = SpendLoop::new(app, "submit", user);
    while let Some((_, now)) = spends.next() {
        let user = spends.user();
        if let Some(held) = user.reservations.get(id.as_str()) {
            match await_original(app, queue, caller, id, held).await? {
                Waited::Answered(outcome) => return Ok(outcome),
                Waited::GaveUp(current) => {
                    spends.changed(current);
                    continue;
                }
            }
        }
        // The request budget, from the bucket as read; taken in the reservation's own update.
        let rate = crate::rate::step(app, user, now)?;
        let credit = user.next_credit(now);
        let grant = match decide_with_credit(&user.usage(now), credit, Some(job.quality), now) {
            Ok(grant) => grant,
            Err(refusal) => {
                crate::metering::count_limit_hit(app, caller, &refusal, &rate, now).await;
                return Err(SubmitError::Refused(refusal));
            }
        };
        audio_fits(user, &grant, job)?;
        let mut reservation = Reservation::new(grant.period_key.clone(), grant.tier.is_paid(), now);
        reservation.credit = grant.credit.clone();
        let jobs = app.jobs();
        match jobs
            .reserve(user, &grant, id, &reservation, &rate, now)
            .await?
        {
            Spend::Spent(after) => {
                let used = after.used_in(&grant.period_key);
                let mut grant = grant.settled(used, after.paid_generations_total);
                let mut record = job_record(caller, job, &grant, &reservation, now, voice.clone());
                record.alerts = crate::alerts::generation_alerts(&after, &grant, now);
                // The answer's `remaining` counts the credits left, as the limits answer does.
                grant.remaining = grant
                    .remaining
                    .saturating_add(son1k_domain::credits::balance(&after.credits, now));
                return place(app, queue, caller, job, &record, &grant).await;
            }
            Spend::Stale(Some(current)) => spends.changed(current),
            Spend::Stale(None) => {
                return Err(StoreError::corrupt("the user vanished while submitting").into())
            }
            Spend::Busy => spends.busy().await,
        }
    }
    Err(spends.exhausted().into())
}

/// The provider is paid whatever happens to its audio: a job whose audio may not fit the owner's
/// storage is refused before anything is spent (the worker still checks the real size).
fn audio_fits(user: &UserRecord, grant: &Grant, job: &NewJob) -> Result<(), SubmitError> {
    let requested_bytes = job.quality.max_audio_bytes(job.duration_seconds);
    let limit = grant.tier.spec().storage_bytes;
    match limit
        .filter(|_| !son1k_domain::storage::fits(user.storage_used_bytes, requested_bytes, limit))
    {
        Some(limit_bytes) => Err(SubmitError::StorageFull(
            son1k_domain::storage::QuotaExceeded {
                limit_bytes,
                used_bytes: user.storage_used_bytes,
                requested_bytes,
            },
        )),
        None => Ok(()),
    }
}

/// The job of a submission whose unit `grant` reserved.
fn job_record(
    caller: &Caller,
    job: &NewJob,
    grant: &Grant,
    reservation: &Reservation,
    now: DateTime<Utc>,
    voice: Option<VoiceRef>,
) -> JobRecord {
    JobRecord {
        pk: generation_pk(&job.generation_id),
        sk: JOB_SK.to_owned(),
        generation_id: job.generation_id.clone(),
        owner_id: caller.id.clone(),
        status: JobStatus::Queued,
        prompt: job.prompt.clone(),
        genre: job.genre.clone(),
        title: job.title.clone(),
        quality: job.quality,
        duration_seconds: job.duration_seconds,
        tier: grant.tier,
        // A generation in a cloned voice is never shared with the pool.
        contributes: grant.contributes && voice.is_none(),
        credit: reservation.credit.clone(),
        period_key: grant.period_key.clone(),
        reserved_until: reservation.until,
        expires_at: (now + son1k_store::jobs::JOB_KEPT).timestamp(),
        created_at: now,
        started_at: None,
        finished_at: None,
        provider: None,
        error: None,
        lease_id: None,
        lease_until: None,
        provider_calls: 0,
        audio: None,
        alerts: Vec::new(),
        voice,
    }
}

/// Stores the job whose unit is reserved and queues it. If the id has a job already (made by an
/// earlier submission whose reservation is over), the new reservation is given back and that job
/// answers.
async fn place(
    app: &(impl Time + Lyrics + Jobs + AudioBucket),
    queue: &JobsQueue,
    caller: &Caller,
    job: &NewJob,
    record: &JobRecord,
    grant: &Grant,
) -> Result<SubmitOutcome, SubmitError> {
    if let Some(existing) = app.jobs().put(record).await? {
        give_back(
            app,
            &caller.id,
            &record.generation_id,
            &record.reservation(),
        )
        .await?;
        return existing_job(app, queue, caller, existing).await;
    }
    queue
        .send(&JobMessage {
            generation_id: job.generation_id.clone(),
            owner_id: caller.id.clone(),
        })
        .await?;
    mark_lyrics(app, caller, job).await;
    Ok(SubmitOutcome::Queued(Submitted {
        generation_id: job.generation_id.clone(),
        status: JobStatus::Queued,
        used: grant.used_after,
        remaining: grant.remaining,
        reset_at: rfc3339(grant.reset_at),
    }))
}

/// Gives back the unit `reservation` holds for the job `id` on `owner`'s item, unless that very
/// reservation is gone (asked again while another transaction holds the item).
async fn give_back(
    app: &(impl Jobs + Time),
    owner: &UserId,
    id: &GenerationId,
    reservation: &Reservation,
) -> Result<(), StoreError> {
    retry::until_done(
        "UpdateItem give back generation",
        GIVE_BACK_ATTEMPTS,
        // The clock read on each try: a credit goes back only to a block that still pays.
        || async move {
            let now = app.clock().now();
            app.jobs().give_back(owner, id, reservation, now).await
        },
    )
    .await
}

/// How waiting for a parallel copy's job ended.
enum Waited {
    /// Its job exists: this submission's answer.
    Answered(SubmitOutcome),
    /// It died between its reservation and its job (the reservation is older than any submission
    /// runs, and there is no job): its unit was given back; the user as it now is, to decide again.
    GaveUp(Box<UserRecord>),
}

/// Waits for the parallel submission that reserved `held` for `id` to store its job, reading the job
/// between pauses while that submission may still be running (`INFLIGHT_KEPT` after it reserved).
async fn await_original(
    app: &(impl Time + Users + Jobs + AudioBucket),
    queue: &JobsQueue,
    caller: &Caller,
    id: &GenerationId,
    held: &Reservation,
) -> Result<Waited, SubmitError> {
    for round in 0..AWAIT_ROUNDS {
        if let Some(existing) = app.jobs().get(id).await? {
            return Ok(Waited::Answered(
                existing_job(app, queue, caller, existing).await?,
            ));
        }
        let running_until = held.reserved_at() * 1000 + INFLIGHT_KEPT.num_milliseconds();
        if app.clock().now().timestamp_millis() >= running_until {
            give_back(app, &caller.id, id, held).await?;
            let user = app
                .users()
                .get(&caller.id)
                .await?
                .ok_or_else(|| StoreError::corrupt("the user vanished while submitting"))?;
            return Ok(Waited::GaveUp(Box::new(user)));
        }
        retry::pause(round).await;
    }
    Err(SubmitError::BudgetSpent {
        attempts: AWAIT_ROUNDS,
    })
}

/// Marks the draft the job sings as turned into a song (what Pixel suggests from). A failure is
/// logged: the generation is queued whatever happens to the mark.
async fn mark_lyrics(app: &impl Lyrics, caller: &Caller, job: &NewJob) {
    let Some(lyrics) = &job.lyrics_id else {
        return;
    };
    if let Err(err) = app
        .lyrics()
        .mark_used(&caller.id, lyrics, &job.generation_id)
        .await
    {
        tracing::error!(error = %err, lyrics_id = %lyrics, "the lyrics could not be marked as used");
    }
}

async fn existing_job(
    app: &(impl Time + AudioBucket),
    queue: &JobsQueue,
    caller: &Caller,
    job: JobRecord,
) -> Result<SubmitOutcome, SubmitError> {
    if job.owner_id != caller.id {
        return Err(SubmitError::IdTaken);
    }
    let view = view(app, &job).await?;
    if view.status == JobStatus::Queued {
        queue
            .send(&JobMessage {
                generation_id: job.generation_id.clone(),
                owner_id: job.owner_id.clone(),
            })
            .await?;
    }
    Ok(SubmitOutcome::Existing(view))
}

/// The status of a job as its owner or an admin sees it; `None` for anyone else, and when there
/// is no such job.
pub async fn status(
    app: &(impl Time + Jobs + AudioBucket + Audit),
    caller: &Caller,
    id: &GenerationId,
    via: Via<'_>,
) -> Result<Option<JobView>, StoreError> {
    match app.jobs().get(id).await? {
        Some(job) if job.owner_id == caller.id || caller.is_admin() => {
            audit::admin_read(app, caller, via, &job.owner_id, &format!("generation {id}")).await?;
            Ok(Some(view(app, &job).await?))
        }
        _ => Ok(None),
    }
}

async fn view(app: &(impl Time + AudioBucket), job: &JobRecord) -> Result<JobView, StoreError> {
    let now = app.clock().now();
    let (status, error) = job.status_at(now);
    let link = match status {
        JobStatus::Succeeded => Some(
            app.audio()
                .presign_get(
                    &audio_key(&job.owner_id, &job.generation_id),
                    now,
                    AUDIO_LINK_SECONDS,
                )
                .await?,
        ),
        _ => None,
    };
    Ok(JobView {
        generation_id: job.generation_id.clone(),
        status,
        provider: job.provider.clone(),
        error,
        audio_url_expires_at: link.as_ref().map(|l| rfc3339(l.expires_at)),
        audio_url: link.map(|l| l.url),
        created_at: rfc3339(job.created_at),
        finished_at: job.finished_at.map(rfc3339).or_else(|| {
            (status == JobStatus::Failed && !job.status.is_final())
                .then(|| rfc3339(DateTime::from_timestamp(job.reserved_until, 0).unwrap_or(now)))
        }),
    })
}

/// What a worker run did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOutcome {
    /// Nothing left to do for this message (finished now or before, or no such job).
    Done(Option<JobStatus>),
    /// Give the message back to the queue: another run holds the job, or no provider could be
    /// tried yet.
    Retry,
}

pub use crate::providers::Providers;

/// Runs the job of `message`: once, whatever the number of deliveries.
#[tracing::instrument(skip_all, fields(generation_id = %message.generation_id))]
pub async fn work(
    app: &(impl Time + Users + Jobs + ProviderStates + AudioBucket),
    providers: &Providers,
    message: &JobMessage,
) -> Result<WorkOutcome, StoreError> {
    let Some(job) = app
        .jobs()
        .get(&message.generation_id)
        .await?
        .filter(|j| j.owner_id == message.owner_id)
    else {
        tracing::warn!("a message for no job of its owner; dropped");
        return Ok(WorkOutcome::Done(None));
    };
    if job.status.is_final() {
        return Ok(WorkOutcome::Done(Some(job.status)));
    }
    let now = app.clock().now();
    if now.timestamp() >= job.reserved_until {
        release(app, &job, None, JobFailure::TimedOut, None, 0).await?;
        return Ok(WorkOutcome::Done(Some(JobStatus::Failed)));
    }
    let lease_id = ulid::Ulid::generate().to_string();
    let lease_until = (now + LEASE)
        .timestamp_millis()
        .min(job.reserved_until * 1000);
    let Some(job) = app
        .jobs()
        .lease(&job.generation_id, &lease_id, now, lease_until)
        .await?
    else {
        return Ok(WorkOutcome::Retry);
    };
    let mut run = Run {
        app,
        job: &job,
        lease_id: &lease_id,
        calls: 0,
    };
    let outcome = run.go(providers).await;
    if !matches!(outcome, Ok(WorkOutcome::Done(_))) {
        // The calls this run made count towards the job's budget in the runs after it.
        app.jobs()
            .drop_lease(&job.generation_id, &lease_id, run.calls)
            .await;
    }
    outcome
}

/// One worker run holding a job's lease.
struct Run<'a, A> {
    app: &'a A,
    job: &'a JobRecord,
    lease_id: &'a str,
    calls: u32,
}

enum Attempted {
    Stored(ObjectInfo),
    Rejected,
    OutputRefused,
    Failed,
}

/// How a provider call ended, for the provider's state and for the job (logged).
fn call_end(name: &str, result: Result<ObjectInfo, ProviderError>) -> (CallEnd, Attempted) {
    match result {
        Ok(object) => (CallEnd::Success, Attempted::Stored(object)),
        Err(ProviderError::RateLimited(after)) => {
            tracing::warn!(provider = %name, ?after, "provider rate limited; cooling down");
            let ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
            (
                CallEnd::RateLimited { retry_after_ms: ms },
                Attempted::Failed,
            )
        }
        Err(ProviderError::Rejected(why)) => {
            tracing::warn!(provider = %name, why, "provider rejected the request");
            (CallEnd::Refused, Attempted::Rejected)
        }
        Err(ProviderError::OutputRefused(why)) => {
            tracing::error!(provider = %name, why, "the provider's output was refused");
            (CallEnd::Failure, Attempted::OutputRefused)
        }
        Err(err) => {
            tracing::warn!(provider = %name, error = %err, "provider failed; failing over");
            (CallEnd::Failure, Attempted::Failed)
        }
    }
}

/// The providers of one run: their order (weighted at random), those tried, the calls left of the
/// job's budget, since when the run waits, and whether a provider was passed over for lack of time.
struct Pass {
    order: Vec<usize>,
    tried: std::collections::BTreeSet<String>,
    budget: u32,
    waited_since: tokio::time::Instant,
    out_of_time: bool,
}

impl Pass {
    fn new(providers: &Providers, calls_made: u32) -> Self {
        let weights: Vec<u32> = providers.iter().map(|p| p.config().weight).collect();
        Self {
            order: crate::providers::weighted_order(&weights, |n| fastrand::u64(0..n)),
            tried: std::collections::BTreeSet::new(),
            budget: MAX_PROVIDER_CALLS.saturating_sub(calls_made),
            waited_since: tokio::time::Instant::now(),
            out_of_time: false,
        }
    }
}

/// What a round that ended nothing saw: whether it called a provider, and the soonest time
/// (epoch ms) a provider passed over may be called.
#[derive(Default)]
struct Round {
    called: bool,
    soonest: Option<i64>,
}

impl Round {
    fn come_back_at(&mut self, at: i64) {
        self.soonest = Some(self.soonest.map_or(at, |s| s.min(at)));
    }
}

impl<A: Time + Users + Jobs + ProviderStates + AudioBucket> Run<'_, A> {
    async fn go(&mut self, providers: &Providers) -> Result<WorkOutcome, StoreError> {
        let key = audio_key(&self.job.owner_id, &self.job.generation_id);
        if let Some(object) = self.left_by_a_run(&key).await? {
            let provider = object.provider.clone();
            return self
                .commit(object, provider.as_deref().unwrap_or("unknown"))
                .await;
        }
        let mut pass = Pass::new(providers, self.job.provider_calls);
        loop {
            let round = match self.round(providers, &mut pass, &key).await? {
                Ok(ended) => return Ok(ended),
                Err(round) => round,
            };
            if let Some(ended) = self.between_rounds(providers, &pass, round).await? {
                return Ok(ended);
            }
        }
    }

    /// The audio a run that stopped after its upload and before its commit left (to commit it).
    async fn left_by_a_run(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self
            .app
            .audio()
            .head(key)
            .await?
            .filter(|o| o.job.as_deref() == Some(self.job.generation_id.as_str())))
    }

    /// One pass over the providers in `pass`'s order: each not tried yet, with time left for its
    /// call and a slot free, is called until one ends the job (`Ok`); else what the round saw.
    async fn round(
        &mut self,
        providers: &Providers,
        pass: &mut Pass,
        key: &str,
    ) -> Result<Result<WorkOutcome, Round>, StoreError> {
        let mut round = Round::default();
        for index in pass.order.clone() {
            if pass.budget == 0 {
                break;
            }
            let Some(provider) = providers.get(index) else {
                continue;
            };
            let config = provider.config();
            if pass.tried.contains(&config.name) {
                continue;
            }
            if !self.time_for(config) {
                pass.out_of_time = true;
                continue;
            }
            let job = self.job.generation_id.as_str();
            if let Err(why) =
                crate::slots::take(self.app, &config.name, &config.limits(), job).await?
            {
                round.come_back_at(why.until(self.app.clock().now().timestamp_millis()));
                tracing::info!(provider = %config.name, ?why, "provider passed over");
                continue;
            }
            pass.budget -= 1;
            self.calls += 1;
            round.called = true;
            pass.tried.insert(config.name.clone());
            if let Some(ended) = self.ended_by(provider.as_ref(), key).await? {
                return Ok(Ok(ended));
            }
        }
        Ok(Err(round))
    }

    /// Whether the lease leaves `config`'s provider the time of a whole call.
    fn time_for(&self, config: &ProviderConfig) -> bool {
        let lease_until = self
            .job
            .lease_until
            .unwrap_or(self.job.reserved_until * 1000);
        let left_ms = lease_until - self.app.clock().now().timestamp_millis();
        left_ms > i64::try_from(config.timeout_seconds * 1000).unwrap_or(i64::MAX)
    }

    /// Calls `provider`; the job's end when the call decides it (stored, or refused for good).
    async fn ended_by(
        &self,
        provider: &dyn MusicProvider,
        key: &str,
    ) -> Result<Option<WorkOutcome>, StoreError> {
        let name = provider.config().name.clone();
        Ok(Some(match self.attempt(provider, key).await? {
            Attempted::Stored(object) => self.commit(object, &name).await?,
            Attempted::Rejected => {
                self.release(JobFailure::ProviderRejected, Some(&name))
                    .await?
            }
            Attempted::OutputRefused => {
                self.release(JobFailure::ProviderOutputRefused, Some(&name))
                    .await?
            }
            Attempted::Failed => return Ok(None),
        }))
    }

    /// After a round that ended nothing: fail the job when no call is left to make, else wait for
    /// the soonest provider (within `WAIT_FOR_PROVIDER`, else the message comes back later).
    async fn between_rounds(
        &self,
        providers: &Providers,
        pass: &Pass,
        round: Round,
    ) -> Result<Option<WorkOutcome>, StoreError> {
        let everyone_tried = providers
            .iter()
            .all(|p| pass.tried.contains(&p.config().name));
        if pass.budget == 0 || everyone_tried {
            return Ok(Some(
                self.release(JobFailure::NoProviderAvailable, None).await?,
            ));
        }
        let now_ms = self.app.clock().now().timestamp_millis();
        match round.soonest {
            Some(at) if !round.called || at > now_ms => {
                let wait = Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0));
                if pass.waited_since.elapsed() + wait > WAIT_FOR_PROVIDER {
                    return Ok(Some(WorkOutcome::Retry));
                }
                tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
                Ok(None)
            }
            Some(_) => Ok(None),
            None if pass.out_of_time && !round.called => {
                Ok(Some(self.release(JobFailure::TimedOut, None).await?))
            }
            None => Ok(Some(
                self.release(JobFailure::NoProviderAvailable, None).await?,
            )),
        }
    }

    /// One call of `provider` with its audio streamed into S3 at `key`, and the provider's state
    /// updated with how the call ended.
    async fn attempt(
        &self,
        provider: &dyn MusicProvider,
        key: &str,
    ) -> Result<Attempted, StoreError> {
        let name = provider.config().name.clone();
        let job_id = self.job.generation_id.as_str();
        let request = GenerationRequest {
            generation_id: job_id.to_owned(),
            prompt: self.job.prompt.clone(),
            quality: self.job.quality,
            duration_seconds: self.job.duration_seconds,
            voice: self.job.voice.clone(),
        };
        let result = match provider.generate(&request).await {
            Ok(audio) => self.store(audio, key, &name).await?,
            Err(err) => Err(err),
        };
        let (end, attempted) = call_end(&name, result);
        crate::slots::end(self.app, &name, job_id, end).await?;
        Ok(attempted)
    }

    /// Streams `audio` into S3 at `key`; the provider's failure when its stream breaks (the upload
    /// is aborted), a store failure when S3 does.
    async fn store(
        &self,
        mut audio: Audio,
        key: &str,
        provider: &str,
    ) -> Result<Result<ObjectInfo, ProviderError>, StoreError> {
        let job_id = self.job.generation_id.as_str();
        let mut upload = self
            .app
            .audio()
            .upload(key, &audio.content_type, job_id, provider);
        let streamed = async {
            while let Some(chunk) = audio.chunk().await? {
                upload
                    .write(&chunk)
                    .await
                    .map_err(|e| ProviderError::Failed(format!("storing the audio: {e}")))?;
            }
            Ok::<_, ProviderError>(())
        }
        .await;
        match streamed {
            Ok(()) => upload.finish().await.map(Ok),
            Err(err) => {
                upload.abort().await;
                Ok(Err(err))
            }
        }
    }

    async fn release(
        &self,
        failure: JobFailure,
        provider: Option<&str>,
    ) -> Result<WorkOutcome, StoreError> {
        release(
            self.app,
            self.job,
            Some(self.lease_id),
            failure,
            provider,
            self.calls,
        )
        .await
    }

    /// Records the stored audio as the job's generation, or fails the job when it cannot be (the
    /// reservation expired, the quota is full): then the audio is deleted.
    async fn commit(&self, object: ObjectInfo, provider: &str) -> Result<WorkOutcome, StoreError> {
        let job = self.job;
        let mut fired = Fired::default();
        let mut attempt = 0;
        while attempt < COMMIT_ATTEMPTS {
            let now = self.app.clock().now();
            let user = self
                .app
                .users()
                .get(&job.owner_id)
                .await?
                .ok_or_else(|| StoreError::corrupt("a job of a user who does not exist"))?;
            let max_storage_before = match commit_allowed(&user, job, &object, now) {
                Ok(max) => max,
                Err(failure) => {
                    let key = audio_key(&job.owner_id, &job.generation_id);
                    self.app.audio().delete(&key).await?;
                    return self.release(failure, Some(provider)).await;
                }
            };
            let audio = stored_audio(&object, now);
            let (alerts, storage_within) = commit_alerts(&user, job, object.size_bytes, now);
            let alerts = alerts.without(&fired);
            let outcome = self
                .write_commit(
                    &user,
                    &audio,
                    (max_storage_before, storage_within),
                    &alerts,
                    provider,
                    now,
                )
                .await?;
            match outcome {
                FinishOutcome::Done => {
                    let size = object.size_bytes;
                    tracing::info!(provider, size, "generation job succeeded");
                    return Ok(WorkOutcome::Done(Some(JobStatus::Succeeded)));
                }
                FinishOutcome::LeaseLost => return Ok(WorkOutcome::Done(None)),
                FinishOutcome::GenerationExists => {
                    return self
                        .release(JobFailure::GenerationIdTaken, Some(provider))
                        .await
                }
                // Thresholds that fired before: commit without them, at once.
                FinishOutcome::AlertsFired(more) => {
                    fired.add(more);
                    continue;
                }
                // Read the owner again: the reservation may be gone or the quota full, or another
                // transaction held an item.
                FinishOutcome::UserChanged => retry::pause(attempt).await,
            }
            attempt += 1;
        }
        Err(StoreError::unavailable(
            "TransactWriteItems commit",
            "its items stayed in other transactions",
        ))
    }

    /// The commit's transaction: the generation, its contribution when it makes one, the counts,
    /// the alerts. `storage`: the most the owner may have stored before, and the range its storage
    /// must lie in for the alerts to be the ones decided.
    async fn write_commit(
        &self,
        user: &UserRecord,
        audio: &StoredAudio,
        storage: (Option<u64>, Option<(u64, u64)>),
        alerts: &AlertWrites,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<FinishOutcome, StoreError> {
        let job = self.job;
        let contribution = job.contributes.then(|| contribution(user, job, now));
        let generation = generation_record(user, job, audio, contribution.as_ref(), now)?;
        let tally = tally(user, job, contribution.as_ref(), now);
        let write = CommitWrite {
            job,
            lease_id: self.lease_id,
            user,
            generation: &generation,
            audio,
            max_storage_before: storage.0,
            contribution: contribution.as_ref(),
            tally: &tally,
            alerts,
            storage_within: storage.1,
            provider,
            now,
        };
        self.app.jobs().commit(&write, self.calls).await
    }
}

/// The alerts a job's commit writes: those its reservation fired (the pace one unless the owner's
/// period had its pace alert meanwhile) and the storage threshold its audio crosses, with the range
/// the owner's storage must lie in for that crossing to hold.
fn commit_alerts(
    user: &UserRecord,
    job: &JobRecord,
    size: u64,
    now: DateTime<Utc>,
) -> (AlertWrites, Option<(u64, u64)>) {
    let paced = user.pace_alerted.as_deref() == Some(job.period_key.as_str());
    let mut alerts: Vec<Alert> = job
        .alerts
        .iter()
        .filter(|a| !(paced && a.kind == AlertKind::Pace))
        .cloned()
        .collect();
    let (storage, within) = crate::alerts::of_storage(user, size, now);
    alerts.extend(storage);
    (AlertWrites::for_user(user, alerts, now), within)
}

/// Whether `user` allows the commit of `job`'s audio `object` at `now`: the job's reservation
/// still holds, and the audio fits the storage quota. The most the owner may have stored before it
/// (`None`: any), or why the job fails.
fn commit_allowed(
    user: &UserRecord,
    job: &JobRecord,
    object: &ObjectInfo,
    now: DateTime<Utc>,
) -> Result<Option<u64>, JobFailure> {
    let holds = user
        .reservations
        .get(job.generation_id.as_str())
        .is_some_and(|r| r.active(now) && r.until == job.reserved_until);
    if !holds {
        return Err(JobFailure::TimedOut);
    }
    let limit = user.entitlement(now).tier.spec().storage_bytes;
    match most_used_for(object.size_bytes, limit) {
        UsedAtMost::Any => Ok(None),
        UsedAtMost::Bytes(most) if user.storage_used_bytes <= most => Ok(Some(most)),
        UsedAtMost::Bytes(_) | UsedAtMost::Nothing => Err(JobFailure::StorageQuotaExceeded),
    }
}

/// The job's audio as stored in S3, as the generation records it.
fn stored_audio(object: &ObjectInfo, now: DateTime<Utc>) -> StoredAudio {
    StoredAudio {
        etag: object.etag.clone(),
        size_bytes: object.size_bytes,
        content_type: son1k_domain::storage::AudioType::parse(
            object.content_type.as_deref().unwrap_or("audio/wav"),
        )
        .unwrap_or(son1k_domain::storage::AudioType::Wav),
        stored_at: now,
        key: None,
    }
}

/// Tries of a commit: each lost one read the owner again (the commit conditions only on the job's
/// own reservation and the storage quota, so it loses only to another transaction on its items).
const COMMIT_ATTEMPTS: u32 = 12;

/// Fails `job` and gives its unit back, unless the failure is its audio not fitting the owner's
/// storage: a provider was paid for it, so the unit stays spent.
async fn release(
    app: &(impl Time + Jobs),
    job: &JobRecord,
    lease_id: Option<&str>,
    failure: JobFailure,
    provider: Option<&str>,
    calls: u32,
) -> Result<WorkOutcome, StoreError> {
    let end = JobEnd {
        status: JobStatus::Failed,
        failure: Some(failure),
        provider,
        audio: None,
        calls,
        now: app.clock().now(),
    };
    let spent = failure == JobFailure::StorageQuotaExceeded;
    let outcome = app.jobs().fail(job, lease_id, &end).await?;
    if outcome == FinishOutcome::Done {
        // The job is failed; its unit goes back, unless the provider was paid for audio that
        // cannot be kept (the owner's storage is full). If this never happens, the reservation
        // stops counting when it expires.
        if spent {
            retry::until_done(
                "UpdateItem keep a failed job spent",
                GIVE_BACK_ATTEMPTS,
                || async move { app.jobs().keep_spent(job).await },
            )
            .await?;
        } else {
            give_back(app, &job.owner_id, &job.generation_id, &job.reservation()).await?;
        }
    }
    match outcome {
        FinishOutcome::Done => {
            tracing::info!(error = failure.as_str(), spent, "generation job failed");
            Ok(WorkOutcome::Done(Some(JobStatus::Failed)))
        }
        _ => Ok(WorkOutcome::Done(None)),
    }
}

fn contribution(user: &UserRecord, job: &JobRecord, now: DateTime<Utc>) -> ContributionRecord {
    ContributionRecord::new(
        user,
        &job.generation_id,
        job.genre.as_deref(),
        job.title.as_deref(),
        job.quality,
        points(job.quality),
        now,
    )
    .listed()
}

fn tally(
    user: &UserRecord,
    job: &JobRecord,
    contribution: Option<&ContributionRecord>,
    now: DateTime<Utc>,
) -> Tally {
    crate::metering::generation_tally(
        &user.user_id,
        &job.generation_id,
        (job.quality, job.tier),
        (Some("job"), job.credit.as_deref()),
        contribution,
        now,
    )
    .prefer(job.genre.as_deref())
}

/// The generation a job records: the GEN item record-generation would write, its audio stored.
fn generation_record(
    user: &UserRecord,
    job: &JobRecord,
    audio: &StoredAudio,
    contribution: Option<&ContributionRecord>,
    now: DateTime<Utc>,
) -> Result<GenerationRecord, StoreError> {
    let usage = user.usage(now);
    let spec = usage.entitlement.tier.spec();
    let same_period = usage.entitlement.period.key() == job.period_key;
    // Spending the reservation leaves the period's total as it is.
    let used = if same_period { usage.used } else { 0 };
    let body = RecordedGeneration {
        generation_id: job.generation_id.clone(),
        recorded: true,
        used,
        remaining: spec
            .generations
            .saturating_sub(used)
            .saturating_add(son1k_domain::credits::balance(&user.credits, now)),
        reset_at: rfc3339(usage.entitlement.period.end),
        pool_contribution: contribution.map(|c| PoolContribution {
            contribution_id: c.contribution_id.clone(),
            points: c.points,
        }),
        credit_block_id: None,
    };
    Ok(GenerationRecord {
        pk: generation_pk(&job.generation_id),
        sk: GEN_SK.to_owned(),
        generation_id: job.generation_id.clone(),
        owner_id: user.user_id.clone(),
        quality: job.quality,
        tier: job.tier,
        genre: job.genre.clone(),
        title: job.title.clone(),
        prompt: Some(job.prompt.clone()),
        duration_seconds: Some(job.duration_seconds),
        period_key: job.period_key.clone(),
        recorded_at: now,
        response: serde_json::to_string(&body).map_err(StoreError::invalid_request)?,
        contribution_id: contribution.map(|c| c.contribution_id.clone()),
        audio_state: AudioState::Stored,
        upload: None,
        audio: Some(audio.clone()),
        voice_id: job.voice.as_ref().map(|v| v.voice_id.clone()),
    })
}
