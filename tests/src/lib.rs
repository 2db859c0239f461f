//! `TestApp`: a fresh set of uniquely named tables and bucket on the local wire-protocol server, a
//! fixed clock, and typed helpers to call handlers as API Gateway would, or the local API over HTTP.

pub mod access;
pub mod faults;
pub mod iam;
pub mod model;
pub mod schema;
pub mod stripe;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, Method};
use lambda_http::{Body, RequestExt};
use local_api::{request_context, JwtRules, LocalApi};
use serde_json::Value;
use son1k_app::clock::FixedClock;
use son1k_app::config::Config;
use son1k_app::ports::{Generations, Users};
use son1k_app::state::LocalEndpoints;
use son1k_app::AppState;
use son1k_domain::entitlement::{Subscription, SubscriptionStatus, TierSource};
use son1k_domain::ids::UserId;
use son1k_domain::tiers::Tier;
use son1k_http::routes::{match_route, RouteMatch};
use son1k_store::users::UserRecord;
use std::collections::HashMap;
use std::sync::Arc;

/// The instant every test starts at unless it says otherwise.
pub const DEFAULT_NOW: &str = "2026-11-26T10:00:00Z";

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("valid RFC 3339")
        .with_timezone(&Utc)
}

/// A Stripe subscription in `status` for the billing period `start..end` (RFC 3339), anchored at
/// `start`, on the price `price_id`.
pub fn subscription(
    status: SubscriptionStatus,
    price_id: &str,
    start: &str,
    end: &str,
) -> Subscription {
    Subscription {
        id: "sub_test".into(),
        status,
        price_id: Some(price_id.to_owned()),
        current_period_start: at(start),
        current_period_end: at(end),
        cancel_at_period_end: false,
        billing_cycle_anchor: Some(at(start)),
    }
}

/// `template.yaml`, parsed (CloudFormation tags such as `!Ref` become tagged values).
pub fn template() -> serde_norway::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).expect("template.yaml"))
        .expect("template parses")
}

/// Fails when an error body carries what no client should see: an AWS or Stripe error string, a
/// stack trace, a file position, or a key.
pub fn assert_no_leak(what: &str, body: &str) {
    let lower = body.to_lowercase();
    for needle in [
        "amazonaws",
        "dynamodb",
        "exception",
        "x-amz",
        "resourcenotfound",
        "conditionalcheck",
        "transactioncanceled",
        "stripe.com",
        "sk_test",
        "sk_live",
        "whsec_",
        "idempotency",
        "backtrace",
        "panicked",
        ".rs:",
        "local-dev-secret",
        "cursor-secret",
        "127.0.0.1",
        "connection refused",
        "dispatch failure",
    ] {
        assert!(
            !lower.contains(needle),
            "{what}: the body reveals `{needle}`: {body}"
        );
    }
}

/// `openapi.yaml`, parsed.
pub fn openapi() -> serde_norway::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).expect("openapi.yaml"))
        .expect("openapi.yaml parses")
}

/// The local servers `make test` started (local/with-stack.sh exports them): DynamoDB Local and
/// moto's S3.
pub fn endpoints() -> LocalEndpoints {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `make test` (it starts DynamoDB Local and moto's S3)")
        })
    };
    LocalEndpoints {
        dynamodb: var("SON1K_TEST_DYNAMODB_ENDPOINT"),
        s3: var("SON1K_TEST_S3_ENDPOINT"),
    }
}

/// The backend's own keys in the tests: what `APP_SECRET_NAME` names.
pub const APP_SECRET_JSON: &str = r#"{"cursor_secret": "test-cursor-secret"}"#;

/// A Secrets Manager client of the local stack (moto), with `state`'s settings.
pub fn secrets_client(state: &AppState) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::config::Builder::from(&state.sdk)
        .endpoint_url(endpoints().s3)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// A unique prefix for this test's resources: S3 bucket names allow lowercase letters, digits and '-'.
pub fn unique_prefix() -> String {
    format!("t-{}", ulid::Ulid::generate().to_string().to_lowercase())
}

pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<FixedClock>,
    /// The Stripe stub this app's billing talks to (its own, per test).
    pub stripe: Arc<local_api::stripe_stub::StubState>,
    /// The Ollama stub this app's language model talks to (its own, per test).
    pub ollama: local_api::ollama_stub::OllamaStub,
    pub ollama_url: String,
    /// The webhook receiver of this app's alerts: `https://hooks.example.test/...` is posted here.
    pub webhook: local_api::webhook_sink::WebhookSink,
    /// Where this app's alerts stream was read up to (`deliver_alerts`).
    pub alert_stream: Arc<tokio::sync::Mutex<local_api::alerts::StreamReader>>,
    /// The stub GPU worker of this app's voices, on queues of its own.
    pub voice_worker: local_api::voice_worker::VoiceWorker,
}

/// The webhook host the tests' sinks answer for.
pub const WEBHOOK_HOST: &str = "hooks.example.test";

/// Serves an Ollama stub of its own on a loopback port; returns it and its base URL.
pub async fn spawn_ollama() -> (local_api::ollama_stub::OllamaStub, String) {
    let stub = local_api::ollama_stub::OllamaStub::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = stub.clone();
    tokio::spawn(async move { local_api::ollama_stub::serve(listener, serving).await });
    (stub, base)
}

/// The production Ollama client for `base`, with the stub's model and `timeout`.
pub fn ollama_client(base: &str, timeout: std::time::Duration) -> son1k_app::llm::Ollama {
    son1k_app::llm::Ollama::new(
        son1k_app::llm::OllamaConfig {
            url: base.to_owned(),
            model: local_api::ollama_stub::STUB_MODEL.to_owned(),
            timeout,
            key_parameter: None,
            max_tokens: son1k_app::llm::MaxTokens::default(),
        },
        reqwest::Client::new(),
    )
}

/// A handler's response, decoded.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// Asserts a problem+json answer with this status and code, and returns the document.
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        assert_eq!(
            self.content_type(),
            Some("application/problem+json"),
            "content type"
        );
        let doc = self.json();
        assert_eq!(doc["code"], code, "code; body: {doc}");
        assert_eq!(doc["status"], status, "status member");
        assert_eq!(doc["type"], "about:blank");
        assert!(
            doc["title"].is_string() && doc["detail"].is_string(),
            "title and detail: {doc}"
        );
        doc
    }
}

/// Status → count; any answer other than 200/201/429 is printed, so a failure says what happened.
pub fn statuses(responses: &[TestResponse]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in responses {
        *counts.entry(r.status).or_insert(0) += 1;
        if ![200, 201, 429].contains(&r.status) {
            eprintln!("unexpected {}: {}", r.status, r.text());
        }
    }
    counts
}

/// The `used` of every 201 among `responses`, sorted: each success reports its own count.
pub fn used_by_created(responses: &[TestResponse]) -> Vec<u64> {
    let mut used: Vec<u64> = responses
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.json()["used"].as_u64().unwrap_or(0))
        .collect();
    used.sort_unstable();
    used
}

/// Who calls: a user id and the `cognito:groups` claim as API Gateway hands it over (`[admin]`).
#[derive(Debug, Clone)]
pub struct As {
    pub user: String,
    pub groups: Option<String>,
    /// The token's `email_verified` claim (Cognito verifies the email at sign-up).
    pub email_verified: bool,
}

impl As {
    pub fn user(id: &str) -> Option<As> {
        Some(As {
            user: id.to_owned(),
            groups: None,
            email_verified: true,
        })
    }

    /// A user whose token says its email is not verified.
    pub fn unverified(id: &str) -> Option<As> {
        Some(As {
            user: id.to_owned(),
            groups: None,
            email_verified: false,
        })
    }

    /// A user whose groups claim is exactly `raw` (`[editors]`, `[x,admin]`).
    pub fn in_groups(id: &str, raw: &str) -> Option<As> {
        Some(As {
            user: id.to_owned(),
            groups: Some(raw.to_owned()),
            email_verified: true,
        })
    }

