//! HTTP through local/api: token verification, the request context it builds, 404/405 (CORS:
//! http_headers.rs).

use local_api::{mint_token, JwtRules, TokenRequest};
use son1k_app::ports::Users;
use son1k_tests::TestApp;

const SECRET: &str = "test-secret";

fn rules() -> JwtRules {
    JwtRules::new(SECRET).expect("secret")
}

fn token(user: &str, admin: bool, ttl_seconds: i64) -> String {
    mint_token(
        &rules(),
        &TokenRequest {
            user: user.into(),
            email: None,
            admin,
            ttl_seconds,
        },
    )
    .expect("token")
}

async fn get(url: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    req.send().await.expect("request")
}

async fn problem(res: reqwest::Response, status: u16, code: &str) {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let doc: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        (doc["code"].as_str(), doc["status"].as_u64()),
        (Some(code), Some(status.into())),
        "{doc}"
    );
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_claims() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let res = get(
        &format!("{base}/api/tiers/limits/me"),
        Some(&token("alice", false, 600)),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        (body["user_id"].as_str(), body["tier"].as_str()),
        (Some("alice"), Some("FREE"))
    );
    let stored = app
        .state
        .users()
        .get(&son1k_domain::ids::UserId::parse("alice").expect("id"))
        .await
        .expect("read");
    assert_eq!(
        stored.and_then(|u| u.email),
        Some("alice@local.test".into())
    );
}

#[tokio::test]
async fn missing_malformed_forged_and_expired_tokens_are_401() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let url = format!("{base}/api/tiers/limits/me");
    problem(get(&url, None).await, 401, "unauthorized").await;
    problem(get(&url, Some("not-a-jwt")).await, 401, "unauthorized").await;
    let forged = mint_token(
        &JwtRules::new("another-secret").expect("secret"),
        &TokenRequest {
            user: "alice".into(),
            email: None,
            admin: true,
            ttl_seconds: 600,
        },
    )
    .expect("token");
    problem(get(&url, Some(&forged)).await, 401, "unauthorized").await;
    problem(
        get(&url, Some(&token("alice", false, -600))).await,
        401,
        "unauthorized",
    )
    .await;
    let basic = reqwest::Client::new()
        .get(&url)
        .header("authorization", "Basic YWxpY2U6eA==")
        .send()
        .await
        .expect("send");
    problem(basic, 401, "unauthorized").await;
    assert!(
        app.items(&app.state.config.names.users_table, "USER#alice")
            .await
            .is_empty(),
        "no user created by a bad token"
    );
}

