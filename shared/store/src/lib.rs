//! DynamoDB and S3 access, one module per kind of item; items map to `XxxRecord` structs through
//! serde_dynamo. Keys, conditions and calls live here; what to do with an outcome is the
//! application's (`son1k-app`).

pub mod account;
pub mod alerts;
pub mod allowances;
pub mod analytics;
pub mod audio;
pub mod audit;
pub mod billing;
pub mod credits;
pub mod generations;
pub mod housekeeping;
pub mod jobs;
pub mod lyrics;
pub mod metrics;
pub mod pixel;
pub mod pool;
pub mod providers;
pub mod schema;
pub mod uploads;
pub mod users;
pub mod voices;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;

/// The deployment's tables and bucket, by name (from the environment: `son1k_app::config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub users_table: String,
    pub stats_table: String,
    pub pool_table: String,
    pub alerts_table: String,
    /// The audit log of admin actions (`audit`).
    pub audit_table: String,
    pub audio_bucket: String,
}

/// A failure of the store layer, logged once where it is made (the constructors below). The message
/// is for logs only: every store failure reaches the caller as a generic 503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The service could not be reached, timed out, throttled, failed or refused the request.
    #[error("{operation} failed: {message}")]
    Unavailable {
        operation: &'static str,
        message: String,
    },
    /// A stored item does not have the shape we write (a bug or a manual edit), or vanished mid-request.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// We built a request the SDK refused: a bug.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// AWS refused us for what the deploy set up (a permission, a key policy): never an answer about
    /// the data. Logged with the marker [`MISCONFIGURED`]; the call fails, so the functions' error
    /// and dead-letter alarms raise it.
    #[error("{MISCONFIGURED}: {operation} was refused: {message}")]
    Misconfigured {
        operation: &'static str,
        message: String,
    },
    /// The user deleted their account (`account::Tombstone`): a token of theirs that API Gateway
    /// still accepts makes no new user. Not a failure: the caller gets 401.
    #[error("the account was deleted")]
    AccountDeleted,
}

/// The log text of a refusal the deploy must fix (`StoreError::Misconfigured`).
pub const MISCONFIGURED: &str = "configuration error";

impl StoreError {
    pub fn unavailable(operation: &'static str, message: impl Into<String>) -> Self {
        Self::Unavailable {
            operation,
            message: message.into(),
        }
        .logged()
    }

    pub fn corrupt(err: impl std::fmt::Display) -> Self {
        Self::Corrupt(err.to_string()).logged()
    }

    pub fn invalid_request(err: impl std::fmt::Display) -> Self {
        Self::InvalidRequest(err.to_string()).logged()
    }

    pub fn misconfigured(operation: &'static str, message: impl Into<String>) -> Self {
        Self::Misconfigured {
            operation,
            message: message.into(),
        }
        .logged()
    }

    fn logged(self) -> Self {
        tracing::error!(error = %self, "store failure");
        self
    }
}

/// Wraps any SDK failure, keeping the full cause chain for the log.
pub fn sdk_failure<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::unavailable(operation, DisplayErrorContext(&err).to_string())
}

/// One item, read consistently and decoded; `None` when there is none.
pub async fn get_item<T: serde::de::DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    operation: &'static str,
) -> Result<Option<T>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|err| sdk_failure(operation, err))?;
    out.item
        .map(serde_dynamo::from_item)
        .transpose()
        .map_err(StoreError::corrupt)
}

