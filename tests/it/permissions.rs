//! Every DynamoDB action a function performs is granted by its policy in `template.yaml`, on that
//! table: the functions are exercised through their main paths with an access recorder attached.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use serde_norway::Value;
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_tests::access::{Access, AccessRecorder, S3AccessRecorder};
use son1k_tests::{iam, template};
use son1k_tests::{As, TestApp};
use std::collections::BTreeSet;

fn strings(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// (action, table logical id) pairs the function's inline policy statements allow.
fn granted(logical_id: &str) -> BTreeSet<(String, String)> {
    let t = template();
    let mut out = BTreeSet::new();
    for policy in strings(&t["Resources"][logical_id]["Properties"]["Policies"]) {
        for statement in strings(&policy["Statement"]) {
            // `!If [condition, statement, !Ref AWS::NoValue]`: the statement when it holds.
            let statement = match &statement {
                Value::Tagged(tagged) if tagged.tag == "If" => tagged.value[1].clone(),
                _ => statement,
            };
            assert_eq!(
                statement["Effect"], "Allow",
                "{logical_id}: only Allow statements are expected"
            );
            for resource in strings(&statement["Resource"]) {
                let Value::Tagged(tagged) = &resource else {
                    continue;
                };
                // `!GetAtt Table.Arn`, or `!Sub "${Table.Arn}/index/name"` for an index.
                let Some(target) = tagged
                    .value
                    .as_str()
                    .filter(|s| s.contains("Table"))
                    .and_then(|s| {
                        let s = s.strip_prefix("${").map(|s| s.replacen(".Arn}", "", 1));
                        s.or_else(|| {
                            tagged
                                .value
                                .as_str()
                                .and_then(|s| s.strip_suffix(".Arn"))
                                .map(str::to_owned)
                        })
                    })
                else {
                    continue;
                };
                for action in strings(&statement["Action"]) {
                    out.insert((
                        action.as_str().expect("action").to_owned(),
                        target.to_owned(),
                    ));
                }
            }
        }
    }
    out
}

fn logical(app: &TestApp, accesses: BTreeSet<Access>) -> BTreeSet<(String, String)> {
    let c = &app.state.config;
    accesses
        .into_iter()
        .map(|(action, resource)| {
            let (table, index) = match resource.split_once("/index/") {
                Some((table, index)) => (table.to_owned(), format!("/index/{index}")),
                None => (resource, String::new()),
            };
            let id = match table.as_str() {
                t if t == c.names.users_table => "UsersTable",
                t if t == c.names.stats_table => "StatsTable",
                t if t == c.names.pool_table => "PoolTable",
                t if t == c.names.alerts_table => "AlertsTable",
                t if t == c.names.audit_table => "AuditTable",
                other => panic!("unknown table {other}"),
            };
            (action, format!("{id}{index}"))
        })
        .collect()
}

#[test]
fn no_function_may_change_or_delete_an_audit_entry_and_only_admin_routes_append() {
    let t = template();
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("resources");
    };
    let mut writers = BTreeSet::new();
    for (name, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let name = name.as_str().expect("name");
        let on_audit: BTreeSet<String> = granted(name)
            .into_iter()
            .filter(|(_, table)| table == "AuditTable")
            .map(|(action, _)| action)
            .collect();
        for action in &on_audit {
            assert!(
                [
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem"
                ]
                .contains(&action.as_str()),
                "{name} may {action} on the audit log"
            );
        }
        if on_audit.contains("dynamodb:PutItem") {
            writers.insert(name.to_owned());
        }
    }
    assert_eq!(
        writers,
        [
            "AdminTier",
            "AudioGet",
            "Credits",
            "GenerationStatus",
            "LyricsGet",
            "TiersLimits",
            "Voices"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
    );
}

/// Least privilege both ways: nothing used is missing from the policy, nothing granted goes unused.
fn assert_granted(function: &str, used: &BTreeSet<(String, String)>) {
    let allowed = granted(function);
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "{function} performs {missing:?} but its policy does not grant it"
    );
    let unused: Vec<_> = allowed.difference(used).collect();
    assert!(
        unused.is_empty(),
        "{function} is granted {unused:?} but never uses it"
    );
}

