//! Stripe in tests: the local stub (served in-process per test, so each test sees only its own
//! requests) and billing configured against it; the event builders and the signer are local-api's.

pub use local_api::stripe_events::*;
use local_api::stripe_stub::StubState;
use son1k_app::config::BillingConfig;
use son1k_domain::billing::PriceTable;
use std::sync::Arc;

pub const SECRET_KEY: &str = "sk_test_son1k_local";
pub const WEBHOOK_SECRET: &str = "whsec_test_son1k";
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

/// What the Stripe secret holds in the tests (as `make dev`'s): `secret_key` and `webhook_secret`.
pub fn secret_json() -> String {
    serde_json::json!({"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}).to_string()
}

/// Billing configured as in `make dev`, its keys in the secret `secret_name`, with the stub at
/// `base`.
pub fn billing_config(base: &str, secret_name: &str) -> BillingConfig {
    BillingConfig {
        secret_name: Some(secret_name.to_owned()),
        prices: PriceTable {
            creator: Some(PRICE_CREATOR.into()),
            pro: Some(PRICE_PRO.into()),
            studio: Some(PRICE_STUDIO.into()),
            creator_annual: Some(PRICE_CREATOR_ANNUAL.into()),
            pro_annual: Some(PRICE_PRO_ANNUAL.into()),
            studio_annual: Some(PRICE_STUDIO_ANNUAL.into()),
        },
        packs: son1k_domain::credits::Packs::parse(CREDIT_PACKS).expect("the local packs"),
        api_base: Some(base.to_owned()),
        ..BillingConfig::unconfigured()
    }
}
