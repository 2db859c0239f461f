//! Packs of credits bought through Stripe Checkout (payment mode) against the local Stripe stub: the
//! public catalogue, the checkout, the webhook adding each paid session's block exactly once
//! whatever the redelivery or order, a refund voiding only what remains, and the spending order of
//! a purchased block beside a grant and the allowance.

use serde_json::{json, Value};
use son1k_tests::stripe::{charge_refunded, PackEvent};
use son1k_tests::{at, As, TestApp, TestResponse};
use std::collections::BTreeMap;

async fn checkout(app: &TestApp, user: &str, body: Value) -> TestResponse {
    app.call(
        "POST",
        "/api/credits/checkout",
        As::user(user),
        Some(&body.to_string()),
    )
    .await
}

async fn credits(app: &TestApp, user: &str) -> Value {
    let res = app.call("GET", "/api/credits", As::user(user), None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// The ledger's entries, newest first, as (kind, block, generations).
async fn ledger(app: &TestApp, user: &str) -> Vec<(String, String, u64)> {
    let res = app
        .call("GET", "/api/credits/ledger", As::user(user), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["block_id"].as_str().unwrap_or_default().to_owned(),
                e["generations"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

async fn deliver(app: &TestApp, event: &Value) {
    let res = app.webhook(event).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

/// `user` with a Stripe customer `cus_<user>`, as after a first checkout.
async fn buyer(app: &TestApp, user: &str) {
    app.user_with_customer(user, &format!("cus_{user}")).await;
}

/// Counts of today's business events (the admin summary).
async fn counted(app: &TestApp, event: &str) -> u64 {
    let res = app
        .call(
            "GET",
            "/api/analytics/summary?from=2026-11-26&to=2026-11-26",
            As::admin("ops"),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["days"][0]["counts"][event]
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_packs_on_sale_are_public_and_show_no_price_id() {
    let app = TestApp::spawn().await;
    let res = app.call("GET", "/api/credits/packs", None, None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"items": [
            {"pack": "pack_10", "generations": 10, "price_cents": 499, "currency": "usd"},
            {"pack": "pack_50", "generations": 50, "price_cents": 1999, "currency": "usd"}
        ]})
    );
    let none = app
        .with_billing(|b| b.packs = son1k_domain::credits::Packs::default())
        .await;
    let res = none.call("GET", "/api/credits/packs", None, None).await;
    assert_eq!((res.status, res.json()), (200, json!({"items": []})));
}

#[tokio::test]
async fn a_pack_checkout_then_its_paid_event_puts_the_pack_in_the_balance() {
    let app = TestApp::spawn().await;
    let res = checkout(&app, "pat", json!({"pack": "pack_50"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let session = res.json()["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let sessions = app.stripe.requests_to("/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1);
    let p = &sessions[0].params;
    let customer = app
        .user_record("pat")
        .await
        .expect("user")
        .stripe_customer_id
        .expect("the caller's customer, stored");
    for (name, want) in [
        ("mode", "payment"),
        ("customer", customer.as_str()),
        ("line_items[0][price]", "price_pack_50"),
        ("line_items[0][quantity]", "1"),
        ("allow_promotion_codes", "true"),
        ("client_reference_id", "pat"),
        ("metadata[user_id]", "pat"),
        ("metadata[pack]", "pack_50"),
        ("metadata[generations]", "50"),
        ("payment_intent_data[metadata][user_id]", "pat"),
        (
            "success_url",
            "http://localhost:3000/usage?credits=success&session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "http://localhost:3000/usage"),
    ] {
        assert_eq!(
            p.get(name).map(String::as_str),
            Some(want),
            "{name} in {p:?}"
        );
    }
    assert!(!p.contains_key("subscription_data[trial_period_days]"));
    assert_eq!(credits(&app, "pat").await["balance"], 0);

    let paid = PackEvent {
        customer: customer.clone(),
        pack: "pack_50".into(),
        generations: 50,
        ..PackEvent::new("pat", &session, at("2026-11-26T09:59:00Z"))
    };
    deliver(&app, &paid.json()).await;
    let seen = credits(&app, "pat").await;
    assert_eq!(
        seen,
        json!({"balance": 50, "blocks": [{"block_id": session, "source": "purchase",
            "generations": 50, "remaining": 50, "expires_at": "2027-11-26T09:59:00Z"}]})
    );
    assert_eq!(
        ledger(&app, "pat").await,
        [("purchase".to_owned(), session.clone(), 50)]
    );
    let limits = app.limits("pat").await;
    assert_eq!(
        (limits["credits"].clone(), limits["remaining"].clone()),
        (json!(50), json!(53))
    );
    assert_eq!(counted(&app, "credits_purchased").await, 1);
}

#[tokio::test]
async fn pack_checkout_refuses_an_unknown_pack_and_answers_503_without_packs_or_keys() {
    let app = TestApp::spawn().await;
    for body in [json!({"pack": "pack_11"}), json!({"pack": ""})] {
        let res = checkout(&app, "ivy", body).await;
        let problem = res.assert_problem(400, "invalid_request");
        assert_eq!(problem["field"], "pack", "{problem}");
    }
    checkout(&app, "ivy", json!({}))
        .await
        .assert_problem(400, "invalid_request");
    let res = app
        .call(
            "POST",
            "/api/credits/checkout",
            None,
            Some(r#"{"pack":"pack_10"}"#),
        )
        .await;
    assert_eq!(res.status, 401);
    let no_packs = app
        .with_billing(|b| b.packs = son1k_domain::credits::Packs::default())
        .await;
    checkout(&no_packs, "ivy", json!({"pack": "pack_10"}))
        .await
        .assert_problem(503, "billing_not_configured");
    let no_keys = app.with_billing(|b| b.secret_name = None).await;
    checkout(&no_keys, "ivy", json!({"pack": "pack_10"}))
        .await
        .assert_problem(503, "billing_not_configured");
    assert!(app.stripe.requests_to("/v1/checkout/sessions").is_empty());
}

#[tokio::test]
async fn a_session_adds_its_block_once_whatever_the_redelivery_or_order() {
    let app = TestApp::spawn().await;
    buyer(&app, "rex").await;
    let created = at("2026-11-26T09:00:00Z");
    // Paid at once: the same event twice, then a second event of the session.
    let card = PackEvent::new("rex", "cs_card", created);
    deliver(&app, &card.json()).await;
    deliver(&app, &card.json()).await;
    let again = PackEvent {
        id: "evt_other".into(),
        kind: "checkout.session.async_payment_succeeded".into(),
        ..card.clone()
    };
    deliver(&app, &again.json()).await;
    // A delayed method: completed unpaid (nothing yet), then the payment's success.
    let pending = PackEvent {
        payment_status: "unpaid".into(),
        ..PackEvent::new("rex", "cs_debit", created)
    };
    deliver(&app, &pending.json()).await;
    assert_eq!(credits(&app, "rex").await["balance"], 10);
    let succeeded = PackEvent {
        id: "evt_debit_ok".into(),
        kind: "checkout.session.async_payment_succeeded".into(),
        payment_status: "paid".into(),
        ..pending.clone()
    };
    deliver(&app, &succeeded.json()).await;
    // ... and the success before the completion, both delivered twice.
    let late = PackEvent {
        payment_status: "unpaid".into(),
        ..PackEvent::new("rex", "cs_late", created)
    };
    let early = PackEvent {
        kind: "checkout.session.async_payment_succeeded".into(),
        payment_status: "paid".into(),
        ..late.clone()
    };
    for event in [&early, &late, &early, &late] {
        deliver(&app, &event.json()).await;
    }
    let seen = credits(&app, "rex").await;
    assert_eq!(seen["balance"], 30, "{seen}");
    let mut entries = ledger(&app, "rex").await;
    entries.sort();
    assert_eq!(
        entries,
        [
            ("purchase".to_owned(), "cs_card".to_owned(), 10),
            ("purchase".to_owned(), "cs_debit".to_owned(), 10),
            ("purchase".to_owned(), "cs_late".to_owned(), 10),
        ]
    );
    assert_eq!(counted(&app, "credits_purchased").await, 3);
}

/// `user` with the day's allowance used up (FREE: 3 a day).
async fn allowance_spent(app: &TestApp, user: &str) {
    let mut record = app.user_record(user).await.expect("user");
    record.usage = Some(BTreeMap::from([("D#2026-11-26".to_owned(), 3)]));
    app.put_user(&record).await;
}

async fn record(app: &TestApp, user: &str, id: &str) -> TestResponse {
    app.record(user, json!({"generation_id": id, "quality": "standard"}))
        .await
}

#[tokio::test]
async fn a_refund_voids_only_what_remains_of_its_block() {
    let app = TestApp::spawn().await;
    buyer(&app, "ray").await;
    let bought = PackEvent::new("ray", "cs_ray", at("2026-11-26T09:00:00Z"));
    deliver(&app, &bought.json()).await;
    let other = PackEvent::new("ray", "cs_keep", at("2026-11-26T09:00:01Z"));
    deliver(&app, &other.json()).await;
    allowance_spent(&app, "ray").await;
    for i in 0..3 {
        let res = record(&app, "ray", &format!("r{i}")).await;
        assert_eq!(res.status, 201, "{}", res.text());
        assert_eq!(res.json()["credit_block_id"], "cs_ray");
    }
    // A second later: the ledger orders entries by the instant of each change.
    app.clock.advance(chrono::Duration::seconds(1));
    let refund = charge_refunded(
        "evt_refund",
        "cus_ray",
        "pi_cs_ray",
        at("2026-11-26T10:00:00Z"),
    );
    deliver(&app, &refund).await;
    deliver(&app, &refund).await;
    let again = charge_refunded(
        "evt_refund_2",
        "cus_ray",
        "pi_cs_ray",
        at("2026-11-26T10:00:00Z"),
    );
    deliver(&app, &again).await;
    let seen = credits(&app, "ray").await;
    assert_eq!(seen["balance"], 10, "only the other pack pays: {seen}");
    assert_eq!(seen["blocks"][0]["block_id"], "cs_keep");
    let stored = app.user_record("ray").await.expect("user");
    let voided = &stored.credits["cs_ray"];
    assert_eq!((voided.generations, voided.remaining), (10, 0));
    let entries = ledger(&app, "ray").await;
    assert_eq!(entries[0], ("void".to_owned(), "cs_ray".to_owned(), 7));
    assert_eq!(
        entries.iter().filter(|e| e.0 == "void").count(),
        1,
        "{entries:?}"
    );
    assert_eq!(entries.iter().filter(|e| e.0 == "spend").count(), 3);
    // The spent three stay spent: recorded, and the day's count is unchanged.
    assert!(app.generation("r2").await.is_some());
}

#[tokio::test]
async fn a_refund_before_its_purchase_adds_the_block_voided() {
    let app = TestApp::spawn().await;
    buyer(&app, "oli").await;
    deliver(
        &app,
        &charge_refunded("evt_r", "cus_oli", "pi_cs_oli", at("2026-11-26T09:30:00Z")),
    )
    .await;
    let bought = PackEvent::new("oli", "cs_oli", at("2026-11-26T09:00:00Z"));
    deliver(&app, &bought.json()).await;
    deliver(&app, &bought.json()).await;
    assert_eq!(credits(&app, "oli").await["balance"], 0);
    let mut entries = ledger(&app, "oli").await;
    entries.sort();
    assert_eq!(
        entries,
        [
            ("purchase".to_owned(), "cs_oli".to_owned(), 10),
            ("void".to_owned(), "cs_oli".to_owned(), 10),
        ]
    );
    // A refund of a charge of no pack (a subscription's) changes no block.
    deliver(
        &app,
        &charge_refunded(
            "evt_sub",
            "cus_oli",
            "pi_invoice",
            at("2026-11-26T09:40:00Z"),
        ),
    )
    .await;
    assert_eq!(ledger(&app, "oli").await.len(), 2);
}

#[tokio::test]
async fn the_allowance_pays_first_then_a_grant_expiring_tomorrow_then_a_pack_bought_for_a_year() {
    let app = TestApp::spawn().await;
    buyer(&app, "sam").await;
    deliver(
        &app,
        &PackEvent {
            generations: 2,
            ..PackEvent::new("sam", "cs_sam", at("2026-11-26T08:00:00Z"))
        }
        .json(),
    )
    .await;
    let granted = app
        .call(
            "POST",
            "/api/admin/users/sam/credits",
            As::admin("root"),
            Some(
                &json!({"generations": 1, "expires_at": "2026-11-27T10:00:00Z", "reason": "promo"})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.text());
    let grant_id = granted.json()["block_id"].clone();
    let listed = credits(&app, "sam").await;
    let order: Vec<&Value> = listed["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| &b["source"])
        .collect();
    assert_eq!(order, [&json!("grant"), &json!("purchase")]);
    let mut paid_by = Vec::new();
    for i in 0..6 {
        let res = record(&app, "sam", &format!("s{i}")).await;
        assert_eq!(res.status, 201, "{i}: {}", res.text());
        paid_by.push(res.json()["credit_block_id"].clone());
    }
    let (none, pack) = (Value::Null, json!("cs_sam"));
    assert_eq!(
        paid_by,
        [
            none.clone(),
            none.clone(),
            none,
            grant_id,
            pack.clone(),
            pack
        ]
    );
    record(&app, "sam", "s6")
        .await
        .assert_problem(429, "daily_limit_reached");
    assert_eq!(counted(&app, "credit_spent").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_deliveries_of_one_session_add_one_block() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    buyer(&app, "zed").await;
    // A block already there: the racers add to the map, each conditioned on the block's absence.
    deliver(
        &app,
        &PackEvent::new("zed", "cs_first", at("2026-11-26T08:00:00Z")).json(),
    )
    .await;
    app.clock.advance(chrono::Duration::seconds(1));
    let completed = PackEvent::new("zed", "cs_zed", at("2026-11-26T09:00:00Z"));
    let succeeded = PackEvent {
        id: "evt_zed_async".into(),
        kind: "checkout.session.async_payment_succeeded".into(),
        ..completed.clone()
    };
    let calls = (0..12).map(|i| {
        let app = app.clone();
        let event = if i % 2 == 0 { &completed } else { &succeeded }.json();
        tokio::spawn(async move { app.webhook(&event).await.status })
    });
    for status in futures::future::join_all(calls).await {
        assert_eq!(status.expect("task"), 200);
    }
    assert_eq!(credits(&app, "zed").await["balance"], 20);
    assert_eq!(
        ledger(&app, "zed").await,
        [
            ("purchase".to_owned(), "cs_zed".to_owned(), 10),
            ("purchase".to_owned(), "cs_first".to_owned(), 10)
        ]
    );
    assert_eq!(counted(&app, "credits_purchased").await, 2);
}

#[tokio::test]
async fn a_refund_while_a_job_holds_the_last_credit_keeps_that_credit_from_coming_back() {
    let app = TestApp::spawn().await;
    let (_stub, providers) = crate::jobs::failing_pool().await;
    buyer(&app, "hal").await;
    let one = PackEvent {
        generations: 1,
        ..PackEvent::new("hal", "cs_hal", at("2026-11-26T09:00:00Z"))
    };
    deliver(&app, &one.json()).await;
    allowance_spent(&app, "hal").await;
    assert_eq!(crate::jobs::submit(&app, "hal", "h1").await.status, 202);
    app.clock.advance(chrono::Duration::seconds(1));
    deliver(
        &app,
        &charge_refunded(
            "evt_hal",
            "cus_hal",
            "pi_cs_hal",
            at("2026-11-26T10:00:00Z"),
        ),
    )
    .await;
    app.clock.advance(chrono::Duration::seconds(1));
    crate::jobs::drain_all(&app, &providers).await;
    let seen = credits(&app, "hal").await;
    assert_eq!(seen["balance"], 0, "{seen}");
    let stored = app.user_record("hal").await.expect("user");
    assert_eq!(stored.credits["cs_hal"].remaining, 0);
    assert!(stored.reservations.is_empty());
    // Newest first: the job's credit expired with its voided block, the void (nothing left).
    let entries = ledger(&app, "hal").await;
    assert_eq!(
        entries[..2],
        [
            ("expire".to_owned(), "cs_hal".to_owned(), 1),
            ("void".to_owned(), "cs_hal".to_owned(), 0)
        ]
    );
}
