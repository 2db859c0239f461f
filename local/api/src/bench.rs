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
use son1k_app::ports::Users;
use son1k_app::AppState;
use son1k_http::routes::{Route, ROUTES};
use son1k_store::metrics::{CallCounter, CapacityMeter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// A voice of `bench_voice`'s awaiting its recordings, and one voice of each `deleter-<i>`.
    voice: String,
    deletable: Vec<String>,
}

/// Every binary measured: each route's function, the consumers of queues, S3 and schedules, and
/// the hello-world they are compared with; each once.
fn measured() -> Vec<&'static str> {
    let mut binaries: Vec<&str> = ROUTES.iter().map(|r| r.function).collect();
    binaries.extend([
        "fallback",
        "scheduled-reset",
        "storage-events",
        "generation-worker",
        "alert-delivery",
        "voice-results",
        "account-worker",
        "hello-world",
    ]);
    let mut seen = std::collections::BTreeSet::new();
    binaries.retain(|b| seen.insert(*b));
    binaries
}

/// Runs everything; `bins` holds the release binaries, `runs` cold starts per binary.
pub async fn run(bins: &Path, runs: usize, samples: usize) -> Result<Report, Failure> {
    let routes = routes(samples).await?;
    let binaries: Vec<(PathBuf, &str)> =
        measured().into_iter().map(|b| (bins.join(b), b)).collect();
    let cold = cold_starts(&binaries, runs, &[]).await?;
    Ok(Report { cold, routes })
}

async fn routes(samples: usize) -> Result<Vec<RouteFigures>, Failure> {
    let counter = CallCounter::new();
    let meter = CapacityMeter::new();
    let state = bench_state(&counter, &meter).await?;
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
            let user = son1k_store::users::UserRecord::new(id, None, None, chrono::Utc::now());
            state.users().create(user).await?;
        }
        // Voices are for paid tiers: one STUDIO user per creation, and per deletion.
        for family in ["voicer", "deleter"] {
            let id = son1k_domain::ids::UserId::parse(&format!("{family}-{i}"))?;
            let mut user = son1k_store::users::UserRecord::new(id, None, None, chrono::Utc::now());
            user.tier = son1k_domain::tiers::Tier::Studio;
            user.tier_source = son1k_domain::entitlement::TierSource::Admin;
            state.users().create(user).await?;
        }
    }
    let mut seeded = seeded;
    for i in 0..samples + 6 {
        let voice = post_json(
            &client,
            &base,
            "/api/voices",
            &format!("deleter-{i}"),
            json!({"name": "bench"}),
        )
        .await?;
        seeded.deletable.push(text_at(&voice, "/voice_id")?);
    }
    // POST like before DELETE like: an unlike of a like that is there is the common path.
    let mut order: Vec<&Route> = ROUTES.iter().collect();
    order.sort_by_key(|r| (r.path.contains("/like/") && r.method == "DELETE") as u8);
    let mut figures = Vec::new();
    let bench = Bench {
        client: &client,
        base: &base,
        seeded: &seeded,
        counter: &counter,
        meter: &meter,
        samples,
    };
    for route in order {
        figures.push(bench.route(route).await?);
    }
    Ok(figures)
}

/// The local API's state as the bench measures it: every DynamoDB call counted and metered, a
/// request budget that never refuses, a jobs queue, and a language-model stub of its own.
async fn bench_state(counter: &CallCounter, meter: &CapacityMeter) -> Result<AppState, Failure> {
    let mut state = AppState::from_env()
        .await?
        .with_stripe()?
        .with_dynamo_interceptor(counter.clone())
        .with_dynamo_interceptor(meter.clone());
    init_stack(&state).await?;
    // One user makes every route's requests back to back: a budget of one request per ms and no
    // burst limit, so each measured request finds it idle, as a person's request does (the
    // budget's burst path is measured by the tests, not here).
    state.config.request_budget = son1k_domain::rate::RequestBudget {
        per_minute: 60_000,
        burst: 1_000_000,
    };
    // Submissions are measured, not runs: a provider counts as configured.
    state.jobs_queue = Some(crate::jobs::ensure_queue(&state, "bench-jobs", 1).await?);
    // The voice jobs queue (no worker reads it here).
    crate::voice_worker::VoiceWorker::start(&mut state, "bench").await?;
    // The account queue and a user pool (closings and exports are queued; no worker reads them).
    crate::accounts::ensure(&mut state, "bench-accounts").await?;
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
    Ok(state)
}

