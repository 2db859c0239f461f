//! Pixel's memory and what it knows of a user's taste, in the stats table:
//! - a conversation's turns, `USER#<owner>` / `CONV#<id>#<ulid>`, one item each, kept 7 days (TTL);
//!   the newest `MEMORY_TURNS` are what Pixel remembers. They live in their owner's partition, so
//!   another user's conversation id finds nothing.
//! - preference counters, `USER#<id>` / `PREFS`: one number per genre (`g#<genre>`), added to in the
//!   same transaction as what the user did (a generation recorded, a pool item liked or claimed).

use super::alerts::{AlertWrites, Fired, Marker};
use super::users::user_pk;
use super::{item_key, sdk_failure, StoreError, Transacted, Transaction};
use crate::Names;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::ids::{ConversationId, UserId};
use std::collections::BTreeMap;

/// How long a turn is remembered.
pub const MEMORY_KEPT: Duration = Duration::days(7);
/// Turns (a message and its reply) remembered per conversation: the newest ones.
pub const MEMORY_TURNS: usize = 8;

pub const PREFS_SK: &str = "PREFS";
const GENRE_PREFIX: &str = "g#";

/// The sort-key prefix of a conversation's turns (ids hold no `#`, so no id's prefix is another's).
fn conversation_prefix(id: &ConversationId) -> String {
    format!("CONV#{id}#")
}

/// One exchange: what the user said and what Pixel answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub message: String,
    pub reply: String,
    pub at: DateTime<Utc>,
}

/// A turn as stored: its own item, so parallel messages of one conversation never conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TurnRecord {
    pk: String,
    sk: String,
    conversation_id: ConversationId,
    #[serde(flatten)]
    turn: Turn,
    /// TTL: `MEMORY_KEPT` after the turn.
    expires_at: i64,
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

/// The items of a remembered turn's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TurnItem {
    /// The turn and the alerts.
    Turn,
    /// A threshold's marker: refused when it fired before.
    Fired(Marker),
}

#[derive(Debug, Clone, Copy)]
pub struct PixelStore<'a> {
    client: &'a Client,
    table: &'a str,
    alerts_table: &'a str,
}

impl<'a> PixelStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self {
            client,
            table: &names.stats_table,
            alerts_table: &names.alerts_table,
        }
    }

    /// The remembered turns of `owner`'s conversation `id` at `now`, oldest first; `None` when it
    /// has none (another user's, forgotten, or never). DynamoDB's TTL deletes expired turns late;
    /// they are treated as gone at once.
    pub async fn memory(
        &self,
        owner: &UserId,
        id: &ConversationId,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Turn>>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :conv)")
            .expression_attribute_values(":pk", AttributeValue::S(user_pk(owner)))
            .expression_attribute_values(":conv", AttributeValue::S(conversation_prefix(id)))
            .scan_index_forward(false)
            .limit(i32::try_from(MEMORY_TURNS).unwrap_or(8))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("Query conversation", err))?;
        let mut turns: Vec<Turn> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(serde_dynamo::from_item::<_, TurnRecord>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::corrupt)?
            .into_iter()
            .filter(|t| now.timestamp() < t.expires_at)
            .map(|t| t.turn)
            .collect();
        turns.reverse();
        Ok((!turns.is_empty()).then_some(turns))
    }

    /// Remembers one turn of `owner`'s conversation `id`, with the alerts its allowance unit fired
    /// (then in one transaction). `Some(fired)`: thresholds among the alerts had fired before;
    /// nothing was written, remember it without them.
    pub async fn remember(
        &self,
        owner: &UserId,
        id: &ConversationId,
        turn: Turn,
        alerts: &AlertWrites,
    ) -> Result<Option<Fired>, StoreError> {
        let record = TurnRecord {
            pk: user_pk(owner),
            sk: format!("{}{}", conversation_prefix(id), ulid::Ulid::generate()),
            conversation_id: id.clone(),
            expires_at: (turn.at + MEMORY_KEPT).timestamp(),
            turn,
        };
        let item = serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?;
        if alerts.is_empty() {
            return self
                .client
                .put_item()
                .table_name(self.table)
                .set_item(Some(item))
                .send()
                .await
                .map(|_| None)
                .map_err(|err| sdk_failure("PutItem conversation turn", err));
        }
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems conversation turn");
        items.push(
            TurnItem::Turn,
            TransactWriteItem::builder().put(put).build(),
        );
        alerts.push_to(
            &mut items,
            self.alerts_table,
            TurnItem::Turn,
            TurnItem::Fired,
        )?;
        match items.send(self.client).await? {
            Transacted::Committed => {
                alerts.log();
                Ok(None)
            }
            Transacted::Refused(refused) => {
                Ok(Some(alerts.fired(&refused, TurnItem::Fired, false)))
            }
            Transacted::Busy => Err(StoreError::unavailable(
                "TransactWriteItems conversation turn",
                "a new turn's items were in another transaction",
            )),
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
