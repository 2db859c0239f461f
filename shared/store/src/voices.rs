//! Cloned voices in the users table: the voice (`USER#<owner>`, `VOICE#<id>`), a pointer from its
//! id to its owner (`VOICE#<id>`, `OWNER`, for an admin's lookup) and the consent records
//! (`USER#<owner>`, `CONSENT#<voice>#<attempt>`), kept when the voice is deleted. The owner's
//! `voices_active`, `voice_creations` and `storage_used_bytes` change in the same transactions.

use super::users::{user_pk, PROFILE_SK};
use super::{item_key, sdk_failure, Attempt, StoreError, Transacted, Transaction};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::ids::{UserId, VoiceId};
use son1k_domain::voices::{Container, Failure, Slot, Status};
use std::collections::BTreeMap;

pub const OWNER_SK: &str = "OWNER";

pub fn voice_sk(voice: &VoiceId) -> String {
    format!("VOICE#{voice}")
}

fn pointer_pk(voice: &VoiceId) -> String {
    format!("VOICE#{voice}")
}

/// The key of the pointer from `voice` to its owner.
pub fn owner_pointer_key(voice: &VoiceId) -> super::Item {
    item_key(pointer_pk(voice), OWNER_SK)
}

fn consent_sk(voice: &VoiceId, attempt: u32) -> String {
    format!("CONSENT#{voice}#{attempt}")
}

/// A recording of a voice as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub key: String,
    pub bytes: u64,
    pub container: Container,
    pub duration_ms: u64,
    /// SHA-256 of the audio (kept for the consent recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A voice as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceRecord {
    pub pk: String,
    pub sk: String,
    pub voice_id: VoiceId,
    pub owner_id: UserId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub status: Status,
    /// The failure (for `failed`), or the last verification's (awaiting a new consent recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub consent_phrase: String,
    /// Verifications submitted so far; the next consent recording is for `attempt + 1`.
    pub attempt: u32,
    /// The consent recording for the next (or current) verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Recording>,
    /// The samples by slot name (`sample-1` ...).
    #[serde(default)]
    pub samples: BTreeMap<String, Recording>,
    #[serde(default)]
    pub samples_ms: u64,
    /// What the voice's recordings count in the owner's storage.
    #[serde(default)]
    pub storage_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_key: Option<String>,
    /// Ids of the worker's results applied to it (each applies once).
    #[serde(default)]
    pub applied: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the worker confirmed its copies of a deleted voice gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<DateTime<Utc>>,
}

impl VoiceRecord {
    pub fn new(
        owner: UserId,
        voice: VoiceId,
        name: String,
        language: Option<String>,
        consent_phrase: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            pk: user_pk(&owner),
            sk: voice_sk(&voice),
            voice_id: voice,
            owner_id: owner,
            name,
            language,
            status: Status::AwaitingSamples,
            failure: None,
            consent_phrase,
            attempt: 0,
            consent: None,
            samples: BTreeMap::new(),
            samples_ms: 0,
            storage_bytes: 0,
            model_key: None,
            applied: Vec::new(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            purged_at: None,
        }
    }
}

/// The consent given for a voice, kept for audit after the voice is deleted: who, when, the
/// phrase, and a hash of the recording (never the recording).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub pk: String,
    pub sk: String,
    pub owner_id: UserId,
    pub voice_id: VoiceId,
    pub attempt: u32,
    pub phrase: String,
    pub recorded_at: DateTime<Utc>,
    pub audio_sha256: String,
    pub audio_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pointer {
    pk: String,
    sk: String,
    owner_id: UserId,
}

/// A creation: the voice, the owner's creation slot it takes and the limits it is checked against.
#[derive(Debug, Clone)]
pub struct Create<'a> {
    pub voice: &'a VoiceRecord,
    pub slot: &'a str,
    /// Whether the owner's item has `voice_creations` yet.
    pub has_creations: bool,
    pub now_ms: i64,
    /// The slot is free if it was last used at or before this (an hour ago).
    pub free_before_ms: i64,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateItem {
    Owner,
    Voice,
}

