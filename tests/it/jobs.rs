//! Generation jobs over the local stack: submit → the jobs queue (moto's SQS) → the worker's handler
//! → a provider of the pool (the local provider stub, speaking the predictions API) → the audio in
//! S3 → commit or release, with what the user sees and what is stored checked at each step.

use local_api::provider_stub::{Behaviour, Mode, ProviderStub, SAMPLE_RATE};
use serde_json::json;
use son1k_app::jobs::{JobMessage, Providers};
use son1k_app::ports::{AudioBucket, Jobs};
use son1k_app::providers::{Predictions, ProviderConfig};
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::{Quality, Tier};
use son1k_tests::faults::{Fault, FaultMode};
use son1k_tests::{As, TestApp, TestResponse};

/// A provider stub of its own on a loopback port; its base URL.
pub(crate) async fn stub() -> (ProviderStub, String) {
    let stub = ProviderStub::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = stub.clone();
    tokio::spawn(async move { local_api::provider_stub::serve(listener, serving).await });
    (stub, base)
}

fn config(base: &str, name: &str, weight: u32) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        base_url: format!("{base}/{name}"),
        model: Some("musicgen-test".into()),
        key_parameter: None,
        requests_per_second: 100.0,
        burst: 100,
        max_concurrency: 10,
        weight,
        timeout_seconds: 30,
        poll_ms: 10,
    }
}

fn provider(config: ProviderConfig) -> Predictions {
    Predictions::new(config, None, reqwest::Client::new()).expect("a provider")
}

/// A pool of one provider, `alpha`, whose every generation fails (its stub kept running).
pub(crate) async fn failing_pool() -> (ProviderStub, Providers) {
    let (stub, base) = stub().await;
    stub.set(
        "alpha",
        local_api::provider_stub::Behaviour {
            mode: local_api::provider_stub::Mode::Fail,
            ..local_api::provider_stub::Behaviour::default()
        },
    );
    let providers = pool(&base, &[("alpha", 1)]);
    (stub, providers)
}

/// The pool: `(name, weight)` each, played by `base`'s stub.
pub(crate) fn pool(base: &str, providers: &[(&str, u32)]) -> Providers {
    providers
        .iter()
        .map(|(name, weight)| {
            Box::new(provider(config(base, name, *weight)))
                as Box<dyn son1k_app::providers::MusicProvider>
        })
        .collect()
}

pub(crate) fn body(id: &str, quality: &str, seconds: u32) -> String {
    json!({"generation_id": id, "prompt": "a calm piano by the sea", "genre": "Ambient",
           "title": "Shore", "quality": quality, "duration_seconds": seconds})
    .to_string()
}

pub(crate) async fn submit(app: &TestApp, user: &str, id: &str) -> TestResponse {
    submit_with(app, user, id, "standard", 5).await
}

/// `POST /api/generations` of `id` as `user` at `quality`, `seconds` long.
pub(crate) async fn submit_with(
    app: &TestApp,
    user: &str,
    id: &str,
    quality: &str,
    seconds: u32,
) -> TestResponse {
    app.call(
        "POST",
        "/api/generations",
        As::user(user),
        Some(&body(id, quality, seconds)),
    )
    .await
}

pub(crate) async fn status(app: &TestApp, who: Option<As>, id: &str) -> TestResponse {
    app.call("GET", &format!("/api/generations/{id}"), who, None)
        .await
}

/// Hands what the queue holds to the worker's handler, once; how many messages it received.
pub(crate) async fn drain(app: &TestApp, providers: &Providers) -> usize {
    local_api::jobs::drain_once(&app.state, providers, 0, 0)
        .await
        .expect("drain the jobs queue")
}

/// Drains until the queue is empty (failed messages come back at once).
pub(crate) async fn drain_all(app: &TestApp, providers: &Providers) {
    for _ in 0..10 {
        if drain(app, providers).await == 0 {
            return;
        }
    }
    panic!("the queue did not empty");
}

fn mode(mode: Mode) -> Behaviour {
    Behaviour {
        mode,
        ..Behaviour::default()
    }
}

/// Submits `id` as `user` (202), runs the queue dry and answers the job's status.
async fn run(app: &TestApp, providers: &Providers, user: &str, id: &str) -> serde_json::Value {
    run_with(app, providers, user, (id, "standard", 5)).await
}

/// `run` of a job `(id, quality, seconds)`.
async fn run_with(
    app: &TestApp,
    providers: &Providers,
    user: &str,
    (id, quality, seconds): (&str, &str, u32),
) -> serde_json::Value {
    let res = submit_with(app, user, id, quality, seconds).await;
    assert_eq!(res.status, 202, "{}", res.text());
    drain_all(app, providers).await;
    status(app, As::user(user), id).await.json()
}

