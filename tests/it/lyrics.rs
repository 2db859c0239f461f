//! Lyric Studio over the local stack: drafts written by the Ollama stub to the asked structure,
//! the daily allowance (atomic, given back when the model fails), versions with `If-Match`, and who
//! may read what.

use futures::future::join_all;
use local_api::ollama_stub::{Behaviour, Mode, STUB_MODEL};
use serde_json::{json, Value};
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_tests::{at, build_request, send, statuses, As, TestApp, TestResponse};
use std::sync::Arc;
use std::time::Duration;

const DAY: &str = "lyrics/D#2026-11-26";

pub(crate) async fn write(app: &TestApp, user: &str, body: Value) -> TestResponse {
    app.call(
        "POST",
        "/api/lyrics",
        As::user(user),
        Some(&body.to_string()),
    )
    .await
}

pub(crate) async fn edit(
    app: &TestApp,
    user: &str,
    id: &str,
    if_match: Option<&str>,
    body: Value,
) -> TestResponse {
    let (function, mut req) = build_request(
        "PUT",
        &format!("/api/lyrics/{id}"),
        As::user(user),
        Some(&body.to_string()),
    );
    if let Some(version) = if_match {
        req.headers_mut()
            .insert("if-match", version.parse().expect("header"));
    }
    send(function, &app.state, req).await
}

async fn get(app: &TestApp, caller: Option<As>, path: &str) -> TestResponse {
    app.call("GET", path, caller, None).await
}

fn mode(app: &TestApp, mode: Mode) {
    app.ollama.set(Behaviour {
        mode,
        ..Behaviour::default()
    });
}

/// The user's counter of lyrics drafts for the day `key` (0 when there is none).
pub(crate) async fn counted(app: &TestApp, user: &str, key: &str) -> u32 {
    app.user_record(user)
        .await
        .map_or(0, |record| record.used_in(key))
}

