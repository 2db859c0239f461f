//! The DynamoDB side of audio storage: the upload granted on a generation, and accounting an object
//! S3 reported (the generation's audio, the owner's `storage_used_bytes` under the quota, the pool
//! listing) in one transaction, or its rejection.

use super::alerts::{AlertWrites, Fired, Marker};
use super::generations::{generation_pk, GenerationRecord, StoredAudio, UploadGrant, GEN_SK};
use super::pool::{contribution_pk, genre_partition, ALL_LISTED, META_SK};
use super::users::{user_pk, PROFILE_SK};
use super::{item_key, sdk_failure, StoreError, Transacted, Transaction};
use crate::Names;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

/// An object to account: the generation as read, the new audio, and the quota.
#[derive(Debug, Clone)]
pub struct AccountWrite<'a> {
    pub generation: &'a GenerationRecord,
    pub audio: &'a StoredAudio,
    /// `Some(max)`: the owner's `storage_used_bytes` must be at most `max` before the change (the
    /// limit minus what this object adds); `None`: unlimited, or the object frees space.
    pub max_used_before: Option<u64>,
    /// The pool contribution to list, when the generation is one.
    pub contribution: Option<&'a super::pool::ContributionRecord>,
    /// The alerts the object's bytes fire, written with it.
    pub alerts: &'a AlertWrites,
    /// The owner's `storage_used_bytes` must lie in `[from, to)`: the range within which the bytes
    /// cross the thresholds the alerts were decided with.
    pub storage_within: Option<(u64, u64)>,
}

/// What DynamoDB did with an accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOutcome {
    Stored,
    /// The generation's audio or the owner's storage changed since they were read: read them again.
    Changed,
    /// The owner's storage would pass the quota.
    OverQuota,
    /// Thresholds among the alerts had fired before: nothing was written; account without them.
    AlertsFired(Fired),
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The `upload_day` of a grant at `at`: its UTC day, `YYYY-MM-DD`.
pub fn upload_day(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Access to upload grants and audio accounting.
#[derive(Debug, Clone, Copy)]
pub struct UploadsStore<'a> {
    client: &'a Client,
    names: &'a Names,
}

