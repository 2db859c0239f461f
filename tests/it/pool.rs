//! The community pool's likes and plays: one like per user per item under races and retries,
//! counts never negative, plays counted exactly (once per user, item and hour), unknown and unlisted
//! items 404.

use futures::future::join_all;
use son1k_app::ports::Pool;
use son1k_tests::{As, TestApp, TestResponse};

async fn like(app: &TestApp, user: &str, id: &str, on: bool) -> TestResponse {
    let method = if on { "POST" } else { "DELETE" };
    app.call(
        method,
        &format!("/api/community/pool/like/{id}"),
        As::user(user),
        None,
    )
    .await
}

async fn play(app: &TestApp, user: &str, id: &str) -> TestResponse {
    app.call(
        "POST",
        &format!("/api/community/pool/{id}/play"),
        As::user(user),
        None,
    )
    .await
}

#[tokio::test]
async fn twenty_parallel_likes_from_one_user_count_once() {
    let app = TestApp::spawn().await;
    let id = app.listed_contribution("maker", b"abc").await;
    let answers = join_all((0..20).map(|_| like(&app, "fan", &id, true))).await;
    // Each answer is the state after its own effect: the one like is in every count.
    for res in &answers {
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(
            (res.json()["liked"].clone(), res.json()["likes"].clone()),
            (true.into(), 1.into()),
            "{}",
            res.text()
        );
    }
    let res = like(&app, "fan", &id, true).await;
    assert_eq!(res.json()["likes"], 1);
}

#[tokio::test]
async fn like_unlike_unlike_leaves_zero_never_negative() {
    let app = TestApp::spawn().await;
    let id = app.listed_contribution("maker", b"abc").await;
    assert_eq!(like(&app, "fan", &id, true).await.json()["likes"], 1);
    for _ in 0..2 {
        let res = like(&app, "fan", &id, false).await;
        assert_eq!(res.status, 200);
        assert_eq!(
            (res.json()["liked"].clone(), res.json()["likes"].clone()),
            (false.into(), 0.into())
        );
    }
    let other = like(&app, "stranger", &id, false).await;
    assert_eq!(
        other.json()["likes"],
        0,
        "an unlike by someone who never liked changes nothing"
    );
}

#[tokio::test]
async fn twenty_users_liking_in_parallel_count_twenty() {
    let app = TestApp::spawn().await;
    let id = app.listed_contribution("maker", b"abc").await;
    let users: Vec<String> = (0..20).map(|i| format!("fan{i}")).collect();
    let answers = join_all(users.iter().map(|u| like(&app, u, &id, true))).await;
    assert!(
        answers.iter().all(|r| r.status == 200),
        "{:?}",
        answers.iter().map(TestResponse::text).collect::<Vec<_>>()
    );
    // Each count includes its own like, never more than were made, and the last one sees them all.
    let counts: Vec<u64> = answers
        .iter()
        .map(|r| r.json()["likes"].as_u64().expect("likes"))
        .collect();
    assert!(counts.iter().all(|c| (1..=20).contains(c)), "{counts:?}");
    assert_eq!(counts.iter().max(), Some(&20), "{counts:?}");
    assert_eq!(like(&app, "fan0", &id, true).await.json()["likes"], 20);
}

#[tokio::test]
async fn a_user_replaying_an_item_is_served_every_time_and_counted_once_an_hour() {
    let app = TestApp::spawn().await;
    let id = app.listed_contribution("maker", b"the track").await;
    let looped = join_all((0..10).map(|_| play(&app, "looper", &id))).await;
    for answer in &looped {
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(answer.json()["audio_url"].is_string());
        assert_eq!(answer.json()["plays"], 1, "{}", answer.text());
    }
    assert_eq!(play(&app, "other", &id).await.json()["plays"], 2);
    assert_eq!(play(&app, "looper", &id).await.json()["plays"], 2);
    // The next UTC hour counts the looper's play again.
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(play(&app, "looper", &id).await.json()["plays"], 3);
    let stored = app.state.pool().contribution(&id).await.expect("read");
    assert_eq!(stored.map(|c| c.plays), Some(3));
}

