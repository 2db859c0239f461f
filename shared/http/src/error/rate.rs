//! The request budget: `429 rate_limited` with `Retry-After`.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::rate::{AdmitError, RateLimited};

impl From<RateLimited> for ApiError {
    fn from(limited: RateLimited) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "too many requests in a short time; retry after {} s",
                limited.retry_after
            ),
        )
        .with("retry_after", limited.retry_after)
        .retry_after(limited.retry_after)
    }
}

impl From<AdmitError> for ApiError {
    fn from(err: AdmitError) -> Self {
        match err {
            AdmitError::Limited(limited) => limited.into(),
            AdmitError::Store(err) => err.into(),
        }
    }
}
