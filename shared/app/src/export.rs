//! Exporting a user's data (`docs/account-data.md`): `POST /api/me/exports` starts one (one at a
//! time, one a day) and queues it; the account worker writes a ZIP under `exports/<user>/` with a
//! `manifest.json` that lists every category, empty ones too, and each audio file with its SHA-256;
//! `GET /api/me/exports/{id}` answers its state and, once ready, a 15-minute link.

use crate::account::AccountJob;
use crate::caller::Caller;
use crate::ports::{AccountJobs, Accounts, AudioBucket, Pool, Time, Users};
use crate::retry;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use son1k_domain::account::{
    export_key, export_refusal, ExportRefusal, ExportStatus, EXPORT_CATEGORIES, EXPORT_KEPT_DAYS,
    EXPORT_LINK_SECONDS,
};
use son1k_domain::ids::UserId;
use son1k_store::account::{ExportRecord, ExportStart};
use son1k_store::schema::{BY_OWNER, BY_USER};
use son1k_store::{Item, StoreError};
use std::io::Write;

/// Tries of a start while the user item changes under it or is in another transaction.
const START_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("an export is being made")]
    InProgress,
    #[error("one export a day")]
    TooSoon { retry_after: u64 },
    #[error("no account queue")]
    QueueMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An export as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportView {
    pub export_id: String,
    pub status: ExportStatus,
    pub requested_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// A 15-minute link to the ZIP, once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url_expires_at: Option<DateTime<Utc>>,
    /// When the ZIP is deleted.
    pub expires_at: DateTime<Utc>,
}

impl ExportView {
    fn of(record: &ExportRecord) -> Self {
        Self {
            export_id: record.export_id.clone(),
            status: record.status,
            requested_at: record.requested_at,
            completed_at: record.completed_at,
            bytes: record.bytes,
            download_url: None,
            download_url_expires_at: None,
            expires_at: record.requested_at + chrono::Duration::days(EXPORT_KEPT_DAYS),
        }
    }
}

