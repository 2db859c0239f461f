//! The audit log of admin actions: every tier grant, credit grant, hold and admin read of another
//! user writes a chained entry in its own transaction; `GET /api/admin/audit` lists them and
//! `GET /api/admin/audit/verify` recomputes the chain.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use son1k_domain::tiers::Tier;
use son1k_tests::{at, As, TestApp};
use std::collections::BTreeSet;

async fn list(app: &TestApp, query: &str) -> Value {
    let res = app
        .call(
            "GET",
            &format!("/api/admin/audit{query}"),
            As::admin("auditor"),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

async fn verify(app: &TestApp, query: &str) -> Value {
    let res = app
        .call(
            "GET",
            &format!("/api/admin/audit/verify{query}"),
            As::admin("auditor"),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

async fn hold(app: &TestApp, user: &str, body: Value) -> son1k_tests::TestResponse {
    app.call(
        "PUT",
        &format!("/api/admin/users/{user}/hold"),
        As::admin("ops"),
        Some(&body.to_string()),
    )
    .await
}

/// The stored entry items, oldest first.
async fn stored_entries(app: &TestApp) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut items = app.items(&app.state.config.names.audit_table, "LOG").await;
    items.retain(|item| item.get("sk") != Some(&AttributeValue::S("HEAD".into())));
    items
}

#[tokio::test]
async fn a_tier_grant_writes_one_entry_with_who_what_before_and_after() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    app.grant("target", Tier::Pro).await;
    let page = list(&app, "").await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    let entry = &items[0];
    assert_eq!(
        (
            &entry["actor"],
            &entry["action"],
            &entry["target"],
            &entry["before"],
            &entry["after"],
            &entry["seq"],
            &entry["prev_hash"],
        ),
        (
            &json!({"user_id": "ops", "via": "PUT /api/admin/users/{user_id}/tier"}),
            &json!("tier.grant"),
            &json!("target"),
            &json!({"tier": "FREE", "tier_source": "default"}),
            &json!({"tier": "PRO", "tier_source": "admin"}),
            &json!(1),
            &json!("0".repeat(64)),
        )
    );
    assert_eq!(entry["at"], json!("2026-11-26T10:00:00Z"));
    assert!(entry["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(entry["hash"].as_str().map(str::len), Some(64));
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(verify(&app, "").await, json!({"ok": true, "checked": 1}));
}

#[tokio::test]
async fn twenty_parallel_admin_grants_all_succeed_and_leave_a_chain_that_verifies() {
    let app = TestApp::spawn().await;
    for i in 0..4 {
        app.put_user(&app.new_user(&format!("u{i}"))).await;
    }
    // Twenty instances whose clocks read a millisecond apart, as parallel Lambdas' do.
    let instances: Vec<TestApp> = (0..20)
        .map(|i| app.with_clock_at(at("2026-11-26T10:00:00Z") + chrono::Duration::milliseconds(i)))
        .collect();
    let calls = instances.iter().enumerate().map(|(i, app)| {
        async move {
            let user = format!("u{}", i % 4);
            if i % 2 == 0 {
                let tier = [Tier::Creator, Tier::Pro, Tier::Studio][i % 3];
                app.call(
                    "PUT",
                    &format!("/api/admin/users/{user}/tier"),
                    As::admin(&format!("admin{i}")),
                    Some(&json!({ "tier": tier }).to_string()),
                )
                .await
            } else {
                app.call(
                    "POST",
                    &format!("/api/admin/users/{user}/credits"),
                    As::admin(&format!("admin{i}")),
                    Some(
                        &json!({"generations": 5, "expires_at": "2027-06-01T00:00:00Z", "reason": "launch"})
                            .to_string(),
                    ),
                )
                .await
            }
        }
    });
    let responses = futures::future::join_all(calls).await;
    for res in &responses {
        assert!(
            matches!(res.status, 200 | 201),
            "{} {}",
            res.status,
            res.text()
        );
    }
    let page = list(&app, "").await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 20);
    let seqs: Vec<u64> = items.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=20).rev().collect::<Vec<_>>(),
        "newest first, no gap"
    );
    let actors: BTreeSet<&str> = items
        .iter()
        .filter_map(|e| e["actor"]["user_id"].as_str())
        .collect();
    assert_eq!(actors.len(), 20, "one entry per action");
    // Each entry links to the one before it.
    for pair in items.windows(2) {
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"]);
    }
    assert_eq!(verify(&app, "").await, json!({"ok": true, "checked": 20}));

    // An entry edited in the table: verify names it.
    let edited = &items[12];
    let entries = stored_entries(&app).await;
    let stored = entries
        .iter()
        .find(|item| {
            item.get("id")
                == Some(&AttributeValue::S(
                    edited["id"].as_str().unwrap_or_default().into(),
                ))
        })
        .expect("the entry is stored");
    app.state
        .dynamo()
        .update_item()
        .table_name(&app.state.config.names.audit_table)
        .key("pk", stored["pk"].clone())
        .key("sk", stored["sk"].clone())
        .update_expression("SET target = :someone")
        .expression_attribute_values(":someone", AttributeValue::S("someone-else".into()))
        .send()
        .await
        .expect("edit the entry");
    let verdict = verify(&app, "").await;
    assert_eq!(verdict["ok"], json!(false));
    assert_eq!(verdict["first_bad"], edited["id"]);
    assert_eq!(verdict["checked"], json!(20 - 12));
}

#[tokio::test]
async fn a_removed_entry_is_found_whether_in_the_middle_or_the_newest() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    for tier in [Tier::Creator, Tier::Pro, Tier::Studio, Tier::Free] {
        app.grant("target", tier).await;
    }
    let entries = stored_entries(&app).await;
    let id = |item: &std::collections::HashMap<String, AttributeValue>| match item.get("id") {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => String::new(),
    };
    let delete = |item: std::collections::HashMap<String, AttributeValue>| {
        let app = &app;
        async move {
            app.state
                .dynamo()
                .delete_item()
                .table_name(&app.state.config.names.audit_table)
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .expect("delete");
        }
    };
    // The newest removed: only the head still knows it.
    delete(entries[3].clone()).await;
    let verdict = verify(&app, "").await;
    assert_eq!(
        (&verdict["ok"], verdict["first_bad"].as_str()),
        (&json!(false), Some(id(&entries[3]).as_str()))
    );
    // One in the middle removed: the entry after it no longer follows.
    delete(entries[1].clone()).await;
    let verdict = verify(&app, "").await;
    assert_eq!(
        verdict["first_bad"].as_str(),
        Some(id(&entries[2]).as_str())
    );
}

