//! Record-generation and the limits: a refused spend answers its tier's limit, when it resets and what to do.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::metering::RecordError;
use son1k_domain::metering::Refusal;

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::QualityNotInTier { tier, quality } => ApiError::new(
                StatusCode::FORBIDDEN,
                refusal.code().into(),
                format!(
                    "{} quality is not included in the {tier} tier",
                    quality.as_str()
                ),
            )
            .with("quality", quality)
            .with("tier", tier)
            .with("qualities", tier.spec().qualities),
            Refusal::LimitReached {
                period,
                limit,
                used,
                reset_at,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                refusal.code().into(),
                format!(
                    "all {limit} generations of this {} are used",
                    period.as_str()
                ),
            )
            .with("limit", limit)
            .with("used", used)
            .with("reset_at", son1k_domain::clock::rfc3339(reset_at))
            .retry_after(retry_after),
        }
    }
}

impl From<RecordError> for ApiError {
    fn from(err: RecordError) -> Self {
        match err {
            RecordError::Refused(refusal) => refusal.into(),
            RecordError::RateLimited(limited) => limited.into(),
            RecordError::IdTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::GenerationIdTaken,
                "this generation_id is already recorded by another user; choose another id",
            )
            .with("field", "generation_id"),
            RecordError::Store(err) => err.into(),
            RecordError::BudgetSpent { .. } => ApiError::dependency_unavailable("the database"),
        }
    }
}
