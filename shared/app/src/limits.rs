//! What a user may still generate in the current period (`GET /api/tiers/limits/{user_id}`): one
//! read of the user item (made FREE on the caller's own first request).

use crate::caller::Caller;
use crate::ports::{Time, Users};
use son1k_domain::ids::UserId;
use son1k_domain::limits::LimitsView;
use son1k_domain::tiers::Quality;
use son1k_store::StoreError;

/// `target`'s limits as of now, with `quality` checked when given; `None` for no such user. The
/// caller's own are never missing: their first request stores them as a FREE user.
pub async fn of(
    app: &(impl Time + Users),
    caller: &Caller,
    target: &UserId,
    quality: Option<Quality>,
) -> Result<Option<LimitsView>, StoreError> {
    let now = app.clock().now();
    let user = if *target == caller.id {
        Some(app.users().get_or_create(caller.new_user(now)).await?)
    } else {
        app.users().get(target).await?
    };
    Ok(user.map(|user| user.limits(quality, now)))
}