/// What measuring a route needs.
struct Bench<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    seeded: &'a Seeded,
    counter: &'a CallCounter,
    meter: &'a CapacityMeter,
    samples: usize,
}

impl Bench<'_> {
    /// `samples` requests of `route`'s plan after five that warm it up (the latencies and
    /// statuses), then one more whose DynamoDB calls and capacity are counted.
    async fn route(&self, route: &Route) -> Result<RouteFigures, Failure> {
        let samples = self.samples;
        let mut latencies = Vec::with_capacity(samples);
        let mut statuses = BTreeMap::new();
        for i in 0..samples + 5 {
            let call = plan(route, i, self.seeded)?;
            let started = Instant::now();
            let status = send(self.client, self.base, &call).await?;
            let took = started.elapsed();
            // The first five warm up the function's path (JIT of DynamoDB Local, connections).
            if i >= 5 {
                latencies.push(took.as_secs_f64() * 1000.0);
                *statuses.entry(status).or_default() += 1;
            }
        }
        self.counter.take();
        self.meter.take();
        let call = plan(route, samples + 5, self.seeded)?;
        send(self.client, self.base, &call).await?;
        let dynamodb_calls = self.counter.take();
        let capacity_units = self.meter.take().iter().sum();
        latencies.sort_by(f64::total_cmp);
        Ok(RouteFigures {
            route: format!("{} {}", route.method, route.path),
            function: route.function.to_owned(),
            samples,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            statuses,
            dynamodb_calls,
            capacity_units,
        })
    }
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
    seed_users(client, base).await?;
    let item = seed_listed_item(client, base, state).await?;
    seed_contributions_and_billing(client, base).await?;
    let mut drafts = Vec::new();
    for _ in 0..2 {
        let body = json!({"theme": "bench", "structure": ["verse", "chorus"]});
        let draft = post_json(client, base, "/api/lyrics", "bench_rec", body).await?;
        drafts.push(text_at(&draft, "/lyrics_id")?);
    }
    let chat = post_json(
        client,
        base,
        "/api/pixel/chat",
        "bench_rec",
        json!({"message": "hello"}),
    )
    .await?;
    let voice = post_json(
        client,
        base,
        "/api/voices",
        "bench_rec",
        json!({"name": "bench voice"}),
    )
    .await?;
    Ok(Seeded {
        item,
        lyrics: drafts.first().cloned().ok_or("no draft")?,
        edited: drafts.get(1).cloned().ok_or("no second draft")?,
        conversation: text_at(&chat, "/conversation_id")?,
        today: now.format("%Y-%m-%d").to_string(),
        month_ago: (now - chrono::Duration::days(29))
            .format("%Y-%m-%d")
            .to_string(),
        webhook_secret: std::env::var("STRIPE_WEBHOOK_SECRET")
            .map_err(|_| "STRIPE_WEBHOOK_SECRET is not set")?,
        voice: text_at(&voice, "/voice_id")?,
        deletable: Vec::new(),
    })
}

/// A request of the seeding, as `user` (or an admin) with an optional JSON body.
fn seed_call(
    method: &'static str,
    path: &str,
    who: Option<(String, bool)>,
    body: Option<Value>,
) -> Call {
    Call {
        method,
        path: path.to_owned(),
        user: who,
        body: body.map(|b| b.to_string()),
        headers: Vec::new(),
    }
}

