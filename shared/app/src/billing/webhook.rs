//! The webhook use case: a verified Stripe event becomes stored state once, and never moves a user
//! back to an older state. The decision is `domain::billing::decide`; the store applies it with the
//! event's dedupe item in one transaction conditioned on the fence that was read; a lost race reads
//! the user again and decides again.

use super::signature::{verify, SignatureError};
use crate::config::Secret;
use crate::credits::{Outcome, Purchase};
use crate::ports::{Billing, Credits, Keys, Stripe, Time, Users};
use son1k_domain::billing::{
    decide, milestone, settled_fence, ties, BillingState, ChargeRefunded, CheckoutCompleted,
    Decision, EventError, EventFamily, PriceTable, StripeEvent, SubscriptionSnapshot, TierChange,
};
use son1k_domain::ids::UserId;
use son1k_store::analytics::Tally;
use son1k_store::billing::{ApplyOutcome, EventMark};
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

/// Attempts before a webhook gives up with 503 (Stripe then retries the event later).
const MAX_ATTEMPTS: u32 = 8;

/// What became of an event. Every outcome is acknowledged with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// This event id was applied before.
    Duplicate,
    /// Nothing to change (the reason is logged).
    Ignored(&'static str),
    /// No user of ours goes with the event.
    UnknownUser,
}

