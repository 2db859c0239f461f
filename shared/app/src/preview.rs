//! The plan-change preview (`GET /api/tiers/preview?tier=`): the caller's limits now and as they
//! would be after changing to a tier, when that takes effect, and what Stripe would bill. The
//! "after" is computed by the rules that will apply, from the user item as it is:
//!
//! - a Stripe subscriber (a subscription that keeps a paid tier): the change goes through Stripe and
//!   its webhook (`domain::billing::decide` applied to the subscription as Stripe would send it). An
//!   upgrade takes effect now, in the same billing period (its usage kept), billed at once with the
//!   prorations; a downgrade at the period's end, in the next period; FREE is a cancellation at the
//!   period's end. Amounts come from Stripe's invoice preview.
//! - a tier an admin set (`tier_source: admin`, FREE included): the change is an admin's grant, at
//!   once, billed nothing.
//! - anyone else (FREE): a paid tier is a checkout, at once, in a billing month that starts then;
//!   no amounts (the checkout page shows the price).

use crate::billing::BillingError;
use crate::caller::Caller;
use crate::ports::{Stripe, Time, Users};
use chrono::{DateTime, Months, Utc};
use serde::Serialize;
use son1k_domain::billing::{decide, Decision, SubscriptionItem, SubscriptionSnapshot};
use son1k_domain::entitlement::{SubscriptionStatus, TierSource};
use son1k_domain::limits::LimitsView;
use son1k_domain::period::Period;
use son1k_domain::tiers::Tier;
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

/// When a change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effective {
    Now,
    PeriodEnd,
}

/// What Stripe would bill for the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillingPreview {
    pub amount_due_now_cents: i64,
    pub currency: String,
    pub next_amount_cents: i64,
    /// When the next invoice is due; `None` when none follows (a cancellation).
    pub next_billing_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub current: LimitsView,
    pub after: LimitsView,
    pub effective: Effective,
    pub billing: Option<BillingPreview>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("already on {0}")]
    AlreadyOnTier(Tier),
    #[error(transparent)]
    Billing(#[from] BillingError),
}

impl From<StoreError> for PreviewError {
    fn from(err: StoreError) -> Self {
        Self::Billing(BillingError::Store(err))
    }
}

/// The preview of the caller changing to `target` (one read of the user; for a subscriber, Stripe's
/// subscription and one or two invoice previews).
pub async fn preview(
    app: &(impl Time + Users + Stripe),
    caller: &Caller,
    target: Tier,
) -> Result<Preview, PreviewError> {
    let now = app.clock().now();
    let user = app.users().get_or_create(caller.new_user(now)).await?;
    let current = user.limits(None, now);
    if current.tier == target {
        return Err(PreviewError::AlreadyOnTier(target));
    }
    let subscribed = user.tier_source == TierSource::Stripe
        && current.tier.is_paid()
        && user
            .subscription
            .as_ref()
            .is_some_and(|s| s.status.keeps_paid_tier());
    if subscribed {
        return subscriber(app, &user, current, target, now).await;
    }
    if user.tier_source == TierSource::Admin {
        let mut after = user.clone();
        after.tier = target;
        return Ok(Preview {
            after: after.limits(None, now),
            current,
            effective: Effective::Now,
            billing: None,
        });
    }
    // A checkout: a new subscription whose first period starts now.
    let end = now.checked_add_months(Months::new(1)).unwrap_or(now);
    let snapshot = snapshot(
        app,
        "sub_preview",
        target,
        SubscriptionStatus::Active,
        (now, end),
    )?;
    let after = applied(app, &user, &snapshot)?;
    Ok(Preview {
        after: after.limits(None, now),
        current,
        effective: Effective::Now,
        billing: None,
    })
}

