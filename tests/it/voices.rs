//! Cloned voices through the local API: creation under the tier's limits and five an hour, the
//! recordings checked as they arrive, submission to the stub GPU worker over the voice queues, each
//! status, results applied once, and deletion that leaves no object version behind.

use serde_json::{json, Value};
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_domain::voices::MAX_UPLOAD_BYTES;
use son1k_tests::{statuses, As, TestApp, TestResponse};

fn wav(seconds: u64) -> Vec<u8> {
    local_api::provider_stub::wav("voice sample", seconds)
}

async fn user(app: &TestApp, id: &str, tier: Tier) {
    app.user_with_tier(id, tier, TierSource::Admin).await;
}

async fn create(app: &TestApp, user: &str) -> TestResponse {
    app.call(
        "POST",
        "/api/voices",
        As::user(user),
        Some(&json!({"name": "My voice", "language": "en"}).to_string()),
    )
    .await
}

async fn get(app: &TestApp, user: &str, voice: &str) -> TestResponse {
    app.call("GET", &format!("/api/voices/{voice}"), As::user(user), None)
        .await
}

async fn submit(app: &TestApp, user: &str, voice: &str) -> TestResponse {
    app.call(
        "POST",
        &format!("/api/voices/{voice}/submit"),
        As::user(user),
        None,
    )
    .await
}

/// PUTs `bytes` to a voice upload link as a client does (with its signed headers), then hands S3's
/// event for its key to storage-events: the key.
async fn upload(app: &TestApp, link: &Value, bytes: Vec<u8>) -> String {
    let key = son1k_tests::put_to_voice_link(link, bytes).await;
    app.object_created(&key).await;
    key
}

/// Every object version and delete marker under `prefix`.
async fn versions(app: &TestApp, prefix: &str) -> usize {
    let out = app
        .state
        .s3()
        .list_object_versions()
        .bucket(&app.state.config.names.audio_bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list versions");
    out.versions().len() + out.delete_markers().len()
}

/// Runs the stub worker on the jobs waiting and hands its results to voice-results.
async fn work(app: &TestApp) {
    app.voice_worker.work_once(0).await.expect("worker");
    app.voice_worker.deliver_results(0).await.expect("results");
}

/// A voice of `user` with its consent recording and 12 s of samples, awaiting submission.
async fn voice_with_recordings(app: &TestApp, user: &str) -> (String, Value) {
    let created = create(app, user).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    let voice = body["voice_id"].as_str().expect("voice_id").to_owned();
    upload(app, &body["uploads"]["consent"], wav(4)).await;
    upload(app, &body["uploads"]["samples"][0], wav(12)).await;
    (voice, body)
}

#[tokio::test]
async fn free_users_cannot_clone_voices() {
    let app = TestApp::spawn().await;
    create(&app, "free-vo")
        .await
        .assert_problem(403, "feature_not_in_tier");
    user(&app, "free-vo2", Tier::Free).await;
    create(&app, "free-vo2")
        .await
        .assert_problem(403, "feature_not_in_tier");
}

#[tokio::test]
async fn a_voice_goes_from_awaiting_samples_to_ready_through_the_worker() {
    let app = TestApp::spawn().await;
    user(&app, "vera", Tier::Pro).await;
    let created = create(&app, "vera").await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body["status"], "awaiting_samples");
    let phrase = body["consent_phrase"].as_str().expect("phrase");
    assert!(phrase.contains("vera"), "{phrase}");
    let voice = body["voice_id"].as_str().expect("voice_id").to_owned();
    // Links into the caller's own prefix, each creating its object once.
    let consent_link = &body["uploads"]["consent"];
    assert_eq!(consent_link["method"], "PUT");
    assert_eq!(consent_link["headers"]["if-none-match"], "*");
    assert_eq!(body["uploads"]["samples"].as_array().map(Vec::len), Some(3));
    let consent_key = upload(&app, consent_link, wav(4)).await;
    assert_eq!(consent_key, format!("voices/vera/{voice}/consent-1"));
    // Too little yet: consent and 6 s.
    upload(&app, &body["uploads"]["samples"][0], wav(6)).await;
    submit(&app, "vera", &voice)
        .await
        .assert_problem(409, "samples_missing");
    upload(&app, &body["uploads"]["samples"][1], wav(6)).await;
    let seen = get(&app, "vera", &voice).await.json();
    assert_eq!(seen["consent_received"], true);
    assert_eq!(seen["samples_ms"], 12_000);
    assert_eq!(seen["samples"][0]["container"], "wav");
    // The recordings count in the owner's storage.
    let stored = (wav(4).len() + 2 * wav(6).len()) as u64;
    assert_eq!(app.limits("vera").await["storage"]["used_bytes"], stored);

    let submitted = submit(&app, "vera", &voice).await;
    assert_eq!(submitted.status, 202, "{}", submitted.text());
    assert_eq!(submitted.json()["status"], "verifying");
    assert_eq!(
        get(&app, "vera", &voice).await.json()["status"],
        "verifying"
    );
    work(&app).await;
    let ready = get(&app, "vera", &voice).await.json();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(ready.get("uploads").is_none());
    // The job the worker received: the consent phrase and the recordings, by key.
    let jobs = app.voice_worker.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["consent"]["phrase"], phrase);
    assert_eq!(jobs[0]["samples"].as_array().map(Vec::len), Some(2));
    assert!(app.voice_worker.holds(&voice));
    // Listed for its owner.
    let list = app.call("GET", "/api/voices", As::user("vera"), None).await;
    assert_eq!(list.json()["items"][0]["voice_id"], voice.as_str());
}

