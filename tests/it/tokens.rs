//! The local API refuses what API Gateway's JWT authorizer refuses: `exp` past and `nbf`/`iat` ahead
//! (beyond the same clock skew), a wrong issuer or audience when configured, another algorithm; it
//! will not start with an empty secret and warns when it listens beyond loopback.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use local_api::{exposure_warning, mint_token, JwtRules, TokenRequest, CLOCK_SKEW_SECONDS};
use serde_json::{json, Value};
use son1k_tests::TestApp;

const SECRET: &str = "token-test-secret";
const SKEW: i64 = CLOCK_SKEW_SECONDS as i64;

fn now() -> i64 {
    Utc::now().timestamp()
}

fn sign_with(alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

fn sign(claims: Value) -> String {
    sign_with(Algorithm::HS256, &claims)
}

/// A token valid for ten minutes, with `extra` claims merged over (a `null` removes a claim).
fn claims(extra: Value) -> Value {
    let mut claims = json!({"sub": "alice", "iat": now(), "exp": now() + 600});
    for (name, value) in extra.as_object().expect("object") {
        match value {
            Value::Null => claims.as_object_mut().expect("object").remove(name),
            v => claims
                .as_object_mut()
                .expect("object")
                .insert(name.clone(), v.clone()),
        };
    }
    claims
}

/// What `make token USER=alice` asks for.
fn alice() -> TokenRequest {
    TokenRequest {
        user: "alice".into(),
        email: None,
        admin: false,
        ttl_seconds: 600,
    }
}

fn plain() -> JwtRules {
    JwtRules::new(SECRET).expect("secret")
}

fn strict() -> JwtRules {
    JwtRules::from_lookup(|name| match name {
        "LOCAL_JWT_SECRET" => Some(SECRET.into()),
        "LOCAL_JWT_ISSUER" => Some("https://issuer.example".into()),
        "LOCAL_JWT_AUDIENCE" => Some("web-client, mobile-client".into()),
        _ => None,
    })
    .expect("rules")
}

fn accepted(rules: &JwtRules, extra: Value) -> bool {
    rules.verify(&sign(claims(extra))).is_some()
}

#[test]
fn exp_is_required_and_may_be_past_only_within_the_skew() {
    let rules = plain();
    assert!(accepted(&rules, json!({})));
    assert!(accepted(&rules, json!({"exp": now() - SKEW / 2})));
    assert!(!accepted(&rules, json!({"exp": now() - SKEW - 5})));
    assert!(!accepted(&rules, json!({"exp": null})), "no exp");
    assert!(
        !accepted(&rules, json!({"exp": "tomorrow"})),
        "exp not a number"
    );
}

#[test]
fn nbf_and_iat_may_be_ahead_only_within_the_same_skew() {
    let rules = plain();
    assert!(accepted(&rules, json!({"nbf": now() + SKEW / 2})));
    assert!(!accepted(&rules, json!({"nbf": now() + SKEW + 5})));
    assert!(accepted(&rules, json!({"iat": now() + SKEW / 2})));
    assert!(!accepted(&rules, json!({"iat": now() + SKEW + 5})));
    assert!(!accepted(&rules, json!({"iat": "now"})), "iat not a number");
    assert!(accepted(&rules, json!({"iat": null})), "iat is optional");
}

#[test]
fn a_configured_issuer_must_match() {
    let rules = strict();
    let aud = json!("web-client");
    assert!(accepted(
        &rules,
        json!({"iss": "https://issuer.example", "aud": aud})
    ));
    assert!(!accepted(
        &rules,
        json!({"iss": "https://evil.example", "aud": aud})
    ));
    assert!(!accepted(&rules, json!({"aud": aud})), "no iss");
}

#[test]
fn a_configured_audience_matches_aud_or_client_id() {
    let rules = strict();
    let iss = "https://issuer.example";
    assert!(accepted(
        &rules,
        json!({"iss": iss, "aud": "mobile-client"})
    ));
    assert!(accepted(
        &rules,
        json!({"iss": iss, "aud": ["other", "web-client"]})
    ));
    assert!(
        accepted(&rules, json!({"iss": iss, "client_id": "web-client"})),
        "access tokens carry client_id"
    );
    assert!(!accepted(
        &rules,
        json!({"iss": iss, "aud": "other-client"})
    ));
    assert!(
        !accepted(&rules, json!({"iss": iss})),
        "no aud, no client_id"
    );
    // Without configured audiences any aud is accepted, as is none.
    assert!(accepted(&plain(), json!({"aud": "anything"})));
}

#[test]
fn only_hs256_with_the_secret_is_accepted() {
    let rules = plain();
    assert!(rules
        .verify(&sign_with(Algorithm::HS512, &claims(json!({}))))
        .is_none());
    // The same claims unsigned: header `{"alg":"none","typ":"JWT"}`, empty signature.
    let signed = sign(claims(json!({})));
    let payload = signed.split('.').nth(1).expect("payload");
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    assert!(rules.verify(&signed).is_some());
    assert!(rules.verify(&unsigned).is_none());
}

#[test]
fn tokens_from_make_token_satisfy_the_configured_issuer_and_audience() {
    let rules = strict();
    let token = mint_token(&rules, &alice()).expect("token");
    let claims = rules.verify(&token).expect("accepted");
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        ("https://issuer.example", "web-client")
    );
}

#[test]
fn an_empty_secret_is_refused_and_an_unset_one_is_the_public_default() {
    let empty = JwtRules::from_lookup(|name| (name == "LOCAL_JWT_SECRET").then(String::new));
    assert!(empty.is_err());
    assert!(JwtRules::new("").is_err());
    let default = JwtRules::from_lookup(|_| None).expect("default secret");
    let token = mint_token(
        &JwtRules::new(local_api::DEFAULT_JWT_SECRET).expect("secret"),
        &alice(),
    )
    .expect("token");
    assert!(default.verify(&token).is_some());
}

#[test]
fn listening_beyond_loopback_gets_a_warning() {
    for host in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"] {
        assert_eq!(exposure_warning(host), None, "{host}");
    }
    for host in ["0.0.0.0", "::", "192.168.1.20", "example.com"] {
        let warning = exposure_warning(host).unwrap_or_else(|| panic!("{host}: no warning"));
        assert!(warning.contains("not a loopback address"), "{warning}");
    }
}

#[tokio::test]
async fn the_http_server_applies_the_rules_before_any_handler_runs() {
    let app = TestApp::spawn().await;
    let base = app.serve_http_with(strict()).await;
    let call = |token: String| {
        let url = format!("{base}/api/tiers/limits/me");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    };
    let good = json!({"iss": "https://issuer.example", "aud": "web-client"});
    assert_eq!(call(sign(claims(good.clone()))).await, 200);
    let mut early = good.clone();
    early["sub"] = json!("early");
    early["nbf"] = json!(now() + 3600);
    assert_eq!(call(sign(claims(early))).await, 401);
    let mut stranger = good;
    stranger["sub"] = json!("stranger");
    stranger["aud"] = json!("someone-else");
    assert_eq!(call(sign(claims(stranger))).await, 401);
    // Only the accepted token reached a handler (the first request creates the user).
    assert!(app.user_record("alice").await.is_some());
    assert!(app.user_record("early").await.is_none());
    assert!(app.user_record("stranger").await.is_none());
}
