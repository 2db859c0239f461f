//! Stripe webhook events for dev and tests: real-shaped fixtures (`local/api/fixtures/stripe`) with
//! the fields that matter set, and Stripe's signature scheme computed here with HMAC-SHA256 directly,
//! so the verifier in `son1k_app::billing::signature` is checked against an independent signer.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// Price ids `make dev` sells (the local defaults in local/dev-env.sh).
pub const PRICE_CREATOR: &str = "price_creator_monthly";
pub const PRICE_PRO: &str = "price_pro_monthly";
pub const PRICE_STUDIO: &str = "price_studio_monthly";
/// Yearly price ids (`STRIPE_PRICE_<TIER>_ANNUAL`).
pub const PRICE_CREATOR_ANNUAL: &str = "price_creator_yearly";
pub const PRICE_PRO_ANNUAL: &str = "price_pro_yearly";
pub const PRICE_STUDIO_ANNUAL: &str = "price_studio_yearly";
/// The packs of credits `make dev` sells (`CREDIT_PACKS`).
pub const CREDIT_PACKS: &str = "pack_10:10:499:usd:price_pack_10,pack_50:50:1999:usd:price_pack_50";

/// `Stripe-Signature` for `body` signed at `t` with `secret`: `t=<t>,v1=<hex HMAC-SHA256("<t>.<body>")>`.
pub fn sign(body: &str, t: i64, secret: &str) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub const SUBSCRIPTION_UPDATED: &str =
    include_str!("../fixtures/stripe/customer.subscription.updated.json");
pub const CHECKOUT_COMPLETED: &str =
    include_str!("../fixtures/stripe/checkout.session.completed.json");
pub const INVOICE_PAID: &str = include_str!("../fixtures/stripe/invoice.paid.json");
pub const CHARGE_REFUNDED: &str = include_str!("../fixtures/stripe/charge.refunded.json");

/// The instant events are sent at unless a test says otherwise.
pub const DEFAULT_CREATED: &str = "2026-11-26T10:00:00Z";

/// A fixture as JSON (tests/it/stripe_webhook.rs checks each one parses).
fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Unix seconds of an RFC 3339 instant (0 for a malformed literal).
fn unix(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

/// A `customer.subscription.*` event, from the real-shaped fixture (API version with the billing
/// period on the items).
#[derive(Debug, Clone)]
pub struct SubEvent {
    pub id: String,
    pub kind: String,
    pub created: String,
    pub user: Option<String>,
    pub customer: String,
    pub subscription: String,
    pub status: String,
    pub price: String,
    pub start: String,
    pub end: String,
    /// Also put the period on the subscription itself (older API versions).
    pub period_on_subscription: bool,
    /// Drop the period from the items too: an event with no period at all.
    pub no_period: bool,
    /// `billing_cycle_anchor`; the period's start when `None`.
    pub anchor: Option<String>,
    pub cancel_at_period_end: bool,
}

impl SubEvent {
    /// An `updated`, `active` CREATOR subscription of `user` for 2026-11-20 .. 2026-12-20, sent at
    /// the tests' default instant.
    pub fn new(user: &str) -> Self {
        Self {
            id: format!("evt_{}", ulid::Ulid::generate()),
            kind: "customer.subscription.updated".into(),
            created: DEFAULT_CREATED.into(),
            user: Some(user.to_owned()),
            customer: format!("cus_{user}"),
            subscription: format!("sub_{user}"),
            status: "active".into(),
            price: PRICE_CREATOR.into(),
            start: "2026-11-20T00:00:00Z".into(),
            end: "2026-12-20T00:00:00Z".into(),
            period_on_subscription: false,
            no_period: false,
            anchor: None,
            cancel_at_period_end: false,
        }
    }

    pub fn json(&self) -> Value {
        let (start, end) = (unix(&self.start), unix(&self.end));
        let mut e = fixture(SUBSCRIPTION_UPDATED);
        set(&mut e, "/id", json!(self.id));
        set(&mut e, "/type", json!(self.kind));
        set(&mut e, "/created", json!(unix(&self.created)));
        let metadata = match &self.user {
            Some(user) => json!({"user_id": user, "tier": "CREATOR"}),
            None => json!({}),
        };
        for (field, value) in [
            ("id", json!(self.subscription)),
            ("customer", json!(self.customer)),
            ("status", json!(self.status)),
            (
                "billing_cycle_anchor",
                json!(self.anchor.as_deref().map_or(start, unix)),
            ),
            ("cancel_at_period_end", json!(self.cancel_at_period_end)),
            ("metadata", metadata),
        ] {
            set(&mut e, &format!("/data/object/{field}"), value);
        }
        const ITEM: &str = "/data/object/items/data/0";
        set(&mut e, &format!("{ITEM}/price/id"), json!(self.price));
        set(&mut e, &format!("{ITEM}/plan/id"), json!(self.price));
        if !self.no_period {
            set(
                &mut e,
                &format!("{ITEM}/current_period_start"),
                json!(start),
            );
            set(&mut e, &format!("{ITEM}/current_period_end"), json!(end));
        } else if let Some(item) = e.pointer_mut(ITEM).and_then(Value::as_object_mut) {
            item.remove("current_period_start");
            item.remove("current_period_end");
        }
        if self.period_on_subscription && !self.no_period {
            set(&mut e, "/data/object/current_period_start", json!(start));
            set(&mut e, "/data/object/current_period_end", json!(end));
        }
        e
    }
}

/// Sets the member at `pointer` (its parent must exist, as it does in the fixtures).
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let Some((parent, name)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(object) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
        object.insert(name.to_owned(), value);
    }
}

