//! Alert settings (`GET`/`PUT /api/me/alerts/settings`): the defaults, a whole replacement kept on the
//! user's item, and every refusal naming its field.

use futures::future::join_all;
use serde_json::{json, Value};
use son1k_domain::tiers::Tier;
use son1k_tests::{As, NowUtc, TestApp, TestResponse};

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

// ------------------------------------------------------------------------------------- alerts

/// The caller's alerts, newest first (every page).
async fn alerts(app: &TestApp, user: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/me/alerts?cursor={c}"),
            None => "/api/me/alerts".to_owned(),
        };
        let res = app.call("GET", &path, As::user(user), None).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let page = res.json();
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

/// (quota, thresholds, used, limit) of each threshold alert, by limit and usage (alerts of one
/// instant have no order among them).
async fn fired(app: &TestApp, user: &str) -> Vec<(String, Vec<u64>, u64, u64)> {
    let mut out: Vec<_> = alerts(app, user)
        .await
        .iter()
        .filter(|a| a["type"] == "threshold")
        .map(|a| {
            (
                a["quota"].as_str().expect("quota").to_owned(),
                a["thresholds"]
                    .as_array()
                    .expect("thresholds")
                    .iter()
                    .map(|t| t.as_u64().expect("threshold"))
                    .collect(),
                a["used"].as_u64().expect("used"),
                a["limit"].as_u64().expect("limit"),
            )
        })
        .collect();
    out.sort_by_key(|(_, _, used, limit)| (*limit, *used));
    out
}

async fn generate(app: &TestApp, user: &str, id: &str) -> TestResponse {
    let res = app.record(user, json!({ "generation_id": id })).await;
    assert_eq!(res.status, 201, "{id}: {}", res.text());
    res
}

fn month_key(app: &TestApp) -> String {
    son1k_domain::period::Period::utc_month(app.clock.now_utc()).key()
}

#[tokio::test]
async fn on_a_limit_of_3_the_third_generation_fires_80_and_100_as_one_alert_and_a_replay_fires_nothing(
) {
    let app = TestApp::spawn().await;
    generate(&app, "fay", "g1").await;
    generate(&app, "fay", "g2").await;
    assert!(
        alerts(&app, "fay").await.is_empty(),
        "2 of 3 crosses nothing"
    );
    generate(&app, "fay", "g3").await;
    let list = alerts(&app, "fay").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let alert = &list[0];
    assert_eq!(alert["type"], "threshold");
    assert_eq!(alert["quota"], "generations");
    assert_eq!(alert["thresholds"], json!([80, 100]));
    assert_eq!((&alert["used"], &alert["limit"]), (&json!(3), &json!(3)));
    assert_eq!(alert["period_start"], "2026-11-26T00:00:00Z");
    assert_eq!(alert["reset_at"], "2026-11-27T00:00:00Z");
    assert_eq!(
        alert["deliveries"],
        json!([{"channel": "email", "status": "pending", "attempts": 0}])
    );
    assert!(alert.get("projected_exhaustion_at").is_none());
    // The same request again answers its stored body and fires nothing; so does the refusal.
    assert_eq!(
        app.record("fay", json!({"generation_id": "g3"}))
            .await
            .status,
        200
    );
    app.record("fay", json!({"generation_id": "g4"}))
        .await
        .assert_problem(429, "daily_limit_reached");
    assert_eq!(alerts(&app, "fay").await.len(), 1);
    // Only the owner sees them.
    assert!(alerts(&app, "gus").await.is_empty());
    assert_eq!(
        app.call("GET", "/api/me/alerts", None, None).await.status,
        401
    );
}

