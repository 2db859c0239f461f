//! What admins do to a user: grant a tier without Stripe.

use crate::ports::{Time, Users};
use crate::retry;
use son1k_domain::ids::UserId;
use son1k_domain::limits::LimitsView;
use son1k_domain::tiers::Tier;
use son1k_store::StoreError;

/// Tries of a tier grant while the user's item is in other transactions (a generation being
/// recorded: a moment later it is free).
const GRANT_ATTEMPTS: u32 = 8;

/// Stores `tier` for `user` as an admin grant (a Stripe subscription no longer decides it); the
/// user's limits as they now are, `None` when there is no such user.
pub async fn grant_tier(
    app: &(impl Time + Users),
    user: &UserId,
    tier: Tier,
) -> Result<Option<LimitsView>, StoreError> {
    let granted = retry::until_done("UpdateItem users", GRANT_ATTEMPTS, || async move {
        app.users().grant_tier(user, tier).await
    })
    .await?;
    Ok(granted.map(|user| user.limits(None, app.clock().now())))
}
