//! Audio storage use cases: a presigned upload within the tier's storage quota, accounting an object
//! S3 reported (at least once), and a short-lived link to stored audio.

use crate::audit::{self, Via};
use crate::caller::Caller;
use crate::ports::{AudioBucket, Audit, Generations, Housekeeping, Pool, Time, Uploads, Users};
use son1k_domain::ids::GenerationId;
use son1k_domain::storage::{
    fits, most_used_for, parse_audio_key, AudioKey, AudioType, QuotaExceeded, UploadId, UsedAtMost,
    AUDIO_LINK_SECONDS, UPLOAD_LINK_SECONDS,
};
use son1k_store::alerts::AlertWrites;
use son1k_store::audio::{ObjectInfo, Presigned};
use son1k_store::generations::{AudioState, GenerationRecord, StoredAudio, UploadGrant};
use son1k_store::uploads::{AccountOutcome, AccountWrite};
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

/// Attempts at accounting one object before the event is failed (and redelivered).
const ACCOUNT_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Not the caller's generation, or nothing stored: never says which.
    #[error("no such generation or audio")]
    NotFound,
    #[error("storage quota exceeded")]
    QuotaExceeded(QuotaExceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The caller's own generation, or `NotFound` whoever else's it is.
async fn own_generation(
    app: &impl Generations,
    caller: &Caller,
    id: &GenerationId,
) -> Result<GenerationRecord, StorageError> {
    app.generations()
        .get(id)
        .await?
        .filter(|g| g.owner_id == caller.id)
        .ok_or(StorageError::NotFound)
}

/// A presigned PUT for the caller's generation, if `size_bytes` fits what remains of the quota
/// (the object it would replace freed first).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %id))]
pub async fn issue_upload(
    app: &(impl Time + Users + Generations + AudioBucket + Uploads),
    caller: &Caller,
    id: &GenerationId,
    content_type: AudioType,
    size_bytes: u64,
) -> Result<Presigned, StorageError> {
    let generation = own_generation(app, caller, id).await?;
    let now = app.clock().now();
    // Whoever owns a generation exists: it was created by the request that recorded it.
    let user = app
        .users()
        .get(&caller.id)
        .await?
        .ok_or(StorageError::NotFound)?;
    let limit = user.entitlement(now).tier.spec().storage_bytes;
    let replaced = generation.audio.as_ref().map_or(0, |a| a.size_bytes);
    let used = user.storage_used_bytes.saturating_sub(replaced);
    if let Some(limit_bytes) = limit.filter(|_| !fits(used, size_bytes, limit)) {
        return Err(StorageError::QuotaExceeded(QuotaExceeded {
            limit_bytes,
            used_bytes: user.storage_used_bytes,
            requested_bytes: size_bytes,
        }));
    }
    let grant = UploadGrant {
        content_type,
        size_bytes,
        granted_at: now,
        upload_id: Some(UploadId::new()),
    };
    let key = grant.key(&caller.id, id);
    app.uploads().grant(&generation, &grant, &key).await?;
    Ok(app
        .audio()
        .presign_put(&key, content_type, size_bytes, now, UPLOAD_LINK_SECONDS)
        .await?)
}

/// A presigned GET of the generation's stored audio, for its owner, an admin, or a user who claimed
/// it from the pool. In the seconds between an upload's PUT and its accounting the owner (or an
/// admin) is served the uploaded object all the same: while a grant is recent and not yet
/// accounted, one HeadObject looks for it, and an object that is exactly what was granted is served.
pub async fn audio_link(
    app: &(impl Time + Generations + Pool + AudioBucket + Audit),
    caller: &Caller,
    id: &GenerationId,
    via: Via<'_>,
) -> Result<Presigned, StorageError> {
    let generation = app
        .generations()
        .get(id)
        .await?
        .ok_or(StorageError::NotFound)?;
    let now = app.clock().now();
    let owner_or_admin = generation.owner_id == caller.id || caller.is_admin();
    let key = match generation.audio.as_ref() {
        Some(audio) if generation.audio_state == AudioState::Stored => {
            let allowed = owner_or_admin
                || match &generation.contribution_id {
                    Some(contribution) => app.pool().has_claimed(&caller.id, contribution).await?,
                    None => false,
                };
            if !allowed {
                return Err(StorageError::NotFound);
            }
            let accounted = audio.object_key(&generation.owner_id, id);
            // A replacement not yet accounted is the owner's newest audio.
            let newer = match owner_or_admin {
                true => arrived_upload(app, &generation, Some(&accounted), now).await?,
                false => None,
            };
            newer.unwrap_or(accounted)
        }
        _ if owner_or_admin => arrived_upload(app, &generation, None, now)
            .await?
            .ok_or(StorageError::NotFound)?,
        _ => return Err(StorageError::NotFound),
    };
    audit::admin_read(
        app,
        caller,
        via,
        &generation.owner_id,
        &format!("audio {id}"),
    )
    .await?;
    Ok(app
        .audio()
        .presign_get(&key, now, AUDIO_LINK_SECONDS)
        .await?)
}

/// How long after a grant its upload may still be waiting for its accounting: the link's life and
/// a minute for S3's event.
const UNACCOUNTED_WINDOW_SECONDS: i64 = UPLOAD_LINK_SECONDS as i64 + 60;

/// The key of an upload that S3 has and the generation does not show yet (its grant recent, its
/// key not the accounted one, the object exactly as granted); `None` without a HeadObject outside
/// that window.
async fn arrived_upload(
    app: &impl AudioBucket,
    generation: &GenerationRecord,
    accounted: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, StorageError> {
    let Some(grant) = generation.upload.as_ref().filter(|g| {
        g.upload_id.is_some()
            && now < g.granted_at + chrono::Duration::seconds(UNACCOUNTED_WINDOW_SECONDS)
    }) else {
        return Ok(None);
    };
    let key = grant.key(&generation.owner_id, &generation.generation_id);
    if accounted == Some(key.as_str()) {
        return Ok(None);
    }
    let arrived = app.audio().head(&key).await?.is_some_and(|o| {
        o.size_bytes == grant.size_bytes
            && o.content_type.as_deref() == Some(grant.content_type.as_str())
    });
    Ok(arrived.then_some(key))
}

/// What became of one reported object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Accounted {
    Stored,
    /// This object (key and ETag) was counted before.
    Duplicate,
    /// Deleted: over the quota, or not what was presigned.
    Rejected,
    /// Not an audio key of ours, no such generation, or the object is gone already.
    Ignored,
}

/// Accounts the object under `key` as S3 has it now (at-least-once safe). An upload under its own
/// key (`upload_key`) must be the generation's current grant, of its exact size and type; once it is
/// counted, the object it replaces is deleted (every version), so S3 holds what is counted.
#[tracing::instrument(skip_all, fields(key = %key))]
pub async fn account_object(
    app: &(impl Time + Users + Generations + Pool + AudioBucket + Uploads),
    key: &str,
) -> Result<Accounted, StorageError> {
    let Some(named) = parse_audio_key(key) else {
        tracing::warn!("an object outside audio/<user>/<generation>[/<upload>]; left alone");
        return Ok(Accounted::Ignored);
    };
    let Some(object) = app.audio().head(key).await? else {
        return Ok(Accounted::Ignored);
    };
    if named.upload.is_none() && object.job.as_deref() == Some(named.generation.as_str()) {
        // Written by the generation worker, which accounts for it in its commit.
        return Ok(Accounted::Ignored);
    }
    for _ in 0..ACCOUNT_ATTEMPTS {
        if let Some(accounted) = account_once(app, key, &named, &object).await? {
            return Ok(accounted);
        }
    }
    Err(StoreError::unavailable("account audio", "the generation kept changing").into())
}

/// One attempt at accounting `object` (at `key`, named `named`) from its generation and owner as
/// they are now; `None` when the generation changed meanwhile (then read it again).
async fn account_once(
    app: &(impl Time + Users + Generations + Pool + AudioBucket + Uploads),
    key: &str,
    named: &AudioKey,
    object: &ObjectInfo,
) -> Result<Option<Accounted>, StorageError> {
    let (owner, own_key) = (&named.owner, named.upload.is_some());
    let Some(generation) = app
        .generations()
        .get(&named.generation)
        .await?
        .filter(|g| g.owner_id == *owner)
    else {
        app.audio().delete(key).await?;
        return Ok(Some(Accounted::Ignored));
    };
    let current = generation.audio.as_ref();
    let previous_key = current.map(|a| a.object_key(owner, &named.generation));
    if previous_key.as_deref() == Some(key) && current.is_some_and(|a| a.etag == object.etag) {
        return Ok(Some(Accounted::Duplicate));
    }
    let granted = generation.upload.as_ref().filter(|g| {
        g.upload_id == named.upload
            && g.size_bytes == object.size_bytes
            && object.content_type.as_deref() == Some(g.content_type.as_str())
    });
    let Some(grant) = granted else {
        tracing::warn!(
            size = object.size_bytes,
            "object differs from its presigned upload, or is not the current one"
        );
        return reject(app, key, &generation, own_key).await.map(Some);
    };
    let now = app.clock().now();
    let owner = app
        .users()
        .get(&generation.owner_id)
        .await?
        .ok_or_else(|| StoreError::corrupt("an upload for a user who does not exist"))?;
    let Some(max_used_before) = room_for(&owner, &generation, object, now) else {
        return reject(app, key, &generation, own_key).await.map(Some);
    };
    let audio = StoredAudio {
        etag: object.etag.clone(),
        size_bytes: object.size_bytes,
        content_type: grant.content_type,
        stored_at: now,
        key: own_key.then(|| key.to_owned()),
    };
    let previous = generation.audio.as_ref().map_or(0, |a| a.size_bytes);
    let (alert, within) =
        crate::alerts::of_storage(&owner, object.size_bytes.saturating_sub(previous), now);
    let mut alerts = AlertWrites::for_user(&owner, alert, now);
    loop {
        match write_account(app, &generation, &audio, (max_used_before, within), &alerts).await? {
            AccountOutcome::Stored => {
                delete_replaced(app, previous_key.filter(|k| k != key)).await;
                return Ok(Some(Accounted::Stored));
            }
            AccountOutcome::OverQuota => {
                return reject(app, key, &generation, own_key).await.map(Some)
            }
            AccountOutcome::Changed => return Ok(None),
            // Thresholds that fired before: account without them.
            AccountOutcome::AlertsFired(fired) => alerts = alerts.without(&fired),
        }
    }
}

/// How much `owner` may have stored before `object` replaces the generation's audio for it to
/// fit (`Some(None)`: any amount); `None` when it cannot fit at all.
fn room_for(
    owner: &UserRecord,
    generation: &GenerationRecord,
    object: &ObjectInfo,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Option<u64>> {
    let limit = owner.entitlement(now).tier.spec().storage_bytes;
    let previous = generation.audio.as_ref().map_or(0, |a| a.size_bytes);
    let added = object.size_bytes.saturating_sub(previous);
    match most_used_for(added, limit) {
        UsedAtMost::Any => Some(None),
        UsedAtMost::Bytes(most) => Some(Some(most)),
        UsedAtMost::Nothing => None,
    }
}

/// The accounting's transaction: the audio on the generation, the owner's storage (at most the
/// first of `storage` before, within the second), the pool listing when the generation is a
/// contribution, the alerts.
async fn write_account(
    app: &(impl Pool + Uploads),
    generation: &GenerationRecord,
    audio: &StoredAudio,
    (max_used_before, storage_within): (Option<u64>, Option<(u64, u64)>),
    alerts: &AlertWrites,
) -> Result<AccountOutcome, StoreError> {
    let contribution = match &generation.contribution_id {
        Some(id) => app.pool().contribution(id).await?,
        None => None,
    };
    let write = AccountWrite {
        generation,
        audio,
        max_used_before,
        contribution: contribution.as_ref(),
        alerts,
        storage_within,
    };
    app.uploads().account(&write).await
}

/// The object an accounted one replaced, counted no more: its bytes go too. A failure leaves them
/// to the noncurrent-version expiry at worst; the accounting stands.
async fn delete_replaced(app: &impl AudioBucket, replaced: Option<String>) {
    if let Some(replaced) = replaced {
        if let Err(err) = app.audio().delete(&replaced).await {
            tracing::error!(replaced, error = %err, "a replaced object was not deleted");
        }
    }
}

/// Deletes the object (every version of it). An upload under its own key replaced nothing: the
/// generation keeps the audio it had, and is marked rejected only when it had none. An object under
/// the generation's one key replaced what was there: the generation is marked rejected, giving back
/// the replaced object's space.
async fn reject(
    app: &(impl AudioBucket + Uploads),
    key: &str,
    generation: &GenerationRecord,
    own_key: bool,
) -> Result<Accounted, StorageError> {
    app.audio().delete(key).await?;
    if own_key && generation.audio.is_some() {
        return Ok(Accounted::Rejected);
    }
    match app.uploads().reject(generation).await? {
        AccountOutcome::Changed => {
            tracing::warn!("the generation changed while its object was rejected");
        }
        AccountOutcome::Stored | AccountOutcome::OverQuota | AccountOutcome::AlertsFired(_) => {}
    }
    Ok(Accounted::Rejected)
}

/// What a reconciliation of upload grants did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReconcileReport {
    /// Granted uploads looked at.
    pub checked: u64,
    /// Objects accounted now: their S3 event never led to an accounting (lost, or failed for good).
    pub stored: u64,
    /// Objects deleted now (over the quota, or not what was presigned).
    pub rejected: u64,
    /// Already accounted, never uploaded, or not ours: nothing to do.
    pub unchanged: u64,
    /// Keys whose accounting failed (each logged); the next run looks again while the grant is recent.
    pub failed: u64,
    /// Whether every grant of the days was seen (false: the time budget ran out, or a page failed).
    pub complete: bool,
}

/// Accounts again, as storage-events would, every object granted an upload on `days` (UTC days,
/// `YYYY-MM-DD`), found through the `uploads_by_day` index page by page until `deadline`. Accounting
/// is idempotent by key and ETag, so an object already counted is `unchanged`; one whose S3 event
/// was lost or failed for good is counted now. No table or bucket is scanned.
pub async fn reconcile_uploads(
    app: &(impl Time + Users + Generations + Pool + AudioBucket + Uploads + Housekeeping),
    days: &[String],
    deadline: std::time::Instant,
) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    for day in days {
        let mut start = None;
        loop {
            if std::time::Instant::now() >= deadline {
                tracing::warn!(?report, "upload reconciliation stopped at its time budget");
                return report;
            }
            let page = match app
                .housekeeping()
                .uploads_granted_on(day, start.take())
                .await
            {
                Ok(page) => page,
                Err(_) => return report,
            };
            for key in &page.keys {
                report.checked += 1;
                match account_object(app, key).await {
                    Ok(Accounted::Stored) => {
                        tracing::warn!(key, "an upload no S3 event had accounted is counted now");
                        report.stored += 1;
                    }
                    Ok(Accounted::Rejected) => report.rejected += 1,
                    Ok(Accounted::Duplicate | Accounted::Ignored) => report.unchanged += 1,
                    Err(err) => {
                        tracing::error!(key, error = %err, "upload not reconciled");
                        report.failed += 1;
                    }
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    report.complete = true;
    report
}