#[tokio::test]
async fn the_admin_group_claim_survives_the_trip_through_the_authorizer_format() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("victim")).await;
    let base = app.serve_http(SECRET).await;
    let url = format!("{base}/api/tiers/limits/victim");
    assert_eq!(
        get(&url, Some(&token("root", true, 600)))
            .await
            .status()
            .as_u16(),
        200
    );
    problem(
        get(&url, Some(&token("mallory", false, 600))).await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn public_routes_need_no_token() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    assert_eq!(
        get(&format!("{base}/health"), None).await.status().as_u16(),
        200
    );
    assert_eq!(
        get(&format!("{base}/api/tiers"), None)
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn unknown_routes_are_404_with_or_without_a_token() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    problem(
        get(&format!("{base}/api/nothing-here"), None).await,
        404,
        "not_found",
    )
    .await;
    problem(
        get(
            &format!("{base}/api/nothing-here"),
            Some(&token("alice", false, 600)),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    problem(
        get(&format!("{base}/api/tiers/limits/"), None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let res = reqwest::Client::new()
        .delete(format!("{base}/api/tiers"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["allow"], "GET");
    problem(res, 405, "method_not_allowed").await;
    let res = reqwest::Client::new()
        .post(format!("{base}/health"))
        .body("{}")
        .send()
        .await
        .expect("send");
    problem(res, 405, "method_not_allowed").await;
}

#[test]
fn local_tokens_carry_groups_as_cognito_does_and_verify_back_in_authorizer_format() {
    let claims = rules().verify(&token("root", true, 600)).expect("valid");
    assert_eq!(
        claims.get("cognito:groups").map(String::as_str),
        Some("[admin]")
    );
    assert_eq!(claims.get("sub").map(String::as_str), Some("root"));
    let plain = rules().verify(&token("alice", false, 600)).expect("valid");
    assert!(
        !plain.contains_key("cognito:groups"),
        "a user in no group has no groups claim"
    );
}

#[tokio::test]
async fn record_generation_over_http_is_201_then_200_for_the_retry() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let client = reqwest::Client::new();
    let send = || {
        client
            .post(format!("{base}/api/tiers/record-generation"))
            .header(
                "authorization",
                format!("Bearer {}", token("walt", false, 600)),
            )
            .header("content-type", "application/json")
            .body(r#"{"generation_id": "http-1", "title": "Über – ✓"}"#)
            .send()
    };
    let first = send().await.expect("send");
    assert_eq!(first.status().as_u16(), 201);
    let first_body = first.bytes().await.expect("body");
    let retry = send().await.expect("send");
    assert_eq!(retry.status().as_u16(), 200);
    assert_eq!(retry.bytes().await.expect("body"), first_body);
}

#[tokio::test]
async fn an_oversized_body_over_http_is_413() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let res = reqwest::Client::new()
        .post(format!("{base}/api/tiers/record-generation"))
        .header(
            "authorization",
            format!("Bearer {}", token("walt", false, 600)),
        )
        .body(format!(
            r#"{{"generation_id": "big", "prompt": "{}"}}"#,
            "p".repeat(65 * 1024)
        ))
        .send()
        .await
        .expect("send");
    problem(res, 413, "payload_too_large").await;
}

/// The whole local billing loop over HTTP: checkout through the API, "Pay" on the stub's hosted page,
/// whose signed events reach the webhook through the local API (raw body and header intact); then
/// the portal's cancellation. The app runs on the wall clock, as the stub signs with it.
#[tokio::test]
async fn a_checkout_paid_on_the_stub_and_cancelled_in_its_portal_moves_the_tier_over_http() {
    let app = TestApp::spawn_at(chrono::Utc::now()).await;
    let base = app.serve_http(SECRET).await;
    app.stripe.deliver_to(
        &format!("{base}/api/tiers/webhook"),
        son1k_tests::stripe::WEBHOOK_SECRET,
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let bearer = format!("Bearer {}", token("payer", false, 600));
    let post = |url: String, body: &'static str| {
        client
            .post(url)
            .header("authorization", bearer.clone())
            .body(body)
            .send()
    };
    let checkout: serde_json::Value =
        post(format!("{base}/api/tiers/checkout"), r#"{"tier":"STUDIO"}"#)
            .await
            .expect("checkout")
            .json()
            .await
            .expect("json");
    let paid = post(
        checkout["checkout_url"].as_str().expect("url").to_owned(),
        "",
    )
    .await
    .expect("pay");
    assert_eq!(paid.status().as_u16(), 303, "redirected back");
    assert!(paid.headers()["location"]
        .to_str()
        .expect("location")
        .starts_with("http://localhost:3000/billing/success?session_id=cs_test_"));
    let limits = app.limits("payer").await;
    assert_eq!(
        (limits["tier"].as_str(), limits["limit"].as_u64()),
        (Some("STUDIO"), Some(1000))
    );

    let portal: serde_json::Value = post(format!("{base}/api/tiers/portal"), "")
        .await
        .expect("portal")
        .json()
        .await
        .expect("json");
    let sub = app.stripe.subscriptions().pop().expect("a subscription").id;
    let portal_url = portal["portal_url"].as_str().expect("url");
    let cancel = post(format!("{portal_url}?sub={sub}&action=cancel"), "")
        .await
        .expect("cancel");
    assert_eq!(cancel.status().as_u16(), 303, "{:?}", cancel.text().await);
    assert_eq!(app.limits("payer").await["tier"], "FREE");
}
