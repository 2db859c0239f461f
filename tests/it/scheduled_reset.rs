//! scheduled-reset: housekeeping only. Running it, twice, late or never changes nothing a user sees.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use son1k::domain::entitlement::{Subscription, SubscriptionStatus, TierSource};
use son1k::domain::tiers::Tier;
use son1k_tests::{at, As, NowUtc, TestApp};

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
    assert_eq!(
        (first.subscriptions_expired, first.ran_at.as_str()),
        (2, "2026-11-26T10:00:00Z")
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
        (second.subscriptions_expired, second.expired_items_deleted),
        (0, 0)
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
async fn items_past_their_expiry_are_deleted_and_others_kept() {
    let app = TestApp::spawn().await;
    let now = app.clock.now_utc().timestamp();
    for (pk, expires_at) in [("STRIPE#evt_old", now - 1), ("STRIPE#evt_new", now + 3600)] {
        app.state
            .dynamo
            .put_item()
            .table_name(&app.state.config.stats_table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::S("EVENT".into()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .expect("put");
    }
    assert_eq!(run(&app, "daily").await.expired_items_deleted, 1);
    assert!(app
        .items(&app.state.config.stats_table, "STRIPE#evt_old")
        .await
        .is_empty());
    assert_eq!(
        app.items(&app.state.config.stats_table, "STRIPE#evt_new")
            .await
            .len(),
        1
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