impl<'a> UploadsStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    /// Records the upload granted on `generation` (owned by its owner, as read), to object `key`.
    pub async fn grant(
        &self,
        generation: &GenerationRecord,
        grant: &UploadGrant,
        key: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.names.stats_table)
            .set_key(Some(item_key(
                generation_pk(&generation.generation_id),
                GEN_SK,
            )))
            // The day and the key put it in `uploads_by_day` for the daily reconciliation.
            .update_expression("SET upload = :grant, upload_day = :day, upload_key = :key")
            .condition_expression("owner_id = :owner")
            .expression_attribute_values(
                ":grant",
                serde_dynamo::to_attribute_value(grant).map_err(StoreError::invalid_request)?,
            )
            .expression_attribute_values(":day", s(&upload_day(grant.granted_at)))
            .expression_attribute_values(":key", s(key))
            .expression_attribute_values(":owner", s(generation.owner_id.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| sdk_failure("UpdateItem generation upload", err))
    }

    /// Stores `write.audio` on the generation, adds the difference to the owner's storage under the
    /// quota and lists the pool contribution — all or nothing. Conditioned on the generation's audio
    /// being what was read, so a duplicate or racing event cannot count an object twice.
    pub async fn account(&self, write: &AccountWrite<'_>) -> Result<AccountOutcome, StoreError> {
        let generation = write.generation;
        let previous = generation.audio.as_ref();
        let delta =
            i128::from(write.audio.size_bytes) - i128::from(previous.map_or(0, |a| a.size_bytes));
        let mut items = Transaction::new("TransactWriteItems audio");
        items.push(
            AccountItem::Audio,
            self.set_audio(generation, Some(write.audio))?,
        );
        items.push(
            AccountItem::Owner,
            self.add_storage(
                generation,
                delta,
                write.max_used_before,
                write.storage_within,
            )?,
        );
        if let Some(contribution) = write.contribution {
            let (recent, quality) = contribution.ranks();
            let mut update = Update::builder()
                .table_name(&self.names.pool_table)
                .set_key(Some(item_key(
                    contribution_pk(&contribution.contribution_id),
                    META_SK,
                )))
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":all", s(ALL_LISTED))
                .expression_attribute_values(":recent", n(recent))
                .expression_attribute_values(":quality", n(quality))
                .expression_attribute_values(":zero", n(0));
            let mut set =
                "SET listed = :yes, lst = :all, recent_rank = :recent, qual_rank = :quality, \
                           popularity = if_not_exists(popularity, :zero)"
                    .to_owned();
            if let Some(genre) = &contribution.genre {
                set.push_str(", lst_genre = :genre");
                update = update.expression_attribute_values(":genre", s(&genre_partition(genre)));
            }
            // The listing serves the audio just counted: an upload's own key, or the worker's.
            match &write.audio.key {
                Some(key) => {
                    set.push_str(", audio_key = :audio_key");
                    update = update.expression_attribute_values(":audio_key", s(key));
                }
                None => set.push_str(" REMOVE audio_key"),
            }
            let update = update
                .update_expression(set)
                .build()
                .map_err(StoreError::invalid_request)?;
            items.push(
                AccountItem::Listing,
                TransactWriteItem::builder().update(update).build(),
            );
        }
        write.alerts.push_to(
            &mut items,
            &self.names.alerts_table,
            AccountItem::Listing,
            AccountItem::Fired,
        )?;
        let transacted = items.send(self.client).await?;
        if let Transacted::Refused(refused) = &transacted {
            let fired = write.alerts.fired(refused, AccountItem::Fired, false);
            if !refused.by(AccountItem::Audio)
                && !refused.by(AccountItem::Owner)
                && !fired.is_empty()
            {
                return Ok(AccountOutcome::AlertsFired(fired));
            }
            if write.storage_within.is_some() && refused.by(AccountItem::Owner) {
                // Over the quota, or only outside the range the alerts were decided in.
                let used = refused
                    .current(AccountItem::Owner)
                    .and_then(|item| item.get("storage_used_bytes"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if write.max_used_before.is_none_or(|max| used <= max) {
                    return Ok(AccountOutcome::Changed);
                }
            }
        }
        let outcome = outcome(transacted)?;
        if outcome == AccountOutcome::Stored {
            write.alerts.log();
        }
        Ok(outcome)
    }

    /// Marks the generation rejected; if it had an object counted (now replaced and deleted), the
    /// owner gets that space back in the same transaction.
    pub async fn reject(
        &self,
        generation: &GenerationRecord,
    ) -> Result<AccountOutcome, StoreError> {
        let mut items = Transaction::new("TransactWriteItems audio rejected");
        items.push(AccountItem::Audio, self.set_audio(generation, None)?);
        if let Some(previous) = &generation.audio {
            items.push(
                AccountItem::Owner,
                self.add_storage(generation, -i128::from(previous.size_bytes), None, None)?,
            );
        }
        outcome(items.send(self.client).await?)
    }

    /// The generation's audio set (stored) or removed (rejected), if it is still as read.
    fn set_audio(
        &self,
        generation: &GenerationRecord,
        audio: Option<&StoredAudio>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.names.stats_table)
            .set_key(Some(item_key(
                generation_pk(&generation.generation_id),
                GEN_SK,
            )))
            .expression_attribute_values(":owner", s(generation.owner_id.as_str()));
        update = match audio {
            Some(audio) => update
                .update_expression("SET audio = :audio, audio_state = :state")
                .expression_attribute_values(
                    ":audio",
                    serde_dynamo::to_attribute_value(audio).map_err(StoreError::invalid_request)?,
                )
                .expression_attribute_values(":state", s("stored")),
            None => update
                .update_expression("SET audio_state = :state REMOVE audio")
                .expression_attribute_values(":state", s("rejected")),
        };
        update = match &generation.audio {
            Some(previous) => update
                .condition_expression("owner_id = :owner AND audio.etag = :prev")
                .expression_attribute_values(":prev", s(&previous.etag)),
            None => {
                update.condition_expression("owner_id = :owner AND attribute_not_exists(audio)")
            }
        };
        let update = update.build().map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// `ADD storage_used_bytes delta` on the owner, at most `max_used_before` before it when given,
    /// and within `[from, to)` when given (the range its alerts were decided in; a refusal answers
    /// the stored item, to tell the two apart).
    fn add_storage(
        &self,
        generation: &GenerationRecord,
        delta: i128,
        max_used_before: Option<u64>,
        within: Option<(u64, u64)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.names.users_table)
            .set_key(Some(item_key(user_pk(&generation.owner_id), PROFILE_SK)))
            .update_expression("ADD storage_used_bytes :delta")
            .expression_attribute_values(":delta", n(delta));
        let mut condition = "attribute_exists(pk)".to_owned();
        if let Some(max) = max_used_before {
            condition.push_str(
                " AND (attribute_not_exists(storage_used_bytes) OR storage_used_bytes <= :max)",
            );
            update = update.expression_attribute_values(":max", n(max));
        }
        if let Some(range) = within {
            let (within, values) = super::alerts::storage_within(range);
            condition.push_str(&within);
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
            update = update.return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        update = update.condition_expression(condition);
        let update = update.build().map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// The items of an accounting's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountItem {
    /// The generation's audio: refused when it is no longer as read.
    Audio,
    /// The owner's storage: refused when the object would pass the quota.
    Owner,
    /// The pool listing of the contribution, the alerts.
    Listing,
    /// A threshold's marker: refused when it fired before.
    Fired(Marker),
}

/// The generation changed: read it again (also when another transaction held an item, which a
/// fresh read and decision get past); the owner refused: over quota.
fn outcome(transacted: Transacted<AccountItem>) -> Result<AccountOutcome, StoreError> {
    Ok(match transacted {
        Transacted::Committed => AccountOutcome::Stored,
        Transacted::Refused(refused) if refused.by(AccountItem::Audio) => AccountOutcome::Changed,
        Transacted::Refused(refused) if refused.by(AccountItem::Owner) => AccountOutcome::OverQuota,
        Transacted::Refused(_) | Transacted::Busy => AccountOutcome::Changed,
    })
}
