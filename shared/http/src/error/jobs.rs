//! Job submission.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;

impl From<son1k_app::jobs::SubmitError> for ApiError {
    fn from(err: son1k_app::jobs::SubmitError) -> Self {
        use son1k_app::jobs::SubmitError;
        match err {
            SubmitError::Refused(refusal) => refusal.into(),
            SubmitError::RateLimited(limited) => limited.into(),
            SubmitError::IdTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::GenerationIdTaken,
                "this generation_id is already used by another user or recorded; choose another id",
            )
            .with("field", "generation_id"),
            SubmitError::NoSuchLyrics => {
                ApiError::not_found("no such lyrics draft of yours").with("field", "lyrics_id")
            }
            SubmitError::StorageFull(exceeded) => exceeded.into(),
            SubmitError::NoProvider => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NoProviderConfigured,
                "no generation provider is configured on this deployment",
            ),
            SubmitError::Voice(son1k_app::voices::VoiceError::NotFound) => {
                ApiError::not_found("no such voice of yours").with("field", "voice_id")
            }
            SubmitError::Voice(err) => ApiError::from(err).with("field", "voice_id"),
            SubmitError::Store(err) => err.into(),
            SubmitError::BudgetSpent { .. } => ApiError::dependency_unavailable("the database"),
        }
    }
}