    pub fn admin(id: &str) -> Option<As> {
        Some(As {
            user: id.to_owned(),
            groups: Some("[admin]".to_owned()),
            email_verified: true,
        })
    }
}

impl TestApp {
    /// Fresh tables and bucket, clock at `DEFAULT_NOW`.
    pub async fn spawn() -> Self {
        Self::spawn_at(at(DEFAULT_NOW)).await
    }

    pub async fn spawn_at(now: DateTime<Utc>) -> Self {
        // Production gives an AWS call 2 s; the local servers share 2 cores with the whole suite (and
        // its build), so a slow answer here is load, not a fault. (A timed-out attempt that the server
        // still applies would turn an expected 201 into a replayed 200.)
        let (stripe, stripe_base) = stripe::spawn_stub().await;
        let prefix = unique_prefix();
        let config = Config {
            aws_attempt_timeout: std::time::Duration::from_secs(30),
            aws_operation_timeout: std::time::Duration::from_secs(60),
            billing: stripe::billing_config(&stripe_base, &format!("{prefix}/stripe")),
            app_secret_name: Some(format!("{prefix}/app")),
            ..Config::with_prefix(&prefix)
        };
        let sdk = son1k_app::state::local_sdk_config(&config).await;
        let clock = Arc::new(FixedClock::new(now));
        let mut state = AppState::local(config, &sdk, &endpoints(), clock.clone());
        // The keys live in (moto's) Secrets Manager, as in AWS.
        let secrets = secrets_client(&state);
        for (name, value) in [
            (format!("{prefix}/stripe"), stripe::secret_json()),
            (format!("{prefix}/app"), APP_SECRET_JSON.to_owned()),
        ] {
            secrets
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .expect("create the test's secrets");
        }
        let (ollama, ollama_base) = spawn_ollama().await;
        state.llm = Some(Arc::new(ollama_client(
            &ollama_base,
            std::time::Duration::from_secs(10),
        )));
        let queue = format!(
            "{}-jobs",
            state.config.names.audio_bucket.trim_end_matches("-audio")
        );
        state.jobs_queue = Some(
            // Each jobs test brings its own provider pool to the worker.
            local_api::jobs::ensure_queue(&state, &queue, 1)
                .await
                .expect("create the jobs queue"),
        );
        // Alerts: a retry queue of its own, retries 1 s apart at first, webhooks to its own sink.
        let (webhook, webhook_base) = local_api::webhook_sink::WebhookSink::spawn()
            .await
            .expect("webhook sink");
        local_api::alerts::ensure_delivery(
            &mut state,
            &format!("{prefix}-alert-retries"),
            chrono::Duration::seconds(1),
            std::collections::HashMap::from([(WEBHOOK_HOST.to_owned(), webhook_base)]),
        )
        .await
        .expect("alert delivery");
        let voice_worker = local_api::voice_worker::VoiceWorker::start(&mut state, &prefix)
            .await
            .expect("voice queues");
        son1k_store::schema::create_tables(state.dynamo(), &state.config.names)
            .await
            .expect("create tables");
        son1k_store::schema::create_bucket(state.s3(), &state.config.names)
            .await
            .expect("create bucket");
        Self {
            state,
            clock,
            stripe,
            ollama,
            ollama_url: ollama_base,
            webhook,
            alert_stream: Default::default(),
            voice_worker,
        }
    }

    /// What S3's ObjectCreated event for `key` makes storage-events do (voice recordings too).
    pub async fn object_created(&self, key: &str) -> storage_events::StorageReport {
        let event =
            storage_events::event_for(&self.state.config.names.audio_bucket, &[key.to_owned()]);
        storage_events::handler(
            &self.state,
            lambda_runtime::LambdaEvent::new(event, Default::default()),
        )
        .await
        .expect("storage events")
    }

    /// Hands the alerts written since the last call to `alert-delivery`, as the stream's event
    /// source mapping would: how many.
    pub async fn deliver_alerts(&self) -> usize {
        self.alert_stream
            .lock()
            .await
            .pass(&self.state)
            .await
            .expect("read the alerts stream")
    }

