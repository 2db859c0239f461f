//! Stripe in tests: the local stub (served in-process per test), webhook bodies built from
//! real-shaped fixtures, and Stripe's signature scheme computed here with HMAC-SHA256 directly, so
//! the verifier under test is checked against an independent signer.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use local_api::stripe_stub::StubState;
use serde_json::{json, Value};
use sha2::Sha256;
use son1k::config::{BillingConfig, Secret};
use son1k::domain::billing::PriceTable;
use std::sync::Arc;

pub const SECRET_KEY: &str = "sk_test_son1k_local";
pub const WEBHOOK_SECRET: &str = "whsec_test_son1k";
pub const PRICE_CREATOR: &str = "price_creator_monthly";
pub const PRICE_PRO: &str = "price_pro_monthly";
pub const PRICE_STUDIO: &str = "price_studio_monthly";

/// `Stripe-Signature` for `body` signed at `t` with `secret`: `t=<t>,v1=<hex HMAC-SHA256("<t>.<body>")>`.
pub fn sign(body: &str, t: i64, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Starts a stub on an ephemeral port; returns its state and base URL.
pub async fn spawn_stub() -> (Arc<StubState>, String) {
    let stub = StubState::new(std::time::Duration::from_millis(25));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the Stripe stub");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = stub.clone();
    tokio::spawn(async move { local_api::stripe_stub::serve(listener, state).await });
    (stub, base)
}

/// Billing configured as in `make dev`, with the stub at `base`.
pub fn billing_config(base: &str) -> BillingConfig {
    BillingConfig {
        secret_key: Some(Secret::new(SECRET_KEY)),
        webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
        prices: PriceTable {
            creator: Some(PRICE_CREATOR.into()),
            pro: Some(PRICE_PRO.into()),
            studio: Some(PRICE_STUDIO.into()),
        },
        api_base: Some(base.to_owned()),
        ..BillingConfig::unconfigured()
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/stripe/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

fn unix(rfc3339: &str) -> i64 {
    crate::at(rfc3339).timestamp()
}

/// A `customer.subscription.*` event, from the real-shaped fixture (API version with the billing
/// period on the items).
#[derive(Debug, Clone)]
pub struct SubEvent {
    pub id: String,
    pub kind: &'static str,
    pub created: String,
    pub user: Option<String>,
    pub customer: String,
    pub subscription: String,
    pub status: &'static str,
    pub price: String,
    pub start: String,
    pub end: String,
    /// Also put the period on the subscription itself (older API versions).
    pub period_on_subscription: bool,
    /// Drop the period from the items too: an event with no period at all.
    pub no_period: bool,
}

impl SubEvent {
    /// An `updated`, `active` CREATOR subscription of `user` for 2026-11-20 .. 2026-12-20, sent at
    /// the tests' default instant.
    pub fn new(user: &str) -> Self {
        Self {
            id: format!("evt_{}", ulid::Ulid::generate()),
            kind: "customer.subscription.updated",
            created: crate::DEFAULT_NOW.into(),
            user: Some(user.to_owned()),
            customer: format!("cus_{user}"),
            subscription: format!("sub_{user}"),
            status: "active",
            price: PRICE_CREATOR.into(),
            start: "2026-11-20T00:00:00Z".into(),
            end: "2026-12-20T00:00:00Z".into(),
            period_on_subscription: false,
            no_period: false,
        }
    }

    pub fn json(&self) -> Value {
        let mut e = fixture("customer.subscription.updated");
        e["id"] = json!(self.id);
        e["type"] = json!(self.kind);
        e["created"] = json!(unix(&self.created));
        let o = &mut e["data"]["object"];
        o["id"] = json!(self.subscription);
        o["customer"] = json!(self.customer);
        o["status"] = json!(self.status);
        o["billing_cycle_anchor"] = json!(unix(&self.start));
        o["metadata"] = match &self.user {
            Some(user) => json!({"user_id": user, "tier": "CREATOR"}),
            None => json!({}),
        };
        let item = &mut o["items"]["data"][0];
        item["price"]["id"] = json!(self.price);
        item["plan"]["id"] = json!(self.price);
        item["current_period_start"] = json!(unix(&self.start));
        item["current_period_end"] = json!(unix(&self.end));
        if self.no_period {
            let item = item.as_object_mut().expect("item");
            item.remove("current_period_start");
            item.remove("current_period_end");
        }
        if self.period_on_subscription && !self.no_period {
            o["current_period_start"] = json!(unix(&self.start));
            o["current_period_end"] = json!(unix(&self.end));
        }
        e
    }
}

/// A `checkout.session.completed` event for `user` and `customer` (either may be absent).
pub fn checkout_completed(
    id: &str,
    user: Option<&str>,
    customer: &str,
    created: DateTime<Utc>,
) -> Value {
    let mut e = fixture("checkout.session.completed");
    e["id"] = json!(id);
    e["created"] = json!(created.timestamp());
    let o = &mut e["data"]["object"];
    o["customer"] = json!(customer);
    o["client_reference_id"] = json!(user);
    o["metadata"] = user.map_or(json!({}), |u| json!({"user_id": u}));
    e
}

/// An `invoice.paid` event from the fixture.
pub fn invoice_paid(id: &str) -> Value {
    let mut e = fixture("invoice.paid");
    e["id"] = json!(id);
    e
}
