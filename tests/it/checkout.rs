//! `POST /api/tiers/checkout` and `POST /api/tiers/portal` against the local Stripe stub: what Stripe
//! is asked, the one customer per user, return URLs, and every refusal.

use futures::future::join_all;
use serde_json::{json, Value};
use son1k_domain::entitlement::SubscriptionStatus;
use son1k_domain::tiers::Tier;
use son1k_tests::stripe::{PRICE_PRO, SECRET_KEY};
use son1k_tests::{subscription, As, TestApp, TestResponse};

pub(crate) async fn checkout(app: &TestApp, user: &str, body: Value) -> TestResponse {
    app.call(
        "POST",
        "/api/tiers/checkout",
        As::user(user),
        Some(&body.to_string()),
    )
    .await
}

/// The parameters of the one customer create the stub received, checked to be `user`'s.
fn the_customer_of(app: &TestApp, user: &str) -> std::collections::BTreeMap<String, String> {
    let customers = app.stripe.requests_to("/v1/customers");
    assert_eq!(customers.len(), 1);
    let params = customers[0].params.clone();
    assert_eq!(
        params.get("metadata[user_id]").map(String::as_str),
        Some(user)
    );
    params
}

async fn portal(app: &TestApp, user: &str, body: Option<&str>) -> TestResponse {
    app.call("POST", "/api/tiers/portal", As::user(user), body)
        .await
}