/// Starts an export of the caller's data and queues it: refused while one is being made, and within
/// a day of the last one.
pub async fn start(
    app: &(impl Time + Users + Accounts + AccountJobs),
    caller: &Caller,
) -> Result<ExportView, ExportError> {
    for attempt in 0..START_ATTEMPTS {
        let now = app.clock().now();
        let user = app.users().get_or_create(caller.new_user(now)).await?;
        match export_refusal(user.export_at, user.export_running.is_some(), now) {
            Some(ExportRefusal::InProgress) => return Err(ExportError::InProgress),
            Some(ExportRefusal::TooSoon { retry_after }) => {
                return Err(ExportError::TooSoon { retry_after })
            }
            None => {}
        }
        let queue = app.account_jobs().ok_or(ExportError::QueueMissing)?;
        let record = ExportRecord::new(&caller.id, ulid::Ulid::generate().to_string(), now);
        match app.accounts().start_export(&user, &record).await? {
            ExportStart::Started => {
                queue
                    .send(&AccountJob::Export {
                        user_id: caller.id.clone(),
                        export_id: record.export_id.clone(),
                    })
                    .await?;
                tracing::info!(user_id = %caller.id, export_id = %record.export_id, "export started");
                return Ok(ExportView::of(&record));
            }
            ExportStart::Changed => {}
            ExportStart::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable("start export", "the user item stayed in other requests").into())
}

/// The caller's export `id` as it stands (with its link once ready); `None` for none, or once its
/// ZIP has been deleted.
pub async fn view(
    app: &(impl Time + Accounts + AudioBucket),
    caller: &Caller,
    id: &str,
) -> Result<Option<ExportView>, StoreError> {
    let now = app.clock().now();
    let Some(record) = app.accounts().export(&caller.id, id).await? else {
        return Ok(None);
    };
    let mut view = ExportView::of(&record);
    if now >= view.expires_at {
        return Ok(None);
    }
    if let (ExportStatus::Ready, Some(key)) = (record.status, &record.key) {
        let link = app
            .audio()
            .presign_get(key, now, EXPORT_LINK_SECONDS)
            .await?;
        view.download_url = Some(link.url);
        view.download_url_expires_at = Some(link.expires_at);
    }
    Ok(Some(view))
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// An item as JSON, without its table keys.
fn json_of(mut item: Item) -> Result<Value, StoreError> {
    item.remove("pk");
    item.remove("sk");
    item.remove("owner_id");
    serde_dynamo::from_item(item).map_err(StoreError::corrupt)
}

fn json_all(items: Vec<Item>) -> Result<Vec<Value>, StoreError> {
    items.into_iter().map(json_of).collect()
}

/// A temporary file, removed when dropped (a failed export leaves nothing behind).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A ZIP being written to a temporary file (the audio never whole in memory).
struct Archive {
    zip: zip::ZipWriter<std::fs::File>,
    file: TempFile,
}

impl Archive {
    fn create(export_id: &str) -> Result<Self, StoreError> {
        let path = std::env::temp_dir().join(format!("son1k-export-{export_id}.zip"));
        let file = std::fs::File::create(&path).map_err(write_failed)?;
        Ok(Self {
            zip: zip::ZipWriter::new(file),
            file: TempFile(path),
        })
    }

    fn start(&mut self, name: &str) -> Result<(), StoreError> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        self.zip.start_file(name, options).map_err(write_failed)
    }

    fn json(&mut self, name: &str, value: &Value) -> Result<(), StoreError> {
        self.start(name)?;
        let text = serde_json::to_vec_pretty(value).map_err(StoreError::invalid_request)?;
        self.zip.write_all(&text).map_err(write_failed)
    }

    /// Writes the central directory: the file as it is to be uploaded.
    fn finish(self) -> Result<TempFile, StoreError> {
        self.zip.finish().map_err(write_failed)?;
        Ok(self.file)
    }
}

fn write_failed(err: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable("write the export", err.to_string())
}

/// The account worker's export `export_id` of `user`: every category gathered, the ZIP written and
/// uploaded, the export ready. `false` when there is nothing to do (no such export, or it ended).
pub async fn run(
    app: &(impl Time + Users + Accounts + AudioBucket + Pool),
    user: &UserId,
    export_id: &str,
) -> Result<bool, StoreError> {
    let Some(mut record) = app.accounts().export(user, export_id).await? else {
        return Ok(false);
    };
    if record.status != ExportStatus::Running {
        return Ok(false);
    }
    let Some(profile) = app.users().get(user).await? else {
        // The account was deleted meanwhile: nothing to export, and nothing to keep.
        return Ok(false);
    };
    let now = app.clock().now();
    let store = app.accounts();
    let pk = son1k_store::users::user_pk(user);
    let users_partition = store.partition(store.users_table(), &pk).await?;
    let stats_partition = store.partition(store.stats_table(), &pk).await?;
    let of_kind = |items: &[Item], prefix: &str| -> Vec<Item> {
        items
            .iter()
            .filter(|i| string(i, "sk").is_some_and(|sk| sk.starts_with(prefix)))
            .cloned()
            .collect()
    };
    // Generations and their jobs, by the owner index.
    let owned = store
        .indexed(store.stats_table(), BY_OWNER, "owner_id", user)
        .await?;
    let generation_keys: Vec<Item> = owned
        .into_iter()
        .filter(|k| string(k, "pk").is_some_and(|pk| pk.starts_with("GEN#")))
        .collect();
    let generations = store.items(store.stats_table(), &generation_keys).await?;
    let mut contributions = Vec::new();
    for generation in &generations {
        if let Some(id) = string(generation, "contribution_id") {
            if let Some(item) = app.pool().contribution(&id).await? {
                if item.contributor_id == *user {
                    contributions.push(serde_json::to_value(&item).map_err(StoreError::corrupt)?);
                }
            }
        }
    }
    // Lyrics: every version of every draft.
    let mut lyrics = Vec::new();
    for entry in of_kind(&stats_partition, "LYR#") {
        let Some(id) = string(&entry, "sk") else {
            continue;
        };
        let versions = store.partition(store.stats_table(), &id).await?;
        lyrics.push(
            json!({ "lyrics_id": id.trim_start_matches("LYR#"), "versions": json_all(versions)? }),
        );
    }
    // Pixel's conversations still kept (their TTL not passed).
    let conversations: Vec<Item> = of_kind(&stats_partition, "CONV#")
        .into_iter()
        .filter(|i| match i.get("expires_at") {
            Some(AttributeValue::N(n)) => n.parse::<i64>().map_or(true, |t| t > now.timestamp()),
            _ => true,
        })
        .collect();
    let likes: Vec<Value> = store
        .indexed(store.pool_table(), BY_USER, "user_id", user)
        .await?
        .into_iter()
        .filter(|k| string(k, "sk").is_some_and(|sk| sk.starts_with("LIKE#")))
        .filter_map(|k| string(&k, "pk"))
        .map(|pk| json!({ "contribution_id": pk.trim_start_matches("CONTRIB#") }))
        .collect();
    let claims = store
        .partition(store.pool_table(), &son1k_store::pool::claim_pk(user))
        .await?;
    let alerts = store.partition(store.alerts_table(), &pk).await?;
    let alerts = of_kind(&alerts, son1k_store::alerts::ALERT_PREFIX);

    let mut archive = Archive::create(export_id)?;
    let mut audio_files = Vec::new();
    for (key, bytes) in app.audio().list_under(&format!("audio/{user}/")).await? {
        let name = format!("audio/{}", key.rsplit('/').next().unwrap_or("audio"));
        archive.start(&name)?;
        let mut hash = <sha2::Sha256 as sha2::Digest>::new();
        let zip = &mut archive.zip;
        app.audio()
            .read_into(&key, |chunk| {
                sha2::Digest::update(&mut hash, chunk);
                zip.write_all(chunk)
            })
            .await?;
        audio_files.push(json!({
            "file": name,
            "bytes": bytes,
            "sha256": hex::encode(sha2::Digest::finalize(hash)),
        }));
    }
    let data: Vec<(&str, Value)> = vec![
        (
            "profile",
            json!({
                "user_id": profile.user_id,
                "email": profile.email,
                "username": profile.username,
                "avatar_url": profile.avatar_url,
                "created_at": profile.created_at,
                "storage_used_bytes": profile.storage_used_bytes,
                "legal_hold": profile.legal_hold,
            }),
        ),
        (
            "tier_and_subscription",
            json!({
                "tier": profile.tier,
                "tier_source": profile.tier_source,
                "subscription": profile.subscription,
                "stripe_customer_id": profile.stripe_customer_id,
                "trial_offered_at": profile.trial_offered_at,
            }),
        ),
        (
            "usage",
            json!({
                "by_period": profile.usage,
                "paid_generations_total": profile.paid_generations_total,
            }),
        ),
        ("generations", Value::Array(json_all(generations)?)),
        ("audio", Value::Array(audio_files)),
        ("lyrics", Value::Array(lyrics)),
        (
            "pixel_conversations",
            Value::Array(json_all(conversations)?),
        ),
        ("pool_contributions", Value::Array(contributions)),
        ("likes", Value::Array(likes)),
        ("claims", Value::Array(json_all(claims)?)),
        (
            "credits",
            serde_json::to_value(&profile.credits).map_err(StoreError::corrupt)?,
        ),
        (
            "credit_ledger",
            Value::Array(json_all(of_kind(&users_partition, "LEDGER#"))?),
        ),
        ("alerts", Value::Array(json_all(alerts)?)),
        (
            "alert_settings",
            serde_json::to_value(profile.alert_settings.clone().unwrap_or_default())
                .map_err(StoreError::corrupt)?,
        ),
        (
            "voices",
            Value::Array(json_all(of_kind(&users_partition, "VOICE#"))?),
        ),
        (
            "consent_records",
            Value::Array(json_all(of_kind(&users_partition, "CONSENT#"))?),
        ),
    ];
    let mut manifest = Vec::new();
    for category in EXPORT_CATEGORIES {
        let value = data
            .iter()
            .find(|(name, _)| *name == category)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        let items = match &value {
            Value::Array(items) => items.len(),
            Value::Object(map) if category == "credits" => map.len(),
            Value::Null => 0,
            _ => 1,
        };
        let file = format!("{category}.json");
        archive.json(&file, &value)?;
        manifest.push(json!({ "category": category, "file": file, "items": items }));
    }
    let mut head = Map::new();
    head.insert("export_id".into(), json!(export_id));
    head.insert("user_id".into(), json!(user));
    head.insert("created_at".into(), json!(now));
    head.insert("categories".into(), Value::Array(manifest));
    archive.json("manifest.json", &Value::Object(head))?;
    let file = archive.finish()?;
    let key = export_key(user, export_id);
    let mut upload = app
        .audio()
        .upload(&key, "application/zip", export_id, "account-export");
    let mut reader = std::fs::File::open(&file.0).map_err(write_failed)?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buffer).map_err(write_failed)?;
        if n == 0 {
            break;
        }
        upload.write(buffer.get(..n).unwrap_or_default()).await?;
    }
    let stored = upload.finish().await?;
    record.status = ExportStatus::Ready;
    record.completed_at = Some(app.clock().now());
    record.key = Some(key);
    record.bytes = Some(stored.size_bytes);
    app.accounts().finish_export(&record).await?;
    tracing::info!(user_id = %user, export_id, bytes = stored.size_bytes, "export ready");
    Ok(true)
}