fn kinds(body: &Value) -> Vec<String> {
    body["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test]
async fn lyrics_come_back_in_the_asked_structure_and_are_stored_as_version_one() {
    let app = TestApp::spawn().await;
    let structure = ["intro", "verse", "pre_chorus", "chorus", "verse", "outro"];
    let res = write(
        &app,
        "writer",
        json!({"theme": "rain on neon streets", "genre": "Synthwave", "mood": "wistful",
               "language": "es-MX", "structure": structure}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(kinds(&body), structure);
    assert!(body["sections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| !s["lines"].as_array().unwrap().is_empty()));
    assert_eq!(body["version"], 1);
    assert_eq!(body["model"], STUB_MODEL);
    assert_eq!(body["title"], "Stub Song");
    assert_eq!(body["created_at"], "2026-11-26T10:00:00Z");
    assert_eq!(
        (body["genre"].clone(), body["language"].clone()),
        (json!("synthwave"), json!("es-MX"))
    );
    assert_eq!(res.header("etag"), Some("\"1\""));
    // The model was asked for exactly this structure, as a JSON schema, with the brief as data.
    let received = app.ollama.received();
    assert_eq!(received.chats, 1);
    let asked = received.last_format.expect("a format");
    assert_eq!(asked["properties"]["sections"]["maxItems"], 6);
    assert_eq!(
        asked["properties"]["sections"]["prefixItems"][2]["properties"]["kind"]["const"],
        "pre_chorus"
    );
    assert_eq!(received.last_messages[0]["role"], "system");
    assert!(received.last_messages[1]["content"]
        .as_str()
        .unwrap()
        .contains("rain on neon streets"));
    // Stored: the owner reads the same draft back; one unit of the day is spent.
    let id = body["lyrics_id"].as_str().unwrap();
    let read = get(&app, As::user("writer"), &format!("/api/lyrics/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["sections"], body["sections"]);
    assert_eq!(counted(&app, "writer", DAY).await, 1);
}

#[tokio::test]
async fn without_a_structure_the_default_song_shape_is_written() {
    let app = TestApp::spawn().await;
    let res = write(&app, "writer", json!({"theme": "first light"})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        kinds(&res.json()),
        ["verse", "chorus", "verse", "chorus", "bridge", "chorus"]
    );
    assert_eq!(res.json()["language"], "en");
}

#[tokio::test]
async fn invalid_model_output_twice_is_503_and_spends_nothing() {
    let app = TestApp::spawn().await;
    mode(&app, Mode::Invalid);
    let res = write(&app, "writer", json!({"theme": "broken radio"})).await;
    res.assert_problem(503, "dependency_unavailable");
    assert_eq!(
        app.ollama.received().chats,
        2,
        "asked once more, then given up"
    );
    assert_eq!(counted(&app, "writer", DAY).await, 0, "the unit came back");
    // The whole allowance is still there.
    mode(&app, Mode::Normal);
    for _ in 0..5 {
        assert_eq!(
            write(&app, "writer", json!({"theme": "t"})).await.status,
            201
        );
    }
    write(&app, "writer", json!({"theme": "t"}))
        .await
        .assert_problem(429, "lyrics_limit_reached");
    let listed = get(&app, As::user("writer"), "/api/lyrics?limit=100").await;
    assert_eq!(listed.json()["items"].as_array().unwrap().len(), 5);
}

/// "Not only spaces" is the contract's `\\S`: ECMAScript's white space, not Rust's (which also
/// counts U+0085 and not U+FEFF). A theme the schema accepts is accepted.
#[tokio::test]
async fn a_theme_is_blank_exactly_when_the_contract_says_so() {
    let app = TestApp::spawn().await;
    let accepted = write(&app, "writer", json!({"theme": "\u{85}"})).await;
    assert_eq!(accepted.status, 201, "{}", accepted.text());
    write(&app, "writer", json!({"theme": "\u{feff} \u{3000}"}))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn a_draft_may_take_the_lyrics_token_cap_and_no_more() {
    let app = TestApp::spawn().await;
    assert_eq!(
        write(&app, "writer", json!({"theme": "t"})).await.status,
        201
    );
    assert_eq!(app.ollama.received().last_num_predict, Some(1024));
}

#[tokio::test]
async fn a_model_that_fails_or_is_too_slow_is_503_and_spends_nothing() {
    let mut app = TestApp::spawn().await;
    mode(&app, Mode::Fail);
    write(&app, "writer", json!({"theme": "t"}))
        .await
        .assert_problem(503, "dependency_unavailable");
    assert_eq!(counted(&app, "writer", DAY).await, 0);
    // Slow: the client's timeout (300 ms here) ends the call long before the model would answer.
    let base = app.ollama_url.clone();
    app.state.llm = Some(Arc::new(son1k_tests::ollama_client(
        &base,
        Duration::from_millis(300),
    )));
    app.ollama.set(Behaviour {
        mode: Mode::Slow,
        delay_ms: 30_000,
        ..Behaviour::default()
    });
    let started = std::time::Instant::now();
    let res = write(&app, "writer", json!({"theme": "t"})).await;
    res.assert_problem(503, "dependency_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered before the model could have"
    );
    assert_eq!(counted(&app, "writer", DAY).await, 0);
    // No model configured at all: 503 too, nothing taken.
    app.state.llm = None;
    write(&app, "writer", json!({"theme": "t"}))
        .await
        .assert_problem(503, "dependency_unavailable");
    assert_eq!(counted(&app, "writer", DAY).await, 0);
    assert!(!res.text().contains("127.0.0.1"), "no address in the body");
}

#[tokio::test]
async fn twenty_parallel_requests_of_a_free_user_get_exactly_five() {
    let app = TestApp::spawn().await;
    let answers =
        join_all((0..20).map(|i| write(&app, "burst", json!({"theme": format!("t{i}")})))).await;
    assert_eq!(
        statuses(&answers),
        [(201, 5), (429, 15)].into_iter().collect(),
        "{:?}",
        answers.iter().map(TestResponse::text).collect::<Vec<_>>()
    );
    let refused = answers.iter().find(|r| r.status == 429).unwrap();
    let problem = refused.assert_problem(429, "lyrics_limit_reached");
    assert_eq!(problem["limit"], 5);
    assert_eq!(problem["reset_at"], "2026-11-27T00:00:00Z");
    assert_eq!(refused.header("retry-after"), Some("50400"));
    assert_eq!(counted(&app, "burst", DAY).await, 5);
    assert_eq!(
        app.ollama.received().chats,
        5,
        "the model worked only for the requests that had quota"
    );
}

#[tokio::test]
async fn each_tier_has_its_own_daily_lyrics_allowance() {
    let app = TestApp::spawn().await;
    for (user, tier, limit) in [
        ("c", Tier::Creator, 50),
        ("p", Tier::Pro, 200),
        ("s", Tier::Studio, 1000),
    ] {
        let mut record = app.user_with_tier(user, tier, TierSource::Admin).await;
        record
            .usage
            .get_or_insert_with(Default::default)
            .insert(DAY.to_owned(), limit - 1);
        app.put_user(&record).await;
        assert_eq!(
            write(&app, user, json!({"theme": "t"})).await.status,
            201,
            "{tier:?}"
        );
        let problem = write(&app, user, json!({"theme": "t"}))
            .await
            .assert_problem(429, "lyrics_limit_reached");
        assert_eq!(problem["limit"], limit);
    }
}

#[tokio::test]
async fn the_day_ends_at_utc_midnight_for_every_clock_and_no_count_is_lost() {
    let late = TestApp::spawn_at(at("2026-11-26T23:59:59.900Z")).await;
    for _ in 0..5 {
        assert_eq!(write(&late, "owl", json!({"theme": "t"})).await.status, 201);
    }
    write(&late, "owl", json!({"theme": "t"}))
        .await
        .assert_problem(429, "lyrics_limit_reached");
    // Another instance whose clock is already past midnight: a new day, a fresh allowance.
    let early = late.with_clock_at(at("2026-11-27T00:00:00Z"));
    assert_eq!(
        write(&early, "owl", json!({"theme": "t"})).await.status,
        201
    );
    // The first instance, still before midnight, finds its day's count where it was.
    let res = write(&late, "owl", json!({"theme": "t"})).await;
    assert_eq!(
        res.assert_problem(429, "lyrics_limit_reached")["reset_at"],
        "2026-11-27T00:00:00Z"
    );
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(counted(&late, "owl", "lyrics/D#2026-11-26").await, 5);
    assert_eq!(counted(&late, "owl", "lyrics/D#2026-11-27").await, 1);
}

#[tokio::test]
async fn an_edit_with_the_right_version_bumps_it_and_a_stale_one_is_refused() {
    let app = TestApp::spawn().await;
    let first = write(
        &app,
        "writer",
        json!({"theme": "t", "structure": ["verse", "chorus"]}),
    )
    .await;
    let id = first.json()["lyrics_id"].as_str().unwrap().to_owned();
    let mine = json!({"title": "Mine", "sections": [
        {"kind": "verse", "lines": ["my own line"]}, {"kind": "chorus", "lines": ["la"]}]});
    let res = edit(&app, "writer", &id, Some("1"), mine.clone()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["version"], 2);
    assert_eq!(res.json()["title"], "Mine");
    assert_eq!(res.header("etag"), Some("\"2\""));
    // A second edit of version 1 (another tab): refused, nothing overwritten.
    let stale = edit(
        &app,
        "writer",
        &id,
        Some("\"1\""),
        json!({"sections": [{"kind": "verse", "lines": ["lost"]}]}),
    )
    .await;
    assert_eq!(
        stale.assert_problem(412, "version_conflict")["current_version"],
        2
    );
    let now = get(&app, As::user("writer"), &format!("/api/lyrics/{id}"))
        .await
        .json();
    assert_eq!(
        (now["version"].clone(), now["title"].clone()),
        (json!(2), json!("Mine"))
    );
    assert_eq!(now["sections"], mine["sections"]);
    // Every version stays readable.
    let v1 = get(
        &app,
        As::user("writer"),
        &format!("/api/lyrics/{id}?version=1"),
    )
    .await;
    assert_eq!(v1.json()["sections"], first.json()["sections"]);
    assert_eq!(v1.header("etag"), Some("\"1\""));
    get(
        &app,
        As::user("writer"),
        &format!("/api/lyrics/{id}?version=3"),
    )
    .await
    .assert_problem(404, "not_found");
    // Without If-Match nothing is saved; a title is kept when the edit leaves it out.
    edit(&app, "writer", &id, None, mine.clone())
        .await
        .assert_problem(428, "precondition_required");
    edit(&app, "writer", &id, Some("two"), mine.clone())
        .await
        .assert_problem(400, "invalid_request");
    let kept = edit(
        &app,
        "writer",
        &id,
        Some("2"),
        json!({"sections": [{"kind": "bridge", "lines": []}]}),
    )
    .await;
    assert_eq!(
        (kept.json()["version"].clone(), kept.json()["title"].clone()),
        (json!(3), json!("Mine"))
    );
    // The list shows the latest title and version.
    let list = get(&app, As::user("writer"), "/api/lyrics").await.json();
    assert_eq!(list["items"][0]["version"], 3);
    assert_eq!(list["items"][0]["title"], "Mine");
}

#[tokio::test]
async fn ten_parallel_edits_of_one_version_save_exactly_one() {
    let app = TestApp::spawn().await;
    let id = write(&app, "writer", json!({"theme": "t"})).await.json()["lyrics_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answers = join_all((0..10).map(|i| {
        edit(
            &app,
            "writer",
            &id,
            Some("1"),
            json!({"title": format!("take {i}"), "sections": [{"kind": "verse", "lines": [format!("{i}")]}]}),
        )
    }))
    .await;
    assert_eq!(
        statuses(&answers),
        [(200, 1), (412, 9)].into_iter().collect(),
        "{:?}",
        answers.iter().map(TestResponse::text).collect::<Vec<_>>()
    );
    let winner = answers.iter().find(|r| r.status == 200).unwrap().json();
    let now = get(&app, As::user("writer"), &format!("/api/lyrics/{id}"))
        .await
        .json();
    assert_eq!(now["title"], winner["title"]);
    assert_eq!(now["version"], 2);
}

#[tokio::test]
async fn only_the_owner_and_admins_read_a_draft_and_only_the_owner_edits_it() {
    let app = TestApp::spawn().await;
    let id = write(&app, "writer", json!({"theme": "t"})).await.json()["lyrics_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/lyrics/{id}");
    get(&app, As::user("stranger"), &path)
        .await
        .assert_problem(404, "not_found");
    get(&app, As::user("stranger"), &format!("{path}?version=1"))
        .await
        .assert_problem(404, "not_found");
    let body = json!({"sections": [{"kind": "verse", "lines": ["mine now"]}]});
    edit(&app, "stranger", &id, Some("1"), body.clone())
        .await
        .assert_problem(404, "not_found");
    assert_eq!(get(&app, As::admin("boss"), &path).await.status, 200);
    edit(&app, "boss", &id, Some("1"), body)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        get(&app, As::user("stranger"), "/api/lyrics").await.json()["items"],
        json!([])
    );
    get(&app, None, &path)
        .await
        .assert_problem(401, "unauthorized");
    get(&app, As::user("writer"), "/api/lyrics/no-such-draft")
        .await
        .assert_problem(404, "not_found");
    let still = get(&app, As::user("writer"), &path).await.json();
    assert_eq!(still["version"], 1);
}

#[tokio::test]
async fn the_list_is_newest_first_in_pages() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let res = write(&app, "writer", json!({"theme": format!("song {i}")})).await;
        ids.push(res.json()["lyrics_id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    write(&app, "other", json!({"theme": "theirs"})).await;
    let first = get(&app, As::user("writer"), "/api/lyrics?limit=2").await;
    assert_eq!(first.status, 200);
    let page = first.json();
    let got: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lyrics_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = page["next_cursor"].as_str().expect("more to come");
    let second = get(
        &app,
        As::user("writer"),
        &format!("/api/lyrics?limit=2&cursor={cursor}"),
    )
    .await
    .json();
    assert_eq!(second["items"][0]["lyrics_id"], ids[0].as_str());
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    get(&app, As::user("writer"), "/api/lyrics?cursor=../x")
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn bad_briefs_are_refused_before_anything_is_spent() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({}), None),
        (json!({"theme": ""}), Some("theme")),
        (json!({"theme": "x".repeat(501)}), Some("theme")),
        (json!({"theme": "t", "structure": []}), Some("structure")),
        (
            json!({"theme": "t", "structure": vec!["verse"; 13]}),
            Some("structure"),
        ),
        (json!({"theme": "t", "structure": ["hook"]}), None),
        (
            json!({"theme": "t", "language": "not a tag"}),
            Some("language"),
        ),
    ] {
        let res = write(&app, "writer", body.clone()).await;
        let problem = res.assert_problem(400, "invalid_request");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body}");
        }
    }
    assert_eq!(app.ollama.received().chats, 0);
    assert_eq!(counted(&app, "writer", DAY).await, 0);
}

#[tokio::test]
async fn a_generation_that_sings_a_draft_marks_it_and_only_the_owners_draft() {
    let app = TestApp::spawn().await;
    let id = write(&app, "writer", json!({"theme": "t"})).await.json()["lyrics_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let submit = |user: &'static str, generation: &'static str, lyrics: String| {
        let body = json!({"generation_id": generation, "prompt": "sing it", "quality": "standard",
                          "duration_seconds": 5, "lyrics_id": lyrics});
        let app = &app;
        async move {
            app.call(
                "POST",
                "/api/generations",
                As::user(user),
                Some(&body.to_string()),
            )
            .await
        }
    };
    // Another user's draft, or none: 404 and nothing reserved.
    let res = submit("stranger", "g-s", id.clone()).await;
    assert_eq!(res.assert_problem(404, "not_found")["field"], "lyrics_id");
    let stranger = app.user_record("stranger").await;
    assert_eq!(stranger.map_or(0, |u| app.used_by(&u)), 0);
    submit("writer", "g-0", "no-such-draft".into())
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.used("writer").await, 0);
    let res = submit("writer", "g-1", id.clone()).await;
    assert_eq!(res.status, 202, "{}", res.text());
    let list = get(&app, As::user("writer"), "/api/lyrics").await.json();
    assert_eq!(list["items"][0]["generation_id"], "g-1");
    let pixel = app
        .call(
            "POST",
            "/api/pixel/chat",
            As::user("writer"),
            Some(r#"{"message":"hi"}"#),
        )
        .await
        .json();
    assert!(
        !pixel["suggestions"].to_string().contains("unused_lyrics"),
        "{pixel}"
    );
}

#[tokio::test]
async fn a_take_waits_out_a_generation_being_recorded_on_the_user_item() {
    use son1k_tests::faults::{Fault, FaultMode};
    let mut app = TestApp::spawn().await;
    app.user_with_tier("busy", Tier::Free, TierSource::Default)
        .await;
    let fault = Fault::new("UpdateItem", FaultMode::ConflictWithTransaction, 3);
    app.intercept(fault.clone());
    let res = write(&app, "busy", json!({"theme": "t"})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        fault.fired(),
        3,
        "three conflicts, then the take went through"
    );
    assert_eq!(counted(&app, "busy", DAY).await, 1);
}

#[tokio::test]
async fn a_unit_given_back_waits_out_other_transactions_too() {
    use son1k_tests::faults::{Fault, FaultMode};
    let mut app = TestApp::spawn().await;
    app.user_with_tier("busy", Tier::Free, TierSource::Default)
        .await;
    mode(&app, Mode::Fail);
    // The take goes through; the give-back meets three conflicts.
    let fault = Fault::new("UpdateItem", FaultMode::ConflictWithTransaction, 3).after(1);
    app.intercept(fault.clone());
    write(&app, "busy", json!({"theme": "t"}))
        .await
        .assert_problem(503, "dependency_unavailable");
    assert_eq!(fault.fired(), 3);
    assert_eq!(counted(&app, "busy", DAY).await, 0, "the unit came back");
}

#[tokio::test]
async fn a_users_parallel_drafts_and_generations_all_succeed_while_quota_remains() {
    let app = TestApp::spawn().await;
    app.user_with_tier("both", Tier::Creator, TierSource::Admin)
        .await;
    let drafts = join_all((0..10).map(|i| write(&app, "both", json!({"theme": format!("t{i}")}))));
    let generations =
        join_all((0..10).map(|i| app.record("both", json!({"generation_id": format!("g-{i}")}))));
    let (drafts, generations) = tokio::join!(drafts, generations);
    assert_eq!(statuses(&drafts), [(201, 10)].into_iter().collect());
    assert_eq!(statuses(&generations), [(201, 10)].into_iter().collect());
    let user = app.user_record("both").await.unwrap();
    assert_eq!(user.used_in(DAY), 10);
    assert_eq!(app.used_by(&user), 10);
}
