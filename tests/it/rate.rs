//! The per-user request budget of the costly routes: a burst, then a steady rate; `429
//! rate_limited` with `Retry-After` past it, with nothing done; each user their own; exact under
//! parallel requests, whether the budget rides in the route's own update (record-generation, submit,
//! lyrics, Pixel), in its transaction (play) or in one update of its own (the others).

use futures::future::join_all;
use serde_json::json;
use son1k_app::ports::Pool;
use son1k_domain::tiers::Tier;
use son1k_tests::{statuses, As, TestApp, TestResponse};

fn assert_limited(res: &TestResponse, retry_after: u64) {
    let doc = res.assert_problem(429, "rate_limited");
    assert_eq!(doc["retry_after"], retry_after, "{doc}");
    assert_eq!(
        res.header("retry-after"),
        Some(retry_after.to_string().as_str())
    );
}

#[tokio::test]
async fn past_the_burst_a_user_waits_for_the_rate_and_nothing_is_spent() {
    // 3 at once, then one every 2 seconds.
    let app = TestApp::spawn().await.with_request_budget(30, 3);
    app.limits("pro").await;
    app.grant("pro", Tier::Pro).await;
    for i in 0..3 {
        let res = app
            .record("pro", json!({"generation_id": format!("g{i}")}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let refused = app.record("pro", json!({"generation_id": "g3"})).await;
    assert_limited(&refused, 2);
    assert_eq!(
        app.used("pro").await,
        3,
        "the refused request spent nothing"
    );
    assert!(app.generation("g3").await.is_none());
    // Another user has a budget of their own.
    assert_eq!(
        app.record("other", json!({"generation_id": "o1"}))
            .await
            .status,
        201
    );
    // One interval on, one more; then the wait again.
    app.clock.advance(chrono::Duration::milliseconds(1_999));
    assert_limited(&app.record("pro", json!({"generation_id": "g3"})).await, 1);
    app.clock.advance(chrono::Duration::milliseconds(1));
    assert_eq!(
        app.record("pro", json!({"generation_id": "g3"}))
            .await
            .status,
        201
    );
    assert_limited(&app.record("pro", json!({"generation_id": "g4"})).await, 2);
    // Idle for a minute: the whole burst again, not more.
    app.clock.advance(chrono::Duration::minutes(1));
    for i in 4..7 {
        let res = app
            .record("pro", json!({"generation_id": format!("g{i}")}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    assert_limited(&app.record("pro", json!({"generation_id": "g7"})).await, 2);
    assert_eq!(app.used("pro").await, 7);
}

#[tokio::test]
async fn parallel_requests_get_exactly_the_burst_whichever_way_the_budget_is_taken() {
    let app = TestApp::spawn().await.with_request_budget(60, 5);
    app.limits("pro").await;
    app.grant("pro", Tier::Pro).await;
    // In the spend's own update.
    let records =
        join_all((0..12).map(|i| app.record("pro", json!({"generation_id": format!("p{i}")}))))
            .await;
    assert_eq!(
        statuses(&records),
        [(201, 5), (429, 7)].into_iter().collect()
    );
    assert_eq!(app.used("pro").await, 5);
    // In a transaction (play) and in an update of its own (like), for another user.
    let item = app.listed_contribution("maker", b"abc").await;
    let play_path = format!("/api/community/pool/{item}/play");
    let plays = join_all((0..8).map(|_| app.call("POST", &play_path, As::user("fan"), None))).await;
    assert_eq!(statuses(&plays), [(200, 5), (429, 3)].into_iter().collect());
    for refused in plays.iter().filter(|r| r.status == 429) {
        assert_limited(refused, 1);
    }
    let like = app
        .call(
            "POST",
            &format!("/api/community/pool/like/{item}"),
            As::user("fan"),
            None,
        )
        .await;
    assert_limited(&like, 1);
    let stored = app.state.pool().contribution(&item).await.expect("read");
    assert_eq!(stored.map(|c| (c.plays, c.likes)), Some((1, 0)));
}

#[tokio::test]
async fn every_costly_route_answers_rate_limited_before_doing_anything() {
    let app = TestApp::spawn().await;
    let item = app.listed_contribution("maker", b"abc").await;
    // One request at once: ana's first spends it.
    let app = app.with_request_budget(60, 1);
    app.record("ana", json!({"generation_id": "mine"})).await;
    let chats = app.ollama.received().chats;
    let upload = json!({"content_type": "audio/mpeg", "size_bytes": 3}).to_string();
    let job = json!({"generation_id": "job-1", "prompt": "a calm piano", "quality": "standard",
                     "duration_seconds": 5})
    .to_string();
    for (method, path, body) in [
        (
            "POST",
            "/api/tiers/record-generation".to_owned(),
            Some(r#"{"generation_id":"x"}"#.to_owned()),
        ),
        ("POST", "/api/generations".to_owned(), Some(job)),
        (
            "POST",
            "/api/lyrics".to_owned(),
            Some(r#"{"theme":"rain"}"#.to_owned()),
        ),
        (
            "POST",
            "/api/pixel/chat".to_owned(),
            Some(r#"{"message":"hi"}"#.to_owned()),
        ),
        (
            "POST",
            "/api/tiers/checkout".to_owned(),
            Some(r#"{"tier":"PRO"}"#.to_owned()),
        ),
        ("POST", "/api/tiers/portal".to_owned(), None),
        (
            "POST",
            "/api/generations/mine/upload-url".to_owned(),
            Some(upload),
        ),
        ("POST", "/api/community/pool/claim".to_owned(), None),
        ("POST", format!("/api/community/pool/like/{item}"), None),
        ("DELETE", format!("/api/community/pool/like/{item}"), None),
        ("POST", format!("/api/community/pool/{item}/play"), None),
    ] {
        let res = app
            .call(method, &path, As::user("ana"), body.as_deref())
            .await;
        assert_eq!(res.status, 429, "{method} {path}: {}", res.text());
        assert_eq!(res.json()["code"], "rate_limited", "{method} {path}");
    }
    assert_eq!(app.ollama.received().chats, chats, "no model call");
    assert_eq!(app.used("ana").await, 1, "nothing spent but the first");
    let user = app.user_record("ana").await.expect("user");
    assert!(user.reservations.is_empty() && user.stripe_customer_id.is_none());
    // Reads are not budgeted.
    assert_eq!(app.limits("ana").await["used"], 1);
}

#[tokio::test]
async fn refusals_spend_the_budget_too_so_a_loop_at_the_quota_is_slowed() {
    let app = TestApp::spawn().await.with_request_budget(60, 5);
    // A FREE user's 3 generations of the day, then 2 refusals of the quota, then the budget.
    for i in 0..3 {
        let res = app
            .record("free", json!({"generation_id": format!("f{i}")}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    for i in 3..5 {
        app.record("free", json!({"generation_id": format!("f{i}")}))
            .await
            .assert_problem(429, "daily_limit_reached");
    }
    assert_limited(&app.record("free", json!({"generation_id": "f5"})).await, 1);
    // Pixel at its cap: the refusals found by the take itself.
    let mut record = app.new_user("chatty");
    record
        .usage
        .get_or_insert_with(Default::default)
        .insert("pixel/D#2026-11-26".to_owned(), 20);
    app.put_user(&record).await;
    let body = json!({ "message": "hello?" }).to_string();
    let say = || app.call("POST", "/api/pixel/chat", As::user("chatty"), Some(&body));
    for _ in 0..5 {
        say().await.assert_problem(429, "pixel_limit_reached");
    }
    assert_limited(&say().await, 1);
    assert_eq!(app.ollama.received().chats, 0);
}
