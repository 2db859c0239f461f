//! What AWS answers that the local stack does not: each test runs a function under its policy from
//! `template.yaml` with `iam::S3AsAws` answering as S3 does under that policy (the rules and their
//! AWS pages are in `tests/src/iam.rs`).

use crate::jobs::{drain, drain_all, pool, status, stub, submit};
use son1k_tests::iam::{s3_grants, S3AsAws};
use son1k_tests::{As, TestApp};

/// The worker's policy without its `s3:ListBucket`: the deploy mistake these tests stand for.
fn without_list(function: &str) -> S3AsAws {
    let mut grants = s3_grants(function);
    grants.retain(|(action, _)| action != "s3:ListBucket");
    S3AsAws::with_grants(grants)
}

/// The worker looks for audio a run before it may have left (a HeadObject of a key that is not
/// there yet): under the deployed policy that is a 404, so every first run goes on to a provider.
#[tokio::test]
async fn under_its_deployed_policy_the_worker_runs_a_new_job() {
    let mut app = TestApp::spawn().await;
    app.intercept_s3(S3AsAws::for_function("GenerationWorker"));
    let (stub, base) = stub().await;
    assert_eq!(submit(&app, "ana", "first").await.status, 202);
    drain_all(&app, &pool(&base, &[("alpha", 1)])).await;
    let job = status(&app, As::user("ana"), "first").await.json();
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(stub.received("alpha").predictions, 1);
}

/// A 403 on that look is a configuration to fix, never "no audio": the run stops before any
/// provider is paid, the job keeps its unit (it shows as running: its lease was taken), and the
/// message goes back to the queue (its redeliveries end in the dead-letter queue, which is alarmed).
#[tokio::test]
async fn a_403_looking_for_audio_stops_the_run_instead_of_reading_as_absent() {
    let mut app = TestApp::spawn().await;
    app.intercept_s3(without_list("GenerationWorker"));
    let (stub, base) = stub().await;
    assert_eq!(submit(&app, "ana", "denied").await.status, 202);
    let providers = pool(&base, &[("alpha", 1)]);
    assert_eq!(drain(&app, &providers).await, 1);
    assert_eq!(
        stub.received("alpha").predictions,
        0,
        "no provider called after a refused look"
    );
    let job = status(&app, As::user("ana"), "denied").await.json();
    assert_eq!(job["status"], "running", "{job}");
    let limits = app
        .call("GET", "/api/tiers/limits/me", As::user("ana"), None)
        .await
        .json();
    assert_eq!(limits["used"], 1, "the unit stays reserved: {limits}");
    assert_eq!(
        drain(&app, &providers).await,
        1,
        "the message came back for another try"
    );
}

/// storage-events HEADs the object an S3 event names; one deleted since (a rejected upload's
/// second event, an object removed by hand) is a 404 under the deployed policy: ignored.
#[tokio::test]
async fn under_its_deployed_policy_storage_events_ignores_an_object_gone_since() {
    let mut app = TestApp::spawn().await;
    app.intercept_s3(S3AsAws::for_function("StorageEvents"));
    let keys = vec!["audio/ana/gone".to_owned()];
    let event = storage_events::event_for(&app.state.config.names.audio_bucket, &keys);
    let report = storage_events::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .expect("a missing object is not an error");
    assert_eq!(report.ignored, 1);
}

/// The same event under a policy without `s3:ListBucket`: the invocation fails (Lambda retries it,
/// then its failure destination keeps it), it is not counted as ignored.
#[tokio::test]
async fn a_403_on_an_objects_event_fails_the_invocation() {
    let mut app = TestApp::spawn().await;
    app.intercept_s3(without_list("StorageEvents"));
    let keys = vec!["audio/ana/gone".to_owned()];
    let event = storage_events::event_for(&app.state.config.names.audio_bucket, &keys);
    let err = storage_events::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .expect_err("a refused look is an error");
    assert!(
        err.to_string().contains(son1k_store::MISCONFIGURED),
        "the error names the configuration: {err}"
    );
}
