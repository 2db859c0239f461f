//! Alert settings (`GET`/`PUT /api/me/alerts/settings`): the defaults, a whole replacement kept on the
//! user's item, and every refusal naming its field.

use futures::future::join_all;
use serde_json::{json, Value};
use son1k_tests::{As, TestApp, TestResponse};

async fn read(app: &TestApp, user: &str) -> TestResponse {
    app.call("GET", "/api/me/alerts/settings", As::user(user), None)
        .await
}

async fn save(app: &TestApp, user: &str, body: Value) -> TestResponse {
    let body = body.to_string();
    app.call(
        "PUT",
        "/api/me/alerts/settings",
        As::user(user),
        Some(&body),
    )
    .await
}

fn defaults() -> Value {
    json!({"thresholds": [80, 100], "channels": {"email": true, "webhook_url": null}, "pace": true})
}

#[tokio::test]
async fn a_user_who_never_set_them_has_the_defaults_and_looking_creates_nothing() {
    let app = TestApp::spawn().await;
    let res = read(&app, "newcomer").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json(), defaults());
    assert!(app.user_record("newcomer").await.is_none());
    assert_eq!(
        app.call("GET", "/api/me/alerts/settings", None, None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn settings_are_replaced_whole_kept_per_user_and_read_back() {
    let app = TestApp::spawn().await;
    let mine = json!({
        "thresholds": [90, 50, 75],
        "channels": {"email": false, "webhook_url": "https://hooks.example.com/son1k"},
        "pace": false
    });
    let saved = save(&app, "ana", mine).await;
    assert_eq!(saved.status, 200, "{}", saved.text());
    let expected = json!({
        "thresholds": [50, 75, 90],
        "channels": {"email": false, "webhook_url": "https://hooks.example.com/son1k"},
        "pace": false
    });
    assert_eq!(saved.json(), expected);
    assert_eq!(read(&app, "ana").await.json(), expected);
    // Stored on the user's item, which the save created as a FREE user.
    let user = app.user_record("ana").await.expect("created by the save");
    assert_eq!(
        user.alert_settings.expect("stored").thresholds,
        [50, 75, 90]
    );
    // Another user's are their own.
    assert_eq!(read(&app, "bo").await.json(), defaults());
    // A later save replaces the whole: the webhook absent is no webhook.
    let plain = json!({"thresholds": [100], "channels": {"email": true}, "pace": true});
    assert_eq!(save(&app, "ana", plain).await.status, 200);
    assert_eq!(
        read(&app, "ana").await.json(),
        json!({"thresholds": [100], "channels": {"email": true, "webhook_url": null}, "pace": true})
    );
}

#[tokio::test]
async fn parallel_first_saves_of_one_user_all_land_and_one_user_is_made() {
    let app = TestApp::spawn().await;
    let bodies: Vec<Value> = (1..=12)
        .map(|t| json!({"thresholds": [t], "channels": {"email": true}, "pace": true}))
        .collect();
    let answers = join_all(bodies.into_iter().map(|b| save(&app, "racer", b))).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let stored = read(&app, "racer").await.json()["thresholds"][0]
        .as_u64()
        .expect("one threshold");
    assert!((1..=12).contains(&stored));
    assert_eq!(
        app.user_record("racer").await.expect("user").tier.as_str(),
        "FREE"
    );
}

#[tokio::test]
async fn every_refusal_is_a_400_naming_its_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let with = |thresholds: Value, webhook: Value| json!({"thresholds": thresholds, "channels": {"email": true, "webhook_url": webhook}, "pace": true});
    let cases = [
        (with(json!([]), Value::Null), "thresholds"),
        (with(json!([0]), Value::Null), "thresholds"),
        (with(json!([101]), Value::Null), "thresholds"),
        (with(json!([80, 80]), Value::Null), "thresholds"),
        (with(json!([10, 20, 30, 40]), Value::Null), "thresholds"),
        (
            with(json!([80]), json!("http://hooks.example.com/")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://me:pw@hooks.example.com/")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://127.0.0.1/hook")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://10.0.0.8/hook")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://169.254.169.254/")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://[::1]/")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://localhost:8443/")),
            "channels.webhook_url",
        ),
        (
            with(json!([80]), json!("https://metadata.internal/")),
            "channels.webhook_url",
        ),
    ];
    for (body, field) in cases {
        let res = save(&app, "picky", body.clone()).await;
        let problem = res.assert_problem(400, "invalid_request");
        assert_eq!(problem["field"], field, "{body}");
    }
    let missing = save(&app, "picky", json!({"thresholds": [80], "pace": true})).await;
    assert_eq!(
        missing.assert_problem(400, "invalid_request")["field"],
        "channels"
    );
    assert!(app.user_record("picky").await.is_none(), "nothing stored");
}
