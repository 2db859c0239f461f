//! `local-api bench`: the measurements behind BENCHMARKS.md (`make bench` runs it and writes the file).
//!
//! - Cold start: each function binary is started against a small fake Lambda Runtime API; the time
//!   from exec to its first `GET /runtime/invocation/next` is the cold start, then it serves one real
//!   event and its peak RSS (`VmHWM`) is read before it is stopped.
//! - Warm latency: every route, many times, over HTTP through the local API's router over DynamoDB
//!   Local (and the Stripe stub for billing).
//! - DynamoDB calls and consumed capacity: one request on each route's common path, counted by SDK
//!   interceptors (`CallCounter`, `CapacityMeter`).

use crate::{init_stack, mint_token, request_context, router, JwtRules, LocalApi, TokenRequest};
use axum::http::{HeaderMap, Method};
use serde::Serialize;
use serde_json::{json, Value};
use son1k_app::AppState;
use son1k_http::routes::{Route, ROUTES};
use son1k_store::metrics::{CallCounter, CapacityMeter};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error + Send + Sync>;

const JWT_SECRET: &str = "bench-secret";

/// What `bench` prints (JSON), for `local/bench.py` to turn into BENCHMARKS.md.
#[derive(Debug, Serialize)]
pub struct Report {
    pub cold: Vec<ColdStart>,
    pub routes: Vec<RouteFigures>,
}

#[derive(Debug, Serialize)]
pub struct ColdStart {
    pub binary: String,
    /// Exec → first Runtime API poll, per run, in ms.
    pub runs_ms: Vec<f64>,
    /// Exec → the first event's answer posted to the Runtime API, per run, in ms: the cold start a
    /// caller waits through (what a function defers to its first event shows here).
    pub first_answer_ms: Vec<f64>,
    /// Peak resident set after one invocation, per run, in KiB.
    pub peak_rss_kib: Vec<u64>,
    /// What the one invocation answered (the runtime's `/response` or `/error`), first run.
    pub outcome: String,
}

#[derive(Debug, Serialize)]
pub struct RouteFigures {
    pub route: String,
    pub function: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Status codes seen over the samples.
    pub statuses: BTreeMap<u16, usize>,
    /// DynamoDB operations of one common-path request, in order.
    pub dynamodb_calls: Vec<String>,
    /// Capacity units DynamoDB reported for that request (reads and writes together).
    pub capacity_units: f64,
}

/// One request of a route's plan.
struct Call {
    method: &'static str,
    path: String,
    user: Option<(String, bool)>,
    body: Option<String>,
    headers: Vec<(String, String)>,
}

/// The data the plans need: seeded before measuring.
struct Seeded {
    item: String,
    /// A draft to read, one to edit version after version, and a conversation with Pixel.
    lyrics: String,
    edited: String,
    conversation: String,
    today: String,
    month_ago: String,
    webhook_secret: String,
}

/// Runs everything; `bins` holds the release binaries, `runs` cold starts per binary.
pub async fn run(bins: &Path, runs: usize, samples: usize) -> Result<Report, Failure> {
    let routes = routes(samples).await?;
    let mut cold = Vec::new();
    let mut binaries: Vec<&str> = ROUTES.iter().map(|r| r.function).collect();
    binaries.extend([
        "fallback",
        "scheduled-reset",
        "storage-events",
        "generation-worker",
        "hello-world",
    ]);
    binaries.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for binary in binaries {
        if !seen.insert(binary) {
            continue;
        }
        cold.push(cold_start(&bins.join(binary), binary, runs, &[]).await?);
    }
    Ok(Report { cold, routes })
}

