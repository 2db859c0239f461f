//! The audit log (`AuditTable`): one partition, `LOG`, holding the entries (`E#<at ms>#<seq>`,
//! ascending with the chain because instants never go back along it) and the head (`HEAD`). An entry
//! and the head move are items of the audited change's own transaction ([`Link::items`]); nothing
//! here updates or deletes an entry, and the functions that write entries may not delete.

use super::{batch_get, sdk_failure, Attempt, Item, StoreError, Transaction};
use crate::item_key;
use crate::users::{user_pk, UserRecord, PROFILE_SK};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use son1k_domain::audit::{Action, ActionRecord, Actor, Entry, Head};
use son1k_domain::ids::UserId;

const LOG_PK: &str = "LOG";
const HEAD_SK: &str = "HEAD";
const ENTRY_PREFIX: &str = "E#";

fn entry_sk(at_ms: i64, seq: u64) -> String {
    format!("{ENTRY_PREFIX}{at_ms:013}#{seq:012}")
}

/// A place in the log, as the listing's cursor and the range bounds name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub at_ms: i64,
    pub seq: u64,
}

impl Position {
    fn sk(self) -> String {
        entry_sk(self.at_ms, self.seq)
    }

    /// `<at ms>-<seq>`, as a cursor.
    pub fn to_cursor(self) -> String {
        format!("{}-{}", self.at_ms, self.seq)
    }

    pub fn parse_cursor(raw: &str) -> Option<Self> {
        let (at, seq) = raw.split_once('-')?;
        let valid =
            |s: &str| !s.is_empty() && s.len() <= 13 && s.bytes().all(|b| b.is_ascii_digit());
        (valid(at) && valid(seq)).then_some(())?;
        Some(Self {
            at_ms: at.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// An entry as stored: `before` and `after` as JSON text, so the hashed values come back exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryRecord {
    pk: String,
    sk: String,
    id: String,
    seq: u64,
    at: chrono::DateTime<chrono::Utc>,
    actor: Actor,
    action: Action,
    target: UserId,
    before: String,
    after: String,
    request_id: String,
    prev_hash: String,
    hash: String,
}

impl EntryRecord {
    fn of(entry: &Entry) -> Self {
        Self {
            pk: LOG_PK.to_owned(),
            sk: entry_sk(entry.at.timestamp_millis(), entry.seq),
            id: entry.id.clone(),
            seq: entry.seq,
            at: entry.at,
            actor: entry.actor.clone(),
            action: entry.action,
            target: entry.target.clone(),
            before: entry.before.to_string(),
            after: entry.after.to_string(),
            request_id: entry.request_id.clone(),
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        }
    }

    fn entry(self) -> Result<Entry, StoreError> {
        let json = |text: &str| serde_json::from_str(text).map_err(StoreError::corrupt);
        Ok(Entry {
            before: json(&self.before)?,
            after: json(&self.after)?,
            id: self.id,
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            target: self.target,
            request_id: self.request_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeadRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    head: Head,
}

/// An entry linked after the head it was built on: the two items that append it.
#[derive(Debug, Clone)]
pub struct Link {
    pub entry: Entry,
    /// The head the entry follows (its `seq` is the one the head move is conditioned on).
    pub after: Head,
    table: String,
}

/// The items of a transaction that appends an audit entry: the audited change's and the link's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Change,
    Link,
}

impl Link {
    /// Adds the link's items to `transaction` and sends it: `true` when it committed. `false`: an
    /// item's condition failed or another transaction held one (another entry came first, or the
    /// audited item changed): read the head and the item again.
    pub async fn send_with(
        &self,
        client: &Client,
        mut transaction: Transaction<Role>,
    ) -> Result<bool, StoreError> {
        transaction.extend(Role::Link, self.items()?);
        Ok(matches!(
            transaction.send(client).await?,
            super::Transacted::Committed
        ))
    }

    /// The entry's put (only if absent) and the head's move (only if it is still where the entry
    /// was built on): a transaction holding them commits only if no other entry came meanwhile.
    pub fn items(&self) -> Result<[TransactWriteItem; 2], StoreError> {
        let table = self.table.as_str();
        let record = serde_dynamo::to_item(EntryRecord::of(&self.entry))
            .map_err(StoreError::invalid_request)?;
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::invalid_request)?;
        let head = self.entry.as_head();
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(item_key(LOG_PK.to_owned(), HEAD_SK)))
            .update_expression("SET seq = :seq, #hash = :hash, last_id = :id, at_ms = :at")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":seq", AttributeValue::N(head.seq.to_string()))
            .expression_attribute_values(":hash", AttributeValue::S(head.hash))
            .expression_attribute_values(":id", AttributeValue::S(self.entry.id.clone()))
            .expression_attribute_values(":at", AttributeValue::N(head.at_ms.to_string()));
        update = if self.after.seq == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update
                .condition_expression("seq = :was")
                .expression_attribute_values(":was", AttributeValue::N(self.after.seq.to_string()))
        };
        Ok([
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder()
                .update(update.build().map_err(StoreError::invalid_request)?)
                .build(),
        ])
    }
}

/// One page of the log, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Entry>,
    /// Where the next page starts, when there may be more.
    pub next: Option<Position>,
}

