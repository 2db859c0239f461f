//! The plan-change preview (`GET /api/tiers/preview?tier=`): for every pair of tiers, the `after` it
//! shows is the limits answer once the change is really made, by an admin's grant or by Stripe's
//! webhook; what takes effect when, and what Stripe would bill.

use serde_json::{json, Value};
use son1k_domain::entitlement::{SubscriptionStatus, TierSource};
use son1k_domain::tiers::Tier;
use son1k_tests::stripe::{SubEvent, PRICE_CREATOR, PRICE_PRO, PRICE_STUDIO};
use son1k_tests::{at, subscription, As, TestApp};

async fn preview(app: &TestApp, user: &str, tier: &str) -> son1k_tests::TestResponse {
    app.call(
        "GET",
        &format!("/api/tiers/preview?tier={tier}"),
        As::user(user),
        None,
    )
    .await
}

async fn ok_preview(app: &TestApp, user: &str, tier: Tier) -> Value {
    let res = preview(app, user, tier.as_str()).await;
    assert_eq!(res.status, 200, "{user} → {tier}: {}", res.text());
    res.json()
}

fn price(tier: Tier) -> &'static str {
    match tier {
        Tier::Creator => PRICE_CREATOR,
        Tier::Pro => PRICE_PRO,
        _ => PRICE_STUDIO,
    }
}

fn cents(tier: Tier) -> i64 {
    i64::try_from(tier.spec().price_cents).expect("cents")
}

#[tokio::test]
async fn by_an_admins_grant_every_change_is_at_once_and_after_is_what_the_grant_answers() {
    let app = TestApp::spawn().await;
    for from in Tier::ALL {
        for to in Tier::ALL.into_iter().filter(|t| *t != from) {
            let user = format!("a_{}_{}", from.as_str(), to.as_str()).to_lowercase();
            app.limits(&user).await;
            app.grant(&user, from).await;
            // Some usage in the period, which the change keeps.
            app.record(&user, json!({"generation_id": format!("{user}-1")}))
                .await;
            let shown = ok_preview(&app, &user, to).await;
            assert_eq!(shown["current"], app.limits(&user).await, "{user}");
            assert_eq!(shown["effective"], "now", "{user}");
            assert_eq!(shown["billing"], Value::Null, "{user}");
            let granted = app.grant(&user, to).await;
            assert_eq!(
                shown["after"], granted,
                "{user}: the preview against the grant"
            );
            assert_eq!(shown["after"], app.limits(&user).await, "{user}");
        }
    }
}

