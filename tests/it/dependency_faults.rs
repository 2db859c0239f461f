//! When DynamoDB or S3 fail: every route that needs them answers `503 dependency_unavailable` within
//! the configured SDK timeout, says nothing of the failure, and leaves the data consistent — checked
//! by an audit of every table after a run of faults.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_http::routes::ROUTES;
use son1k_tests::faults::{Fault, FaultMode};
use son1k_tests::stripe::{SubEvent, PRICE_PRO};
use son1k_tests::{assert_no_leak, As, TestApp, TestResponse};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const ITEM: &str = "01JD0000000000000000000000";

/// A request that gets past authentication and validation on `route`, so that only the store can
/// stop it; the expected status when the store is down.
async fn past_validation(app: &TestApp, method: &str, template: &str) -> TestResponse {
    past_validation_as(app, method, template, "ivan").await
}

/// [`past_validation`] as `user` (the admin routes as an admin).
pub(crate) async fn past_validation_as(
    app: &TestApp,
    method: &str,
    template: &str,
    user: &str,
) -> TestResponse {
    let path = template
        .replace("{user_id}", "me")
        .replace("{generation_id}", "g-1")
        .replace("{lyrics_id}", ITEM)
        .replace("{id}", ITEM)
        .replace("{voice_id}", ITEM)
        .replace("{export_id}", ITEM);
    let (caller, body) = match template {
        "/health"
        | "/api/tiers"
        | "/api/credits/packs"
        | "/api/community/pool"
        | "/api/community/ranking" => (None, None),
        "/api/tiers/webhook" => {
            let event = SubEvent {
                price: PRICE_PRO.into(),
                ..SubEvent::new(user)
            };
            return app.webhook(&event.json()).await;
        }
        "/api/tiers/record-generation" | "/api/community/contribute" => {
            (As::user(user), Some(json!({"generation_id": "g-1"})))
        }
        "/api/tiers/checkout" => (As::user(user), Some(json!({"tier": "PRO"}))),
        "/api/credits/checkout" => (As::user(user), Some(json!({"pack": "pack_10"}))),
        "/api/generations" => (
            As::user(user),
            Some(json!({"generation_id": "g-1", "prompt": "a calm piano",
                        "quality": "standard", "duration_seconds": 10})),
        ),
        "/api/generations/{generation_id}/upload-url" => (
            As::user(user),
            Some(json!({"content_type": "audio/mpeg", "size_bytes": 10})),
        ),
        "/api/admin/users/{user_id}/tier" => (As::admin("ops"), Some(json!({"tier": "PRO"}))),
        "/api/admin/users/{user_id}/hold" => (
            As::admin("ops"),
            Some(json!({"hold": true, "reason": "case"})),
        ),
        "/api/admin/audit" | "/api/admin/audit/verify" => (As::admin("ops"), None),
        "/api/me" if method == "DELETE" => (As::user(user), Some(json!({"confirm": "DELETE"}))),
        "/api/me/deletion" => {
            let path = format!("{path}?deletion_id={ITEM}");
            return app.call(method, &path, None, None).await;
        }
        "/api/admin/users/{user_id}/credits" => (
            As::admin("ops"),
            Some(json!({"generations": 5, "expires_at": "2027-01-01T00:00:00Z", "reason": "r"})),
        ),
        "/api/lyrics" if method == "POST" => (As::user(user), Some(json!({"theme": "rain"}))),
        "/api/pixel/chat" => (As::user(user), Some(json!({"message": "hello"}))),
        "/api/voices" if method == "POST" => (As::user(user), Some(json!({"name": "mine"}))),
        "/api/me/alerts/settings" if method == "PUT" => (
            As::user(user),
            Some(json!({"thresholds": [80], "channels": {"email": true}, "pace": true})),
        ),
        "/api/lyrics/{lyrics_id}" if method == "PUT" => {
            let body = json!({"sections": [{"kind": "verse", "lines": ["la"]}]}).to_string();
            let (function, mut req) =
                son1k_tests::build_request(method, &path, As::user(user), Some(&body));
            req.headers_mut()
                .insert("if-match", "1".parse().expect("header"));
            return son1k_tests::send(function, &app.state, req).await;
        }
        "/api/tiers/preview" => {
            return app
                .call(method, "/api/tiers/preview?tier=PRO", As::user(user), None)
                .await;
        }
        "/api/analytics/summary" => {
            let path = format!("{path}?from=2026-11-01&to=2026-11-30");
            return app.call(method, &path, As::admin("ops"), None).await;
        }
        _ => (As::user(user), None),
    };
    let body = body.map(|b| b.to_string());
    app.call(method, &path, caller, body.as_deref()).await
}