async fn routes(samples: usize) -> Result<Vec<RouteFigures>, Failure> {
    let counter = CallCounter::new();
    let meter = CapacityMeter::new();
    let state = AppState::from_env()
        .await?
        .with_stripe()?
        .with_dynamo_interceptor(counter.clone())
        .with_dynamo_interceptor(meter.clone());
    init_stack(&state).await?;
    let mut state = state;
    // One user makes every route's requests back to back: a budget of one request per ms and no
    // burst limit, so each measured request finds it idle, as a person's request does (the
    // budget's burst path is measured by the tests, not here).
    state.config.request_budget = son1k_domain::rate::RequestBudget {
        per_minute: 60_000,
        burst: 1_000_000,
    };
    // Submissions are measured, not runs: a provider counts as configured.
    state.jobs_queue = Some(crate::jobs::ensure_queue(&state, "bench-jobs", 1).await?);
    // Lyric Studio and Pixel talk to an Ollama stub of their own (its answers take no time: the
    // figures are the backend's).
    let ollama = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ollama_url = format!("http://{}", ollama.local_addr()?);
    tokio::spawn(crate::ollama_stub::serve(
        ollama,
        crate::ollama_stub::OllamaStub::new(),
    ));
    state.llm = Some(Arc::new(son1k_app::llm::Ollama::new(
        son1k_app::llm::OllamaConfig {
            url: ollama_url,
            model: crate::ollama_stub::STUB_MODEL.to_owned(),
            timeout: std::time::Duration::from_secs(10),
            key_parameter: None,
            max_tokens: son1k_app::llm::MaxTokens::default(),
        },
        reqwest::Client::new(),
    )));
    let api = Arc::new(LocalApi {
        state: state.clone(),
        jwt: JwtRules::new(JWT_SECRET)?,
        frontend_origin: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router(api)).await });
    let client = reqwest::Client::new();
    let seeded = seed(&client, &base, &state).await?;
    // The users a route acts as one per request exist already (their common path; a first request
    // ever also makes the user item).
    for i in 0..samples + 6 {
        for family in ["buyer", "claimer", "listener", "liker"] {
            let id = son1k_domain::ids::UserId::parse(&format!("{family}-{i}"))?;
            state
                .users()
                .create(son1k_store::users::UserRecord::new(
                    id,
                    None,
                    None,
                    chrono::Utc::now(),
                ))
                .await?;
        }
    }
    // POST like before DELETE like: an unlike of a like that is there is the common path.
    let mut order: Vec<&Route> = ROUTES.iter().collect();
    order.sort_by_key(|r| (r.path.contains("/like/") && r.method == "DELETE") as u8);
    let mut figures = Vec::new();
    for route in order {
        let mut latencies = Vec::with_capacity(samples);
        let mut statuses = BTreeMap::new();
        for i in 0..samples + 5 {
            let call = plan(route, i, &seeded)?;
            let started = Instant::now();
            let status = send(&client, &base, &call).await?;
            let took = started.elapsed();
            // The first five warm up the function's path (JIT of DynamoDB Local, connections).
            if i >= 5 {
                latencies.push(took.as_secs_f64() * 1000.0);
                *statuses.entry(status).or_default() += 1;
            }
        }
        counter.take();
        meter.take();
        let call = plan(route, samples + 5, &seeded)?;
        send(&client, &base, &call).await?;
        let dynamodb_calls = counter.take();
        let capacity_units = meter.take().iter().sum();
        latencies.sort_by(f64::total_cmp);
        figures.push(RouteFigures {
            route: format!("{} {}", route.method, route.path),
            function: route.function.to_owned(),
            samples,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            statuses,
            dynamodb_calls,
            capacity_units,
        });
    }
    Ok(figures)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(0.0)
}

fn token(user: &str, admin: bool) -> Result<String, Failure> {
    Ok(mint_token(
        &JwtRules::new(JWT_SECRET)?,
        &TokenRequest {
            user: user.to_owned(),
            email: None,
            admin,
            ttl_seconds: 3600,
        },
    )?)
}

