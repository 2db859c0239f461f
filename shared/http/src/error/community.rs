//! Play, like, contribute and claim.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;

impl From<son1k_app::community::CommunityError> for ApiError {
    fn from(err: son1k_app::community::CommunityError) -> Self {
        use son1k_app::community::CommunityError;
        match err {
            CommunityError::OnlyPaidTiers => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::OnlyPaidTiers,
                "only paid tiers contribute to the pool",
            ),
            CommunityError::NotFound => ApiError::not_found("no such generation of yours"),
            CommunityError::ClonedVoice => ApiError::forbidden(
                "a generation in a cloned voice is its owner's alone and never enters the pool",
            ),
            CommunityError::AlreadyContributed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyContributed,
                "this generation is in the pool already",
            ),
            CommunityError::OnlyFreeTier => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::OnlyFreeTier,
                "claiming from the pool is for FREE users",
            ),
            CommunityError::DailyClaimLimit {
                reset_at,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::DailyClaimLimitReached,
                format!(
                    "all {} claims of today are used",
                    son1k_app::community::DAILY_CLAIMS
                ),
            )
            .with("reset_at", son1k_domain::clock::rfc3339(reset_at))
            .retry_after(retry_after),
            CommunityError::AlreadyClaimed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyClaimed,
                "you claimed this item before",
            ),
            CommunityError::PoolEmpty => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::PoolEmpty,
                "nothing in the pool is left for you to claim",
            ),
            CommunityError::ItemNotFound => ApiError::not_found("no such item in the pool"),
            CommunityError::RateLimited(limited) => limited.into(),
            CommunityError::Store(err) => err.into(),
        }
    }
}