#[tokio::test]
async fn checkout_creates_a_subscription_session_for_the_tier_s_price() {
    let app = TestApp::spawn().await;
    let res = checkout(&app, "buyer", json!({"tier": "PRO"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    let session_id = body["session_id"].as_str().expect("session id");
    assert!(session_id.starts_with("cs_test_"));
    assert!(body["checkout_url"]
        .as_str()
        .expect("url")
        .ends_with(session_id));

    let sessions = app.stripe.requests_to("/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1);
    let p = &sessions[0].params;
    let customer = app
        .user_record("buyer")
        .await
        .expect("user")
        .stripe_customer_id;
    assert_eq!(
        p.get("customer"),
        customer.as_ref(),
        "the stored customer is used"
    );
    for (name, want) in [
        ("mode", "subscription"),
        ("line_items[0][price]", PRICE_PRO),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", "buyer"),
        ("metadata[user_id]", "buyer"),
        ("metadata[tier]", "PRO"),
        ("subscription_data[metadata][user_id]", "buyer"),
        (
            "success_url",
            "http://localhost:3000/billing/success?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "http://localhost:3000/billing/cancel"),
    ] {
        assert_eq!(
            p.get(name).map(String::as_str),
            Some(want),
            "{name} in {p:?}"
        );
    }
    let customer = the_customer_of(&app, "buyer");
    assert_eq!(
        customer.get("email").map(String::as_str),
        Some("buyer@example.com")
    );
    assert!(!res.text().contains(SECRET_KEY));
}

#[tokio::test]
async fn checkout_twice_makes_one_customer_and_reuses_it() {
    let app = TestApp::spawn().await;
    for tier in ["CREATOR", "STUDIO"] {
        assert_eq!(
            checkout(&app, "twice", json!({"tier": tier})).await.status,
            200
        );
    }
    assert_eq!(app.stripe.requests_to("/v1/customers").len(), 1);
    assert_eq!(app.stripe.created("/v1/customers").len(), 1);
    let customer = app
        .user_record("twice")
        .await
        .expect("user")
        .stripe_customer_id;
    let sessions = app.stripe.requests_to("/v1/checkout/sessions");
    assert!(sessions
        .iter()
        .all(|s| s.params.get("customer") == customer.as_ref()));
}

#[tokio::test]
async fn two_racing_checkouts_make_one_customer() {
    let app = TestApp::spawn().await;
    let answers =
        join_all((0..2).map(|_| checkout(&app, "racer", json!({"tier": "CREATOR"})))).await;
    for res in &answers {
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let stored = app
        .user_record("racer")
        .await
        .expect("user")
        .stripe_customer_id;
    let sessions = app.stripe.requests_to("/v1/checkout/sessions");
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .all(|s| s.params.get("customer") == stored.as_ref()),
        "both sessions use the stored customer {stored:?}: {sessions:?}"
    );
    let created = app.stripe.created("/v1/customers");
    assert_eq!(created.len(), 1, "Stripe made one customer: {created:?}");
    assert_eq!(stored.as_ref(), created.first());
    let creates = app.stripe.requests_to("/v1/customers");
    assert!(
        creates
            .iter()
            .all(|c| c.idempotency_key.as_deref() == Some("son1k-customer-racer")),
        "every create carries the user's idempotency key: {creates:?}"
    );
}

#[tokio::test]
async fn return_urls_on_another_origin_are_refused_before_stripe_is_asked() {
    let app = TestApp::spawn().await;
    for (field, url) in [
        ("success_url", "https://evil.example/thanks"),
        ("cancel_url", "http://localhost:3000@evil.example/"),
        ("success_url", "not a url"),
    ] {
        let res = checkout(&app, "phish", json!({"tier": "PRO", field: url})).await;
        let doc = res.assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field);
    }
    let res = checkout(
        &app,
        "phish",
        json!({"tier": "PRO", "success_url": "http://localhost:3000/welcome?plan=pro"}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let sessions = app.stripe.requests_to("/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1, "only the valid request reached Stripe");
    assert_eq!(
        sessions[0].params.get("success_url").map(String::as_str),
        Some("http://localhost:3000/welcome?plan=pro")
    );
}

#[tokio::test]
async fn checkout_refuses_free_unknown_or_missing_tiers() {
    let app = TestApp::spawn().await;
    for body in [json!({"tier": "FREE"}), json!({"tier": "GOLD"}), json!({})] {
        let doc = checkout(&app, "picky", body.clone())
            .await
            .assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], "tier", "{body}");
    }
    assert!(app.stripe.requests().is_empty());
}

#[tokio::test]
async fn an_active_subscriber_gets_409_already_subscribed() {
    let app = TestApp::spawn().await;
    app.stripe_user(
        "subbed",
        Tier::Pro,
        subscription(
            SubscriptionStatus::Active,
            PRICE_PRO,
            "2026-11-20T00:00:00Z",
            "2026-12-20T00:00:00Z",
        ),
    )
    .await;
    let doc = checkout(&app, "subbed", json!({"tier": "STUDIO"}))
        .await
        .assert_problem(409, "already_subscribed");
    assert_eq!(doc["tier"], "PRO");
    assert!(app.stripe.requests().is_empty());
}

#[tokio::test]
async fn without_a_secret_key_or_a_price_checkout_is_not_configured() {
    let app = TestApp::spawn().await;
    // A Stripe secret named but not created: what a first deploy without Stripe has.
    let keyless = app
        .with_billing(|b| {
            b.secret_name = Some(format!("{}-none", app.state.config.names.users_table))
        })
        .await;
    checkout(&keyless, "early", json!({"tier": "PRO"}))
        .await
        .assert_problem(503, "billing_not_configured");
    portal(&keyless, "early", None)
        .await
        .assert_problem(503, "billing_not_configured");
    let priceless = app.with_billing(|b| b.prices.studio = None).await;
    checkout(&priceless, "early", json!({"tier": "STUDIO"}))
        .await
        .assert_problem(503, "billing_not_configured");
    // Bad input is still a 400 on an unconfigured deployment.
    checkout(&keyless, "early", json!({"tier": "FREE"}))
        .await
        .assert_problem(400, "invalid_request");
    assert!(app.stripe.requests().is_empty());
}

#[tokio::test]
async fn a_stripe_failure_is_a_503_without_stripe_s_message() {
    let app = TestApp::spawn().await;
    app.stripe.fail_next(1);
    let res = checkout(&app, "unlucky", json!({"tier": "CREATOR"})).await;
    res.assert_problem(503, "dependency_unavailable");
    assert!(!res.text().contains("injected") && !res.text().contains("stripe.com"));
    // The retry goes through and still makes one customer.
    assert_eq!(
        checkout(&app, "unlucky", json!({"tier": "CREATOR"}))
            .await
            .status,
        200
    );
    let user = app.user_record("unlucky").await.expect("user");
    assert!(user.stripe_customer_id.is_some());
}

#[tokio::test]
async fn the_portal_needs_a_billing_account_and_returns_to_the_frontend() {
    let app = TestApp::spawn().await;
    portal(&app, "nobody", None)
        .await
        .assert_problem(409, "no_billing_account");
    assert_eq!(
        checkout(&app, "member", json!({"tier": "CREATOR"}))
            .await
            .status,
        200
    );
    let res = portal(&app, "member", None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.json()["portal_url"]
        .as_str()
        .expect("url")
        .contains("/p/session/bps_"));
    let res = portal(
        &app,
        "member",
        Some(r#"{"return_url":"http://localhost:3000/account"}"#),
    )
    .await;
    assert_eq!(res.status, 200);
    let sessions = app.stripe.requests_to("/v1/billing_portal/sessions");
    let customer = app
        .user_record("member")
        .await
        .expect("user")
        .stripe_customer_id;
    assert!(sessions
        .iter()
        .all(|s| s.params.get("customer") == customer.as_ref()));
    let returns: Vec<_> = sessions
        .iter()
        .map(|s| s.params.get("return_url").cloned())
        .collect();
    assert_eq!(
        returns,
        [
            Some("http://localhost:3000/billing".into()),
            Some("http://localhost:3000/account".into())
        ]
    );
    portal(
        &app,
        "member",
        Some(r#"{"return_url":"https://evil.example/"}"#),
    )
    .await
    .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn billing_routes_need_a_token() {
    let app = TestApp::spawn().await;
    for path in ["/api/tiers/checkout", "/api/tiers/portal"] {
        app.call("POST", path, None, Some(r#"{"tier":"PRO"}"#))
            .await
            .assert_problem(401, "unauthorized");
    }
}

/// The key is read from Secrets Manager once and kept; when Stripe refuses it (rolled in the
/// dashboard, the secret given a new version), the function reads the secret again and the same
/// request succeeds with the new key: a rotation needs no redeploy.
#[tokio::test]
async fn a_rotated_stripe_key_is_read_again_when_stripe_refuses_the_old_one() {
    let app = TestApp::spawn().await;
    assert_eq!(
        checkout(&app, "rolling", json!({"tier": "PRO"}))
            .await
            .status,
        200
    );
    let rotated = "sk_test_son1k_rotated";
    app.rotate_stripe_secret(rotated, son1k_tests::stripe::WEBHOOK_SECRET)
        .await;
    // Until Stripe refuses it, the key read first is still the one in use (no read per request).
    assert_eq!(portal(&app, "rolling", None).await.status, 200);
    app.stripe.roll_key(son1k_tests::stripe::SECRET_KEY);
    let res = portal(&app, "rolling", None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let portal_keys: Vec<_> = app
        .stripe
        .requests_to("/v1/billing_portal/sessions")
        .iter()
        .map(|r| r.api_key.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        portal_keys,
        [
            son1k_tests::stripe::SECRET_KEY,
            son1k_tests::stripe::SECRET_KEY,
            rotated
        ],
        "the rotated key was not read before the old one was refused"
    );
}

/// Stripe gets the caller's email only when the token says it is verified: nobody can have Stripe
/// send receipts and account mail to an address they do not own.
#[tokio::test]
async fn an_unverified_email_is_not_given_to_stripe() {
    let app = TestApp::spawn().await;
    let res = app
        .call(
            "POST",
            "/api/tiers/checkout",
            As::unverified("unsure"),
            Some(&json!({"tier": "PRO"}).to_string()),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let customer = the_customer_of(&app, "unsure");
    assert_eq!(customer.get("email"), None, "{customer:?}");
}
