//! A local stand-in for the part of the Stripe API the backend calls (dev and tests only; Stripe is
//! not reachable from here). It speaks Stripe's wire shape: form-encoded requests with a Bearer
//! secret key, JSON objects as Stripe returns them (async-stripe parses them with its strict typed
//! model), Stripe's error documents, and `Idempotency-Key` semantics (same key and parameters →
//! the first answer again; other parameters → 400; a request still in flight with the key → 409).
//! It records every request, so tests can count what was asked (`GET /_stub/requests`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use crate::stripe_pages::StubSubscription;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One request the stub received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StubRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The Bearer key it was sent with.
    pub api_key: Option<String>,
    /// The form parameters, by their bracketed names (`metadata[user_id]`, `line_items[0][price]`).
    pub params: BTreeMap<String, String>,
}

/// What an idempotency key is bound to: the request it came with, and its answer once made.
#[derive(Debug, Clone)]
struct KeyUse {
    fingerprint: String,
    answer: Option<(u16, Value)>,
}

#[derive(Debug, Default)]
pub struct StubState {
    requests: Mutex<Vec<StubRequest>>,
    /// Customers created, as returned.
    customers: Mutex<Vec<Value>>,
    /// Checkout sessions with the price they sell and the trial days they offer.
    pub(crate) sessions: Mutex<Vec<(Value, String, Option<u32>)>>,
    /// Subscriptions made by completing a checkout on the stub's hosted page.
    pub(crate) subscriptions: Mutex<Vec<crate::stripe_pages::StubSubscription>>,
    /// Payment methods: (id, the customer it is attached to; `None` once detached).
    pub(crate) payment_methods: Mutex<Vec<(String, Option<String>)>>,
    /// Billing portal sessions: (id, customer).
    pub(crate) portals: Mutex<Vec<(String, String)>>,
    /// Where the stub delivers webhook events, and the secret it signs them with.
    pub(crate) webhook: Mutex<Option<(String, String)>>,
    /// Ids of the objects created, by API path (idempotent replays create nothing).
    created: Mutex<Vec<(String, String)>>,
    keys: Mutex<HashMap<String, KeyUse>>,
    /// API calls still to fail with a 500 (fault injection).
    failures: AtomicU32,
    /// Keys rolled in the dashboard: refused with 401 as Stripe refuses an expired key.
    rolled: Mutex<Vec<String>>,
    /// How long creating an object takes, so racing requests overlap as they would against Stripe.
    pub work: Duration,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StubState {
    pub fn new(work: Duration) -> Arc<Self> {
        Arc::new(Self {
            work,
            ..Self::default()
        })
    }

    /// Refuses `key` from now on (a key rolled in Stripe's dashboard).
    pub fn roll_key(&self, key: &str) {
        lock(&self.rolled).push(key.to_owned());
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<StubRequest> {
        lock(&self.requests).clone()
    }

    /// Requests to one API path (`/v1/customers`).
    pub fn requests_to(&self, path: &str) -> Vec<StubRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Ids of the objects created at one API path (`/v1/customers`), in order.
    pub fn created(&self, path: &str) -> Vec<String> {
        lock(&self.created)
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The subscriptions completed checkouts made.
    pub fn subscriptions(&self) -> Vec<crate::stripe_pages::StubSubscription> {
        lock(&self.subscriptions).clone()
    }

    /// Delivers the events of the hosted pages (a completed checkout, a cancellation) to `url`,
    /// signed with `secret`, as Stripe delivers to a webhook endpoint.
    pub fn deliver_to(&self, url: &str, secret: &str) {
        *lock(&self.webhook) = Some((url.to_owned(), secret.to_owned()));
    }

    /// Adds `subscription`, or replaces the one with its id (its state as Stripe has it now).
    pub fn put_subscription(&self, subscription: crate::stripe_pages::StubSubscription) {
        let mut subscriptions = lock(&self.subscriptions);
        subscriptions.retain(|s| s.id != subscription.id);
        subscriptions.push(subscription);
    }

    /// Makes the next `n` API calls fail with Stripe's 500 `api_error`.
    /// Attaches a new card to `customer` (as a paid checkout does); its id.
    pub fn attach_payment_method(&self, customer: &str) -> String {
        let id = format!("pm_{}", ulid::Ulid::generate().to_string().to_lowercase());
        lock(&self.payment_methods).push((id.clone(), Some(customer.to_owned())));
        id
    }

    /// The payment methods attached to `customer` now.
    pub fn payment_methods_of(&self, customer: &str) -> Vec<String> {
        lock(&self.payment_methods)
            .iter()
            .filter(|(_, c)| c.as_deref() == Some(customer))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn fail_next(&self, n: u32) {
        self.failures.store(n, Ordering::SeqCst);
    }
}

/// The stub's routes; `base` is the URL it is reached at (for the links it hands out).
pub fn router(state: Arc<StubState>, base: String) -> Router {
    let api = Arc::new(Stub { state, base });
    Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/customers/search", get(search_customers))
        .route("/v1/checkout/sessions", post(create_checkout_session))
        .route("/v1/billing_portal/sessions", post(create_portal_session))
        .route(
            "/v1/subscriptions/{id}",
            get(retrieve_subscription).delete(cancel_subscription),
        )
        .route(
            "/v1/customers/{id}/payment_methods",
            get(list_payment_methods),
        )
        .route(
            "/v1/payment_methods/{id}/detach",
            post(detach_payment_method),
        )
        .route("/v1/invoices/create_preview", post(preview_invoice))
        .route("/_stub/requests", get(list_requests))
        .merge(crate::stripe_pages::routes())
        .fallback(unknown_route)
        .with_state(api)
}

/// Serves the stub on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<StubState>,
) -> std::io::Result<()> {
    let base = format!("http://{}", listener.local_addr()?);
    axum::serve(listener, router(state, base)).await
}

pub(crate) struct Stub {
    pub(crate) state: Arc<StubState>,
    base: String,
}

pub(crate) type Shared = State<Arc<Stub>>;

async fn create_customer(State(stub): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let state = stub.state.clone();
    stub.handle("/v1/customers", &headers, &body, move |params, now| {
        let id = format!("cus_{}", ulid::Ulid::generate());
        let customer = json!({
            "id": id, "object": "customer", "address": null, "balance": 0, "created": now,
            "currency": null, "default_source": null, "delinquent": false, "description": null,
            "discount": null, "email": params.get("email"), "invoice_prefix": "SON1K",
            "invoice_settings": {"custom_fields": null, "default_payment_method": null,
                "footer": null, "rendering_options": null},
            "livemode": false, "metadata": metadata(params, "metadata"), "name": null,
            "next_invoice_sequence": 1, "phone": null, "preferred_locales": [],
            "shipping": null, "tax_exempt": "none", "test_clock": null
        });
        lock(&state.customers).push(customer.clone());
        customer
    })
    .await
}

/// `GET /v1/customers/search?query=metadata['user_id']:'alice'`: the one query form the dev tools use.
async fn search_customers(
    State(stub): Shared,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Json<Value> {
    let query: BTreeMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let wanted = query
        .get("query")
        .and_then(|q| q.strip_prefix("metadata['user_id']:'"))
        .and_then(|q| q.strip_suffix('\''))
        .unwrap_or_default()
        .to_owned();
    let data: Vec<Value> = lock(&stub.state.customers)
        .iter()
        .filter(|c| c.pointer("/metadata/user_id").and_then(Value::as_str) == Some(&wanted))
        .cloned()
        .collect();
    Json(
        json!({"object": "search_result", "data": data, "has_more": false,
        "next_page": null, "url": "/v1/customers/search"}),
    )
}

async fn create_checkout_session(State(stub): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (base, state) = (stub.base.clone(), stub.state.clone());
    stub.handle("/v1/checkout/sessions", &headers, &body, move |params, now| {
        let id = format!("cs_test_{}", ulid::Ulid::generate());
        let session = json!({
            "id": id, "object": "checkout.session", "after_expiration": null,
            "allow_promotion_codes": params.get("allow_promotion_codes").map(|v| v == "true"), "amount_subtotal": null, "amount_total": null,
            "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
            "billing_address_collection": null, "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"), "consent": null,
            "consent_collection": null, "created": now, "currency": null, "custom_fields": [],
            "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
                "terms_of_service_acceptance": null},
            "customer": params.get("customer"), "customer_creation": null,
            "customer_details": null, "customer_email": null, "expires_at": now + 86_400,
            "invoice": null, "invoice_creation": null, "livemode": false, "locale": null,
            "metadata": metadata(params, "metadata"), "mode": params.get("mode"),
            "payment_intent": null, "payment_link": null,
            "payment_method_collection": "always", "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "phone_number_collection": {"enabled": false}, "recovered_from": null,
            "setup_intent": null, "shipping_address_collection": null, "shipping_cost": null,
            "shipping_options": [], "status": "open", "submit_type": null,
            "subscription": null, "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted_page", "url": format!("{base}/c/pay/{id}")
        });
        let price = params.get("line_items[0][price]").cloned().unwrap_or_default();
        let trial = params
            .get("subscription_data[trial_period_days]")
            .and_then(|d| d.parse().ok());
        lock(&state.sessions).push((session.clone(), price, trial));
        session
    })
    .await
}

async fn create_portal_session(State(stub): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (base, state) = (stub.base.clone(), stub.state.clone());
    stub.handle(
        "/v1/billing_portal/sessions",
        &headers,
        &body,
        move |params, now| {
            let id = format!("bps_{}", ulid::Ulid::generate());
            let customer = params.get("customer").cloned().unwrap_or_default();
            lock(&state.portals).push((id.clone(), customer));
            json!({
                "id": id, "object": "billing_portal.session", "configuration": "bpc_local",
                "created": now, "customer": params.get("customer"), "flow": null,
                "livemode": false, "locale": null, "on_behalf_of": null,
                "return_url": params.get("return_url"), "url": format!("{base}/p/session/{id}")
            })
        },
    )
    .await
}

/// The monthly amount of a price the stub sells (the local price ids, at the tiers' prices).
pub fn amount_of(price: &str) -> Option<i64> {
    use crate::stripe_events::{PRICE_CREATOR, PRICE_PRO, PRICE_STUDIO};
    use son1k_domain::tiers::Tier;
    let tier = match price {
        p if p == PRICE_CREATOR => Tier::Creator,
        p if p == PRICE_PRO => Tier::Pro,
        p if p == PRICE_STUDIO => Tier::Studio,
        _ => return None,
    };
    i64::try_from(tier.spec().price_cents).ok()
}

/// `POST /v1/invoices/create_preview` for a subscription whose item switches price: with
/// `proration_behavior=always_invoice`, the invoice made at once (the new price less the old one, for
/// the part of the period left after `proration_date`, never below zero); with `none`, the next
/// regular invoice at the new price.
async fn preview_invoice(State(stub): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let api_key = header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    let params: BTreeMap<String, String> =
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .unwrap_or_default()
            .into_iter()
            .collect();
    lock(&stub.state.requests).push(StubRequest {
        method: "POST".into(),
        path: "/v1/invoices/create_preview".into(),
        idempotency_key: None,
        api_key: api_key.clone(),
        params: params.clone(),
    });
    if let Some(refused) = stub.refuse_key(api_key.as_deref()) {
        return refused;
    }
    let id = params.get("subscription").cloned().unwrap_or_default();
    let Some(sub) = lock(&stub.state.subscriptions)
        .iter()
        .find(|s| s.id == id)
        .cloned()
    else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such subscription: '{id}'"),
        );
    };
    let new_price = params
        .get("subscription_details[items][0][price]")
        .cloned()
        .unwrap_or_default();
    let (Some(new), Some(old)) = (amount_of(&new_price), amount_of(&sub.price)) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("No such price: '{new_price}'"),
        );
    };
    let prorate = params
        .get("subscription_details[proration_behavior]")
        .map(String::as_str)
        == Some("always_invoice");
    let amount_due = if prorate {
        let at = params
            .get("subscription_details[proration_date]")
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        let (start, end) = (sub.start.timestamp(), sub.end.timestamp());
        let left = (end - at).clamp(0, (end - start).max(1));
        ((new - old) * left / (end - start).max(1)).max(0)
    } else {
        new
    };
    Json(json!({
        "object": "invoice", "customer": params.get("customer"), "subscription": id,
        "amount_due": amount_due, "currency": "usd", "livemode": false,
        "period_end": sub.end.timestamp(),
    }))
    .into_response()
}