/// The key attributes of an item.
pub fn item_key(
    pk: String,
    sk: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    std::collections::HashMap::from([
        (schema::PK.to_owned(), AttributeValue::S(pk)),
        (schema::SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// A DynamoDB item as the SDK gives it.
pub type Item = HashMap<String, AttributeValue>;

/// One attempt of a call that can lose to other requests: another transaction held an item,
/// DynamoDB throttled it or left keys unprocessed. Nothing was written; whether to try again, and
/// when, is the application's decision (`son1k_app::retry`).
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt<T> {
    Done(T),
    Busy,
}

impl<T> Attempt<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Attempt::Done(done) => Attempt::Done(f(done)),
            Attempt::Busy => Attempt::Busy,
        }
    }
}

/// A transaction whose items are named by `R` (each use case's own enum of its items), so a
/// cancellation says by name, not by position, whose condition failed.
#[derive(Debug)]
pub struct Transaction<R> {
    operation: &'static str,
    roles: Vec<R>,
    items: Vec<TransactWriteItem>,
}

/// What sending a [`Transaction`] did.
#[derive(Debug)]
pub enum Transacted<R> {
    Committed,
    /// Nothing was written: these items' conditions failed.
    Refused(Refused<R>),
    /// Nothing was written: another transaction held an item, or DynamoDB throttled one.
    Busy,
}

/// The items of a refused transaction whose conditions failed, each with the item as stored when
/// it asked for it (`ReturnValuesOnConditionCheckFailure`).
#[derive(Debug)]
pub struct Refused<R> {
    failed: Vec<(R, Option<Item>)>,
}

impl<R: PartialEq> Transacted<R> {
    /// The outcome of a transaction whose one contested item is `role`: committed (`Done(true)`),
    /// refused by that item's condition (`Done(false)`: it changed, read it again), or anything
    /// else (`Busy`: another transaction held an item, try again in a moment).
    pub fn attempt(self, role: R) -> Attempt<bool> {
        match self {
            Transacted::Committed => Attempt::Done(true),
            Transacted::Refused(refused) if refused.by(role) => Attempt::Done(false),
            Transacted::Refused(_) | Transacted::Busy => Attempt::Busy,
        }
    }
}

impl<R: PartialEq> Refused<R> {
    /// Whether the condition of an item named `role` failed.
    pub fn by(&self, role: R) -> bool {
        self.failed.iter().any(|(r, _)| *r == role)
    }

    /// The stored item named `role` whose condition failed, when it was asked for.
    pub fn current(&self, role: R) -> Option<&Item> {
        self.failed
            .iter()
            .find(|(r, _)| *r == role)
            .and_then(|(_, item)| item.as_ref())
    }
}

impl<R: Copy> Transaction<R> {
    pub fn new(operation: &'static str) -> Self {
        Self {
            operation,
            roles: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Adds `item`, named `role`.
    pub fn push(&mut self, role: R, item: TransactWriteItem) {
        self.roles.push(role);
        self.items.push(item);
    }

    /// Adds each of `items`, all named `role`.
    pub fn extend(&mut self, role: R, items: impl IntoIterator<Item = TransactWriteItem>) {
        for item in items {
            self.push(role, item);
        }
    }

    /// Sends the transaction once. A cancellation for a reason a retry cannot overcome (validation,
    /// a missing table...) is a store failure.
    pub async fn send(
        self,
        client: &aws_sdk_dynamodb::Client,
    ) -> Result<Transacted<R>, StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let err = match client
            .transact_write_items()
            .set_transact_items(Some(self.items))
            .send()
            .await
        {
            Ok(_) => return Ok(Transacted::Committed),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                cancelled(self.operation, &self.roles, cancel.cancellation_reasons())
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                Ok(Transacted::Busy)
            }
            _ => Err(sdk_failure(self.operation, err)),
        }
    }
}

/// Reads a cancellation, item by item: a failed condition refuses; a conflict with another
/// transaction or throttling leaves it busy; any other code is a store failure.
fn cancelled<R: Copy>(
    operation: &'static str,
    roles: &[R],
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
) -> Result<Transacted<R>, StoreError> {
    let mut failed = Vec::new();
    for (role, reason) in roles.iter().zip(reasons) {
        match reason.code().unwrap_or("None") {
            "None"
            | "TransactionConflict"
            | "ThrottlingError"
            | "ProvisionedThroughputExceeded"
            | "RequestLimitExceeded" => {}
            "ConditionalCheckFailed" => failed.push((*role, reason.item().cloned())),
            code => {
                return Err(StoreError::unavailable(
                    operation,
                    format!("transaction cancelled: {code}"),
                ))
            }
        }
    }
    Ok(if failed.is_empty() {
        Transacted::Busy
    } else {
        Transacted::Refused(Refused { failed })
    })
}

/// Sends the single-item update `request` once: `Done(true)` applied, `Done(false)` its condition
/// failed, `Busy` a transaction held the item (`TransactionConflictException`).
pub(crate) async fn update_once(
    operation: &'static str,
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<Attempt<bool>, StoreError> {
    let err = match request.send().await {
        Ok(_) => return Ok(Attempt::Done(true)),
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(e) if e.is_conditional_check_failed_exception() => Ok(Attempt::Done(false)),
        Some(e) if e.is_transaction_conflict_exception() => Ok(Attempt::Busy),
        _ => Err(sdk_failure(operation, err)),
    }
}

/// Reads `keys` (each a table and an item's key) consistently in one `BatchGetItem`: the items
/// found, in no particular order, or `Busy` when DynamoDB left some unprocessed (asking again asks
/// for all of them: a few keys, and a read a later attempt sees consistently).
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    operation: &'static str,
    keys: &[(&String, Item)],
) -> Result<Attempt<Vec<Item>>, StoreError> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let mut by_table: HashMap<String, Vec<Item>> = HashMap::new();
    for (table, key) in keys {
        by_table
            .entry((*table).clone())
            .or_default()
            .push(key.clone());
    }
    let mut request = HashMap::new();
    for (table, keys) in by_table {
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(StoreError::invalid_request)?;
        request.insert(table, keys);
    }
    let out = client
        .batch_get_item()
        .set_request_items(Some(request))
        .send()
        .await
        .map_err(|err| sdk_failure(operation, err))?;
    if out.unprocessed_keys.is_some_and(|rest| !rest.is_empty()) {
        return Ok(Attempt::Busy);
    }
    Ok(Attempt::Done(
        out.responses
            .into_iter()
            .flat_map(|r| r.into_values())
            .flatten()
            .collect(),
    ))
}
