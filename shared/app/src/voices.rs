//! Cloned voices: creation (tier limits, five an hour), the upload links, the recordings as they
//! arrive in S3 (container, duration, storage quota, the consent record), submission to the GPU
//! worker through the voice jobs queue, the worker's results (applied once each) and deletion
//! (every object version, the worker's copy, the storage given back).

use crate::audit::{self, Via};
use crate::caller::Caller;
use crate::ports::{AudioBucket, Audit, Time, Users, VoiceJobs, Voices};
use crate::retry;
use chrono::{DateTime, Duration, Utc};
use son1k_domain::ids::{UserId, VoiceId};
use son1k_domain::voices::{
    self as rules, Change, ConsentRef, Current, Failure, FailureCode, JobKind, Outcome, SampleRef,
    Slot, Status, VoiceJob, VoiceResult,
};
use son1k_store::alerts::AlertWrites;
use son1k_store::audio::Presigned;
use son1k_store::voices::{Account, Accounted, Applied, Create, Recording, VoiceRecord};
use son1k_store::{Attempt, StoreError};

/// Attempts of a write whose item other requests hold (a transaction conflict), and re-reads
/// after a condition lost to another request: each such loss means another request changed the
/// item (took a creation slot, stored a recording), so the re-read decides on new facts.
const ATTEMPTS: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("voice cloning is not in the tier")]
    NotInTier,
    #[error("the tier's {limit} voices exist")]
    LimitReached { limit: u32 },
    #[error("five voices were created in the last hour")]
    TooManyCreations { retry_after: u64 },
    #[error("no such voice")]
    NotFound,
    #[error("the voice was deleted")]
    Deleted,
    #[error("{0}")]
    SamplesMissing(String),
    #[error("the voice is {0}")]
    NotReady(&'static str),
    #[error("the voice worker's queue is not configured")]
    QueueMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The voice jobs queue (SQS), its client built on the first send.
#[derive(Debug, Clone)]
pub struct VoiceJobsQueue {
    client: std::sync::Arc<std::sync::OnceLock<aws_sdk_sqs::Client>>,
    source: Option<(aws_config::SdkConfig, Option<String>)>,
    url: String,
}

impl VoiceJobsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self {
            client: std::sync::Arc::new(std::sync::OnceLock::from(client)),
            source: None,
            url,
        }
    }

    /// The queue of `VOICE_JOBS_QUEUE_URL`, with the state's SDK settings.
    pub fn from_env(state: &crate::AppState) -> Result<Self, crate::StartError> {
        let url = std::env::var("VOICE_JOBS_QUEUE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or(
                "VOICE_JOBS_QUEUE_URL is not set: the function needs it (template.yaml sets it)",
            )?;
        Ok(Self {
            client: std::sync::Arc::new(std::sync::OnceLock::new()),
            source: Some((state.sdk.clone(), state.endpoints.sqs.clone())),
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn client(&self) -> &aws_sdk_sqs::Client {
        self.client.get_or_init(|| match &self.source {
            Some((sdk, endpoint)) => crate::state::sqs_client(sdk, endpoint.as_deref()),
            None => aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::Config::builder().build()),
        })
    }

    pub async fn send(&self, job: &VoiceJob) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(StoreError::invalid_request)?;
        self.client()
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                StoreError::unavailable(
                    "SendMessage voice job",
                    aws_sdk_sqs::error::DisplayErrorContext(&err).to_string(),
                )
            })
    }
}

/// A new voice and where its recordings go.
#[derive(Debug)]
pub struct Created {
    pub voice: VoiceRecord,
    pub uploads: Uploads,
}

/// Upload links of the recordings a voice still needs.
#[derive(Debug, Default)]
pub struct Uploads {
    pub consent: Option<Presigned>,
    pub samples: Vec<Presigned>,
}

