//! Credit blocks and their ledger. The blocks live on the user item (`credits.<block_id>`), so a
//! spend takes a credit in the single-item update that checks the allowance (`generations::spend`);
//! the ledger is one item per change, `USER#<id>` / `LEDGER#<ulid>` in the users table, written in
//! the same transaction as the change it records.

use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, Attempt, StoreError, Transacted, Transaction};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::credits::{Block, LedgerKind};
use son1k_domain::ids::{GenerationId, UserId};
use std::collections::HashMap;

pub const LEDGER_PREFIX: &str = "LEDGER#";

/// One change of a user's credits, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub pk: String,
    pub sk: String,
    /// The entry's id (a ULID: the ledger sorts by it, newest last).
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: LedgerKind,
    pub block_id: String,
    pub generations: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<GenerationId>,
    /// Who granted (an admin's user id), for a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserId>,
    /// Why, for a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LedgerRecord {
    /// An entry of `user`'s ledger at `now`, with a fresh id.
    pub fn new(
        user: &UserId,
        kind: LedgerKind,
        block_id: &str,
        generations: u32,
        now: DateTime<Utc>,
    ) -> Self {
        // Ordered by the clock the change was made at (not the machine's), random within a ms.
        let id = ulid::Ulid::from_parts(
            u64::try_from(now.timestamp_millis()).unwrap_or_default(),
            ulid::Ulid::generate().random(),
        )
        .to_string();
        Self {
            pk: user_pk(user),
            sk: format!("{LEDGER_PREFIX}{id}"),
            id,
            at: now,
            kind,
            block_id: block_id.to_owned(),
            generations,
            generation_id: None,
            actor: None,
            reason: None,
        }
    }

    /// The entry as a put of `table`'s transaction (its id is new: unconditioned).
    pub fn put(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(
                serde_dynamo::to_item(self).map_err(StoreError::invalid_request)?,
            ))
            .build()
            .map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// A page of the ledger, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerPage {
    pub items: Vec<LedgerRecord>,
    /// The id of the last entry when more may follow.
    pub next: Option<String>,
}

/// The items of a grant's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantItem {
    /// The user item gaining the block: refused when the user or its credits changed shape.
    User,
    Ledger,
}

/// Access to credits.
#[derive(Debug, Clone, Copy)]
pub struct CreditsStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> CreditsStore<'a> {
    pub fn new(client: &'a Client, table: &'a str) -> Self {
        Self { client, table }
    }

    /// Adds `block` as `block_id` to `user` (as read) with its ledger entry, all or nothing.
    /// `Done(false)`: the user item changed shape meanwhile (its first block was added by another
    /// request, or the block id is taken): read again and retry. `Busy`: another transaction held
    /// the user item.
    pub async fn add_block(
        &self,
        user: &UserRecord,
        block_id: &str,
        block: &Block,
        entry: &LedgerRecord,
    ) -> Result<Attempt<bool>, StoreError> {
        let value = serde_dynamo::to_attribute_value(block).map_err(StoreError::invalid_request)?;
        let mut update = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
            .expression_attribute_names("#credits", "credits");
        update = if user.credits.is_empty() {
            update
                .update_expression("SET #credits = :credits")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(#credits)")
                .expression_attribute_values(
                    ":credits",
                    AttributeValue::M(HashMap::from([(block_id.to_owned(), value)])),
                )
        } else {
            update
                .update_expression("SET #credits.#block = :block")
                .condition_expression(
                    "attribute_exists(pk) AND attribute_exists(#credits) \
                     AND attribute_not_exists(#credits.#block)",
                )
                .expression_attribute_names("#block", block_id)
                .expression_attribute_values(":block", value)
        };
        let mut items = Transaction::new("TransactWriteItems credit block");
        items.push(
            GrantItem::User,
            TransactWriteItem::builder()
                .update(update.build().map_err(StoreError::invalid_request)?)
                .build(),
        );
        items.push(GrantItem::Ledger, entry.put(self.table)?);
        Ok(match items.send(self.client).await? {
            Transacted::Committed => Attempt::Done(true),
            Transacted::Refused(refused) if refused.by(GrantItem::User) => Attempt::Done(false),
            Transacted::Refused(_) | Transacted::Busy => Attempt::Busy,
        })
    }

    /// A page of `user`'s ledger, newest first, after the entry `after` when given.
    pub async fn ledger(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<LedgerPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :ledger)")
            .expression_attribute_values(":pk", AttributeValue::S(user_pk(user)))
            .expression_attribute_values(":ledger", AttributeValue::S(LEDGER_PREFIX.into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true);
        if let Some(after) = after {
            query = query.set_exclusive_start_key(Some(item_key(
                user_pk(user),
                &format!("{LEDGER_PREFIX}{after}"),
            )));
        }
        let out = query
            .send()
            .await
            .map_err(|err| sdk_failure("Query ledger", err))?;
        let items: Vec<LedgerRecord> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<_, _>>()
            .map_err(StoreError::corrupt)?;
        let next = match out.last_evaluated_key {
            Some(_) => items.last().map(|e| e.id.clone()),
            None => None,
        };
        Ok(LedgerPage { items, next })
    }
}