/// A subscriber's change through Stripe.
async fn subscriber(
    app: &(impl Time + Users + Stripe),
    user: &UserRecord,
    current: LimitsView,
    target: Tier,
    now: DateTime<Utc>,
) -> Result<Preview, PreviewError> {
    let sub = user
        .subscription
        .as_ref()
        .ok_or(BillingError::NoBillingAccount)?;
    let period = (sub.current_period_start, sub.current_period_end);
    let stripe = app
        .stripe()
        .ok_or(BillingError::NotConfigured("STRIPE_SECRET_NAME"))?;
    let customer = user
        .stripe_customer_id
        .as_deref()
        .ok_or(BillingError::NoBillingAccount)?;
    let end = sub.current_period_end;
    let next_at = Some(crate::clock::rfc3339(end));
    if target == Tier::Free {
        // A cancellation at the period's end: Stripe ends the subscription then.
        let mut ending = snapshot(
            app,
            &sub.id,
            current.tier,
            SubscriptionStatus::Canceled,
            period,
        )?;
        ending.cancel_at_period_end = true;
        let after = applied(app, user, &ending)?;
        return Ok(Preview {
            after: after.limits(None, end),
            current,
            effective: Effective::PeriodEnd,
            billing: Some(BillingPreview {
                amount_due_now_cents: 0,
                currency: "usd".into(),
                next_amount_cents: 0,
                next_billing_at: None,
            }),
        });
    }
    let price = price_of(app, target)?;
    let item = stripe.first_item(&sub.id).await?;
    if target > current.tier {
        let switched = snapshot(app, &sub.id, target, SubscriptionStatus::Active, period)?;
        let after = applied(app, user, &switched)?;
        let now_due = stripe
            .preview_switch(customer, &sub.id, (&item, &price), Some(now))
            .await?;
        let next = stripe
            .preview_switch(customer, &sub.id, (&item, &price), None)
            .await?;
        return Ok(Preview {
            after: after.limits(None, now),
            current,
            effective: Effective::Now,
            billing: Some(BillingPreview {
                amount_due_now_cents: now_due.amount_due,
                currency: now_due.currency,
                next_amount_cents: next.amount_due,
                next_billing_at: next_at,
            }),
        });
    }
    // A downgrade: the next period, at the new price.
    let anchor = sub.billing_cycle_anchor.unwrap_or(sub.current_period_start);
    let next_period = Period::billing_month(anchor, end);
    let renewed = snapshot(
        app,
        &sub.id,
        target,
        SubscriptionStatus::Active,
        (next_period.start, next_period.end),
    )?;
    let after = applied(app, user, &renewed)?;
    let next = stripe
        .preview_switch(customer, &sub.id, (&item, &price), None)
        .await?;
    Ok(Preview {
        after: after.limits(None, end),
        current,
        effective: Effective::PeriodEnd,
        billing: Some(BillingPreview {
            amount_due_now_cents: 0,
            currency: next.currency,
            next_amount_cents: next.amount_due,
            next_billing_at: next_at,
        }),
    })
}

fn price_of(app: &impl Stripe, tier: Tier) -> Result<String, BillingError> {
    app.prices()
        .price_of(tier)
        .map(str::to_owned)
        .ok_or(BillingError::NotConfigured(
            "a price of the tier (STRIPE_PRICE_<TIER>)",
        ))
}

/// The subscription `id` as Stripe would send it: `tier`'s price, `status`, the billing period.
fn snapshot(
    app: &impl Stripe,
    id: &str,
    tier: Tier,
    status: SubscriptionStatus,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<SubscriptionSnapshot, BillingError> {
    Ok(SubscriptionSnapshot {
        id: id.to_owned(),
        customer: None,
        status,
        items: vec![SubscriptionItem {
            price_id: Some(price_of(app, tier)?),
            period: Some((start, end)),
        }],
        period: None,
        cancel_at_period_end: false,
        billing_cycle_anchor: None,
        user_id: None,
    })
}

/// `user` as the webhook would store it after `snapshot` (`domain::billing::decide`).
fn applied(
    app: &impl Stripe,
    user: &UserRecord,
    snapshot: &SubscriptionSnapshot,
) -> Result<UserRecord, BillingError> {
    // A fence after any an event can carry: the preview is the newest news.
    match decide(&user.billing_state(), "\u{10FFFF}", snapshot, app.prices()) {
        Decision::Apply(change) => {
            let mut after = user.clone();
            after.tier = change.tier;
            after.tier_source = change.tier_source;
            after.subscription = Some(change.subscription);
            Ok(after)
        }
        Decision::Ignore(why) => Err(BillingError::stripe("preview", &why.as_str())),
    }
}