fn needs_no_store(path: &str) -> bool {
    matches!(path, "/health" | "/api/tiers" | "/api/credits/packs")
}

#[tokio::test]
async fn every_route_that_needs_the_store_answers_503_when_it_refuses() {
    let app = TestApp::with_store_down().await;
    for route in ROUTES {
        let res = past_validation(&app, route.method, route.path).await;
        let name = format!("{} {}", route.method, route.path);
        if needs_no_store(route.path) {
            assert_eq!(res.status, 200, "{name}: {}", res.text());
            continue;
        }
        res.assert_problem(503, "dependency_unavailable");
        assert!(res.header("retry-after").is_some(), "{name}: Retry-After");
        assert_no_leak(&name, &res.text());
    }
}

#[tokio::test]
async fn a_store_that_never_answers_is_a_503_within_the_configured_timeout() {
    let (attempt, operation) = (Duration::from_millis(200), Duration::from_millis(500));
    let (app, _silent) = TestApp::with_store_silent(attempt, operation).await;
    assert_eq!(app.state.config.aws_operation_timeout, operation);
    for route in ROUTES.iter().filter(|r| !needs_no_store(r.path)) {
        let started = Instant::now();
        let res = past_validation(&app, route.method, route.path).await;
        let took = started.elapsed();
        let name = format!("{} {}", route.method, route.path);
        res.assert_problem(503, "dependency_unavailable");
        assert_no_leak(&name, &res.text());
        // The contract's bound, not a performance figure: the first call that hangs ends by the
        // operation timeout and the route gives up (a generous margin for a loaded machine).
        assert!(
            took < operation * 4,
            "{name} took {took:?} with an operation timeout of {operation:?}"
        );
    }
}

#[tokio::test]
async fn an_admin_grant_waits_out_a_transaction_on_the_user_instead_of_failing() {
    // The grant and its audit entry are one transaction: it is cancelled three times for a conflict
    // while the audit log's head stays where it was.
    let fault = Fault::new("TransactWriteItems", FaultMode::CancelWithConflict, 3);
    let mut app = TestApp::spawn().await;
    app.user_with_tier("busy", Tier::Free, TierSource::Default)
        .await;
    app.intercept(fault.clone());
    let limits = app.grant("busy", Tier::Studio).await;
    assert_eq!(limits["tier"], "STUDIO");
    assert_eq!(
        fault.fired(),
        3,
        "three conflicts, then the grant went through"
    );
}

/// Every item of `table`.
async fn scan(app: &TestApp, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = app
            .state
            .dynamo()
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return items,
        }
    }
}

fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", |v| v.as_str())
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The invariants that hold whatever failed: each period's `used` is its generations, each item's
/// likes are its like rows, each counter is its raw events, and the counters agree with the data.
async fn audit(app: &TestApp) {
    let c = &app.state.config;
    let (users, stats, pool) = (
        scan(app, &c.names.users_table).await,
        scan(app, &c.names.stats_table).await,
        scan(app, &c.names.pool_table).await,
    );
    let mut generations: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    let mut events: BTreeMap<String, u64> = BTreeMap::new();
    for item in &stats {
        let pk = s(item, "pk");
        if pk.starts_with("GEN#") {
            *generations
                .entry((
                    s(item, "owner_id").to_owned(),
                    s(item, "period_key").to_owned(),
                ))
                .or_default() += 1;
        } else if pk.starts_with("COUNTS#") {
            for (name, value) in item {
                if let Ok(v) = value.as_n() {
                    *counters.entry(name.clone()).or_default() += v.parse::<u64>().expect("n");
                }
            }
        } else if pk.starts_with("EVT#") {
            *events.entry(s(item, "event").to_owned()).or_default() += 1;
        }
    }
    for user in &users {
        let id = s(user, "pk").trim_start_matches("USER#").to_owned();
        let Some(AttributeValue::M(usage)) = user.get("usage") else {
            continue;
        };
        for (period, used) in usage {
            let used: u64 = used.as_n().expect("n").parse().expect("used");
            let recorded = generations
                .get(&(id.clone(), period.clone()))
                .copied()
                .unwrap_or(0);
            assert_eq!(used, recorded, "{id} {period}: used vs generations");
        }
    }
    let total_generations: u64 = generations.values().sum();
    assert_eq!(
        counters.get("generation_recorded").copied().unwrap_or(0),
        total_generations
    );
    assert_eq!(counters, events, "each counter is its raw events");
    let mut likes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut plays, mut contributions) = (0, 0);
    for item in &pool {
        let (pk, sk) = (s(item, "pk"), s(item, "sk"));
        if !pk.starts_with("CONTRIB#") {
            continue;
        }
        if sk == "META" {
            contributions += 1;
            plays += n(item, "plays");
            likes.entry(pk.to_owned()).or_default();
        } else if sk.starts_with("LIKE#") {
            *likes.entry(pk.to_owned()).or_default() += 1;
        }
    }
    for item in pool
        .iter()
        .filter(|i| s(i, "sk") == "META" && s(i, "pk").starts_with("CONTRIB#"))
    {
        let pk = s(item, "pk");
        assert_eq!(n(item, "likes"), likes[pk], "{pk}: likes vs like rows");
    }
    assert_eq!(
        counters.get("pool_play").copied().unwrap_or(0),
        plays,
        "plays counted"
    );
    assert_eq!(
        counters.get("pool_contribution").copied().unwrap_or(0),
        contributions,
        "contributions counted"
    );
}

