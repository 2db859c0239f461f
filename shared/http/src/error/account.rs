//! Closing an account: `409 legal_hold` while an admin holds it. Exporting its data: `409
//! export_in_progress`, `429 export_limit_reached` with `Retry-After` (one a day).

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::account::CloseError;
use son1k_app::export::ExportError;

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

impl From<ExportError> for ApiError {
    fn from(err: ExportError) -> Self {
        match err {
            ExportError::InProgress => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ExportInProgress,
                "an export of your data is being made",
            ),
            ExportError::TooSoon { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::ExportLimitReached,
                format!("one export a day; retry after {retry_after} s"),
            )
            .with("retry_after", retry_after)
            .retry_after(retry_after),
            ExportError::QueueMissing => {
                tracing::error!("ACCOUNT_QUEUE_URL is not set");
                ApiError::internal()
            }
            ExportError::Store(err) => err.into(),
        }
    }
}