async fn send(client: &reqwest::Client, base: &str, call: &Call) -> Result<u16, Failure> {
    let method: reqwest::Method = call.method.parse()?;
    let mut request = client
        .request(method, format!("{base}{}", call.path))
        .header("content-type", "application/json");
    if let Some((user, admin)) = &call.user {
        request = request.header("authorization", format!("Bearer {}", token(user, *admin)?));
    }
    for (name, value) in &call.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    if status >= 500 {
        return Err(format!("{} {} answered {status}", call.method, call.path).into());
    }
    Ok(status)
}

fn user(id: &str) -> Option<(String, bool)> {
    Some((id.to_owned(), false))
}

fn admin() -> Option<(String, bool)> {
    Some(("bench_admin".to_owned(), true))
}

/// A listed pool item (a PRO user's 20th generation with its audio stored), and the users the
/// plans act as.
async fn seed(client: &reqwest::Client, base: &str, state: &AppState) -> Result<Seeded, Failure> {
    let now = chrono::Utc::now();
    let call = |method, path: &str, who: Option<(String, bool)>, body: Option<Value>| Call {
        method,
        path: path.to_owned(),
        user: who,
        body: body.map(|b| b.to_string()),
        headers: Vec::new(),
    };
    for (who, tier) in [
        ("bench_owner", "PRO"),
        ("bench_rec", "STUDIO"),
        ("bench_contrib", "STUDIO"),
    ] {
        send(
            client,
            base,
            &call("GET", "/api/tiers/limits/me", user(who), None),
        )
        .await?;
        let path = format!("/api/admin/users/{who}/tier");
        send(
            client,
            base,
            &call("PUT", &path, admin(), Some(json!({"tier": tier}))),
        )
        .await?;
    }
    for n in 1..=20 {
        let body = json!({"generation_id": format!("bench-{n}"), "genre": "house"});
        let path = "/api/tiers/record-generation";
        send(
            client,
            base,
            &call("POST", path, user("bench_owner"), Some(body)),
        )
        .await?;
    }
    let audio = b"ID3 bench audio".to_vec();
    let grant = client
        .post(format!("{base}/api/generations/bench-20/upload-url"))
        .header(
            "authorization",
            format!("Bearer {}", token("bench_owner", false)?),
        )
        .body(json!({"content_type": "audio/mpeg", "size_bytes": audio.len()}).to_string())
        .send()
        .await?
        .json::<Value>()
        .await?;
    let url = grant
        .pointer("/upload_url")
        .and_then(Value::as_str)
        .ok_or("no upload url")?;
    // Every header the link names (its signed content type, length and If-None-Match).
    let mut put = client.put(url).body(audio);
    for (name, value) in grant
        .pointer("/headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if name != "content-length" {
            put = put.header(name, value.as_str().unwrap_or_default());
        }
    }
    put.send().await?.error_for_status()?;
    // The key the link writes: its path after the bucket (path-style).
    let key = reqwest::Url::parse(url)?
        .path()
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, key)| key.to_owned())
        .ok_or("no key in the upload url")?;
    let event = storage_events::event_for(&state.config.names.audio_bucket, &[key]);
    storage_events::handler(
        state,
        lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default()),
    )
    .await?;
    let page: Value = client
        .get(format!("{base}/api/community/pool"))
        .send()
        .await?
        .json()
        .await?;
    let item = page
        .pointer("/items/0/id")
        .and_then(Value::as_str)
        .ok_or("the seeded item is not listed")?
        .to_owned();
    // Generations to contribute by hand, and a Stripe customer for the portal.
    for n in 0..400 {
        let body = json!({"generation_id": format!("contrib-{n}")});
        let path = "/api/tiers/record-generation";
        send(
            client,
            base,
            &call("POST", path, user("bench_contrib"), Some(body)),
        )
        .await?;
    }
    send(
        client,
        base,
        &call(
            "POST",
            "/api/tiers/checkout",
            user("bench_buyer"),
            Some(json!({"tier": "PRO"})),
        ),
    )
    .await?;
    send(
        client,
        base,
        &call("GET", "/api/tiers/limits/me", user("bench_sub"), None),
    )
    .await?;
    let mut drafts = Vec::new();
    for _ in 0..2 {
        let draft: Value = client
            .post(format!("{base}/api/lyrics"))
            .header(
                "authorization",
                format!("Bearer {}", token("bench_rec", false)?),
            )
            .body(json!({"theme": "bench", "structure": ["verse", "chorus"]}).to_string())
            .send()
            .await?
            .json()
            .await?;
        drafts.push(
            draft
                .pointer("/lyrics_id")
                .and_then(Value::as_str)
                .ok_or("no draft")?
                .to_owned(),
        );
    }
    let chat: Value = client
        .post(format!("{base}/api/pixel/chat"))
        .header(
            "authorization",
            format!("Bearer {}", token("bench_rec", false)?),
        )
        .body(json!({"message": "hello"}).to_string())
        .send()
        .await?
        .json()
        .await?;
    Ok(Seeded {
        item,
        lyrics: drafts.first().cloned().ok_or("no draft")?,
        edited: drafts.get(1).cloned().ok_or("no second draft")?,
        conversation: chat
            .pointer("/conversation_id")
            .and_then(Value::as_str)
            .ok_or("no conversation")?
            .to_owned(),
        today: now.format("%Y-%m-%d").to_string(),
        month_ago: (now - chrono::Duration::days(29))
            .format("%Y-%m-%d")
            .to_string(),
        webhook_secret: std::env::var("STRIPE_WEBHOOK_SECRET")
            .map_err(|_| "STRIPE_WEBHOOK_SECRET is not set")?,
    })
}

