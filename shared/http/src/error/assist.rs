//! Lyric Studio and Pixel.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;

impl From<son1k_app::assist::AssistError> for ApiError {
    fn from(err: son1k_app::assist::AssistError) -> Self {
        use son1k_app::assist::AssistError;
        use son1k_domain::assist::Feature;
        match err {
            AssistError::Spent(spent) => {
                let (code, what) = match spent.feature {
                    Feature::Lyrics => (ErrorCode::LyricsLimitReached, "lyrics drafts"),
                    Feature::Pixel => (ErrorCode::PixelLimitReached, "messages to Pixel"),
                };
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    code,
                    format!(
                        "all {} {what} of this day are used on the {} tier",
                        spent.limit, spent.tier
                    ),
                )
                .with("limit", spent.limit)
                .with("used", spent.limit)
                .with("reset_at", son1k_domain::clock::rfc3339(spent.reset_at))
                .retry_after(spent.retry_after)
            }
            AssistError::RateLimited(limited) => limited.into(),
            AssistError::Store(err) => err.into(),
            // Logged where it was made; the caller learns only which dependency failed.
            AssistError::Model(_) | AssistError::NoModel => {
                ApiError::dependency_unavailable("the language model")
            }
            AssistError::NotFound => ApiError::not_found("no such resource"),
            AssistError::Invalid(err) => err.into(),
            AssistError::Stale { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                ErrorCode::VersionConflict,
                format!("version {current} is the latest: read it and edit that one"),
            )
            .with("current_version", current),
        }
    }
}