#[tokio::test]
async fn on_a_limit_of_50_the_40th_fires_80_and_the_50th_fires_100() {
    let app = TestApp::spawn().await;
    app.limits("cleo").await;
    app.grant("cleo", Tier::Creator).await;
    app.put_counter("cleo", &month_key(&app), 38).await;
    // Thresholds only: late in the month, 44 of 50 is also a fast pace.
    let quiet = json!({"thresholds": [80, 100], "channels": {"email": true}, "pace": false});
    assert_eq!(save(&app, "cleo", quiet).await.status, 200);
    generate(&app, "cleo", "c39").await;
    assert!(
        fired(&app, "cleo").await.is_empty(),
        "39 of 50 is below 80 %"
    );
    generate(&app, "cleo", "c40").await;
    assert_eq!(
        fired(&app, "cleo").await,
        [("generations".to_owned(), vec![80], 40, 50)]
    );
    for i in 41..=49 {
        generate(&app, "cleo", &format!("c{i}")).await;
    }
    assert_eq!(fired(&app, "cleo").await.len(), 1, "41..49 cross nothing");
    app.clock.advance(chrono::Duration::minutes(5));
    generate(&app, "cleo", "c50").await;
    let newest_first = alerts(&app, "cleo").await;
    assert_eq!(newest_first[0]["thresholds"], json!([100]));
    assert_eq!(newest_first[1]["thresholds"], json!([80]));
    assert_eq!(
        fired(&app, "cleo").await,
        [
            ("generations".to_owned(), vec![80], 40, 50),
            ("generations".to_owned(), vec![100], 50, 50)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_parallel_generations_across_both_thresholds_fire_each_once() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    app.limits("pia").await;
    app.grant("pia", Tier::Creator).await;
    app.put_counter("pia", &month_key(&app), 35).await;
    let calls = (0..30).map(|i| {
        let app = app.clone();
        async move {
            app.record("pia", json!({"generation_id": format!("p{i}")}))
                .await
        }
    });
    let answers = join_all(calls).await;
    let created = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 15, "36..=50 fit the month");
    assert_eq!(
        fired(&app, "pia").await,
        [
            ("generations".to_owned(), vec![80], 40, 50),
            ("generations".to_owned(), vec![100], 50, 50)
        ]
    );
}

#[tokio::test]
async fn a_tier_change_rearms_only_the_thresholds_whose_limit_changed() {
    let app = TestApp::spawn().await;
    let key = month_key(&app);
    app.limits("rex").await;
    app.grant("rex", Tier::Creator).await;
    app.put_counter("rex", &key, 39).await;
    generate(&app, "rex", "r1").await; // 40 of 50
    app.grant("rex", Tier::Pro).await;
    app.put_counter("rex", &key, 159).await;
    generate(&app, "rex", "r2").await; // 160 of 200: a new limit, armed
    let both = vec![
        ("generations".to_owned(), vec![80], 40, 50),
        ("generations".to_owned(), vec![80], 160, 200),
    ];
    assert_eq!(fired(&app, "rex").await, both);
    // Down and up again in the same month: each limit is one already fired. The counter is set
    // back (as units given back would) so each boundary is crossed again.
    app.grant("rex", Tier::Creator).await;
    app.put_counter("rex", &key, 39).await;
    generate(&app, "rex", "r3").await;
    app.grant("rex", Tier::Pro).await;
    app.put_counter("rex", &key, 159).await;
    generate(&app, "rex", "r4").await;
    assert_eq!(
        fired(&app, "rex").await,
        both,
        "no limit changed: nothing re-armed"
    );
    // STUDIO's limit is new: its 80 % fires.
    app.grant("rex", Tier::Studio).await;
    app.put_counter("rex", &key, 799).await;
    generate(&app, "rex", "r5").await;
    assert_eq!(fired(&app, "rex").await.len(), 3);
}

#[tokio::test]
async fn a_fast_month_fires_one_pace_alert_and_a_free_day_never_does() {
    // 7 of November's 30 days have passed (23 %).
    let app = TestApp::spawn_at(son1k_tests::at("2026-11-08T00:00:00Z")).await;
    app.limits("max").await;
    app.grant("max", Tier::Creator).await;
    app.put_counter("max", &month_key(&app), 20).await;
    generate(&app, "max", "m21").await;
    let list = alerts(&app, "max").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let pace = &list[0];
    assert_eq!(pace["type"], "pace");
    assert_eq!(pace["estimate"], true);
    assert_eq!((&pace["used"], &pace["limit"]), (&json!(21), &json!(50)));
    assert_eq!(pace["reset_at"], "2026-12-01T00:00:00Z");
    // 7 days × 50 / 21 = 16 days 16 h from the 1st.
    assert_eq!(pace["projected_exhaustion_at"], "2026-11-17T16:00:00Z");
    assert_eq!(pace["thresholds"], json!([]));
    for i in 22..=25 {
        generate(&app, "max", &format!("m{i}")).await;
    }
    assert_eq!(
        alerts(&app, "max").await.len(),
        1,
        "one pace alert a period"
    );
    // A FREE day has no pace; its thresholds fire as usual.
    for id in ["f1", "f2", "f3"] {
        generate(&app, "fern", id).await;
    }
    let free = alerts(&app, "fern").await;
    assert_eq!(free.len(), 1);
    assert_eq!(free[0]["type"], "threshold");
}

#[tokio::test]
async fn a_slow_month_or_one_not_a_fifth_through_fires_no_pace() {
    let app = TestApp::spawn_at(son1k_tests::at("2026-11-06T00:00:00Z")).await;
    app.limits("ned").await;
    app.grant("ned", Tier::Creator).await;
    app.put_counter("ned", &month_key(&app), 20).await;
    generate(&app, "ned", "n1").await; // 5 days: 17 %, too early to judge
    assert!(alerts(&app, "ned").await.is_empty());
    app.clock.set(son1k_tests::at("2026-11-20T00:00:00Z"));
    generate(&app, "ned", "n2").await; // 22 in 19 days: out on the 44th day
    assert!(alerts(&app, "ned").await.is_empty());
    // Settings without the pace: none on a fast month either.
    let off = json!({"thresholds": [100], "channels": {"email": true}, "pace": false});
    assert_eq!(save(&app, "ned", off).await.status, 200);
    app.put_counter("ned", &month_key(&app), 45).await;
    generate(&app, "ned", "n3").await;
    assert!(alerts(&app, "ned").await.is_empty());
}

#[tokio::test]
async fn a_jobs_alert_is_written_by_its_commit_and_a_failed_job_fires_nothing() {
    use crate::jobs::{drain_all, pool, status, stub, submit};
    use local_api::provider_stub::{Behaviour, Mode};
    let app = TestApp::spawn().await;
    let (stub, base) = stub().await;
    let providers = pool(&base, &[("alpha", 1)]);
    generate(&app, "jo", "g1").await;
    generate(&app, "jo", "g2").await;
    // The third unit is reserved (crossing 80 and 100) by a job that fails: given back, no alert.
    stub.set(
        "alpha",
        Behaviour {
            mode: Mode::Fail,
            ..Behaviour::default()
        },
    );
    assert_eq!(submit(&app, "jo", "job-a").await.status, 202);
    assert!(
        alerts(&app, "jo").await.is_empty(),
        "nothing before a commit"
    );
    drain_all(&app, &providers).await;
    assert_eq!(
        status(&app, As::user("jo"), "job-a").await.json()["status"],
        "failed"
    );
    assert!(
        alerts(&app, "jo").await.is_empty(),
        "a released unit fires nothing"
    );
    // The next job takes the third unit again and commits: the alert, once.
    stub.set("alpha", Behaviour::default());
    assert_eq!(submit(&app, "jo", "job-b").await.status, 202);
    drain_all(&app, &providers).await;
    assert_eq!(
        status(&app, As::user("jo"), "job-b").await.json()["status"],
        "succeeded"
    );
    assert_eq!(
        fired(&app, "jo").await,
        [("generations".to_owned(), vec![80, 100], 3, 3)]
    );
}

#[tokio::test]
async fn the_days_lyrics_and_pixel_allowances_fire_their_thresholds_with_what_they_keep() {
    let app = TestApp::spawn().await;
    let brief = json!({"theme": "rain"});
    for _ in 0..3 {
        assert_eq!(
            crate::lyrics::write(&app, "lia", brief.clone())
                .await
                .status,
            201
        );
    }
    assert!(fired(&app, "lia").await.is_empty(), "3 of 5");
    // 4 of 5 reaches 80 %, 5 of 5 100 %.
    assert_eq!(
        crate::lyrics::write(&app, "lia", brief.clone())
            .await
            .status,
        201
    );
    assert_eq!(
        crate::lyrics::write(&app, "lia", brief.clone())
            .await
            .status,
        201
    );
    assert_eq!(
        fired(&app, "lia").await,
        [
            ("lyrics".to_owned(), vec![80], 4, 5),
            ("lyrics".to_owned(), vec![100], 5, 5)
        ]
    );
    let lyrics = alerts(&app, "lia").await;
    assert_eq!(lyrics[0]["reset_at"], "2026-11-27T00:00:00Z");
    // A refused draft and a failed one fire nothing more.
    assert_eq!(crate::lyrics::write(&app, "lia", brief).await.status, 429);
    assert_eq!(alerts(&app, "lia").await.len(), 2);

    // Pixel: 20 a day; the 16th message reaches 80 %. A message the model fails is given back and
    // fires nothing; the retry that is answered does.
    app.put_counter("pim", "pixel/D#2026-11-26", 15).await;
    app.ollama.set(local_api::ollama_stub::Behaviour {
        mode: local_api::ollama_stub::Mode::Fail,
        ..Default::default()
    });
    assert_eq!(
        crate::pixel::chat(&app, "pim", "hi", None).await.status,
        503
    );
    assert!(alerts(&app, "pim").await.is_empty());
    app.ollama.set(Default::default());
    assert_eq!(
        crate::pixel::chat(&app, "pim", "hi", None).await.status,
        200
    );
    assert_eq!(
        fired(&app, "pim").await,
        [("pixel".to_owned(), vec![80], 16, 20)]
    );
}

// ----------------------------------------------------------------------------------- delivery

/// The messages moto's SES holds whose body names `alert_id`.
async fn emails_of(app: &TestApp, alert_id: &str) -> Vec<Value> {
    let data: Value = reqwest::get(format!(
        "{}/moto-api/data.json",
        son1k_tests::endpoints().s3
    ))
    .await
    .expect("moto data")
    .json()
    .await
    .expect("moto json");
    let _ = app;
    data["ses"]["Message"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|m| m["body"].as_str().is_some_and(|b| b.contains(alert_id)))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn three_generations(app: &TestApp, user: &str) -> Value {
    for id in ["d1", "d2", "d3"] {
        generate(app, user, id).await;
    }
    let list = alerts(app, user).await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

#[tokio::test]
async fn an_alert_is_emailed_once_through_ses_and_its_delivery_recorded() {
    let app = TestApp::spawn().await;
    let alert = three_generations(&app, "eva").await;
    let id = alert["id"].as_str().expect("id").to_owned();
    assert_eq!(app.deliver_alerts().await, 1);
    let mails = emails_of(&app, &id).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["source"], local_api::alerts::LOCAL_SENDER);
    assert_eq!(
        mails[0]["destinations"]["ToAddresses"],
        json!(["eva@example.com"])
    );
    assert_eq!(
        mails[0]["subject"],
        "Son1kVers3: 100 % of your generations used"
    );
    assert!(mails[0]["body"].as_str().unwrap().contains("3 of 3"));
    assert_eq!(
        alerts(&app, "eva").await[0]["deliveries"],
        json!([{"channel": "email", "status": "delivered", "attempts": 1}])
    );
    // Read again, the stream has nothing new: nothing is sent twice.
    assert_eq!(app.deliver_alerts().await, 0);
    assert_eq!(emails_of(&app, &id).await.len(), 1);
    // A user whose token's email is not verified gets no mail: the address was never kept.
    for id in ["u1", "u2", "u3"] {
        let res = app
            .call(
                "POST",
                "/api/tiers/record-generation",
                As::unverified("uma"),
                Some(&json!({ "generation_id": id }).to_string()),
            )
            .await;
        assert_eq!(res.status, 201);
    }
    app.deliver_alerts().await;
    assert_eq!(
        alerts(&app, "uma").await[0]["deliveries"],
        json!([{"channel": "email", "status": "skipped", "attempts": 0}])
    );
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_and_lands_once_signed_with_the_shown_secret() {
    let app = TestApp::spawn().await;
    let made = app
        .call(
            "POST",
            "/api/me/alerts/webhook-secret",
            As::user("wes"),
            None,
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let secret = made.json()["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    let settings = json!({
        "thresholds": [80, 100],
        "channels": {"email": false, "webhook_url": format!("https://{}/son1k?u=wes", son1k_tests::WEBHOOK_HOST)},
        "pace": false
    });
    assert_eq!(save(&app, "wes", settings).await.status, 200);
    // Nothing reads the secret back.
    assert!(!read(&app, "wes").await.text().contains(&secret));

    app.webhook.fail_next(2);
    let alert = three_generations(&app, "wes").await;
    let id = alert["id"].as_str().expect("id").to_owned();
    app.deliver_alerts().await;
    let delivery = |list: Vec<Value>| list[0]["deliveries"][0].clone();
    assert_eq!(
        delivery(alerts(&app, "wes").await),
        json!({"channel": "webhook", "status": "retrying", "attempts": 1})
    );
    // The retry is due 1 s later by the clock: before that it goes back to the queue untried.
    assert_eq!(app.deliver_retries(5).await, 1);
    assert_eq!(app.webhook.received().len(), 1);
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.deliver_retries(5).await, 1);
    assert_eq!(
        app.webhook.received().len(),
        2,
        "the second attempt, failed too"
    );
    // Then 2 s.
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.deliver_retries(5).await, 1);
    assert_eq!(app.webhook.received().len(), 2, "not due yet");
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.deliver_retries(5).await, 1);
    let received = app.webhook.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200],
        "landed once"
    );
    assert_eq!(
        delivery(alerts(&app, "wes").await),
        json!({"channel": "webhook", "status": "delivered", "attempts": 3})
    );
    assert_eq!(app.deliver_retries(0).await, 0, "nothing left to retry");
    let key = format!("{id}.webhook");
    for r in &received {
        assert_eq!(r.path, "/son1k");
        assert_eq!(r.idempotency_key.as_deref(), Some(key.as_str()));
        // The signature verifies with the secret shown: HMAC-SHA256 over "<t>.<body>".
        let header = r.signature.as_deref().expect("signed");
        let t: i64 = header
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .and_then(|t| t.parse().ok())
            .expect("t=");
        assert_eq!(header, son1k_domain::alerts::signature(&secret, t, &r.body));
        assert_ne!(
            header,
            son1k_domain::alerts::signature("whsec_other", t, &r.body)
        );
    }
    let body: Value = serde_json::from_slice(&received[2].body).expect("json");
    assert_eq!(body["id"], key);
    assert_eq!(body["type"], "usage_alert");
    assert_eq!(body["alert"]["id"], id);
    assert_eq!(body["alert"]["thresholds"], json!([80, 100]));
}

