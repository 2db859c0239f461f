//! A user's account as a whole: closing it (the tombstone, the receipt) and finding and deleting
//! every item of theirs. In the users table:
//! - the tombstone, `GONE#<sha256 of the id>` / `TOMBSTONE`, kept [`TOMBSTONE_DAYS`] by TTL: a token
//!   of a deleted user makes no new user while API Gateway still accepts it (`UsersStore::create`);
//! - the receipt, `DELETION#<deletion id>` / `RECEIPT`, kept [`RECEIPT_DAYS`] by TTL, holding what
//!   the deletion worker needs (the user, their Stripe customer) until it is done.

use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, Item, StoreError, Transacted, Transaction};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::account::{
    tombstone_key, ExportStatus, Receipt, EXPORT_KEPT_DAYS, RECEIPT_DAYS, TOMBSTONE_DAYS,
};
use son1k_domain::ids::UserId;

const TOMBSTONE_SK: &str = "TOMBSTONE";
const RECEIPT_SK: &str = "RECEIPT";

pub fn tombstone_item_key(user: &UserId) -> Item {
    item_key(format!("GONE#{}", tombstone_key(user)), TOMBSTONE_SK)
}

fn receipt_key(deletion_id: &str) -> Item {
    item_key(format!("DELETION#{deletion_id}"), RECEIPT_SK)
}

/// An export of a user's data, under the user (`USER#<id>` / `EXPORT#<id>`), kept as long as its
/// ZIP (TTL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub pk: String,
    pub sk: String,
    pub export_id: String,
    pub user_id: UserId,
    pub status: ExportStatus,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The ZIP's key, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    pub expires_at: i64,
}

impl ExportRecord {
    pub fn new(user: &UserId, export_id: String, now: DateTime<Utc>) -> Self {
        Self {
            pk: user_pk(user),
            sk: format!("EXPORT#{export_id}"),
            export_id,
            user_id: user.clone(),
            status: ExportStatus::Running,
            requested_at: now,
            completed_at: None,
            key: None,
            bytes: None,
            expires_at: (now + chrono::Duration::days(EXPORT_KEPT_DAYS)).timestamp(),
        }
    }
}

/// What asking for an export did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStart {
    Started,
    /// The user item changed since it was read (another export, a first request): read again.
    Changed,
    Busy,
}

/// A deleted user's tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TombstoneRecord {
    pub pk: String,
    pub sk: String,
    pub deletion_id: String,
    pub deleted_at: DateTime<Utc>,
    pub expires_at: i64,
}

/// What the deletion worker needs to finish a deletion: kept on the receipt until it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionWork {
    pub user_id: UserId,
    /// The Cognito user name (the token's `cognito:username`), for `AdminDeleteUser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub pk: String,
    pub sk: String,
    #[serde(flatten)]
    pub receipt: Receipt,
    /// Present until the deletion is done: nothing that names the user outlives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<DeletionWork>,
    pub expires_at: i64,
}

/// The items of the transaction that closes an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseItem {
    Profile,
    Tombstone,
    Receipt,
}

/// What closing an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The profile is gone, the tombstone and the receipt are stored.
    Done,
    /// The user item changed since it was read (a hold placed, a first request made it): read
    /// again.
    Changed,
    /// Another request closed it first: its tombstone names its deletion.
    AlreadyClosed,
    /// Another transaction held an item: try again.
    Busy,
}

pub struct AccountStore<'a> {
    client: &'a Client,
    names: &'a super::Names,
}

impl<'a> AccountStore<'a> {
    pub fn new(client: &'a Client, names: &'a super::Names) -> Self {
        Self { client, names }
    }