#[tokio::test]
async fn training_is_seen_between_verification_and_the_model_and_a_duplicate_result_applies_once() {
    let app = TestApp::spawn().await;
    user(&app, "tess", Tier::Creator).await;
    let (voice, _) = voice_with_recordings(&app, "tess").await;
    assert_eq!(submit(&app, "tess", &voice).await.status, 202);
    app.voice_worker.set_for(
        &voice,
        local_api::voice_worker::Behaviour {
            duplicate_results: true,
            ..Default::default()
        },
    );
    // The worker's results arrive one at a time: first the verification (twice).
    app.voice_worker.work_once(0).await.expect("worker");
    let results = app.voice_worker.take_results(0).await.expect("results");
    assert_eq!(results.len(), 4, "verified and ready, each sent twice");
    for result in &results[..2] {
        app.voice_worker.send_result(result).await.expect("send");
    }
    assert_eq!(
        app.voice_worker.deliver_results(0).await.expect("results"),
        2
    );
    assert_eq!(get(&app, "tess", &voice).await.json()["status"], "training");
    for result in &results[2..] {
        app.voice_worker.send_result(result).await.expect("send");
    }
    // Out of order and again: the verification once more after the model.
    app.voice_worker
        .send_result(&results[0])
        .await
        .expect("send");
    app.voice_worker.deliver_results(0).await.expect("results");
    assert_eq!(get(&app, "tess", &voice).await.json()["status"], "ready");
    let stored = app
        .items(
            &app.state.config.names.users_table,
            &son1k_store::users::user_pk(&son1k_domain::ids::UserId::parse("tess").expect("id")),
        )
        .await;
    let voice_item = stored
        .iter()
        .find(|i| i["sk"].as_s().is_ok_and(|sk| sk.starts_with("VOICE#")))
        .expect("voice item");
    let applied = voice_item["applied"].as_l().expect("applied");
    assert_eq!(applied.len(), 2, "each result applied once: {applied:?}");
}