#[tokio::test]
async fn the_change_and_its_entry_are_one_transaction() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    // The log cannot be written: the grant fails whole, the tier stays.
    app.state
        .dynamo()
        .delete_table()
        .table_name(&app.state.config.names.audit_table)
        .send()
        .await
        .expect("drop the audit table");
    let res = app
        .call(
            "PUT",
            "/api/admin/users/target/tier",
            As::admin("ops"),
            Some(r#"{"tier": "STUDIO"}"#),
        )
        .await;
    res.assert_problem(503, "dependency_unavailable");
    let stored = app.user_record("target").await.expect("user");
    assert_eq!((stored.tier, stored.entitlement_rev), (Tier::Free, 0));
}

#[tokio::test]
async fn an_admin_reading_another_user_is_recorded_and_a_user_reading_themself_is_not() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    let own = app
        .call("GET", "/api/tiers/limits/me", As::user("target"), None)
        .await;
    assert_eq!(own.status, 200);
    let own_admin = app
        .call("GET", "/api/tiers/limits/me", As::admin("ops"), None)
        .await;
    assert_eq!(own_admin.status, 200);
    assert_eq!(list(&app, "").await["items"], json!([]));
    let read = app
        .call("GET", "/api/tiers/limits/target", As::admin("ops"), None)
        .await;
    assert_eq!(read.status, 200);
    let items = list(&app, "").await["items"].clone();
    assert_eq!(
        (
            &items[0]["action"],
            &items[0]["target"],
            &items[0]["actor"]["via"],
            &items[0]["after"]
        ),
        (
            &json!("user.read"),
            &json!("target"),
            &json!("GET /api/tiers/limits/{user_id}"),
            &json!({"read": "limits"})
        )
    );
    assert_eq!(items.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn holds_are_placed_and_lifted_once_each_with_their_entries() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    hold(&app, "target", json!({"hold": true}))
        .await
        .assert_problem(400, "invalid_request");
    hold(&app, "nobody", json!({"hold": true, "reason": "case 12"}))
        .await
        .assert_problem(404, "not_found");
    let placed = hold(&app, "target", json!({"hold": true, "reason": " case 12 "})).await;
    assert_eq!(placed.status, 200, "{}", placed.text());
    assert_eq!(
        placed.json(),
        json!({"user_id": "target", "legal_hold": {"since": "2026-11-26T10:00:00Z", "by": "ops", "reason": "case 12"}})
    );
    let again = hold(&app, "target", json!({"hold": true, "reason": "other"})).await;
    assert_eq!(
        again.json(),
        placed.json(),
        "placing it again changes nothing"
    );
    let stored = app.user_record("target").await.expect("user");
    assert_eq!(
        stored.legal_hold.map(|h| h.reason),
        Some("case 12".to_owned())
    );
    let lifted = hold(&app, "target", json!({"hold": false})).await;
    assert_eq!(
        lifted.json(),
        json!({"user_id": "target", "legal_hold": null})
    );
    assert_eq!(
        app.user_record("target").await.and_then(|u| u.legal_hold),
        None
    );

    let items = list(&app, "").await["items"].clone();
    let actions: Vec<&str> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["hold.release", "hold.place"]);
    assert_eq!(items[0]["before"], placed.json()["legal_hold"]);
    assert_eq!(items[0]["after"], Value::Null);
    assert_eq!(items[1]["before"], Value::Null);
    assert_eq!(verify(&app, "").await["ok"], json!(true));
}