#[tokio::test]
async fn fifty_parallel_plays_add_fifty_and_each_links_the_audio() {
    let app = TestApp::spawn().await;
    let id = app.listed_contribution("maker", b"the track").await;
    let listeners: Vec<String> = (0..50).map(|i| format!("listener{i}")).collect();
    let answers = join_all(listeners.iter().map(|u| play(&app, u, &id))).await;
    // Each answer is the item's plays read after its own play committed: it counts itself and
    // never more than were made; the last to commit sees them all.
    let plays: Vec<u64> = answers
        .iter()
        .map(|r| r.json()["plays"].as_u64().expect("plays"))
        .collect();
    assert!(plays.iter().all(|p| (1..=50).contains(p)), "{plays:?}");
    assert_eq!(plays.iter().max(), Some(&50), "{plays:?}");
    let stored = app.state.pool().contribution(&id).await.expect("read");
    assert_eq!(stored.map(|c| c.plays), Some(50), "fifty plays, none lost");
    // Every answer links the audio, not only the first.
    let fetched = join_all(answers.iter().map(|answer| async move {
        let url = answer.json()["audio_url"]
            .as_str()
            .expect("audio url")
            .to_owned();
        let res = reqwest::get(&url).await.expect("GET");
        (res.status().as_u16(), res.bytes().await.expect("body"))
    }))
    .await;
    assert_eq!(fetched.len(), 50);
    for (status, bytes) in fetched {
        assert_eq!((status, &bytes[..]), (200, &b"the track"[..]));
    }
}