/// The bench's users at their tiers, and 20 generations of `bench_owner`'s (the 20th of a paid
/// tier is contributed to the pool).
async fn seed_users(client: &reqwest::Client, base: &str) -> Result<(), Failure> {
    for (who, tier) in [
        ("bench_owner", "PRO"),
        ("bench_rec", "STUDIO"),
        ("bench_contrib", "STUDIO"),
    ] {
        let limits = seed_call("GET", "/api/tiers/limits/me", user(who), None);
        send(client, base, &limits).await?;
        let path = format!("/api/admin/users/{who}/tier");
        let grant = seed_call("PUT", &path, admin(), Some(json!({"tier": tier})));
        send(client, base, &grant).await?;
    }
    for n in 1..=20 {
        let body = json!({"generation_id": format!("bench-{n}"), "genre": "house"});
        let path = "/api/tiers/record-generation";
        send(
            client,
            base,
            &seed_call("POST", path, user("bench_owner"), Some(body)),
        )
        .await?;
    }
    Ok(())
}

/// The contributed 20th generation's audio uploaded through its presigned link and accounted (as
/// S3's event would), so the pool lists it: its id.
async fn seed_listed_item(
    client: &reqwest::Client,
    base: &str,
    state: &AppState,
) -> Result<String, Failure> {
    let audio = b"ID3 bench audio".to_vec();
    let grant = post_json(
        client,
        base,
        "/api/generations/bench-20/upload-url",
        "bench_owner",
        json!({"content_type": "audio/mpeg", "size_bytes": audio.len()}),
    )
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
    text_at(&page, "/items/0/id").map_err(|_| "the seeded item is not listed".into())
}

/// Generations to contribute by hand, a checkout's Stripe customer for the portal, and a
/// subscriber.
async fn seed_contributions_and_billing(
    client: &reqwest::Client,
    base: &str,
) -> Result<(), Failure> {
    for n in 0..400 {
        let body = json!({"generation_id": format!("contrib-{n}")});
        let path = "/api/tiers/record-generation";
        send(
            client,
            base,
            &seed_call("POST", path, user("bench_contrib"), Some(body)),
        )
        .await?;
    }
    let checkout = json!({"tier": "PRO"});
    let path = "/api/tiers/checkout";
    send(
        client,
        base,
        &seed_call("POST", path, user("bench_buyer"), Some(checkout)),
    )
    .await?;
    let limits = seed_call("GET", "/api/tiers/limits/me", user("bench_sub"), None);
    send(client, base, &limits).await?;
    Ok(())
}

/// POSTs `body` to `path` as `who` and reads the JSON answer.
async fn post_json(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    who: &str,
    body: Value,
) -> Result<Value, Failure> {
    Ok(client
        .post(format!("{base}{path}"))
        .header("authorization", format!("Bearer {}", token(who, false)?))
        .body(body.to_string())
        .send()
        .await?
        .json()
        .await?)
}

/// The string at `pointer` in `value`.
fn text_at(value: &Value, pointer: &str) -> Result<String, Failure> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {pointer} in {value}").into())
}

/// The `i`-th request of `route`'s common path.
fn plan(route: &Route, i: usize, s: &Seeded) -> Result<Call, Failure> {
    let mut call = Call {
        method: route.method,
        path: route.path.to_owned(),
        user: user("bench_owner"),
        body: None,
        headers: Vec::new(),
    };
    let planned = plan_generation(&mut call, i)
        || plan_billing(&mut call, i, s)
        || plan_pool(&mut call, i, s)
        || plan_assist(&mut call, i, s)
        || plan_voices(&mut call, i, s)?
        || plan_other(&mut call, i, s);
    if !planned {
        return Err(format!("no benchmark plan for {} {}", route.method, route.path).into());
    }
    Ok(call)
}

