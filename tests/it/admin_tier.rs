//! PUT /api/admin/users/{user_id}/tier.

use serde_json::json;
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_tests::{As, TestApp};

const ROUTE: &str = "/api/admin/users/target/tier";

#[tokio::test]
async fn an_admin_grants_a_tier_and_gets_the_users_limits() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    let res = app
        .call(
            "PUT",
            ROUTE,
            As::admin("ops"),
            Some(r#"{"tier": "STUDIO"}"#),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(
        (
            body["user_id"].clone(),
            body["tier"].clone(),
            body["period"].clone(),
            body["limit"].clone()
        ),
        (
            json!("target"),
            json!("STUDIO"),
            json!("month"),
            json!(1000)
        )
    );
    assert_eq!(
        (
            body["reset_at"].clone(),
            body["storage"]["limit_bytes"].clone()
        ),
        (json!("2026-12-01T00:00:00Z"), json!(null))
    );
    let stored = app.user_record("target").await.expect("user");
    assert_eq!(
        (stored.tier, stored.tier_source, stored.entitlement_rev),
        (Tier::Studio, TierSource::Admin, 1)
    );
    let limits = app
        .call("GET", "/api/tiers/limits/target", As::admin("ops"), None)
        .await;
    assert_eq!(limits.json(), body, "the same view as GET limits");
}

#[tokio::test]
async fn non_admins_get_403_and_nothing_changes() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    app.call(
        "PUT",
        ROUTE,
        As::user("target"),
        Some(r#"{"tier": "STUDIO"}"#),
    )
    .await
    .assert_problem(403, "forbidden");
    app.call(
        "PUT",
        "/api/admin/users/me/tier",
        As::user("target"),
        Some(r#"{"tier": "PRO"}"#),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(
        app.user_record("target").await.expect("user").tier,
        Tier::Free
    );
}

#[tokio::test]
async fn an_unknown_user_is_404_and_is_not_created() {
    let app = TestApp::spawn().await;
    app.call(
        "PUT",
        "/api/admin/users/ghost/tier",
        As::admin("ops"),
        Some(r#"{"tier": "PRO"}"#),
    )
    .await
    .assert_problem(404, "not_found");
    assert!(app.user_record("ghost").await.is_none());
}

#[tokio::test]
async fn bad_bodies_are_400_before_permissions() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (r#"{"tier": "GOLD"}"#, "tier"),
        (r#"{"tier": "pro"}"#, "tier"),
        ("{}", "tier"),
        ("nope", "body"),
    ] {
        let doc = app
            .call("PUT", ROUTE, As::user("someone"), Some(body))
            .await
            .assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{body}");
    }
    let doc = app
        .call(
            "PUT",
            "/api/admin/users/bad%id/tier",
            As::admin("ops"),
            Some(r#"{"tier":"PRO"}"#),
        )
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(doc["field"], "user_id");
}

#[tokio::test]
async fn without_claims_it_is_401() {
    let app = TestApp::spawn().await;
    app.call("PUT", ROUTE, None, Some(r#"{"tier": "PRO"}"#))
        .await
        .assert_problem(401, "unauthorized");
}
