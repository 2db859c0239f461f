//! GET /api/tiers/limits/{user_id}: periods, counters, permissions and failures.

use son1k_domain::entitlement::{Subscription, SubscriptionStatus, TierSource};
use son1k_domain::tiers::Tier;
use son1k_tests::{at, As, NowUtc, TestApp};

#[tokio::test]
async fn first_request_creates_a_free_user_and_shows_a_full_day() {
    let app = TestApp::spawn().await;
    let res = app
        .call("GET", "/api/tiers/limits/me", As::user("alice"), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json(),
        serde_json::json!({
            "user_id": "alice", "tier": "FREE", "period": "day",
            "period_start": "2026-11-26T00:00:00Z", "reset_at": "2026-11-27T00:00:00Z",
            "limit": 3, "used": 0, "remaining": 3, "remaining_in_period": 3, "credits": 0,
            "can_generate": true, "reason": null,
            "qualities": ["standard"],
            "storage": {"used_bytes": 0, "limit_bytes": 1_073_741_824u64},
            "subscription": null
        })
    );
    let stored = app.user_record("alice").await.expect("created");
    assert_eq!(
        (
            stored.tier,
            stored.email.as_deref(),
            stored.username.as_deref()
        ),
        (Tier::Free, Some("alice@example.com"), Some("alice"))
    );
}

#[tokio::test]
async fn own_id_works_like_me() {
    let app = TestApp::spawn().await;
    let res = app
        .call("GET", "/api/tiers/limits/alice", As::user("alice"), None)
        .await;
    assert_eq!(
        (res.status, res.json()["user_id"].clone()),
        (200, "alice".into())
    );
}

#[tokio::test]
async fn spent_counter_shows_zero_remaining_and_the_daily_reason() {
    let app = TestApp::spawn().await;
    app.put_counter("bob", "D#2026-11-26", 3).await;
    let body = app
        .call("GET", "/api/tiers/limits/me", As::user("bob"), None)
        .await
        .json();
    assert_eq!(
        (body["used"].clone(), body["remaining"].clone()),
        (3.into(), 0.into())
    );
    assert_eq!(
        (body["can_generate"].clone(), body["reason"].clone()),
        (false.into(), "daily_limit_reached".into())
    );
}

#[tokio::test]
async fn yesterdays_usage_does_not_count_today() {
    let app = TestApp::spawn_at(at("2026-11-26T23:59:59Z")).await;
    app.put_counter("carol", "D#2026-11-26", 3).await;
    assert_eq!(
        app.call("GET", "/api/tiers/limits/me", As::user("carol"), None)
            .await
            .json()["remaining"],
        0
    );
    app.clock.set(at("2026-11-27T00:00:00Z"));
    let body = app
        .call("GET", "/api/tiers/limits/me", As::user("carol"), None)
        .await
        .json();
    assert_eq!(
        (body["remaining"].clone(), body["period_start"].clone()),
        (3.into(), "2026-11-27T00:00:00Z".into())
    );
}

#[tokio::test]
async fn quality_outside_the_tier_is_the_reason() {
    let app = TestApp::spawn().await;
    let body = app
        .call(
            "GET",
            "/api/tiers/limits/me?quality=high",
            As::user("dave"),
            None,
        )
        .await
        .json();
    assert_eq!(
        (body["can_generate"].clone(), body["reason"].clone()),
        (false.into(), "quality_not_in_tier".into())
    );
    let ok = app
        .call(
            "GET",
            "/api/tiers/limits/me?quality=standard",
            As::user("dave"),
            None,
        )
        .await
        .json();
    assert_eq!(
        (ok["can_generate"].clone(), ok["reason"].clone()),
        (true.into(), serde_json::Value::Null)
    );
}