/// Generations: record-generation, jobs, uploads and audio links.
fn plan_generation(call: &mut Call, i: usize) -> bool {
    let path = call.path.clone();
    match (call.method, path.as_str()) {
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
        ("POST", "/api/generations/{generation_id}/upload-url") => {
            call.path = "/api/generations/bench-20/upload-url".into();
            call.body = Some(json!({"content_type": "audio/mpeg", "size_bytes": 1000}).to_string());
        }
        ("GET", "/api/generations/{generation_id}/audio") => {
            call.path = "/api/generations/bench-20/audio".into();
        }
        _ => return false,
    }
    true
}

/// Stripe: checkout, the portal, a signed webhook event.
fn plan_billing(call: &mut Call, i: usize, s: &Seeded) -> bool {
    let path = call.path.clone();
    match (call.method, path.as_str()) {
        ("POST", "/api/tiers/checkout") => {
            call.user = user(&format!("buyer-{i}"));
            call.body = Some(json!({"tier": "PRO"}).to_string());
        }
        ("POST", "/api/tiers/portal") => call.user = user("bench_buyer"),
        // A first pack checkout per user: made, its customer created and stored.
        ("POST", "/api/credits/checkout") => {
            call.user = user(&format!("packer-{i}"));
            call.body = Some(json!({"pack": "pack_10"}).to_string());
        }
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
        _ => return false,
    }
    true
}

/// The community pool.
fn plan_pool(call: &mut Call, i: usize, s: &Seeded) -> bool {
    let (path, item) = (call.path.clone(), &s.item);
    match (call.method, path.as_str()) {
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
        _ => return false,
    }
    true
}

/// Lyric Studio and Pixel.
fn plan_assist(call: &mut Call, i: usize, s: &Seeded) -> bool {
    let path = call.path.clone();
    match (call.method, path.as_str()) {
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

        _ => return false,
    }
    true
}