/// `GET /v1/subscriptions/{id}`: the subscription as the stub has it now, in the shape of the
/// object a subscription event carries.
async fn retrieve_subscription(
    State(stub): Shared,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/subscriptions/{id}");
    let api_key = header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    lock(&stub.state.requests).push(StubRequest {
        method: "GET".into(),
        path,
        idempotency_key: None,
        api_key: api_key.clone(),
        params: BTreeMap::new(),
    });
    if let Some(refused) = stub.refuse_key(api_key.as_deref()) {
        return refused;
    }
    let found = lock(&stub.state.subscriptions)
        .iter()
        .find(|s| s.id == id)
        .cloned();
    match found {
        Some(sub) => Json(crate::stripe_pages::subscription_object(&sub)).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such subscription: '{id}'"),
        ),
    }
}

/// Records a request without a body and checks its key: the refusal, if any.
fn record_call(stub: &Stub, method: &str, path: String, headers: &HeaderMap) -> Option<Response> {
    let api_key =
        header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    lock(&stub.state.requests).push(StubRequest {
        method: method.into(),
        path,
        idempotency_key: None,
        api_key: api_key.clone(),
        params: BTreeMap::new(),
    });
    stub.refuse_key(api_key.as_deref())
}

/// `DELETE /v1/subscriptions/{id}`: cancelled at once (`canceled`, ending now).
async fn cancel_subscription(
    State(stub): Shared,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = record_call(&stub, "DELETE", format!("/v1/subscriptions/{id}"), &headers)
    {
        return refused;
    }
    let mut subscriptions = lock(&stub.state.subscriptions);
    let Some(sub) = subscriptions.iter_mut().find(|s| s.id == id) else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such subscription: '{id}'"),
        );
    };
    sub.status = "canceled".into();
    sub.end = chrono::Utc::now();
    Json(crate::stripe_pages::subscription_object(sub)).into_response()
}