    /// Hands the alert retries that are in the queue (waiting up to `wait_seconds` for one) to
    /// `alert-delivery`: how many.
    pub async fn deliver_retries(&self, wait_seconds: i32) -> usize {
        local_api::alerts::drain_retries(&self.state, wait_seconds)
            .await
            .expect("drain the alert retries")
    }

    /// Deletes this app's tables (long runs that replace their app, so the local server stays small).
    pub async fn drop_tables(&self) {
        for table in son1k_store::schema::TABLES {
            let _ = self
                .state
                .dynamo()
                .delete_table()
                .table_name(table.name(&self.state.config.names))
                .send()
                .await;
        }
    }

    /// This app with the account worker's queue and a Cognito user pool of its own (moto).
    pub async fn with_account_worker(mut self) -> Self {
        let name = format!(
            "{}-accounts",
            self.state
                .config
                .names
                .audio_bucket
                .trim_end_matches("-audio")
        );
        local_api::accounts::ensure(&mut self.state, &name)
            .await
            .expect("account queue and user pool");
        self
    }

    /// Runs the account worker until its queue is empty; how many jobs it ran.
    pub async fn run_account_jobs(&self) -> usize {
        let mut ran = 0;
        // A job that fails is received again at once; one that keeps failing ends the test.
        for _ in 0..20 {
            let n = local_api::accounts::drain_once(&self.state, 0, 0)
                .await
                .expect("run the account jobs");
            if n == 0 {
                return ran;
            }
            ran += n;
        }
        panic!("the account queue never emptied: a job keeps failing");
    }

    /// A state whose store is a closed port: every AWS call fails fast.
    pub async fn with_store_down() -> Self {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let config = Config {
            aws_max_attempts: 2,
            ..Config::with_prefix(&unique_prefix())
        };
        Self::with_store_at(&format!("http://127.0.0.1:{port}"), config).await
    }

    /// The app with DynamoDB and S3 at a port that accepts connections and never answers (a hung
    /// server), and the SDK's timeouts short: every call ends by its timeout. The listener lives as
    /// long as the returned guard.
    pub async fn with_store_silent(
        attempt: std::time::Duration,
        operation: std::time::Duration,
    ) -> (Self, std::net::TcpListener) {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let config = Config {
            aws_max_attempts: 2,
            aws_attempt_timeout: attempt,
            aws_operation_timeout: operation,
            ..Config::with_prefix(&unique_prefix())
        };
        let app = Self::with_store_at(&format!("http://127.0.0.1:{port}"), config).await;
        (app, silent)
    }

    async fn with_store_at(endpoint: &str, config: Config) -> Self {
        let endpoints = LocalEndpoints {
            dynamodb: endpoint.to_owned(),
            s3: endpoint.to_owned(),
        };
        let (stripe, stripe_base) = stripe::spawn_stub().await;
        let config = Config {
            billing: stripe::billing_config(&stripe_base, "unreachable/stripe"),
            app_secret_name: Some("unreachable/app".into()),
            ..config
        };
        let sdk = son1k_app::state::local_sdk_config(&config).await;
        let clock = Arc::new(FixedClock::new(at(DEFAULT_NOW)));
        let mut state = AppState::local(config, &sdk, &endpoints, clock.clone());
        state.jobs_queue = Some(son1k_app::jobs::JobsQueue::new(
            state.sqs_client(),
            format!("{endpoint}/123456789012/unreachable"),
            1,
        ));
        let (ollama, ollama_base) = spawn_ollama().await;
        state.llm = Some(Arc::new(ollama_client(
            &ollama_base,
            std::time::Duration::from_secs(10),
        )));
        let voice_worker = local_api::voice_worker::VoiceWorker::detached(
            &mut state,
            &format!("{endpoint}/123456789012/unreachable-voice-jobs"),
            &format!("{endpoint}/123456789012/unreachable-voice-results"),
        );
        Self {
            state,
            clock,
            stripe,
            ollama,
            ollama_url: ollama_base,
            webhook: Default::default(),
            alert_stream: Default::default(),
            voice_worker,
        }
    }