/// The `i`-th request of `route`'s common path.
fn plan(route: &Route, i: usize, s: &Seeded) -> Result<Call, Failure> {
    let item = &s.item;
    let mut call = Call {
        method: route.method,
        path: route.path.to_owned(),
        user: user("bench_owner"),
        body: None,
        headers: Vec::new(),
    };
    match (route.method, route.path) {
        ("GET", "/health") | ("GET", "/api/tiers") => call.user = None,
        ("GET", "/api/tiers/limits/{user_id}") => call.path = "/api/tiers/limits/me".into(),
        ("POST", "/api/generations") => {
            call.user = user("bench_rec");
            call.body = Some(
                json!({"generation_id": format!("job-{i}"), "prompt": "a calm piano",
                       "quality": "standard", "duration_seconds": 10})
                .to_string(),
            );
        }
        ("GET", "/api/generations/{generation_id}") => {
            call.user = user("bench_rec");
            call.path = format!("/api/generations/job-{}", i % 5);
        }
        ("POST", "/api/tiers/record-generation") => {
            call.user = user("bench_rec");
            call.body =
                Some(json!({"generation_id": format!("rec-{i}"), "genre": "house"}).to_string());
        }
        ("POST", "/api/tiers/checkout") => {
            call.user = user(&format!("buyer-{i}"));
            call.body = Some(json!({"tier": "PRO"}).to_string());
        }
        ("POST", "/api/tiers/portal") => call.user = user("bench_buyer"),
        ("POST", "/api/tiers/webhook") => {
            call.user = None;
            let created = chrono::Utc::now() + chrono::Duration::seconds(i as i64);
            let event = crate::stripe_events::SubEvent {
                id: format!("evt_bench_{i}_{}", ulid::Ulid::generate()),
                created: created.to_rfc3339(),
                ..crate::stripe_events::SubEvent::new("bench_sub")
            };
            let body = event.json().to_string();
            let signature = crate::stripe_events::sign(
                &body,
                chrono::Utc::now().timestamp(),
                &s.webhook_secret,
            );
            call.headers.push(("stripe-signature".into(), signature));
            call.body = Some(body);
        }
        ("GET", "/api/community/pool") | ("GET", "/api/community/ranking") => call.user = None,
        ("POST", "/api/community/pool/claim") => {
            call.user = user(&format!("claimer-{i}"));
            call.body = Some(json!({"contribution_id": item}).to_string());
        }
        ("POST", "/api/community/pool/{id}/play") => {
            call.path = format!("/api/community/pool/{item}/play");
            call.user = user(&format!("listener-{i}"));
        }
        ("POST", "/api/community/pool/like/{id}") | ("DELETE", "/api/community/pool/like/{id}") => {
            call.path = format!("/api/community/pool/like/{item}");
            call.user = user(&format!("liker-{i}"));
        }
        ("POST", "/api/community/contribute") => {
            call.user = user("bench_contrib");
            call.body = Some(json!({"generation_id": format!("contrib-{i}")}).to_string());
        }
        ("POST", "/api/generations/{generation_id}/upload-url") => {
            call.path = "/api/generations/bench-20/upload-url".into();
            call.body = Some(json!({"content_type": "audio/mpeg", "size_bytes": 1000}).to_string());
        }
        ("GET", "/api/generations/{generation_id}/audio") => {
            call.path = "/api/generations/bench-20/audio".into();
        }
        ("PUT", "/api/admin/users/{user_id}/tier") => {
            call.path = "/api/admin/users/bench_owner/tier".into();
            call.user = admin();
            call.body = Some(json!({"tier": "PRO"}).to_string());
        }
        ("GET", "/api/analytics/summary") => {
            call.path = format!("/api/analytics/summary?from={}&to={}", s.month_ago, s.today);
            call.user = admin();
        }
        ("POST", "/api/lyrics") => {
            call.user = user("bench_rec");
            call.body =
                Some(json!({"theme": "bench", "structure": ["verse", "chorus"]}).to_string());
        }
        ("GET", "/api/lyrics") => call.user = user("bench_rec"),
        ("GET", "/api/lyrics/{lyrics_id}") => {
            call.user = user("bench_rec");
            call.path = format!("/api/lyrics/{}", s.lyrics);
        }
        // Each edit edits the version the one before saved.
        ("PUT", "/api/lyrics/{lyrics_id}") => {
            call.user = user("bench_rec");
            call.path = format!("/api/lyrics/{}", s.edited);
            call.headers.push(("if-match".into(), (i + 1).to_string()));
            call.body = Some(
                json!({"sections": [{"kind": "verse", "lines": [format!("edit {i}")]}]})
                    .to_string(),
            );
        }
        ("POST", "/api/pixel/chat") => {
            call.user = user("bench_rec");
            call.body = Some(
                json!({"message": "what next?", "conversation_id": s.conversation}).to_string(),
            );
        }
        (method, path) => return Err(format!("no benchmark plan for {method} {path}").into()),
    }
    Ok(call)
}