/// `GET /v1/customers/{id}/payment_methods`: the methods attached to the customer.
async fn list_payment_methods(
    State(stub): Shared,
    axum::extract::Path(customer): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/customers/{customer}/payment_methods");
    if let Some(refused) = record_call(&stub, "GET", path.clone(), &headers) {
        return refused;
    }
    let data: Vec<Value> = stub
        .state
        .payment_methods_of(&customer)
        .into_iter()
        .map(|id| json!({"id": id, "object": "payment_method", "type": "card", "customer": customer}))
        .collect();
    Json(json!({"object": "list", "data": data, "has_more": false, "url": path})).into_response()
}

/// `POST /v1/payment_methods/{id}/detach`: no longer attached to any customer (a method that is not
/// attached is Stripe's 400).
async fn detach_payment_method(
    State(stub): Shared,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = record_call(
        &stub,
        "POST",
        format!("/v1/payment_methods/{id}/detach"),
        &headers,
    ) {
        return refused;
    }
    let mut methods = lock(&stub.state.payment_methods);
    match methods.iter_mut().find(|(pm, _)| *pm == id) {
        Some((_, customer @ Some(_))) => {
            let was = customer.take();
            Json(json!({"id": id, "object": "payment_method", "customer": null, "detached_from": was}))
                .into_response()
        }
        Some(_) => stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The payment method you provided is not attached to a customer.",
        ),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such PaymentMethod: '{id}'"),
        ),
    }
}