#[tokio::test]
async fn unknown_malformed_and_unlisted_items_are_404() {
    let app = TestApp::spawn().await;
    app.about_to_contribute("unheard").await;
    let res = app
        .record("unheard", serde_json::json!({"generation_id": "no-audio"}))
        .await;
    let unlisted = res.json()["pool_contribution"]["contribution_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let unknown = ulid::Ulid::generate().to_string();
    for id in [unlisted.as_str(), unknown.as_str(), "not-an-id"] {
        like(&app, "fan", id, true)
            .await
            .assert_problem(404, "not_found");
        like(&app, "fan", id, false)
            .await
            .assert_problem(404, "not_found");
        play(&app, "fan", id).await.assert_problem(404, "not_found");
    }
}

async fn contribute(app: &TestApp, user: &str, generation: &str) -> TestResponse {
    let body = serde_json::json!({ "generation_id": generation }).to_string();
    app.call(
        "POST",
        "/api/community/contribute",
        As::user(user),
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn contribute_is_for_paid_users_own_generations_once() {
    use son1k_domain::entitlement::TierSource;
    use son1k_domain::tiers::Tier;
    let app = TestApp::spawn().await;
    app.user_with_tier("payer", Tier::Pro, TierSource::Admin)
        .await;
    let high = serde_json::json!({"generation_id": "mine", "quality": "high"});
    assert_eq!(app.record("payer", high).await.status, 201);
    assert_eq!(
        app.record("freebie", serde_json::json!({"generation_id": "free-1"}))
            .await
            .status,
        201
    );

    contribute(&app, "freebie", "free-1")
        .await
        .assert_problem(403, "only_paid_tiers");
    contribute(&app, "payer", "free-1")
        .await
        .assert_problem(404, "not_found");
    contribute(&app, "payer", "nothing")
        .await
        .assert_problem(404, "not_found");
    let res = contribute(&app, "payer", "mine").await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["points"], 2);
    contribute(&app, "payer", "mine")
        .await
        .assert_problem(409, "already_contributed");
    let ranking = all_time_ranking(&app).await;
    assert_eq!(
        (
            ranking["ranking"][0]["user_id"].as_str(),
            ranking["ranking"][0]["points"].as_u64()
        ),
        (Some("payer"), Some(2))
    );
}

#[tokio::test]
async fn an_automatic_contribution_cannot_be_contributed_again_and_a_parallel_double_has_one_winner(
) {
    let app = TestApp::spawn().await;
    let _ = app.listed_contribution("auto", b"abc").await;
    contribute(&app, "auto", "auto-shared")
        .await
        .assert_problem(409, "already_contributed");
    assert_eq!(
        app.record("auto", serde_json::json!({"generation_id": "twice"}))
            .await
            .status,
        201
    );
    let answers = join_all((0..2).map(|_| contribute(&app, "auto", "twice"))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    let ranking = all_time_ranking(&app).await;
    assert_eq!(
        ranking["ranking"][0]["contributions"], 2,
        "one automatic, one manual"
    );
}

async fn page(app: &TestApp, query: &str) -> TestResponse {
    app.call("GET", &format!("/api/community/pool{query}"), None, None)
        .await
}

/// Every item of a listing, page by page (`limit` 7), and the cursors seen.
async fn all_pages(app: &TestApp, query: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "?" } else { "&" };
        let mut q = format!("{query}{sep}limit=7");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let res = page(app, &q).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let body = res.json();
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
        assert!(items.len() <= 100, "pagination ends");
    }
}

#[tokio::test]
async fn pagination_returns_each_listed_item_once_in_order_for_every_sort_and_genre() {
    let app = TestApp::spawn().await;
    let start = son1k_tests::at("2026-11-26T10:00:00Z");
    let mut listed = Vec::new();
    for i in 0..45i64 {
        app.clock.set(start + chrono::Duration::seconds(i));
        let genre = if i % 3 == 0 { "techno" } else { "house" };
        listed.push(
            app.listed_contribution_in(&format!("lister{i}"), genre, b"x")
                .await,
        );
    }
    for (i, id) in listed.iter().enumerate().take(10) {
        for _ in 0..(i % 4) {
            assert_eq!(play(&app, "listener", id).await.status, 200);
        }
    }
    // A contribution without audio is never listed.
    app.about_to_contribute("quiet").await;
    let unlisted = app
        .record(
            "quiet",
            serde_json::json!({"generation_id": "q1", "genre": "house"}),
        )
        .await;
    let unlisted = unlisted.json()["pool_contribution"]["contribution_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let ids = |items: &[serde_json::Value]| -> Vec<String> {
        items
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mut want = listed.clone();
    want.sort();
    for sort in ["recent", "popular", "quality"] {
        let items = all_pages(&app, &format!("?sort={sort}")).await;
        let mut got = ids(&items);
        let key = |i: &serde_json::Value| match sort {
            "popular" => (
                i["plays"].as_u64().unwrap_or(0),
                i["likes"].as_u64().unwrap_or(0),
                String::new(),
            ),
            "quality" => (
                i["points"].as_u64().unwrap_or(0),
                0,
                i["contributed_at"].as_str().unwrap_or("").to_owned(),
            ),
            _ => (0, 0, i["contributed_at"].as_str().unwrap_or("").to_owned()),
        };
        assert!(
            items.windows(2).all(|w| key(&w[0]) >= key(&w[1])),
            "{sort} is in order"
        );
        assert!(!got.contains(&unlisted));
        got.sort();
        assert_eq!(got, want, "{sort}: each listed item exactly once");
    }
    let techno = all_pages(&app, "?genre=techno").await;
    assert_eq!(techno.len(), 15);
    assert!(techno.iter().all(|i| i["genre"] == "techno"));
    let first = &techno[0];
    assert!(first.get("audio_url").is_none() && first["contributor"].get("email").is_none());
    assert_eq!(
        first["contributor"]["username"]
            .as_str()
            .map(|u| u.starts_with("lister")),
        Some(true)
    );
}

#[tokio::test]
async fn tampered_or_foreign_cursors_and_bad_queries_are_400() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        app.listed_contribution(&format!("c{i}"), b"x").await;
    }
    let first = page(&app, "?limit=1").await.json();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    // The last hex digit of the signature changed (to another digit: a cursor ending in 0 once made
    // this a no-op, a 1-in-16 flake).
    let (head, last) = cursor.split_at(cursor.len() - 1);
    let tampered = format!("{head}{}", if last == "0" { "1" } else { "0" });
    for query in [
        format!("?limit=1&cursor={tampered}"),
        format!("?sort=popular&limit=1&cursor={cursor}"),
        format!("?genre=house&limit=1&cursor={cursor}"),
        "?cursor=junk".to_owned(),
    ] {
        let doc = page(&app, &query)
            .await
            .assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], "cursor", "{query}");
    }
    for (query, field) in [
        ("?sort=best", "sort"),
        // An empty value is none of the three, not the default.
        ("?sort=", "sort"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
    ] {
        let doc = page(&app, query)
            .await
            .assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{query}");
    }
    assert_eq!(
        page(&app, &format!("?limit=1&cursor={cursor}"))
            .await
            .status,
        200
    );
}

