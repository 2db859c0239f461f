//! Lyrics drafts in the stats table. Every version is its own item, `LYR#<id>` / `V#<version>` (ten
//! digits, so the newest sorts last), holding the whole draft and its owner; the owner's list has one
//! entry per draft, `USER#<owner>` / `LYR#<id>` (newest id last: ids are ULIDs). A draft and its entry
//! are written in one transaction; an edit puts the next version only if the edited one is the
//! latest (the next does not exist yet), so two edits of one version cannot both land.

use super::alerts::{AlertWrites, Fired, Marker};
use super::users::user_pk;
use super::{item_key, sdk_failure, Attempt, StoreError, Transacted, Transaction};
use crate::Names;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::clock::rfc3339;
use son1k_domain::ids::{GenerationId, LyricsId, UserId};
use son1k_domain::lyrics::{Draft, Section};

pub fn lyrics_pk(id: &LyricsId) -> String {
    format!("LYR#{id}")
}

pub fn version_sk(version: u32) -> String {
    format!("V#{version:010}")
}

fn entry_sk(id: &LyricsId) -> String {
    format!("LYR#{id}")
}

/// One version of a draft, as stored and as `GET /api/lyrics/{id}` shows it (keys aside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LyricsRecord {
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub pk: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub sk: String,
    pub lyrics_id: LyricsId,
    pub owner_id: UserId,
    pub version: u32,
    pub title: String,
    pub sections: Vec<Section>,
    /// The model that wrote the first version.
    pub model: String,
    pub theme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<String>,
    pub language: String,
    pub created_at: DateTime<Utc>,
    /// When this version was written.
    pub updated_at: DateTime<Utc>,
}

impl LyricsRecord {
    /// The next version: `draft` edited at `now` (its keys are set when it is put).
    pub fn next(&self, draft: Draft, now: DateTime<Utc>) -> Self {
        Self {
            version: self.version + 1,
            title: draft.title,
            sections: draft.sections,
            updated_at: now,
            ..self.clone()
        }
    }
}

/// The body of a draft's answers: the record without its keys, times to the second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LyricsView<'a> {
    pub lyrics_id: &'a LyricsId,
    pub title: &'a str,
    pub sections: &'a [Section],
    pub version: u32,
    pub model: &'a str,
    pub theme: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mood: Option<&'a str>,
    pub language: &'a str,
    pub owner_id: &'a UserId,
    pub created_at: String,
    pub updated_at: String,
}

impl LyricsRecord {
    pub fn view(&self) -> LyricsView<'_> {
        LyricsView {
            lyrics_id: &self.lyrics_id,
            title: &self.title,
            sections: &self.sections,
            version: self.version,
            model: &self.model,
            theme: &self.theme,
            genre: self.genre.as_deref(),
            mood: self.mood.as_deref(),
            language: &self.language,
            owner_id: &self.owner_id,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// A draft in its owner's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LyricsEntry {
    pub pk: String,
    pub sk: String,
    pub lyrics_id: LyricsId,
    pub title: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The generation these lyrics were turned into, once they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<GenerationId>,
}

/// A list entry as `GET /api/lyrics` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryView<'a> {
    pub lyrics_id: &'a LyricsId,
    pub title: &'a str,
    pub version: u32,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<&'a GenerationId>,
}

impl LyricsEntry {
    pub fn view(&self) -> EntryView<'_> {
        EntryView {
            lyrics_id: &self.lyrics_id,
            title: &self.title,
            version: self.version,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            generation_id: self.generation_id.as_ref(),
        }
    }
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq)]
pub enum EditOutcome {
    Saved(Box<LyricsRecord>),
    /// Another edit saved the version after the one edited (or the draft is gone).
    Stale,
}

/// The items of a lyrics transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LyricsItem {
    /// The version: refused when it exists.
    Version,
    /// The owner's list entry, the alerts.
    Entry,
    /// A threshold's marker: refused when it fired before.
    Fired(Marker),
}

/// A page of the owner's list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<LyricsEntry>,
    /// The id to continue after, when there may be more.
    pub next: Option<LyricsId>,
}

#[derive(Debug, Clone, Copy)]
pub struct LyricsStore<'a> {
    client: &'a Client,
    table: &'a str,
    alerts_table: &'a str,
}