#[tokio::test]
async fn non_admins_get_403_from_every_audit_route() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    for (method, path, body) in [
        ("GET", "/api/admin/audit", None),
        ("GET", "/api/admin/audit/verify", None),
        (
            "PUT",
            "/api/admin/users/target/hold",
            Some(r#"{"hold": true, "reason": "x"}"#),
        ),
    ] {
        let res = app.call(method, path, As::user("target"), body).await;
        res.assert_problem(403, "forbidden");
        let res = app.call(method, path, None, body).await;
        assert_eq!(res.status, 401, "{method} {path}");
    }
    assert_eq!(
        app.user_record("target").await.and_then(|u| u.legal_hold),
        None
    );
}

#[tokio::test]
async fn the_listing_filters_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("a")).await;
    app.put_user(&app.new_user("b")).await;
    app.grant("a", Tier::Pro).await;
    let later = app.with_clock_at(at("2026-11-27T10:00:00Z"));
    hold(&later, "b", json!({"hold": true, "reason": "case"})).await;
    for _ in 0..55 {
        let res = later
            .call("GET", "/api/tiers/limits/b", As::admin("reader"), None)
            .await;
        assert_eq!(res.status, 200);
    }
    let by_action = list(&app, "?action=tier.grant").await;
    assert_eq!(by_action["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(by_action["items"][0]["target"], json!("a"));
    let by_target = list(&app, "?target=b&action=hold.place").await;
    assert_eq!(by_target["items"][0]["action"], json!("hold.place"));
    assert_eq!(by_target["items"].as_array().map(Vec::len), Some(1));
    let by_actor = list(&app, "?actor=ops").await;
    assert_eq!(by_actor["items"].as_array().map(Vec::len), Some(2));
    let before_later = list(&app, "?to=2026-11-27T00:00:00Z").await;
    assert_eq!(before_later["items"].as_array().map(Vec::len), Some(1));
    let from_later = verify(&app, "?from=2026-11-27T00:00:00Z").await;
    assert_eq!(from_later, json!({"ok": true, "checked": 56}));
    // A range after the newest entry: nothing to check, and the head still agrees.
    assert_eq!(
        verify(&app, "?from=2027-01-01T00:00:00Z").await,
        json!({"ok": true, "checked": 0})
    );

    // 57 entries: a full page, then the rest, with nothing twice.
    let first = list(&app, "").await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(50));
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let second = list(&app, &format!("?cursor={cursor}")).await;
    assert_eq!(second["items"].as_array().map(Vec::len), Some(7));
    assert_eq!(second["items"][6]["action"], json!("tier.grant"));
    assert_eq!(second["next_cursor"], Value::Null);

    for bad in [
        "?cursor=nope",
        "?action=delete",
        "?from=yesterday",
        "?from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z",
        "?actor=a%20b",
    ] {
        let res = app
            .call(
                "GET",
                &format!("/api/admin/audit{bad}"),
                As::admin("auditor"),
                None,
            )
            .await;
        res.assert_problem(400, "invalid_request");
    }
}

#[tokio::test]
async fn an_entry_written_by_a_slower_clock_never_goes_back_in_time() {
    let app = TestApp::spawn().await;
    app.put_user(&app.new_user("target")).await;
    let ahead = app.with_clock_at(at("2026-11-26T10:00:05Z"));
    ahead.grant("target", Tier::Pro).await;
    // Another instance whose clock reads 5 s earlier.
    app.grant("target", Tier::Studio).await;
    let items = list(&app, "").await["items"].clone();
    assert_eq!(
        (&items[0]["seq"], &items[0]["at"], &items[1]["at"]),
        (
            &json!(2),
            &json!("2026-11-26T10:00:05Z"),
            &json!("2026-11-26T10:00:05Z")
        )
    );
    assert_eq!(verify(&app, "").await["ok"], json!(true));
}
