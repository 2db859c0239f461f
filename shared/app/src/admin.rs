//! What admins do to a user: grant a tier without Stripe. Every change is written with its audit
//! entry (`crate::audit`).

use crate::audit::{change_user, lost_after, AdminAct};
use crate::ports::{Audit, Time, Users};
use crate::retry::Linked;
use serde_json::json;
use son1k_domain::audit::Action;
use son1k_domain::entitlement::TierSource;
use son1k_domain::ids::UserId;
use son1k_domain::limits::LimitsView;
use son1k_domain::tiers::Tier;
use son1k_store::StoreError;

/// Stores `tier` for `user` as an admin grant (a Stripe subscription no longer decides it), with
/// its audit entry; the user's limits as they now are, `None` when there is no such user.
pub async fn grant_tier(
    app: &(impl Time + Users + Audit),
    act: &AdminAct<'_>,
    user: &UserId,
    tier: Tier,
) -> Result<Option<LimitsView>, StoreError> {
    change_user(
        app,
        "TransactWriteItems tier grant",
        user,
        |head, stored| async move {
            let Some(mut stored) = stored else {
                return Ok(Linked::Done(None));
            };
            let now = app.clock().now();
            let record = act.record(
                Action::TierGrant,
                user,
                json!({"tier": stored.tier, "tier_source": stored.tier_source}),
                json!({"tier": tier, "tier_source": TierSource::Admin}),
            );
            let link = app.audit().link(record, head, now);
            if !app.users().grant_tier(&stored, tier, &link).await? {
                return Ok(lost_after(&link.after));
            }
            tracing::info!(admin = %act.admin, user_id = %user, tier = %tier, "tier granted");
            stored.tier = tier;
            stored.tier_source = TierSource::Admin;
            stored.lapse_shard = None;
            stored.lapses_at = None;
            stored.entitlement_rev += 1;
            Ok(Linked::Done(Some(stored.limits(None, now))))
        },
    )
    .await
}