impl From<Outcome> for WebhookOutcome {
    /// A credit change done before (a redelivery, the other event of one payment) is a duplicate.
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Applied => Self::Applied,
            Outcome::Done => Self::Duplicate,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The event's object lacks a field we need to act on it.
    #[error(transparent)]
    Malformed(#[from] EventError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every attempt lost a race (a storm of events for one user); Stripe retries later.
    #[error("gave up after {0} attempts")]
    Contended(u32),
    /// Stripe could not be asked for the subscription (a same-second tie); Stripe retries later.
    #[error(transparent)]
    Billing(#[from] super::BillingError),
}

/// Why an event was not let in: no secret to check it with, the store holding it failed, or the
/// signature did not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    #[error(transparent)]
    Billing(#[from] super::BillingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signature(#[from] super::signature::SignatureError),
}

/// The webhook signing secret (`webhook_secret` of the Stripe secret).
async fn webhook_secret(app: &impl Keys, name: &str) -> Result<Secret, AuthenticateError> {
    app.secrets()
        .field(name, "webhook_secret")
        .await?
        .ok_or(AuthenticateError::Billing(
            super::BillingError::NotConfigured("the Stripe secret's webhook_secret"),
        ))
}

/// Checks that `body` is Stripe's, signed as `header` says. A signature that does not verify with
/// the secret we hold may have been made with a rotated one: the secret is read again (at most once
/// per `secrets::REREAD_AFTER`) and the body checked once more.
pub async fn authenticate(
    app: &(impl Time + Keys),
    body: &[u8],
    header: Option<&str>,
) -> Result<(), AuthenticateError> {
    let name = app
        .stripe_secret_name()
        .ok_or(super::BillingError::NotConfigured("STRIPE_SECRET_NAME"))?;
    let now = app.clock().now();
    let mut checked = verify(body, header, webhook_secret(app, name).await?.expose(), now);
    if checked == Err(SignatureError::Mismatch)
        && app
            .secrets()
            .forget_if_older(name, crate::secrets::REREAD_AFTER)
            .await
    {
        checked = verify(body, header, webhook_secret(app, name).await?.expose(), now);
    }
    checked.inspect_err(|err| tracing::warn!(reason = %err, "webhook signature refused"))?;
    Ok(())
}

/// The subscription `id` as Stripe has it now (one call, only to settle a same-second tie).
async fn fetch(app: &impl Stripe, id: &str) -> Result<SubscriptionSnapshot, WebhookError> {
    let stripe = app
        .stripe()
        .ok_or(super::BillingError::NotConfigured("the Stripe secret"))?;
    let object = stripe.subscription(id).await?;
    tracing::info!(
        subscription = id,
        "a same-second event tie settled by Stripe's current state"
    );
    Ok(SubscriptionSnapshot::from_object(&object)?)
}

/// Applies a verified event.
#[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = %event.kind))]
pub async fn handle_event(
    app: &(impl Time + Users + Billing + Stripe + Credits),
    event: &StripeEvent,
) -> Result<WebhookOutcome, WebhookError> {
    let outcome = match event.family() {
        EventFamily::Subscription(_) => subscription_event(app, event).await?,
        EventFamily::CheckoutCompleted => {
            let session = CheckoutCompleted::from_object(&event.object);
            match (session.is_pack(), session.is_paid()) {
                (true, true) => pack_paid(app, event, &session).await?,
                // A delayed payment method: `async_payment_succeeded` follows once it settles.
                (true, false) => WebhookOutcome::Ignored("payment_pending"),
                (false, _) => checkout_completed(app, event).await?,
            }
        }
        EventFamily::AsyncPaymentSucceeded => {
            let session = CheckoutCompleted::from_object(&event.object);
            if session.is_pack() {
                pack_paid(app, event, &session).await?
            } else {
                WebhookOutcome::Ignored("state_follows_subscription_events")
            }
        }
        EventFamily::ChargeRefunded => charge_refunded(app, event).await?,
        // Payment outcomes change the subscription's status and period, and Stripe reports those
        // as `customer.subscription.updated`: that event is the one applied.
        EventFamily::Invoice => WebhookOutcome::Ignored("state_follows_subscription_events"),
        EventFamily::Other => WebhookOutcome::Ignored("type_not_handled"),
    };
    tracing::info!(outcome = ?outcome, "stripe event handled");
    Ok(outcome)
}

async fn subscription_event(
    app: &(impl Time + Users + Billing + Stripe),
    event: &StripeEvent,
) -> Result<WebhookOutcome, WebhookError> {
    let snapshot = SubscriptionSnapshot::from_object(&event.object)?;
    let customer = snapshot.customer.as_deref();
    let Some(mut user) = find_user(app, snapshot.user_id.as_deref(), customer).await? else {
        tracing::warn!(subscription = %snapshot.id, "subscription event for no user of ours");
        return Ok(WebhookOutcome::UnknownUser);
    };
    let fence = event.fence();
    // A tie with the applied event (same second, same lifecycle rank): what Stripe says now.
    let mut settled: Option<(String, SubscriptionSnapshot)> = None;
    for attempt in 0..MAX_ATTEMPTS {
        let same_subscription = user
            .subscription
            .as_ref()
            .is_some_and(|s| s.id == snapshot.id);
        let tie = same_subscription && ties(user.sub_fence.as_deref(), &fence);
        if tie && settled.is_none() {
            settled = Some((settled_fence(&fence), fetch(app, &snapshot.id).await?));
        }
        let read = match (&settled, tie) {
            (Some((settled_fence, current)), true) => Read::Settled(settled_fence, current),
            _ => Read::Event(&fence, &snapshot),
        };
        let change = match read.decide(&user, app.prices()) {
            Decision::Apply(change) => change,
            Decision::Ignore(reason) => {
                if reason != son1k_domain::billing::Ignored::Stale {
                    tracing::warn!(user_id = %user.user_id, reason = reason.as_str(), "event changes nothing");
                }
                return Ok(WebhookOutcome::Ignored(reason.as_str()));
            }
        };
        match apply(app, event, &user, &change, customer).await? {
            ApplyOutcome::Applied => {
                tracing::info!(user_id = %user.user_id, tier = %change.tier,
                    status = ?change.subscription.status, "subscription applied");
                return Ok(WebhookOutcome::Applied);
            }
            ApplyOutcome::Duplicate => return Ok(WebhookOutcome::Duplicate),
            ApplyOutcome::UserChanged => {
                crate::retry::pause(attempt).await;
                user = crate::retry::reread(app, &user.user_id, "applying a Stripe event").await?;
            }
        }
    }
    Err(WebhookError::Contended(MAX_ATTEMPTS))
}

/// What a subscription event is decided from: the event itself, or (when it ties with the event
/// applied) what Stripe says now, newer than both.
enum Read<'a> {
    Event(&'a str, &'a SubscriptionSnapshot),
    Settled(&'a str, &'a SubscriptionSnapshot),
}

impl Read<'_> {
    fn decide(&self, user: &UserRecord, prices: &PriceTable) -> Decision {
        match *self {
            Read::Event(fence, snapshot) => decide(&user.billing_state(), fence, snapshot, prices),
            // Stripe's answer is newer than both events: decided without the fence order.
            Read::Settled(fence, current) => decide(
                &BillingState {
                    sub_fence: None,
                    ..user.billing_state()
                },
                fence,
                current,
                prices,
            ),
        }
    }
}

/// Stores `change` for `user` with the event's id (so a redelivery is a duplicate) and the
/// analytics of the subscription's milestone, fenced on the user as read.
async fn apply(
    app: &(impl Time + Billing),
    event: &StripeEvent,
    user: &UserRecord,
    change: &TierChange,
    customer: Option<&str>,
) -> Result<ApplyOutcome, StoreError> {
    let mark = EventMark {
        id: &event.id,
        kind: &event.kind,
        now: app.clock().now(),
    };
    let tally = Tally::new(&user.user_id, mark.now);
    let tally = match milestone(user.subscription.as_ref(), &change.subscription) {
        Some(happened) => tally.with(
            happened,
            [
                ("subscription_id", change.subscription.id.as_str()),
                ("tier", change.tier.as_str()),
                ("stripe_event_id", event.id.as_str()),
            ],
        ),
        None => tally,
    };
    let fence = user.sub_fence.as_deref();
    app.billing()
        .apply_change(&user.user_id, fence, change, customer, mark, &tally)
        .await
}