pub(crate) fn wav_len(seconds: u64) -> u64 {
    44 + seconds * u64::from(SAMPLE_RATE) * 2
}

pub(crate) async fn object(
    app: &TestApp,
    user: &str,
    id: &str,
) -> Option<son1k_store::audio::ObjectInfo> {
    app.state
        .audio()
        .head(&format!("audio/{user}/{id}"))
        .await
        .expect("head")
}

#[tokio::test]
async fn a_job_goes_from_queued_to_succeeded_with_its_audio_fetchable_and_one_unit_spent() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);

    let res = submit(&app, "ana", "job-1").await;
    assert_eq!(res.status, 202, "{}", res.text());
    let queued = res.json();
    assert_eq!(queued["status"], "queued");
    assert_eq!(
        (queued["used"].as_u64(), queued["remaining"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(queued["reset_at"], "2026-11-27T00:00:00Z");
    // The reservation counts as used everywhere while the job runs.
    assert_eq!(app.limits("ana").await["used"], 1);
    assert_eq!(
        status(&app, As::user("ana"), "job-1").await.json()["status"],
        "queued"
    );

    assert_eq!(drain(&app, &providers).await, 1);
    let done = status(&app, As::user("ana"), "job-1").await;
    assert_eq!(done.status, 200, "{}", done.text());
    let done = done.json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["provider"], "alpha");
    assert!(done["finished_at"].is_string() && done.get("error").is_none());
    let audio = reqwest::get(done["audio_url"].as_str().expect("audio_url"))
        .await
        .expect("fetch the audio");
    assert_eq!(audio.status(), 200);
    let bytes = audio.bytes().await.expect("audio bytes");
    assert_eq!(bytes.len() as u64, wav_len(5));
    assert_eq!(&bytes[..4], b"RIFF");

    // Spent once: the reservation became the period's count; storage counts the audio.
    assert_eq!(app.limits("ana").await["used"], 1);
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(app.used_by(&user), 1);
    assert!(user.reservations.is_empty(), "{:?}", user.reservations);
    assert_eq!(user.storage_used_bytes, wav_len(5));
    let generation = app
        .generation("job-1")
        .await
        .expect("a recorded generation");
    assert_eq!(generation.owner_id.as_str(), "ana");
    assert_eq!(generation.audio.expect("audio").size_bytes, wav_len(5));
    assert_eq!(generation.genre.as_deref(), Some("ambient"));
    assert_eq!(stub.received("alpha").predictions, 1);
    assert_eq!(drain(&app, &providers).await, 0, "the message was deleted");
}

#[tokio::test]
async fn a_failing_provider_fails_over_to_the_next() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    stub.set("alpha", mode(Mode::Fail));
    let providers = pool(&base, &[("alpha", 1_000_000), ("beta", 1)]);
    let done = run(&app, &providers, "ana", "job-1").await;
    assert_eq!(
        (done["status"].as_str(), done["provider"].as_str()),
        (Some("succeeded"), Some("beta"))
    );
    assert_eq!(stub.received("alpha").predictions, 1);
    assert_eq!(stub.received("beta").predictions, 1);
    assert_eq!(app.used("ana").await, 1);
}

#[tokio::test]
async fn when_every_provider_fails_the_job_fails_and_the_quota_comes_back() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    for name in ["alpha", "beta"] {
        stub.set(name, mode(Mode::Fail));
    }
    let providers = pool(&base, &[("alpha", 1), ("beta", 1)]);
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    assert_eq!(app.limits("ana").await["used"], 1);
    drain_all(&app, &providers).await;
    let done = status(&app, As::user("ana"), "job-1").await.json();
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"], "no_provider_available");
    assert!(done.get("audio_url").is_none());
    assert_eq!(
        app.limits("ana").await["used"],
        0,
        "the reservation was released"
    );
    let user = app.user_record("ana").await.expect("user");
    assert!(user.reservations.is_empty());
    assert_eq!(user.storage_used_bytes, 0);
    assert!(object(&app, "ana", "job-1").await.is_none());
    assert!(app.generation("job-1").await.is_none());
    // Each provider was called once: no retry of a failed provider within the job.
    assert_eq!(
        stub.received("alpha").predictions + stub.received("beta").predictions,
        2
    );
}

#[tokio::test]
async fn a_rejected_request_fails_at_once_without_trying_another_provider() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    stub.set("alpha", mode(Mode::Reject));
    let providers = pool(&base, &[("alpha", 1_000_000), ("beta", 1)]);
    let done = run(&app, &providers, "ana", "job-1").await;
    assert_eq!(
        (done["status"].as_str(), done["error"].as_str()),
        (Some("failed"), Some("provider_rejected"))
    );
    assert_eq!(stub.received("beta").predictions, 0);
    assert_eq!(app.limits("ana").await["used"], 0);
}

