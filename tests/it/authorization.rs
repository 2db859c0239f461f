//! Who may call what: every protected route refuses a caller without a valid token, no user reaches
//! another user's data, admin-only routes take only the exact `admin` group, and no error body says
//! more than its code.

use serde_json::json;
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_http::routes::ROUTES;
use son1k_tests::{assert_no_leak, build_request, send, As, TestApp};

const SECRET: &str = "local-dev-secret";
const ITEM: &str = "01JD0000000000000000000000";

/// A concrete path for a route template: sample values for its parameters.
fn concrete(template: &str) -> String {
    template
        .replace("{user_id}", "someone")
        .replace("{generation_id}", "g-1")
        .replace("{id}", ITEM)
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_or_forged_token() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let client = reqwest::Client::new();
    let forged = local_api::mint_token(
        &local_api::JwtRules::new("not-the-secret").expect("secret"),
        &local_api::TokenRequest {
            user: "mallory".into(),
            email: None,
            admin: true,
            ttl_seconds: 600,
        },
    )
    .expect("token");
    let protected: Vec<_> = ROUTES.iter().filter(|r| !r.public).collect();
    assert!(protected.len() >= 13, "the table is not empty");
    for route in protected {
        let path = concrete(route.path);
        let method: reqwest::Method = route.method.parse().expect("method");
        for bearer in [None, Some(forged.as_str()), Some("not.a.jwt")] {
            let mut request = client
                .request(method.clone(), format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(r#"{"tier":"PRO","generation_id":"g-1"}"#);
            if let Some(token) = bearer {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let res = request.send().await.expect("send");
            let status = res.status().as_u16();
            let body = res.text().await.expect("body");
            assert_eq!(
                status, 401,
                "{} {path} with {bearer:?}: {body}",
                route.method
            );
            assert!(body.contains(r#""code":"unauthorized""#), "{body}");
        }
        // And the handler itself, should a request without claims ever reach it.
        let (function, req) = build_request(route.method, &path, None, Some("{}"));
        let res = send(function, &app.state, req).await;
        res.assert_problem(401, "unauthorized");
    }
}

#[tokio::test]
async fn no_user_reaches_another_users_data() {
    let app = TestApp::spawn().await;
    let item = app.listed_contribution("owner", b"the owner's track").await;
    app.user_with_tier("rival", Tier::Pro, TierSource::Admin)
        .await;
    let upload = json!({"content_type": "audio/mpeg", "size_bytes": 10}).to_string();
    let theirs = json!({"generation_id": "owner-shared"}).to_string();
    for (caller, method, path, body, status, code) in [
        (
            "rival",
            "GET",
            "/api/tiers/limits/owner",
            None,
            403,
            "forbidden",
        ),
        (
            "rival",
            "GET",
            "/api/generations/owner-shared/audio",
            None,
            404,
            "not_found",
        ),
        (
            "rival",
            "POST",
            "/api/generations/owner-shared/upload-url",
            Some(&upload),
            404,
            "not_found",
        ),
        (
            "rival",
            "POST",
            "/api/community/contribute",
            Some(&theirs),
            404,
            "not_found",
        ),
        (
            "rival",
            "POST",
            "/api/tiers/record-generation",
            Some(&theirs),
            409,
            "generation_id_taken",
        ),
        (
            "rival",
            "PUT",
            "/api/admin/users/owner/tier",
            Some(&r#"{"tier":"FREE"}"#.to_owned()),
            403,
            "forbidden",
        ),
        (
            "rival",
            "GET",
            "/api/analytics/summary?from=2026-11-01&to=2026-11-30",
            None,
            403,
            "forbidden",
        ),
    ] {
        let res = app
            .call(method, path, As::user(caller), body.map(String::as_str))
            .await;
        let problem = res.assert_problem(status, code);
        assert_no_leak(path, &res.text());
        let text = problem.to_string();
        assert!(!text.contains("owner@"), "no one else's email: {text}");
    }
    // What the rival tried changed nothing of the owner's.
    let owner = app.user_record("owner").await.expect("owner");
    assert_eq!(
        (owner.tier, owner.tier_source),
        (Tier::Pro, TierSource::Admin)
    );
    let generation = app.generation("owner-shared").await.expect("generation");
    assert_eq!(generation.owner_id.as_str(), "owner");
    assert_eq!(
        generation.upload.map(|u| u.size_bytes),
        Some(b"the owner's track".len() as u64),
        "the owner's upload grant stands, not one for the rival"
    );
    // The pool item is shared, so the rival may play it; its audio link is the pool's, not a way in.
    let play = app
        .call(
            "POST",
            &format!("/api/community/pool/{item}/play"),
            As::user("rival"),
            None,
        )
        .await;
    assert_eq!(play.status, 200);
}

#[tokio::test]
async fn admin_routes_take_only_the_exact_admin_group() {
    let app = TestApp::spawn().await;
    app.user_with_tier("target", Tier::Free, TierSource::Default)
        .await;
    let admin_routes = [
        (
            "PUT",
            "/api/admin/users/target/tier",
            Some(r#"{"tier":"PRO"}"#),
        ),
        (
            "GET",
            "/api/analytics/summary?from=2026-11-01&to=2026-11-02",
            None,
        ),
        ("GET", "/api/tiers/limits/target", None),
    ];
    for groups in [
        "[editors]",
        "[x,admin]",
        "[admin,x]",
        "[Admin]",
        "[administrators]",
        "[]",
        "x,admin",
    ] {
        for (method, path, body) in admin_routes {
            let res = app
                .call(method, path, As::in_groups("someone", groups), body)
                .await;
            res.assert_problem(403, "forbidden");
            assert_no_leak(path, &res.text());
        }
    }
    for groups in ["[admin]", "[editors admin]", r#"["editors","admin"]"#] {
        for (method, path, body) in admin_routes {
            let res = app
                .call(method, path, As::in_groups("ops", groups), body)
                .await;
            assert_eq!(res.status, 200, "{groups} {method} {path}: {}", res.text());
        }
    }
    assert_eq!(
        app.user_record("target").await.map(|u| u.tier),
        Some(Tier::Pro),
        "only the admins' grant applied"
    );
}
