//! Analytics: every business event counted once per UTC day, in the same transaction as the action
//! it counts, and `GET /api/analytics/summary` for admins.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use serde_json::{json, Value};
use son1k_app::ports::Pool;
use son1k_domain::analytics::{shard_of, SHARDS};
use son1k_domain::ids::UserId;
use son1k_store::analytics::{counter_pk, counter_sk, events_pk};
use son1k_tests::faults::{Fault, FaultMode};
use son1k_tests::stripe::{SubEvent, PRICE_PRO};
use son1k_tests::{at, As, TestApp, TestResponse};

const EVENTS: [&str; 11] = [
    "generation_recorded",
    "limit_reached",
    "checkout_started",
    "subscription_activated",
    "subscription_canceled",
    "pool_contribution",
    "pool_claim",
    "pool_like",
    "pool_play",
    "credits_purchased",
    "credit_spent",
];

async fn summary(app: &TestApp, from: &str, to: &str) -> TestResponse {
    app.call(
        "GET",
        &format!("/api/analytics/summary?from={from}&to={to}"),
        As::admin("ops"),
        None,
    )
    .await
}

/// The counts of one day, as the summary shows them.
async fn counts(app: &TestApp, day: &str) -> Value {
    let res = summary(app, day, day).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["days"][0]["counts"].clone()
}