#[tokio::test]
async fn a_mismatched_consent_may_be_recorded_again_twice_then_the_voice_fails() {
    let app = TestApp::spawn().await;
    user(&app, "milo", Tier::Pro).await;
    let (voice, _) = voice_with_recordings(&app, "milo").await;
    app.voice_worker.set_for(
        &voice,
        local_api::voice_worker::Behaviour {
            mode: local_api::voice_worker::Mode::Mismatch,
            ..Default::default()
        },
    );
    for attempt in 1..=3 {
        assert_eq!(submit(&app, "milo", &voice).await.status, 202);
        work(&app).await;
        let seen = get(&app, "milo", &voice).await.json();
        assert_eq!(seen["failure"]["code"], "consent_mismatch", "{seen}");
        assert_eq!(seen["attempts_left"], 3 - attempt);
        if attempt < 3 {
            assert_eq!(seen["status"], "awaiting_samples");
            assert_eq!(seen["consent_received"], false);
            // A new consent recording, for the next attempt's key.
            let link = &seen["uploads"]["consent"];
            let key = upload(&app, link, wav(4)).await;
            assert_eq!(key, format!("voices/milo/{voice}/consent-{}", attempt + 1));
        } else {
            assert_eq!(seen["status"], "failed");
            assert!(seen.get("uploads").is_none());
        }
    }
    submit(&app, "milo", &voice)
        .await
        .assert_problem(409, "samples_missing");
    // Each consent recording left its consent record.
    let consents = son1k_app::ports::Voices::voices(&app.state)
        .consents(&son1k_domain::ids::UserId::parse("milo").expect("id"))
        .await
        .expect("consents");
    assert_eq!(consents.len(), 3);
}

#[tokio::test]
async fn a_training_failure_fails_the_voice() {
    let app = TestApp::spawn().await;
    user(&app, "fay", Tier::Studio).await;
    let (voice, _) = voice_with_recordings(&app, "fay").await;
    app.voice_worker.set_for(
        &voice,
        local_api::voice_worker::Behaviour {
            mode: local_api::voice_worker::Mode::Fail,
            ..Default::default()
        },
    );
    submit(&app, "fay", &voice).await;
    work(&app).await;
    let seen = get(&app, "fay", &voice).await.json();
    assert_eq!(seen["status"], "failed");
    assert_eq!(seen["failure"]["code"], "training_failed");
}