    pub fn users_table(&self) -> &'a str {
        &self.names.users_table
    }

    pub fn stats_table(&self) -> &'a str {
        &self.names.stats_table
    }

    pub fn pool_table(&self) -> &'a str {
        &self.names.pool_table
    }

    pub fn alerts_table(&self) -> &'a str {
        &self.names.alerts_table
    }

    /// The user's tombstone, if they deleted their account.
    pub async fn tombstone(&self, user: &UserId) -> Result<Option<TombstoneRecord>, StoreError> {
        super::get_item(
            self.client,
            &self.names.users_table,
            tombstone_item_key(user),
            "GetItem tombstone",
        )
        .await
    }

    /// Closes the account of `user` (as read: `None` when it never made a request): the profile
    /// deleted unless an admin placed a hold on it meanwhile, the tombstone and the receipt stored,
    /// all at once. From then on no route finds the user, and none can make them again.
    pub async fn close(
        &self,
        user: &UserId,
        read: Option<&UserRecord>,
        receipt: &Receipt,
        work: DeletionWork,
    ) -> Result<Closed, StoreError> {
        let table = &self.names.users_table;
        let mut items = Transaction::new("TransactWriteItems close account");
        let profile = item_key(user_pk(user), PROFILE_SK);
        let profile = match read {
            Some(read) => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(table)
                        .set_key(Some(profile))
                        .condition_expression(
                            "attribute_exists(pk) AND attribute_not_exists(legal_hold) AND \
                             (attribute_not_exists(entitlement_rev) OR entitlement_rev = :rev)",
                        )
                        .expression_attribute_values(
                            ":rev",
                            AttributeValue::N(read.entitlement_rev.to_string()),
                        )
                        .build()
                        .map_err(StoreError::invalid_request)?,
                )
                .build(),
            None => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(profile))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(StoreError::invalid_request)?,
                )
                .build(),
        };
        items.push(CloseItem::Profile, profile);
        let tombstone = TombstoneRecord {
            pk: String::new(),
            sk: String::new(),
            deletion_id: receipt.deletion_id.clone(),
            deleted_at: receipt.requested_at,
            expires_at: (receipt.requested_at + chrono::Duration::days(TOMBSTONE_DAYS)).timestamp(),
        };
        let mut tombstone: Item =
            serde_dynamo::to_item(&tombstone).map_err(StoreError::invalid_request)?;
        tombstone.extend(tombstone_item_key(user));
        items.push(CloseItem::Tombstone, put_new(table, tombstone)?);
        items.push(
            CloseItem::Receipt,
            put_new(table, self.receipt_item(receipt, Some(work))?)?,
        );
        Ok(match items.send(self.client).await? {
            Transacted::Committed => Closed::Done,
            Transacted::Refused(refused) if refused.by(CloseItem::Tombstone) => {
                Closed::AlreadyClosed
            }
            Transacted::Refused(refused) if refused.by(CloseItem::Profile) => Closed::Changed,
            Transacted::Refused(_) | Transacted::Busy => Closed::Busy,
        })
    }

    fn receipt_item(
        &self,
        receipt: &Receipt,
        work: Option<DeletionWork>,
    ) -> Result<Item, StoreError> {
        let key = receipt_key(&receipt.deletion_id);
        let record = ReceiptRecord {
            pk: String::new(),
            sk: String::new(),
            receipt: receipt.clone(),
            work,
            expires_at: (receipt.requested_at + chrono::Duration::days(RECEIPT_DAYS)).timestamp(),
        };
        let mut item: Item = serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?;
        item.extend(key);
        Ok(item)
    }

    /// The receipt of deletion `id` (with its work while it runs), if it was asked for.
    pub async fn receipt(&self, id: &str) -> Result<Option<ReceiptRecord>, StoreError> {
        super::get_item(
            self.client,
            &self.names.users_table,
            receipt_key(id),
            "GetItem deletion receipt",
        )
        .await
    }

    /// Stores `receipt` as it now stands; `work` is kept while it runs and dropped once completed.
    pub async fn save_receipt(
        &self,
        receipt: &Receipt,
        work: Option<DeletionWork>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.names.users_table)
            .set_item(Some(self.receipt_item(receipt, work)?))
            .send()
            .await
            .map_err(|err| sdk_failure("PutItem deletion receipt", err))?;
        Ok(())
    }

    /// Starts export `record` for `user` (as read, and allowed by `domain::account::export_refusal`):
    /// marks it running on the user item, only if the user's last export is still the one read, and
    /// stores it, at once.
    pub async fn start_export(
        &self,
        user: &UserRecord,
        record: &ExportRecord,
    ) -> Result<ExportStart, StoreError> {
        let table = &self.names.users_table;
        let mut mark = aws_sdk_dynamodb::types::Update::builder()
            .table_name(table)
            .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
            .update_expression("SET export_running = :id, export_at = :now")
            .expression_attribute_values(":id", AttributeValue::S(record.export_id.clone()))
            .expression_attribute_values(
                ":now",
                serde_dynamo::to_attribute_value(record.requested_at)
                    .map_err(StoreError::invalid_request)?,
            );
        mark = match user.export_at {
            // As read (the caller checked it against the day's rule), so a racing request that
            // asked meanwhile makes this one read again.
            Some(was) => mark
                .condition_expression("attribute_exists(pk) AND export_at = :was")
                .expression_attribute_values(
                    ":was",
                    serde_dynamo::to_attribute_value(was).map_err(StoreError::invalid_request)?,
                ),
            None => mark
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(export_at)"),
        };
        let mut items = Transaction::new("TransactWriteItems start export");
        items.push(
            CloseItem::Profile,
            TransactWriteItem::builder()
                .update(mark.build().map_err(StoreError::invalid_request)?)
                .build(),
        );
        items.push(
            CloseItem::Receipt,
            put_new(
                table,
                serde_dynamo::to_item(record).map_err(StoreError::invalid_request)?,
            )?,
        );
        Ok(match items.send(self.client).await? {
            Transacted::Committed => ExportStart::Started,
            Transacted::Refused(refused) if refused.by(CloseItem::Profile) => ExportStart::Changed,
            Transacted::Refused(_) | Transacted::Busy => ExportStart::Busy,
        })
    }

    /// The export `id` of `user`, if any.
    pub async fn export(
        &self,
        user: &UserId,
        id: &str,
    ) -> Result<Option<ExportRecord>, StoreError> {
        super::get_item(
            self.client,
            &self.names.users_table,
            item_key(user_pk(user), &format!("EXPORT#{id}")),
            "GetItem export",
        )
        .await
    }

    /// Stores `record` as it ended (ready or failed) and clears the user's running export, if it is
    /// still this one (a user deleted meanwhile has no item to clear).
    pub async fn finish_export(&self, record: &ExportRecord) -> Result<(), StoreError> {
        let table = &self.names.users_table;
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(
                serde_dynamo::to_item(record).map_err(StoreError::invalid_request)?,
            ))
            .send()
            .await
            .map_err(|err| sdk_failure("PutItem export", err))?;
        let cleared = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(item_key(user_pk(&record.user_id), PROFILE_SK)))
            .update_expression("REMOVE export_running")
            .condition_expression("export_running = :id")
            .expression_attribute_values(":id", AttributeValue::S(record.export_id.clone()))
            .send()
            .await;
        match cleared {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(sdk_failure("UpdateItem export done", err)),
        }
    }

    /// Every item of partition `pk` of `table`, whole.
    pub async fn partition(&self, table: &str, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_failure("Query partition", err))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }

    /// The keys of every item of `user` in an index of `table` keyed by the user (`by_owner`,
    /// `by_user`). Indexes are eventually consistent: an item written a moment ago may be missing,
    /// which the caller allows for by asking again once it deleted what it found.
    pub async fn indexed(
        &self,
        table: &str,
        index: &str,
        attribute: &str,
        user: &UserId,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression("#user = :user")
                .expression_attribute_names("#user", attribute)
                .expression_attribute_values(":user", AttributeValue::S(user.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_failure("Query user index", err))?;
            out.extend(page.items.unwrap_or_default().iter().map(key_of));
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }

    /// Reads the items of `keys` (all of `table`), whole; missing ones are left out.
    pub async fn items(&self, table: &str, keys: &[Item]) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let table_name = table.to_owned();
        for chunk in keys.chunks(100) {
            let mut pending: Vec<(&String, Item)> =
                chunk.iter().map(|key| (&table_name, key.clone())).collect();
            // Unprocessed keys are asked for again; each round makes progress or DynamoDB throttles.
            for _ in 0..8 {
                if pending.is_empty() {
                    break;
                }
                match super::batch_get(self.client, "BatchGetItem account items", &pending).await? {
                    super::Attempt::Done(items) => {
                        out.extend(items);
                        pending.clear();
                    }
                    super::Attempt::Busy => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await
                    }
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::unavailable(
                    "BatchGetItem account items",
                    "keys stayed unprocessed",
                ));
            }
        }
        Ok(out)
    }

    /// Deletes the items of `keys` (all of `table`), 25 a call; how many were asked for.
    pub async fn delete(&self, table: &str, keys: Vec<Item>) -> Result<u64, StoreError> {
        let count = keys.len() as u64;
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(StoreError::invalid_request)
                })
                .collect::<Result<_, _>>()?;
            for round in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|err| sdk_failure("BatchWriteItem account items", err))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25 << round.min(4))).await;
            }
            if !requests.is_empty() {
                return Err(StoreError::unavailable(
                    "BatchWriteItem account items",
                    "items stayed unprocessed",
                ));
            }
        }
        Ok(count)
    }

    /// Moves `item` of `table` to partition `pk` with every value that is the user's id replaced by
    /// `pseudonym`, in one transaction (put the copy, delete the original).
    pub async fn rekey(
        &self,
        table: &str,
        item: &Item,
        pk: &str,
        (user, pseudonym): (&UserId, &str),
    ) -> Result<(), StoreError> {
        let mut copy: Item = item
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    AttributeValue::S(s) if s == user.as_str() => {
                        AttributeValue::S(pseudonym.to_owned())
                    }
                    other => other.clone(),
                };
                (name.clone(), value)
            })
            .collect();
        copy.insert("pk".into(), AttributeValue::S(pk.to_owned()));
        let key = key_of(item);
        self.client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(table)
                            .set_item(Some(copy))
                            .build()
                            .map_err(StoreError::invalid_request)?,
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(table)
                            .set_key(Some(key))
                            .build()
                            .map_err(StoreError::invalid_request)?,
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|err| sdk_failure("TransactWriteItems keep under pseudonym", err))?;
        Ok(())
    }
}

/// The table keys (`pk`, `sk`) of an item.
pub fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(name, _)| *name == "pk" || *name == "sk")
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::invalid_request)?,
        )
        .build())
}
