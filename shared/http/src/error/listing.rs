//! The pool listing.

use super::ApiError;
use son1k_app::listing::ListingError;

impl From<ListingError> for ApiError {
    fn from(err: ListingError) -> Self {
        match err {
            ListingError::BadCursor => {
                ApiError::invalid("cursor", "is not a cursor this listing gave out")
            }
            ListingError::NoCursorKey => ApiError::dependency_unavailable("the pool listing"),
            ListingError::Unsealable => ApiError::internal(),
            ListingError::Store(err) => err.into(),
        }
    }
}
