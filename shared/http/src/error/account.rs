//! Closing an account: `409 legal_hold` while an admin holds it.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::account::CloseError;

impl From<CloseError> for ApiError {
    fn from(err: CloseError) -> Self {
        match err {
            CloseError::LegalHold => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::LegalHold,
                "the account is on legal hold and cannot be deleted now",
            ),
            CloseError::QueueMissing => {
                tracing::error!("ACCOUNT_QUEUE_URL is not set");
                ApiError::internal()
            }
            CloseError::Store(err) => err.into(),
        }
    }
}