#[tokio::test]
async fn retry_after_puts_a_provider_aside_for_exactly_that_long() {
    let app = TestApp::spawn().await;
    app.user_with_tier("pro", Tier::Pro, TierSource::Admin)
        .await;
    let (stub, base) = stub().await;
    stub.set(
        "alpha",
        Behaviour {
            mode: Mode::RateLimited,
            retry_after: 2,
            ..Behaviour::default()
        },
    );
    // alpha first whenever it may be called.
    let providers = pool(&base, &[("alpha", 1_000_000), ("beta", 1)]);
    let first = run(&app, &providers, "pro", "job-1").await;
    assert_eq!(
        (first["status"].as_str(), first["provider"].as_str()),
        (Some("succeeded"), Some("beta"))
    );
    assert_eq!(stub.received("alpha").predictions, 1);

    // alpha would answer now, but said 2 s: within them nobody calls it.
    stub.set("alpha", Behaviour::default());
    app.clock.advance(chrono::Duration::milliseconds(1_999));
    let second = run(&app, &providers, "pro", "job-2").await;
    assert_eq!(second["provider"], "beta");
    assert_eq!(
        stub.received("alpha").predictions,
        1,
        "no call to alpha during its cooldown"
    );

    app.clock.advance(chrono::Duration::milliseconds(1));
    let third = run(&app, &providers, "pro", "job-3").await;
    assert_eq!(
        (third["status"].as_str(), third["provider"].as_str()),
        (Some("succeeded"), Some("alpha"))
    );
    assert_eq!(stub.received("alpha").predictions, 2);
    assert_eq!(app.used("pro").await, 3);
}

#[tokio::test]
async fn fifty_parallel_submissions_of_a_free_user_reserve_exactly_three() {
    let app = TestApp::spawn().await;
    let calls = (0..50).map(|i| {
        let app = &app;
        async move { submit(app, "ana", &format!("job-{i}")).await }
    });
    let responses = futures::future::join_all(calls).await;
    let statuses = son1k_tests::statuses(&responses);
    assert_eq!(statuses.get(&202), Some(&3), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&47), "{statuses:?}");
    for refused in responses.iter().filter(|r| r.status == 429) {
        refused.assert_problem(429, "daily_limit_reached");
    }
    let mut used: Vec<u64> = responses
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.json()["used"].as_u64().expect("used"))
        .collect();
    used.sort_unstable();
    assert_eq!(used, vec![1, 2, 3]);
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(user.reservations.len(), 3);
    assert_eq!(app.limits("ana").await["used"], 3);
}

#[tokio::test]
async fn a_worker_that_stops_after_the_upload_and_before_the_commit_is_finished_by_the_retry_once()
{
    let mut app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    // The commit's transaction never reaches DynamoDB (the worker's run ends there).
    app.intercept(Fault::new(
        "TransactWriteItems",
        FaultMode::FailBeforeSend,
        1,
    ));
    assert_eq!(drain(&app, &providers).await, 1);
    let stored = object(&app, "ana", "job-1")
        .await
        .expect("the audio was uploaded");
    assert_eq!(stored.size_bytes, wav_len(5));
    assert!(app.generation("job-1").await.is_none(), "not committed");
    assert_eq!(
        status(&app, As::user("ana"), "job-1").await.json()["status"],
        "running"
    );

    // SQS delivers the message again: the retry commits the audio already there, once.
    assert_eq!(drain(&app, &providers).await, 1);
    let done = status(&app, As::user("ana"), "job-1").await.json();
    assert_eq!(
        (done["status"].as_str(), done["provider"].as_str()),
        (Some("succeeded"), Some("alpha"))
    );
    assert_eq!(
        stub.received("alpha").predictions,
        1,
        "no second generation"
    );
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(app.used_by(&user), 1);
    assert!(user.reservations.is_empty());
    assert_eq!(
        user.storage_used_bytes,
        wav_len(5),
        "the audio counted once"
    );
    assert_eq!(drain(&app, &providers).await, 0);
}

#[tokio::test]
async fn a_run_that_crashed_holding_the_job_lets_go_when_its_lease_runs_out() {
    let mut app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    // The commit fails and so does giving the lease back: as if the process died after the upload.
    app.intercept(Fault::new(
        "TransactWriteItems",
        FaultMode::FailBeforeSend,
        1,
    ));
    app.intercept(Fault::new("UpdateItem", FaultMode::FailBeforeSend, 1));
    assert_eq!(drain(&app, &providers).await, 1);
    // A redelivery while the lease holds does nothing.
    assert_eq!(drain(&app, &providers).await, 1);
    assert!(app.generation("job-1").await.is_none());
    // The lease (the worker's timeout) runs out; the next delivery commits.
    app.clock.advance(son1k_app::jobs::LEASE);
    drain_all(&app, &providers).await;
    assert_eq!(
        status(&app, As::user("ana"), "job-1").await.json()["status"],
        "succeeded"
    );
    assert_eq!(stub.received("alpha").predictions, 1);
    assert_eq!(app.used("ana").await, 1);
}

