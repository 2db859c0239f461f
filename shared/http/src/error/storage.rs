//! Upload links, audio links and the storage quota.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::storage::StorageError;
use son1k_domain::storage::QuotaExceeded;

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound => {
                ApiError::not_found("no such generation of yours, or no audio stored")
            }
            StorageError::QuotaExceeded(exceeded) => exceeded.into(),
            StorageError::Store(err) => err.into(),
        }
    }
}

impl From<QuotaExceeded> for ApiError {
    fn from(exceeded: QuotaExceeded) -> Self {
        let QuotaExceeded {
            limit_bytes,
            used_bytes,
            requested_bytes,
        } = exceeded;
        let remaining = limit_bytes.saturating_sub(used_bytes);
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::StorageQuotaExceeded,
            format!(
                "{requested_bytes} bytes do not fit: {remaining} of {limit_bytes} bytes remain"
            ),
        )
        .with("limit_bytes", limit_bytes)
        .with("used_bytes", used_bytes)
        .with("remaining_bytes", remaining)
    }
}