    /// A user stored as given (tier, source, subscription...) before the test acts.
    pub async fn put_user(&self, record: &UserRecord) {
        self.state
            .dynamo()
            .put_item()
            .table_name(&self.state.config.names.users_table)
            // With the `lapsing` index keys the webhook would have written for this state.
            .set_item(Some(
                serde_dynamo::to_item(record.clone().with_lapse_key()).expect("user item"),
            ))
            .send()
            .await
            .expect("put user");
    }

    pub fn new_user(&self, id: &str) -> UserRecord {
        UserRecord::new(
            UserId::parse(id).expect("id"),
            Some(format!("{id}@example.com")),
            Some(id.to_owned()),
            self.clock.now_utc(),
        )
    }

    /// Sets the user's usage counter directly (as if `used` generations were recorded in that
    /// period), creating the user first if needed.
    pub async fn put_counter(&self, user: &str, period_key: &str, used: u32) {
        let mut record = self
            .user_record(user)
            .await
            .unwrap_or_else(|| self.new_user(user));
        record
            .usage
            .get_or_insert_with(Default::default)
            .insert(period_key.to_owned(), used);
        self.put_user(&record).await;
    }

    /// A stored user with the given tier and source (and nothing recorded yet).
    pub async fn user_with_tier(&self, id: &str, tier: Tier, source: TierSource) -> UserRecord {
        let mut record = self.new_user(id);
        record.tier = tier;
        record.tier_source = source;
        self.put_user(&record).await;
        record
    }

    /// A stored FREE user whose Stripe customer is `customer` (as after a checkout).
    pub async fn user_with_customer(&self, id: &str, customer: &str) -> UserRecord {
        let mut record = self.new_user(id);
        record.stripe_customer_id = Some(customer.to_owned());
        self.put_user(&record).await;
        record
    }

    /// A contribution of a new PRO user `user` whose audio (`bytes`) is stored, so it is listed in
    /// the pool: recorded as the 20th paid generation, uploaded through its presigned URL and
    /// accounted by storage-events, as in production. Returns the contribution id.
    pub async fn listed_contribution(&self, user: &str, bytes: &[u8]) -> String {
        self.listed_contribution_in(user, "house", bytes).await
    }

    /// `user` (a new admin-granted PRO user unless stored already) whose next paid generation is a
    /// 20th, so it goes to the pool.
    pub async fn about_to_contribute(&self, user: &str) -> UserRecord {
        let mut record = match self.user_record(user).await {
            Some(record) => record,
            None => {
                self.user_with_tier(user, Tier::Pro, TierSource::Admin)
                    .await
            }
        };
        record.paid_generations_total = (record.paid_generations_total / 20) * 20 + 19;
        self.put_user(&record).await;
        record
    }

    /// `listed_contribution` in `genre`.
    pub async fn listed_contribution_in(&self, user: &str, genre: &str, bytes: &[u8]) -> String {
        self.about_to_contribute(user).await;
        let generation = format!("{user}-shared");
        let res = self
            .record(
                user,
                serde_json::json!({"generation_id": generation, "genre": genre}),
            )
            .await;
        let contribution = res.json()["pool_contribution"]["contribution_id"]
            .as_str()
            .expect("the 20th paid generation contributes")
            .to_owned();
        let body = serde_json::json!({"content_type": "audio/mpeg", "size_bytes": bytes.len()});
        let link = self
            .call(
                "POST",
                &format!("/api/generations/{generation}/upload-url"),
                As::user(user),
                Some(&body.to_string()),
            )
            .await
            .json();
        put_to_link(&link, "audio/mpeg", bytes.to_vec())
            .await
            .error_for_status()
            .expect("PUT");
        let key = link_key(&link);
        let event = storage_events::event_for(&self.state.config.names.audio_bucket, &[key]);
        let report = storage_events::handler(
            &self.state,
            lambda_runtime::LambdaEvent::new(event, Default::default()),
        )
        .await
        .expect("storage events");
        assert_eq!(report.stored, 1, "the audio is stored");
        contribution
    }

