//! DynamoDB and S3 access, one module per table; items map to `XxxRecord` structs through serde_dynamo.

pub mod generations;
pub mod housekeeping;
pub mod metrics;
pub mod pool;
pub mod schema;
pub mod users;

use crate::error::ApiError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

/// A failure of the store layer. The message is for logs only; callers see a generic 503 or 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The service could not be reached, timed out, throttled or failed: nothing was written.
    #[error("{operation} failed: {message}")]
    Unavailable {
        operation: &'static str,
        message: String,
    },
    /// A stored item does not have the shape we write: a bug or a manual edit.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// We built a request the SDK refused: a bug.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl StoreError {
    pub fn corrupt(err: impl std::fmt::Display) -> Self {
        Self::Corrupt(err.to_string())
    }

    pub fn invalid_request(err: impl std::fmt::Display) -> Self {
        Self::InvalidRequest(err.to_string())
    }
}

/// Wraps any SDK failure, keeping the full cause chain for the log.
pub fn sdk_failure<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable {
        operation,
        message: DisplayErrorContext(&err).to_string(),
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The one place a store failure is logged; the caller's body says nothing about it.
        match &err {
            StoreError::Unavailable { .. } => {
                tracing::error!(error = %err, "store unavailable");
                ApiError::dependency_unavailable("the database")
            }
            StoreError::Corrupt(_) | StoreError::InvalidRequest(_) => {
                tracing::error!(error = %err, "store bug");
                ApiError::internal()
            }
        }
    }
}

/// The key attributes of an item.
pub fn item_key(
    pk: String,
    sk: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue;
    std::collections::HashMap::from([
        (schema::PK.to_owned(), AttributeValue::S(pk)),
        (schema::SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}
