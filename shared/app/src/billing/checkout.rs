//! Starting a subscription (Stripe Checkout) and managing it (the billing portal): the user's one
//! Stripe customer is created once and reused; return URLs stay on the frontend's origin.

use super::api::{CheckoutLink, CheckoutRequest, StripeApi};
use super::BillingError;
use crate::caller::Caller;
use crate::ports::{Analytics, Billing, Stripe, Time, Users};
use son1k_domain::analytics::Event;
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

/// Starts a checkout of `tier` for the caller, with validated return URLs.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, tier = %tier))]
pub async fn start_checkout(
    app: &(impl Time + Users + Analytics + Billing + Stripe),
    caller: &Caller,
    tier: Tier,
    success_url: &str,
    cancel_url: &str,
) -> Result<CheckoutLink, BillingError> {
    let (stripe, price_id) = checkout_config(app, tier)?;
    stripe.configured().await?;
    let now = app.clock().now();
    let user = app.users().get_or_create(caller.new_user(now)).await?;
    if let Some(current) = active_subscription(&user, now) {
        return Err(BillingError::AlreadySubscribed(current));
    }
    let customer = customer_of(app, stripe, &user, caller).await?;
    let link = stripe
        .create_checkout(&CheckoutRequest {
            user_id: &user.user_id,
            customer: &customer,
            tier: tier.as_str(),
            price_id,
            success_url,
            cancel_url,
        })
        .await?;
    tracing::info!(session_id = %link.session_id, "checkout started");
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

fn checkout_config(app: &impl Stripe, tier: Tier) -> Result<(&StripeApi, &str), BillingError> {
    let stripe = app
        .stripe()
        .ok_or(BillingError::NotConfigured("STRIPE_SECRET_NAME"))?;
    let price = app
        .prices()
        .price_of(tier)
        .ok_or(BillingError::NotConfigured(match tier {
            Tier::Creator => "STRIPE_PRICE_CREATOR",
            Tier::Pro => "STRIPE_PRICE_PRO",
            _ => "STRIPE_PRICE_STUDIO",
        }))?;
    Ok((stripe, price))
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