#[tokio::test]
async fn a_recording_that_is_not_audio_fails_the_voice_and_is_deleted() {
    let app = TestApp::spawn().await;
    user(&app, "ina", Tier::Pro).await;
    let body = create(&app, "ina").await.json();
    let voice = body["voice_id"].as_str().expect("id").to_owned();
    let key = upload(
        &app,
        &body["uploads"]["samples"][0],
        b"%PDF-1.7 this is no recording".to_vec(),
    )
    .await;
    let seen = get(&app, "ina", &voice).await.json();
    assert_eq!(seen["status"], "failed");
    assert_eq!(seen["failure"]["code"], "sample_invalid");
    assert!(
        seen["failure"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a WAV, FLAC or MP3")),
        "{seen}"
    );
    assert_eq!(versions(&app, &key).await, 0);
    assert_eq!(app.limits("ina").await["storage"]["used_bytes"], 0);
}

#[tokio::test]
async fn more_than_five_minutes_of_samples_fails_the_voice() {
    let app = TestApp::spawn().await;
    user(&app, "olga", Tier::Pro).await;
    let body = create(&app, "olga").await.json();
    let voice = body["voice_id"].as_str().expect("id").to_owned();
    upload(&app, &body["uploads"]["samples"][0], wav(200)).await;
    assert_eq!(
        get(&app, "olga", &voice).await.json()["status"],
        "awaiting_samples"
    );
    upload(&app, &body["uploads"]["samples"][1], wav(120)).await;
    let seen = get(&app, "olga", &voice).await.json();
    assert_eq!(seen["status"], "failed");
    assert!(seen["failure"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("at most 300 s")));
    assert!(MAX_UPLOAD_BYTES > wav(200).len() as u64);
}

#[tokio::test]
async fn only_the_owner_and_admins_see_a_voice() {
    let app = TestApp::spawn().await;
    user(&app, "own", Tier::Pro).await;
    user(&app, "other", Tier::Pro).await;
    let voice = create(&app, "own").await.json()["voice_id"]
        .as_str()
        .expect("id")
        .to_owned();
    get(&app, "other", &voice)
        .await
        .assert_problem(404, "not_found");
    submit(&app, "other", &voice)
        .await
        .assert_problem(404, "not_found");
    app.call(
        "DELETE",
        &format!("/api/voices/{voice}"),
        As::user("other"),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let list = app
        .call("GET", "/api/voices", As::user("other"), None)
        .await;
    assert_eq!(list.json()["items"], json!([]));
    let admin = app
        .call(
            "GET",
            &format!("/api/voices/{voice}"),
            As::admin("boss"),
            None,
        )
        .await;
    assert_eq!(admin.status, 200);
    // Upload links carry the signer's rights: never to anyone but the owner.
    assert!(admin.json().get("uploads").is_none());
    assert!(get(&app, "own", &voice).await.json()["uploads"]["consent"].is_object());
}

#[tokio::test]
async fn ten_parallel_creations_create_exactly_the_tiers_number_and_five_an_hour() {
    let app = TestApp::spawn().await;
    for (who, tier, created, refused) in [
        ("par-c", Tier::Creator, 1, "voice_limit_reached"),
        ("par-p", Tier::Pro, 3, "voice_limit_reached"),
        ("par-s", Tier::Studio, 5, "rate_limited"),
    ] {
        user(&app, who, tier).await;
        let all = futures::future::join_all((0..10).map(|_| create(&app, who))).await;
        assert_eq!(
            statuses(&all),
            [(201, created), (429, 10 - created)].into(),
            "{who}"
        );
        let refusal = all.iter().find(|r| r.status == 429).expect("a refusal");
        refusal.assert_problem(429, refused);
        let list = app.call("GET", "/api/voices", As::user(who), None).await;
        assert_eq!(list.json()["items"].as_array().map(Vec::len), Some(created));
    }
    // The rolling hour: STUDIO's next five an hour later, then its limit of ten.
    let limited = create(&app, "par-s").await;
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    app.clock.advance(chrono::Duration::minutes(61));
    let all = futures::future::join_all((0..10).map(|_| create(&app, "par-s"))).await;
    assert_eq!(statuses(&all), [(201, 5), (429, 5)].into());
    app.clock.advance(chrono::Duration::minutes(61));
    create(&app, "par-s")
        .await
        .assert_problem(429, "voice_limit_reached");
}

#[tokio::test]
async fn deleting_a_voice_deletes_every_version_tells_the_worker_and_answers_410_after() {
    let app = TestApp::spawn().await;
    user(&app, "dora", Tier::Creator).await;
    let (voice, _) = voice_with_recordings(&app, "dora").await;
    submit(&app, "dora", &voice).await;
    work(&app).await;
    assert_eq!(get(&app, "dora", &voice).await.json()["status"], "ready");
    let recordings = format!("voices/dora/{voice}/");
    let models = format!("voice-models/dora/{voice}/");
    assert_eq!(versions(&app, &recordings).await, 2);
    assert_eq!(versions(&app, &models).await, 1);
    let consent_bytes = wav(4);

    let deleted = app
        .call(
            "DELETE",
            &format!("/api/voices/{voice}"),
            As::user("dora"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 202, "{}", deleted.text());
    assert_eq!(versions(&app, &recordings).await, 0);
    assert_eq!(versions(&app, &models).await, 0);
    assert_eq!(app.limits("dora").await["storage"]["used_bytes"], 0);
    get(&app, "dora", &voice)
        .await
        .assert_problem(410, "voice_deleted");
    submit(&app, "dora", &voice)
        .await
        .assert_problem(410, "voice_deleted");
    // Until the worker confirms, deleting again does it all again.
    let again = app
        .call(
            "DELETE",
            &format!("/api/voices/{voice}"),
            As::user("dora"),
            None,
        )
        .await;
    assert_eq!(again.status, 202);
    work(&app).await;
    assert!(!app.voice_worker.holds(&voice));
    assert!(app
        .voice_worker
        .jobs()
        .iter()
        .any(|job| job["kind"] == "delete" && job["voice_id"] == voice.as_str()));
    app.call(
        "DELETE",
        &format!("/api/voices/{voice}"),
        As::user("dora"),
        None,
    )
    .await
    .assert_problem(410, "voice_deleted");
    let list = app.call("GET", "/api/voices", As::user("dora"), None).await;
    assert_eq!(list.json()["items"], json!([]));
    // The place is given back: a CREATOR may create a voice again.
    assert_eq!(create(&app, "dora").await.status, 201);
    // The consent record stays, with the recording's hash and never the recording.
    let consents = son1k_app::ports::Voices::voices(&app.state)
        .consents(&son1k_domain::ids::UserId::parse("dora").expect("id"))
        .await
        .expect("consents");
    assert_eq!(consents.len(), 1);
    use sha2::Digest;
    assert_eq!(
        consents[0].audio_sha256,
        hex::encode(sha2::Sha256::digest(&consent_bytes))
    );
    assert!(consents[0].phrase.contains("dora"));
}

#[tokio::test]
async fn a_recording_that_arrives_after_deletion_is_deleted_and_not_counted() {
    let app = TestApp::spawn().await;
    user(&app, "late", Tier::Pro).await;
    let body = create(&app, "late").await.json();
    let voice = body["voice_id"].as_str().expect("id").to_owned();
    app.call(
        "DELETE",
        &format!("/api/voices/{voice}"),
        As::user("late"),
        None,
    )
    .await;
    let key = upload(&app, &body["uploads"]["samples"][0], wav(12)).await;
    assert_eq!(versions(&app, &key).await, 0);
    assert_eq!(app.limits("late").await["storage"]["used_bytes"], 0);
}

#[tokio::test]
async fn the_worker_messages_agree_with_their_json_schemas() {
    let app = TestApp::spawn().await;
    user(&app, "sch", Tier::Pro).await;
    let (voice, _) = voice_with_recordings(&app, "sch").await;
    submit(&app, "sch", &voice).await;
    app.voice_worker.work_once(0).await.expect("worker");
    let results = app.voice_worker.take_results(0).await.expect("results");
    app.call(
        "DELETE",
        &format!("/api/voices/{voice}"),
        As::user("sch"),
        None,
    )
    .await;
    app.voice_worker.work_once(0).await.expect("worker");
    let mut results_all = results.clone();
    results_all.extend(app.voice_worker.take_results(0).await.expect("results"));
    let jobs = app.voice_worker.jobs();
    assert_eq!(jobs.len(), 2, "verify_and_train and delete");
    assert_eq!(results_all.len(), 3, "verified, ready, deleted");
    son1k_tests::schema::assert_valid("voice-job.schema.json", &jobs);
    son1k_tests::schema::assert_valid("voice-result.schema.json", &results_all);
    // And what the API parses is what the stub wrote.
    for result in &results_all {
        assert!(son1k_app::voices::parse_result(&result.to_string()).is_some());
    }
    // A message off the schema is refused by the validator (the check can fail).
    let mut bad = results_all[0].clone();
    bad["outcome"] = json!("done");
    assert!(!son1k_tests::schema::is_valid(
        "voice-result.schema.json",
        &[bad]
    ));
}

fn generation(id: &str, voice: &str) -> String {
    json!({"generation_id": id, "prompt": "a song in my own voice", "genre": "Pop",
           "quality": "high", "duration_seconds": 5, "voice_id": voice})
    .to_string()
}

#[tokio::test]
async fn a_generation_in_the_callers_ready_voice_reaches_the_provider_and_never_the_pool() {
    let app = TestApp::spawn().await;
    user(&app, "siren", Tier::Pro).await;
    let (voice, _) = voice_with_recordings(&app, "siren").await;
    submit(&app, "siren", &voice).await;
    work(&app).await;
    // The 20th paid generation, which would be shared with the pool.
    app.about_to_contribute("siren").await;
    let (stub, base) = crate::jobs::stub().await;
    let providers = crate::jobs::pool(&base, &[("alpha", 1)]);
    let res = app
        .call(
            "POST",
            "/api/generations",
            As::user("siren"),
            Some(&generation("in-my-voice", &voice)),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    crate::jobs::drain_all(&app, &providers).await;
    let job = crate::jobs::status(&app, As::user("siren"), "in-my-voice")
        .await
        .json();
    assert_eq!(job["status"], "succeeded", "{job}");
    // The provider was asked to sing in the voice, by its trained model.
    let input = stub.received("alpha").last_input.expect("an input");
    assert_eq!(input["voice"]["id"], voice.as_str());
    assert!(input["voice"]["model_key"]
        .as_str()
        .is_some_and(|k| k.starts_with(&format!("voice-models/siren/{voice}/"))));
    // Counted as a paid generation, and not contributed.
    let generation_item = app.generation("in-my-voice").await.expect("generation");
    assert_eq!(generation_item.contribution_id, None);
    assert_eq!(
        app.user_record("siren")
            .await
            .expect("user")
            .paid_generations_total,
        20
    );
    let pool = app.call("GET", "/api/community/pool", None, None).await;
    assert_eq!(pool.json()["items"], json!([]), "{}", pool.text());
    // Nor can its owner share it.
    app.call(
        "POST",
        "/api/community/contribute",
        As::user("siren"),
        Some(&json!({"generation_id": "in-my-voice"}).to_string()),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_generation_refuses_another_users_voice_one_not_ready_and_a_deleted_one() {
    let app = TestApp::spawn().await;
    user(&app, "alto", Tier::Pro).await;
    user(&app, "bass", Tier::Pro).await;
    let (ready, _) = voice_with_recordings(&app, "alto").await;
    submit(&app, "alto", &ready).await;
    work(&app).await;
    let pending = create(&app, "alto").await.json()["voice_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let gone = create(&app, "alto").await.json()["voice_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.call(
        "DELETE",
        &format!("/api/voices/{gone}"),
        As::user("alto"),
        None,
    )
    .await;
    let post = |who: &'static str, id: &'static str, voice: String| {
        let app = &app;
        async move {
            app.call(
                "POST",
                "/api/generations",
                As::user(who),
                Some(&generation(id, &voice)),
            )
            .await
        }
    };
    let other = post("bass", "g-other", ready.clone()).await;
    let problem = other.assert_problem(404, "not_found");
    assert_eq!(problem["field"], "voice_id");
    post("alto", "g-pending", pending)
        .await
        .assert_problem(409, "voice_not_ready");
    post("alto", "g-gone", gone)
        .await
        .assert_problem(410, "voice_deleted");
    // Nothing was reserved by a refusal.
    assert_eq!(app.limits("bass").await["used"], 0);
    assert_eq!(app.limits("alto").await["used"], 0);
}

#[tokio::test]
async fn a_recording_that_crosses_a_storage_threshold_fires_its_alert_once() {
    let app = TestApp::spawn().await;
    user(&app, "belle", Tier::Creator).await;
    let limit = Tier::Creator.spec().storage_bytes.expect("a limited tier");
    let id = son1k_domain::ids::UserId::parse("belle").expect("id");
    // 100 bytes short of 80 %: the consent recording crosses it.
    app.add_stored_bytes(&id, son1k_domain::alerts::boundary(80, limit) - 100)
        .await;
    let body = create(&app, "belle").await.json();
    let key = upload(&app, &body["uploads"]["consent"], wav(4)).await;
    // The same event again counts nothing and fires nothing.
    app.object_created(&key).await;
    upload(&app, &body["uploads"]["samples"][0], wav(12)).await;
    let alerts = app
        .call("GET", "/api/me/alerts", As::user("belle"), None)
        .await
        .json();
    let items = alerts["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{alerts}");
    assert_eq!(items[0]["quota"], "storage");
    assert_eq!(items[0]["thresholds"], json!([80]));
    assert_eq!(
        app.limits("belle").await["storage"]["used_bytes"],
        son1k_domain::alerts::boundary(80, limit) - 100 + (wav(4).len() + wav(12).len()) as u64
    );
}