/// Voices: a creation per STUDIO user, the list and a voice of `bench_rec`'s, its submission
/// before its recordings arrived (the 409: one read), a deletion per user.
fn plan_voices(call: &mut Call, i: usize, s: &Seeded) -> Result<bool, Failure> {
    let path = call.path.clone();
    match (call.method, path.as_str()) {
        ("POST", "/api/voices") => {
            call.user = user(&format!("voicer-{i}"));
            call.body = Some(json!({"name": "bench", "language": "en"}).to_string());
        }
        ("GET", "/api/voices") => call.user = user("bench_rec"),
        ("GET", "/api/voices/{voice_id}") => {
            call.user = user("bench_rec");
            call.path = format!("/api/voices/{}", s.voice);
        }
        ("POST", "/api/voices/{voice_id}/submit") => {
            call.user = user("bench_rec");
            call.path = format!("/api/voices/{}/submit", s.voice);
        }
        ("DELETE", "/api/voices/{voice_id}") => {
            call.user = user(&format!("deleter-{i}"));
            let voice = s.deletable.get(i).ok_or("not enough voices to delete")?;
            call.path = format!("/api/voices/{voice}");
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Health, tiers and limits, the admin routes, alerts and their settings, credits.
fn plan_other(call: &mut Call, i: usize, s: &Seeded) -> bool {
    let path = call.path.clone();
    match (call.method, path.as_str()) {
        ("GET", "/health") | ("GET", "/api/tiers") | ("GET", "/api/credits/packs") => {
            call.user = None
        }
        ("GET", "/api/tiers/limits/{user_id}") => call.path = "/api/tiers/limits/me".into(),
        ("GET", "/api/tiers/preview") => call.path = "/api/tiers/preview?tier=PRO".into(),
        ("PUT", "/api/admin/users/{user_id}/tier") => {
            call.path = "/api/admin/users/bench_owner/tier".into();
            call.user = admin();
            call.body = Some(json!({"tier": "PRO"}).to_string());
        }
        ("GET", "/api/analytics/summary") => {
            call.path = format!("/api/analytics/summary?from={}&to={}", s.month_ago, s.today);
            call.user = admin();
        }
        ("PUT", "/api/admin/users/{user_id}/hold") => {
            // Placed, then lifted: each call changes the hold, so each writes its entry.
            call.path = "/api/admin/users/bench_owner/hold".into();
            call.user = admin();
            call.body = Some(json!({"hold": i.is_multiple_of(2), "reason": "bench"}).to_string());
        }
        ("GET", "/api/admin/audit") | ("GET", "/api/admin/audit/verify") => call.user = admin(),
        ("DELETE", "/api/me") => {
            // A user of its own each time: a closing is once per account.
            call.user = user(&format!("bench_leaver_{i}"));
            call.body = Some(json!({"confirm": "DELETE"}).to_string());
        }
        ("POST", "/api/me/exports") => {
            // A user of its own each time: one export a day.
            call.user = user(&format!("bench_exporter_{i}"));
        }
        ("GET", "/api/me/exports/{export_id}") => {
            // An id no export has: the same one read as an export found.
            call.path = "/api/me/exports/01JD0000000000000000000000".into();
        }
        ("GET", "/api/me/deletion") => {
            // An id no deletion has: the same one read as a receipt found.
            call.user = None;
            call.path = "/api/me/deletion?deletion_id=01JD0000000000000000000000".into();
        }
        ("GET", "/api/credits") | ("GET", "/api/credits/ledger") => {}
        ("POST", "/api/admin/users/{user_id}/credits") => {
            call.path = "/api/admin/users/bench_owner/credits".into();
            call.user = admin();
            let expires = chrono::Utc::now() + chrono::Duration::days(365);
            call.body = Some(
                json!({"generations": 10, "expires_at": expires.to_rfc3339(), "reason": "bench"})
                    .to_string(),
            );
        }
        ("GET", "/api/me/alerts/settings")
        | ("GET", "/api/me/alerts")
        | ("POST", "/api/me/alerts/webhook-secret") => {}
        ("PUT", "/api/me/alerts/settings") => {
            call.body = Some(
                json!({"thresholds": [50, 90], "channels": {"email": true, "webhook_url": null}, "pace": false})
                    .to_string(),
            );
        }
        _ => return false,
    }
    true
}

/// The event a function's one invocation gets: its route's API Gateway request, or its own kind.
fn event_for(function: &str) -> Result<String, Failure> {
    match function {
        "scheduled-reset" => return Ok(json!({"kind": "daily"}).to_string()),
        "storage-events" | "generation-worker" | "alert-delivery" | "voice-results"
        | "account-worker" => return Ok(json!({"Records": []}).to_string()),
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
    let mut cold = cold_starts(&[(bin.to_path_buf(), name)], runs, env).await?;
    cold.pop().ok_or_else(|| "no cold start".into())
}

/// `runs` cold starts of each of `binaries` (a path and the function's name), interleaved: each
/// round starts every binary once, from a different one each round, so a drift of the machine
/// (a background compaction, a page cache warming up) falls on every binary alike, the
/// hello-world included, instead of on whichever was measured then.
pub async fn cold_starts(
    binaries: &[(PathBuf, &str)],
    runs: usize,
    env: &[(String, String)],
) -> Result<Vec<ColdStart>, Failure> {
    let run = Arc::new(Mutex::new(RuntimeRun::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let app = runtime_api(run.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut launches = Vec::new();
    let mut colds = Vec::new();
    for (bin, name) in binaries {
        launches.push(Launch {
            bin,
            name,
            env,
            address: &address,
            event: event_for(name)?,
            run: &run,
        });
        colds.push(ColdStart {
            binary: (*name).to_owned(),
            runs_ms: Vec::new(),
            first_answer_ms: Vec::new(),
            peak_rss_kib: Vec::new(),
            outcome: String::new(),
        });
    }
    for round in 0..runs {
        for k in 0..launches.len() {
            let i = (round + k) % launches.len();
            let (Some(launch), Some(cold)) = (launches.get(i), colds.get_mut(i)) else {
                continue;
            };
            let once = launch.once().await?;
            cold.runs_ms.push(once.first_poll_ms);
            cold.first_answer_ms.push(once.answered_ms);
            cold.peak_rss_kib.push(once.peak_rss_kib);
            if cold.outcome.is_empty() {
                cold.outcome = once.outcome.unwrap_or_else(|| "no answer".into());
            }
        }
    }
    server.abort();
    Ok(colds)
}

/// One function binary started as Lambda starts it, against the Runtime API at `address`.
struct Launch<'a> {
    bin: &'a Path,
    name: &'a str,
    env: &'a [(String, String)],
    address: &'a str,
    event: String,
    run: &'a Mutex<RuntimeRun>,
}

/// What one cold start took.
struct Once {
    first_poll_ms: f64,
    answered_ms: f64,
    peak_rss_kib: u64,
    outcome: Option<String>,
}

impl Launch<'_> {
    /// Starts the binary, lets it answer its one event, and stops it at its next poll.
    async fn once(&self) -> Result<Once, Failure> {
        let name = self.name;
        if let Ok(mut r) = self.run.lock() {
            *r = RuntimeRun {
                event: self.event.clone(),
                ..RuntimeRun::default()
            };
        }
        let started = Instant::now();
        let mut child = std::process::Command::new(self.bin)
            .env("AWS_LAMBDA_RUNTIME_API", self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let pid = child.id();
        // Until the second poll: the one event was answered and the function waits for the next.
        let deadline = started + Duration::from_secs(20);
        loop {
            let done = self.run.lock().map(|r| r.polls >= 2).unwrap_or(true);
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let peak_rss_kib = peak_rss(pid);
        child.kill().ok();
        child.wait().ok();
        let (first, answered, outcome) = self
            .run
            .lock()
            .map(|r| (r.first_poll, r.answered, r.outcome.clone()))
            .map_err(|_| "poisoned")?;
        let first = first.ok_or(format!("{name} never polled the Runtime API"))?;
        let answered = answered.ok_or(format!("{name} never answered its event"))?;
        Ok(Once {
            first_poll_ms: (first - started).as_secs_f64() * 1000.0,
            answered_ms: (answered - started).as_secs_f64() * 1000.0,
            peak_rss_kib,
            outcome,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> Seeded {
        Seeded {
            item: "item".into(),
            lyrics: "draft".into(),
            edited: "edited".into(),
            conversation: "chat".into(),
            today: "2026-12-03".into(),
            month_ago: "2026-11-04".into(),
            webhook_secret: "whsec_test".into(),
            voice: "voice".into(),
            deletable: (0..10).map(|i| format!("voice-{i}")).collect(),
        }
    }

    #[test]
    fn every_function_crate_is_measured() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions");
        let mut crates: Vec<String> = std::fs::read_dir(dir)
            .expect("functions/")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        crates.sort();
        let mut measured: Vec<String> = measured()
            .into_iter()
            .filter(|b| *b != "hello-world")
            .map(str::to_owned)
            .collect();
        measured.sort();
        assert_eq!(measured, crates);
    }

    #[test]
    fn every_route_has_a_plan_with_its_path_filled_in() {
        let s = seeded();
        for route in ROUTES {
            let call = plan(route, 3, &s).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(call.method, route.method);
            assert!(!call.path.contains('{'), "{} {}", route.method, call.path);
        }
    }

    #[test]
    fn a_route_without_a_plan_is_an_error() {
        let route = Route {
            method: "GET",
            path: "/api/nowhere",
            ..ROUTES[0]
        };
        assert!(plan(&route, 0, &seeded()).is_err());
    }
}
