//! Plans beyond the monthly price: yearly prices (the allowance stays monthly, counted from the
//! billing period's start), a trial offered once per user, and promotion codes at checkout.

use crate::checkout::checkout;
use serde_json::{json, Value};
use son1k_domain::entitlement::SubscriptionStatus;
use son1k_tests::stripe::{SubEvent, CHARGE_REFUNDED, PRICE_PRO, PRICE_PRO_ANNUAL};
use son1k_tests::{at, subscription, TestApp};

async fn deliver(app: &TestApp, event: &SubEvent) {
    let res = app.webhook(&event.json()).await;
    assert_eq!(res.status, 200, "{}: {}", event.kind, res.text());
}

/// The parameters of the `n`-th checkout session the stub was asked for.
fn session_params(app: &TestApp, n: usize) -> std::collections::BTreeMap<String, String> {
    app.stripe.requests_to("/v1/checkout/sessions")[n]
        .params
        .clone()
}

#[test]
fn the_refund_fixture_is_a_stripe_charge_event() {
    let event: Value = serde_json::from_str(CHARGE_REFUNDED).unwrap();
    assert_eq!(
        (event["object"].clone(), event["type"].clone()),
        (json!("event"), json!("charge.refunded"))
    );
    assert_eq!(event["data"]["object"]["object"], "charge");
}

