//! `GET /api/community/ranking`: points earned in the current ISO week, calendar month (UTC) or all
//! time, from the rows each contribution writes; boundaries checked with fixed clocks.

use serde_json::{json, Value};
use son1k_tests::{at, TestApp};

/// Makes `user`'s next generation, recorded at `when` with `quality`, a pool contribution.
async fn contribute(app: &TestApp, user: &str, when: &str, quality: &str) {
    app.about_to_contribute(user).await;
    let id = format!("c-{}", ulid::Ulid::generate());
    let res = app
        .with_clock_at(at(when))
        .record(user, json!({"generation_id": id, "quality": quality}))
        .await;
    assert!(
        res.json()["pool_contribution"].is_object(),
        "{}",
        res.text()
    );
}

async fn ranking(app: &TestApp, when: &str, query: &str) -> Value {
    let res = app
        .with_clock_at(at(when))
        .call("GET", &format!("/api/community/ranking{query}"), None, None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn rows(doc: &Value) -> Vec<(String, u64, u64)> {
    doc["ranking"]
        .as_array()
        .expect("ranking")
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str().unwrap_or_default().to_owned(),
                r["points"].as_u64().unwrap_or(0),
                r["contributions"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn row(user: &str, points: u64, contributions: u64) -> (String, u64, u64) {
    (user.to_owned(), points, contributions)
}

#[tokio::test]
async fn the_week_turns_at_monday_midnight_utc_and_the_month_at_the_first() {
    let app = TestApp::spawn().await;
    contribute(&app, "sunday", "2026-11-29T23:59:00Z", "ultra").await;
    contribute(&app, "monday", "2026-11-30T00:00:00Z", "standard").await;

    let sunday = ranking(&app, "2026-11-29T23:59:30Z", "?timeframe=week").await;
    assert_eq!(sunday["period"], "2026-W48");
    assert_eq!(rows(&sunday), [row("sunday", 3, 1)]);
    let monday = ranking(&app, "2026-11-30T00:00:00Z", "?timeframe=week").await;
    assert_eq!(monday["period"], "2026-W49");
    assert_eq!(rows(&monday), [row("monday", 1, 1)]);
    // Tuesday 2026-12-01 is in the same ISO week as Monday, but in another month.
    contribute(&app, "december", "2026-12-01T00:00:00Z", "high").await;
    let november = ranking(&app, "2026-11-30T23:59:59Z", "?timeframe=month").await;
    assert_eq!(november["period"], "2026-11");
    assert_eq!(rows(&november), [row("sunday", 3, 1), row("monday", 1, 1)]);
    let december = ranking(&app, "2026-12-01T00:00:00Z", "?timeframe=month").await;
    assert_eq!(rows(&december), [row("december", 2, 1)]);
    let all = ranking(&app, "2026-12-01T00:00:00Z", "?timeframe=all_time").await;
    assert_eq!(
        (all["timeframe"].as_str(), all["period"].as_str()),
        (Some("all_time"), Some("all"))
    );
    assert_eq!(
        rows(&all),
        [
            row("sunday", 3, 1),
            row("december", 2, 1),
            row("monday", 1, 1)
        ]
    );
    let first = &all["ranking"][0];
    assert_eq!(
        (first["rank"].as_u64(), first["tier"].as_str()),
        (Some(1), Some("PRO"))
    );
    assert_eq!(first["username"], "sunday");
    assert!(first.get("email").is_none(), "no email in a public ranking");
}

#[tokio::test]
async fn ties_go_to_more_contributions_then_to_the_user_id_and_limit_cuts_after_them() {
    let app = TestApp::spawn().await;
    let when = "2026-11-26T10:00:00Z";
    contribute(&app, "bea", when, "high").await;
    contribute(&app, "abe", when, "high").await;
    contribute(&app, "cid", when, "standard").await;
    contribute(&app, "cid", when, "standard").await;
    contribute(&app, "dan", when, "standard").await;
    let doc = ranking(&app, when, "?timeframe=week&limit=3").await;
    assert_eq!(
        rows(&doc),
        [row("cid", 2, 2), row("abe", 2, 1), row("bea", 2, 1)]
    );
    let ranks: Vec<u64> = doc["ranking"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["rank"].as_u64())
        .collect();
    assert_eq!(ranks, [1, 2, 3]);
    assert_eq!(
        rows(&ranking(&app, when, "").await).len(),
        4,
        "week and 20 by default"
    );
}

#[tokio::test]
async fn bad_timeframes_and_limits_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("?timeframe=year", "timeframe"),
        ("?timeframe=", "timeframe"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
    ] {
        let doc = app
            .call("GET", &format!("/api/community/ranking{query}"), None, None)
            .await
            .assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{query}");
    }
}