/// The event a function's one invocation gets: its route's API Gateway request, or its own kind.
fn event_for(function: &str) -> Result<String, Failure> {
    match function {
        "scheduled-reset" => return Ok(json!({"kind": "daily"}).to_string()),
        "storage-events" | "generation-worker" => return Ok(json!({"Records": []}).to_string()),
        _ => {}
    }
    let route = ROUTES
        .iter()
        .find(|r| r.function == function)
        .copied()
        .unwrap_or(Route {
            method: "GET",
            path: "/nowhere",
            function: "fallback",
            public: true,
        });
    let method: Method = route.method.parse()?;
    let claims = (!route.public).then(|| {
        std::collections::HashMap::from([
            ("sub".to_owned(), "bench_cold".to_owned()),
            ("cognito:username".to_owned(), "bench_cold".to_owned()),
        ])
    });
    let path = route.path.replace("{user_id}", "me");
    let context = request_context(&route, &method, &path, &HeaderMap::new(), claims);
    let mut params = serde_json::Map::new();
    if route.path.contains("{user_id}") {
        params.insert("user_id".into(), json!("me"));
    }
    Ok(json!({
        "version": "2.0",
        "routeKey": format!("{} {}", route.method, route.path),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "pathParameters": params,
        "requestContext": serde_json::to_value(context)?,
        "isBase64Encoded": false,
    })
    .to_string())
}