    /// Each user's budget of costly requests: `burst` at once, then `per_minute`.
    pub fn with_request_budget(mut self, per_minute: u32, burst: u32) -> Self {
        self.state.config.request_budget = son1k_domain::rate::RequestBudget { per_minute, burst };
        self
    }

    /// A request budget no test of another rule reaches: for tests that make many requests of one
    /// user at one frozen instant (the budget is tested on its own in `rate`).
    pub fn without_request_budget(mut self) -> Self {
        self.state.config.request_budget = son1k_domain::rate::RequestBudget {
            per_minute: 60,
            burst: 1_000_000,
        };
        self
    }

    /// Puts `interceptor` on every DynamoDB call from now on (call counting, fault injection).
    pub fn intercept(&mut self, interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static) {
        self.state = self.state.clone().with_dynamo_interceptor(interceptor);
        self.voice_worker = self.voice_worker.with_state(&self.state);
    }

    /// Puts `interceptor` on every S3 call from now on.
    pub fn intercept_s3(&mut self, interceptor: impl aws_sdk_s3::config::Intercept + 'static) {
        self.state = self.state.clone().with_s3_interceptor(interceptor);
        self.voice_worker = self.voice_worker.with_state(&self.state);
    }

    /// The same tables and clients seen through another clock: a second Lambda instance whose clock
    /// differs from the first one's.
    pub fn with_clock_at(&self, now: DateTime<Utc>) -> TestApp {
        let clock = Arc::new(FixedClock::new(now));
        TestApp {
            state: self.state.clone().with_clock(clock.clone()),
            clock,
            stripe: self.stripe.clone(),
            ollama: self.ollama.clone(),
            ollama_url: self.ollama_url.clone(),
            webhook: self.webhook.clone(),
            alert_stream: self.alert_stream.clone(),
            voice_worker: self.voice_worker.clone(),
        }
    }

    /// A stored Stripe subscriber on `tier` with `subscription` (and nothing recorded yet).
    pub async fn stripe_user(
        &self,
        id: &str,
        tier: Tier,
        subscription: Subscription,
    ) -> UserRecord {
        let mut record = self.new_user(id);
        record.tier = tier;
        record.tier_source = TierSource::Stripe;
        record.subscription = Some(subscription);
        self.put_user(&record).await;
        record
    }

    /// The same app with billing configured only as far as `edit` leaves it (a deployment without
    /// keys or prices).
    pub async fn with_billing(
        &self,
        edit: impl FnOnce(&mut son1k_app::config::BillingConfig),
    ) -> TestApp {
        let mut config = self.state.config.clone();
        edit(&mut config.billing);
        let sdk = son1k_app::state::local_sdk_config(&config).await;
        TestApp {
            state: AppState::local(config, &sdk, &endpoints(), self.clock.clone()),
            clock: self.clock.clone(),
            stripe: self.stripe.clone(),
            ollama: self.ollama.clone(),
            ollama_url: self.ollama_url.clone(),
            webhook: self.webhook.clone(),
            alert_stream: self.alert_stream.clone(),
            voice_worker: self.voice_worker.clone(),
        }
    }

    /// Adds `bytes` to the user's stored bytes, as another upload's accounting would, touching
    /// nothing else of the item (its reservations stay).
    pub async fn add_stored_bytes(&self, user: &UserId, bytes: u64) {
        self.state
            .dynamo()
            .update_item()
            .table_name(&self.state.config.names.users_table)
            .key("pk", AttributeValue::S(son1k_store::users::user_pk(user)))
            .key(
                "sk",
                AttributeValue::S(son1k_store::users::PROFILE_SK.into()),
            )
            .update_expression("ADD storage_used_bytes :more")
            .expression_attribute_values(":more", AttributeValue::N(bytes.to_string()))
            .send()
            .await
            .expect("add stored bytes");
    }

