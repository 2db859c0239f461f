//! A period's usage survives tier changes and clock edges, and one user's sustained parallel burst
//! takes turns instead of failing: every count is kept per period, every attempt reads the clock.

use serde_json::json;
use son1k_domain::tiers::Tier;
use son1k_tests::{at, statuses, used_by_created, TestApp, TestResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

async fn record_ok(app: &TestApp, user: &str, id: &str) -> serde_json::Value {
    let res = app.record(user, json!({"generation_id": id})).await;
    assert_eq!(res.status, 201, "{id}: {}", res.text());
    res.json()
}

#[tokio::test]
async fn leaving_pro_and_returning_in_the_same_month_keeps_the_months_count() {
    let app = TestApp::spawn().await;
    app.limits("paula").await; // the first request creates the user
    app.grant("paula", Tier::Pro).await;
    for i in 0..4 {
        record_ok(&app, "paula", &format!("pro-{i}")).await;
    }
    app.grant("paula", Tier::Free).await;
    record_ok(&app, "paula", "free-0").await;
    app.grant("paula", Tier::Pro).await;
    let limits = app.limits("paula").await;
    assert_eq!(
        (&limits["tier"], &limits["used"], &limits["remaining"]),
        (&json!("PRO"), &json!(4), &json!(196))
    );
    assert_eq!(record_ok(&app, "paula", "pro-4").await["used"], 5);
}

#[tokio::test]
async fn a_free_pro_free_detour_keeps_the_days_count() {
    let app = TestApp::spawn().await;
    record_ok(&app, "fred", "f1").await;
    record_ok(&app, "fred", "f2").await;
    app.grant("fred", Tier::Pro).await;
    assert_eq!(
        record_ok(&app, "fred", "p1").await["used"],
        1,
        "PRO counts its month"
    );
    app.grant("fred", Tier::Free).await;
    let limits = app.limits("fred").await;
    assert_eq!(
        (&limits["used"], &limits["remaining"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(record_ok(&app, "fred", "f3").await["used"], 3);
    app.record("fred", json!({"generation_id": "f4"}))
        .await
        .assert_problem(429, "daily_limit_reached");
}

/// Two Lambda instances whose clocks straddle midnight UTC: each day keeps its own three.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_clocks_straddling_midnight_record_at_most_three_per_day() {
    let before = Arc::new(TestApp::spawn_at(at("2026-11-26T23:59:59.900Z")).await);
    let after = Arc::new(before.with_clock_at(at("2026-11-27T00:00:00.100Z")));
    let calls = (0..100).map(|i| {
        let app = if i % 2 == 0 {
            before.clone()
        } else {
            after.clone()
        };
        tokio::spawn(async move {
            let res = app
                .record("night-owl", json!({"generation_id": format!("n{i}")}))
                .await;
            (i % 2 == 0, res)
        })
    });
    let (late, early): (Vec<_>, Vec<_>) = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .partition(|(before_midnight, _)| *before_midnight);
    let answers =
        |side: Vec<(bool, TestResponse)>| side.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
    for (day, answers) in [
        ("2026-11-26", answers(late)),
        ("2026-11-27", answers(early)),
    ] {
        assert_eq!(
            statuses(&answers),
            BTreeMap::from([(201, 3), (429, 47)]),
            "{day}"
        );
        assert_eq!(used_by_created(&answers), [1, 2, 3], "{day}");
    }
    let stored = before.user_record("night-owl").await.expect("user");
    assert_eq!(
        (
            stored.used_in("D#2026-11-26"),
            stored.used_in("D#2026-11-27")
        ),
        (3, 3)
    );
}

/// 16 clients of one STUDIO user, 12 generations each, all at once: every one is recorded, none is
/// refused for losing races to its siblings (nor past the default request budget's burst).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixteen_clients_of_one_studio_user_all_succeed() {
    let app = Arc::new(TestApp::spawn().await);
    app.limits("stella").await;
    app.grant("stella", Tier::Studio).await;
    let clients = (0..16).map(|c| {
        let app = app.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for g in 0..12 {
                let res = app
                    .record("stella", json!({"generation_id": format!("c{c}-g{g}")}))
                    .await;
                if res.status != 201 {
                    eprintln!("c{c}-g{g}: {} {}", res.status, res.text());
                }
                statuses.push(res.status);
            }
            statuses
        })
    });
    let mut counts = BTreeMap::new();
    for client in futures::future::join_all(clients).await {
        for status in client.expect("task") {
            *counts.entry(status).or_insert(0) += 1;
        }
    }
    assert_eq!(counts, BTreeMap::from([(201, 192)]));
    assert_eq!(app.used("stella").await, 192);
}

/// Counters of periods no clock can compute again are dropped as new ones are written; the current
/// period's and any recent one's stay.
#[tokio::test]
async fn outlived_period_counters_are_pruned_on_the_next_generation() {
    let app = TestApp::spawn().await;
    app.put_counter("olga", "D#2026-11-20", 3).await;
    app.put_counter("olga", "D#2026-11-25", 2).await;
    app.put_counter("olga", "M#2025-01-01T00:00:00Z", 7).await;
    record_ok(&app, "olga", "o1").await;
    let usage = app
        .user_record("olga")
        .await
        .expect("user")
        .usage
        .expect("usage map");
    assert_eq!(
        usage.into_iter().collect::<Vec<_>>(),
        vec![
            ("D#2026-11-25".to_owned(), 2),
            ("D#2026-11-26".to_owned(), 1)
        ]
    );
}
