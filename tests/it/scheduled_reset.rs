//! scheduled-reset: housekeeping only. Running it, twice, late or never changes nothing a user sees.

use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use son1k_app::housekeeping::LapseReport;
use son1k_domain::entitlement::{Subscription, SubscriptionStatus, TierSource};
use son1k_domain::tiers::Tier;
use son1k_store::housekeeping::PAGE_SIZE;
use son1k_tests::faults::{Fault, FaultMode};
use son1k_tests::{at, As, TestApp};

async fn run(app: &TestApp, kind: &str) -> scheduled_reset::ResetReport {
    scheduled_reset::handler(
        &app.state,
        LambdaEvent::new(json!({ "kind": kind }), Context::default()),
    )
    .await
    .expect("housekeeping runs")
}

fn subscription(status: SubscriptionStatus, start: &str, end: &str) -> Subscription {
    son1k_tests::subscription(status, "price_pro_monthly", start, end)
}

/// A mix of users: FREE with usage, admin PRO, an active Stripe subscriber, a lapsed one and a canceled one.
async fn seed(app: &TestApp) -> Vec<&'static str> {
    app.put_counter("free", "D#2026-11-26", 2).await;
    app.user_with_tier("granted", Tier::Pro, TierSource::Admin)
        .await;
    for (id, status, start, end) in [
        (
            "active",
            SubscriptionStatus::Active,
            "2026-11-20T00:00:00Z",
            "2026-12-20T00:00:00Z",
        ),
        (
            "lapsed",
            SubscriptionStatus::Active,
            "2026-10-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
        ),
        (
            "canceled",
            SubscriptionStatus::Canceled,
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        ),
    ] {
        app.stripe_user(id, Tier::Pro, subscription(status, start, end))
            .await;
    }
    vec!["free", "granted", "active", "lapsed", "canceled"]
}

async fn views(app: &TestApp, users: &[&str]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for user in users {
        out.push(
            app.call(
                "GET",
                &format!("/api/tiers/limits/{user}"),
                As::admin("ops"),
                None,
            )
            .await
            .json(),
        );
    }
    out
}

#[tokio::test]
async fn lapsed_and_canceled_stripe_users_are_stored_as_free_and_a_second_run_does_nothing() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let first = run(&app, "daily").await;
    assert_eq!(first.ran_at, "2026-11-26T10:00:00Z");
    assert_eq!(
        first.lapsed_subscriptions,
        LapseReport {
            checked: 2,
            expired: 2,
            failed: 0,
            complete: true
        },
        "only the two lapsed users are read (the index holds no FREE, admin or current user)"
    );
    for (id, tier) in [
        ("lapsed", Tier::Free),
        ("canceled", Tier::Free),
        ("active", Tier::Pro),
        ("granted", Tier::Pro),
    ] {
        assert_eq!(app.user_record(id).await.expect("user").tier, tier, "{id}");
    }
    let second = run(&app, "monthly").await;
    assert_eq!(
        (
            second.lapsed_subscriptions.checked,
            second.lapsed_subscriptions.expired
        ),
        (0, 0),
        "expired users leave the index"
    );
}

#[tokio::test]
async fn skipping_it_changes_nothing_a_user_sees() {
    let ran = TestApp::spawn().await;
    let skipped = TestApp::spawn().await;
    let users = seed(&ran).await;
    seed(&skipped).await;
    for app in [&ran, &skipped] {
        app.clock.set(at("2026-12-01T00:00:05Z"));
    }
    run(&ran, "daily").await;
    run(&ran, "monthly").await;
    assert_eq!(views(&ran, &users).await, views(&skipped, &users).await);
    // ...and what they may do next is the same too.
    for app in [&ran, &skipped] {
        for user in &users {
            let res = app
                .record(user, json!({"generation_id": format!("after-{user}")}))
                .await;
            assert_eq!(res.status, 201, "{user}: {}", res.text());
        }
    }
    assert_eq!(views(&ran, &users).await, views(&skipped, &users).await);
}