/// What happened to an arriving recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounted {
    Stored,
    /// Thresholds among the alerts had fired before: nothing was written; account without them.
    AlertsFired(super::alerts::Fired),
    /// The voice is no longer as read (another recording, a submit, a deletion): read it again.
    Changed,
    /// The owner's storage would pass the quota.
    OverQuota,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountItem {
    Voice,
    Owner,
    Consent,
    Alert,
    Fired(super::alerts::Marker),
}

/// An arrived recording to account: the voice as read, its slot and recording, and the owner's
/// storage conditions and alerts.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub voice: &'a VoiceRecord,
    pub slot: Slot,
    pub recording: &'a Recording,
    /// The owner's `storage_used_bytes` at most this before (the limit minus the bytes; `None`:
    /// unlimited).
    pub max_used_before: Option<u64>,
    /// And within `[from, to)`: the range the alerts' crossing was decided in.
    pub storage_within: Option<(u64, u64)>,
    pub max_samples_ms: u64,
    /// The storage alerts the bytes fire, written with them.
    pub alerts: &'a super::alerts::AlertWrites,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn item<T: Serialize>(
    value: &T,
) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(value).map_err(StoreError::invalid_request)
}

fn attr<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(StoreError::invalid_request)
}

/// Access to voices.
#[derive(Debug, Clone, Copy)]
pub struct VoicesStore<'a> {
    client: &'a Client,
    table: &'a str,
    alerts_table: &'a str,
}

impl<'a> VoicesStore<'a> {
    pub fn new(client: &'a Client, names: &'a crate::Names) -> Self {
        Self {
            client,
            table: &names.users_table,
            alerts_table: &names.alerts_table,
        }
    }

    pub async fn get(
        &self,
        owner: &UserId,
        voice: &VoiceId,
    ) -> Result<Option<VoiceRecord>, StoreError> {
        super::get_item(
            self.client,
            self.table,
            item_key(user_pk(owner), &voice_sk(voice)),
            "GetItem voice",
        )
        .await
    }

    /// The owner of a voice, by its id alone (an admin's lookup).
    pub async fn owner_of(&self, voice: &VoiceId) -> Result<Option<UserId>, StoreError> {
        let pointer: Option<Pointer> = super::get_item(
            self.client,
            self.table,
            item_key(pointer_pk(voice), OWNER_SK),
            "GetItem voice owner",
        )
        .await?;
        Ok(pointer.map(|p| p.owner_id))
    }

