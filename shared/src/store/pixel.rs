//! Pixel's memory and what it knows of a user's taste, in the stats table:
//! - a conversation, `USER#<owner>` / `CONV#<id>`: its last turns, kept 7 days after the last one
//!   (TTL). It lives in its owner's partition, so another user's id finds nothing.
//! - preference counters, `USER#<id>` / `PREFS`: one number per genre (`g#<genre>`), added to in the
//!   same transaction as what the user did (a generation recorded, a pool item liked or claimed).

use super::users::user_pk;
use super::{item_key, sdk_failure, StoreError};
use crate::config::Config;
use crate::domain::ids::{ConversationId, UserId};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a conversation is remembered after its last turn.
pub const MEMORY_KEPT: Duration = Duration::days(7);
/// Turns (a message and its reply) remembered per conversation.
pub const MEMORY_TURNS: usize = 8;

pub const PREFS_SK: &str = "PREFS";
const GENRE_PREFIX: &str = "g#";

fn conversation_sk(id: &ConversationId) -> String {
    format!("CONV#{id}")
}

/// One exchange: what the user said and what Pixel answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub message: String,
    pub reply: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub pk: String,
    pub sk: String,
    pub conversation_id: ConversationId,
    pub owner_id: UserId,
    pub turns: Vec<Turn>,
    /// Bumped by every save: a save is written only over the revision it was read at.
    pub rev: u64,
    pub updated_at: DateTime<Utc>,
    /// TTL: `MEMORY_KEPT` after the last turn.
    pub expires_at: i64,
}

impl ConversationRecord {
    pub fn new(owner: &UserId, id: ConversationId, now: DateTime<Utc>) -> Self {
        Self {
            pk: user_pk(owner),
            sk: conversation_sk(&id),
            conversation_id: id,
            owner_id: owner.clone(),
            turns: Vec::new(),
            rev: 0,
            updated_at: now,
            expires_at: (now + MEMORY_KEPT).timestamp(),
        }
    }

    /// Whether the conversation is still remembered at `now` (DynamoDB's TTL deletes expired items
    /// late; they are treated as gone at once).
    pub fn remembered(&self, now: DateTime<Utc>) -> bool {
        now.timestamp() < self.expires_at
    }

    /// The conversation with one more turn, the oldest ones forgotten past `MEMORY_TURNS`.
    pub fn with_turn(&self, turn: Turn) -> Self {
        let mut turns = self.turns.clone();
        turns.push(turn);
        let excess = turns.len().saturating_sub(MEMORY_TURNS);
        turns.drain(..excess);
        let now = turns.last().map_or(self.updated_at, |t| t.at);
        Self {
            turns,
            rev: self.rev + 1,
            updated_at: now,
            expires_at: (now + MEMORY_KEPT).timestamp(),
            ..self.clone()
        }
    }
}

/// A user's taste: how often each genre came up in what they did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub genres: BTreeMap<String, u64>,
}

impl Preferences {
    /// The genre that came up most (the first by name among equals).
    pub fn favourite_genre(&self) -> Option<&str> {
        let mut best: Option<(&str, u64)> = None;
        for (genre, count) in &self.genres {
            if *count > 0 && best.is_none_or(|(_, b)| *count > b) {
                best = Some((genre, *count));
            }
        }
        best.map(|(genre, _)| genre)
    }
}

/// The transaction item that adds one to `user`'s counter of `genre` (in the stats table).
pub fn preference_item(
    table: &str,
    user: &UserId,
    genre: &str,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(item_key(user_pk(user), PREFS_SK)))
        .update_expression("ADD #g :one")
        .expression_attribute_names("#g", format!("{GENRE_PREFIX}{genre}"))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .map_err(StoreError::invalid_request)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

#[derive(Debug, Clone, Copy)]
pub struct PixelStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> PixelStore<'a> {
    pub fn new(client: &'a Client, config: &'a Config) -> Self {
        Self {
            client,
            table: &config.stats_table,
        }
    }

    /// `owner`'s conversation `id`, if it is still remembered at `now`.
    pub async fn conversation(
        &self,
        owner: &UserId,
        id: &ConversationId,
        now: DateTime<Utc>,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let found: Option<ConversationRecord> = super::get_item(
            self.client,
            self.table,
            item_key(user_pk(owner), &conversation_sk(id)),
            "GetItem conversation",
        )
        .await?;
        Ok(found.filter(|c| c.remembered(now)))
    }

    /// Writes `record` if the stored one is still at `record.rev - 1` (or absent for the first
    /// turn); `false` when another message of the same conversation was saved first.
    pub async fn save(&self, record: &ConversationRecord) -> Result<bool, StoreError> {
        let item = serde_dynamo::to_item(record).map_err(StoreError::invalid_request)?;
        let result = self
            .client
            .put_item()
            .table_name(self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR rev = :prev")
            .expression_attribute_values(
                ":prev",
                AttributeValue::N(record.rev.saturating_sub(1).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_failure("PutItem conversation", err)),
        }
    }

    /// `user`'s preference counters (none yet: empty).
    pub async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PREFS_SK)))
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem preferences", err))?;
        let genres = out
            .item
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, value)| {
                let genre = name.strip_prefix(GENRE_PREFIX)?.to_owned();
                let count = value.as_n().ok()?.parse::<u64>().ok()?;
                Some((genre, count))
            })
            .collect();
        Ok(Preferences { genres })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;

    #[test]
    fn memory_keeps_the_last_turns_for_seven_days_after_the_last() {
        let owner = UserId::parse("u").unwrap();
        let id = ConversationId::parse("c").unwrap();
        let start = at("2026-11-26T10:00:00Z");
        let mut c = ConversationRecord::new(&owner, id, start);
        for i in 0..10 {
            c = c.with_turn(Turn {
                message: format!("m{i}"),
                reply: format!("r{i}"),
                at: start + Duration::minutes(i),
            });
        }
        assert_eq!(c.turns.len(), MEMORY_TURNS);
        assert_eq!(c.turns[0].message, "m2");
        assert_eq!(c.rev, 10);
        let last = start + Duration::minutes(9);
        assert!(c.remembered(last + MEMORY_KEPT - Duration::seconds(1)));
        assert!(!c.remembered(last + MEMORY_KEPT));
    }

    #[test]
    fn the_favourite_genre_is_the_most_frequent() {
        let prefs = Preferences {
            genres: BTreeMap::from([
                ("ambient".into(), 2),
                ("lofi".into(), 5),
                ("rock".into(), 5),
            ]),
        };
        assert_eq!(prefs.favourite_genre(), Some("lofi"));
        assert_eq!(Preferences::default().favourite_genre(), None);
    }
}