#[tokio::test]
async fn a_delivery_that_fails_for_24_hours_is_dead_lettered() {
    let app = TestApp::spawn().await;
    app.call(
        "POST",
        "/api/me/alerts/webhook-secret",
        As::user("dee"),
        None,
    )
    .await;
    let settings = json!({
        "thresholds": [100],
        "channels": {"email": false, "webhook_url": format!("https://{}/hook", son1k_tests::WEBHOOK_HOST)},
        "pace": false
    });
    assert_eq!(save(&app, "dee", settings).await.status, 200);
    app.webhook.fail_next(u32::MAX);
    let alert = three_generations(&app, "dee").await;
    app.deliver_alerts().await;
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(app.deliver_retries(5).await, 1);
    assert_eq!(
        alerts(&app, "dee").await[0]["deliveries"],
        json!([{"channel": "webhook", "status": "failed", "attempts": 2}])
    );
    let dead_letters = app
        .state
        .alert_delivery
        .as_ref()
        .expect("delivery")
        .queues()
        .1
        .to_owned();
    let dead = app
        .state
        .sqs_client()
        .receive_message()
        .queue_url(dead_letters)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<Value> = dead
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("json"))
        .collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["alert_id"], alert["id"]);
    assert_eq!(bodies[0]["channel"], "webhook");
    assert_eq!(app.deliver_retries(0).await, 0);
}