fn random_code() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|err| StoreError::unavailable("getrandom", err.to_string()))?;
    let code: Vec<char> = bytes
        .iter()
        .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
        .map(|c| char::from(*c))
        .collect();
    let (first, second) = code.split_at(code.len() / 2);
    Ok(format!(
        "{}-{}",
        first.iter().collect::<String>(),
        second.iter().collect::<String>()
    ))
}

/// Creates a voice for the caller: refused on FREE, at the tier's number of voices, and past five
/// creations in an hour. Two calls: the caller's item, then one transaction (the voice, its
/// pointer, the creation slot and the count); parallel creations each decide on what they read and
/// the transaction's conditions keep the limits exact.
pub async fn create(
    app: &(impl Time + Users + Voices + AudioBucket + crate::ports::Accounts),
    caller: &Caller,
    name: String,
    language: Option<String>,
) -> Result<Created, VoiceError> {
    let voice_id =
        VoiceId::parse(&ulid::Ulid::generate().to_string()).map_err(StoreError::corrupt)?;
    let phrase = rules::consent_phrase(&caller.id, &random_code()?);
    for attempt in 0..ATTEMPTS {
        let now = app.clock().now();
        let Some(user) = app.users().get(&caller.id).await? else {
            // No user: a FREE newcomer, or a deleted account's token (401).
            crate::account::refuse_if_closed(app, &caller.id).await?;
            return Err(VoiceError::NotInTier);
        };
        let limit = rules::voice_limit(user.entitlement(now).tier).ok_or(VoiceError::NotInTier)?;
        if user.voices_active >= limit {
            return Err(VoiceError::LimitReached { limit });
        }
        let used = user
            .voice_creations
            .iter()
            .filter_map(|(slot, ms)| Some((slot.clone(), DateTime::from_timestamp_millis(*ms)?)))
            .collect();
        let slot = rules::free_creation_slot(&used, now).map_err(|free_at| {
            VoiceError::TooManyCreations {
                retry_after: u64::try_from(free_at.signed_duration_since(now).num_seconds().max(1))
                    .unwrap_or(1),
            }
        })?;
        let voice = VoiceRecord::new(
            caller.id.clone(),
            voice_id.clone(),
            name.clone(),
            language.clone(),
            phrase.clone(),
            now,
        );
        let write = Create {
            voice: &voice,
            slot: &slot,
            has_creations: !user.voice_creations.is_empty(),
            now_ms: now.timestamp_millis(),
            free_before_ms: (now - Duration::hours(1)).timestamp_millis(),
            limit,
        };
        match app.voices().create(&write).await? {
            Attempt::Done(true) => {
                let uploads = uploads(app, &voice, now).await?;
                tracing::info!(voice = %voice.voice_id, "voice created");
                return Ok(Created { voice, uploads });
            }
            Attempt::Done(false) => continue,
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable("create voice", "its items stayed in other requests").into())
}

/// Links for the recordings the voice still needs while it awaits them: the consent recording of
/// the next attempt and each empty sample slot. Signing is local (no call).
pub async fn uploads(
    app: &impl AudioBucket,
    voice: &VoiceRecord,
    now: DateTime<Utc>,
) -> Result<Uploads, StoreError> {
    let mut uploads = Uploads::default();
    if voice.status != Status::AwaitingSamples {
        return Ok(uploads);
    }
    let link = |slot: Slot| {
        let key = rules::recording_key(&voice.owner_id, &voice.voice_id, slot);
        async move {
            app.audio()
                .presign_put_once(&key, now, rules::UPLOAD_LINK_SECONDS)
                .await
        }
    };
    if voice.consent.is_none() {
        uploads.consent = Some(link(Slot::Consent(voice.attempt + 1)).await?);
    }
    for n in 1..=rules::SAMPLE_SLOTS {
        if !voice.samples.contains_key(&Slot::Sample(n).name()) {
            uploads.samples.push(link(Slot::Sample(n)).await?);
        }
    }
    Ok(uploads)
}

/// The caller's voices (deleted ones left out), newest first. One query.
pub async fn list(
    app: &(impl Voices + crate::ports::Accounts),
    caller: &Caller,
) -> Result<Vec<VoiceRecord>, VoiceError> {
    let voices = app.voices().list(&caller.id).await?;
    if voices.is_empty() {
        crate::account::refuse_if_closed(app, &caller.id).await?;
    }
    Ok(voices
        .into_iter()
        .filter(|v| v.status != Status::Deleted)
        .collect())
}

/// A voice the caller owns (an admin: anyone's, found by its pointer); `NotFound` for another
/// user's or none, `Deleted` for a deleted one.
pub async fn get(
    app: &(impl Voices + Audit + Time),
    caller: &Caller,
    id: &VoiceId,
    via: Via<'_>,
) -> Result<VoiceRecord, VoiceError> {
    let voice = match app.voices().get(&caller.id, id).await? {
        Some(voice) => Some(voice),
        None if caller.is_admin() => match app.voices().owner_of(id).await? {
            Some(owner) => app.voices().get(&owner, id).await?,
            None => None,
        },
        None => None,
    };
    match voice {
        None => Err(VoiceError::NotFound),
        Some(v) if v.status == Status::Deleted => Err(VoiceError::Deleted),
        Some(v) => {
            audit::admin_read(app, caller, via, &v.owner_id, &format!("voice {id}")).await?;
            Ok(v)
        }
    }
}

/// The caller's own ready voice, for a generation: `NotFound` for anyone else's (an admin too),
/// `Deleted`, or `NotReady`. One read.
pub async fn usable(
    app: &impl Voices,
    owner: &UserId,
    id: &VoiceId,
) -> Result<VoiceRecord, VoiceError> {
    match app.voices().get(owner, id).await? {
        None => Err(VoiceError::NotFound),
        Some(v) if v.status == Status::Deleted => Err(VoiceError::Deleted),
        Some(v) if v.status != Status::Ready => Err(VoiceError::NotReady(v.status.as_str())),
        Some(v) => Ok(v),
    }
}

fn verify_job(app: &impl AudioBucket, voice: &VoiceRecord) -> Result<VoiceJob, VoiceError> {
    let consent = voice.consent.as_ref().ok_or_else(|| {
        VoiceError::SamplesMissing("the consent recording has not arrived".into())
    })?;
    Ok(VoiceJob {
        schema: rules::JOB_SCHEMA.to_owned(),
        job_id: format!("{}-{}", voice.voice_id, voice.attempt),
        voice_id: voice.voice_id.clone(),
        owner_id: voice.owner_id.clone(),
        attempt: voice.attempt,
        bucket: app.audio().bucket().to_owned(),
        kind: JobKind::VerifyAndTrain {
            consent: ConsentRef {
                key: consent.key.clone(),
                phrase: voice.consent_phrase.clone(),
            },
            samples: voice
                .samples
                .values()
                .map(|s| SampleRef {
                    key: s.key.clone(),
                    duration_ms: s.duration_ms,
                })
                .collect(),
            models_prefix: rules::models_prefix(&voice.owner_id, &voice.voice_id),
            language: voice.language.clone(),
        },
    })
}

/// Submits the caller's voice for verification: `verifying` once its consent recording and at
/// least 10 s of samples are there (`SamplesMissing` otherwise). Submitting a voice already
/// verifying sends its job again (the worker's results name the attempt, and apply once); one
/// already training or ready answers its status.
pub async fn submit(
    app: &(impl Time + Voices + VoiceJobs + AudioBucket),
    caller: &Caller,
    id: &VoiceId,
) -> Result<Status, VoiceError> {
    let queue = app.voice_jobs().ok_or(VoiceError::QueueMissing)?;
    for attempt in 0..ATTEMPTS {
        let voice = match app.voices().get(&caller.id, id).await? {
            None => return Err(VoiceError::NotFound),
            Some(v) => v,
        };
        match voice.status {
            Status::Deleted => return Err(VoiceError::Deleted),
            Status::Verifying => {
                queue.send(&verify_job(app, &voice)?).await?;
                return Ok(Status::Verifying);
            }
            Status::Training | Status::Ready => return Ok(voice.status),
            Status::Failed => {
                let why = voice.failure.map_or_else(String::new, |f| f.reason);
                return Err(VoiceError::SamplesMissing(format!(
                    "the voice failed ({why}): create a new one"
                )));
            }
            Status::AwaitingSamples => {}
        }
        if let Some(missing) = rules::missing_for_submit(
            voice.consent.is_some(),
            voice.samples_ms,
            voice.samples.len(),
        ) {
            return Err(VoiceError::SamplesMissing(missing));
        }
        match app.voices().submit(&voice, app.clock().now()).await? {
            Attempt::Done(true) => {
                let submitted = VoiceRecord {
                    attempt: voice.attempt + 1,
                    status: Status::Verifying,
                    ..voice
                };
                queue.send(&verify_job(app, &submitted)?).await?;
                tracing::info!(voice = %id, attempt = submitted.attempt, "voice submitted");
                return Ok(Status::Verifying);
            }
            Attempt::Done(false) => continue,
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable("submit voice", "its item stayed in other requests").into())
}

/// Deletes every version of every object of a voice: its recordings and its model.
async fn purge(
    app: &impl AudioBucket,
    owner: &UserId,
    voice: &VoiceId,
) -> Result<usize, StoreError> {
    let recordings = app
        .audio()
        .delete_under(&rules::recordings_prefix(owner, voice))
        .await?;
    let models = app
        .audio()
        .delete_under(&rules::models_prefix(owner, voice))
        .await?;
    Ok(recordings + models)
}

/// Deletes the caller's voice: marked deleted with its storage and its place given back (one
/// transaction), the worker told to delete its copy, and every object version of its recordings
/// and model deleted. Repeating it until the worker has confirmed does all of it again (each step
/// is idempotent); afterwards the voice is `Deleted`.
pub async fn delete(
    app: &(impl Time + Voices + VoiceJobs + AudioBucket),
    caller: &Caller,
    id: &VoiceId,
) -> Result<(), VoiceError> {
    let queue = app.voice_jobs().ok_or(VoiceError::QueueMissing)?;
    let mut deleted = None;
    for attempt in 0..ATTEMPTS {
        let voice = match app.voices().get(&caller.id, id).await? {
            None => return Err(VoiceError::NotFound),
            Some(v) => v,
        };
        if voice.status == Status::Deleted {
            if voice.purged_at.is_some() {
                return Err(VoiceError::Deleted);
            }
            deleted = Some(voice);
            break;
        }
        match app.voices().delete(&voice, app.clock().now()).await? {
            Attempt::Done(true) => {
                deleted = Some(voice);
                break;
            }
            Attempt::Done(false) => continue,
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    let voice = deleted.ok_or_else(|| {
        StoreError::unavailable("delete voice", "its item stayed in other requests")
    })?;
    queue.send(&delete_job(app, &voice)).await?;
    let versions = purge(app, &voice.owner_id, &voice.voice_id).await?;
    tracing::info!(voice = %id, versions, "voice deleted");
    Ok(())
}

/// The worker's job that deletes its copies of `voice` (its model, its cached recordings).
pub(crate) fn delete_job(app: &impl AudioBucket, voice: &VoiceRecord) -> VoiceJob {
    VoiceJob {
        schema: rules::JOB_SCHEMA.to_owned(),
        job_id: format!("{}-delete", voice.voice_id),
        voice_id: voice.voice_id.clone(),
        owner_id: voice.owner_id.clone(),
        attempt: voice.attempt,
        bucket: app.audio().bucket().to_owned(),
        kind: JobKind::Delete,
    }
}

/// What became of an arrived recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    Stored,
    /// Deleted: not a recording a voice is waiting for (unknown key, another attempt's, a deleted
    /// voice's, a slot already filled).
    Discarded,
    /// Deleted, and the voice failed with `sample_invalid`.
    Invalid(String),
}

/// A recording arrived in S3 (`voice-uploads`, on the bucket's `ObjectCreated` under `voices/`):
/// its container and duration read from its first bytes, checked, and counted on the voice and in
/// the owner's storage in one transaction (a consent recording also keeps its consent record with
/// the audio's SHA-256). Anything else is deleted, every version; an invalid recording also fails
/// its voice with the reason.
pub async fn arrived(
    app: &(impl Time + Users + Voices + AudioBucket),
    key: &str,
) -> Result<Arrival, StoreError> {
    let discard = || async {
        app.audio().delete(key).await?;
        Ok(Arrival::Discarded)
    };
    let Some((owner, voice_id, slot)) = rules::parse_recording_key(key) else {
        tracing::warn!(key, "an object under voices/ that is no recording: deleted");
        return discard().await;
    };
    let Some((head, size)) = app.audio().head_bytes(key, rules::PROBE_BYTES).await? else {
        return Ok(Arrival::Discarded);
    };
    let probe = rules::probe(&head, size);
    let sha256 = match (&probe, slot) {
        (Ok(_), Slot::Consent(_)) => app.audio().sha256(key).await?,
        _ => None,
    };
    for attempt in 0..ATTEMPTS {
        let now = app.clock().now();
        let Some(voice) = app.voices().get(&owner, &voice_id).await? else {
            return discard().await;
        };
        let stored = match slot {
            Slot::Consent(_) => voice.consent.as_ref(),
            Slot::Sample(_) => voice.samples.get(&slot.name()),
        };
        if stored.is_some_and(|r| r.key == key) {
            return Ok(Arrival::Stored); // the same event again
        }
        let expected = match slot {
            Slot::Consent(n) => n == voice.attempt + 1,
            Slot::Sample(_) => true,
        };
        if voice.status != Status::AwaitingSamples || stored.is_some() || !expected {
            return discard().await;
        }
        let reason = match &probe {
            Err(reason) => Some(reason.clone()),
            Ok(p)
                if matches!(slot, Slot::Sample(_))
                    && voice.samples_ms + p.duration_ms > rules::MAX_SAMPLES_MS =>
            {
                Some(format!(
                    "the samples would last {} s together; at most {} s are accepted",
                    (voice.samples_ms + p.duration_ms) / 1000,
                    rules::MAX_SAMPLES_MS / 1000
                ))
            }
            Ok(_) => None,
        };
        let reason: String = match (&probe, reason) {
            (Ok(p), None) => {
                let recording = Recording {
                    key: key.to_owned(),
                    bytes: size,
                    container: p.container,
                    duration_ms: p.duration_ms,
                    sha256: sha256.clone(),
                };
                let user =
                    app.users().get(&owner).await?.ok_or_else(|| {
                        StoreError::corrupt("a voice of a user who does not exist")
                    })?;
                let limit = user.entitlement(now).tier.spec().storage_bytes;
                // The storage alerts the bytes fire, decided from the owner as read and written
                // with them (the write is conditioned on the range they were decided in).
                let (alert, within) = crate::alerts::of_storage(&user, size, now);
                let mut alerts = AlertWrites::for_user(&user, alert, now);
                let outcome = loop {
                    let write = Account {
                        voice: &voice,
                        slot,
                        recording: &recording,
                        max_used_before: limit.map(|l| l.saturating_sub(size)),
                        storage_within: within,
                        max_samples_ms: rules::MAX_SAMPLES_MS,
                        alerts: &alerts,
                    };
                    match app.voices().account(&write, now).await? {
                        // Thresholds that fired before: account without them.
                        Attempt::Done(Accounted::AlertsFired(fired)) => {
                            alerts = alerts.without(&fired)
                        }
                        other => break other,
                    }
                };
                match outcome {
                    Attempt::Done(Accounted::Stored) => {
                        tracing::info!(key, bytes = size, "voice recording stored");
                        return Ok(Arrival::Stored);
                    }
                    Attempt::Done(Accounted::OverQuota) => "the storage quota is full".to_owned(),
                    Attempt::Done(Accounted::Changed | Accounted::AlertsFired(_)) => continue,
                    Attempt::Busy => {
                        retry::pause(attempt).await;
                        continue;
                    }
                }
            }
            (_, Some(reason)) => reason,
            (Err(reason), None) => reason.clone(),
        };
        let failure = Failure {
            code: FailureCode::SampleInvalid,
            reason: format!("{}: {reason}", slot.name()),
        };
        match app.voices().fail(&voice, &failure, now).await? {
            Attempt::Done(true) => {
                app.audio().delete(key).await?;
                tracing::info!(key, reason = %failure.reason, "voice recording refused");
                return Ok(Arrival::Invalid(failure.reason));
            }
            Attempt::Done(false) => continue,
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable(
        "voice recording",
        "its voice stayed in other requests",
    ))
}

/// What a worker's result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultApplied {
    Applied(Status),
    /// Applied before (a duplicate), of an earlier attempt, or for a voice past that state.
    Ignored,
}

/// Applies a worker's result to its voice, once: conditioned on the voice's status and attempt
/// as read and on the result's id not being among those applied. A result for a deleted voice
/// deletes whatever the worker wrote meanwhile (every version), and `deleted` records the purge.
pub async fn apply_result(
    app: &(impl Time + Voices + AudioBucket),
    result: &VoiceResult,
) -> Result<ResultApplied, StoreError> {
    for attempt in 0..ATTEMPTS {
        let Some(voice) = app.voices().get(&result.owner_id, &result.voice_id).await? else {
            tracing::warn!(voice = %result.voice_id, "a result for no voice: dropped");
            return Ok(ResultApplied::Ignored);
        };
        if voice.applied.contains(&result.result_id) {
            return Ok(ResultApplied::Ignored);
        }
        if let Outcome::Ready { model_key, .. } = &result.outcome {
            if !model_key.starts_with(&rules::models_prefix(&voice.owner_id, &voice.voice_id)) {
                tracing::error!(voice = %voice.voice_id, model_key, "a model outside the voice's prefix: dropped");
                return Ok(ResultApplied::Ignored);
            }
        }
        if voice.status == Status::Deleted {
            purge(app, &voice.owner_id, &voice.voice_id).await?;
        }
        let current = Current {
            status: voice.status,
            attempt: voice.attempt,
        };
        let (applied, status) = match rules::apply(current, &result.outcome, result.attempt) {
            Change::Stale => return Ok(ResultApplied::Ignored),
            Change::Purged => (Applied::Purged, Status::Deleted),
            Change::To {
                status,
                failure,
                consent_spent,
                model,
            } => (
                Applied::To {
                    status,
                    failure,
                    consent_spent,
                    model_key: model.map(|(key, _)| key),
                },
                status,
            ),
        };
        match app
            .voices()
            .apply(&voice, &result.result_id, &applied, app.clock().now())
            .await?
        {
            Attempt::Done(true) => {
                tracing::info!(voice = %voice.voice_id, status = status.as_str(), "voice result applied");
                return Ok(ResultApplied::Applied(status));
            }
            Attempt::Done(false) => continue,
            Attempt::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable(
        "voice result",
        "its voice stayed in other requests",
    ))
}

/// A result message's body; `None` (logged) for one that is not a result of ours.
pub fn parse_result(body: &str) -> Option<VoiceResult> {
    match serde_json::from_str::<VoiceResult>(body) {
        Ok(result) if result.schema == rules::RESULT_SCHEMA => Some(result),
        Ok(result) => {
            tracing::error!(schema = %result.schema, "a voice result of another schema: dropped");
            None
        }
        Err(err) => {
            tracing::error!(error = %err, "a voice result that does not parse: dropped");
            None
        }
    }
}