/// The fake Runtime API's view of one run.
#[derive(Default)]
struct RuntimeRun {
    event: String,
    polls: u32,
    first_poll: Option<Instant>,
    answered: Option<Instant>,
    outcome: Option<String>,
}

/// `runs` cold starts of `bin` (serving `name`'s event), with `env` added to the environment.
pub async fn cold_start(
    bin: &Path,
    name: &str,
    runs: usize,
    env: &[(String, String)],
) -> Result<ColdStart, Failure> {
    let run = Arc::new(Mutex::new(RuntimeRun::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = runtime_api(run.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let event = event_for(name)?;
    let mut runs_ms = Vec::new();
    let mut first_answer_ms = Vec::new();
    let mut peak_rss_kib = Vec::new();
    let mut outcome = String::new();
    for _ in 0..runs {
        if let Ok(mut r) = run.lock() {
            *r = RuntimeRun {
                event: event.clone(),
                ..RuntimeRun::default()
            };
        }
        let started = Instant::now();
        let mut child = std::process::Command::new(bin)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let pid = child.id();
        // Until the second poll: the one event was answered and the function waits for the next.
        let deadline = started + Duration::from_secs(20);
        loop {
            let done = run.lock().map(|r| r.polls >= 2).unwrap_or(true);
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let rss = peak_rss(pid);
        child.kill().ok();
        child.wait().ok();
        let (first, answered, result) = run
            .lock()
            .map(|r| (r.first_poll, r.answered, r.outcome.clone()))
            .map_err(|_| "poisoned")?;
        let first = first.ok_or(format!("{name} never polled the Runtime API"))?;
        let answered = answered.ok_or(format!("{name} never answered its event"))?;
        runs_ms.push((first - started).as_secs_f64() * 1000.0);
        first_answer_ms.push((answered - started).as_secs_f64() * 1000.0);
        peak_rss_kib.push(rss);
        if outcome.is_empty() {
            outcome = result.unwrap_or_else(|| "no answer".into());
        }
    }
    server.abort();
    Ok(ColdStart {
        binary: name.to_owned(),
        runs_ms,
        first_answer_ms,
        peak_rss_kib,
        outcome,
    })
}

fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// The Runtime API's three calls a function makes: next, response, error.
fn runtime_api(run: Arc<Mutex<RuntimeRun>>) -> axum::Router {
    use axum::extract::State;
    use axum::routing::{get, post};
    let next = |State(run): State<Arc<Mutex<RuntimeRun>>>| async move {
        let (polls, event) = match run.lock() {
            Ok(mut r) => {
                r.polls += 1;
                if r.first_poll.is_none() {
                    r.first_poll = Some(Instant::now());
                }
                (r.polls, r.event.clone())
            }
            Err(_) => (2, String::new()),
        };
        if polls >= 2 {
            // The function is warm and waiting: keep it waiting until it is stopped.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        axum::http::Response::builder()
            .header("lambda-runtime-aws-request-id", format!("bench-{polls}"))
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(axum::body::Body::from(event))
            .unwrap_or_default()
    };
    let answer = |outcome: &'static str| {
        move |State(run): State<Arc<Mutex<RuntimeRun>>>, body: String| async move {
            if let Ok(mut r) = run.lock() {
                let status = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("statusCode").cloned())
                    .map_or(String::new(), |s| format!(" {s}"));
                r.outcome = Some(format!("{outcome}{status}"));
                r.answered.get_or_insert_with(Instant::now);
            }
            axum::http::StatusCode::ACCEPTED
        }
    };
    axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(answer("response")),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(answer("error")),
        )
        .route("/2018-06-01/runtime/init/error", post(answer("init error")))
        .with_state(run)
}