#[tokio::test]
async fn a_webhook_whose_name_resolves_to_a_private_address_is_refused_at_delivery() {
    let app = TestApp::spawn().await;
    app.call(
        "POST",
        "/api/me/alerts/webhook-secret",
        As::user("pat"),
        None,
    )
    .await;
    // Stored as a name that now resolves to loopback (the settings check refuses it up front; a
    // public name can change its answer later).
    let sink = app.webhook.clone();
    let (_, base) = local_api::webhook_sink::WebhookSink::spawn()
        .await
        .expect("webhook sink");
    let port = base.rsplit(':').next().expect("port").to_owned();
    let mut user = app.new_user("pat");
    user.webhook_secret = app.user_record("pat").await.and_then(|u| u.webhook_secret);
    user.alert_settings = Some(son1k_domain::alerts::AlertSettings {
        thresholds: vec![100],
        channels: son1k_domain::alerts::Channels {
            email: false,
            webhook_url: Some(format!("https://localhost:{port}/hook")),
        },
        pace: false,
    });
    app.put_user(&user).await;
    three_generations(&app, "pat").await;
    app.deliver_alerts().await;
    assert_eq!(
        alerts(&app, "pat").await[0]["deliveries"],
        json!([{"channel": "webhook", "status": "retrying", "attempts": 1}])
    );
    assert!(sink.received().is_empty());
}

/// A stream record in the shape AWS documents
/// (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html) reaches the handler as an alert.
#[tokio::test]
async fn a_documented_stream_record_is_read_as_an_alert() {
    let app = TestApp::spawn().await;
    let event: Value = serde_json::from_str(include_str!("../fixtures/dynamodb-stream-alert.json"))
        .expect("event");
    let parsed: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(event.clone()).expect("the runtime's type reads it");
    let record = parsed.records.into_iter().next().expect("a record");
    let alert: son1k_store::alerts::AlertRecord =
        serde_dynamo::from_item(record.change.new_image).expect("an alert");
    assert_eq!(
        (alert.used, alert.limit, alert.thresholds),
        (3, 3, vec![80, 100])
    );
    // Through the handler: its only delivery is over, so nothing is sent and nothing fails.
    let report = alert_delivery::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .expect("handled");
    assert!(report.batch_item_failures.is_empty());
    assert!(app.webhook.received().is_empty());
}
