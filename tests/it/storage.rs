//! Audio storage over the local stack: presigned upload to moto's S3, the storage-events accounting
//! (as S3's ObjectCreated would call it), the quota, rejections, duplicates, races and the 302 link.

use futures::future::join_all;
use serde_json::{json, Value};
use son1k_app::ports::AudioBucket;
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::{Tier, GIB};
use son1k_store::generations::AudioState;
use son1k_tests::{As, TestApp, TestResponse};

async fn record(app: &TestApp, user: &str, id: &str) {
    let res = app.record(user, json!({"generation_id": id})).await;
    assert_eq!(res.status, 201, "{}", res.text());
}

async fn upload_url(app: &TestApp, user: &str, id: &str, body: Value) -> TestResponse {
    app.call(
        "POST",
        &format!("/api/generations/{id}/upload-url"),
        As::user(user),
        Some(&body.to_string()),
    )
    .await
}

/// Asks for an upload link and PUTs `bytes` to it with `content_type` (what S3 would receive).
async fn upload(
    app: &TestApp,
    user: &str,
    id: &str,
    declared: u64,
    content_type: &str,
    bytes: Vec<u8>,
) {
    // What was presigned: the type sent, unless a test sends a type that cannot be presigned.
    let declared_type = if content_type.starts_with("audio/") {
        content_type
    } else {
        "audio/mpeg"
    };
    let body = json!({"content_type": declared_type, "size_bytes": declared});
    let res = upload_url(app, user, id, body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let link = res.json();
    let put = son1k_tests::put_to_link(&link, content_type, bytes).await;
    assert!(put.status().is_success(), "S3 PUT: {}", put.status());
}

/// The object key of the upload last granted on `user`'s generation `id`.
async fn granted_key(app: &TestApp, user: &str, id: &str) -> String {
    let generation = app.generation(id).await.expect("generation");
    let owner = son1k_domain::ids::UserId::parse(user).expect("user");
    generation
        .upload
        .expect("an upload granted")
        .key(&owner, &generation.generation_id)
}

/// What S3's ObjectCreated event for the upload last granted on `user`'s generation `id` makes
/// storage-events do.
async fn object_created(app: &TestApp, user: &str, id: &str) -> storage_events::StorageReport {
    let key = granted_key(app, user, id).await;
    object_created_at(app, &key).await
}

/// What S3's ObjectCreated event for `key` makes storage-events do.
async fn object_created_at(app: &TestApp, key: &str) -> storage_events::StorageReport {
    let key = key.to_owned();
    let event = storage_events::event_for(&app.state.config.names.audio_bucket, &[key]);
    storage_events::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .expect("storage events")
}

async fn used_bytes(app: &TestApp, user: &str) -> u64 {
    app.limits(user).await["storage"]["used_bytes"]
        .as_u64()
        .expect("used_bytes")
}

async fn user_with_storage(app: &TestApp, id: &str, tier: Tier, used: u64) {
    let mut user = app.user_with_tier(id, tier, TierSource::Admin).await;
    user.storage_used_bytes = used;
    app.put_user(&user).await;
}

#[tokio::test]
async fn an_upload_through_the_presigned_url_is_accounted_and_served_back_through_the_302() {
    let app = TestApp::spawn().await;
    record(&app, "artist", "song-1").await;
    let res = upload_url(
        &app,
        "artist",
        "song-1",
        json!({"content_type": "audio/mpeg", "size_bytes": 11}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let link = res.json();
    assert_eq!(link["method"], "PUT");
    assert_eq!(link["headers"]["content-type"], "audio/mpeg");
    assert_eq!(link["headers"]["content-length"], "11");
    assert_eq!(link["expires_at"], "2026-11-26T10:15:00Z");
    assert!(link["upload_url"]
        .as_str()
        .expect("url")
        .contains("audio/artist/song-1"));

    upload(
        &app,
        "artist",
        "song-1",
        11,
        "audio/mpeg",
        b"hello audio".to_vec(),
    )
    .await;
    let report = object_created(&app, "artist", "song-1").await;
    assert_eq!(report.stored, 1);
    assert_eq!(used_bytes(&app, "artist").await, 11);

    let res = app
        .call(
            "GET",
            "/api/generations/song-1/audio",
            As::user("artist"),
            None,
        )
        .await;
    assert_eq!(res.status, 302, "{}", res.text());
    let location = res.header("location").expect("location").to_owned();
    let bytes = reqwest::get(&location)
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&bytes[..], b"hello audio");
    let admin = app
        .call(
            "GET",
            "/api/generations/song-1/audio",
            As::admin("ops"),
            None,
        )
        .await;
    assert_eq!(admin.status, 302);
}

#[tokio::test]
async fn a_stranger_gets_404_for_someone_else_s_generation_and_for_missing_audio() {
    let app = TestApp::spawn().await;
    record(&app, "owner", "mine").await;
    upload_url(
        &app,
        "stranger",
        "mine",
        json!({"content_type": "audio/mpeg", "size_bytes": 5}),
    )
    .await
    .assert_problem(404, "not_found");
    upload_url(
        &app,
        "stranger",
        "never-recorded",
        json!({"content_type": "audio/mpeg", "size_bytes": 5}),
    )
    .await
    .assert_problem(404, "not_found");
    for user in ["stranger", "owner"] {
        app.call("GET", "/api/generations/mine/audio", As::user(user), None)
            .await
            .assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn bad_upload_requests_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    record(&app, "picky", "g1").await;
    for (body, field) in [
        (
            json!({"content_type": "audio/x-wav", "size_bytes": 5}),
            "content_type",
        ),
        (
            json!({"content_type": "audio/mpeg", "size_bytes": 0}),
            "size_bytes",
        ),
        (
            json!({"content_type": "audio/mpeg", "size_bytes": -1}),
            "size_bytes",
        ),
        (
            json!({"content_type": "audio/mpeg", "size_bytes": 1.5}),
            "size_bytes",
        ),
        (
            json!({"content_type": "audio/mpeg", "size_bytes": 2 * GIB + 1}),
            "size_bytes",
        ),
        (json!({"content_type": "audio/mpeg"}), "size_bytes"),
    ] {
        let doc = upload_url(&app, "picky", "g1", body.clone())
            .await
            .assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{body}");
    }
    let doc = upload_url(
        &app,
        "picky",
        "bad%id",
        json!({"content_type": "audio/mpeg", "size_bytes": 5}),
    )
    .await
    .assert_problem(400, "invalid_request");
    assert_eq!(doc["field"], "generation_id");
}

#[tokio::test]
async fn exactly_the_remaining_bytes_fit_and_one_more_does_not() {
    let app = TestApp::spawn().await;
    user_with_storage(&app, "full", Tier::Free, GIB - 10).await;
    record(&app, "full", "g1").await;
    let doc = upload_url(
        &app,
        "full",
        "g1",
        json!({"content_type": "audio/wav", "size_bytes": 100}),
    )
    .await
    .assert_problem(413, "storage_quota_exceeded");
    assert_eq!(
        (doc["limit_bytes"].as_u64(), doc["remaining_bytes"].as_u64()),
        (Some(GIB), Some(10))
    );
    let res = upload_url(
        &app,
        "full",
        "g1",
        json!({"content_type": "audio/wav", "size_bytes": 10}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn an_object_larger_than_presigned_or_of_another_type_is_deleted_and_rejected() {
    let app = TestApp::spawn().await;
    record(&app, "sneaky", "big").await;
    record(&app, "sneaky", "typed").await;
    upload(
        &app,
        "sneaky",
        "big",
        4,
        "audio/mpeg",
        b"far more than four".to_vec(),
    )
    .await;
    upload(&app, "sneaky", "typed", 4, "video/mp4", b"four".to_vec()).await;
    for id in ["big", "typed"] {
        let report = object_created(&app, "sneaky", id).await;
        assert_eq!(report.rejected, 1, "{id}");
        let key = granted_key(&app, "sneaky", id).await;
        assert_eq!(
            app.state.audio().head(&key).await.expect("head"),
            None,
            "{id} deleted"
        );
        assert_eq!(
            app.state.audio().versions(&key).await.expect("versions"),
            [],
            "{id}: deleted version by version, no delete marker hiding the bytes"
        );
        let generation = app.generation(id).await.expect("generation");
        assert_eq!(generation.audio_state, AudioState::Rejected);
    }
    assert_eq!(used_bytes(&app, "sneaky").await, 0);
}

#[tokio::test]
async fn the_same_event_delivered_twice_counts_once_and_a_replacement_counts_the_difference() {
    let app = TestApp::spawn().await;
    record(&app, "twice", "g1").await;
    upload(&app, "twice", "g1", 6, "audio/mpeg", b"123456".to_vec()).await;
    assert_eq!(object_created(&app, "twice", "g1").await.stored, 1);
    assert_eq!(object_created(&app, "twice", "g1").await.duplicate, 1);
    assert_eq!(used_bytes(&app, "twice").await, 6);
    upload(&app, "twice", "g1", 2, "audio/mpeg", b"12".to_vec()).await;
    assert_eq!(object_created(&app, "twice", "g1").await.stored, 1);
    assert_eq!(used_bytes(&app, "twice").await, 2, "only the difference");
}

#[tokio::test]
async fn ten_concurrent_uploads_never_push_storage_past_the_limit() {
    let app = TestApp::spawn().await;
    user_with_storage(&app, "racer", Tier::Creator, 10 * GIB - 500).await;
    let ids: Vec<String> = (0..10).map(|i| format!("race-{i}")).collect();
    for id in &ids {
        record(&app, "racer", id).await;
        upload(&app, "racer", id, 100, "audio/mpeg", vec![7u8; 100]).await;
    }
    let reports = join_all(ids.iter().map(|id| object_created(&app, "racer", id))).await;
    let stored: u32 = reports.iter().map(|r| r.stored).sum();
    let rejected: u32 = reports.iter().map(|r| r.rejected).sum();
    assert_eq!((stored, rejected), (5, 5));
    assert_eq!(used_bytes(&app, "racer").await, 10 * GIB);
}

#[tokio::test]
async fn a_stored_contribution_is_listed_in_the_pool() {
    let app = TestApp::spawn().await;
    app.about_to_contribute("sharer").await;
    let res = app
        .record(
            "sharer",
            json!({"generation_id": "twentieth", "genre": "house"}),
        )
        .await;
    let contribution = res.json()["pool_contribution"]["contribution_id"]
        .as_str()
        .expect("a contribution")
        .to_owned();
    upload(
        &app,
        "sharer",
        "twentieth",
        3,
        "audio/mpeg",
        b"abc".to_vec(),
    )
    .await;
    assert_eq!(object_created(&app, "sharer", "twentieth").await.stored, 1);
    let items = app
        .items(
            &app.state.config.names.pool_table,
            &format!("CONTRIB#{contribution}"),
        )
        .await;
    let item = items.first().expect("contribution item");
    assert_eq!(item["listed"].as_bool().ok(), Some(&true));
    assert_eq!(item["lst"].as_s().ok().map(String::as_str), Some("ALL"));
    assert_eq!(
        item["lst_genre"].as_s().ok().map(String::as_str),
        Some("G#house")
    );
}

/// The client only PUTs to its presigned URL: no call of its own says the upload happened. The
/// bucket watcher (S3's notification, locally) accounts it, once however often it looks.
#[tokio::test]
async fn locally_an_upload_is_accounted_by_the_bucket_watcher_with_no_extra_call() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashMap::new();
    record(&app, "watched", "w1").await;
    upload(&app, "watched", "w1", 5, "audio/ogg", b"oggs!".to_vec()).await;
    assert_eq!(
        used_bytes(&app, "watched").await,
        0,
        "not before the watcher saw it"
    );
    assert_eq!(local_api::watch_once(&app.state, &mut seen).await, 1);
    assert_eq!(used_bytes(&app, "watched").await, 5);
    assert_eq!(local_api::watch_once(&app.state, &mut seen).await, 0);
    assert_eq!(
        local_api::watch_once(&app.state, &mut std::collections::HashMap::new()).await,
        1,
        "a restarted watcher sees the object again"
    );
    assert_eq!(used_bytes(&app, "watched").await, 5, "accounted once");
}

async fn daily_run(app: &TestApp) -> son1k_app::storage::ReconcileReport {
    scheduled_reset::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(json!({"kind": "daily"}), Default::default()),
    )
    .await
    .expect("housekeeping")
    .uploads
    .expect("the daily run reconciles uploads")
}

/// An upload whose S3 event never led to an accounting (lost, or failed past Lambda's retries) is
/// counted by the next daily run, which looks only at the links granted on the two days before it
/// (a link granted before midnight can be used after it); counted once, however often it runs.
#[tokio::test]
async fn the_daily_run_accounts_uploads_whose_event_was_lost() {
    let app = TestApp::spawn_at(son1k_tests::at("2026-11-26T23:58:00Z")).await;
    record(&app, "lost", "g1").await;
    record(&app, "lost", "g2").await;
    // g1's event is lost; g2's reaches storage-events; g1's link is used after midnight.
    upload(&app, "lost", "g2", 3, "audio/mpeg", b"abc".to_vec()).await;
    assert_eq!(object_created(&app, "lost", "g2").await.stored, 1);
    let body = json!({"content_type": "audio/mpeg", "size_bytes": 5});
    let link = upload_url(&app, "lost", "g1", body).await.json();
    assert_eq!(used_bytes(&app, "lost").await, 3);

    // The run at the midnight the link was granted before has nothing of g1 to see yet.
    app.clock.set(son1k_tests::at("2026-11-27T00:00:00Z"));
    let early = daily_run(&app).await;
    assert_eq!(
        (early.checked, early.stored, early.unchanged),
        (2, 0, 2),
        "{early:?}"
    );
    son1k_tests::put_to_link(&link, "audio/mpeg", b"12345".to_vec())
        .await
        .error_for_status()
        .expect("S3 took it");
    assert_eq!(used_bytes(&app, "lost").await, 3, "no event, no count");

    app.clock.set(son1k_tests::at("2026-11-28T00:00:00Z"));
    let run = daily_run(&app).await;
    assert_eq!(
        (run.checked, run.stored, run.unchanged, run.failed),
        (2, 1, 1, 0),
        "{run:?}"
    );
    assert!(run.complete);
    assert_eq!(used_bytes(&app, "lost").await, 8);
    let again = daily_run(&app).await;
    assert_eq!((again.stored, again.unchanged), (0, 2), "{again:?}");
    assert_eq!(used_bytes(&app, "lost").await, 8, "counted once");

    // Three days on, those grants are no longer looked at.
    app.clock.set(son1k_tests::at("2026-11-30T00:00:00Z"));
    assert_eq!(daily_run(&app).await.checked, 0);
}

/// Every version S3 keeps under `audio/<user>/`: the bytes of all of them, and how many delete
/// markers (each hides bytes still stored).
async fn versions_stored(app: &TestApp, user: &str) -> (u64, usize) {
    let page = app
        .state
        .s3()
        .list_object_versions()
        .bucket(&app.state.config.names.audio_bucket)
        .prefix(format!("audio/{user}/"))
        .send()
        .await
        .expect("ListObjectVersions");
    let bytes = page
        .versions()
        .iter()
        .map(|v| u64::try_from(v.size().unwrap_or(0)).unwrap_or(0))
        .sum();
    (bytes, page.delete_markers().len())
}

#[tokio::test]
async fn an_upload_link_creates_its_object_once_and_s3_holds_exactly_what_is_counted() {
    let app = TestApp::spawn().await;
    record(&app, "once", "g1").await;
    let link = upload_url(
        &app,
        "once",
        "g1",
        json!({"content_type": "audio/mpeg", "size_bytes": 6}),
    )
    .await
    .json();
    assert_eq!(link["headers"]["if-none-match"], "*", "{link}");
    let first = son1k_tests::put_to_link(&link, "audio/mpeg", b"123456".to_vec()).await;
    assert_eq!(first.status(), 200);
    // The same link again: refused by S3, nothing more stored.
    let again = son1k_tests::put_to_link(&link, "audio/mpeg", b"654321".to_vec()).await;
    assert_eq!(again.status(), 412, "the second PUT of a link is refused");
    assert_eq!(object_created(&app, "once", "g1").await.stored, 1);
    assert_eq!(used_bytes(&app, "once").await, 6);
    assert_eq!(versions_stored(&app, "once").await, (6, 0));

    // A replacement of another size: counted as the difference, the replaced object deleted.
    let first_key = son1k_tests::link_key(&link);
    upload(&app, "once", "g1", 4, "audio/mpeg", b"abcd".to_vec()).await;
    assert_eq!(object_created(&app, "once", "g1").await.stored, 1);
    assert_eq!(used_bytes(&app, "once").await, 4);
    assert_eq!(
        app.state.audio().versions(&first_key).await.expect("list"),
        [],
        "the replaced object is gone, every version of it"
    );
    assert_eq!(versions_stored(&app, "once").await, (4, 0));

    // A replacement that is not what was presigned is deleted; the audio before it stays.
    upload(&app, "once", "g1", 2, "audio/mpeg", b"too long".to_vec()).await;
    assert_eq!(object_created(&app, "once", "g1").await.rejected, 1);
    assert_eq!(used_bytes(&app, "once").await, 4);
    assert_eq!(versions_stored(&app, "once").await, (4, 0));
    let res = app
        .call("GET", "/api/generations/g1/audio", As::user("once"), None)
        .await;
    assert_eq!(res.status, 302, "{}", res.text());
    let served = reqwest::get(res.header("location").expect("location"))
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&served[..], b"abcd");
}

#[tokio::test]
async fn an_upload_is_served_to_its_owner_in_the_seconds_before_it_is_accounted() {
    let app = TestApp::spawn().await;
    record(&app, "quick", "g1").await;
    let audio = |who| app.call("GET", "/api/generations/g1/audio", who, None);
    audio(As::user("quick"))
        .await
        .assert_problem(404, "not_found");
    upload(&app, "quick", "g1", 5, "audio/ogg", b"oggs!".to_vec()).await;
    assert_eq!(used_bytes(&app, "quick").await, 0, "not accounted yet");
    let res = audio(As::user("quick")).await;
    assert_eq!(res.status, 302, "{}", res.text());
    let served = reqwest::get(res.header("location").expect("location"))
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&served[..], b"oggs!");
    // Nobody else, and not once the grant is long past (no HeadObject then).
    audio(As::user("stranger"))
        .await
        .assert_problem(404, "not_found");
    app.clock.advance(chrono::Duration::minutes(20));
    audio(As::user("quick"))
        .await
        .assert_problem(404, "not_found");
    // Accounted, it is served from the record whenever.
    assert_eq!(object_created(&app, "quick", "g1").await.stored, 1);
    assert_eq!(audio(As::user("quick")).await.status, 302);
}

/// The event S3 sends (its documented shape, every field), read through the typed event: only the
/// ObjectCreated records, keys URL-decoded (`+` is a space).
#[test]
fn an_s3_event_as_s3_sends_it_names_its_created_keys() {
    let event: aws_lambda_events::event::s3::S3Event =
        serde_json::from_str(include_str!("../fixtures/s3-object-created.json")).expect("S3 event");
    assert_eq!(
        storage_events::created_keys(&event),
        ["audio/ana/song one/01KBJ2Z9XG4M5N6P7Q8R9S0T1V"]
    );
    // What the local watcher sends reads back the same way.
    let local = storage_events::event_for("bucket", &["audio/ana/a b".to_owned()]);
    let json = serde_json::to_string(&local).expect("serialise");
    let read: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&json).expect("read");
    assert_eq!(storage_events::created_keys(&read), ["audio/ana/a b"]);
}