async fn checkout_completed(
    app: &(impl Time + Users + Billing),
    event: &StripeEvent,
) -> Result<WebhookOutcome, WebhookError> {
    let session = CheckoutCompleted::from_object(&event.object);
    let Some(customer) = session.customer.as_deref() else {
        return Ok(WebhookOutcome::Ignored("no_customer"));
    };
    let Some(user) = find_user(app, session.user_id.as_deref(), Some(customer)).await? else {
        tracing::warn!("checkout completed for no user of ours");
        return Ok(WebhookOutcome::UnknownUser);
    };
    // Checkout reuses the customer stored when it started, so it is normally linked already; the
    // tier itself arrives with the subscription's own events.
    if user.stripe_customer_id.is_some() {
        return Ok(WebhookOutcome::Ignored("customer_already_linked"));
    }
    let mark = EventMark {
        id: &event.id,
        kind: &event.kind,
        now: app.clock().now(),
    };
    Ok(
        match app
            .billing()
            .link_customer(&user.user_id, customer, mark)
            .await?
        {
            ApplyOutcome::Applied => WebhookOutcome::Applied,
            ApplyOutcome::Duplicate => WebhookOutcome::Duplicate,
            // Linked meanwhile by a racing delivery or checkout: nothing left to do.
            ApplyOutcome::UserChanged => WebhookOutcome::Ignored("customer_already_linked"),
        },
    )
}

/// A pack's payment succeeded: its block is added once (the session id is the block id).
async fn pack_paid(
    app: &(impl Time + Users + Billing + Stripe + Credits),
    event: &StripeEvent,
    session: &CheckoutCompleted,
) -> Result<WebhookOutcome, WebhookError> {
    let id = session.id.as_deref().ok_or(EventError {
        field: "data.object.id",
        problem: "must be a string",
    })?;
    // What our checkout sold, as it wrote it in the session; else the pack as configured now.
    let generations = session.generations.or_else(|| {
        session
            .pack
            .as_deref()
            .and_then(|pack| app.packs().find(pack))
            .map(|pack| pack.generations)
    });
    let Some(generations) = generations.filter(|g| *g >= 1) else {
        tracing::error!(session = id, "a paid pack session names no generations");
        return Ok(WebhookOutcome::Ignored("no_generations"));
    };
    let Some(user) =
        find_user(app, session.user_id.as_deref(), session.customer.as_deref()).await?
    else {
        tracing::warn!(session = id, "pack paid for no user of ours");
        return Ok(WebhookOutcome::UnknownUser);
    };
    let purchase = Purchase {
        session: id,
        generations,
        payment: session.payment_intent.as_deref(),
        paid_at: event.created,
        pack: session.pack.as_deref(),
    };
    Ok(crate::credits::purchase(app, user, &purchase).await?.into())
}

/// A charge was refunded: what remains of the block its payment bought is voided.
async fn charge_refunded(
    app: &(impl Time + Users + Billing + Credits),
    event: &StripeEvent,
) -> Result<WebhookOutcome, WebhookError> {
    let charge = ChargeRefunded::from_object(&event.object);
    let (Some(customer), Some(payment)) = (charge.customer.as_deref(), charge.payment_intent)
    else {
        return Ok(WebhookOutcome::Ignored("no_customer_or_payment"));
    };
    let Some(user) = find_user(app, None, Some(customer)).await? else {
        return Ok(WebhookOutcome::UnknownUser);
    };
    Ok(crate::credits::refund(app, user, &payment).await?.into())
}

/// The user an event is about: the user id our checkout put in the metadata, as long as the
/// event's customer is that user's (or belongs to nobody yet); else the owner of the customer.
async fn find_user(
    app: &(impl Users + Billing),
    user_id: Option<&str>,
    customer: Option<&str>,
) -> Result<Option<UserRecord>, StoreError> {
    let named = match user_id.and_then(|raw| UserId::parse(raw).ok()) {
        Some(id) => app.users().get(&id).await?,
        None => None,
    };
    let Some(customer) = customer else {
        return Ok(named);
    };
    if let Some(user) = named {
        match user.stripe_customer_id.as_deref() {
            Some(stored) if stored == customer => return Ok(Some(user)),
            Some(_) => {}
            // Normally checkout stored the customer already; if not, make sure no one else owns it.
            None => match app.billing().user_of_customer(customer).await? {
                None => return Ok(Some(user)),
                Some(owner) if owner == user.user_id => return Ok(Some(user)),
                Some(_) => {}
            },
        }
        tracing::warn!(user_id = %user.user_id, "metadata names a user with another customer; the customer's owner is used");
    }
    match app.billing().user_of_customer(customer).await? {
        Some(id) => app.users().get(&id).await,
        None => Ok(None),
    }
}