/// Which entries a listing or a check covers. Instants are epoch ms, both ends included.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<UserId>,
    pub action: Option<Action>,
    pub target: Option<UserId>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

pub struct AuditStore<'a> {
    client: &'a Client,
    table: &'a str,
    users_table: &'a String,
}

/// The most queries one listing page makes when filters skip entries: a page may come back short,
/// with a cursor to go on.
const PAGE_QUERIES: usize = 4;

impl<'a> AuditStore<'a> {
    pub fn new(client: &'a Client, names: &'a super::Names) -> Self {
        Self {
            client,
            table: &names.audit_table,
            users_table: &names.users_table,
        }
    }

    /// `record` linked after `head` at `now`, with a fresh id.
    pub fn link(
        &self,
        record: ActionRecord,
        head: Head,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Link {
        let entry = Entry::link(record, &head, now, ulid::Ulid::generate().to_string());
        Link {
            entry,
            after: head,
            table: self.table.to_owned(),
        }
    }

    /// Appends `link` alone (an audited read: nothing else changes); `true` when it committed.
    pub async fn append(&self, link: &Link) -> Result<bool, StoreError> {
        link.send_with(
            self.client,
            Transaction::new("TransactWriteItems audit entry"),
        )
        .await
    }

    fn head_key() -> Item {
        item_key(LOG_PK.to_owned(), HEAD_SK)
    }

    /// The head, read consistently ([`Head::empty`] before the first entry).
    pub async fn head(&self) -> Result<Head, StoreError> {
        let record: Option<HeadRecord> = super::get_item(
            self.client,
            self.table,
            Self::head_key(),
            "GetItem audit head",
        )
        .await?;
        Ok(record.map_or_else(Head::empty, |r| r.head))
    }

    /// The head and the user `id` in one consistent `BatchGetItem`: what an audited change of a
    /// user reads before it builds its transaction. `Busy`: DynamoDB left a key unprocessed.
    pub async fn head_and_user(
        &self,
        id: &UserId,
    ) -> Result<Attempt<(Head, Option<UserRecord>)>, StoreError> {
        let table = self.table.to_owned();
        let items = match batch_get(
            self.client,
            "BatchGetItem audit head and user",
            &[
                (&table, Self::head_key()),
                (self.users_table, item_key(user_pk(id), PROFILE_SK)),
            ],
        )
        .await?
        {
            Attempt::Done(items) => items,
            Attempt::Busy => return Ok(Attempt::Busy),
        };
        let mut head = Head::empty();
        let mut user = None;
        for item in items {
            if item.get("pk") == Some(&AttributeValue::S(LOG_PK.to_owned())) {
                head = serde_dynamo::from_item::<_, HeadRecord>(item)
                    .map_err(StoreError::corrupt)?
                    .head;
            } else {
                user = Some(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?);
            }
        }
        Ok(Attempt::Done((head, user)))
    }

    /// A page of entries matching `filter`, newest first, starting after `after`.
    pub async fn list(
        &self,
        filter: &Filter,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut items = Vec::new();
        let mut start = after.map(|p| item_key(LOG_PK.to_owned(), &p.sk()));
        for _ in 0..PAGE_QUERIES {
            let (found, last) = self
                .query(filter, false, start.take(), limit - items.len())
                .await?;
            items.extend(found);
            match last {
                Some(last) if items.len() < limit => start = Some(last),
                Some(last) => {
                    return Ok(Page {
                        next: position(&last),
                        items,
                    })
                }
                None => return Ok(Page { items, next: None }),
            }
        }
        let next = items
            .last()
            .map(|e: &Entry| Position {
                at_ms: e.at.timestamp_millis(),
                seq: e.seq,
            })
            .or_else(|| start.as_ref().and_then(position));
        Ok(Page { items, next })
    }

    /// Every entry from `from_ms` to `to_ms` (epoch ms, included), oldest first.
    pub async fn range(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Entry>, StoreError> {
        let filter = Filter {
            from_ms,
            to_ms,
            ..Filter::default()
        };
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (found, last) = self.query(&filter, true, start, 1000).await?;
            out.extend(found);
            match last {
                Some(last) => start = Some(last),
                None => return Ok(out),
            }
        }
    }

    /// The last entry before `before_ms` (epoch ms), if any.
    pub async fn last_before(&self, before_ms: i64) -> Result<Option<Entry>, StoreError> {
        let filter = Filter {
            to_ms: Some(before_ms - 1),
            ..Filter::default()
        };
        let (mut found, _) = self.query(&filter, false, None, 1).await?;
        Ok(found.pop())
    }

    async fn query(
        &self,
        filter: &Filter,
        ascending: bool,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Entry>, Option<Item>), StoreError> {
        if let (Some(from), Some(to)) = (filter.from_ms, filter.to_ms) {
            // An empty range (a `from` after the newest entry's instant): nothing to ask for.
            if from > to {
                return Ok((Vec::new(), None));
            }
        }
        let low = entry_sk(filter.from_ms.unwrap_or(0).max(0), 0);
        // `~` sorts after every digit: the upper bound takes every seq of its last millisecond.
        let high = match filter.to_ms {
            Some(to) => format!("{ENTRY_PREFIX}{:013}#~", to.max(0)),
            None => format!("{ENTRY_PREFIX}~"),
        };
        let mut query = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", AttributeValue::S(LOG_PK.to_owned()))
            .expression_attribute_values(":low", AttributeValue::S(low))
            .expression_attribute_values(":high", AttributeValue::S(high))
            .scan_index_forward(ascending)
            .consistent_read(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        let mut conditions = Vec::new();
        if let Some(actor) = &filter.actor {
            conditions.push("actor.user_id = :actor");
            query =
                query.expression_attribute_values(":actor", AttributeValue::S(actor.to_string()));
        }
        if let Some(action) = filter.action {
            conditions.push("#action = :action");
            query = query
                .expression_attribute_names("#action", "action")
                .expression_attribute_values(
                    ":action",
                    AttributeValue::S(action.as_str().to_owned()),
                );
        }
        if let Some(target) = &filter.target {
            conditions.push("target = :target");
            query =
                query.expression_attribute_values(":target", AttributeValue::S(target.to_string()));
        }
        if !conditions.is_empty() {
            query = query.filter_expression(conditions.join(" AND "));
        }
        let out = query
            .send()
            .await
            .map_err(|err| sdk_failure("Query audit log", err))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item::<_, EntryRecord>(item)
                    .map_err(StoreError::corrupt)
                    .and_then(EntryRecord::entry)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, out.last_evaluated_key))
    }
}

/// The position a query's last evaluated key names.
fn position(key: &Item) -> Option<Position> {
    let AttributeValue::S(sk) = key.get("sk")? else {
        return None;
    };
    let (at, seq) = sk.strip_prefix(ENTRY_PREFIX)?.split_once('#')?;
    Some(Position {
        at_ms: at.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_positions_and_nothing_else() {
        let p = Position {
            at_ms: 1_800_000_000_123,
            seq: 42,
        };
        assert_eq!(Position::parse_cursor(&p.to_cursor()), Some(p));
        for junk in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-1-1",
            "1 -1",
            "99999999999999-1",
        ] {
            assert_eq!(Position::parse_cursor(junk), None, "{junk}");
        }
        assert!(p.sk() < entry_sk(1_800_000_000_123, 43));
        assert!(p.sk() < entry_sk(1_800_000_000_124, 1));
    }
}
