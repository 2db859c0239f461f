//! The Stripe stub's hosted pages, so `make dev` can go through a whole subscription: the checkout
//! page's "Pay" completes the session, creates the subscription and delivers signed
//! `checkout.session.completed` and `customer.subscription.created` events to the webhook; the
//! billing portal page switches plans, makes a payment fail or cancels, each with its
//! `customer.subscription.*` event. Events are built from the same real-shaped fixtures as the tests'.

use crate::stripe_events::{checkout_completed, sign, SubEvent};
use crate::stripe_stub::{lock, Shared};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A subscription the stub made: enough to send its events.
#[derive(Debug, Clone)]
pub struct StubSubscription {
    pub id: String,
    pub customer: String,
    pub user: Option<String>,
    pub price: String,
    pub status: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

pub(crate) fn routes() -> Router<Arc<crate::stripe_stub::Stub>> {
    Router::new()
        .route("/c/pay/{id}", get(checkout_page).post(pay))
        .route("/p/session/{id}", get(portal_page).post(portal_action))
}

/// A whole page: a browser asks nothing more of the stub than the page itself.
fn document(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"icon\" href=\"data:,\"></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    ))
}

async fn checkout_page(State(stub): Shared, Path(id): Path<String>) -> Response {
    let Some((session, price, _)) = find_session(&stub, &id) else {
        return (StatusCode::NOT_FOUND, "no such checkout session").into_response();
    };
    let user = field(&session, "client_reference_id").unwrap_or("?");
    let what = if field(&session, "mode") == Some("payment") {
        "buys"
    } else {
        "subscribes to"
    };
    document(
        "Stripe Checkout (local stub)",
        &format!(
            "<p>{user} {what} <code>{price}</code>.</p><form method=post><button>Pay</button></form>"
        ),
    )
    .into_response()
}

/// Completes the session: a subscription on its price, its events delivered, then the redirect to
/// the session's `success_url` as Stripe does.
async fn pay(State(stub): Shared, Path(id): Path<String>) -> Response {
    let Some((session, price, trial)) = find_session(&stub, &id) else {
        return (StatusCode::NOT_FOUND, "no such checkout session").into_response();
    };
    let now = Utc::now();
    let back = field(&session, "success_url")
        .unwrap_or("/")
        .replace("{CHECKOUT_SESSION_ID}", &id);
    // The card paid with stays on the customer, as Checkout saves it.
    if let Some(customer) = field(&session, "customer") {
        stub.state.attach_payment_method(customer);
    }
    if field(&session, "mode") == Some("payment") {
        // A pack: paid by card at once, so `checkout.session.completed` says `paid`.
        let metadata = |name: &str| {
            session
                .pointer(&format!("/metadata/{name}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let paid = crate::stripe_events::PackEvent {
            customer: field(&session, "customer").unwrap_or_default().to_owned(),
            payment_intent: format!("pi_{}", ulid::Ulid::generate()),
            pack: metadata("pack"),
            generations: metadata("generations").parse().unwrap_or_default(),
            ..crate::stripe_events::PackEvent::new(&metadata("user_id"), &id, now)
        };
        deliver(&stub, paid.json()).await;
        return Redirect::to(&back).into_response();
    }
    let sub = StubSubscription {
        id: format!("sub_{}", ulid::Ulid::generate()),
        customer: field(&session, "customer").unwrap_or_default().to_owned(),
        user: field(&session, "client_reference_id").map(str::to_owned),
        price,
        // A trial's first period is the trial; the first invoice comes at its end.
        status: if trial.is_some() {
            "trialing"
        } else {
            "active"
        }
        .into(),
        start: now,
        end: match trial {
            Some(days) => now + chrono::Duration::days(i64::from(days)),
            None => now
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(now),
        },
    };
    lock(&stub.state.subscriptions).push(sub.clone());
    let completed = checkout_completed(
        &format!("evt_{}", ulid::Ulid::generate()),
        sub.user.as_deref(),
        &sub.customer,
        now,
    );
    deliver(&stub, completed).await;
    deliver(&stub, event(&sub, "customer.subscription.created")).await;
    Redirect::to(&back).into_response()
}

async fn portal_page(State(stub): Shared, Path(id): Path<String>) -> Response {
    let Some(customer) = portal_customer(&stub, &id) else {
        return (StatusCode::NOT_FOUND, "no such portal session").into_response();
    };
    let rows: String = subscriptions_of(&stub, &customer)
        .iter()
        .map(|s| {
            format!(
                "<li><code>{}</code> {} on <code>{}</code>: \
                 <form method=post style=display:inline>\
                 <input type=hidden name=sub value={}>\
                 <button name=action value=cancel>cancel now</button>\
                 <button name=action value=past_due>payment fails</button>\
                 <button name=action value=active>payment succeeds</button>\
                 <button name=action value=price_pro_monthly>switch to PRO</button>\
                 <button name=action value=price_studio_monthly>switch to STUDIO</button>\
                 <button name=action value=price_creator_monthly>switch to CREATOR</button></form></li>",
                s.id, s.status, s.price, s.id
            )
        })
        .collect();
    document(
        "Billing portal (local stub)",
        &format!("<p>Customer <code>{customer}</code></p><ul>{rows}</ul>"),
    )
    .into_response()
}

/// One action of the portal page on one subscription, and the event Stripe would send for it.
async fn portal_action(
    State(stub): Shared,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    // The page posts a form; `curl -X POST '...?sub=..&action=..'` works too.
    let form: HashMap<String, String> = if body.is_empty() {
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default()
    } else {
        serde_urlencoded::from_bytes(&body).unwrap_or_default()
    };
    let (Some(customer), Some(sub_id), Some(action)) = (
        portal_customer(&stub, &id),
        form.get("sub"),
        form.get("action"),
    ) else {
        return (StatusCode::BAD_REQUEST, "sub and action are required").into_response();
    };
    let updated = {
        let mut subs = lock(&stub.state.subscriptions);
        let Some(sub) = subs
            .iter_mut()
            .find(|s| &s.id == sub_id && s.customer == customer)
        else {
            return (StatusCode::NOT_FOUND, "no such subscription").into_response();
        };
        match action.as_str() {
            "cancel" => sub.status = "canceled".into(),
            "past_due" | "active" | "unpaid" => sub.status = action.clone(),
            price => sub.price = price.to_owned(),
        }
        sub.clone()
    };
    let kind = if updated.status == "canceled" {
        "customer.subscription.deleted"
    } else {
        "customer.subscription.updated"
    };
    deliver(&stub, event(&updated, kind)).await;
    Redirect::to(&format!("/p/session/{id}")).into_response()
}

/// The subscription object of `sub`, as `GET /v1/subscriptions/{id}` answers it.
pub(crate) fn subscription_object(sub: &StubSubscription) -> Value {
    event(sub, "customer.subscription.updated")
        .pointer("/data/object")
        .cloned()
        .unwrap_or_default()
}

fn event(sub: &StubSubscription, kind: &str) -> Value {
    SubEvent {
        kind: kind.into(),
        created: Utc::now().to_rfc3339(),
        user: sub.user.clone(),
        customer: sub.customer.clone(),
        subscription: sub.id.clone(),
        status: sub.status.clone(),
        price: sub.price.clone(),
        start: sub.start.to_rfc3339(),
        end: sub.end.to_rfc3339(),
        ..SubEvent::new("")
    }
    .json()
}

/// Posts `event` to the configured webhook, signed now; the outcome is logged (Stripe would retry).
async fn deliver(stub: &crate::stripe_stub::Stub, event: Value) {
    let Some((url, secret)) = lock(&stub.state.webhook).clone() else {
        tracing::warn!("the Stripe stub has no webhook to deliver to");
        return;
    };
    let body = event.to_string();
    let signature = sign(&body, Utc::now().timestamp(), &secret);
    let sent = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) => {
            tracing::info!(event = ?field(&event, "type"), status = res.status().as_u16(), "stub delivered a webhook")
        }
        Err(err) => {
            tracing::warn!(event = ?field(&event, "type"), error = %err, "stub webhook delivery failed")
        }
    }
}

fn find_session(stub: &crate::stripe_stub::Stub, id: &str) -> Option<(Value, String, Option<u32>)> {
    lock(&stub.state.sessions)
        .iter()
        .find(|(s, _, _)| field(s, "id") == Some(id))
        .cloned()
}

fn portal_customer(stub: &crate::stripe_stub::Stub, id: &str) -> Option<String> {
    lock(&stub.state.portals)
        .iter()
        .find(|(portal, _)| portal == id)
        .map(|(_, customer)| customer.clone())
}

fn subscriptions_of(stub: &crate::stripe_stub::Stub, customer: &str) -> Vec<StubSubscription> {
    lock(&stub.state.subscriptions)
        .iter()
        .filter(|s| s.customer == customer)
        .cloned()
        .collect()
}

fn field<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}