#[tokio::test]
async fn unknown_quality_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let res = app
        .call(
            "GET",
            "/api/tiers/limits/me?quality=lossless",
            As::user("erin"),
            None,
        )
        .await;
    let doc = res.assert_problem(400, "invalid_request");
    assert_eq!(doc["field"], "quality");
    assert!(doc["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("quality"));
    // An empty value is no quality at all, not "any".
    let empty = app
        .call(
            "GET",
            "/api/tiers/limits/me?quality=",
            As::user("erin"),
            None,
        )
        .await;
    assert_eq!(
        empty.assert_problem(400, "invalid_request")["field"],
        "quality"
    );
}

#[tokio::test]
async fn malformed_user_id_is_a_400() {
    let app = TestApp::spawn().await;
    let res = app
        .call("GET", "/api/tiers/limits/bad%20id", As::user("erin"), None)
        .await;
    assert_eq!(
        res.assert_problem(400, "invalid_request")["field"],
        "user_id"
    );
}

#[tokio::test]
async fn another_users_limits_are_forbidden_to_non_admins_and_nothing_is_read() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("victim")).await;
    app.put_counter("victim", "D#2026-11-26", 2).await;
    let res = app
        .call("GET", "/api/tiers/limits/victim", As::user("mallory"), None)
        .await;
    let doc = res.assert_problem(403, "forbidden");
    assert!(
        doc.get("used").is_none() && doc.get("tier").is_none(),
        "no data of the other user: {doc}"
    );
}

#[tokio::test]
async fn admins_see_another_users_limits_and_404_for_unknown_users() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("victim")).await;
    app.put_counter("victim", "D#2026-11-26", 2).await;
    let res = app
        .call("GET", "/api/tiers/limits/victim", As::admin("root"), None)
        .await;
    assert_eq!((res.status, res.json()["used"].clone()), (200, 2.into()));
    let missing = app
        .call("GET", "/api/tiers/limits/nobody", As::admin("root"), None)
        .await;
    missing.assert_problem(404, "not_found");
    assert!(
        app.user_record("nobody").await.is_none(),
        "no user created for a lookup"
    );
}

#[tokio::test]
async fn admin_granted_paid_tier_counts_by_utc_calendar_month() {
    let app = TestApp::spawn_at(at("2026-12-31T23:00:00Z")).await;
    app.user_with_tier("frank", Tier::Pro, TierSource::Admin)
        .await;
    app.put_counter("frank", "M#2026-12-01T00:00:00Z", 150)
        .await;
    let body = app
        .call(
            "GET",
            "/api/tiers/limits/me?quality=ultra",
            As::user("frank"),
            None,
        )
        .await
        .json();
    assert_eq!(
        (
            body["tier"].clone(),
            body["period"].clone(),
            body["period_start"].clone(),
            body["reset_at"].clone()
        ),
        (
            "PRO".into(),
            "month".into(),
            "2026-12-01T00:00:00Z".into(),
            "2027-01-01T00:00:00Z".into()
        )
    );
    assert_eq!(
        (
            body["limit"].clone(),
            body["used"].clone(),
            body["remaining"].clone()
        ),
        (200.into(), 150.into(), 50.into())
    );
    assert_eq!(body["storage"]["limit_bytes"], 107_374_182_400u64);
    assert_eq!(body["can_generate"], true);
}

fn subscription(status: SubscriptionStatus, start: &str, end: &str) -> Subscription {
    son1k_tests::subscription(status, "price_creator_monthly", start, end)
}

#[tokio::test]
async fn stripe_tier_counts_by_its_billing_period_and_shows_the_subscription() {
    let app = TestApp::spawn().await;
    app.stripe_user(
        "gina",
        Tier::Creator,
        subscription(
            SubscriptionStatus::PastDue,
            "2026-11-10T08:30:00Z",
            "2026-12-10T08:30:00Z",
        ),
    )
    .await;
    app.put_counter("gina", "M#2026-11-10T08:30:00Z", 10).await;
    let body = app
        .call("GET", "/api/tiers/limits/me", As::user("gina"), None)
        .await
        .json();
    assert_eq!(
        (
            body["tier"].clone(),
            body["period_start"].clone(),
            body["reset_at"].clone(),
            body["used"].clone()
        ),
        (
            "CREATOR".into(),
            "2026-11-10T08:30:00Z".into(),
            "2026-12-10T08:30:00Z".into(),
            10.into()
        )
    );
    assert_eq!(
        body["subscription"],
        serde_json::json!({"status": "past_due", "current_period_end": "2026-12-10T08:30:00Z", "cancel_at_period_end": false})
    );
}