#[tokio::test]
async fn a_message_delivered_twice_makes_one_generation() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    let message = JobMessage {
        generation_id: son1k_domain::ids::GenerationId::parse("job-1").expect("id"),
        owner_id: son1k_domain::ids::UserId::parse("ana").expect("id"),
    };
    // The same message again (SQS is at least once): both may arrive in one batch, run in parallel.
    app.state
        .jobs_queue
        .as_ref()
        .expect("queue")
        .send(&message)
        .await
        .expect("send");
    drain_all(&app, &providers).await;
    assert_eq!(stub.received("alpha").predictions, 1);
    assert_eq!(stub.received("alpha").downloads, 1);
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(app.used_by(&user), 1);
    assert_eq!(user.storage_used_bytes, wav_len(5));
    assert_eq!(
        status(&app, As::user("ana"), "job-1").await.json()["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn a_reservation_that_is_never_finished_stops_counting_after_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    for i in 0..3 {
        assert_eq!(submit(&app, "ana", &format!("lost-{i}")).await.status, 202);
    }
    submit(&app, "ana", "one-more")
        .await
        .assert_problem(429, "daily_limit_reached");
    app.clock
        .advance(chrono::Duration::minutes(15) - chrono::Duration::seconds(1));
    assert_eq!(
        app.limits("ana").await["used"],
        3,
        "still held a second before"
    );
    app.clock.advance(chrono::Duration::seconds(1));
    // Computed on read: nothing ran, nothing was written.
    assert_eq!(app.limits("ana").await["used"], 0);
    let lost = status(&app, As::user("ana"), "lost-0").await.json();
    assert_eq!(
        (lost["status"].as_str(), lost["error"].as_str()),
        (Some("failed"), Some("timed_out"))
    );
    let fresh = submit(&app, "ana", "fresh").await;
    assert_eq!(fresh.status, 202);
    assert_eq!(fresh.json()["used"], 1);
    assert_eq!(app.limits("ana").await["used"], 1);
    // The new reservation's spend took the expired ones out of the counter and the map.
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(app.used_by(&user), 1);
    let held: Vec<&String> = user.reservations.keys().collect();
    assert_eq!(held, ["fresh"]);

    // The expired jobs' messages are failed without a provider call; the fresh one runs.
    drain_all(&app, &providers).await;
    assert_eq!(stub.received("alpha").predictions, 1);
    assert_eq!(
        status(&app, As::user("ana"), "fresh").await.json()["status"],
        "succeeded"
    );
    let user = app.user_record("ana").await.expect("user");
    assert!(user.reservations.is_empty(), "{:?}", user.reservations);
    assert_eq!(app.limits("ana").await["used"], 1);
}

#[tokio::test]
async fn the_same_id_again_answers_the_job_and_another_users_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    let again = submit(&app, "ana", "job-1").await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["status"], "queued");
    assert_eq!(
        app.limits("ana").await["used"],
        1,
        "a repeat reserves nothing"
    );

    submit(&app, "bob", "job-1")
        .await
        .assert_problem(409, "generation_id_taken");
    status(&app, As::user("bob"), "job-1")
        .await
        .assert_problem(404, "not_found");
    assert_eq!(status(&app, As::admin("ops"), "job-1").await.status, 200);
    status(&app, As::user("ana"), "nope")
        .await
        .assert_problem(404, "not_found");
    assert_eq!(status(&app, None, "job-1").await.status, 401);

    // An id recorded by record-generation is not a job's.
    assert_eq!(
        app.record("ana", json!({"generation_id": "rec-1"}))
            .await
            .status,
        201
    );
    submit(&app, "ana", "rec-1")
        .await
        .assert_problem(409, "generation_id_taken");
}

/// A client that sends one submission several times at once (a retry racing its original) gets one
/// job and one unit spent, and every copy answers that job.
#[tokio::test]
async fn parallel_copies_of_a_submission_reserve_one_unit_and_all_answer_its_job() {
    let app = TestApp::spawn().await;
    assert_eq!(submit(&app, "ana", "warm").await.status, 202);
    let copies = (0..12).map(|_| submit(&app, "ana", "job-1"));
    let responses = futures::future::join_all(copies).await;
    let statuses = son1k_tests::statuses(&responses);
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&11), "{statuses:?}");
    for copy in responses.iter().filter(|r| r.status == 200) {
        assert_eq!(copy.json()["generation_id"], "job-1");
        assert_eq!(copy.json()["status"], "queued");
    }
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(app.used_by(&user), 2, "warm and job-1, once");
    let held: Vec<&String> = user.reservations.keys().collect();
    assert_eq!(held, ["job-1", "warm"]);
    assert_eq!(app.limits("ana").await["used"], 2);
}