    /// A new version of the test's Stripe secret (a rotation): what the functions read next.
    pub async fn rotate_stripe_secret(&self, secret_key: &str, webhook_secret: &str) {
        let name = self
            .state
            .config
            .billing
            .secret_name
            .clone()
            .expect("named");
        secrets_client(&self.state)
            .put_secret_value()
            .secret_id(name)
            .secret_string(
                serde_json::json!({"secret_key": secret_key, "webhook_secret": webhook_secret})
                    .to_string(),
            )
            .send()
            .await
            .expect("rotate the Stripe secret");
    }

    /// `POST /api/tiers/webhook` with `event` signed now with the webhook secret.
    pub async fn webhook(&self, event: &Value) -> TestResponse {
        let body = event.to_string();
        let signature = stripe::sign(
            &body,
            self.clock.now_utc().timestamp(),
            stripe::WEBHOOK_SECRET,
        );
        self.webhook_raw(&body, Some(&signature)).await
    }

    /// `POST /api/tiers/webhook` with this exact body and `Stripe-Signature` header (or none).
    pub async fn webhook_raw(&self, body: &str, signature: Option<&str>) -> TestResponse {
        let (function, mut req) = build_request("POST", "/api/tiers/webhook", None, Some(body));
        if let Some(signature) = signature {
            req.headers_mut()
                .insert("stripe-signature", signature.parse().expect("header value"));
        }
        send(function, &self.state, req).await
    }

    /// `PUT /api/admin/users/{user}/tier` as an admin; asserts the grant succeeded and returns the
    /// limits it answered.
    pub async fn grant(&self, user: &str, tier: Tier) -> Value {
        let res = self
            .call(
                "PUT",
                &format!("/api/admin/users/{user}/tier"),
                As::admin("ops"),
                Some(&serde_json::json!({ "tier": tier }).to_string()),
            )
            .await;
        assert_eq!(res.status, 200, "grant {tier} to {user}: {}", res.text());
        res.json()
    }

    /// `GET /api/tiers/limits/me` as `user`, decoded.
    pub async fn limits(&self, user: &str) -> Value {
        let res = self
            .call("GET", "/api/tiers/limits/me", As::user(user), None)
            .await;
        assert_eq!(res.status, 200, "limits of {user}: {}", res.text());
        res.json()
    }

    /// What the stored user has spent in the period current at the test's clock.
    pub async fn used(&self, user: &str) -> u32 {
        self.used_by(&self.user_record(user).await.expect("user"))
    }

    /// What `record` has spent in the period current at the test's clock.
    pub fn used_by(&self, record: &UserRecord) -> u32 {
        record.used_in(&record.entitlement(self.clock.now_utc()).period.key())
    }

    /// The stored user, if any.
    pub async fn user_record(&self, id: &str) -> Option<UserRecord> {
        self.state
            .users()
            .get(&UserId::parse(id).expect("id"))
            .await
            .expect("read user")
    }

    /// The stored generation record, if any.
    pub async fn generation(&self, id: &str) -> Option<son1k_store::generations::GenerationRecord> {
        let id = son1k_domain::ids::GenerationId::parse(id).expect("id");
        self.state
            .generations()
            .get(&id)
            .await
            .expect("read generation")
    }

    /// `POST /api/tiers/record-generation` as `user`.
    pub async fn record(&self, user: &str, body: serde_json::Value) -> TestResponse {
        self.call(
            "POST",
            "/api/tiers/record-generation",
            As::user(user),
            Some(&body.to_string()),
        )
        .await
    }

    /// Every item of a table whose pk is `pk`.
    pub async fn items(&self, table: &str, pk: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.state
            .dynamo()
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("query")
            .items
            .unwrap_or_default()
    }