#[tokio::test]
async fn canceled_subscription_falls_back_to_free() {
    let app = TestApp::spawn().await;
    app.stripe_user(
        "hank",
        Tier::Studio,
        subscription(
            SubscriptionStatus::Canceled,
            "2026-11-10T08:30:00Z",
            "2026-12-10T08:30:00Z",
        ),
    )
    .await;
    let body = app
        .call("GET", "/api/tiers/limits/me", As::user("hank"), None)
        .await
        .json();
    assert_eq!(
        (
            body["tier"].clone(),
            body["limit"].clone(),
            body["period"].clone()
        ),
        ("FREE".into(), 3.into(), "day".into())
    );
    assert_eq!(body["subscription"]["status"], "canceled");
}

#[tokio::test]
async fn without_claims_the_handler_answers_401() {
    let app = TestApp::spawn().await;
    app.call("GET", "/api/tiers/limits/me", None, None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_store_that_is_down_is_a_503_without_aws_details() {
    let app = TestApp::with_store_down().await;
    let res = app
        .call("GET", "/api/tiers/limits/me", As::user("ivan"), None)
        .await;
    let doc = res.assert_problem(503, "dependency_unavailable");
    let text = res.text().to_lowercase();
    for leak in [
        "dispatch",
        "connect",
        "127.0.0.1",
        "dynamodb",
        "getitem",
        "error:",
    ] {
        assert!(!text.contains(leak), "body leaks {leak:?}: {doc}");
    }
    assert!(res.header("retry-after").is_some());
}

#[tokio::test]
async fn bad_input_is_a_400_even_when_the_store_is_down() {
    let app = TestApp::with_store_down().await;
    let res = app
        .call(
            "GET",
            "/api/tiers/limits/me?quality=best",
            As::user("ivan"),
            None,
        )
        .await;
    res.assert_problem(400, "invalid_request");
    let forbidden = app
        .call("GET", "/api/tiers/limits/someone", As::user("ivan"), None)
        .await;
    forbidden.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn users_created_at_is_the_clock_of_the_first_request() {
    let app = TestApp::spawn().await;
    app.call("GET", "/api/tiers/limits/me", As::user("judy"), None)
        .await;
    app.clock.advance(chrono::Duration::hours(5));
    app.call("GET", "/api/tiers/limits/me", As::user("judy"), None)
        .await;
    let stored = app.user_record("judy").await.expect("exists");
    assert_eq!(stored.created_at, at("2026-11-26T10:00:00Z"));
    assert_ne!(stored.created_at, app.clock.now_utc());
}

#[tokio::test]
async fn a_real_api_gateway_event_with_bracketed_groups_is_an_admin() {
    let app = TestApp::spawn().await;
    app.user_with_tier("victim", Tier::Creator, TierSource::Admin)
        .await;
    let event = include_str!("../fixtures/apigw-v2-limits-admin.json");
    let req = lambda_http::request::from_str(event).expect("a valid HTTP API v2 event");
    let res = son1k_tests::send("tiers-limits", &app.state, req).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(
        (
            body["user_id"].clone(),
            body["tier"].clone(),
            body["can_generate"].clone()
        ),
        ("victim".into(), "CREATOR".into(), true.into())
    );
    // The same event without the admin group is refused.
    let stripped = event.replace("\"cognito:groups\": \"[admin editors]\",", "");
    let res = son1k_tests::send(
        "tiers-limits",
        &app.state,
        lambda_http::request::from_str(&stripped).expect("event"),
    )
    .await;
    res.assert_problem(403, "forbidden");
}