async fn claim(app: &TestApp, user: &str, id: Option<&str>) -> TestResponse {
    let body = id.map(|id| serde_json::json!({ "contribution_id": id }).to_string());
    app.call(
        "POST",
        "/api/community/pool/claim",
        As::user(user),
        body.as_deref(),
    )
    .await
}

#[tokio::test]
async fn ten_parallel_claims_by_one_free_user_give_exactly_three_distinct_items() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.listed_contribution(&format!("giver{i}"), b"x").await;
    }
    let answers = join_all((0..10).map(|_| claim(&app, "taker", None))).await;
    let won: Vec<&TestResponse> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        won.len(),
        3,
        "{:?}",
        answers.iter().map(TestResponse::text).collect::<Vec<_>>()
    );
    let mut items: Vec<String> = won
        .iter()
        .map(|r| {
            r.json()["contribution_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    items.sort();
    items.dedup();
    assert_eq!(items.len(), 3, "no item twice");
    let mut used: Vec<u64> = won
        .iter()
        .filter_map(|r| r.json()["claims_used"].as_u64())
        .collect();
    used.sort_unstable();
    assert_eq!(used, [1, 2, 3]);
    for res in answers.iter().filter(|r| r.status != 201) {
        let doc = res.assert_problem(429, "daily_claim_limit_reached");
        assert_eq!(doc["reset_at"], "2026-11-27T00:00:00Z");
        assert_eq!(res.header("retry-after"), Some("50400"));
    }
    // The next UTC day brings three more.
    let tomorrow = app.with_clock_at(son1k_tests::at("2026-11-27T00:00:00Z"));
    assert_eq!(claim(&tomorrow, "taker", None).await.status, 201);
}

#[tokio::test]
async fn a_claim_is_once_per_item_free_users_only_and_opens_the_audio_to_the_claimer() {
    let app = TestApp::spawn().await;
    let id = app.listed_contribution("giver", b"the song").await;
    let res = claim(&app, "taker", Some(&id)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(
        (
            body["claims_used"].as_u64(),
            body["claims_remaining"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let bytes = reqwest::get(body["audio_url"].as_str().expect("url"))
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&bytes[..], b"the song");
    assert_eq!(
        play(&app, "someone", &id).await.json()["plays"],
        2,
        "the claim counted as a play"
    );
    claim(&app, "taker", Some(&id))
        .await
        .assert_problem(409, "already_claimed");
    claim(&app, "taker", None)
        .await
        .assert_problem(404, "pool_empty");
    claim(&app, "giver", Some(&id))
        .await
        .assert_problem(403, "only_free_tier");
    claim(&app, "taker", Some(&ulid::Ulid::generate().to_string()))
        .await
        .assert_problem(404, "not_found");

    let path = format!(
        "/api/generations/{}/audio",
        body["generation_id"].as_str().expect("generation")
    );
    let taker = app.call("GET", &path, As::user("taker"), None).await;
    assert_eq!(taker.status, 302, "the claimer hears it");
    app.call("GET", &path, As::user("bystander"), None)
        .await
        .assert_problem(404, "not_found");
}

async fn all_time_ranking(app: &TestApp) -> serde_json::Value {
    app.call(
        "GET",
        "/api/community/ranking?timeframe=all_time",
        None,
        None,
    )
    .await
    .json()
}