#[tokio::test]
async fn a_yearly_checkout_sells_the_tier_s_annual_price_with_promotion_codes() {
    let app = TestApp::spawn().await;
    let res = checkout(&app, "yan", json!({"tier": "PRO", "interval": "year"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let p = session_params(&app, 0);
    assert_eq!(
        (
            p.get("line_items[0][price]").map(String::as_str),
            p.get("allow_promotion_codes").map(String::as_str),
            p.get("mode").map(String::as_str),
        ),
        (Some(PRICE_PRO_ANNUAL), Some("true"), Some("subscription"))
    );
    let monthly = checkout(&app, "mon", json!({"tier": "PRO", "interval": "month"})).await;
    assert_eq!(monthly.status, 200);
    assert_eq!(
        session_params(&app, 1)
            .get("line_items[0][price]")
            .map(String::as_str),
        Some(PRICE_PRO)
    );
    checkout(&app, "odd", json!({"tier": "PRO", "interval": "week"}))
        .await
        .assert_problem(400, "invalid_request");
    let unpriced = app.with_billing(|b| b.prices.studio_annual = None).await;
    checkout(
        &unpriced,
        "yan2",
        json!({"tier": "STUDIO", "interval": "year"}),
    )
    .await
    .assert_problem(503, "billing_not_configured");
}

#[tokio::test]
async fn a_yearly_subscriber_has_the_monthly_allowance_each_month_not_a_year_s_at_once() {
    let app = TestApp::spawn().await;
    app.user_with_customer("ann", "cus_ann").await;
    deliver(
        &app,
        &SubEvent {
            price: PRICE_PRO_ANNUAL.into(),
            start: "2026-11-20T00:00:00Z".into(),
            end: "2027-11-20T00:00:00Z".into(),
            ..SubEvent::new("ann")
        },
    )
    .await;
    let limits = app.limits("ann").await;
    assert_eq!(
        (
            limits["tier"].clone(),
            limits["limit"].clone(),
            limits["period_start"].clone(),
            limits["reset_at"].clone()
        ),
        (
            json!("PRO"),
            json!(200),
            json!("2026-11-20T00:00:00Z"),
            json!("2026-12-20T00:00:00Z")
        )
    );
    for i in 0..2 {
        let res = app
            .record("ann", json!({"generation_id": format!("a{i}")}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    assert_eq!(app.limits("ann").await["used"], 2);
    // A month later a new month of the year: the counter starts again; the year's end is the
    // last month's end.
    let later = app.with_clock_at(at("2026-12-20T00:00:00Z"));
    let limits = later.limits("ann").await;
    assert_eq!(
        (limits["used"].clone(), limits["reset_at"].clone()),
        (json!(0), json!("2027-01-20T00:00:00Z"))
    );
    let last = app.with_clock_at(at("2027-11-19T23:59:59Z"));
    let limits = last.limits("ann").await;
    assert_eq!(
        (limits["period_start"].clone(), limits["reset_at"].clone()),
        (json!("2027-10-20T00:00:00Z"), json!("2027-11-20T00:00:00Z"))
    );
}

#[tokio::test]
async fn a_trial_is_offered_on_a_first_checkout_only() {
    let base = TestApp::spawn().await;
    let app = base.with_billing(|b| b.trials.pro = Some(14)).await;
    assert_eq!(
        checkout(&app, "tia", json!({"tier": "PRO"})).await.status,
        200
    );
    assert_eq!(
        checkout(&app, "tia", json!({"tier": "PRO"})).await.status,
        200
    );
    let trial = |n| {
        session_params(&app, n)
            .get("subscription_data[trial_period_days]")
            .cloned()
    };
    assert_eq!(
        trial(0).as_deref(),
        Some("14"),
        "{:?}",
        session_params(&app, 0)
    );
    assert_eq!(trial(1), None, "a second checkout has no trial");
    // A tier without a trial offers none, and claims nothing.
    assert_eq!(
        checkout(&app, "cal", json!({"tier": "CREATOR"}))
            .await
            .status,
        200
    );
    assert_eq!(trial(2), None);
    assert_eq!(
        checkout(&app, "cal", json!({"tier": "PRO"})).await.status,
        200
    );
    assert_eq!(trial(3).as_deref(), Some("14"));
    // A former subscriber had their first subscription already.
    app.stripe_user(
        "vet",
        son1k_domain::tiers::Tier::Free,
        subscription(
            SubscriptionStatus::Canceled,
            PRICE_PRO,
            "2026-09-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
        ),
    )
    .await;
    assert_eq!(
        checkout(&app, "vet", json!({"tier": "PRO"})).await.status,
        200
    );
    assert_eq!(trial(4), None);
    // A checkout Stripe could not create leaves the trial for the next one.
    app.user_with_customer("flo", "cus_flo").await;
    app.stripe.fail_next(1);
    let failed = checkout(&app, "flo", json!({"tier": "PRO"})).await;
    assert!(failed.status >= 500, "{}", failed.text());
    assert_eq!(
        checkout(&app, "flo", json!({"tier": "PRO"})).await.status,
        200
    );
    let sessions = app.stripe.requests_to("/v1/checkout/sessions");
    let last = &sessions[sessions.len() - 1].params;
    assert_eq!(
        last.get("subscription_data[trial_period_days]")
            .map(String::as_str),
        Some("14")
    );
}

#[tokio::test]
async fn two_racing_first_checkouts_offer_one_trial() {
    let base = TestApp::spawn().await;
    let app = base.with_billing(|b| b.trials.pro = Some(7)).await;
    app.user_with_customer("duo", "cus_duo").await;
    let answers =
        futures::future::join_all((0..4).map(|_| checkout(&app, "duo", json!({"tier": "PRO"}))))
            .await;
    assert!(answers.iter().all(|r| r.status == 200));
    let offered = app
        .stripe
        .requests_to("/v1/checkout/sessions")
        .iter()
        .filter(|s| {
            s.params
                .contains_key("subscription_data[trial_period_days]")
        })
        .count();
    assert_eq!(offered, 1);
}

#[tokio::test]
async fn a_trial_grants_the_tier_and_one_that_ends_unpaid_leaves_it() {
    let app = TestApp::spawn().await;
    for user in ["tri", "tri-paused", "tri-unpaid"] {
        app.user_with_customer(user, &format!("cus_{user}")).await;
    }
    let trialing = SubEvent {
        status: "trialing".into(),
        price: PRICE_PRO.into(),
        start: "2026-11-20T00:00:00Z".into(),
        end: "2026-12-04T00:00:00Z".into(),
        ..SubEvent::new("tri")
    };
    deliver(&app, &trialing).await;
    let limits = app.limits("tri").await;
    assert_eq!(
        (
            limits["tier"].clone(),
            limits["limit"].clone(),
            limits["reset_at"].clone(),
            limits["subscription"]["status"].clone()
        ),
        (
            json!("PRO"),
            json!(200),
            json!("2026-12-04T00:00:00Z"),
            json!("trialing")
        )
    );
    assert_eq!(
        app.record("tri", json!({"generation_id": "t1", "quality": "ultra"}))
            .await
            .status,
        201
    );
    // The trial ended without a payment: Stripe pauses the subscription (or marks it unpaid).
    for (status, at_second) in [
        ("paused", "2026-12-04T00:00:01Z"),
        ("unpaid", "2026-12-04T00:00:02Z"),
    ] {
        let user = format!("tri-{status}");
        deliver(
            &app,
            &SubEvent {
                user: Some(user.clone()),
                customer: format!("cus_{user}"),
                subscription: format!("sub_{user}"),
                ..trialing.clone()
            },
        )
        .await;
        let ended = SubEvent {
            id: format!("evt_end_{status}"),
            status: status.into(),
            created: at_second.into(),
            user: Some(user.clone()),
            customer: format!("cus_{user}"),
            subscription: format!("sub_{user}"),
            ..trialing.clone()
        };
        deliver(&app, &ended).await;
        let limits = app.limits(&user).await;
        assert_eq!(limits["tier"], "FREE", "{status}: {limits}");
        assert_eq!(limits["limit"], 3);
    }
}
