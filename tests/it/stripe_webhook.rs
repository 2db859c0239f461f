//! `POST /api/tiers/webhook` over the local stack: signatures, exactly-once application, ordering,
//! the subscription lifecycle and what it does to the quota.

use futures::future::join_all;
use serde_json::json;
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use son1k_store::billing::event_pk;
use son1k_tests::stripe::{
    checkout_completed, invoice_paid, sign, SubEvent, PRICE_CREATOR, PRICE_PRO, PRICE_STUDIO,
    WEBHOOK_SECRET,
};
use son1k_tests::{at, NowUtc, TestApp};

/// Sends `event`, asserts `200 {"received": true}`.
async fn deliver(app: &TestApp, event: &SubEvent) {
    let res = app.webhook(&event.json()).await;
    assert_eq!(res.status, 200, "{}: {}", event.kind, res.text());
    assert_eq!(res.json(), json!({"received": true}));
}

async fn tier_of(app: &TestApp, user: &str) -> String {
    app.limits(user).await["tier"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn event_stored(app: &TestApp, id: &str) -> bool {
    !app.items(&app.state.config.names.stats_table, &event_pk(id))
        .await
        .is_empty()
}

#[test]
fn the_fixtures_are_stripe_events_and_the_builder_edits_them() {
    use son1k_tests::stripe::{
        CHECKOUT_COMPLETED, INVOICE_PAID, PRICE_CREATOR, SUBSCRIPTION_UPDATED,
    };
    for text in [SUBSCRIPTION_UPDATED, CHECKOUT_COMPLETED, INVOICE_PAID] {
        let event: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(event["object"], "event");
        assert!(event["data"]["object"].is_object());
    }
    let e = SubEvent {
        no_period: true,
        user: Some("u".into()),
        ..SubEvent::new("u")
    }
    .json();
    let item = &e["data"]["object"]["items"]["data"][0];
    assert!(item.get("current_period_start").is_none());
    assert_eq!(item["price"]["id"], PRICE_CREATOR);
    assert_eq!(e["data"]["object"]["metadata"]["user_id"], "u");
}

#[tokio::test]
async fn bad_missing_stale_or_tampered_signatures_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app
        .user_with_tier("sig", Tier::Free, TierSource::Default)
        .await;
    let event = SubEvent::new("sig");
    let body = event.json().to_string();
    let now = app.clock.now_utc().timestamp();
    let tampered = body.replace("\"active\"", "\"trialing\"");
    for (body, header) in [
        (body.clone(), None),
        (body.clone(), Some(sign(&body, now, "whsec_someone_else"))),
        (body.clone(), Some(sign(&body, now - 301, WEBHOOK_SECRET))),
        (body.clone(), Some(sign(&body, now + 301, WEBHOOK_SECRET))),
        (tampered, Some(sign(&body, now, WEBHOOK_SECRET))),
        (body.clone(), Some(format!("t={now},v0=abc"))),
        (body.clone(), Some("not a signature".to_owned())),
    ] {
        let res = app.webhook_raw(&body, header.as_deref()).await;
        res.assert_problem(400, "invalid_signature");
        assert!(!res.text().contains(WEBHOOK_SECRET));
    }
    assert_eq!(app.user_record("sig").await, Some(before));
    assert!(
        !event_stored(&app, &event.id).await,
        "the event id is not burned"
    );

    // The same event, properly signed (at the edge of the tolerance), is then applied.
    let res = app
        .webhook_raw(&body, Some(&sign(&body, now - 300, WEBHOOK_SECRET)))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(tier_of(&app, "sig").await, "CREATOR");
    assert!(event_stored(&app, &event.id).await);
}

#[tokio::test]
async fn a_signature_among_several_v1_values_is_accepted_for_secret_rotation() {
    let app = TestApp::spawn().await;
    app.user_with_tier("rot", Tier::Free, TierSource::Default)
        .await;
    let body = SubEvent::new("rot").json().to_string();
    let now = app.clock.now_utc().timestamp();
    let ours = sign(&body, now, WEBHOOK_SECRET);
    let ours_v1 = ours.split(",v1=").nth(1).expect("v1");
    let old = sign(&body, now, "whsec_old_secret");
    let old_v1 = old.split(",v1=").nth(1).expect("v1");
    let t = format!("t={now}");
    // Ours first, last, between two others, or alone: accepted; only others: refused.
    for (header, accepted) in [
        (format!("{t},v1={ours_v1},v1={old_v1}"), true),
        (format!("{t},v1={old_v1},v1={ours_v1}"), true),
        (format!("{t},v1={old_v1},v1={ours_v1},v1={old_v1}"), true),
        (format!("{t},v1={ours_v1}"), true),
        (format!("{t},v1={old_v1},v1={old_v1}"), false),
    ] {
        let res = app.webhook_raw(&body, Some(&header)).await;
        if accepted {
            assert_eq!(res.status, 200, "{header}: {}", res.text());
        } else {
            res.assert_problem(400, "invalid_signature");
        }
    }
    assert_eq!(tier_of(&app, "rot").await, "CREATOR");
}

/// The webhook secret is read from Secrets Manager once. Events signed with a rotated secret verify
/// once the one in memory is a minute old (a bad signature reads the secret again at most once a
/// minute, so unsigned floods cannot each cost a Secrets Manager call).
#[tokio::test]
async fn a_rotated_webhook_secret_is_read_again_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    for user in ["r1", "r2", "r3"] {
        app.user_with_tier(user, Tier::Free, TierSource::Default)
            .await;
    }
    let signed_with = |user: &str, secret: &str| {
        let body = SubEvent::new(user).json().to_string();
        let header = sign(&body, app.clock.now_utc().timestamp(), secret);
        (body, header)
    };
    let (body, header) = signed_with("r1", WEBHOOK_SECRET);
    assert_eq!(app.webhook_raw(&body, Some(&header)).await.status, 200);

    app.rotate_stripe_secret(son1k_tests::stripe::SECRET_KEY, "whsec_rotated_once")
        .await;
    let (body, header) = signed_with("r2", "whsec_rotated_once");
    app.webhook_raw(&body, Some(&header))
        .await
        .assert_problem(400, "invalid_signature");
    assert_eq!(tier_of(&app, "r2").await, "FREE", "read again too soon");

    app.clock.advance(chrono::Duration::seconds(61));
    let (body, header) = signed_with("r2", "whsec_rotated_once");
    let res = app.webhook_raw(&body, Some(&header)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(tier_of(&app, "r2").await, "CREATOR");
    // The old secret is gone with the rotation.
    let (body, header) = signed_with("r3", WEBHOOK_SECRET);
    app.webhook_raw(&body, Some(&header))
        .await
        .assert_problem(400, "invalid_signature");
    assert_eq!(tier_of(&app, "r3").await, "FREE");
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_event_is_a_400_and_an_oversized_body_a_413() {
    let app = TestApp::spawn().await;
    let now = app.clock.now_utc().timestamp();
    for (body, field) in [
        ("{not json", "body"),
        ("[]", "body"),
        (
            r#"{"id":"evt_1","type":"customer.subscription.updated","created":1}"#,
            "data.object",
        ),
        (
            r#"{"id":"evt_2","type":"customer.subscription.updated","created":1764151200,"data":{"object":{"status":"active"}}}"#,
            "data.object.id",
        ),
    ] {
        let res = app
            .webhook_raw(body, Some(&sign(body, now, WEBHOOK_SECRET)))
            .await;
        let doc = res.assert_problem(400, "invalid_request");
        assert_eq!(doc["field"], field, "{body}");
    }
    let huge = format!(
        r#"{{"id":"evt_big","type":"x","created":1,"data":{{"object":{{"pad":"{}"}}}}}}"#,
        "x".repeat(256 * 1024)
    );
    let res = app
        .webhook_raw(&huge, Some(&sign(&huge, now, WEBHOOK_SECRET)))
        .await;
    res.assert_problem(413, "payload_too_large");
    assert!(!event_stored(&app, "evt_big").await && !event_stored(&app, "evt_2").await);
}

#[tokio::test]
async fn the_lifecycle_moves_the_tier_creator_pro_pro_free() {
    let app = TestApp::spawn().await;
    app.user_with_tier("life", Tier::Free, TierSource::Default)
        .await;
    let steps = [
        (
            "customer.subscription.created",
            "active",
            son1k_tests::stripe::PRICE_CREATOR,
            "CREATOR",
        ),
        ("customer.subscription.updated", "active", PRICE_PRO, "PRO"),
        (
            "customer.subscription.updated",
            "past_due",
            PRICE_PRO,
            "PRO",
        ),
        (
            "customer.subscription.deleted",
            "canceled",
            PRICE_PRO,
            "FREE",
        ),
    ];
    for (i, (kind, status, price, tier)) in steps.into_iter().enumerate() {
        app.clock.advance(chrono::Duration::minutes(1));
        let event = SubEvent {
            kind: kind.into(),
            status: status.into(),
            price: price.into(),
            created: app.clock.now_utc().to_rfc3339(),
            ..SubEvent::new("life")
        };
        deliver(&app, &event).await;
        let limits = app.limits("life").await;
        assert_eq!(limits["tier"], tier, "step {i}: {kind} {status}");
        let user = app.user_record("life").await.expect("user");
        assert_eq!(
            user.entitlement_rev,
            i as u64 + 1,
            "each change bumps the revision"
        );
        assert_eq!(user.stripe_customer_id.as_deref(), Some("cus_life"));
    }
    let limits = app.limits("life").await;
    assert_eq!(limits["subscription"]["status"], "canceled");
    assert_eq!(limits["period"], "day");
}

#[tokio::test]
async fn one_event_sent_five_times_in_parallel_is_applied_once() {
    let app = TestApp::spawn().await;
    app.user_with_tier("par", Tier::Free, TierSource::Default)
        .await;
    let event = SubEvent {
        price: PRICE_PRO.into(),
        ..SubEvent::new("par")
    }
    .json();
    let answers = join_all((0..5).map(|_| app.webhook(&event))).await;
    for res in &answers {
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let user = app.user_record("par").await.expect("user");
    assert_eq!(
        (user.tier, user.entitlement_rev),
        (Tier::Pro, 1),
        "applied exactly once"
    );
    // And once more, later: acknowledged, not applied again.
    assert_eq!(app.webhook(&event).await.status, 200);
    assert_eq!(
        app.user_record("par").await.expect("user").entitlement_rev,
        1
    );
}

#[tokio::test]
async fn an_older_update_after_a_newer_one_changes_nothing() {
    let app = TestApp::spawn().await;
    app.user_with_tier("ord", Tier::Free, TierSource::Default)
        .await;
    let older = SubEvent {
        created: "2026-11-26T09:00:00Z".into(),
        price: PRICE_PRO.into(),
        ..SubEvent::new("ord")
    };
    let newer = SubEvent {
        created: "2026-11-26T09:05:00Z".into(),
        price: PRICE_STUDIO.into(),
        ..SubEvent::new("ord")
    };
    deliver(&app, &newer).await;
    let after_newer = app.user_record("ord").await;
    deliver(&app, &older).await;
    assert_eq!(app.user_record("ord").await, after_newer);
    assert_eq!(tier_of(&app, "ord").await, "STUDIO");
}

#[tokio::test]
async fn a_late_update_after_deleted_does_not_resurrect_the_subscription() {
    let app = TestApp::spawn().await;
    app.user_with_tier("late", Tier::Free, TierSource::Default)
        .await;
    let deleted = SubEvent {
        kind: "customer.subscription.deleted".into(),
        status: "canceled".into(),
        created: "2026-11-26T09:10:00Z".into(),
        ..SubEvent::new("late")
    };
    deliver(&app, &deleted).await;
    for created in [
        "2026-11-26T09:00:00Z",
        "2026-11-26T09:10:00Z",
        "2026-11-26T09:20:00Z",
    ] {
        let late = SubEvent {
            created: created.into(),
            ..SubEvent::new("late")
        };
        deliver(&app, &late).await;
        assert_eq!(
            tier_of(&app, "late").await,
            "FREE",
            "update sent at {created}"
        );
    }
}

#[tokio::test]
async fn metadata_claiming_studio_with_the_creator_price_gives_creator() {
    let app = TestApp::spawn().await;
    app.user_with_tier("meta", Tier::Free, TierSource::Default)
        .await;
    let mut event = SubEvent::new("meta").json();
    event["data"]["object"]["metadata"]["tier"] = json!("STUDIO");
    event["data"]["object"]["items"]["data"][0]["metadata"] = json!({"tier": "STUDIO"});
    assert_eq!(app.webhook(&event).await.status, 200);
    assert_eq!(tier_of(&app, "meta").await, "CREATOR");
}

#[tokio::test]
async fn a_price_we_do_not_sell_or_a_subscription_without_a_period_changes_nothing() {
    let app = TestApp::spawn().await;
    let before = app
        .user_with_tier("odd", Tier::Free, TierSource::Default)
        .await;
    let unknown = SubEvent {
        price: "price_gold_lifetime".into(),
        ..SubEvent::new("odd")
    };
    let no_period = SubEvent {
        no_period: true,
        ..SubEvent::new("odd")
    };
    for event in [unknown, no_period] {
        deliver(&app, &event).await;
        assert!(!event_stored(&app, &event.id).await);
    }
    assert_eq!(app.user_record("odd").await, Some(before));
}

#[tokio::test]
async fn the_billing_period_is_read_from_the_items_or_from_the_subscription() {
    let app = TestApp::spawn().await;
    for (user, on_subscription) in [("items", false), ("top", true)] {
        app.user_with_tier(user, Tier::Free, TierSource::Default)
            .await;
        let event = SubEvent {
            start: "2026-11-10T08:30:00Z".into(),
            end: "2026-12-10T08:30:00Z".into(),
            period_on_subscription: on_subscription,
            ..SubEvent::new(user)
        };
        if !on_subscription {
            let object = &event.json()["data"]["object"];
            assert!(object.get("current_period_start").is_none(), "items only");
        }
        deliver(&app, &event).await;
        let limits = app.limits(user).await;
        assert_eq!(
            (limits["period_start"].as_str(), limits["reset_at"].as_str()),
            (Some("2026-11-10T08:30:00Z"), Some("2026-12-10T08:30:00Z")),
            "{user}: {limits}"
        );
    }
}

#[tokio::test]
async fn active_unpaid_active_in_one_period_keeps_what_was_used() {
    let app = TestApp::spawn().await;
    app.user_with_tier("dun", Tier::Free, TierSource::Default)
        .await;
    let at_minute =
        |m: i64| (at("2026-11-26T09:00:00Z") + chrono::Duration::minutes(m)).to_rfc3339();
    deliver(
        &app,
        &SubEvent {
            created: at_minute(0),
            ..SubEvent::new("dun")
        },
    )
    .await;
    for id in ["g1", "g2"] {
        assert_eq!(
            app.record("dun", json!({"generation_id": id})).await.status,
            201
        );
    }
    deliver(
        &app,
        &SubEvent {
            created: at_minute(1),
            status: "unpaid".into(),
            ..SubEvent::new("dun")
        },
    )
    .await;
    assert_eq!(tier_of(&app, "dun").await, "FREE");
    deliver(
        &app,
        &SubEvent {
            created: at_minute(2),
            ..SubEvent::new("dun")
        },
    )
    .await;
    let limits = app.limits("dun").await;
    assert_eq!(
        (limits["tier"].as_str(), limits["used"].as_u64()),
        (Some("CREATOR"), Some(2))
    );
    assert_eq!(limits["remaining"], 48);
}

#[tokio::test]
async fn a_renewal_starts_a_fresh_count_at_the_new_period_start() {
    let app = TestApp::spawn().await;
    app.user_with_tier("ren", Tier::Free, TierSource::Default)
        .await;
    deliver(
        &app,
        &SubEvent {
            created: "2026-11-26T09:00:00Z".into(),
            ..SubEvent::new("ren")
        },
    )
    .await;
    assert_eq!(
        app.record("ren", json!({"generation_id": "r1"}))
            .await
            .status,
        201
    );
    app.clock.set(at("2026-12-20T00:00:05Z"));
    deliver(
        &app,
        &SubEvent {
            created: "2026-12-20T00:00:01Z".into(),
            start: "2026-12-20T00:00:00Z".into(),
            end: "2027-01-20T00:00:00Z".into(),
            ..SubEvent::new("ren")
        },
    )
    .await;
    let limits = app.limits("ren").await;
    assert_eq!(limits["period_start"], "2026-12-20T00:00:00Z");
    assert_eq!(limits["used"], 0);
}

#[tokio::test]
async fn an_event_without_user_metadata_finds_the_user_by_customer() {
    let app = TestApp::spawn().await;
    app.user_with_customer("bycus", "cus_known").await;
    let event = SubEvent {
        user: None,
        customer: "cus_known".into(),
        ..SubEvent::new("bycus")
    };
    deliver(&app, &event).await;
    assert_eq!(tier_of(&app, "bycus").await, "CREATOR");
}

#[tokio::test]
async fn a_completed_checkout_links_the_customer_of_a_user_who_has_none() {
    let app = TestApp::spawn().await;
    app.user_with_tier("link", Tier::Free, TierSource::Default)
        .await;
    let now = app.clock.now_utc();
    let res = app
        .webhook(&checkout_completed(
            "evt_co",
            Some("link"),
            "cus_linked",
            now,
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let user = app.user_record("link").await.expect("user");
    assert_eq!(user.stripe_customer_id.as_deref(), Some("cus_linked"));
    assert_eq!(
        user.tier,
        Tier::Free,
        "the tier comes with the subscription events"
    );
    // A later subscription event without metadata now finds the user.
    let event = SubEvent {
        user: None,
        customer: "cus_linked".into(),
        ..SubEvent::new("link")
    };
    deliver(&app, &event).await;
    assert_eq!(tier_of(&app, "link").await, "CREATOR");
}

#[tokio::test]
async fn unknown_users_and_types_we_do_not_handle_are_acknowledged() {
    let app = TestApp::spawn().await;
    let now = app.clock.now_utc();
    let ghost = SubEvent {
        user: None,
        customer: "cus_nobody".into(),
        ..SubEvent::new("ghost")
    };
    let mut other = SubEvent::new("ghost").json();
    other["type"] = json!("customer.discount.created");
    for event in [
        ghost.json(),
        SubEvent::new("never_seen").json(),
        checkout_completed("evt_c2", Some("nobody"), "cus_nobody", now),
        invoice_paid("evt_inv"),
        other,
    ] {
        let res = app.webhook(&event).await;
        assert_eq!(
            (res.status, res.json()),
            (200, json!({"received": true})),
            "{}",
            event["type"]
        );
    }
    assert!(
        app.user_record("never_seen").await.is_none(),
        "no user is created by a webhook"
    );
    assert!(app.user_record("ghost").await.is_none());
}

#[tokio::test]
async fn an_ending_subscription_leaves_an_admin_grant_in_place() {
    let app = TestApp::spawn().await;
    app.user_with_tier("partner", Tier::Studio, TierSource::Admin)
        .await;
    let deleted = SubEvent {
        kind: "customer.subscription.deleted".into(),
        status: "canceled".into(),
        ..SubEvent::new("partner")
    };
    deliver(&app, &deleted).await;
    assert_eq!(tier_of(&app, "partner").await, "STUDIO");
}

#[tokio::test]
async fn without_a_webhook_secret_the_webhook_answers_billing_not_configured() {
    let app = TestApp::spawn().await;
    let app = app
        .with_billing(|b| {
            b.secret_name = Some(format!("{}-none", app.state.config.names.users_table))
        })
        .await;
    let res = app.webhook(&SubEvent::new("x").json()).await;
    res.assert_problem(503, "billing_not_configured");
}

/// A Stripe secret created after the functions started is found within a minute, without a
/// redeploy: the first deploy can go out without Stripe and billing be switched on later.
#[tokio::test]
async fn a_stripe_secret_created_later_is_found_within_a_minute() {
    let app = TestApp::spawn().await;
    app.user_with_tier("late", Tier::Free, TierSource::Default)
        .await;
    let name = format!("{}-later", app.state.config.names.users_table);
    let app = app
        .with_billing(|b| b.secret_name = Some(name.clone()))
        .await;
    let event = SubEvent::new("late").json();
    app.webhook(&event)
        .await
        .assert_problem(503, "billing_not_configured");
    son1k_tests::secrets_client(&app.state)
        .create_secret()
        .name(&name)
        .secret_string(son1k_tests::stripe::secret_json())
        .send()
        .await
        .expect("create the Stripe secret");
    app.webhook(&event)
        .await
        .assert_problem(503, "billing_not_configured");
    app.clock.advance(chrono::Duration::seconds(61));
    let res = app.webhook(&event).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(tier_of(&app, "late").await, "CREATOR");
}

#[tokio::test]
async fn a_store_outage_is_a_503_and_stripe_s_retry_then_applies_the_event() {
    let app = TestApp::spawn().await;
    app.user_with_tier("out", Tier::Free, TierSource::Default)
        .await;
    let down = TestApp::with_store_down().await;
    let event = SubEvent::new("out").json();
    let res = down.webhook(&event).await;
    res.assert_problem(503, "dependency_unavailable");
    assert_eq!(app.webhook(&event).await.status, 200);
    assert_eq!(tier_of(&app, "out").await, "CREATOR");
}

#[tokio::test]
async fn metadata_never_moves_a_customer_s_subscription_to_another_user() {
    let app = TestApp::spawn().await;
    app.user_with_customer("owner", "cus_owner").await;
    let bystander = app
        .user_with_tier("bystander", Tier::Free, TierSource::Default)
        .await;
    let event = SubEvent {
        customer: "cus_owner".into(),
        price: PRICE_PRO.into(),
        ..SubEvent::new("bystander")
    };
    deliver(&app, &event).await;
    assert_eq!(tier_of(&app, "owner").await, "PRO");
    assert_eq!(app.user_record("bystander").await, Some(bystander));
}

#[tokio::test]
async fn a_webhook_costs_one_read_and_one_transaction_and_a_repeat_one_read() {
    let counter = son1k_store::metrics::CallCounter::new();
    let mut app = TestApp::spawn().await;
    // As after a checkout: the customer is stored. (A user without one costs one Query more, to
    // make sure no one else owns the event's customer.)
    app.user_with_customer("calls", "cus_calls").await;
    app.intercept(counter.clone());
    let event = SubEvent::new("calls").json();
    assert_eq!(app.webhook(&event).await.status, 200);
    assert_eq!(counter.take(), vec!["GetItem", "TransactWriteItems"]);
    assert_eq!(app.webhook(&event).await.status, 200);
    assert_eq!(
        counter.take(),
        vec!["GetItem"],
        "a repeat is stale by its fence"
    );
}

#[tokio::test]
async fn a_subscription_cancelled_at_period_end_keeps_the_tier_until_that_end() {
    let app = TestApp::spawn().await;
    app.user_with_tier("leaving", Tier::Free, TierSource::Default)
        .await;
    let mut event = SubEvent {
        price: PRICE_PRO.into(),
        ..SubEvent::new("leaving")
    }
    .json();
    event["data"]["object"]["cancel_at_period_end"] = json!(true);
    assert_eq!(app.webhook(&event).await.status, 200);
    let limits = app.limits("leaving").await;
    assert_eq!(limits["tier"], "PRO");
    assert_eq!(limits["subscription"]["cancel_at_period_end"], true);
    let after = app.with_clock_at(at("2026-12-20T00:00:00Z"));
    assert_eq!(after.limits("leaving").await["tier"], "FREE");
}

/// Stripe's `created` has one-second resolution: two `customer.subscription.updated` of one
/// subscription in one second cannot be ordered by themselves. The second to arrive reads the
/// subscription from Stripe (one call, only in a tie) and stores what Stripe says now, whichever
/// event id sorts first; events of different seconds never call Stripe.
#[tokio::test]
async fn two_updates_of_one_second_are_settled_by_what_stripe_says_now() {
    use local_api::stripe_stub::StubSubscription;
    let app = TestApp::spawn().await;
    let second = "2026-11-26T09:00:00Z";
    let truth = |user: &str, price: &str| StubSubscription {
        id: format!("sub_{user}"),
        customer: format!("cus_{user}"),
        user: Some(user.to_owned()),
        price: price.to_owned(),
        status: "active".into(),
        start: at("2026-11-20T00:00:00Z"),
        end: at("2026-12-20T00:00:00Z"),
    };
    // Event ids are Stripe's, unique across users: `evt_a_<user>` sorts before `evt_z_<user>`.
    let update = |user: &str, id: &str, price: &str| SubEvent {
        id: format!("{id}_{user}"),
        created: second.to_owned(),
        price: price.to_owned(),
        ..SubEvent::new(user)
    };
    for (user, first, later, now, expected) in [
        // The later event sorts first by id (older rule: ignored as stale); Stripe says STUDIO.
        (
            "tie1",
            ("evt_z", PRICE_PRO),
            ("evt_a", PRICE_STUDIO),
            PRICE_STUDIO,
            "STUDIO",
        ),
        // The later event sorts last by id (older rule: applied); Stripe says PRO.
        (
            "tie2",
            ("evt_a", PRICE_CREATOR),
            ("evt_z", PRICE_STUDIO),
            PRICE_PRO,
            "PRO",
        ),
    ] {
        app.user_with_tier(user, Tier::Free, TierSource::Default)
            .await;
        app.stripe.put_subscription(truth(user, now));
        let path = format!("/v1/subscriptions/sub_{user}");
        deliver(&app, &update(user, first.0, first.1)).await;
        assert!(app.stripe.requests_to(&path).is_empty(), "no tie yet");
        deliver(&app, &update(user, later.0, later.1)).await;
        assert_eq!(tier_of(&app, user).await, expected, "{user}");
        assert_eq!(app.stripe.requests_to(&path).len(), 1, "{user}: one read");
        // A redelivery ties again (one more read) and is a duplicate: nothing changes.
        deliver(&app, &update(user, later.0, later.1)).await;
        assert_eq!(tier_of(&app, user).await, expected, "{user}");
        assert_eq!(app.stripe.requests_to(&path).len(), 2, "{user}");
        // The next second orders by itself again.
        let next = SubEvent {
            created: "2026-11-26T09:00:01Z".into(),
            price: PRICE_CREATOR.into(),
            ..SubEvent::new(user)
        };
        deliver(&app, &next).await;
        assert_eq!(tier_of(&app, user).await, "CREATOR", "{user}");
        assert_eq!(app.stripe.requests_to(&path).len(), 2, "{user}");
    }
}
