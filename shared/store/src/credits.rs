//! Credit blocks and their ledger. The blocks live on the user item (`credits.<block_id>`), so a
//! spend takes a credit in the single-item update that checks the allowance (`generations::spend`);
//! the ledger is one item per change, `USER#<id>` / `LEDGER#<ulid>` in the users table, written in
//! the same transaction as the change it records.

use super::analytics::Tally;
use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, Attempt, StoreError, Transaction};
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
    /// An admin grant's audit entry and the log's head: refused when another entry came first.
    Audit,
}

/// Access to credits.
#[derive(Debug, Clone, Copy)]
pub struct CreditsStore<'a> {
    client: &'a Client,
    /// The users table: blocks and ledger.
    table: &'a str,
    /// The stats table: analytics.
    stats_table: &'a str,
}

impl<'a> CreditsStore<'a> {
    pub fn new(client: &'a Client, names: &'a super::Names) -> Self {
        Self {
            client,
            table: &names.users_table,
            stats_table: &names.stats_table,
        }
    }

    /// Adds `block` as `block_id` to `user` (as read) with its ledger entries, analytics and audit
    /// entry, all or nothing. A purchased block (one with a `payment`) not added voided is also conditioned on its
    /// payment not having been refunded meanwhile. `Done(false)`: the user item changed meanwhile
    /// (its first block was added by another request, the block id is taken, or the payment was
    /// refunded): read again and retry. `Busy`: another transaction held the user item, or another
    /// audit entry came first.
    pub async fn add_block(
        &self,
        user: &UserRecord,
        (block_id, block): (&str, &Block),
        entries: &[LedgerRecord],
        tally: Option<&Tally>,
        audit: Option<&super::audit::Link>,
    ) -> Result<Attempt<bool>, StoreError> {
        let value = serde_dynamo::to_attribute_value(block).map_err(StoreError::invalid_request)?;
        let mut update = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
            .expression_attribute_names("#credits", "credits");
        let mut condition = if user.credits.is_empty() {
            update = update
                .update_expression("SET #credits = :credits")
                .expression_attribute_values(
                    ":credits",
                    AttributeValue::M(HashMap::from([(block_id.to_owned(), value)])),
                );
            "attribute_exists(pk) AND attribute_not_exists(#credits)".to_owned()
        } else {
            update = update
                .update_expression("SET #credits.#block = :block")
                .expression_attribute_names("#block", block_id)
                .expression_attribute_values(":block", value);
            "attribute_exists(pk) AND attribute_exists(#credits) \
             AND attribute_not_exists(#credits.#block)"
                .to_owned()
        };
        if let (Some(payment), true) = (&block.payment, block.remaining > 0) {
            condition.push_str(" AND NOT contains(refunded_payments, :payment)");
            update =
                update.expression_attribute_values(":payment", AttributeValue::S(payment.clone()));
        }
        let mut items = Transaction::new("TransactWriteItems credit block");
        items.push(
            GrantItem::User,
            TransactWriteItem::builder()
                .update(
                    update
                        .condition_expression(condition)
                        .build()
                        .map_err(StoreError::invalid_request)?,
                )
                .build(),
        );
        for entry in entries {
            items.push(GrantItem::Ledger, entry.put(self.table)?);
        }
        if let Some(tally) = tally {
            items.extend(GrantItem::Ledger, tally.items(self.stats_table)?);
        }
        if let Some(link) = audit {
            items.extend(GrantItem::Audit, link.items()?);
        }
        let outcome = items.send(self.client).await?.attempt(GrantItem::User);
        if let (Attempt::Done(true), Some(tally)) = (&outcome, tally) {
            tally.log();
        }
        Ok(outcome)
    }

    /// Voids block `block_id` of `user`, which had `remaining` as read: nothing left, no longer
    /// paying, with its ledger entry. `Done(false)`: the block changed meanwhile (a spend or a give
    /// back): read again. `Busy`: another transaction held the user item.
    pub async fn void_block(
        &self,
        user: &UserId,
        (block_id, block): (&str, &Block),
        entry: &LedgerRecord,
    ) -> Result<Attempt<bool>, StoreError> {
        let mut voided = block.clone();
        let read_remaining = voided.remaining;
        voided.void(entry.at);
        let update = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
            .update_expression(
                "SET #credits.#block.remaining = :zero, #credits.#block.#until = :until",
            )
            .condition_expression("#credits.#block.remaining = :read")
            .expression_attribute_names("#credits", "credits")
            .expression_attribute_names("#block", block_id)
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":until", AttributeValue::N(voided.until.to_string()))
            .expression_attribute_values(":read", AttributeValue::N(read_remaining.to_string()))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems void credit block");
        items.push(
            GrantItem::User,
            TransactWriteItem::builder().update(update).build(),
        );
        items.push(GrantItem::Ledger, entry.put(self.table)?);
        Ok(items.send(self.client).await?.attempt(GrantItem::User))
    }

    /// Notes that `payment` was refunded before any block of it was added, so the block is added
    /// voided. A refused condition (noted already: a redelivery) is done too.
    pub async fn note_refund(
        &self,
        user: &UserId,
        payment: &str,
    ) -> Result<Attempt<()>, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
            .update_expression(
                "SET refunded_payments = list_append(if_not_exists(refunded_payments, :none), :payment)",
            )
            .condition_expression(
                "attribute_exists(pk) AND NOT contains(refunded_payments, :one)",
            )
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(
                ":payment",
                AttributeValue::L(vec![AttributeValue::S(payment.to_owned())]),
            )
            .expression_attribute_values(":one", AttributeValue::S(payment.to_owned()));
        Ok(super::update_once("UpdateItem note a refund", request)
            .await?
            .map(|_| ()))
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