#[tokio::test]
async fn after_failed_calls_and_their_retries_the_data_is_consistent() {
    let app = TestApp::spawn().await;
    let item = app.listed_contribution("maker", b"a track").await;
    app.user_with_tier("payer", Tier::Pro, TierSource::Admin)
        .await;
    for (i, mode) in [
        FaultMode::FailBeforeSend,
        FaultMode::LoseResponse,
        FaultMode::CancelWithConflict,
        FaultMode::CancelWithValidationError,
    ]
    .into_iter()
    .enumerate()
    {
        let fan = format!("fan{i}");
        let like = format!("/api/community/pool/like/{item}");
        let play = format!("/api/community/pool/{item}/play");
        let generation = json!({"generation_id": format!("fan{i}-g")}).to_string();
        let paid = json!({"generation_id": format!("payer-g{i}")}).to_string();
        let contribute = json!({"generation_id": format!("payer-g{i}")}).to_string();
        let claim = json!({"contribution_id": item}).to_string();
        let actions: Vec<(&str, &str, &str, Option<&str>)> = vec![
            (
                "POST",
                "/api/tiers/record-generation",
                &fan,
                Some(&generation),
            ),
            ("POST", &like, &fan, None),
            ("POST", &play, &fan, None),
            ("POST", "/api/community/pool/claim", &fan, Some(&claim)),
            ("DELETE", &like, &fan, None),
            ("POST", "/api/tiers/record-generation", "payer", Some(&paid)),
            (
                "POST",
                "/api/community/contribute",
                "payer",
                Some(&contribute),
            ),
        ];
        for (method, path, user, body) in actions {
            let fault = Fault::new("TransactWriteItems", mode, 1);
            let mut faulty = app.with_clock_at(son1k_tests::at(son1k_tests::DEFAULT_NOW));
            faulty.intercept(fault.clone());
            let first = faulty.call(method, path, As::user(user), body).await;
            assert!(
                first.status < 500 || first.status == 503,
                "{mode:?} {method} {path}: {}",
                first.text()
            );
            // The client retries whatever it got, as a 503 tells it to.
            let retry = app.call(method, path, As::user(user), body).await;
            assert!(
                retry.status < 500,
                "{mode:?} {method} {path} retried: {}",
                retry.text()
            );
        }
        let event = SubEvent {
            price: PRICE_PRO.into(),
            kind: "customer.subscription.created".into(),
            ..SubEvent::new(&format!("sub{i}"))
        };
        app.user_with_tier(&format!("sub{i}"), Tier::Free, TierSource::Default)
            .await;
        let fault = Fault::new("TransactWriteItems", mode, 1);
        let mut faulty = app.with_clock_at(son1k_tests::at(son1k_tests::DEFAULT_NOW));
        faulty.intercept(fault.clone());
        let first = faulty.webhook(&event.json()).await;
        assert_eq!(
            fault.fired(),
            1,
            "{mode:?}: the webhook's write met the fault"
        );
        // A conflict is retried inside the request; anything else asks Stripe to send it again.
        let expected = if mode == FaultMode::CancelWithConflict {
            200
        } else {
            503
        };
        assert_eq!(first.status, expected, "{mode:?}: {}", first.text());
        assert_eq!(
            app.webhook(&event.json()).await.status,
            200,
            "Stripe's retry"
        );
        let stored = app.user_record(&format!("sub{i}")).await.expect("user");
        assert_eq!(stored.tier, Tier::Pro, "{mode:?}: the subscription applied");
    }
    audit(&app).await;
}
