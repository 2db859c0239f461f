//! DynamoDB and S3 access, one module per kind of item; items map to `XxxRecord` structs through
//! serde_dynamo. Keys, conditions and calls live here; what to do with an outcome is the
//! application's (`son1k-app`).

pub mod allowances;
pub mod analytics;
pub mod audio;
pub mod billing;
pub mod generations;
pub mod housekeeping;
pub mod jobs;
pub mod lyrics;
pub mod metrics;
pub mod pixel;
pub mod pool;
pub mod providers;
pub mod retry;
pub mod schema;
pub mod uploads;
pub mod users;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The deployment's tables and bucket, by name (from the environment: `son1k_app::config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub users_table: String,
    pub stats_table: String,
    pub pool_table: String,
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

/// The code of each item of a cancelled transaction, in order (`"None"` for items that were fine).
pub fn cancellation_codes(reasons: &[aws_sdk_dynamodb::types::CancellationReason]) -> Vec<&str> {
    reasons.iter().map(|r| r.code().unwrap_or("None")).collect()
}

/// Fails with the first code a retry cannot overcome (validation, a missing table...): anything
/// but a condition, a conflict with another transaction, or throttling.
pub fn retryable(operation: &'static str, codes: &[&str]) -> Result<(), StoreError> {
    let fatal = codes.iter().find(|c| {
        !matches!(
            **c,
            "None"
                | "ConditionalCheckFailed"
                | "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded"
        )
    });
    match fatal {
        Some(code) => Err(StoreError::unavailable(
            operation,
            format!("transaction cancelled: {code}"),
        )),
        None => Ok(()),
    }
}

/// Sends the single-item update `request` until DynamoDB applies it or refuses its condition (both
/// `Ok`: a condition that fails means there is nothing left to do), waiting out transactions that
/// hold the item (`TransactionConflictException`) for `attempts` tries.
pub(crate) async fn update_past_transactions(
    operation: &'static str,
    attempts: u32,
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<(), StoreError> {
    for attempt in 0..attempts {
        let err = match request.clone().send().await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => return Ok(()),
            Some(e) if e.is_transaction_conflict_exception() => {
                crate::retry::pause(attempt).await;
            }
            _ => return Err(sdk_failure(operation, err)),
        }
    }
    Err(StoreError::unavailable(
        operation,
        "the item stayed in other transactions",
    ))
}

/// Sends one transaction. `Ok(Ok(()))`: committed. `Ok(Err(codes))`: cancelled for reasons a retry
/// or a read can overcome (a condition, a conflict with another transaction, throttling), with the
/// code of each item in order. `Err`: the store failed or refused.
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    operation: &'static str,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<Result<(), Vec<String>>, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let err = match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => return Ok(Ok(())),
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            let codes = cancellation_codes(cancel.cancellation_reasons());
            retryable(operation, &codes)?;
            Ok(Err(codes.into_iter().map(str::to_owned).collect()))
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
            Ok(Err(vec!["TransactionConflict".to_owned()]))
        }
        _ => Err(sdk_failure(operation, err)),
    }
}

/// Tries of a batch read while DynamoDB leaves keys unprocessed.
const BATCH_ATTEMPTS: u32 = 6;

/// Reads `keys` (each a table and an item's key) consistently in one `BatchGetItem`, asking again
/// for keys DynamoDB left unprocessed. Returns the items found, in no particular order.
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    operation: &'static str,
    keys: &[(&String, HashMap<String, AttributeValue>)],
) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let mut by_table: HashMap<String, Vec<HashMap<String, AttributeValue>>> = HashMap::new();
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
    let mut found = Vec::new();
    for attempt in 0..BATCH_ATTEMPTS {
        let out = client
            .batch_get_item()
            .set_request_items(Some(request))
            .send()
            .await
            .map_err(|err| sdk_failure(operation, err))?;
        found.extend(
            out.responses
                .into_iter()
                .flat_map(|r| r.into_values())
                .flatten(),
        );
        match out.unprocessed_keys.filter(|rest| !rest.is_empty()) {
            None => return Ok(found),
            Some(rest) => {
                request = rest;
                crate::retry::pause(attempt).await;
            }
        }
    }
    Err(StoreError::unavailable(
        operation,
        "keys stayed unprocessed",
    ))
}