    /// Calls the function that serves `method path` with the request API Gateway would build.
    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        caller: Option<As>,
        body: Option<&str>,
    ) -> TestResponse {
        let (function, req) = build_request(method, path_and_query, caller, body);
        send(function, &self.state, req).await
    }

    /// Serves the local API on an ephemeral loopback port, accepting tokens signed with
    /// `jwt_secret`; returns its base URL.
    pub async fn serve_http(&self, jwt_secret: &str) -> String {
        self.serve_http_with(JwtRules::new(jwt_secret).expect("a secret"))
            .await
    }

    /// Serves the local API with these token rules; returns its base URL.
    pub async fn serve_http_with(&self, jwt: JwtRules) -> String {
        let api = Arc::new(LocalApi {
            state: self.state.clone(),
            jwt,
            frontend_origin: Some("http://localhost:3000".into()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, local_api::router(api)).await });
        format!("http://{addr}")
    }
}

/// Builds the API Gateway v2 request for `method path?query`, with JWT claims when `caller` is given,
/// and names the function the route table sends it to.
pub fn build_request(
    method: &str,
    path_and_query: &str,
    caller: Option<As>,
    body: Option<&str>,
) -> (&'static str, lambda_http::Request) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let (route, params) = match match_route(method, path) {
        RouteMatch::Found(route, params) => (route, params),
        other => panic!("{method} {path} is not a route: {other:?}"),
    };
    let method: Method = method.parse().expect("method");
    let claims = caller.map(|c| {
        let mut claims = HashMap::from([
            ("sub".to_owned(), c.user.clone()),
            ("email".to_owned(), format!("{}@example.com", c.user)),
            ("email_verified".to_owned(), c.email_verified.to_string()),
            ("cognito:username".to_owned(), c.user.clone()),
            ("token_use".to_owned(), "id".to_owned()),
        ]);
        if let Some(groups) = &c.groups {
            claims.insert("cognito:groups".to_owned(), groups.clone());
        }
        claims
    });
    let context = request_context(route, &method, path, &HeaderMap::new(), claims);
    let body = body.map_or(Body::Empty, |b| Body::Text(b.to_owned()));
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path_and_query}"))
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
        .with_path_parameters(params.into_iter().collect::<HashMap<_, _>>())
        .with_query_string_parameters(
            query
                .parse::<lambda_http::aws_lambda_events::query_map::QueryMap>()
                .expect("query"),
        )
        .with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context));
    (route.function, req)
}

/// Sends a built request to a function's handler.
pub async fn send(function: &str, state: &AppState, req: lambda_http::Request) -> TestResponse {
    let response = local_api::invoke(function, state, req).await;
    let (parts, body) = response.into_parts();
    TestResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.as_ref().to_vec(),
    }
}

/// `FixedClock::now` without importing the trait everywhere.
pub trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for FixedClock {
    fn now_utc(&self) -> DateTime<Utc> {
        son1k_app::clock::Clock::now(self)
    }
}

/// PUTs `bytes` to an upload link (`{"upload_url", "headers"}`) as a client does: with every header
/// the link names (its signed `if-none-match` among them), `content_type` instead of the signed one
/// (to send what a test wants S3 to receive); the length is the body's.
pub async fn put_to_link(
    link: &serde_json::Value,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let mut put = reqwest::Client::new().put(link["upload_url"].as_str().expect("upload_url"));
    if let Some(headers) = link["headers"].as_object() {
        for (name, value) in headers {
            if name != "content-type" && name != "content-length" {
                put = put.header(name, value.as_str().expect("header value"));
            }
        }
    }
    put.header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("PUT to S3")
}

/// PUTs `bytes` to a voice recording's upload link (`{"url", "headers"}`) with every header it
/// names, as a client does: the object's key.
pub async fn put_to_voice_link(link: &serde_json::Value, bytes: Vec<u8>) -> String {
    let url = link["url"].as_str().expect("url");
    let mut put = reqwest::Client::new().put(url);
    for (name, value) in link["headers"].as_object().expect("headers") {
        put = put.header(name, value.as_str().expect("header"));
    }
    let res = put.body(bytes).send().await.expect("PUT");
    assert!(res.status().is_success(), "PUT answered {}", res.status());
    iam::s3_key(url).to_owned()
}

/// The object key an upload link writes.
pub fn link_key(link: &serde_json::Value) -> String {
    iam::s3_key(link["upload_url"].as_str().expect("upload_url")).to_owned()
}
