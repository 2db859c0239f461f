//! Starting a subscription (Stripe Checkout) and managing it (the billing portal): the user's one
//! Stripe customer is created once and reused; return URLs stay on the frontend's origin.

use super::api::{CheckoutLink, CheckoutRequest, PackCheckoutRequest, StripeApi};
use super::BillingError;
use crate::caller::Caller;
use crate::ports::{Analytics, Billing, Stripe, Time, Users};
use son1k_domain::analytics::Event;
use son1k_domain::billing::Interval;
use son1k_domain::tiers::Tier;
use son1k_domain::DomainError;
use son1k_store::analytics::Tally;
use son1k_store::users::UserRecord;
use url::Url;

/// A return URL given by the client, or the frontend's `default_path`; one on another origin than
/// `FRONTEND_URL`'s is refused (an open redirect through Stripe's pages otherwise).
pub fn return_url(
    frontend: &Url,
    field: &'static str,
    given: Option<&str>,
    default_path: &str,
) -> Result<String, DomainError> {
    let Some(given) = given else {
        return frontend
            .join(default_path)
            .map(String::from)
            .map_err(|_| DomainError::new(field, "FRONTEND_URL cannot hold a return path"));
    };
    if given.len() > 2048 {
        return Err(DomainError::new(field, "must be at most 2048 characters"));
    }
    let url = Url::parse(given).map_err(|_| DomainError::new(field, "must be an absolute URL"))?;
    if url.origin() != frontend.origin() || !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::new(
            field,
            format!(
                "must be on the frontend's origin {}",
                frontend.origin().ascii_serialization()
            ),
        ));
    }
    Ok(url.into())
}

/// Return URLs of a checkout, validated.
#[derive(Debug, Clone, Copy)]
pub struct ReturnUrls<'a> {
    pub success: &'a str,
    pub cancel: &'a str,
}

/// Starts a checkout of `tier` billed every `interval` for the caller. The tier's trial
/// (`STRIPE_TRIAL_DAYS_<TIER>`) is offered once per user, to one who never subscribed: the first
/// checkout that offers it claims it on the user item, so a second (or a racing one) has none.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, tier = %tier))]
pub async fn start_checkout(
    app: &(impl Time + Users + Analytics + Billing + Stripe),
    caller: &Caller,
    (tier, interval): (Tier, Interval),
    urls: ReturnUrls<'_>,
) -> Result<CheckoutLink, BillingError> {
    let (stripe, price_id) = checkout_config(app, tier, interval)?;
    stripe.configured().await?;
    let now = app.clock().now();
    let user = app.users().get_or_create(caller.new_user(now)).await?;
    if let Some(current) = active_subscription(&user, now) {
        return Err(BillingError::AlreadySubscribed(current));
    }
    let customer = customer_of(app, stripe, &user, caller).await?;
    let trial_days = match app.trials().of(tier) {
        Some(days)
            if user.trial_offered_at.is_none()
                && user.subscription.is_none()
                && app.billing().claim_trial(&user.user_id, now).await? =>
        {
            Some(days)
        }
        _ => None,
    };
    let created = stripe
        .create_checkout(&CheckoutRequest {
            user_id: &user.user_id,
            customer: &customer,
            tier: tier.as_str(),
            price_id,
            trial_days,
            success_url: urls.success,
            cancel_url: urls.cancel,
        })
        .await;
    let link = match created {
        Ok(link) => link,
        Err(err) => {
            // No session offers the trial: the next checkout may.
            if trial_days.is_some() {
                if let Err(undo) = app.billing().unclaim_trial(&user.user_id, now).await {
                    tracing::warn!(error = %undo, "a trial claimed for a failed checkout stays claimed");
                }
            }
            return Err(err);
        }
    };
    tracing::info!(session_id = %link.session_id, trial_days = ?trial_days, "checkout started");
    let tally = Tally::new(&user.user_id, app.clock().now())
        .with(Event::CheckoutStarted, [("tier", tier.as_str())]);
    crate::analytics::count_alone(app, &tally).await;
    Ok(link)
}

/// Opens the billing portal for the caller's customer.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn open_portal(
    app: &(impl Users + Stripe),
    caller: &Caller,
    return_url: &str,
) -> Result<String, BillingError> {
    let stripe = app
        .stripe()
        .ok_or(BillingError::NotConfigured("STRIPE_SECRET_NAME"))?;
    stripe.configured().await?;
    let customer = app
        .users()
        .get(&caller.id)
        .await?
        .and_then(|user| user.stripe_customer_id)
        .ok_or(BillingError::NoBillingAccount)?;
    stripe.create_portal(&customer, return_url).await
}

