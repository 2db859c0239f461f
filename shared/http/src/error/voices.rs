//! Voices: `403 feature_not_in_tier`, `429 voice_limit_reached`, `429 rate_limited` (five
//! creations an hour), `404`, `410 voice_deleted`, `409 samples_missing`, `409 voice_not_ready`.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::voices::VoiceError;

impl From<VoiceError> for ApiError {
    fn from(err: VoiceError) -> Self {
        match err {
            VoiceError::NotInTier => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::FeatureNotInTier,
                "voice cloning is in the CREATOR, PRO and STUDIO tiers",
            ),
            VoiceError::LimitReached { limit } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::VoiceLimitReached,
                format!("the tier keeps {limit} voices; delete one to create another"),
            )
            .with("limit", limit),
            VoiceError::TooManyCreations { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!(
                    "{} voices were created in the last hour; retry after {retry_after} s",
                    son1k_domain::voices::CREATIONS_PER_HOUR
                ),
            )
            .with("retry_after", retry_after)
            .retry_after(retry_after),
            VoiceError::NotFound => ApiError::not_found("no such voice"),
            VoiceError::Deleted => ApiError::new(
                StatusCode::GONE,
                ErrorCode::VoiceDeleted,
                "the voice was deleted",
            ),
            VoiceError::SamplesMissing(why) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::SamplesMissing, why)
            }
            VoiceError::NotReady(status) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::VoiceNotReady,
                format!("the voice is {status}, not ready"),
            )
            .with("status", status),
            VoiceError::QueueMissing => {
                tracing::error!("VOICE_JOBS_QUEUE_URL is not set");
                ApiError::internal()
            }
            VoiceError::Store(err) => err.into(),
        }
    }
}