/// Every event name with 0, then `nonzero` on top.
fn expected(nonzero: &[(&str, u64)]) -> Value {
    let mut counts: serde_json::Map<String, Value> =
        EVENTS.iter().map(|e| ((*e).to_owned(), json!(0))).collect();
    for (event, n) in nonzero {
        counts.insert((*event).to_owned(), json!(n));
    }
    Value::Object(counts)
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> TestResponse {
    let body = body.map(|b| b.to_string());
    app.call(method, path, As::user(user), body.as_deref())
        .await
}

async fn checkout(app: &TestApp, user: &str) -> TestResponse {
    call(
        app,
        "POST",
        "/api/tiers/checkout",
        user,
        Some(json!({"tier": "PRO"})),
    )
    .await
}

async fn play(app: &TestApp, user: &str, item: &str) -> TestResponse {
    call(
        app,
        "POST",
        &format!("/api/community/pool/{item}/play"),
        user,
        None,
    )
    .await
}

async fn like(app: &TestApp, user: &str, item: &str, on: bool) -> TestResponse {
    let method = if on { "POST" } else { "DELETE" };
    call(
        app,
        method,
        &format!("/api/community/pool/like/{item}"),
        user,
        None,
    )
    .await
}

/// The pool item as stored.
async fn stored(app: &TestApp, item: &str) -> son1k_store::pool::ContributionRecord {
    app.state
        .pool()
        .contribution(item)
        .await
        .expect("read")
        .expect("item")
}

/// The raw events of `day`, over every shard: (event, user id, properties).
async fn raw_events(app: &TestApp, day: &str) -> Vec<(String, String, Value)> {
    let day = day.parse().expect("day");
    let mut events = Vec::new();
    for shard in 0..SHARDS {
        for item in app
            .items(&app.state.config.names.stats_table, &events_pk(day, shard))
            .await
        {
            let record: son1k_store::analytics::EventRecord =
                serde_dynamo::from_item(item).expect("an event record");
            assert!(
                record.expires_at > record.at.timestamp() + 89 * 86_400,
                "kept 90 days"
            );
            events.push((
                record.event,
                record.user_id.to_string(),
                serde_json::to_value(&record.properties).expect("json"),
            ));
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events
}

#[tokio::test]
async fn a_known_script_is_counted_exactly_once_per_action() {
    let app = TestApp::spawn_at(at("2026-11-25T12:00:00Z")).await;
    // The day before: a PRO user's 20th paid generation goes to the pool, its audio stored.
    let item = app.listed_contribution("maker", b"a track").await;
    app.clock.set(at("2026-11-26T10:00:00Z"));

    for id in ["g1", "g2", "g3"] {
        assert_eq!(
            app.record("fan", json!({"generation_id": id})).await.status,
            201
        );
    }
    app.record("fan", json!({"generation_id": "g4"}))
        .await
        .assert_problem(429, "daily_limit_reached");
    let replay = app.record("fan", json!({"generation_id": "g1"})).await;
    assert_eq!(replay.status, 200, "a replay, not a new generation");
    assert_eq!(like(&app, "fan", &item, true).await.status, 200);
    assert_eq!(
        like(&app, "fan", &item, true).await.status,
        200,
        "a repeated like"
    );
    assert_eq!(like(&app, "fan", &item, false).await.status, 200);
    assert_eq!(play(&app, "fan", &item).await.status, 200);
    let claim = call(
        &app,
        "POST",
        "/api/community/pool/claim",
        "fan",
        Some(json!({"contribution_id": item})),
    )
    .await;
    assert_eq!(claim.status, 201, "{}", claim.text());

    let checkout = checkout(&app, "payer").await;
    assert_eq!(checkout.status, 200, "{}", checkout.text());
    let customer = app
        .user_record("payer")
        .await
        .and_then(|u| u.stripe_customer_id)
        .expect("checkout stored the customer");
    let created = SubEvent {
        kind: "customer.subscription.created".into(),
        price: PRICE_PRO.into(),
        customer: customer.clone(),
        created: "2026-11-26T10:00:00Z".into(),
        ..SubEvent::new("payer")
    };
    for _ in 0..2 {
        assert_eq!(app.webhook(&created.json()).await.status, 200);
    }
    let renewed = SubEvent {
        price: PRICE_PRO.into(),
        customer: customer.clone(),
        created: "2026-11-26T10:01:00Z".into(),
        ..SubEvent::new("payer")
    };
    assert_eq!(
        app.webhook(&renewed.json()).await.status,
        200,
        "a plan update is no milestone"
    );
    let canceled = SubEvent {
        kind: "customer.subscription.deleted".into(),
        status: "canceled".into(),
        price: PRICE_PRO.into(),
        customer,
        created: "2026-11-26T10:02:00Z".into(),
        ..SubEvent::new("payer")
    };
    assert_eq!(app.webhook(&canceled.json()).await.status, 200);
    assert_eq!(
        app.user_record("payer").await.map(|u| u.tier.to_string()),
        Some("FREE".into())
    );

    let today = expected(&[
        ("generation_recorded", 3),
        ("limit_reached", 1),
        ("checkout_started", 1),
        ("subscription_activated", 1),
        ("subscription_canceled", 1),
        ("pool_claim", 1),
        ("pool_like", 1),
        // The play and the claim (a claim counts as a play, as the item's plays do).
        ("pool_play", 2),
    ]);
    assert_eq!(counts(&app, "2026-11-26").await, today);
    assert_eq!(
        counts(&app, "2026-11-25").await,
        expected(&[("generation_recorded", 1), ("pool_contribution", 1)])
    );
    let stored = stored(&app, &item).await;
    assert_eq!(
        (stored.plays, stored.likes),
        (2, 0),
        "the counts agree with the data"
    );

    // The raw events say the same, with ids and no personal data beyond the user id.
    let events = raw_events(&app, "2026-11-26").await;
    let mut tally = std::collections::BTreeMap::<&str, u64>::new();
    for (event, _, _) in &events {
        *tally.entry(event.as_str()).or_default() += 1;
    }
    for event in EVENTS {
        assert_eq!(
            tally.get(event).copied().unwrap_or(0),
            today[event],
            "{event}"
        );
    }
    let generation = events
        .iter()
        .find(|(e, _, p)| e == "generation_recorded" && p["generation_id"] == "g1")
        .expect("g1's event");
    assert_eq!(generation.1, "fan");
    assert_eq!(generation.2["quality"], "standard");
    let dump = serde_json::to_string(&events).expect("json");
    assert!(!dump.contains('@'), "no email in raw events: {dump}");
}

#[tokio::test]
async fn the_summary_is_for_admins_and_names_a_bad_date() {
    let app = TestApp::spawn().await;
    let path = "/api/analytics/summary?from=2026-11-01&to=2026-11-30";
    app.call("GET", path, As::user("someone"), None)
        .await
        .assert_problem(403, "forbidden");
    app.call("GET", path, None, None)
        .await
        .assert_problem(401, "unauthorized");
    for (query, field) in [
        ("to=2026-11-30", "from"),
        ("from=2026-11-01", "to"),
        ("from=2026-11-1&to=2026-11-30", "from"),
        ("from=2026-11-01&to=2026-02-30", "to"),
        ("from=2026-11-30&to=2026-11-01", "from"),
        ("from=2026-01-01&to=2027-01-02", "to"),
        ("from=yesterday&to=2026-11-30", "from"),
        ("from=&to=2026-11-30", "from"),
    ] {
        let res = app
            .call(
                "GET",
                &format!("/api/analytics/summary?{query}"),
                As::admin("ops"),
                None,
            )
            .await;
        let problem = res.assert_problem(400, "invalid_request");
        assert_eq!(problem["field"], field, "{query}");
    }
    let year = summary(&app, "2028-01-01", "2028-12-31").await;
    assert_eq!(year.status, 200, "366 days of a leap year");
    assert_eq!(year.json()["days"].as_array().map(Vec::len), Some(366));
}

#[tokio::test]
async fn a_range_over_a_month_end_lists_every_day_counted_by_the_clock_of_each_action() {
    let app = TestApp::spawn_at(at("2026-11-30T23:59:59Z")).await;
    // Two instances, two clocks a second apart, either side of midnight.
    let december = app.with_clock_at(at("2026-12-01T00:00:00Z"));
    assert_eq!(
        app.record("owl", json!({"generation_id": "late"}))
            .await
            .status,
        201
    );
    assert_eq!(
        december
            .record("owl", json!({"generation_id": "early"}))
            .await
            .status,
        201
    );

    let res = summary(&app, "2026-11-29", "2026-12-02").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(
        (body["from"].clone(), body["to"].clone()),
        (json!("2026-11-29"), json!("2026-12-02"))
    );
    let days: Vec<(String, u64)> = body["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| {
            (
                d["date"].as_str().expect("date").to_owned(),
                d["counts"]["generation_recorded"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-11-29".to_owned(), 0),
            ("2026-11-30".to_owned(), 1),
            ("2026-12-01".to_owned(), 1),
            ("2026-12-02".to_owned(), 0),
        ]
    );
    assert_eq!(
        body["days"][0]["counts"],
        expected(&[]),
        "a day with nothing has every zero"
    );
    assert_eq!(body["totals"], expected(&[("generation_recorded", 2)]));
}

/// The key of `user`'s counter shard on `day`.
fn counter_key(user: &str, day: &str) -> std::collections::HashMap<String, AttributeValue> {
    let shard = shard_of(&UserId::parse(user).expect("id"));
    son1k_store::item_key(counter_pk(shard), &counter_sk(day.parse().expect("day")))
}

/// Makes the counter of `user`'s shard on `day` unusable for `event` (a string where a number is
/// added), so any transaction that counts it is refused by DynamoDB as a whole.
async fn jam_counter(app: &TestApp, user: &str, day: &str, event: &str) {
    let mut item = counter_key(user, day);
    item.insert(event.to_owned(), AttributeValue::S("jammed".into()));
    app.state
        .dynamo()
        .put_item()
        .table_name(&app.state.config.names.stats_table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

async fn unjam_counter(app: &TestApp, user: &str, day: &str) {
    app.state
        .dynamo()
        .delete_item()
        .table_name(&app.state.config.names.stats_table)
        .set_key(Some(counter_key(user, day)))
        .send()
        .await
        .expect("delete");
}

#[tokio::test]
async fn a_fault_in_the_transaction_leaves_neither_the_action_nor_its_count() {
    let app = TestApp::spawn_at(at("2026-11-26T09:00:00Z")).await;
    let item = app.listed_contribution("maker", b"a track").await;
    let day = "2026-11-26";
    let before = counts(&app, day).await;

    // The count fails inside the generation's transaction: no generation, no quota spent.
    jam_counter(&app, "jam", day, "generation_recorded").await;
    app.record("jam", json!({"generation_id": "j1"}))
        .await
        .assert_problem(503, "dependency_unavailable");
    assert_eq!(app.used("jam").await, 0, "no quota spent");
    assert!(app.generation("j1").await.is_none(), "no generation stored");
    // A like whose count fails: no like row, no like on the item.
    jam_counter(&app, "jam", day, "pool_like").await;
    like(&app, "jam", &item, true)
        .await
        .assert_problem(503, "dependency_unavailable");
    let stored = stored(&app, &item).await;
    assert_eq!(stored.likes, 0);
    unjam_counter(&app, "jam", day).await;
    assert_eq!(counts(&app, day).await, before, "and nothing counted");

    // The action failing (a play of an unknown item) counts nothing either.
    play(&app, "jam", "01JD0000000000000000000000")
        .await
        .assert_problem(404, "not_found");
    assert_eq!(counts(&app, day).await, before);

    // Once the store is whole the same requests succeed and count once.
    assert_eq!(
        app.record("jam", json!({"generation_id": "j1"}))
            .await
            .status,
        201
    );
    assert_eq!(like(&app, "jam", &item, true).await.status, 200);
    let after = counts(&app, day).await;
    assert_eq!(
        after["generation_recorded"],
        before["generation_recorded"].as_u64().unwrap() + 1
    );
    assert_eq!(after["pool_like"], 1);
}

#[tokio::test]
async fn a_response_lost_after_the_commit_is_counted_once() {
    let fault = Fault::new("TransactWriteItems", FaultMode::LoseResponse, 1);
    let mut app = TestApp::spawn_at(at("2026-11-26T09:00:00Z")).await;
    app.intercept(fault.clone());
    app.record("uma", json!({"generation_id": "lost"}))
        .await
        .assert_problem(503, "dependency_unavailable");
    assert_eq!(fault.fired(), 1);
    assert_eq!(
        app.record("uma", json!({"generation_id": "lost"}))
            .await
            .status,
        200
    );
    assert_eq!(
        counts(&app, "2026-11-26").await,
        expected(&[("generation_recorded", 1)])
    );
}

#[tokio::test]
async fn parallel_actions_of_many_users_lose_no_count() {
    let app = TestApp::spawn_at(at("2026-11-26T09:00:00Z")).await;
    let item = app.listed_contribution("maker", b"a track").await;
    let users: Vec<String> = (0..24).map(|i| format!("crowd{i}")).collect();
    let generations = join_all(
        users
            .iter()
            .map(|u| app.record(u, json!({"generation_id": format!("{u}-g")}))),
    );
    let likes = join_all(users.iter().map(|u| like(&app, u, &item, true)));
    let plays = join_all(users.iter().map(|u| play(&app, u, &item)));
    let (generations, likes, plays) = tokio::join!(generations, likes, plays);
    for res in generations.iter() {
        assert_eq!(res.status, 201, "{}", res.text());
    }
    for res in likes.iter().chain(plays.iter()) {
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let today = counts(&app, "2026-11-26").await;
    // The crowd's 24, and the maker's 20th paid generation arranged the same day.
    assert_eq!(today["generation_recorded"], 25);
    assert_eq!(today["pool_contribution"], 1);
    assert_eq!(
        (today["pool_like"].clone(), today["pool_play"].clone()),
        (json!(24), json!(24))
    );
    let stored = stored(&app, &item).await;
    assert_eq!((stored.likes, stored.plays), (24, 24));
}

#[tokio::test]
async fn counting_rides_in_each_action_s_own_round_trips() {
    let counter = son1k_store::metrics::CallCounter::new();
    let mut app = TestApp::spawn_at(at("2026-11-26T09:00:00Z")).await;
    let item = app.listed_contribution("maker", b"a track").await;
    for id in ["c1", "c2"] {
        assert_eq!(
            app.record("cal", json!({"generation_id": id})).await.status,
            201
        );
    }
    app.intercept(counter.clone());
    assert_eq!(
        app.record("cal", json!({"generation_id": "c3"}))
            .await
            .status,
        201
    );
    assert_eq!(
        counter.take(),
        ["BatchGetItem", "UpdateItem", "TransactWriteItems"],
        "a generation: its count rides in the record transaction"
    );
    app.record("cal", json!({"generation_id": "c4"}))
        .await
        .assert_problem(429, "daily_limit_reached");
    assert_eq!(
        counter.take(),
        ["BatchGetItem", "BatchGetItem", "TransactWriteItems"],
        "a limit hit: the user, the replay check again (a parallel request with this id may have \
         recorded it), then one write of its count"
    );
    // A minute on, cal's request budget is idle again (the common case for a play).
    app.clock.advance(chrono::Duration::minutes(1));
    let play = play(&app, "cal", &item).await;
    assert_eq!(play.status, 200);
    assert_eq!(
        counter.take(),
        ["TransactWriteItems", "GetItem"],
        "a play, its count and the request budget in one transaction, then its plays read back"
    );
}

#[tokio::test]
async fn a_checkout_whose_count_fails_still_answers_its_session() {
    let fault = Fault::new("TransactWriteItems", FaultMode::FailBeforeSend, 1);
    let mut app = TestApp::spawn_at(at("2026-11-26T09:00:00Z")).await;
    app.intercept(fault.clone());
    let res = checkout(&app, "buyer").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(fault.fired(), 1, "the count was tried and failed");
    assert_eq!(counts(&app, "2026-11-26").await, expected(&[]));
    let again = checkout(&app, "buyer").await;
    assert_eq!(again.status, 200);
    assert_eq!(
        counts(&app, "2026-11-26").await,
        expected(&[("checkout_started", 1)])
    );
}

#[tokio::test]
async fn a_users_parallel_limit_hits_are_each_counted() {
    let app = TestApp::spawn_at(at("2026-11-26T09:00:00Z")).await;
    for id in ["h1", "h2", "h3"] {
        assert_eq!(
            app.record("hasty", json!({"generation_id": id}))
                .await
                .status,
            201
        );
    }
    let refused = join_all(
        (0..10).map(|i| app.record("hasty", json!({"generation_id": format!("over-{i}")}))),
    )
    .await;
    for res in &refused {
        res.assert_problem(429, "daily_limit_reached");
    }
    assert_eq!(
        counts(&app, "2026-11-26").await,
        expected(&[("generation_recorded", 3), ("limit_reached", 10)]),
        "ten refusals on one shard, none lost to a conflict"
    );
}
