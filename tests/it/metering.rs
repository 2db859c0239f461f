//! POST /api/tiers/record-generation: atomic quota under races, idempotent replays, quality gating,
//! periods, pool contributions, and what happens when DynamoDB fails.

use serde_json::json;
use son1k_domain::entitlement::{SubscriptionStatus, TierSource};
use son1k_domain::tiers::Tier;
use son1k_store::metrics::CallCounter;
use son1k_tests::faults::{Fault, FaultMode};
use son1k_tests::{at, statuses, used_by_created, TestApp, TestResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Fires `n` record-generation requests for `user` at once; `id(i)` names the i-th generation.
async fn parallel(
    app: &Arc<TestApp>,
    user: &str,
    n: usize,
    id: impl Fn(usize) -> String,
) -> Vec<TestResponse> {
    let calls = (0..n).map(|i| {
        let app = app.clone();
        let user = user.to_owned();
        let body = json!({"generation_id": id(i), "quality": "standard"});
        tokio::spawn(async move { app.record(&user, body).await })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect()
}

async fn generation_exists(app: &TestApp, id: &str) -> bool {
    !app.items(&app.state.config.names.stats_table, &format!("GEN#{id}"))
        .await
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_parallel_free_generations_record_exactly_three_over_twenty_rounds() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..20 {
        let user = format!("free-{round}");
        let responses = parallel(&app, &user, 50, |i| format!("r{round}-g{i}")).await;
        let counts = statuses(&responses);
        assert_eq!(
            counts,
            BTreeMap::from([(201, 3), (429, 47)]),
            "round {round}"
        );
        let stored = app.user_record(&user).await.expect("user");
        assert_eq!(
            (
                stored.used_in("D#2026-11-26"),
                stored.usage.as_ref().map(|u| u.len())
            ),
            (3, Some(1))
        );
        assert_eq!(
            used_by_created(&responses),
            vec![1, 2, 3],
            "each success reports its own count"
        );
        let limited = responses.iter().find(|r| r.status == 429).expect("a 429");
        let doc = limited.assert_problem(429, "daily_limit_reached");
        assert_eq!(
            (doc["limit"].clone(), doc["used"].clone()),
            (json!(3), json!(3))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_parallel_retries_of_one_id_record_once_and_replay_the_same_bytes() {
    let app = Arc::new(TestApp::spawn().await);
    let responses = parallel(&app, "retrier", 30, |_| "same-id".to_owned()).await;
    assert_eq!(statuses(&responses), BTreeMap::from([(200, 29), (201, 1)]));
    let created = responses.iter().find(|r| r.status == 201).expect("one 201");
    assert!(
        responses.iter().all(|r| r.body == created.body),
        "every replay is byte-identical"
    );
    assert_eq!(created.json()["used"], 1);
    assert_eq!(app.used("retrier").await, 1);
}

/// The last unit of the day and ten parallel copies of one request: one spends it, the others see
/// its in-flight marker and wait for its record instead of being refused at the limit it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_copies_of_a_request_for_the_last_unit_all_get_its_answer() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..5 {
        let user = format!("last-{round}");
        app.put_counter(&user, "D#2026-11-26", 2).await;
        let responses = parallel(&app, &user, 10, |_| format!("the-last-{round}")).await;
        assert_eq!(
            statuses(&responses),
            BTreeMap::from([(200, 9), (201, 1)]),
            "round {round}"
        );
        assert_eq!(app.used(&user).await, 3);
    }
}

/// A request that spent and died before its record (its Lambda killed) leaves an in-flight marker: a
/// duplicate within `INFLIGHT_KEPT` would wait for it, but once the marker is older than any request
/// can run, the client's retry spends and records; markers of requests long over are dropped.
#[tokio::test]
async fn a_dead_requests_in_flight_marker_does_not_block_its_retry() {
    let app = TestApp::spawn().await;
    let now = son1k_app::clock::Clock::now(&*app.clock).timestamp_millis();
    let kept = son1k_store::generations::INFLIGHT_KEPT.num_milliseconds();
    let mut user = app.new_user("ida");
    user.usage = Some([("D#2026-11-26".to_owned(), 1)].into());
    user.inflight = [
        ("dead".to_owned(), now - kept - 1),
        ("older".to_owned(), now - kept - 5_000),
    ]
    .into();
    app.put_user(&user).await;
    let res = app.record("ida", json!({"generation_id": "dead"})).await;
    assert_eq!(
        (res.status, res.json()["used"].clone()),
        (201, json!(2)),
        "{}",
        res.text()
    );
    let stored = app.user_record("ida").await.expect("user");
    assert_eq!(
        stored.inflight.into_iter().collect::<Vec<_>>(),
        vec![("dead".to_owned(), now)],
        "its own marker renewed, the other dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_parallel_on_pro_near_its_limit_never_pass_two_hundred() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..3 {
        let user = format!("pro-{round}");
        app.user_with_tier(&user, Tier::Pro, TierSource::Admin)
            .await;
        app.put_counter(&user, "M#2026-11-01T00:00:00Z", 190).await;
        let responses = parallel(&app, &user, 50, |i| format!("pro{round}-{i}")).await;
        assert_eq!(
            statuses(&responses),
            BTreeMap::from([(201, 10), (429, 40)]),
            "round {round}"
        );
        let stored = app.user_record(&user).await.expect("user");
        assert_eq!(
            (app.used_by(&stored), stored.paid_generations_total),
            (200, 10)
        );
        let doc = responses
            .iter()
            .find(|r| r.status == 429)
            .expect("429")
            .assert_problem(429, "monthly_limit_reached");
        assert_eq!(doc["limit"], 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_paid_users_batch_of_ten_parallel_generations_all_succeed() {
    let app = Arc::new(TestApp::spawn().await);
    app.user_with_tier("batcher", Tier::Studio, TierSource::Admin)
        .await;
    let responses = parallel(&app, "batcher", 10, |i| format!("batch-{i}")).await;
    assert_eq!(statuses(&responses), BTreeMap::from([(201, 10)]));
    assert_eq!(app.used("batcher").await, 10);
}

#[tokio::test]
async fn the_201_body_reports_usage_and_the_period_end() {
    let app = TestApp::spawn().await;
    let res = app.record("alice", json!({"generation_id": "first", "genre": "Ambient", "title": "Dawn", "duration_seconds": 61.5})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.content_type(), Some("application/json"));
    assert_eq!(
        res.json(),
        json!({"generation_id": "first", "recorded": true, "used": 1, "remaining": 2, "reset_at": "2026-11-27T00:00:00Z", "pool_contribution": null})
    );
    let stored = app.generation("first").await.expect("stored");
    assert_eq!(
        (
            stored.owner_id.as_str(),
            stored.genre.as_deref(),
            stored.title.as_deref()
        ),
        ("alice", Some("ambient"), Some("Dawn"))
    );
    assert_eq!(stored.response.as_bytes(), res.body.as_slice());
}

#[tokio::test]
async fn a_replay_returns_200_with_the_stored_body_and_spends_nothing() {
    let app = TestApp::spawn().await;
    let first = app.record("bob", json!({"generation_id": "g1"})).await;
    app.clock.advance(chrono::Duration::minutes(3));
    let again = app
        .record("bob", json!({"generation_id": "g1", "title": "changed"}))
        .await;
    assert_eq!((first.status, again.status), (201, 200));
    assert_eq!(first.body, again.body);
    assert_eq!(app.used("bob").await, 1);
}

#[tokio::test]
async fn a_replay_still_answers_200_after_the_quota_is_spent() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        assert_eq!(
            app.record("carol", json!({"generation_id": format!("c{i}")}))
                .await
                .status,
            201
        );
    }
    app.record("carol", json!({"generation_id": "c3"}))
        .await
        .assert_problem(429, "daily_limit_reached");
    let replay = app.record("carol", json!({"generation_id": "c0"})).await;
    assert_eq!(
        (replay.status, replay.json()["used"].clone()),
        (200, json!(1))
    );
}

#[tokio::test]
async fn another_users_generation_id_is_a_409_and_spends_nothing() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.record("owner", json!({"generation_id": "shared-id"}))
            .await
            .status,
        201
    );
    let res = app
        .record("intruder", json!({"generation_id": "shared-id"}))
        .await;
    let doc = res.assert_problem(409, "generation_id_taken");
    assert!(
        !res.text().contains("owner"),
        "the owner is not revealed: {doc}"
    );
    assert_eq!(app.used("intruder").await, 0);
    assert_eq!(app.used("owner").await, 1);
}

#[tokio::test]
async fn the_429_carries_limit_used_reset_at_and_retry_after() {
    let app = TestApp::spawn().await;
    app.put_counter("dave", "D#2026-11-26", 3).await;
    let res = app.record("dave", json!({"generation_id": "late"})).await;
    let doc = res.assert_problem(429, "daily_limit_reached");
    assert_eq!(
        (
            doc["limit"].clone(),
            doc["used"].clone(),
            doc["reset_at"].clone()
        ),
        (json!(3), json!(3), json!("2026-11-27T00:00:00Z"))
    );
    assert_eq!(
        res.header("retry-after"),
        Some("50400"),
        "10:00 to midnight"
    );
    assert!(!generation_exists(&app, "late").await);
}

#[tokio::test]
async fn a_monthly_tier_answers_monthly_limit_reached_until_the_month_ends() {
    let app = TestApp::spawn().await;
    app.user_with_tier("erin", Tier::Creator, TierSource::Admin)
        .await;
    app.put_counter("erin", "M#2026-11-01T00:00:00Z", 50).await;
    let res = app
        .record("erin", json!({"generation_id": "e1", "quality": "high"}))
        .await;
    let doc = res.assert_problem(429, "monthly_limit_reached");
    assert_eq!(doc["reset_at"], "2026-12-01T00:00:00Z");
    assert_eq!(
        res.header("retry-after"),
        Some(&*(4 * 86_400 + 14 * 3600).to_string())
    );
}

#[tokio::test]
async fn a_quality_outside_the_tier_is_403_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let res = app
        .record("frank", json!({"generation_id": "hq", "quality": "high"}))
        .await;
    let doc = res.assert_problem(403, "quality_not_in_tier");
    assert_eq!(doc["qualities"], json!(["standard"]));
    assert!(!generation_exists(&app, "hq").await);
    assert_eq!(app.used("frank").await, 0);
    app.user_with_tier("gina", Tier::Creator, TierSource::Admin)
        .await;
    app.record("gina", json!({"generation_id": "u1", "quality": "ultra"}))
        .await
        .assert_problem(403, "quality_not_in_tier");
    assert_eq!(
        app.record("gina", json!({"generation_id": "h1", "quality": "high"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn an_upgrade_mid_day_counts_from_the_new_period() {
    let app = TestApp::spawn().await;
    app.put_counter("hank", "D#2026-11-26", 3).await;
    app.record("hank", json!({"generation_id": "h0"}))
        .await
        .assert_problem(429, "daily_limit_reached");
    let granted = app.grant("hank", Tier::Pro).await;
    assert_eq!(granted["remaining"], json!(200));
    let res = app
        .record("hank", json!({"generation_id": "h1", "quality": "ultra"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(
        (
            body["used"].clone(),
            body["remaining"].clone(),
            body["reset_at"].clone()
        ),
        (json!(1), json!(199), json!("2026-12-01T00:00:00Z"))
    );
}

#[tokio::test]
async fn a_downgrade_never_grants_more_than_the_new_tier_allows() {
    let app = TestApp::spawn().await;
    app.user_with_tier("ivan", Tier::Pro, TierSource::Admin)
        .await;
    app.put_counter("ivan", "M#2026-11-01T00:00:00Z", 120).await;
    let granted = app.grant("ivan", Tier::Creator).await;
    assert_eq!(
        (granted["limit"].clone(), granted["remaining"].clone()),
        (json!(50), json!(0))
    );
    let doc = app
        .record("ivan", json!({"generation_id": "i1"}))
        .await
        .assert_problem(429, "monthly_limit_reached");
    assert_eq!(
        (doc["limit"].clone(), doc["used"].clone()),
        (json!(50), json!(120))
    );
}

#[tokio::test]
async fn a_stripe_tier_resets_at_its_billing_period_end_to_the_second() {
    let app = TestApp::spawn().await;
    let mut sub = son1k_tests::subscription(
        SubscriptionStatus::Active,
        "price_pro_monthly",
        "2026-11-14T17:42:09Z",
        "2026-12-14T17:42:09Z",
    );
    sub.billing_cycle_anchor = Some(at("2026-10-14T17:42:09Z"));
    app.stripe_user("judy", Tier::Pro, sub).await;
    let body = app
        .record("judy", json!({"generation_id": "j1"}))
        .await
        .json();
    assert_eq!(
        (body["reset_at"].clone(), body["remaining"].clone()),
        (json!("2026-12-14T17:42:09Z"), json!(199))
    );
    assert_eq!(
        app.user_record("judy")
            .await
            .expect("user")
            .used_in("M#2026-11-14T17:42:09Z"),
        1
    );
}

#[tokio::test]
async fn the_month_turns_at_midnight_utc_on_the_first() {
    let app = TestApp::spawn_at(at("2026-11-30T23:59:59Z")).await;
    app.user_with_tier("kim", Tier::Creator, TierSource::Admin)
        .await;
    app.put_counter("kim", "M#2026-11-01T00:00:00Z", 49).await;
    let last = app.record("kim", json!({"generation_id": "k-nov"})).await;
    assert_eq!(
        (
            last.status,
            last.json()["remaining"].clone(),
            last.json()["reset_at"].clone()
        ),
        (201, json!(0), json!("2026-12-01T00:00:00Z"))
    );
    app.record("kim", json!({"generation_id": "k-nov-2"}))
        .await
        .assert_problem(429, "monthly_limit_reached");
    app.clock.set(at("2026-12-01T00:00:00Z"));
    let first = app
        .record("kim", json!({"generation_id": "k-dec"}))
        .await
        .json();
    assert_eq!(
        (first["used"].clone(), first["reset_at"].clone()),
        (json!(1), json!("2027-01-01T00:00:00Z"))
    );
}

#[tokio::test]
async fn the_day_turns_at_midnight_utc_for_free_users() {
    let app = TestApp::spawn_at(at("2026-12-31T23:59:59Z")).await;
    app.put_counter("leo", "D#2026-12-31", 3).await;
    let doc = app
        .record("leo", json!({"generation_id": "l1"}))
        .await
        .assert_problem(429, "daily_limit_reached");
    assert_eq!(doc["reset_at"], "2027-01-01T00:00:00Z");
    app.clock.set(at("2027-01-01T00:00:00Z"));
    assert_eq!(
        app.record("leo", json!({"generation_id": "l1"}))
            .await
            .json()["reset_at"],
        "2027-01-02T00:00:00Z"
    );
}

async fn rank_row(app: &TestApp, period: &str, user: &str) -> Option<(u64, u64)> {
    let items = app
        .items(
            &app.state.config.names.pool_table,
            &format!("RANK#{period}"),
        )
        .await;
    let row = items.into_iter().find(|i| {
        i.get("sk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s == &format!("USER#{user}"))
    })?;
    let n = |name: &str| {
        row.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Some((n("points"), n("contributions")))
}

#[tokio::test]
async fn every_twentieth_paid_generation_joins_the_pool_with_its_points() {
    let app = TestApp::spawn().await;
    app.user_with_tier("maya", Tier::Pro, TierSource::Admin)
        .await;
    let mut contributions = Vec::new();
    for n in 1..=41 {
        let quality = match n {
            20 => "ultra",
            40 => "high",
            _ => "standard",
        };
        let res = app
            .record(
                "maya",
                json!({"generation_id": format!("m{n}"), "quality": quality, "genre": "House"}),
            )
            .await;
        assert_eq!(res.status, 201, "{n}: {}", res.text());
        let pc = res.json()["pool_contribution"].clone();
        if !pc.is_null() {
            contributions.push((n, pc));
        }
    }
    assert_eq!(
        contributions
            .iter()
            .map(|(n, pc)| (*n, pc["points"].clone()))
            .collect::<Vec<_>>(),
        vec![(20, json!(3)), (40, json!(2))]
    );
    for (n, pc) in &contributions {
        let id = pc["contribution_id"].as_str().expect("id");
        let items = app
            .items(&app.state.config.names.pool_table, &format!("CONTRIB#{id}"))
            .await;
        let item = items.first().expect("contribution stored");
        assert_eq!(
            item.get("generation_id")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some(&*format!("m{n}"))
        );
        assert_eq!(
            item.get("listed").and_then(|v| v.as_bool().ok()),
            Some(&false),
            "not listed before audio is stored"
        );
        assert!(item.get("lst").is_none(), "not in the listing index yet");
        let generation = app.generation(&format!("m{n}")).await.expect("gen");
        assert_eq!(generation.contribution_id.as_deref(), Some(id));
    }
    for period in ["W#2026-W48", "M#2026-11", "ALL"] {
        assert_eq!(
            rank_row(&app, period, "maya").await,
            Some((5, 2)),
            "{period}"
        );
    }
    assert_eq!(
        app.user_record("maya")
            .await
            .expect("user")
            .paid_generations_total,
        41
    );
}

#[tokio::test]
async fn free_generations_do_not_count_toward_the_pool() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        app.record("nina", json!({"generation_id": format!("f{i}")}))
            .await;
    }
    assert_eq!(
        app.user_record("nina")
            .await
            .expect("user")
            .paid_generations_total,
        0
    );
    app.grant("nina", Tier::Studio).await;
    let hits: Vec<usize> = {
        let mut hits = Vec::new();
        for n in 1..=20 {
            let body = app
                .record("nina", json!({"generation_id": format!("p{n}")}))
                .await
                .json();
            if !body["pool_contribution"].is_null() {
                hits.push(n);
            }
        }
        hits
    };
    assert_eq!(
        hits,
        vec![20],
        "the 20th paid generation, not the 17th overall"
    );
}

#[tokio::test]
async fn contributions_land_in_the_iso_week_of_their_instant() {
    let app = TestApp::spawn_at(at("2026-11-29T23:59:59Z")).await;
    app.user_with_tier("omar", Tier::Studio, TierSource::Admin)
        .await;
    app.about_to_contribute("omar").await;
    assert!(!app
        .record("omar", json!({"generation_id": "w48"}))
        .await
        .json()["pool_contribution"]
        .is_null());
    app.clock.set(at("2026-11-30T00:00:00Z"));
    app.about_to_contribute("omar").await;
    assert!(!app
        .record("omar", json!({"generation_id": "w49", "quality": "ultra"}))
        .await
        .json()["pool_contribution"]
        .is_null());
    assert_eq!(rank_row(&app, "W#2026-W48", "omar").await, Some((1, 1)));
    assert_eq!(rank_row(&app, "W#2026-W49", "omar").await, Some((3, 1)));
    assert_eq!(rank_row(&app, "M#2026-11", "omar").await, Some((4, 2)));
}

#[tokio::test]
async fn malformed_bodies_are_400s_naming_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(String, &str)> = vec![
        (json!({}).to_string(), "generation_id"),
        (json!({"generation_id": ""}).to_string(), "generation_id"),
        (
            json!({"generation_id": "has space"}).to_string(),
            "generation_id",
        ),
        (
            json!({"generation_id": long(65)}).to_string(),
            "generation_id",
        ),
        (json!({"generation_id": 7}).to_string(), "generation_id"),
        (
            json!({"generation_id": "ok", "quality": "lossless"}).to_string(),
            "quality",
        ),
        (
            json!({"generation_id": "ok", "quality": 2}).to_string(),
            "quality",
        ),
        (
            json!({"generation_id": "ok", "genre": long(41)}).to_string(),
            "genre",
        ),
        (
            json!({"generation_id": "ok", "title": long(201)}).to_string(),
            "title",
        ),
        (
            json!({"generation_id": "ok", "prompt": long(2001)}).to_string(),
            "prompt",
        ),
        (
            json!({"generation_id": "ok", "duration_seconds": -1}).to_string(),
            "duration_seconds",
        ),
        (
            json!({"generation_id": "ok", "duration_seconds": 3601}).to_string(),
            "duration_seconds",
        ),
        (
            json!({"generation_id": "ok", "duration_seconds": "60"}).to_string(),
            "duration_seconds",
        ),
        ("{\"generation_id\": \"ok\"".to_owned(), "body"),
        ("[]".to_owned(), "body"),
        (String::new(), "body"),
    ];
    for (body, field) in cases {
        let res = app
            .call(
                "POST",
                "/api/tiers/record-generation",
                son1k_tests::As::user("pat"),
                Some(&body),
            )
            .await;
        let doc = res.assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{body}");
        assert!(
            doc["detail"].as_str().unwrap_or_default().contains(field),
            "{doc}"
        );
    }
    assert!(!generation_exists(&app, "ok").await);
    assert!(
        app.user_record("pat").await.is_none(),
        "nothing written, not even the user"
    );
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let body = json!({"generation_id": "big", "prompt": "p".repeat(70 * 1024)}).to_string();
    let res = app
        .call(
            "POST",
            "/api/tiers/record-generation",
            son1k_tests::As::user("quinn"),
            Some(&body),
        )
        .await;
    res.assert_problem(413, "payload_too_large");
    assert!(!generation_exists(&app, "big").await);
}

#[tokio::test]
async fn without_claims_it_is_401() {
    let app = TestApp::spawn().await;
    let res = app
        .call(
            "POST",
            "/api/tiers/record-generation",
            None,
            Some(r#"{"generation_id":"x"}"#),
        )
        .await;
    res.assert_problem(401, "unauthorized");
}

/// One read (the user and a possible replay together), the spend (one item, so a user's parallel
/// requests queue at DynamoDB instead of racing) and the record transaction.
#[tokio::test]
async fn the_common_path_makes_one_read_one_spend_and_one_transaction() {
    let counter = CallCounter::new();
    let mut app = TestApp::spawn().await;
    app.intercept(counter.clone());
    app.record("rita", json!({"generation_id": "warmup"})).await;
    assert_eq!(
        counter.take(),
        vec![
            "BatchGetItem",
            // A first request: no tombstone (a deleted account is not made again), then the user.
            "GetItem",
            "PutItem",
            "UpdateItem",
            "TransactWriteItems"
        ],
        "first request also creates the user"
    );
    assert_eq!(
        app.record("rita", json!({"generation_id": "r1"}))
            .await
            .status,
        201
    );
    assert_eq!(
        counter.take(),
        vec!["BatchGetItem", "UpdateItem", "TransactWriteItems"]
    );
    app.about_to_contribute("sam").await;
    counter.take();
    let res = app.record("sam", json!({"generation_id": "s20"})).await;
    assert!(!res.json()["pool_contribution"].is_null());
    assert_eq!(
        counter.take(),
        vec!["BatchGetItem", "UpdateItem", "TransactWriteItems"],
        "a contribution rides in the record transaction"
    );
    assert_eq!(
        app.record("sam", json!({"generation_id": "s20"}))
            .await
            .status,
        200
    );
    assert_eq!(
        counter.take(),
        vec!["BatchGetItem"],
        "a replay is one read: the record comes with the user, nothing is spent"
    );
}

#[tokio::test]
async fn dynamodb_failing_mid_request_is_503_and_writes_nothing() {
    let fault = Fault::new("TransactWriteItems", FaultMode::FailBeforeSend, 1);
    let mut app = TestApp::spawn().await;
    app.intercept(fault.clone());
    app.about_to_contribute("tess").await;
    let res = app
        .record("tess", json!({"generation_id": "t20", "quality": "ultra"}))
        .await;
    let doc = res.assert_problem(503, "dependency_unavailable");
    assert!(
        !res.text().contains("injected"),
        "no SDK error in the body: {doc}"
    );
    assert_eq!(fault.fired(), 1);
    let stored = app.user_record("tess").await.expect("user");
    assert_eq!(
        (app.used_by(&stored), stored.paid_generations_total),
        (0, 19),
        "counter untouched"
    );
    assert!(!generation_exists(&app, "t20").await, "no generation");
    assert!(
        rank_row(&app, "ALL", "tess").await.is_none(),
        "no contribution or ranking"
    );
    let retry = app
        .record("tess", json!({"generation_id": "t20", "quality": "ultra"}))
        .await;
    assert_eq!(
        (retry.status, retry.json()["used"].clone()),
        (201, json!(1))
    );
    assert_eq!(rank_row(&app, "ALL", "tess").await, Some((3, 1)));
}

#[tokio::test]
async fn a_response_lost_after_commit_is_503_and_the_retry_replays_it() {
    let fault = Fault::new("TransactWriteItems", FaultMode::LoseResponse, 1);
    let mut app = TestApp::spawn().await;
    app.intercept(fault.clone());
    let res = app.record("uma", json!({"generation_id": "lost"})).await;
    res.assert_problem(503, "dependency_unavailable");
    assert!(generation_exists(&app, "lost").await, "DynamoDB did commit");
    let retry = app.record("uma", json!({"generation_id": "lost"})).await;
    assert_eq!(
        (retry.status, retry.json()["used"].clone()),
        (200, json!(1)),
        "the client's retry gets the stored answer"
    );
    assert_eq!(app.used("uma").await, 1, "spent once");
}

#[tokio::test]
async fn a_cancellation_no_retry_overcomes_is_503_at_once_and_writes_nothing() {
    let fault = Fault::new(
        "TransactWriteItems",
        FaultMode::CancelWithValidationError,
        5,
    );
    let mut app = TestApp::spawn().await;
    app.intercept(fault.clone());
    let res = app.record("val", json!({"generation_id": "v1"})).await;
    res.assert_problem(503, "dependency_unavailable");
    assert_eq!(fault.fired(), 1, "not retried");
    assert_eq!(app.used("val").await, 0);
    assert!(!generation_exists(&app, "v1").await);
}

#[tokio::test]
async fn transaction_conflicts_are_retried_then_answered_503() {
    let always = Fault::new(
        "TransactWriteItems",
        FaultMode::CancelWithConflict,
        u32::MAX,
    );
    let mut app = TestApp::spawn().await;
    app.intercept(always.clone());
    let res = app.record("vic", json!({"generation_id": "v1"})).await;
    res.assert_problem(503, "dependency_unavailable");
    assert_eq!(
        always.fired(),
        son1k_app::metering::RECORD_ATTEMPTS,
        "retried a bounded number of times"
    );
    assert_eq!(app.used("vic").await, 0, "the spent unit was given back");
    assert!(!generation_exists(&app, "v1").await);

    let twice = Fault::new("TransactWriteItems", FaultMode::CancelWithConflict, 2);
    let mut app = TestApp::spawn().await;
    app.intercept(twice.clone());
    let res = app.record("vic", json!({"generation_id": "v2"})).await;
    assert_eq!(
        (res.status, twice.fired()),
        (201, 2),
        "a transient conflict is invisible to the client"
    );
    assert_eq!(
        (res.json()["used"].clone(), app.used("vic").await),
        (json!(1), 1)
    );
}

/// Found by the fuzzer: a duration below DynamoDB's smallest number (1e-130) made the transaction
/// fail, a 503; it is kept to the millisecond instead.
#[tokio::test]
async fn a_duration_finer_than_a_millisecond_is_recorded_not_refused() {
    let app = TestApp::spawn().await;
    let body = json!({"generation_id": "tiny", "duration_seconds": 4.578030570935428e-276,
        "prompt": "]iK\u{ef55}j_\u{9a71c}"});
    let res = app.record("dora", body.clone()).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        app.generation("tiny")
            .await
            .and_then(|g| g.duration_seconds),
        Some(0.0)
    );
    let taken = app.record("eve", body).await;
    taken.assert_problem(409, "generation_id_taken");
}
