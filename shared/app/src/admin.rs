//! What admins do to a user: grant a tier without Stripe.

use crate::{retry, AppState};
use son1k_domain::ids::UserId;
use son1k_domain::tiers::Tier;
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

/// Tries of a tier grant while the user's item is in other transactions (a generation being
/// recorded: a moment later it is free).
const GRANT_ATTEMPTS: u32 = 8;

/// Stores `tier` for `user` as an admin grant (a Stripe subscription no longer decides it); the
/// user as it now is, `None` when there is no such user.
pub async fn grant_tier(
    state: &AppState,
    user: &UserId,
    tier: Tier,
) -> Result<Option<UserRecord>, StoreError> {
    retry::until_done("UpdateItem users", GRANT_ATTEMPTS, || async move {
        state.users().grant_tier(user, tier).await
    })
    .await
}