    /// The owner's voices, deleted ones included (at most a few hundred: creations are limited).
    pub async fn list(&self, owner: &UserId) -> Result<Vec<VoiceRecord>, StoreError> {
        let mut voices = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :voice)")
                .expression_attribute_values(":pk", s(&user_pk(owner)))
                .expression_attribute_values(":voice", s("VOICE#"))
                .consistent_read(true)
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_failure("Query voices", err))?;
            for item in out.items.unwrap_or_default() {
                voices.push(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(voices);
            }
        }
    }

    /// The owner's consent records.
    pub async fn consents(&self, owner: &UserId) -> Result<Vec<ConsentRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :consent)")
            .expression_attribute_values(":pk", s(&user_pk(owner)))
            .expression_attribute_values(":consent", s("CONSENT#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("Query consents", err))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(StoreError::corrupt))
            .collect()
    }

    /// Creates the voice and its pointer and takes the owner's creation slot and one of their
    /// voices, all or nothing: `Done(true)` created, `Done(false)` the owner's item is no longer as
    /// read (a slot or the last voice taken by a parallel creation: read it again and decide).
    pub async fn create(&self, create: &Create<'_>) -> Result<Attempt<bool>, StoreError> {
        let voice = create.voice;
        let mut owner = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&voice.owner_id), PROFILE_SK)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(create.limit));
        let active = "(attribute_not_exists(voices_active) OR voices_active < :limit)";
        owner = if create.has_creations {
            owner
                .update_expression("SET voice_creations.#slot = :now ADD voices_active :one")
                .expression_attribute_names("#slot", create.slot)
                .condition_expression(format!(
                    "attribute_exists(pk) AND {active} AND (attribute_not_exists(voice_creations.#slot) OR voice_creations.#slot <= :free)"
                ))
                .expression_attribute_values(":now", n(create.now_ms))
                .expression_attribute_values(":free", n(create.free_before_ms))
        } else {
            owner
                .update_expression("SET voice_creations = :slots ADD voices_active :one")
                .condition_expression(format!(
                    "attribute_exists(pk) AND {active} AND attribute_not_exists(voice_creations)"
                ))
                .expression_attribute_values(
                    ":slots",
                    AttributeValue::M([(create.slot.to_owned(), n(create.now_ms))].into()),
                )
        };
        let owner = owner.build().map_err(StoreError::invalid_request)?;
        let pointer = Pointer {
            pk: pointer_pk(&voice.voice_id),
            sk: OWNER_SK.to_owned(),
            owner_id: voice.owner_id.clone(),
        };
        let mut items = Transaction::new("TransactWriteItems voice create");
        items.push(
            CreateItem::Owner,
            TransactWriteItem::builder().update(owner).build(),
        );
        for put in [item(voice)?, item(&pointer)?] {
            let put = Put::builder()
                .table_name(self.table)
                .set_item(Some(put))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::invalid_request)?;
            items.push(
                CreateItem::Voice,
                TransactWriteItem::builder().put(put).build(),
            );
        }
        Ok(match items.send(self.client).await? {
            Transacted::Committed => Attempt::Done(true),
            Transacted::Refused(refused) if refused.by(CreateItem::Voice) => {
                return Err(StoreError::corrupt("a new voice id was taken"))
            }
            Transacted::Refused(_) => Attempt::Done(false),
            Transacted::Busy => Attempt::Busy,
        })
    }

    /// Stores an arrived recording on the voice (while it awaits recordings and the slot is empty,
    /// the samples staying within `max_samples_ms`), adds its bytes to the owner's storage under
    /// the quota (`max_used_before`: the limit minus the bytes; `None`: unlimited) and, for a
    /// consent recording, keeps its consent record.
    pub async fn account(
        &self,
        write: &Account<'_>,
        now: DateTime<Utc>,
    ) -> Result<Attempt<Accounted>, StoreError> {
        let (voice, slot, recording) = (write.voice, write.slot, write.recording);
        let mut update = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(voice.pk.clone(), &voice.sk)))
            .expression_attribute_values(":awaiting", attr(&Status::AwaitingSamples)?)
            .expression_attribute_values(":rec", attr(recording)?)
            .expression_attribute_values(":bytes", n(recording.bytes))
            .expression_attribute_values(":attempt", n(voice.attempt))
            .expression_attribute_values(":now", attr(&now)?);
        let mut items = Transaction::new("TransactWriteItems voice recording");
        update = match slot {
            Slot::Consent(_) => update
                .update_expression("SET consent = :rec, updated_at = :now ADD storage_bytes :bytes")
                .condition_expression(
                    "#status = :awaiting AND attempt = :attempt AND attribute_not_exists(consent)",
                ),
            Slot::Sample(_) => update
                .update_expression(
                    "SET samples.#slot = :rec, updated_at = :now ADD storage_bytes :bytes, samples_ms :ms",
                )
                .condition_expression(
                    "#status = :awaiting AND attempt = :attempt AND attribute_not_exists(samples.#slot) AND samples_ms <= :max_ms",
                )
                .expression_attribute_names("#slot", slot.name())
                .expression_attribute_values(":ms", n(recording.duration_ms))
                .expression_attribute_values(
                    ":max_ms",
                    n(write.max_samples_ms.saturating_sub(recording.duration_ms)),
                ),
        };
        let update = update
            .expression_attribute_names("#status", "status")
            .build()
            .map_err(StoreError::invalid_request)?;
        items.push(
            AccountItem::Voice,
            TransactWriteItem::builder().update(update).build(),
        );
        let mut owner = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&voice.owner_id), PROFILE_SK)))
            .update_expression("ADD storage_used_bytes :bytes")
            .expression_attribute_values(":bytes", n(recording.bytes));
        let mut condition = "attribute_exists(pk)".to_owned();
        if let Some(max) = write.max_used_before {
            condition.push_str(
                " AND (attribute_not_exists(storage_used_bytes) OR storage_used_bytes <= :max)",
            );
            owner = owner.expression_attribute_values(":max", n(max));
        }
        if let Some(range) = write.storage_within {
            let (within, values) = super::alerts::storage_within(range);
            condition.push_str(&within);
            for (name, value) in values {
                owner = owner.expression_attribute_values(name, value);
            }
            owner = owner.return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        items.push(
            AccountItem::Owner,
            TransactWriteItem::builder()
                .update(
                    owner
                        .condition_expression(condition)
                        .build()
                        .map_err(StoreError::invalid_request)?,
                )
                .build(),
        );
        if let (Slot::Consent(attempt), Some(sha256)) = (slot, &recording.sha256) {
            let record = ConsentRecord {
                pk: user_pk(&voice.owner_id),
                sk: consent_sk(&voice.voice_id, attempt),
                owner_id: voice.owner_id.clone(),
                voice_id: voice.voice_id.clone(),
                attempt,
                phrase: voice.consent_phrase.clone(),
                recorded_at: now,
                audio_sha256: sha256.clone(),
                audio_bytes: recording.bytes,
            };
            let put = Put::builder()
                .table_name(self.table)
                .set_item(Some(item(&record)?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::invalid_request)?;
            items.push(
                AccountItem::Consent,
                TransactWriteItem::builder().put(put).build(),
            );
        }
        write.alerts.push_to(
            &mut items,
            self.alerts_table,
            AccountItem::Alert,
            AccountItem::Fired,
        )?;
        Ok(match items.send(self.client).await? {
            Transacted::Committed => {
                write.alerts.log();
                Attempt::Done(Accounted::Stored)
            }
            Transacted::Refused(refused) => {
                let fired = write.alerts.fired(&refused, AccountItem::Fired, false);
                if refused.by(AccountItem::Voice) {
                    Attempt::Done(Accounted::Changed)
                } else if refused.by(AccountItem::Owner) {
                    // Over the quota, or only outside the range the alerts were decided in.
                    let used = refused
                        .current(AccountItem::Owner)
                        .and_then(|item| item.get("storage_used_bytes"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    let over = write.max_used_before.is_some_and(|max| used > max);
                    if write.storage_within.is_some() && !over {
                        Attempt::Done(Accounted::Changed)
                    } else {
                        Attempt::Done(Accounted::OverQuota)
                    }
                } else if !fired.is_empty() {
                    Attempt::Done(Accounted::AlertsFired(fired))
                } else {
                    Attempt::Done(Accounted::Changed)
                }
            }
            Transacted::Busy => Attempt::Busy,
        })
    }

    /// Fails a voice that still awaits recordings, as read (`Done(false)`: it changed).
    pub async fn fail(
        &self,
        voice: &VoiceRecord,
        failure: &Failure,
        now: DateTime<Utc>,
    ) -> Result<Attempt<bool>, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(voice.pk.clone(), &voice.sk)))
            .update_expression("SET #status = :failed, failure = :failure, updated_at = :now")
            .condition_expression("#status = :awaiting AND attempt = :attempt")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", attr(&Status::Failed)?)
            .expression_attribute_values(":awaiting", attr(&Status::AwaitingSamples)?)
            .expression_attribute_values(":failure", attr(failure)?)
            .expression_attribute_values(":attempt", n(voice.attempt))
            .expression_attribute_values(":now", attr(&now)?);
        super::update_once("UpdateItem voice failed", request).await
    }

    /// Submits the voice as read for verification attempt `attempt + 1` (`Done(false)`: it changed).
    pub async fn submit(
        &self,
        voice: &VoiceRecord,
        now: DateTime<Utc>,
    ) -> Result<Attempt<bool>, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(voice.pk.clone(), &voice.sk)))
            .update_expression("SET #status = :verifying, attempt = :next, updated_at = :now")
            .condition_expression(
                "#status = :awaiting AND attempt = :attempt AND attribute_exists(consent)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":verifying", attr(&Status::Verifying)?)
            .expression_attribute_values(":awaiting", attr(&Status::AwaitingSamples)?)
            .expression_attribute_values(":attempt", n(voice.attempt))
            .expression_attribute_values(":next", n(voice.attempt + 1))
            .expression_attribute_values(":now", attr(&now)?);
        super::update_once("UpdateItem voice submitted", request).await
    }

    /// Applies a worker's result `result_id` to the voice as read: its new status (with the
    /// failure, the consent spent, the model) or, for a deleted voice, the purge. Conditioned on
    /// the status and attempt read and on the result not having been applied: `Done(false)` when
    /// either changed (read again: a duplicate is then seen as applied).
    pub async fn apply(
        &self,
        voice: &VoiceRecord,
        result_id: &str,
        change: &Applied,
        now: DateTime<Utc>,
    ) -> Result<Attempt<bool>, StoreError> {
        let mut set = vec![
            "updated_at = :now",
            "applied = list_append(if_not_exists(applied, :empty), :ids)",
        ];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(voice.pk.clone(), &voice.sk)))
            .condition_expression(
                "#status = :was AND attempt = :attempt AND NOT contains(applied, :id)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":was", attr(&voice.status)?)
            .expression_attribute_values(":attempt", n(voice.attempt))
            .expression_attribute_values(":id", s(result_id))
            .expression_attribute_values(":ids", AttributeValue::L(vec![s(result_id)]))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":now", attr(&now)?);
        match change {
            Applied::To {
                status,
                failure,
                consent_spent,
                model_key,
            } => {
                set.push("#status = :status");
                request = request.expression_attribute_values(":status", attr(status)?);
                match failure {
                    Some(failure) => {
                        set.push("failure = :failure");
                        request = request.expression_attribute_values(":failure", attr(failure)?);
                    }
                    None => remove.push("failure"),
                }
                if *consent_spent {
                    remove.push("consent");
                }
                if let Some(key) = model_key {
                    set.push("model_key = :model");
                    request = request.expression_attribute_values(":model", s(key));
                }
            }
            Applied::Purged => set.push("purged_at = :now"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        super::update_once(
            "UpdateItem voice result",
            request.update_expression(expression),
        )
        .await
    }

    /// Marks the voice as read deleted and gives the owner back its storage and its place among
    /// their voices, all or nothing (`Done(false)`: the voice changed; read it again).
    pub async fn delete(
        &self,
        voice: &VoiceRecord,
        now: DateTime<Utc>,
    ) -> Result<Attempt<bool>, StoreError> {
        let mark = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(voice.pk.clone(), &voice.sk)))
            .update_expression(
                "SET #status = :deleted, deleted_at = :now, updated_at = :now, storage_bytes = :zero REMOVE consent, samples, model_key",
            )
            .condition_expression("#status = :was AND storage_bytes = :bytes")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":deleted", attr(&Status::Deleted)?)
            .expression_attribute_values(":was", attr(&voice.status)?)
            .expression_attribute_values(":bytes", n(voice.storage_bytes))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", attr(&now)?)
            .build()
            .map_err(StoreError::invalid_request)?;
        let owner = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&voice.owner_id), PROFILE_SK)))
            .update_expression("ADD storage_used_bytes :freed, voices_active :minus")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":freed", n(-i128::from(voice.storage_bytes)))
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems voice delete");
        items.push(
            CreateItem::Voice,
            TransactWriteItem::builder().update(mark).build(),
        );
        items.push(
            CreateItem::Owner,
            TransactWriteItem::builder().update(owner).build(),
        );
        Ok(match items.send(self.client).await? {
            Transacted::Committed => Attempt::Done(true),
            Transacted::Refused(_) => Attempt::Done(false),
            Transacted::Busy => Attempt::Busy,
        })
    }
}

/// What a worker's result writes (`domain::voices::Change` as stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    To {
        status: Status,
        failure: Option<Failure>,
        consent_spent: bool,
        model_key: Option<String>,
    },
    Purged,
}