/// A `checkout.session.completed` event for `user` and `customer` (either may be absent).
pub fn checkout_completed(
    id: &str,
    user: Option<&str>,
    customer: &str,
    created: DateTime<Utc>,
) -> Value {
    let mut e = fixture(CHECKOUT_COMPLETED);
    set(&mut e, "/id", json!(id));
    set(&mut e, "/created", json!(created.timestamp()));
    set(&mut e, "/data/object/customer", json!(customer));
    set(&mut e, "/data/object/client_reference_id", json!(user));
    let metadata = user.map_or(json!({}), |u| json!({"user_id": u}));
    set(&mut e, "/data/object/metadata", metadata);
    e
}

/// An `invoice.paid` event from the fixture.
pub fn invoice_paid(id: &str) -> Value {
    let mut e = fixture(INVOICE_PAID);
    set(&mut e, "/id", json!(id));
    e
}

/// A pack's checkout session in an event of `kind` (`checkout.session.completed` or
/// `checkout.session.async_payment_succeeded`): payment mode, `payment_status` as given, the
/// metadata our pack checkout writes.
#[derive(Debug, Clone)]
pub struct PackEvent {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    pub session: String,
    pub user: String,
    pub customer: String,
    pub payment_intent: String,
    pub payment_status: String,
    pub pack: String,
    pub generations: u32,
}

impl PackEvent {
    /// A paid `pack_10` session of `user` (customer `cus_<user>`), completed at `created`.
    pub fn new(user: &str, session: &str, created: DateTime<Utc>) -> Self {
        Self {
            id: format!("evt_{}", ulid::Ulid::generate()),
            kind: "checkout.session.completed".into(),
            created,
            session: session.to_owned(),
            user: user.to_owned(),
            customer: format!("cus_{user}"),
            payment_intent: format!("pi_{session}"),
            payment_status: "paid".into(),
            pack: "pack_10".into(),
            generations: 10,
        }
    }

    pub fn json(&self) -> Value {
        let mut e = checkout_completed(&self.id, Some(&self.user), &self.customer, self.created);
        set(&mut e, "/type", json!(self.kind));
        for (field, value) in [
            ("id", json!(self.session)),
            ("mode", json!("payment")),
            ("subscription", Value::Null),
            ("invoice", Value::Null),
            ("payment_intent", json!(self.payment_intent)),
            ("payment_status", json!(self.payment_status)),
            (
                "metadata",
                json!({"user_id": self.user, "pack": self.pack,
                       "generations": self.generations.to_string()}),
            ),
        ] {
            set(&mut e, &format!("/data/object/{field}"), value);
        }
        e
    }
}

/// A `charge.refunded` event for the charge `payment_intent` made for `customer`.
pub fn charge_refunded(
    id: &str,
    customer: &str,
    payment_intent: &str,
    created: DateTime<Utc>,
) -> Value {
    let mut e = fixture(CHARGE_REFUNDED);
    set(&mut e, "/id", json!(id));
    set(&mut e, "/created", json!(created.timestamp()));
    set(&mut e, "/data/object/customer", json!(customer));
    set(&mut e, "/data/object/payment_intent", json!(payment_intent));
    e
}