#[tokio::test]
async fn each_function_is_granted_exactly_what_it_uses() {
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    app.intercept(recorder.clone());
    let admin = || As::admin("ops");

    app.call("GET", "/api/tiers/limits/me", As::user("newbie"), None)
        .await;
    app.call("GET", "/api/tiers/limits/newbie", admin(), None)
        .await;
    let limits = logical(&app, recorder.take());
    assert_granted("TiersLimits", &limits);

    app.about_to_contribute("pro").await;
    recorder.take();
    // a1 again once the day is spent: the refusal yields to the stored answer (a read of it).
    for id in ["a1", "a2", "a3", "a1"] {
        app.record("first-timer", json!({"generation_id": id}))
            .await;
    }
    app.record("pro", json!({"generation_id": "p20", "quality": "ultra"}))
        .await;
    app.record("pro", json!({"generation_id": "p20"})).await;
    app.record("thief", json!({"generation_id": "p20"})).await;
    let record = logical(&app, recorder.take());
    assert_granted("RecordGeneration", &record);
    assert!(
        record.contains(&("dynamodb:UpdateItem".to_owned(), "PoolTable".to_owned())),
        "the contribution path ran"
    );

    app.call(
        "PUT",
        "/api/admin/users/pro/tier",
        admin(),
        Some(r#"{"tier":"CREATOR"}"#),
    )
    .await;
    app.call(
        "PUT",
        "/api/admin/users/ghost/tier",
        admin(),
        Some(r#"{"tier":"CREATOR"}"#),
    )
    .await;
    for hold in [true, false] {
        let res = app
            .call(
                "PUT",
                "/api/admin/users/pro/hold",
                admin(),
                Some(&json!({"hold": hold, "reason": "case"}).to_string()),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    assert_granted("AdminTier", &logical(&app, recorder.take()));

    for path in ["/api/admin/audit", "/api/admin/audit/verify"] {
        let res = app.call("GET", path, admin(), None).await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    assert_granted("AdminAudit", &logical(&app, recorder.take()));

    billing_paths(&app).await;
    assert_granted("Checkout", &logical(&app, recorder.take()));
    app.call("POST", "/api/tiers/portal", As::user("buyer"), None)
        .await;
    app.call("POST", "/api/tiers/portal", As::user("ghost"), None)
        .await;
    assert_granted("Portal", &logical(&app, recorder.take()));
    webhook_paths(&app, &recorder).await;
    assert_granted("StripeWebhook", &logical(&app, recorder.take()));

    app.call("GET", "/api/community/ranking?timeframe=month", None, None)
        .await;
    assert_granted("Ranking", &logical(&app, recorder.take()));

    app.call(
        "GET",
        "/api/analytics/summary?from=2026-11-01&to=2026-11-30",
        admin(),
        None,
    )
    .await;
    app.call(
        "GET",
        "/api/analytics/summary?from=2026-11-01&to=2026-11-30",
        As::user("curious"),
        None,
    )
    .await;
    assert_granted("AnalyticsSummary", &logical(&app, recorder.take()));

    for route in ["/health", "/api/tiers", "/api/credits/packs"] {
        app.call("GET", route, None, None).await;
    }
    assert!(
        recorder.take().is_empty(),
        "public read-only routes touch no table"
    );

    app.stripe_user(
        "lapsed",
        Tier::Pro,
        son1k_tests::subscription(
            son1k_domain::entitlement::SubscriptionStatus::Canceled,
            "price_pro_monthly",
            "2026-09-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
        ),
    )
    .await;
    for table in [
        &app.state.config.names.stats_table,
        &app.state.config.names.pool_table,
    ] {
        app.state
            .dynamo()
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S("EXPIRED#1".into()))
            .item("sk", AttributeValue::S("X".into()))
            .item("expires_at", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("put");
    }
    // Two uploads whose S3 events were lost, for the next day's reconciliation: a pool
    // contribution's audio (accounted and listed), and one larger than presigned (deleted).
    app.about_to_contribute("keeper").await;
    for (id, bytes) in [
        ("kept-1", b"1234".to_vec()),
        ("kept-2", b"123456789".to_vec()),
    ] {
        app.record("keeper", json!({"generation_id": id})).await;
        let body = json!({"content_type": "audio/mpeg", "size_bytes": 4}).to_string();
        let link = app
            .call(
                "POST",
                &format!("/api/generations/{id}/upload-url"),
                As::user("keeper"),
                Some(&body),
            )
            .await
            .json();
        son1k_tests::put_to_link(&link, "audio/mpeg", bytes)
            .await
            .error_for_status()
            .expect("PUT");
    }
    app.clock.advance(chrono::Duration::days(1));
    let s3 = S3AccessRecorder::default();
    app.intercept_s3(s3.clone());
    recorder.take();
    let report = scheduled_reset::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(json!({"kind": "daily"}), Default::default()),
    )
    .await
    .expect("reset");
    let uploads = report.uploads.expect("uploads reconciled");
    assert_eq!((uploads.stored, uploads.rejected), (1, 1), "{uploads:?}");
    assert_granted("ScheduledReset", &logical(&app, recorder.take()));
    assert_s3_granted("ScheduledReset", &s3.take());
}

/// Checkout's paths: a first-time user (created, customer stored), then a returning one.
async fn billing_paths(app: &TestApp) {
    for _ in 0..2 {
        let res = app
            .call(
                "POST",
                "/api/tiers/checkout",
                As::user("buyer"),
                Some(r#"{"tier":"PRO"}"#),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let res = app
        .call(
            "POST",
            "/api/credits/checkout",
            As::user("packer"),
            Some(r#"{"pack":"pack_10"}"#),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

/// The webhook's paths: a user named by metadata, one found by customer, a checkout linking a
/// customer, a duplicate and a stale event, a pack paid and refunded, a refund before its pack.
async fn webhook_paths(app: &TestApp, recorder: &AccessRecorder) {
    use son1k_tests::stripe::{charge_refunded, checkout_completed, PackEvent, SubEvent};
    app.user_with_tier("hooked", Tier::Free, TierSource::Default)
        .await;
    app.user_with_tier("linkme", Tier::Free, TierSource::Default)
        .await;
    recorder.take();
    let by_metadata = SubEvent::new("hooked");
    let by_customer = SubEvent {
        user: None,
        customer: "cus_hooked".into(),
        created: "2026-11-26T10:00:01Z".into(),
        ..SubEvent::new("hooked")
    };
    let now = son1k_tests::at(son1k_tests::DEFAULT_NOW);
    for event in [
        by_metadata.json(),
        by_metadata.json(),
        by_customer.json(),
        checkout_completed("evt_link", Some("linkme"), "cus_linkme", now),
        // A pack paid, then refunded; a refund before its purchase.
        PackEvent::new("hooked", "cs_hooked", now).json(),
        charge_refunded("evt_refund", "cus_hooked", "pi_cs_hooked", now),
        charge_refunded("evt_early", "cus_hooked", "pi_later", now),
    ] {
        assert_eq!(app.webhook(&event).await.status, 200);
    }
}

#[test]
fn policies_name_only_the_projects_own_tables() {
    let t = template();
    for (id, resource) in t["Resources"].as_mapping().expect("resources") {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let id = id.as_str().expect("id");
        for (action, target) in granted(id) {
            assert!(
                action.starts_with("dynamodb:") && !action.contains('*'),
                "{id}: {action} is not a single action"
            );
            let table = target.split("/index/").next().unwrap_or_default();
            assert!(
                [
                    "UsersTable",
                    "StatsTable",
                    "PoolTable",
                    "AlertsTable",
                    "AuditTable"
                ]
                .contains(&table),
                "{id}: {target}"
            );
        }
    }
}

/// Least privilege on the audio bucket: what the function's S3 calls need by `iam::RULES` (a
/// HeadObject also needs `s3:ListBucket` on the key's prefix, or a missing key answers 403) is
/// exactly what its policy grants.
fn assert_s3_granted(function: &str, calls: &BTreeSet<Access>) {
    assert_eq!(
        iam::s3_grants(function),
        iam::s3_needs(calls),
        "{function}: S3 granted (left) vs needed by its calls {calls:?} (right)"
    );
}

/// The audio functions, DynamoDB and S3 both: a presigned link counts as the action it lets its
/// holder do, since it carries the function's rights.
#[tokio::test]
async fn audio_functions_are_granted_exactly_what_they_use_in_dynamodb_and_s3() {
    let (recorder, s3) = (AccessRecorder::default(), S3AccessRecorder::default());
    let mut app = TestApp::spawn().await;
    // A paid user's 20th generation: its pool item is listed once its audio is stored.
    app.about_to_contribute("maker").await;
    let res = app
        .record("maker", json!({"generation_id": "take-1"}))
        .await;
    assert!(res.json()["pool_contribution"].is_object());
    app.record("maker", json!({"generation_id": "take-2"}))
        .await;
    app.intercept(recorder.clone());
    app.intercept_s3(s3.clone());
    let mut links = Vec::new();
    for (id, size) in [("take-1", 4), ("take-2", 4)] {
        let body = json!({"content_type": "audio/mpeg", "size_bytes": size}).to_string();
        let res = app
            .call(
                "POST",
                &format!("/api/generations/{id}/upload-url"),
                As::user("maker"),
                Some(&body),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        links.push(res.json());
    }
    for link in &links {
        s3.presigned("PUT", link["upload_url"].as_str().expect("url"));
    }
    assert_granted("UploadUrl", &logical(&app, recorder.take()));
    assert_s3_granted("UploadUrl", &s3.take());

    // The owner 2 bytes short of 80 % of its storage: take-1's 4 bytes cross it (an alert, written
    // with the accounting).
    let mut owner = app.user_record("maker").await.expect("maker");
    let limit = owner.tier.spec().storage_bytes.expect("a limited tier");
    owner.storage_used_bytes = son1k_domain::alerts::boundary(80, limit) - 2;
    app.put_user(&owner).await;
    recorder.take();
    // take-1 as presigned, take-2 larger than presigned (deleted).
    for (link, bytes) in links.iter().zip([b"1234".to_vec(), b"123456789".to_vec()]) {
        son1k_tests::put_to_link(link, "audio/mpeg", bytes)
            .await
            .error_for_status()
            .expect("PUT");
    }
    // Before its event is accounted, the owner is served the upload (one HeadObject finds it).
    let early = app
        .call(
            "GET",
            "/api/generations/take-1/audio",
            As::user("maker"),
            None,
        )
        .await;
    assert_eq!(early.status, 302, "{}", early.text());
    s3.presigned("GET", early.header("location").expect("location"));
    let mut audio_get = (logical(&app, recorder.take()), s3.take());
    let keys: Vec<String> = links.iter().map(son1k_tests::link_key).collect();
    let event = storage_events::event_for(&app.state.config.names.audio_bucket, &keys);
    let report = storage_events::handler(
        &app.state,
        lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await
    .expect("storage events");
    assert_eq!((report.stored, report.rejected), (1, 1));
    let used = logical(&app, recorder.take());
    let alerts = app
        .call("GET", "/api/me/alerts", As::user("maker"), None)
        .await
        .json();
    assert_eq!(alerts["items"][0]["quota"], "storage", "{alerts}");
    assert_eq!(alerts["items"][0]["thresholds"], json!([80]));
    recorder.take();
    let (mut used, mut storage_s3) = (used, s3.take());
    // Voice recordings arrive under voices/: a consent recording (its header and its hash read,
    // counted with its consent record) and a sample that is no audio (deleted, the voice failed).
    app.user_with_tier("singer", Tier::Pro, TierSource::Admin)
        .await;
    let voice = app
        .call(
            "POST",
            "/api/voices",
            As::user("singer"),
            Some(r#"{"name": "v"}"#),
        )
        .await
        .json();
    let consent = son1k_tests::put_to_voice_link(
        &voice["uploads"]["consent"],
        local_api::provider_stub::wav("consent", 4),
    )
    .await;
    let sample =
        son1k_tests::put_to_voice_link(&voice["uploads"]["samples"][0], b"no audio".to_vec()).await;
    recorder.take();
    s3.take();
    assert_eq!(app.object_created(&consent).await.stored, 1);
    assert_eq!(app.object_created(&sample).await.rejected, 1);
    used.extend(logical(&app, recorder.take()));
    storage_s3.extend(s3.take());
    assert_granted("StorageEvents", &used);
    assert_s3_granted("StorageEvents", &storage_s3);

    let res = app
        .call(
            "GET",
            "/api/generations/take-1/audio",
            As::user("maker"),
            None,
        )
        .await;
    assert_eq!(res.status, 302);
    s3.presigned("GET", res.header("location").expect("location"));
    // Someone else: allowed only with a claim of the item, which is looked up.
    let stranger = app
        .call(
            "GET",
            "/api/generations/take-1/audio",
            As::user("stranger"),
            None,
        )
        .await;
    assert_eq!(stranger.status, 404);
    // An admin: the read is written to the audit log first.
    let admin = app
        .call(
            "GET",
            "/api/generations/take-1/audio",
            As::admin("root"),
            None,
        )
        .await;
    assert_eq!(admin.status, 302);
    s3.presigned("GET", admin.header("location").expect("location"));
    audio_get.0.extend(logical(&app, recorder.take()));
    audio_get.1.extend(s3.take());
    assert_granted("AudioGet", &audio_get.0);
    assert_s3_granted("AudioGet", &audio_get.1);
}

#[tokio::test]
async fn pool_functions_are_granted_exactly_what_they_use() {
    let (recorder, s3) = (AccessRecorder::default(), S3AccessRecorder::default());
    let mut app = TestApp::spawn().await;
    let id = app.listed_contribution("maker", b"abc").await;
    app.intercept(recorder.clone());
    app.intercept_s3(s3.clone());
    let unknown = ulid::Ulid::generate().to_string();
    for (method, item) in [
        ("POST", &id),
        ("POST", &id),
        ("DELETE", &id),
        ("DELETE", &id),
        ("POST", &unknown),
    ] {
        app.call(
            method,
            &format!("/api/community/pool/like/{item}"),
            As::user("fan"),
            None,
        )
        .await;
    }
    assert_granted("PoolLike", &logical(&app, recorder.take()));
    assert_s3_granted("PoolLike", &s3.take());
    // A listener's first request ever (their user item is made), a replay within the hour, and
    // an unknown item.
    for (who, item) in [
        ("listener", &id),
        ("fan", &id),
        ("fan", &id),
        ("fan", &unknown),
    ] {
        let res = app
            .call(
                "POST",
                &format!("/api/community/pool/{item}/play"),
                As::user(who),
                None,
            )
            .await;
        if res.status == 200 {
            s3.presigned("GET", res.json()["audio_url"].as_str().expect("url"));
        }
    }
    assert_granted("PoolPlay", &logical(&app, recorder.take()));
    assert_s3_granted("PoolPlay", &s3.take());

    app.record("maker", json!({"generation_id": "by-hand"}))
        .await;
    recorder.take();
    for (user, generation) in [
        ("maker", "by-hand"),
        ("maker", "by-hand"),
        ("newcomer", "x"),
    ] {
        let body = json!({ "generation_id": generation }).to_string();
        app.call(
            "POST",
            "/api/community/contribute",
            As::user(user),
            Some(&body),
        )
        .await;
    }
    assert_granted("PoolContribute", &logical(&app, recorder.take()));

    for sort in ["recent", "popular", "quality"] {
        for genre in ["", "&genre=house"] {
            let res = app
                .call(
                    "GET",
                    &format!("/api/community/pool?sort={sort}{genre}"),
                    None,
                    None,
                )
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
        }
    }
    assert_granted("PoolList", &logical(&app, recorder.take()));

    // A claim of a named item, a random one, one claimed before, and one by a paid user.
    let second = app.listed_contribution("maker2", b"def").await;
    recorder.take();
    s3.take();
    for (user, body) in [
        ("claimer", json!({ "contribution_id": id }).to_string()),
        ("claimer", String::new()),
        ("claimer", json!({ "contribution_id": second }).to_string()),
        ("maker", String::new()),
    ] {
        let res = app
            .call(
                "POST",
                "/api/community/pool/claim",
                As::user(user),
                Some(&body),
            )
            .await;
        if res.status == 201 {
            s3.presigned("GET", res.json()["audio_url"].as_str().expect("url"));
        }
    }
    assert_granted("PoolClaim", &logical(&app, recorder.take()));
    assert_s3_granted("PoolClaim", &s3.take());
}

/// The generation job functions, DynamoDB and S3 both, over every path: a new job, a repeat, a
/// refusal, ids taken; the worker's commit (with a pool contribution), a storage refusal (the object
/// deleted), a download that breaks off mid-upload (the multipart upload aborted) and a failover;
/// the status with its audio link.
#[tokio::test]
async fn job_functions_are_granted_exactly_what_they_use_in_dynamodb_and_s3() {
    use crate::jobs::{drain_all, pool, status, stub, submit};
    use local_api::provider_stub::{Behaviour, Mode};
    let (recorder, s3) = (AccessRecorder::default(), S3AccessRecorder::default());
    let mut app = TestApp::spawn().await;
    app.about_to_contribute("maker").await;
    let mut full = app.new_user("full");
    // Room for its job's audio at submission; less once another upload lands (below).
    let needed = son1k_domain::tiers::Quality::Standard.max_audio_bytes(5.0);
    full.storage_used_bytes = (1 << 30) - needed;
    app.put_user(&full).await;
    // A reservation whose submission died before storing its job: the retry gives it back.
    let mut orphan = app.new_user("orphan");
    let now = son1k_tests::NowUtc::now_utc(app.clock.as_ref());
    let period = orphan.entitlement(now).period.key();
    orphan.usage = Some([(period.clone(), 1)].into());
    orphan.reservations.insert(
        "job-o".into(),
        son1k_domain::jobs::Reservation::new(period, false, now - chrono::Duration::minutes(1)),
    );
    app.put_user(&orphan).await;
    // A day's allowance spent and a credit to pay with: its job's commit writes the ledger.
    let mut credited = app.new_user("credited");
    credited.usage = Some([(credited.entitlement(now).period.key(), 3)].into());
    credited.credits.insert(
        "blk".into(),
        son1k_domain::credits::Block::new(
            son1k_domain::credits::Source::Grant,
            1,
            now + chrono::Duration::days(30),
            now,
        ),
    );
    app.put_user(&credited).await;
    assert_eq!(
        app.record("ana", json!({"generation_id": "rec-1"}))
            .await
            .status,
        201
    );
    let (stub, base) = stub().await;
    stub.set(
        "alpha",
        Behaviour {
            mode: Mode::Broken,
            ..Behaviour::default()
        },
    );
    app.intercept(recorder.clone());
    app.intercept_s3(s3.clone());

    for (user, id, status_code) in [
        ("ana", "job-1", 202),
        ("ana", "job-1", 200),
        ("bob", "job-1", 409),
        ("ana", "rec-1", 409),
        ("ana", "job-2", 202),
        ("ana", "job-3", 429),
        ("maker", "job-m", 202),
        ("full", "job-f", 202),
        ("orphan", "job-o", 202),
        ("newcomer", "job-n", 202),
        ("credited", "job-c", 202),
    ] {
        assert_eq!(
            submit(&app, user, id).await.status,
            status_code,
            "{user} {id}"
        );
    }
    let mut submit_used = logical(&app, recorder.take());
    assert!(s3.take().is_empty(), "no audio yet");
    app.add_stored_bytes(&full.user_id, 1000).await;
    recorder.take();

    drain_all(&app, &pool(&base, &[("beta", 1)])).await;
    let mut worker_used = logical(&app, recorder.take());
    // A download that breaks off after a first 5 MiB part: the upload is aborted, beta takes over.
    let long = json!({"generation_id": "job-b", "prompt": "long", "quality": "ultra",
                      "duration_seconds": 300});
    let res = app
        .call(
            "POST",
            "/api/generations",
            As::user("maker"),
            Some(&long.to_string()),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    submit_used.extend(logical(&app, recorder.take()));
    drain_all(&app, &pool(&base, &[("alpha", 1_000_000), ("beta", 1)])).await;
    worker_used.extend(logical(&app, recorder.take()));
    let worker_s3 = s3.take();
    for (user, id, expected) in [
        ("ana", "job-1", "succeeded"),
        ("maker", "job-m", "succeeded"),
        ("full", "job-f", "failed"),
        ("maker", "job-b", "succeeded"),
        ("credited", "job-c", "succeeded"),
    ] {
        assert_eq!(
            status(&app, As::user(user), id).await.json()["status"],
            expected,
            "{id}"
        );
    }
    recorder.take();
    s3.take();
    assert!(
        worker_used.contains(&("dynamodb:PutItem".to_owned(), "PoolTable".to_owned())),
        "the contribution path ran"
    );
    assert_granted("GenerationWorker", &worker_used);
    assert_s3_granted("GenerationWorker", &worker_s3);
    for call in ["HeadObject", "AbortMultipartUpload"] {
        assert!(
            worker_s3.contains(&(call.to_owned(), "audio/*".to_owned())),
            "the worker's {call} ran"
        );
    }

    // A repeat of a finished job answers its link.
    let again = submit(&app, "ana", "job-1").await;
    assert_eq!(again.status, 200);
    s3.presigned("GET", again.json()["audio_url"].as_str().expect("url"));
    submit_used.extend(logical(&app, recorder.take()));
    assert_granted("GenerationSubmit", &submit_used);
    assert_s3_granted("GenerationSubmit", &s3.take());

    let done = status(&app, As::user("ana"), "job-1").await;
    s3.presigned("GET", done.json()["audio_url"].as_str().expect("url"));
    status(&app, As::user("bob"), "job-1")
        .await
        .assert_problem(404, "not_found");
    let read = status(&app, As::admin("root"), "job-1").await;
    s3.presigned("GET", read.json()["audio_url"].as_str().expect("url"));
    assert_granted("GenerationStatus", &logical(&app, recorder.take()));
    assert_s3_granted("GenerationStatus", &s3.take());
}

/// The language-model functions over every path: a new user, a draft, the allowance spent (the unit
/// given back, the hit counted), a model failure; reads of the latest and an earlier version; an
/// edit and a stale one; Pixel for a FREE user (claims), one with a favourite genre (the listing),
/// a continued conversation and a spent allowance.
#[tokio::test]
async fn language_model_functions_are_granted_exactly_what_they_use() {
    use local_api::ollama_stub::{Behaviour, Mode};
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    app.listed_contribution_in("maker", "lofi", b"track").await;
    assert_eq!(
        app.record("ana", json!({"generation_id": "a1", "genre": "lofi"}))
            .await
            .status,
        201
    );
    let mut full = app.new_user("full");
    full.usage
        .get_or_insert_with(Default::default)
        .insert("pixel/D#2026-11-26".to_owned(), 20);
    app.put_user(&full).await;
    // One message short of 80 % of the day's 20: its next one fires an alert.
    let mut busy = app.new_user("busy");
    busy.usage
        .get_or_insert_with(Default::default)
        .insert("pixel/D#2026-11-26".to_owned(), 15);
    app.put_user(&busy).await;
    app.intercept(recorder.clone());

    let brief = json!({"theme": "t"});
    assert_eq!(
        crate::lyrics::write(&app, "neo", brief.clone())
            .await
            .status,
        201
    );
    let mut first = None;
    for _ in 0..5 {
        let res = crate::lyrics::write(&app, "ana", brief.clone()).await;
        assert_eq!(res.status, 201);
        first.get_or_insert(res.json()["lyrics_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        crate::lyrics::write(&app, "ana", brief.clone())
            .await
            .status,
        429
    );
    app.ollama.set(Behaviour {
        mode: Mode::Fail,
        ..Behaviour::default()
    });
    assert_eq!(crate::lyrics::write(&app, "neo", brief).await.status, 503);
    app.ollama.set(Behaviour::default());
    assert_granted("LyricsCreate", &logical(&app, recorder.take()));

    let id = first.expect("a draft");
    let list = app.call("GET", "/api/lyrics", As::user("ana"), None).await;
    assert_eq!(list.status, 200);
    assert_granted("LyricsList", &logical(&app, recorder.take()));

    for path in [
        format!("/api/lyrics/{id}"),
        format!("/api/lyrics/{id}?version=1"),
    ] {
        assert_eq!(
            app.call("GET", &path, As::user("ana"), None).await.status,
            200
        );
    }
    let admin_read = app
        .call("GET", &format!("/api/lyrics/{id}"), As::admin("root"), None)
        .await;
    assert_eq!(admin_read.status, 200);
    assert_granted("LyricsGet", &logical(&app, recorder.take()));

    let edit = json!({"sections": [{"kind": "verse", "lines": ["x"]}]});
    for expected in [200, 412] {
        let res = crate::lyrics::edit(&app, "ana", &id, Some("1"), edit.clone()).await;
        assert_eq!(res.status, expected);
    }
    assert_granted("LyricsUpdate", &logical(&app, recorder.take()));

    use crate::pixel::chat;
    assert_eq!(chat(&app, "zed", "hi", None).await.status, 200);
    let first = chat(&app, "ana", "hi", None).await;
    assert_eq!(first.status, 200);
    let again = chat(&app, "ana", "hi", first.json()["conversation_id"].as_str()).await;
    assert_eq!(again.status, 200);
    assert!(again.text().contains("pool_pick"), "{}", again.text());
    assert_eq!(chat(&app, "full", "hi", None).await.status, 429);
    assert_eq!(chat(&app, "busy", "hi", None).await.status, 200);
    assert_granted("PixelChat", &logical(&app, recorder.take()));
}

#[tokio::test]
async fn alert_settings_are_granted_exactly_what_they_use() {
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    app.intercept(recorder.clone());
    let settings =
        json!({"thresholds": [50], "channels": {"email": false}, "pace": false}).to_string();
    // A user who never made a request: read the defaults, then a save that creates the user.
    assert_eq!(
        app.call("GET", "/api/me/alerts/settings", As::user("quiet"), None)
            .await
            .status,
        200
    );
    for _ in 0..2 {
        let saved = app
            .call(
                "PUT",
                "/api/me/alerts/settings",
                As::user("quiet"),
                Some(&settings),
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.text());
    }
    assert_granted("AlertSettings", &logical(&app, recorder.take()));
}

#[tokio::test]
async fn the_alerts_list_is_granted_exactly_what_it_uses() {
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    for id in ["l1", "l2", "l3"] {
        app.record("lou", json!({ "generation_id": id })).await;
    }
    app.intercept(recorder.clone());
    let page = app
        .call("GET", "/api/me/alerts", As::user("lou"), None)
        .await;
    assert_eq!(page.json()["items"].as_array().map(Vec::len), Some(1));
    assert_granted("AlertsList", &logical(&app, recorder.take()));
}

#[tokio::test]
async fn alert_delivery_is_granted_exactly_what_it_uses() {
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    // Email and a webhook that fails once: a first attempt of each, then a retry of the webhook.
    let hook = json!({
        "thresholds": [100],
        "channels": {"email": true, "webhook_url": format!("https://{}/h", son1k_tests::WEBHOOK_HOST)},
        "pace": false
    })
    .to_string();
    app.call(
        "POST",
        "/api/me/alerts/webhook-secret",
        As::user("al"),
        None,
    )
    .await;
    app.call(
        "PUT",
        "/api/me/alerts/settings",
        As::user("al"),
        Some(&hook),
    )
    .await;
    for id in ["a1", "a2", "a3"] {
        app.record("al", json!({ "generation_id": id })).await;
    }
    app.webhook.fail_next(1);
    app.intercept(recorder.clone());
    assert_eq!(app.deliver_alerts().await, 1);
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.deliver_retries(5).await, 1);
    assert_eq!(app.webhook.received().len(), 2);
    assert_granted("AlertDelivery", &logical(&app, recorder.take()));
}

#[tokio::test]
async fn the_preview_is_granted_exactly_what_it_uses() {
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    app.intercept(recorder.clone());
    // A first request (the user is stored), then a known user.
    for user in ["pre", "pre"] {
        let res = app
            .call("GET", "/api/tiers/preview?tier=PRO", As::user(user), None)
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    assert_granted("TiersPreview", &logical(&app, recorder.take()));
}

#[tokio::test]
async fn credits_is_granted_exactly_what_it_uses() {
    let recorder = AccessRecorder::default();
    let mut app = TestApp::spawn().await;
    app.user_with_tier("payer", Tier::Pro, TierSource::Admin)
        .await;
    app.intercept(recorder.clone());
    // A first request (the user is stored), an admin's grant (the user read with the audit log's
    // head, then the block, its ledger entry and its audit entry in one transaction), the balance
    // and the ledger.
    let first = app
        .call("GET", "/api/credits", As::user("newcomer"), None)
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let granted = app
        .call(
            "POST",
            "/api/admin/users/payer/credits",
            As::admin("root"),
            Some(r#"{"generations": 5, "expires_at": "2027-06-01T00:00:00Z", "reason": "r"}"#),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.text());
    for path in ["/api/credits", "/api/credits/ledger"] {
        let res = app.call("GET", path, As::user("payer"), None).await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    assert_granted("Credits", &logical(&app, recorder.take()));
}

#[tokio::test]
async fn voice_functions_are_granted_exactly_what_they_use_in_dynamodb_and_s3() {
    let (recorder, s3) = (AccessRecorder::default(), S3AccessRecorder::default());
    let mut app = TestApp::spawn().await;
    app.user_with_tier("vox", Tier::Pro, TierSource::Admin)
        .await;
    app.intercept(recorder.clone());
    app.intercept_s3(s3.clone());
    // Voices: a creation (its links), the list, the voice for its owner (fresh links) and for an
    // admin (through its pointer), a submission refused, then one sent.
    let created = app
        .call(
            "POST",
            "/api/voices",
            As::user("vox"),
            Some(r#"{"name": "v"}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let voice = created.json();
    let id = voice["voice_id"].as_str().expect("id").to_owned();
    let links = |voice: &serde_json::Value| {
        let mut urls = vec![voice["uploads"]["consent"]["url"].clone()];
        urls.extend(
            voice["uploads"]["samples"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|l| l["url"].clone()),
        );
        urls
    };
    for url in links(&voice) {
        s3.presigned("PUT", url.as_str().expect("url"));
    }
    app.call("GET", "/api/voices", As::user("vox"), None).await;
    let own = app
        .call("GET", &format!("/api/voices/{id}"), As::user("vox"), None)
        .await
        .json();
    for url in links(&own) {
        s3.presigned("PUT", url.as_str().expect("url"));
    }
    let admin = app
        .call("GET", &format!("/api/voices/{id}"), As::admin("root"), None)
        .await;
    assert_eq!(admin.status, 200);
    let early = app
        .call(
            "POST",
            &format!("/api/voices/{id}/submit"),
            As::user("vox"),
            None,
        )
        .await;
    assert_eq!(early.status, 409);
    let mut voices = (logical(&app, recorder.take()), s3.take());
    for (link, seconds) in [
        (&voice["uploads"]["consent"], 4),
        (&voice["uploads"]["samples"][0], 12),
    ] {
        let key =
            son1k_tests::put_to_voice_link(link, local_api::provider_stub::wav("v", seconds)).await;
        app.object_created(&key).await;
    }
    recorder.take();
    s3.take();
    let submitted = app
        .call(
            "POST",
            &format!("/api/voices/{id}/submit"),
            As::user("vox"),
            None,
        )
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.text());
    voices.0.extend(logical(&app, recorder.take()));
    voices.1.extend(s3.take());
    assert_granted("Voices", &voices.0);
    assert_s3_granted("Voices", &voices.1);

    // The worker trains it; its results held back while the voice is deleted.
    app.voice_worker.work_once(0).await.expect("worker");
    let results = app.voice_worker.take_results(0).await.expect("results");
    recorder.take();
    s3.take();
    let deleted = app
        .call(
            "DELETE",
            &format!("/api/voices/{id}"),
            As::user("vox"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 202, "{}", deleted.text());
    assert_granted("VoiceDelete", &logical(&app, recorder.take()));
    assert_s3_granted("VoiceDelete", &s3.take());

    // The worker confirms the deletion; meanwhile objects appeared under both prefixes (a model
    // written late, a recording put late): voice-results deletes them with the results.
    app.voice_worker.work_once(0).await.expect("worker");
    for key in [
        format!("voices/vox/{id}/sample-2"),
        format!("voice-models/vox/{id}/late.bin"),
    ] {
        app.state
            .s3()
            .put_object()
            .bucket(&app.state.config.names.audio_bucket)
            .key(key)
            .body(b"late".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    for result in &results {
        app.voice_worker.send_result(result).await.expect("send");
    }
    recorder.take();
    s3.take();
    app.voice_worker.deliver_results(0).await.expect("results");
    assert_granted("VoiceResults", &logical(&app, recorder.take()));
    assert_s3_granted("VoiceResults", &s3.take());
}

/// The account functions over every path: an export started, read while it runs and once ready (its
/// link), the worker writing it; an account closed, closed again, its receipt; the worker deleting a
/// user with data of every kind.
#[tokio::test]
async fn account_functions_are_granted_exactly_what_they_use_in_dynamodb_and_s3() {
    let (recorder, s3) = (AccessRecorder::default(), S3AccessRecorder::default());
    let mut app = TestApp::spawn().await.with_account_worker().await;
    app.intercept(recorder.clone());
    app.intercept_s3(s3.clone());
    let rich = crate::account::rich_user(&app).await;
    let me = rich.id.as_str();
    // The voice worker's model of the voice, as it writes one.
    app.state
        .s3()
        .put_object()
        .bucket(&app.state.config.names.audio_bucket)
        .key(format!(
            "voice-models/{me}/{}/model.bin",
            rich.voice["voice_id"].as_str().unwrap_or_default()
        ))
        .body(b"weights".to_vec().into())
        .send()
        .await
        .expect("a model");
    recorder.take();
    s3.take();

    let started = app
        .call("POST", "/api/me/exports", As::user(me), None)
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let path = format!(
        "/api/me/exports/{}",
        started.json()["export_id"].as_str().unwrap_or_default()
    );
    assert_eq!(app.call("GET", &path, As::user(me), None).await.status, 200);
    let mut account = (logical(&app, recorder.take()), s3.take());
    assert_eq!(app.run_account_jobs().await, 1);
    let mut worker = (logical(&app, recorder.take()), s3.take());
    let ready = app.call("GET", &path, As::user(me), None).await.json();
    s3.presigned("GET", ready["download_url"].as_str().expect("link"));
    for _ in 0..2 {
        let closed = app
            .call(
                "DELETE",
                "/api/me",
                As::user(me),
                Some(r#"{"confirm": "DELETE"}"#),
            )
            .await;
        assert_eq!(closed.status, 202, "{}", closed.text());
    }
    // A user who never made a request: the closing checks there is no profile.
    let never = app
        .call(
            "DELETE",
            "/api/me",
            As::user("never-seen"),
            Some(r#"{"confirm": "DELETE"}"#),
        )
        .await;
    assert_eq!(never.status, 202, "{}", never.text());
    let receipt = app
        .call(
            "GET",
            "/api/me/deletion?deletion_id=01JD0000000000000000000000",
            None,
            None,
        )
        .await;
    assert_eq!(receipt.status, 404);
    account.0.extend(logical(&app, recorder.take()));
    account.1.extend(s3.take());
    assert_granted("Account", &account.0);
    assert_s3_granted("Account", &account.1);
    // The closing asked again queued its job again (it was still running): that one finds it done.
    assert_eq!(app.run_account_jobs().await, 3);
    worker.0.extend(logical(&app, recorder.take()));
    worker.1.extend(s3.take());
    assert_granted("AccountWorker", &worker.0);
    assert_s3_granted("AccountWorker", &worker.1);
}