fn checkout_config(
    app: &impl Stripe,
    tier: Tier,
    interval: Interval,
) -> Result<(&StripeApi, &str), BillingError> {
    let stripe = app
        .stripe()
        .ok_or(BillingError::NotConfigured("STRIPE_SECRET_NAME"))?;
    let price = app
        .prices()
        .price_for(tier, interval)
        .ok_or(BillingError::NotConfigured(match (tier, interval) {
            (Tier::Creator, Interval::Month) => "STRIPE_PRICE_CREATOR",
            (Tier::Pro, Interval::Month) => "STRIPE_PRICE_PRO",
            (_, Interval::Month) => "STRIPE_PRICE_STUDIO",
            (Tier::Creator, Interval::Year) => "STRIPE_PRICE_CREATOR_ANNUAL",
            (Tier::Pro, Interval::Year) => "STRIPE_PRICE_PRO_ANNUAL",
            (_, Interval::Year) => "STRIPE_PRICE_STUDIO_ANNUAL",
        }))?;
    Ok((stripe, price))
}

/// Why a pack checkout was not started beyond billing's own failures.
#[derive(Debug, thiserror::Error)]
pub enum PackCheckoutError {
    /// No such pack on sale (a 400 naming `pack`).
    #[error("no such pack")]
    UnknownPack,
    #[error(transparent)]
    Billing(#[from] BillingError),
}

/// Starts a payment-mode checkout of `pack` for the caller, for their one Stripe customer.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, pack))]
pub async fn start_pack_checkout(
    app: &(impl Time + Users + Analytics + Billing + Stripe),
    caller: &Caller,
    pack: &str,
    urls: ReturnUrls<'_>,
) -> Result<CheckoutLink, PackCheckoutError> {
    let stripe = app
        .stripe()
        .ok_or(BillingError::NotConfigured("STRIPE_SECRET_NAME"))?;
    if app.packs().is_empty() {
        return Err(BillingError::NotConfigured("CREDIT_PACKS").into());
    }
    let pack = app
        .packs()
        .find(pack)
        .ok_or(PackCheckoutError::UnknownPack)?;
    stripe.configured().await?;
    let now = app.clock().now();
    let user = app
        .users()
        .get_or_create(caller.new_user(now))
        .await
        .map_err(BillingError::from)?;
    let customer = customer_of(app, stripe, &user, caller).await?;
    let link = stripe
        .create_pack_checkout(&PackCheckoutRequest {
            user_id: &user.user_id,
            customer: &customer,
            pack,
            success_url: urls.success,
            cancel_url: urls.cancel,
        })
        .await?;
    tracing::info!(session_id = %link.session_id, pack = %pack.pack, "pack checkout started");
    let tally = Tally::new(&user.user_id, app.clock().now())
        .with(Event::CheckoutStarted, [("pack", pack.pack.as_str())]);
    crate::analytics::count_alone(app, &tally).await;
    Ok(link)
}

/// The paid tier a Stripe subscription keeps right now; a second subscription would bill twice
/// (plan changes go through the billing portal).
fn active_subscription(user: &UserRecord, now: chrono::DateTime<chrono::Utc>) -> Option<Tier> {
    let sub = user.subscription.as_ref()?;
    let entitled = user.entitlement(now).tier;
    (user.tier_source == son1k_domain::entitlement::TierSource::Stripe
        && sub.status.keeps_paid_tier()
        && entitled.is_paid())
    .then_some(entitled)
}

/// The user's Stripe customer: the stored one, or one created now (idempotently, keyed by the
/// user id) and stored unless a racing request stored one first, whose id then wins.
/// Stripe gets the caller's email only when the token says it is verified.
async fn customer_of(
    app: &impl Billing,
    stripe: &StripeApi,
    user: &UserRecord,
    caller: &Caller,
) -> Result<String, BillingError> {
    if let Some(customer) = &user.stripe_customer_id {
        return Ok(customer.clone());
    }
    let created = stripe
        .create_customer(&user.user_id, caller.verified_email())
        .await?;
    let stored = app
        .billing()
        .set_customer(&user.user_id, &created)
        .await?
        .unwrap_or_else(|| created.clone());
    if stored != created {
        tracing::warn!(created = %created, stored = %stored, "a racing checkout stored another customer; using it");
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frontend() -> Url {
        Url::parse("http://localhost:3000").unwrap()
    }

    #[test]
    fn return_urls_must_stay_on_the_frontend_origin() {
        let ok = return_url(
            &frontend(),
            "success_url",
            Some("http://localhost:3000/done?x=1"),
            "/",
        );
        assert_eq!(ok.as_deref(), Ok("http://localhost:3000/done?x=1"));
        assert_eq!(
            return_url(&frontend(), "cancel_url", None, "/billing/cancel").as_deref(),
            Ok("http://localhost:3000/billing/cancel")
        );
        for bad in [
            "https://evil.example/done",
            "http://localhost:3001/done",
            "https://localhost:3000/done",
            "http://localhost:3000@evil.example/",
            "http://user@localhost:3000/",
            "/relative",
            "javascript:alert(1)",
        ] {
            let err = return_url(&frontend(), "success_url", Some(bad), "/").unwrap_err();
            assert_eq!(err.field, "success_url", "{bad}");
        }
    }
}