/// A Stripe subscriber on `tier` for 2026-11-20 .. 2026-12-20 (the tests' clock: the 26th), with
/// two generations in the period; the Stripe stub has the same subscription.
async fn subscriber(app: &TestApp, user: &str, tier: Tier) {
    let mut record = app.new_user(user);
    record.tier = tier;
    record.tier_source = TierSource::Stripe;
    record.stripe_customer_id = Some(format!("cus_{user}"));
    let mut sub = subscription(
        SubscriptionStatus::Active,
        price(tier),
        "2026-11-20T00:00:00Z",
        "2026-12-20T00:00:00Z",
    );
    sub.id = format!("sub_{user}");
    record.subscription = Some(sub);
    app.put_user(&record).await;
    app.stripe
        .put_subscription(local_api::stripe_stub::StubSubscription {
            id: format!("sub_{user}"),
            customer: format!("cus_{user}"),
            user: Some(user.to_owned()),
            price: price(tier).to_owned(),
            status: "active".into(),
            start: at("2026-11-20T00:00:00Z"),
            end: at("2026-12-20T00:00:00Z"),
        });
    for i in 0..2 {
        let res = app
            .record(user, json!({"generation_id": format!("{user}-{i}")}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
}

/// Stripe's event for `user`'s subscription, sent at `created`.
fn event(user: &str, kind: &str, tier: Tier, period: (&str, &str), created: &str) -> SubEvent {
    SubEvent {
        kind: kind.into(),
        created: created.into(),
        price: price(tier).into(),
        start: period.0.into(),
        end: period.1.into(),
        ..SubEvent::new(user)
    }
}

#[tokio::test]
async fn a_checkout_from_free_takes_effect_at_once_in_a_month_that_starts_then() {
    let app = TestApp::spawn().await;
    for to in [Tier::Creator, Tier::Pro, Tier::Studio] {
        let user = format!("c_{}", to.as_str()).to_lowercase();
        app.record(&user, json!({"generation_id": format!("{user}-1")}))
            .await;
        let shown = ok_preview(&app, &user, to).await;
        assert_eq!(shown["effective"], "now");
        assert_eq!(
            shown["billing"],
            Value::Null,
            "the checkout page shows the price"
        );
        assert_eq!(shown["current"]["used"], 1);
        // The checkout completes now: Stripe's subscription starts at this instant.
        let e = event(
            &user,
            "customer.subscription.created",
            to,
            ("2026-11-26T10:00:00Z", "2026-12-26T10:00:00Z"),
            "2026-11-26T10:00:00Z",
        );
        assert_eq!(app.webhook(&e.json()).await.status, 200);
        assert_eq!(shown["after"], app.limits(&user).await, "FREE → {to}");
        assert_eq!(shown["after"]["used"], 0, "a new billing month");
    }
}

#[tokio::test]
async fn a_subscribers_upgrade_is_now_in_the_same_period_billed_with_the_prorations() {
    let app = TestApp::spawn().await;
    for (from, to) in [
        (Tier::Creator, Tier::Pro),
        (Tier::Creator, Tier::Studio),
        (Tier::Pro, Tier::Studio),
    ] {
        let user = format!("u_{}_{}", from.as_str(), to.as_str()).to_lowercase();
        subscriber(&app, &user, from).await;
        let shown = ok_preview(&app, &user, to).await;
        assert_eq!(shown["effective"], "now");
        assert_eq!(shown["after"]["used"], 2, "the period's usage is kept");
        // The stub prorates as Stripe does: the difference, for what is left of the period
        // (24 days 14 h of 30 days) after the preview's instant.
        let left = (at("2026-12-20T00:00:00Z") - at("2026-11-26T10:00:00Z")).num_seconds();
        let whole = (at("2026-12-20T00:00:00Z") - at("2026-11-20T00:00:00Z")).num_seconds();
        let due = (cents(to) - cents(from)) * left / whole;
        assert_eq!(
            shown["billing"],
            json!({"amount_due_now_cents": due, "currency": "usd",
                   "next_amount_cents": cents(to), "next_billing_at": "2026-12-20T00:00:00Z"})
        );
        // What Stripe was asked: the subscription's item switched to the new price.
        let asked: Vec<_> = app
            .stripe
            .requests_to("/v1/invoices/create_preview")
            .into_iter()
            .filter(|r| r.params.get("subscription") == Some(&format!("sub_{user}")))
            .collect();
        assert_eq!(asked.len(), 2, "the invoice now and the next one");
        for r in &asked {
            assert_eq!(r.params["subscription_details[items][0][id]"], "si_QxItem");
            assert_eq!(r.params["subscription_details[items][0][price]"], price(to));
        }
        assert_eq!(
            asked[0].params["subscription_details[proration_behavior]"],
            "always_invoice"
        );
        assert_eq!(
            asked[0].params["subscription_details[proration_date]"],
            at("2026-11-26T10:00:00Z").timestamp().to_string()
        );
        // Stripe switches the plan in the same period: the webhook's result is the preview's.
        let e = event(
            &user,
            "customer.subscription.updated",
            to,
            ("2026-11-20T00:00:00Z", "2026-12-20T00:00:00Z"),
            "2026-11-26T10:00:00Z",
        );
        assert_eq!(app.webhook(&e.json()).await.status, 200);
        assert_eq!(shown["after"], app.limits(&user).await, "{from} → {to}");
    }
}

#[tokio::test]
async fn a_subscribers_downgrade_takes_effect_at_the_periods_end_in_the_next_period() {
    for (from, to) in [
        (Tier::Pro, Tier::Creator),
        (Tier::Studio, Tier::Creator),
        (Tier::Studio, Tier::Pro),
        (Tier::Creator, Tier::Free),
        (Tier::Pro, Tier::Free),
        (Tier::Studio, Tier::Free),
    ] {
        let app = TestApp::spawn().await;
        let user = format!("d_{}_{}", from.as_str(), to.as_str()).to_lowercase();
        subscriber(&app, &user, from).await;
        let shown = ok_preview(&app, &user, to).await;
        assert_eq!(shown["effective"], "period_end");
        assert_eq!(
            shown["current"]["tier"],
            from.as_str(),
            "nothing changed yet"
        );
        let billing = if to == Tier::Free {
            json!({"amount_due_now_cents": 0, "currency": "usd", "next_amount_cents": 0,
                   "next_billing_at": null})
        } else {
            json!({"amount_due_now_cents": 0, "currency": "usd", "next_amount_cents": cents(to),
                   "next_billing_at": "2026-12-20T00:00:00Z"})
        };
        assert_eq!(shown["billing"], billing, "{from} → {to}");
        // At the period's end Stripe renews at the new price, or ends the subscription.
        app.clock.set(at("2026-12-20T00:00:00Z"));
        let e = if to == Tier::Free {
            SubEvent {
                status: "canceled".into(),
                cancel_at_period_end: true,
                ..event(
                    &user,
                    "customer.subscription.deleted",
                    from,
                    ("2026-11-20T00:00:00Z", "2026-12-20T00:00:00Z"),
                    "2026-12-20T00:00:00Z",
                )
            }
        } else {
            event(
                &user,
                "customer.subscription.updated",
                to,
                ("2026-12-20T00:00:00Z", "2027-01-20T00:00:00Z"),
                "2026-12-20T00:00:00Z",
            )
        };
        assert_eq!(app.webhook(&e.json()).await.status, 200);
        assert_eq!(shown["after"], app.limits(&user).await, "{from} → {to}");
    }
}

#[tokio::test]
async fn the_tier_in_force_is_409_and_an_unknown_one_400() {
    let app = TestApp::spawn().await;
    let same = preview(&app, "sam", "FREE").await;
    same.assert_problem(409, "already_on_tier");
    for bad in ["GOLD", "pro", ""] {
        let res = preview(&app, "sam", bad).await;
        assert_eq!(
            res.assert_problem(400, "invalid_request")["field"],
            "tier",
            "{bad}"
        );
    }
    let res = app
        .call("GET", "/api/tiers/preview", As::user("sam"), None)
        .await;
    assert_eq!(res.assert_problem(400, "invalid_request")["field"], "tier");
    assert_eq!(
        app.call("GET", "/api/tiers/preview?tier=PRO", None, None)
            .await
            .status,
        401
    );
}