/// A submission that died after reserving its unit and before storing its job leaves a reservation
/// with no job. Its retry, once that submission cannot be running any more, gives the unit back and
/// reserves again: one unit held, one job.
#[tokio::test]
async fn the_retry_of_a_submission_that_died_after_reserving_takes_its_place() {
    let app = TestApp::spawn().await;
    let now = son1k_tests::NowUtc::now_utc(app.clock.as_ref());
    let mut ana = app.new_user("ana");
    let period = ana.entitlement(now).period.key();
    let died_at = now - chrono::Duration::seconds(31);
    ana.usage = Some([(period.clone(), 1)].into());
    ana.reservations.insert(
        "job-1".into(),
        son1k_domain::jobs::Reservation::new(period.clone(), false, died_at),
    );
    app.put_user(&ana).await;
    assert_eq!(
        app.limits("ana").await["used"],
        1,
        "the dead one's unit is held"
    );

    let res = submit(&app, "ana", "job-1").await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(
        (
            res.json()["used"].as_u64(),
            res.json()["remaining"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(user.used_in(&period), 1, "given back, then reserved again");
    let held = user.reservations.get("job-1").expect("reserved");
    assert_eq!(held.reserved_at(), now.timestamp());
    assert_eq!(
        status(&app, As::user("ana"), "job-1").await.json()["status"],
        "queued"
    );
}

/// Submitting is one read (the user, the job and a recorded generation of the id together), one
/// update of the user item and one put of the job, within 12 capacity units: the prompt is in the
/// job's own item, outside any transaction, and no item is written twice.
#[tokio::test]
async fn a_submission_is_three_calls_and_at_most_twelve_capacity_units() {
    let counter = son1k_store::metrics::CallCounter::new();
    let meter = son1k_store::metrics::CapacityMeter::new();
    let mut app = TestApp::spawn().await;
    app.intercept(counter.clone());
    app.intercept(meter.clone());
    assert_eq!(submit(&app, "rita", "first").await.status, 202);
    assert_eq!(
        counter.take(),
        vec!["BatchGetItem", "GetItem", "PutItem", "UpdateItem", "PutItem"],
        "the first one also creates the user (its tombstone read first: a deleted account is not made again)"
    );
    meter.take();
    let long_prompt = "a slow ambient piece over a distant shore, ".repeat(45);
    let body = json!({"generation_id": "second", "prompt": long_prompt.trim_end(),
                      "genre": "ambient", "title": "Shore", "quality": "standard",
                      "duration_seconds": 30});
    let res = app
        .call(
            "POST",
            "/api/generations",
            As::user("rita"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(
        counter.take(),
        vec!["BatchGetItem", "UpdateItem", "PutItem"]
    );
    let units: f64 = meter.take().iter().sum();
    assert!(units <= 12.0, "{units} capacity units");
}

#[tokio::test]
async fn submissions_are_validated_field_by_field_and_by_tier() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (
            json!({"generation_id": "g", "prompt": "", "quality": "standard", "duration_seconds": 5}),
            "prompt",
        ),
        (
            json!({"generation_id": "g", "prompt": "x", "quality": "standard", "duration_seconds": 4}),
            "duration_seconds",
        ),
        (
            json!({"generation_id": "g", "prompt": "x", "quality": "standard", "duration_seconds": 301}),
            "duration_seconds",
        ),
        (
            json!({"generation_id": "g", "prompt": "x", "quality": "loud", "duration_seconds": 5}),
            "quality",
        ),
        (
            json!({"generation_id": "g", "prompt": "x", "duration_seconds": 5}),
            "quality",
        ),
        (
            json!({"prompt": "x", "quality": "standard", "duration_seconds": 5}),
            "generation_id",
        ),
    ] {
        let res = app
            .call(
                "POST",
                "/api/generations",
                As::user("ana"),
                Some(&body.to_string()),
            )
            .await;
        let problem = res.assert_problem(400, "invalid_request");
        assert_eq!(problem["field"], field, "{body}");
    }
    submit_with(&app, "ana", "g", "ultra", 5)
        .await
        .assert_problem(403, "quality_not_in_tier");
    assert_eq!(app.limits("ana").await["used"], 0);
}

/// A job whose audio may not fit the owner's free storage (the quality's most bytes a second, see
/// `Quality::max_bytes_per_second`) is refused before anything is spent: no unit, no job, no
/// provider call. Otherwise full storage would make every generation free.
#[tokio::test]
async fn a_job_whose_audio_may_not_fit_is_refused_before_anything_is_spent() {
    let app = TestApp::spawn().await;
    let mut user = app.new_user("ana");
    let needed = Quality::Standard.max_audio_bytes(5.0);
    user.storage_used_bytes = (1 << 30) - needed + 1;
    app.put_user(&user).await;
    let (stub, base) = stub().await;
    let res = submit(&app, "ana", "job-1").await;
    res.assert_problem(413, "storage_quota_exceeded");
    let body = res.json();
    assert_eq!(body["limit_bytes"], 1u64 << 30);
    assert_eq!(body["remaining_bytes"], needed - 1);
    assert_eq!(app.limits("ana").await["used"], 0);
    status(&app, As::user("ana"), "job-1")
        .await
        .assert_problem(404, "not_found");
    assert_eq!(drain(&app, &pool(&base, &[("alpha", 1)])).await, 0);
    assert_eq!(stub.received("alpha").predictions, 0);

    // Exactly the room it may take: queued.
    let mut user = app.user_record("ana").await.expect("user");
    user.storage_used_bytes = (1 << 30) - needed;
    app.put_user(&user).await;
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
}

/// Audio that arrives and no longer fits (other audio was stored meanwhile) fails the job with its
/// unit spent: the provider was paid. The audio is deleted and storage is unchanged.
#[tokio::test]
async fn audio_that_arrives_and_does_not_fit_fails_the_job_spent_and_is_deleted() {
    let app = TestApp::spawn().await;
    let mut user = app.new_user("ana");
    let needed = Quality::Standard.max_audio_bytes(5.0);
    user.storage_used_bytes = (1 << 30) - needed;
    app.put_user(&user).await;
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    // Another upload is accounted before the job's audio arrives.
    app.add_stored_bytes(&user.user_id, 1000).await;
    let (stub, base) = stub().await;
    drain_all(&app, &pool(&base, &[("alpha", 1)])).await;
    let done = status(&app, As::user("ana"), "job-1").await.json();
    assert_eq!(
        (done["status"].as_str(), done["error"].as_str()),
        (Some("failed"), Some("storage_quota_exceeded"))
    );
    assert_eq!(stub.received("alpha").predictions, 1, "the provider worked");
    assert!(
        object(&app, "ana", "job-1").await.is_none(),
        "the audio was deleted"
    );
    let user = app.user_record("ana").await.expect("user");
    assert_eq!(user.storage_used_bytes, (1 << 30) - needed + 1000);
    assert!(user.reservations.is_empty(), "{:?}", user.reservations);
    assert_eq!(app.limits("ana").await["used"], 1, "the unit is spent");
}

#[tokio::test]
async fn long_audio_is_streamed_into_s3_in_parts() {
    let app = TestApp::spawn().await;
    app.user_with_tier("pro", Tier::Pro, TierSource::Admin)
        .await;
    let (_stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    assert_eq!(
        run_with(&app, &providers, "pro", ("long", "ultra", 200)).await["status"],
        "succeeded"
    );
    let stored = object(&app, "pro", "long").await.expect("object");
    // 6.4 MB: more than one 5 MiB part, so a multipart upload (its ETag says how many parts).
    assert_eq!(stored.size_bytes, wav_len(200));
    assert!(stored.etag.ends_with("-2"), "two parts: {}", stored.etag);
    assert_eq!(
        app.user_record("pro")
            .await
            .expect("user")
            .storage_used_bytes,
        wav_len(200)
    );
}

#[tokio::test]
async fn a_providers_key_comes_from_ssm_and_goes_only_to_that_provider() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let parameter = format!(
        "/son1k/providers/{}/alpha",
        app.state.config.names.users_table
    );
    app.state
        .ssm_client()
        .put_parameter()
        .name(&parameter)
        .value("r8_local_test_key")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put parameter");
    let mut alpha = config(&base, "alpha", 1);
    alpha.key_parameter = Some(parameter);
    let raw = serde_json::to_string(&vec![json!({
        "name": alpha.name, "base_url": alpha.base_url, "key_parameter": alpha.key_parameter,
        "requests_per_second": 10, "max_concurrency": 2, "poll_ms": 10
    })])
    .expect("json");
    let providers = son1k_app::providers::load_from(&app.state, &raw)
        .await
        .expect("providers");
    assert_eq!(submit(&app, "ana", "job-1").await.status, 202);
    drain_all(&app, &providers).await;
    assert_eq!(
        status(&app, As::user("ana"), "job-1").await.json()["status"],
        "succeeded"
    );
    assert_eq!(
        stub.received("alpha").authorization.as_deref(),
        Some("Bearer r8_local_test_key")
    );
    // A missing parameter stops the cold start with a message that names it, not the key.
    let broken = raw.replace("/alpha\"", "/missing\"");
    let err = son1k_app::providers::load_from(&app.state, &broken)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("/missing"), "{err}");
}

#[test]
fn the_stub_makes_real_wav_audio() {
    let wav = local_api::provider_stub::wav("x", 1);
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!(wav.len() as u64, wav_len(1));
}

#[tokio::test]
async fn a_paid_users_twentieth_job_joins_the_pool_listed_with_its_audio() {
    let app = TestApp::spawn().await;
    app.about_to_contribute("pro").await;
    let (_stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    assert_eq!(
        run_with(&app, &providers, "pro", ("twentieth", "high", 5)).await["status"],
        "succeeded"
    );
    let generation = app.generation("twentieth").await.expect("generation");
    let contribution = generation.contribution_id.expect("a pool contribution");
    let user = app.user_record("pro").await.expect("user");
    assert_eq!(user.paid_generations_total, 20);
    let listed = app
        .call("GET", "/api/community/pool", None, None)
        .await
        .json();
    let item = &listed["items"][0];
    assert_eq!(item["id"], contribution.as_str(), "{listed}");
    assert_eq!(item["points"], 2);
    assert_eq!(item["genre"], "ambient");
}

#[tokio::test]
async fn a_provider_slower_than_its_timeout_is_cancelled_counted_and_abandoned_for_the_next() {
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    // Alpha's prediction would run for ten minutes; its timeout is one second.
    stub.set(
        "alpha",
        Behaviour {
            mode: Mode::Slow,
            delay_ms: 600_000,
            ..Behaviour::default()
        },
    );
    let mut alpha = config(&base, "alpha", 1_000_000);
    alpha.timeout_seconds = 1;
    let providers: Providers = vec![
        Box::new(provider(alpha)),
        Box::new(provider(config(&base, "beta", 1))),
    ];
    let done = run(&app, &providers, "ana", "job-1").await;
    assert_eq!(
        (done["status"].as_str(), done["provider"].as_str()),
        (Some("succeeded"), Some("beta"))
    );
    // The abandoned prediction was cancelled at the provider, not left running (and billed).
    let alpha = stub.received("alpha");
    assert_eq!((alpha.predictions, alpha.cancellations), (1, 1));
    assert_eq!(stub.received("beta").cancellations, 0);
    // Both calls count in the job's provider budget.
    let job = app
        .state
        .jobs()
        .get(&son1k_domain::ids::GenerationId::parse("job-1").expect("id"))
        .await
        .expect("read")
        .expect("job");
    assert_eq!(job.provider_calls, 2);
}

/// A listener that counts the connections it accepts (and answers none).
async fn listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, hits)
}

#[tokio::test]
async fn an_output_link_to_an_internal_address_or_past_the_size_cap_fails_the_job_unfetched() {
    let app = TestApp::spawn().await;
    app.user_with_tier("pro", Tier::Pro, TierSource::Admin)
        .await;
    let (stub, base) = stub().await;
    let (port, hits) = listener().await;
    let internal = format!("http://127.0.0.1:{port}/x.wav");
    let cases = [
        (
            "redirect",
            Behaviour {
                redirect: Some(internal.clone()),
                ..Behaviour::default()
            },
        ),
        (
            "mapped",
            Behaviour {
                output: Some(format!("http://[::ffff:127.0.0.1]:{port}/x.wav")),
                ..Behaviour::default()
            },
        ),
        (
            "loopback-name",
            Behaviour {
                output: Some(format!("http://localhost:{port}/x.wav")),
                ..Behaviour::default()
            },
        ),
        (
            "provider-port",
            Behaviour {
                output: Some(internal.clone()),
                ..Behaviour::default()
            },
        ),
        ("oversized", mode(Mode::Oversized)),
    ];
    // One provider per case (three failures in a row would open a provider's circuit).
    for (case, behaviour) in cases {
        stub.set(case, behaviour);
        let providers = pool(&base, &[(case, 1_000_000), ("beta", 1)]);
        let id = format!("job-{case}");
        let done = run(&app, &providers, "pro", &id).await;
        assert_eq!(
            (done["status"].as_str(), done["error"].as_str()),
            (Some("failed"), Some("provider_output_refused")),
            "{case}: {done}"
        );
        assert!(object(&app, "pro", &id).await.is_none(), "{case}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Not tried elsewhere, and not the user's fault: every unit came back, nothing is stored.
    assert_eq!(stub.received("beta").predictions, 0);
    let downloads: Vec<u32> = [
        "redirect",
        "mapped",
        "loopback-name",
        "provider-port",
        "oversized",
    ]
    .iter()
    .map(|case| stub.received(case).downloads)
    .collect();
    assert_eq!(
        downloads,
        [1, 0, 0, 0, 1],
        "only the stub's own links were fetched"
    );
    assert_eq!(app.used("pro").await, 0);
    let user = app.user_record("pro").await.expect("user");
    assert_eq!(user.storage_used_bytes, 0);
}

#[tokio::test]
async fn three_failures_in_a_row_open_a_providers_circuit_until_a_probe_succeeds() {
    let app = TestApp::spawn().await;
    app.user_with_tier("pro", Tier::Pro, TierSource::Admin)
        .await;
    let (stub, base) = stub().await;
    stub.set("alpha", mode(Mode::Fail));
    let providers = pool(&base, &[("alpha", 1_000_000), ("beta", 1)]);
    for i in 0..3 {
        assert_eq!(submit(&app, "pro", &format!("job-{i}")).await.status, 202);
        drain_all(&app, &providers).await;
    }
    assert_eq!(stub.received("alpha").predictions, 3);
    // Open: alpha is passed over even though it would answer now.
    stub.set("alpha", Behaviour::default());
    assert_eq!(submit(&app, "pro", "job-3").await.status, 202);
    drain_all(&app, &providers).await;
    assert_eq!(stub.received("alpha").predictions, 3);
    assert_eq!(
        status(&app, As::user("pro"), "job-3").await.json()["provider"],
        "beta"
    );
    // After 30 s one probe goes through; it succeeds and closes the circuit.
    app.clock.advance(chrono::Duration::seconds(30));
    for id in ["job-4", "job-5"] {
        assert_eq!(submit(&app, "pro", id).await.status, 202);
        drain_all(&app, &providers).await;
        assert_eq!(
            status(&app, As::user("pro"), id).await.json()["provider"],
            "alpha"
        );
    }
    assert_eq!(stub.received("alpha").predictions, 5);
    assert_eq!(app.used("pro").await, 6);
}

#[tokio::test]
async fn the_fleet_together_never_takes_more_than_a_providers_burst() {
    use son1k_domain::providers::Limits;
    let app = TestApp::spawn().await;
    let limits = Limits {
        requests_per_second: 0.5,
        burst: 5,
        max_concurrency: 100,
        slot_ms: 60_000,
    };
    let now = son1k_tests::NowUtc::now_utc(&*app.clock).timestamp_millis();
    // 40 workers at the same instant, each with its own job: a token each, or told when to come back.
    let takes = (0..40).map(|i| {
        let app = &app;
        async move {
            son1k_app::slots::take(&app.state, "alpha", &limits, &format!("job-{i}"))
                .await
                .expect("take")
        }
    });
    let results = futures::future::join_all(takes).await;
    let taken = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(taken, 5, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.err())
        .all(|why| why == son1k_domain::providers::Unavailable::OutOfRate { next: now + 2_000 }));
    // Two seconds later the bucket has one more token, and only one.
    app.clock.advance(chrono::Duration::milliseconds(2_000));
    let again = futures::future::join_all((0..10).map(|i| {
        let app = &app;
        async move {
            son1k_app::slots::take(&app.state, "alpha", &limits, &format!("late-{i}"))
                .await
                .expect("take")
        }
    }))
    .await;
    assert_eq!(again.iter().filter(|r| r.is_ok()).count(), 1);
}

/// A deployment without a generation provider refuses a submission before anything is spent: the
/// job could only fail. Nothing reserved, stored or queued; the same request succeeds once a
/// provider is configured.
#[tokio::test]
async fn with_no_provider_configured_a_submission_is_503_and_spends_nothing() {
    let mut app = TestApp::spawn().await;
    let configured = app.state.jobs_queue.clone().expect("the jobs queue");
    app.state.jobs_queue = Some(son1k_app::jobs::JobsQueue::new(
        app.state.sqs_client(),
        configured.url().to_owned(),
        0,
    ));
    let res = submit(&app, "ana", "nowhere").await;
    res.assert_problem(503, "no_provider_configured");
    assert_eq!(res.header("retry-after"), None, "waiting does not help");
    status(&app, As::user("ana"), "nowhere")
        .await
        .assert_problem(404, "not_found");
    let limits = app
        .call("GET", "/api/tiers/limits/me", As::user("ana"), None)
        .await
        .json();
    assert_eq!(limits["used"], 0, "{limits}");
    let (_stub, base) = stub().await;
    assert_eq!(
        drain(&app, &pool(&base, &[("alpha", 1)])).await,
        0,
        "nothing queued"
    );

    app.state.jobs_queue = Some(configured);
    assert_eq!(submit(&app, "ana", "nowhere").await.status, 202);
}

/// The batch SQS delivers (its documented shape) is read through the typed event, and the answer is
/// SQS's partial batch response: a body that is not a job is dropped, not redelivered.
#[tokio::test]
async fn an_sqs_batch_as_sqs_sends_it_is_answered_with_a_partial_batch_response() {
    let app = TestApp::spawn().await;
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(include_str!("../fixtures/sqs-jobs-batch.json")).expect("SQS event");
    let (_stub, base) = stub().await;
    let response = generation_worker::handler(
        &app.state,
        &pool(&base, &[("alpha", 1)]),
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .expect("handled");
    assert_eq!(
        serde_json::to_value(&response).expect("json"),
        json!({"batchItemFailures": []})
    );
}