impl<'a> LyricsStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self {
            client,
            table: &names.stats_table,
            alerts_table: &names.alerts_table,
        }
    }

    fn new_entry(&self, record: &LyricsRecord) -> LyricsEntry {
        LyricsEntry {
            pk: user_pk(&record.owner_id),
            sk: entry_sk(&record.lyrics_id),
            lyrics_id: record.lyrics_id.clone(),
            title: record.title.clone(),
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
            generation_id: None,
        }
    }

    fn put(&self, record: &LyricsRecord) -> Result<TransactWriteItem, StoreError> {
        let mut record = record.clone();
        record.pk = lyrics_pk(&record.lyrics_id);
        record.sk = version_sk(record.version);
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(
                serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Stores the first version and its list entry, with the alerts its allowance unit fired (one
    /// transaction). `Some(fired)`: thresholds among the alerts had fired before; nothing was
    /// written, store it without them.
    #[tracing::instrument(skip_all, fields(lyrics_id = %record.lyrics_id))]
    pub async fn create(
        &self,
        record: &LyricsRecord,
        alerts: &AlertWrites,
    ) -> Result<Option<Fired>, StoreError> {
        let entry = Put::builder()
            .table_name(self.table)
            .set_item(Some(
                serde_dynamo::to_item(self.new_entry(record))
                    .map_err(StoreError::invalid_request)?,
            ))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems lyrics");
        items.push(LyricsItem::Version, self.put(record)?);
        items.push(
            LyricsItem::Entry,
            TransactWriteItem::builder().put(entry).build(),
        );
        alerts.push_to(
            &mut items,
            self.alerts_table,
            LyricsItem::Entry,
            LyricsItem::Fired,
        )?;
        match items.send(self.client).await? {
            Transacted::Committed => {
                alerts.log();
                Ok(None)
            }
            Transacted::Refused(refused) if !refused.by(LyricsItem::Version) => {
                Ok(Some(alerts.fired(&refused, LyricsItem::Fired, false)))
            }
            // A new ULID cannot be taken, nor its new items be in another transaction.
            Transacted::Refused(_) | Transacted::Busy => Err(StoreError::unavailable(
                "TransactWriteItems lyrics",
                "a new draft's items were refused",
            )),
        }
    }

    /// The latest version of a draft (one consistent query).
    #[tracing::instrument(skip_all, fields(lyrics_id = %id))]
    pub async fn latest(&self, id: &LyricsId) -> Result<Option<LyricsRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", AttributeValue::S(lyrics_pk(id)))
            .expression_attribute_values(":v", AttributeValue::S("V#".into()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("Query lyrics", err))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(StoreError::corrupt)
    }

    /// One version of a draft.
    pub async fn version(
        &self,
        id: &LyricsId,
        version: u32,
    ) -> Result<Option<LyricsRecord>, StoreError> {
        super::get_item(
            self.client,
            self.table,
            item_key(lyrics_pk(id), &version_sk(version)),
            "GetItem lyrics version",
        )
        .await
    }

    /// Saves `draft` as the version after `current` (read by the caller, who checked it is theirs:
    /// a version's owner never changes), unless another edit saved that version first; `Busy` while
    /// another transaction holds its items.
    #[tracing::instrument(skip_all, fields(lyrics_id = %current.lyrics_id))]
    pub async fn edit(
        &self,
        current: &LyricsRecord,
        draft: Draft,
        now: DateTime<Utc>,
    ) -> Result<Attempt<EditOutcome>, StoreError> {
        let next = current.next(draft, now);
        let entry = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(
                user_pk(&current.owner_id),
                &entry_sk(&current.lyrics_id),
            )))
            .update_expression("SET title = :title, version = :version, updated_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":title", AttributeValue::S(next.title.clone()))
            .expression_attribute_values(":version", AttributeValue::N(next.version.to_string()))
            .expression_attribute_values(
                ":at",
                serde_dynamo::to_attribute_value(now).map_err(StoreError::invalid_request)?,
            )
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems lyrics edit");
        items.push(LyricsItem::Version, self.put(&next)?);
        items.push(
            LyricsItem::Entry,
            TransactWriteItem::builder().update(entry).build(),
        );
        Ok(match items.send(self.client).await? {
            Transacted::Committed => Attempt::Done(EditOutcome::Saved(Box::new(next))),
            Transacted::Refused(_) => Attempt::Done(EditOutcome::Stale),
            Transacted::Busy => Attempt::Busy,
        })
    }

    /// A page of `owner`'s drafts, newest first, after `after` (the last id of the page before).
    #[tracing::instrument(skip_all, fields(user_id = %owner))]
    pub async fn list(
        &self,
        owner: &UserId,
        after: Option<&LyricsId>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :lyr)")
            .expression_attribute_values(":pk", AttributeValue::S(user_pk(owner)))
            .expression_attribute_values(":lyr", AttributeValue::S("LYR#".into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true);
        if let Some(after) = after {
            query = query.set_exclusive_start_key(Some(item_key(user_pk(owner), &entry_sk(after))));
        }
        let out = query
            .send()
            .await
            .map_err(|err| sdk_failure("Query lyrics list", err))?;
        let items: Vec<LyricsEntry> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<_, _>>()
            .map_err(StoreError::corrupt)?;
        let next = match out.last_evaluated_key {
            Some(_) => items.last().map(|e| e.lyrics_id.clone()),
            None => None,
        };
        Ok(Page { items, next })
    }

    /// The newest of `owner`'s latest drafts not turned into a generation yet (among the newest 20).
    pub async fn newest_unused(&self, owner: &UserId) -> Result<Option<LyricsEntry>, StoreError> {
        let page = self.list(owner, None, 20).await?;
        Ok(page
            .items
            .into_iter()
            .find(|entry| entry.generation_id.is_none()))
    }

    /// `owner`'s list entry of draft `id` (none for another user's draft).
    pub async fn entry(
        &self,
        owner: &UserId,
        id: &LyricsId,
    ) -> Result<Option<LyricsEntry>, StoreError> {
        super::get_item(
            self.client,
            self.table,
            item_key(user_pk(owner), &entry_sk(id)),
            "GetItem lyrics entry",
        )
        .await
    }

    /// Notes that `owner`'s draft `id` was turned into `generation`; `false` when there is no such
    /// draft of this owner.
    pub async fn mark_used(
        &self,
        owner: &UserId,
        id: &LyricsId,
        generation: &GenerationId,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(owner), &entry_sk(id))))
            .update_expression("SET generation_id = :g")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":g", AttributeValue::S(generation.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_failure("UpdateItem lyrics used", err)),
        }
    }
}
