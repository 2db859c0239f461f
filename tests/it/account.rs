//! Deleting an account through the local API: `DELETE /api/me` closes it at once, the account
//! worker deletes everything of it but the consent records and payments (kept under a pseudonym),
//! Stripe and Cognito (moto) let it go, and its old token gets nothing anywhere.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use son1k_domain::entitlement::SubscriptionStatus;
use son1k_domain::tiers::Tier;
use son1k_http::routes::ROUTES;
use son1k_tests::{at, As, TestApp, TestResponse};
use std::collections::HashMap;

async fn close(app: &TestApp, user: &str, body: Option<Value>) -> TestResponse {
    app.call(
        "DELETE",
        "/api/me",
        As::user(user),
        body.map(|b| b.to_string()).as_deref(),
    )
    .await
}

async fn receipt(app: &TestApp, id: &str) -> TestResponse {
    app.call(
        "GET",
        &format!("/api/me/deletion?deletion_id={id}"),
        None,
        None,
    )
    .await
}

/// Every item of every table.
async fn everything(app: &TestApp) -> Vec<(String, HashMap<String, AttributeValue>)> {
    let mut out = Vec::new();
    for table in son1k_store::schema::TABLES {
        let name = table.name(&app.state.config.names).to_owned();
        let mut start = None;
        loop {
            let page = app
                .state
                .dynamo()
                .scan()
                .table_name(&name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            out.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|item| (table.logical_id.to_owned(), item)),
            );
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
    }
    out
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The items whose key names `user`.
async fn keyed_by(app: &TestApp, user: &str) -> Vec<String> {
    everything(app)
        .await
        .into_iter()
        .filter(|(_, item)| s(item, "pk").contains(user) || s(item, "sk").contains(user))
        .map(|(table, item)| format!("{table}: {} / {}", s(&item, "pk"), s(&item, "sk")))
        .collect()
}

/// Object versions and delete markers under `prefix`.
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

/// A user of the app's Cognito pool (moto): their `sub`, which is also their user name.
async fn cognito_user(app: &TestApp, email: &str) -> String {
    let cognito = app.state.cognito_client();
    let pools = cognito
        .list_user_pools()
        .max_results(60)
        .send()
        .await
        .expect("pools");
    let prefix = app
        .state
        .config
        .names
        .audio_bucket
        .trim_end_matches("-audio")
        .to_owned();
    let pool = pools
        .user_pools()
        .iter()
        .find(|p| p.name() == Some(&format!("{prefix}-accounts")))
        .and_then(|p| p.id())
        .expect("the app's pool")
        .to_owned();
    let user = cognito
        .admin_create_user()
        .user_pool_id(&pool)
        .username(email)
        .send()
        .await
        .expect("create the Cognito user");
    user.user()
        .and_then(|u| u.username())
        .expect("user name")
        .to_owned()
}

async fn cognito_has(app: &TestApp, username: &str) -> bool {
    let cognito = app.state.cognito_client();
    let pools = cognito
        .list_user_pools()
        .max_results(60)
        .send()
        .await
        .expect("pools");
    for pool in pools.user_pools() {
        let found = cognito
            .admin_get_user()
            .user_pool_id(pool.id().unwrap_or_default())
            .username(username)
            .send()
            .await;
        if found.is_ok() {
            return true;
        }
    }
    false
}

/// A user with data of every kind: a Cognito user (their id), a claim and a like of another user's
/// pool item, a pool item of their own liked by that user, a draft, a chat with Pixel, alert
/// settings, a voice with its consent recording, a Stripe customer with a subscription and two cards.
pub(crate) struct Rich {
    pub id: String,
    pub theirs: String,
    pub mine: String,
    pub draft: String,
    pub voice: Value,
}

pub(crate) async fn rich_user(app: &TestApp) -> Rich {
    let leaver = cognito_user(app, "leaver@example.com").await;
    let me = leaver.as_str();

    // Alerts at half the allowance; two of the day's three generations make one.
    let settings = app
        .call(
            "PUT",
            "/api/me/alerts/settings",
            As::user(me),
            Some(
                &json!({"thresholds": [50], "channels": {"email": true}, "pace": false})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(settings.status, 200, "{}", settings.text());
    for id in ["free-1", "free-2"] {
        let res = app.record(me, json!({ "generation_id": id })).await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    // Someone else's track: the leaver, still FREE, claims and likes it.
    let theirs = app.listed_contribution("other", b"their track").await;
    let claimed = app
        .call(
            "POST",
            "/api/community/pool/claim",
            As::user(me),
            Some(&json!({ "contribution_id": theirs }).to_string()),
        )
        .await;
    assert!(claimed.status < 300, "{}", claimed.text());
    let like = |who: &str, id: &str| {
        let (who, id) = (who.to_owned(), id.to_owned());
        let app = &app;
        async move {
            let res = app
                .call(
                    "POST",
                    &format!("/api/community/pool/like/{id}"),
                    As::user(&who),
                    None,
                )
                .await;
            assert!(res.status < 300, "{}", res.text());
        }
    };
    like(me, &theirs).await;
    // The leaver's own track in the pool, liked by the other user.
    app.grant(me, Tier::Pro).await;
    let mine = app.listed_contribution(me, b"my own track").await;
    like("other", &mine).await;
    // Lyrics, a chat with Pixel, alert settings, a voice with its consent recording.
    let draft = crate::lyrics::write(app, me, json!({"theme": "leaving"})).await;
    assert_eq!(draft.status, 201, "{}", draft.text());
    let draft = draft.json()["lyrics_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(crate::pixel::chat(app, me, "hello", None).await.status, 200);
    let voice = app
        .call(
            "POST",
            "/api/voices",
            As::user(me),
            Some(&json!({"name": "Mine"}).to_string()),
        )
        .await;
    assert_eq!(voice.status, 201, "{}", voice.text());
    let voice = voice.json();
    let consent = son1k_tests::put_to_voice_link(
        &voice["uploads"]["consent"],
        local_api::provider_stub::wav("consent", 4),
    )
    .await;
    app.object_created(&consent).await;
    // A Stripe customer with a subscription and two cards.
    let mut record = app.user_record(me).await.expect("user");
    record.stripe_customer_id = Some("cus_leaver".into());
    record.subscription = Some(son1k_tests::subscription(
        SubscriptionStatus::Active,
        son1k_tests::stripe::PRICE_PRO,
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    ));
    app.put_user(&record).await;
    app.stripe
        .put_subscription(local_api::stripe_stub::StubSubscription {
            id: "sub_test".into(),
            customer: "cus_leaver".into(),
            user: Some(me.to_owned()),
            price: son1k_tests::stripe::PRICE_PRO.into(),
            status: "active".into(),
            start: at("2026-11-01T00:00:00Z"),
            end: at("2026-12-01T00:00:00Z"),
        });
    app.stripe.attach_payment_method("cus_leaver");
    app.stripe.attach_payment_method("cus_leaver");
    assert!(!keyed_by(app, me).await.is_empty());
    assert!(versions(app, &format!("audio/{me}/")).await > 0);

    Rich {
        id: leaver,
        theirs,
        mine,
        draft,
        voice,
    }
}

#[tokio::test]
async fn a_deleted_account_leaves_only_what_is_kept_and_its_token_gets_nothing() {
    let app = TestApp::spawn().await.with_account_worker().await;
    let Rich {
        id: leaver,
        theirs,
        mine,
        draft,
        voice,
    } = rich_user(&app).await;
    let me = leaver.as_str();
    assert!(!keyed_by(&app, me).await.is_empty());
    assert!(versions(&app, &format!("audio/{me}/")).await > 0);

    let closed = close(&app, me, Some(json!({"confirm": "DELETE"}))).await;
    assert_eq!(closed.status, 202, "{}", closed.text());
    let deletion = closed.json()["deletion_id"]
        .as_str()
        .expect("deletion id")
        .to_owned();
    assert_eq!(closed.json()["status"], "running");
    assert_eq!(app.run_account_jobs().await, 1);

    let done = receipt(&app, &deletion).await;
    assert_eq!(done.status, 200, "{}", done.text());
    let done = done.json();
    assert_eq!(done["status"], "completed");
    for (category, at_least) in [
        ("pool_contributions", 1),
        ("likes", 1),
        ("claims", 1),
        ("ranking_rows", 1),
        ("generations", 1),
        ("lyrics", 1),
        ("lyrics_versions", 1),
        ("pixel_memory", 1),
        ("alerts", 1),
        ("analytics_events", 1),
        ("voices", 1),
        ("audio_objects", 1),
        ("voice_recordings", 1),
        ("stripe_subscription_cancelled", 1),
        ("stripe_payment_methods", 2),
        ("cognito_user", 1),
    ] {
        assert!(
            done["deleted"][category].as_u64().unwrap_or(0) >= at_least,
            "{category}: {done}"
        );
    }
    let pseudonym = done["pseudonym"].as_str().expect("pseudonym").to_owned();
    assert_eq!(
        done["kept"],
        json!([{"category": "consent_records", "items": 1,
                "reason": "proof that each cloned voice was made with its speaker's consent"}])
    );

    // Nothing keyed by the user in any table; the consent record is kept under the pseudonym.
    assert_eq!(keyed_by(&app, me).await, Vec::<String>::new());
    let kept = app
        .items(
            &app.state.config.names.users_table,
            &format!("ANON#{pseudonym}"),
        )
        .await;
    assert_eq!(kept.len(), 1);
    assert!(s(&kept[0], "sk").starts_with("CONSENT#"));
    assert!(kept[0].values().all(|v| v.as_s().map_or(true, |v| v != me)));
    // No attribute anywhere holds the user's id or email but the audit log's record of what an
    // admin did to them.
    for (table, item) in everything(&app).await {
        if table == "AuditTable" {
            continue;
        }
        for value in item.values() {
            let text = value.as_s().map(String::as_str).unwrap_or_default();
            assert!(
                text != me && !text.contains("leaver@example.com"),
                "{table}: {item:?}"
            );
        }
    }
    // No object version under the user's prefixes.
    for prefix in ["audio", "voices", "voice-models", "exports"] {
        assert_eq!(
            versions(&app, &format!("{prefix}/{me}/")).await,
            0,
            "{prefix}"
        );
    }
    // The pool and the ranking no longer show them; the like they gave is taken back.
    let pool = app
        .call("GET", "/api/community/pool", As::user("other"), None)
        .await
        .json();
    let listed: Vec<&Value> = pool["items"].as_array().into_iter().flatten().collect();
    assert!(listed.iter().all(|i| i["id"] != mine.as_str()));
    let their_item = listed
        .iter()
        .find(|i| i["id"] == theirs.as_str())
        .unwrap_or_else(|| panic!("their item is still listed: {pool}"));
    assert_eq!(their_item["likes"], 0);
    for period in ["week", "month", "all_time"] {
        let ranking = app
            .call(
                "GET",
                &format!("/api/community/ranking?period={period}"),
                None,
                None,
            )
            .await
            .json();
        assert!(!ranking.to_string().contains(me), "{period}: {ranking}");
    }
    // Stripe let the customer go; Cognito has no such user.
    let sub = app
        .stripe
        .subscriptions()
        .into_iter()
        .find(|s| s.id == "sub_test")
        .expect("subscription");
    assert_eq!(sub.status, "canceled");
    assert_eq!(
        app.stripe.payment_methods_of("cus_leaver"),
        Vec::<String>::new()
    );
    assert!(!cognito_has(&app, me).await);

    // The old token: the user's own things are gone, and no route answers anything else or makes
    // a new account.
    for path in [
        format!("/api/generations/{me}-shared/audio"),
        format!("/api/lyrics/{draft}"),
        format!(
            "/api/voices/{}",
            voice["voice_id"].as_str().unwrap_or_default()
        ),
        "/api/tiers/limits/me".to_owned(),
    ] {
        let res = app.call("GET", &path, As::user(me), None).await;
        assert!(matches!(res.status, 401 | 404), "{path}: {}", res.status);
    }
    for route in ROUTES.iter().filter(|r| {
        // Admin routes are for admins (403 to anyone else); asking for the deletion again answers
        // its receipt.
        let admin = r.path.starts_with("/api/admin/") || r.path == "/api/analytics/summary";
        let closing = r.method == "DELETE" && r.path == "/api/me";
        !(r.public || admin || closing)
    }) {
        let res =
            crate::dependency_faults::past_validation_as(&app, route.method, route.path, me).await;
        assert!(
            matches!(res.status, 401 | 404),
            "{} {}: {} {}",
            route.method,
            route.path,
            res.status,
            res.text()
        );
    }
    assert_eq!(
        keyed_by(&app, me).await,
        Vec::<String>::new(),
        "no new account"
    );
    // Asking again answers the same deletion.
    let again = close(&app, me, Some(json!({"confirm": "DELETE"}))).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["deletion_id"], deletion.as_str());
    assert_eq!(again.json()["status"], "completed");
}

#[tokio::test]
async fn deleting_needs_the_confirmation_and_parallel_requests_make_one_deletion() {
    let app = TestApp::spawn().await.with_account_worker().await;
    app.put_user(&app.new_user("quitter")).await;
    for body in [None, Some(json!({})), Some(json!({"confirm": "delete"}))] {
        close(&app, "quitter", body)
            .await
            .assert_problem(400, "invalid_request");
    }
    assert!(app.user_record("quitter").await.is_some(), "nothing closed");
    let calls = (0..8).map(|_| close(&app, "quitter", Some(json!({"confirm": "DELETE"}))));
    let answers = futures::future::join_all(calls).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|res| {
            assert_eq!(res.status, 202, "{}", res.text());
            res.json()["deletion_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one deletion: {ids:?}");
    assert!(app.run_account_jobs().await >= 1);
    let id = ids.into_iter().next().unwrap_or_default();
    assert_eq!(receipt(&app, &id).await.json()["status"], "completed");
    assert_eq!(app.user_record("quitter").await, None);
}

#[tokio::test]
async fn an_account_on_legal_hold_is_not_deleted_until_the_hold_is_lifted() {
    let app = TestApp::spawn().await.with_account_worker().await;
    app.put_user(&app.new_user("held")).await;
    let hold = |on: bool| {
        let app = &app;
        async move {
            let res = app
                .call(
                    "PUT",
                    "/api/admin/users/held/hold",
                    As::admin("ops"),
                    Some(&json!({"hold": on, "reason": "case 7"}).to_string()),
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
        }
    };
    hold(true).await;
    close(&app, "held", Some(json!({"confirm": "DELETE"})))
        .await
        .assert_problem(409, "legal_hold");
    assert_eq!(app.run_account_jobs().await, 0);
    assert!(app.user_record("held").await.is_some());
    assert_eq!(
        app.limits("held").await["tier"],
        "FREE",
        "the account still works"
    );
    hold(false).await;
    let closed = close(&app, "held", Some(json!({"confirm": "DELETE"}))).await;
    assert_eq!(closed.status, 202, "{}", closed.text());
}

#[tokio::test]
async fn a_receipt_answers_by_its_id_for_thirty_days() {
    let app = TestApp::spawn().await.with_account_worker().await;
    app.put_user(&app.new_user("brief")).await;
    let closed = close(&app, "brief", Some(json!({"confirm": "DELETE"}))).await;
    let id = closed.json()["deletion_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.run_account_jobs().await;
    assert_eq!(receipt(&app, &id).await.status, 200);
    let later = app.with_clock_at(at("2026-12-26T09:59:59Z"));
    assert_eq!(
        receipt(&later, &id).await.status,
        200,
        "29 days, 23:59:59 later"
    );
    let expired = app.with_clock_at(at("2026-12-26T10:00:00Z"));
    receipt(&expired, &id)
        .await
        .assert_problem(404, "not_found");
    receipt(&app, "01JD0000000000000000000000")
        .await
        .assert_problem(404, "not_found");
    receipt(&app, "not-an-id")
        .await
        .assert_problem(400, "invalid_request");
}

async fn export(app: &TestApp, user: &str) -> TestResponse {
    app.call("POST", "/api/me/exports", As::user(user), None)
        .await
}

/// The entries of a ZIP: name → bytes.
fn unzip(bytes: Vec<u8>) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    let mut out = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read entry");
        let name = entry.name().expect("entry name").into_owned();
        out.insert(name, data);
    }
    out
}

#[tokio::test]
async fn an_export_lists_every_category_and_holds_the_audio_exactly() {
    let app = TestApp::spawn().await.with_account_worker().await;
    let audio = b"ID3 my very own track, byte for byte".to_vec();
    let contribution = app.listed_contribution("exporter", &audio).await;
    let draft = crate::lyrics::write(&app, "exporter", json!({"theme": "home"})).await;
    assert_eq!(draft.status, 201, "{}", draft.text());

    let started = export(&app, "exporter").await;
    assert_eq!(started.status, 202, "{}", started.text());
    let id = started.json()["export_id"].as_str().expect("id").to_owned();
    assert_eq!(started.json()["status"], "running");
    export(&app, "exporter")
        .await
        .assert_problem(409, "export_in_progress");
    let path = format!("/api/me/exports/{id}");
    let running = app.call("GET", &path, As::user("exporter"), None).await;
    assert_eq!(running.json()["status"], "running");
    assert_eq!(running.json().get("download_url"), None);

    assert_eq!(app.run_account_jobs().await, 1);
    let ready = app.call("GET", &path, As::user("exporter"), None).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let ready = ready.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["download_url_expires_at"], "2026-11-26T10:15:00Z");
    assert_eq!(ready["expires_at"], "2026-12-03T10:00:00Z");
    let zip = reqwest::get(ready["download_url"].as_str().expect("link"))
        .await
        .expect("download")
        .error_for_status()
        .expect("200")
        .bytes()
        .await
        .expect("bytes")
        .to_vec();
    assert_eq!(ready["bytes"], zip.len());
    let files = unzip(zip);
    let manifest: Value =
        serde_json::from_slice(files.get("manifest.json").expect("manifest")).expect("json");
    let categories: Vec<&str> = manifest["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["category"].as_str())
        .collect();
    assert_eq!(categories, son1k_domain::account::EXPORT_CATEGORIES);
    for category in manifest["categories"].as_array().into_iter().flatten() {
        let file = category["file"].as_str().expect("file");
        assert!(files.contains_key(file), "{file} is in the ZIP");
    }
    let count = |name: &str| {
        manifest["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["category"] == name)
            .map(|c| c["items"].clone())
    };
    assert_eq!(count("audio"), Some(json!(1)));
    assert_eq!(count("pool_contributions"), Some(json!(1)));
    assert_eq!(count("lyrics"), Some(json!(1)));
    assert_eq!(
        count("voices"),
        Some(json!(0)),
        "an empty category is listed"
    );
    // The audio exactly as stored.
    let listed: Value = serde_json::from_slice(&files["audio.json"]).expect("json");
    let name = listed[0]["file"].as_str().expect("file");
    assert_eq!(files.get(name), Some(&audio));
    let contributions: Value =
        serde_json::from_slice(&files["pool_contributions.json"]).expect("json");
    assert_eq!(contributions[0]["contribution_id"], contribution.as_str());
    let profile: Value = serde_json::from_slice(&files["profile.json"]).expect("json");
    assert_eq!(profile["email"], "exporter@example.com");
    assert_eq!(
        versions(&app, "exports/exporter/").await,
        1,
        "one ZIP under the user's exports"
    );

    // Another within 24 h: 429 with the seconds left; a day later it may.
    let later = app.with_clock_at(at("2026-11-27T09:59:00Z"));
    let refused = export(&later, "exporter").await;
    refused.assert_problem(429, "export_limit_reached");
    assert_eq!(refused.header("retry-after"), Some("60"));
    let next_day = app.with_clock_at(at("2026-11-27T10:00:00Z"));
    assert_eq!(export(&next_day, "exporter").await.status, 202);
    // After 7 days the first one is gone.
    let week_later = app.with_clock_at(at("2026-12-03T10:00:00Z"));
    week_later
        .call("GET", &path, As::user("exporter"), None)
        .await
        .assert_problem(404, "not_found");
    // Nobody else reaches it.
    app.call("GET", &path, As::user("stranger"), None)
        .await
        .assert_problem(404, "not_found");
}