async fn list_requests(State(stub): Shared) -> Json<Vec<StubRequest>> {
    Json(stub.state.requests())
}

async fn unknown_route() -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "Unrecognized request URL (the local stub serves only the calls the backend makes).",
    )
}

impl Stub {
    /// Authenticates, records, applies idempotency and fault injection, then creates the object.
    /// Stripe's 401 for a missing or malformed secret key, or a key rolled in the dashboard.
    fn refuse_key(&self, api_key: Option<&str>) -> Option<Response> {
        let authorised = api_key.is_some_and(|k| k.starts_with("sk_") || k.starts_with("rk_"));
        if !authorised {
            return Some(stripe_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Invalid API Key provided.",
            ));
        }
        if api_key.is_some_and(|k| lock(&self.state.rolled).iter().any(|r| r == k)) {
            return Some(stripe_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Expired API Key provided.",
            ));
        }
        None
    }

    async fn handle(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        create: impl FnOnce(&BTreeMap<String, String>, i64) -> Value,
    ) -> Response {
        let params: BTreeMap<String, String> =
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .unwrap_or_default()
                .into_iter()
                .collect();
        let key = header(headers, "idempotency-key");
        let api_key = header(headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
        lock(&self.state.requests).push(StubRequest {
            method: "POST".into(),
            path: path.into(),
            idempotency_key: key.clone(),
            api_key: api_key.clone(),
            params: params.clone(),
        });
        if let Some(refused) = self.refuse_key(api_key.as_deref()) {
            return refused;
        }
        let fingerprint = format!(
            "{path}?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        );
        if let Some(key) = &key {
            if let Some(early) = self.claim(key, &fingerprint) {
                return early;
            }
        }
        tokio::time::sleep(self.state.work).await;
        let (failing, status, body) = self.create_or_fail(path, &params, create);
        if let Some(key) = &key {
            self.settle(key, (!failing).then(|| (status, body.clone())));
        }
        respond(status, body)
    }

    /// Creates the object (noting its id), unless a failure was injected: then Stripe's 500.
    fn create_or_fail(
        &self,
        path: &str,
        params: &BTreeMap<String, String>,
        create: impl FnOnce(&BTreeMap<String, String>, i64) -> Value,
    ) -> (bool, u16, Value) {
        let failing = self
            .state
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            let message = "An unknown error occurred (injected by the stub).";
            return (true, 500, error_body("api_error", message));
        }
        let object = create(params, chrono::Utc::now().timestamp());
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        lock(&self.state.created).push((path.to_owned(), id));
        (false, 200, object)
    }

    /// Binds `key` to this request, or answers for it: the stored answer, or Stripe's 400 (other
    /// parameters) or 409 (the first request with the key is still in flight).
    fn claim(&self, key: &str, fingerprint: &str) -> Option<Response> {
        let mut keys = lock(&self.state.keys);
        match keys.get(key) {
            None => {
                keys.insert(
                    key.to_owned(),
                    KeyUse {
                        fingerprint: fingerprint.to_owned(),
                        answer: None,
                    },
                );
                None
            }
            Some(used) if used.fingerprint != fingerprint => Some(stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            )),
            Some(KeyUse { answer: None, .. }) => Some(stripe_error(
                StatusCode::CONFLICT,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key. Please try again later.",
            )),
            Some(KeyUse {
                answer: Some((status, body)),
                ..
            }) => {
                let mut response = respond(*status, body.clone());
                response
                    .headers_mut()
                    .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
                Some(response)
            }
        }
    }

    /// Stores the answer for `key`; a 500 releases the key instead, as Stripe does, so a retry runs.
    fn settle(&self, key: &str, answer: Option<(u16, Value)>) {
        let mut keys = lock(&self.state.keys);
        match answer {
            Some(answer) => {
                if let Some(used) = keys.get_mut(key) {
                    used.answer = Some(answer);
                }
            }
            None => {
                keys.remove(key);
            }
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `metadata[k]=v` form parameters as the object's `metadata` map.
fn metadata(params: &BTreeMap<String, String>, prefix: &str) -> Value {
    let open = format!("{prefix}[");
    let map: serde_json::Map<String, Value> = params
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(&open)?.strip_suffix(']')?;
            (!name.contains('[')).then(|| (name.to_owned(), Value::from(v.as_str())))
        })
        .collect();
    Value::Object(map)
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({"error": {"type": kind, "message": message}})
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(error_body(kind, message))).into_response()
}

fn respond(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}