#[tokio::test]
async fn hundreds_of_lapsed_users_are_expired_page_by_page_past_a_failed_one() {
    let fault = Fault::new("UpdateItem", FaultMode::FailBeforeSend, 1);
    let mut app = TestApp::spawn().await;
    let lapsed = 2 * PAGE_SIZE as u64 + 17;
    for i in 0..lapsed {
        app.stripe_user(
            &format!("gone{i}"),
            Tier::Creator,
            subscription(
                SubscriptionStatus::Active,
                "2026-10-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
            ),
        )
        .await;
    }
    app.stripe_user(
        "current",
        Tier::Pro,
        subscription(
            SubscriptionStatus::Active,
            "2026-11-20T00:00:00Z",
            "2026-12-20T00:00:00Z",
        ),
    )
    .await;
    app.intercept(fault.clone());
    let first = run(&app, "daily").await.lapsed_subscriptions;
    assert_eq!(fault.fired(), 1);
    assert_eq!(
        first,
        LapseReport {
            checked: lapsed,
            expired: lapsed - 1,
            failed: 1,
            complete: true
        },
        "one user failed; the run went on"
    );
    let second = run(&app, "daily").await.lapsed_subscriptions;
    assert_eq!(
        (second.checked, second.expired, second.failed),
        (1, 1, 0),
        "and the next run takes it"
    );
    assert_eq!(
        app.user_record("current").await.expect("user").tier,
        Tier::Pro
    );
}

#[tokio::test]
async fn a_run_out_of_time_stops_and_says_so() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let mut context = Context::default();
    // The invocation's deadline is already within the margin: no page is started.
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis()).expect("ms") + 1_000;
    let report = scheduled_reset::handler(
        &app.state,
        LambdaEvent::new(json!({"kind": "daily"}), context),
    )
    .await
    .expect("report");
    assert_eq!(
        report.lapsed_subscriptions,
        LapseReport {
            checked: 0,
            expired: 0,
            failed: 0,
            complete: false
        }
    );
    assert_eq!(
        app.user_record("lapsed").await.expect("user").tier,
        Tier::Pro
    );
}

#[tokio::test]
async fn webhooks_keep_the_lapsing_index_in_step_with_the_subscription() {
    let app = TestApp::spawn().await;
    app.user_with_tier("sub", Tier::Free, TierSource::Default)
        .await;
    let event = son1k_tests::stripe::SubEvent {
        kind: "customer.subscription.created".into(),
        end: "2026-12-20T00:00:00Z".into(),
        ..son1k_tests::stripe::SubEvent::new("sub")
    };
    assert_eq!(app.webhook(&event.json()).await.status, 200);
    let user = app.user_record("sub").await.expect("user");
    assert_eq!(
        user.lapses_at,
        Some(at("2026-12-23T00:00:00Z").timestamp()),
        "period end + the 3-day renewal grace"
    );
    let canceled = son1k_tests::stripe::SubEvent {
        kind: "customer.subscription.deleted".into(),
        status: "canceled".into(),
        created: "2026-11-26T11:00:00Z".into(),
        id: "evt_canceled".into(),
        ..event
    };
    assert_eq!(app.webhook(&canceled.json()).await.status, 200);
    let user = app.user_record("sub").await.expect("user");
    assert_eq!(
        (user.tier, user.lapses_at, user.lapse_shard),
        (Tier::Free, None, None)
    );
    app.grant("sub", Tier::Pro).await;
    assert_eq!(
        app.user_record("sub").await.expect("user").lapses_at,
        None,
        "an admin grant never lapses"
    );
}

#[tokio::test]
async fn an_unknown_kind_is_an_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let result = scheduled_reset::handler(
        &app.state,
        LambdaEvent::new(json!({"kind": "hourly"}), Context::default()),
    )
    .await;
    assert!(result.is_err());
    assert_eq!(
        app.user_record("lapsed").await.expect("user").tier,
        Tier::Pro
    );
}
