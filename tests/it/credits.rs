//! Credit blocks beside the allowance: an admin's grant, the spending order (allowance, then
//! granted before purchased, soonest expiry first), no over-spend under a burst, the balance in the
//! limits answer and the ledger.

use serde_json::{json, Value};
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_tests::{at, statuses, As, TestApp, TestResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

async fn grant(app: &TestApp, user: &str, generations: u32, expires_at: &str) -> Value {
    let res = app
        .call(
            "POST",
            &format!("/api/admin/users/{user}/credits"),
            As::admin("root"),
            Some(
                &json!({"generations": generations, "expires_at": expires_at, "reason": "welcome"})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()
}

async fn record(app: &TestApp, user: &str, id: &str) -> TestResponse {
    app.record(user, json!({"generation_id": id, "quality": "standard"}))
        .await
}

async fn credits(app: &TestApp, user: &str) -> Value {
    let res = app.call("GET", "/api/credits", As::user(user), None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

#[tokio::test]
async fn an_admin_grants_a_block_that_only_admins_may_grant() {
    let app = TestApp::spawn().await;
    app.user_with_tier("ana", Tier::Creator, TierSource::Admin)
        .await;
    let block = grant(&app, "ana", 5, "2026-12-26T10:00:00Z").await;
    assert_eq!(block["source"], "grant");
    assert_eq!(
        (block["generations"].clone(), block["remaining"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(block["expires_at"], "2026-12-26T10:00:00Z");
    let body = json!({"generations": 5, "expires_at": "2026-12-26T10:00:00Z", "reason": "r"});
    let own = app
        .call(
            "POST",
            "/api/admin/users/ana/credits",
            As::user("ana"),
            Some(&body.to_string()),
        )
        .await;
    own.assert_problem(403, "forbidden");
    let nobody = app
        .call(
            "POST",
            "/api/admin/users/nobody/credits",
            As::admin("root"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(nobody.status, 404);
    for (bad, field) in [
        (
            json!({"generations": 0, "expires_at": "2026-12-26T10:00:00Z", "reason": "r"}),
            "generations",
        ),
        (
            json!({"generations": 1, "expires_at": "2026-11-26T09:00:00Z", "reason": "r"}),
            "expires_at",
        ),
        (
            json!({"generations": 1, "expires_at": "2026-12-26T10:00:00Z", "reason": "  "}),
            "reason",
        ),
    ] {
        let res = app
            .call(
                "POST",
                "/api/admin/users/ana/credits",
                As::admin("root"),
                Some(&bad.to_string()),
            )
            .await;
        let doc = res.assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{doc}");
    }
    // Only the one grant was stored.
    let seen = credits(&app, "ana").await;
    assert_eq!(seen["balance"], 5);
    assert_eq!(seen["blocks"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_allowance_pays_first_then_the_grant_expiring_soonest_then_the_next() {
    let app = TestApp::spawn().await;
    app.call("GET", "/api/credits", As::user("fin"), None).await;
    // Now is 2026-11-26T10:00Z: one block expires tomorrow, one next year.
    let later = grant(&app, "fin", 1, "2027-11-26T10:00:00Z").await;
    app.clock.advance(chrono::Duration::seconds(1));
    let soon = grant(&app, "fin", 2, "2026-11-27T10:00:00Z").await;
    let limits = app.limits("fin").await;
    assert_eq!(
        (
            limits["remaining"].clone(),
            limits["remaining_in_period"].clone(),
            limits["credits"].clone()
        ),
        (json!(6), json!(3), json!(3))
    );
    let mut paid_by = Vec::new();
    for i in 0..6 {
        // A second apart: the ledger orders by the instant of each change.
        app.clock.advance(chrono::Duration::seconds(1));
        let res = record(&app, "fin", &format!("g{i}")).await;
        assert_eq!(res.status, 201, "{i}: {}", res.text());
        let body = res.json();
        assert_eq!(body["remaining"], 5 - i, "{body}");
        paid_by.push(body["credit_block_id"].as_str().map(str::to_owned));
    }
    let (soon_id, later_id) = (
        soon["block_id"].as_str().map(str::to_owned),
        later["block_id"].as_str().map(str::to_owned),
    );
    assert_eq!(
        paid_by,
        [
            None,
            None,
            None,
            soon_id.clone(),
            soon_id.clone(),
            later_id.clone()
        ]
    );
    let refused = record(&app, "fin", "g6").await;
    refused.assert_problem(429, "daily_limit_reached");
    let limits = app.limits("fin").await;
    assert_eq!(
        (limits["credits"].clone(), limits["can_generate"].clone()),
        (json!(0), json!(false))
    );
    // The ledger, newest first: three spends, then the two grants.
    let ledger = app
        .call("GET", "/api/credits/ledger", As::user("fin"), None)
        .await
        .json();
    let kinds: Vec<(&str, Option<&str>)> = ledger["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["generation_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("spend", Some("g5")),
            ("spend", Some("g4")),
            ("spend", Some("g3")),
            ("grant", None),
            ("grant", None)
        ]
    );
    assert_eq!(ledger["items"][0]["block_id"], later["block_id"]);
    assert_eq!(ledger["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_block_stops_paying_at_its_expiry_whatever_it_has_left() {
    let app = TestApp::spawn().await;
    app.call("GET", "/api/credits", As::user("eve"), None).await;
    let soon = grant(&app, "eve", 5, "2026-11-27T00:00:00Z").await;
    let later = grant(&app, "eve", 1, "2027-01-01T00:00:00Z").await;
    // The next day (a new allowance): spend it, then one credit.
    app.clock.set(at("2026-11-26T23:59:59Z"));
    for i in 0..3 {
        assert_eq!(record(&app, "eve", &format!("a{i}")).await.status, 201);
    }
    let last_second = record(&app, "eve", "a3").await.json();
    assert_eq!(last_second["credit_block_id"], soon["block_id"]);
    app.clock.set(at("2026-11-27T00:00:00Z"));
    for i in 0..3 {
        assert_eq!(record(&app, "eve", &format!("b{i}")).await.status, 201);
    }
    let seen = credits(&app, "eve").await;
    assert_eq!(seen["balance"], 1, "{seen}");
    let next = record(&app, "eve", "b3").await.json();
    assert_eq!(next["credit_block_id"], later["block_id"], "{next}");
    record(&app, "eve", "b4")
        .await
        .assert_problem(429, "daily_limit_reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_parallel_requests_beyond_the_allowance_with_one_credit_record_exactly_one() {
    let app = Arc::new(TestApp::spawn().await);
    app.user_with_tier("burst", Tier::Pro, TierSource::Admin)
        .await;
    // The month's 200 spent, the last one just now (its in-flight marker still on the user item,
    // so nothing but the credit's own condition stands between the burst and over-spending).
    let mut user = app.user_record("burst").await.expect("user");
    user.usage = Some(BTreeMap::from([("M#2026-11-01T00:00:00Z".to_owned(), 199)]));
    app.put_user(&user).await;
    assert_eq!(record(&app, "burst", "last").await.status, 201);
    grant(&app, "burst", 1, "2027-01-01T00:00:00Z").await;
    let calls = (0..50).map(|i| {
        let app = app.clone();
        tokio::spawn(async move { record(&app, "burst", &format!("p{i}")).await })
    });
    let responses: Vec<TestResponse> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(statuses(&responses), BTreeMap::from([(201, 1), (429, 49)]));
    let stored = app.user_record("burst").await.expect("user");
    assert_eq!(stored.used_in("M#2026-11-01T00:00:00Z"), 200);
    assert_eq!(
        stored
            .credits
            .values()
            .map(|b| b.remaining)
            .collect::<Vec<_>>(),
        [0]
    );
    let ledger = app
        .call("GET", "/api/credits/ledger", As::user("burst"), None)
        .await
        .json();
    assert_eq!(
        ledger["items"].as_array().map(Vec::len),
        Some(2),
        "{ledger}"
    );
}

/// A FREE user whose day's allowance is used up.
async fn spent_free_user(app: &TestApp, user: &str) {
    app.call("GET", "/api/credits", As::user(user), None).await;
    let mut record = app.user_record(user).await.expect("user");
    record.usage = Some(BTreeMap::from([("D#2026-11-26".to_owned(), 3)]));
    app.put_user(&record).await;
}

fn remaining_of(user: &son1k_store::users::UserRecord, block: &Value) -> u32 {
    user.credits[block["block_id"].as_str().expect("id")].remaining
}

#[tokio::test]
async fn a_failed_job_gives_its_credit_back_to_its_block_unless_the_block_expired_meanwhile() {
    let app = TestApp::spawn().await;
    let (_stub, providers) = crate::jobs::failing_pool().await;
    spent_free_user(&app, "jo").await;
    // Expires ten minutes from now (before the job's reservation would), and one next year.
    let soon = grant(&app, "jo", 2, "2026-11-26T10:10:00Z").await;
    let later = grant(&app, "jo", 1, "2027-11-26T10:00:00Z").await;

    // A job reserves a credit of the block expiring first; its failure gives it back there (a
    // second after the grants: the ledger orders by the instant of each change).
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(crate::jobs::submit(&app, "jo", "j1").await.status, 202);
    let user = app.user_record("jo").await.expect("user");
    assert_eq!(remaining_of(&user, &soon), 1);
    assert_eq!(app.limits("jo").await["credits"], 2);
    crate::jobs::drain_all(&app, &providers).await;
    let user = app.user_record("jo").await.expect("user");
    assert_eq!(
        (remaining_of(&user, &soon), remaining_of(&user, &later)),
        (2, 1)
    );
    assert!(user.reservations.is_empty());

    // Another takes a credit of that block, which expires before the job fails: not given back.
    assert_eq!(crate::jobs::submit(&app, "jo", "j2").await.status, 202);
    app.clock.set(at("2026-11-26T10:11:00Z"));
    crate::jobs::drain_all(&app, &providers).await;
    let user = app.user_record("jo").await.expect("user");
    assert_eq!(
        (remaining_of(&user, &soon), remaining_of(&user, &later)),
        (1, 1)
    );
    assert!(user.reservations.is_empty(), "{:?}", user.reservations);
    assert_eq!(
        user.used_in("D#2026-11-26"),
        3,
        "the allowance's counter never moved"
    );
    assert_eq!(credits(&app, "jo").await["balance"], 1);
    // Nothing was spent: each job's credit ends in the ledger as released to its block, or
    // expired with it; newest first, then the grants.
    let ledger = app
        .call("GET", "/api/credits/ledger", As::user("jo"), None)
        .await
        .json();
    let entries: Vec<(String, Option<String>, u64)> = ledger["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["generation_id"].as_str().map(str::to_owned),
                e["generations"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let job = |kind: &str, id: &str| (kind.to_owned(), Some(id.to_owned()), 1);
    assert_eq!(entries.len(), 4, "{ledger}");
    assert_eq!(
        entries[..2],
        [job("expire", "j2"), job("release", "j1")],
        "{ledger}"
    );
    assert_eq!(ledger["items"][0]["block_id"], soon["block_id"]);
    assert_eq!(ledger["items"][1]["block_id"], soon["block_id"]);
}

#[tokio::test]
async fn a_job_paid_by_a_credit_is_spent_in_the_ledger_when_it_is_recorded() {
    let app = TestApp::spawn().await;
    let (_stub, base) = crate::jobs::stub().await;
    let providers = crate::jobs::pool(&base, &[("alpha", 1)]);
    spent_free_user(&app, "kim").await;
    let block = grant(&app, "kim", 3, "2027-11-26T10:00:00Z").await;
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(crate::jobs::submit(&app, "kim", "k1").await.status, 202);
    crate::jobs::drain_all(&app, &providers).await;
    let done = crate::jobs::status(&app, As::user("kim"), "k1")
        .await
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    let user = app.user_record("kim").await.expect("user");
    assert_eq!(remaining_of(&user, &block), 2);
    assert!(user.reservations.is_empty());
    let ledger = app
        .call("GET", "/api/credits/ledger", As::user("kim"), None)
        .await
        .json();
    assert_eq!(ledger["items"][0]["kind"], "spend", "{ledger}");
    assert_eq!(ledger["items"][0]["generation_id"], "k1");
    assert_eq!(ledger["items"][0]["block_id"], block["block_id"]);
}
