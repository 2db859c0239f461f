//! A local stand-in for music generation providers, speaking a predictions-style HTTP API
//! (Replicate's shape, as `son1k_app::providers::Predictions` calls it). One server plays any number of
//! providers, one per path prefix: `http://127.0.0.1:PORT/<name>` is provider `<name>`'s base URL.
//!
//! - `POST /<name>/v1/predictions` → `201 {"id", "status": "processing", "urls": {"get", "cancel"}}`;
//! - `GET /<name>/v1/predictions/<id>` → `{"id", "status": "succeeded", "output": "<file URL>"}`
//!   (`"processing"` while a `slow` prediction runs, `"canceled"` once cancelled);
//! - `POST /<name>/v1/predictions/<id>/cancel` → the prediction, `"canceled"` (counted);
//! - `GET /<name>/files/<id>.wav` → a real WAV (16 kHz, mono, 16-bit) of the asked duration, a tone
//!   whose pitch comes from the prompt.
//!
//! Tests and `make dev` steer each provider: `PUT /_control/<name>` with `{"mode": "ok" | "fail" |
//! "reject" | "rate_limited" | "slow" | "broken" | "oversized", "retry_after": 2, "delay_ms": 500,
//! "output": "<a link to report instead of the file>", "redirect": "<where the file answers 302>"}`;
//! `GET /_control/<name>` reports what it received (`{"predictions", "downloads", "cancellations",
//! "authorization"}`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SAMPLE_RATE: u32 = 16_000;

/// How a stub provider behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    #[serde(default)]
    pub mode: Mode,
    /// `Retry-After` of a 429, in seconds.
    #[serde(default)]
    pub retry_after: u64,
    /// How long a `slow` prediction runs before it succeeds, in ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// The output link a succeeded prediction reports instead of the stub's own file.
    #[serde(default)]
    pub output: Option<String>,
    /// The file download answers `302 Found` to this location instead of the audio.
    #[serde(default)]
    pub redirect: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Ok,
    /// 500 on every prediction.
    Fail,
    /// 422: the request itself is refused.
    Reject,
    /// 429 with `Retry-After`.
    RateLimited,
    /// The prediction stays `processing` for `delay_ms`, then succeeds as `ok`.
    Slow,
    /// Answers as `ok`, but the audio download breaks off after 6 MiB (a dropped connection).
    Broken,
    /// Answers as `ok`, but the audio is ten times the asked duration (streamed, no length).
    Oversized,
}

/// What a stub provider received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub predictions: u32,
    pub downloads: u32,
    /// Predictions cancelled (`POST …/cancel` of a prediction still running).
    pub cancellations: u32,
    /// The `Authorization` header of the last prediction request.
    pub authorization: Option<String>,
    /// The `input` of the last prediction request.
    #[serde(default)]
    pub last_input: Option<Value>,
}

#[derive(Debug, Clone)]
struct Prediction {
    prompt: String,
    duration: u64,
    /// When it succeeds (a `slow` one runs until then).
    done_at: std::time::Instant,
    canceled: bool,
}

#[derive(Debug, Default)]
struct Provider {
    behaviour: Behaviour,
    received: Received,
    predictions: HashMap<String, Prediction>,
}

/// The stub's state, shared by its handlers (and tests).
#[derive(Debug, Clone, Default)]
pub struct ProviderStub {
    providers: Arc<Mutex<HashMap<String, Provider>>>,
}

impl ProviderStub {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, name: &str, behaviour: Behaviour) {
        if let Ok(mut all) = self.providers.lock() {
            all.entry(name.to_owned()).or_default().behaviour = behaviour;
        }
    }

    pub fn received(&self, name: &str) -> Received {
        self.providers
            .lock()
            .ok()
            .and_then(|all| all.get(name).map(|p| p.received.clone()))
            .unwrap_or_default()
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Provider) -> T) -> Option<T> {
        self.providers
            .lock()
            .ok()
            .map(|mut all| f(all.entry(name.to_owned()).or_default()))
    }
}

pub fn router(stub: ProviderStub) -> Router {
    Router::new()
        .route("/{name}/v1/predictions", post(create))
        .route("/{name}/v1/predictions/{id}", get(poll))
        .route("/{name}/v1/predictions/{id}/cancel", post(cancel))
        .route("/{name}/files/{file}", get(download))
        .route("/_control/{name}", put(control).get(report))
        .with_state(stub)
}

/// Serves the stub on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, stub: ProviderStub) {
    if let Err(err) = axum::serve(listener, router(stub)).await {
        tracing::error!(error = %err, "provider stub stopped");
    }
}

fn base(headers: &HeaderMap, name: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/{name}")
}

async fn create(
    State(stub): State<ProviderStub>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let last_input = body.get("input").cloned();
    let behaviour = stub
        .with(&name, |p| {
            p.received.predictions += 1;
            p.received.authorization = authorization;
            p.received.last_input = last_input;
            p.behaviour.clone()
        })
        .unwrap_or_default();
    if let Some(refusal) = told_to_refuse(&behaviour) {
        return refusal;
    }
    let input = body.get("input").cloned().unwrap_or(Value::Null);
    let prompt = input
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let duration = input.get("duration").and_then(Value::as_u64).unwrap_or(5);
    if prompt.is_empty() || !(1..=300).contains(&duration) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": "input.prompt and input.duration (1..300) are required"})),
        )
            .into_response();
    }
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    let runs_for = match behaviour.mode {
        Mode::Slow => Duration::from_millis(behaviour.delay_ms),
        _ => Duration::ZERO,
    };
    let prediction = Prediction {
        prompt,
        duration,
        done_at: std::time::Instant::now() + runs_for,
        canceled: false,
    };
    stub.with(&name, |p| p.predictions.insert(id.clone(), prediction));
    let get = format!("{}/v1/predictions/{id}", base(&headers, &name));
    (
        StatusCode::CREATED,
        Json(
            json!({"id": id, "status": "processing", "output": null, "error": null,
                    "urls": {"get": get, "cancel": format!("{get}/cancel")}}),
        ),
    )
        .into_response()
}

/// The answer of a provider told to fail, refuse the input or throttle; `None` when it creates.
fn told_to_refuse(behaviour: &Behaviour) -> Option<Response> {
    Some(match behaviour.mode {
        Mode::Fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"detail": "stub failure"})),
        )
            .into_response(),
        Mode::Reject => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": "input refused"})),
        )
            .into_response(),
        Mode::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", behaviour.retry_after.to_string())],
            Json(json!({"detail": "Request was throttled."})),
        )
            .into_response(),
        Mode::Ok | Mode::Slow | Mode::Broken | Mode::Oversized => return None,
    })
}

/// The prediction found (with the output link to report), as the API shows it, or 404.
fn answer(
    headers: &HeaderMap,
    name: &str,
    id: &str,
    found: Option<(Prediction, Option<String>)>,
) -> Response {
    match found {
        Some((prediction, output)) => {
            Json(view(headers, name, id, &prediction, output)).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response(),
    }
}

/// A prediction's state as the API shows it.
fn view(
    headers: &HeaderMap,
    name: &str,
    id: &str,
    p: &Prediction,
    output: Option<String>,
) -> Value {
    if p.canceled {
        return json!({"id": id, "status": "canceled", "output": null, "error": null});
    }
    if std::time::Instant::now() < p.done_at {
        return json!({"id": id, "status": "processing", "output": null, "error": null});
    }
    let output = output.unwrap_or_else(|| format!("{}/files/{id}.wav", base(headers, name)));
    json!({"id": id, "status": "succeeded", "output": output, "error": null})
}

async fn cancel(
    State(stub): State<ProviderStub>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let found = stub
        .with(&name, |p| {
            let output = p.behaviour.output.clone();
            let prediction = p.predictions.get_mut(&id)?;
            let running = !prediction.canceled && std::time::Instant::now() < prediction.done_at;
            if running {
                prediction.canceled = true;
                p.received.cancellations += 1;
            }
            Some((p.predictions.get(&id)?.clone(), output))
        })
        .flatten();
    answer(&headers, &name, &id, found)
}

async fn poll(
    State(stub): State<ProviderStub>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let found = stub
        .with(&name, |p| {
            p.predictions
                .get(&id)
                .cloned()
                .map(|prediction| (prediction, p.behaviour.output.clone()))
        })
        .flatten();
    answer(&headers, &name, &id, found)
}

async fn download(
    State(stub): State<ProviderStub>,
    Path((name, file)): Path<(String, String)>,
) -> Response {
    let id = file.trim_end_matches(".wav");
    let found = stub.with(&name, |p| {
        p.received.downloads += 1;
        (
            p.predictions.get(id).cloned(),
            p.behaviour.mode,
            p.behaviour.redirect.clone(),
        )
    });
    if let Some((Some(_), _, Some(location))) = &found {
        return (StatusCode::FOUND, [("location", location.clone())]).into_response();
    }
    let found = found.map(|(p, mode, _)| (p, mode));
    match found {
        Some((Some(p), Mode::Broken)) => {
            let audio = wav(&p.prompt, 300);
            let cut = audio.get(..6 * 1024 * 1024).unwrap_or(&audio).to_vec();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
                Ok(cut),
                Err(std::io::Error::other("the stub drops the connection")),
            ];
            (
                [("content-type", "audio/wav")],
                axum::body::Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        Some((Some(p), Mode::Oversized)) => {
            // Streamed without a length, as a provider that does not say how much it sends.
            let audio = wav(&p.prompt, p.duration * 10);
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                audio.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
            (
                [("content-type", "audio/wav")],
                axum::body::Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        Some((Some(p), _)) => {
            ([("content-type", "audio/wav")], wav(&p.prompt, p.duration)).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn control(
    State(stub): State<ProviderStub>,
    Path(name): Path<String>,
    Json(behaviour): Json<Behaviour>,
) -> StatusCode {
    stub.set(&name, behaviour);
    StatusCode::NO_CONTENT
}

async fn report(State(stub): State<ProviderStub>, Path(name): Path<String>) -> Json<Received> {
    Json(stub.received(&name))
}

/// A WAV file: `seconds` of a sine tone (pitch from the prompt), 16 kHz mono 16-bit PCM.
pub fn wav(prompt: &str, seconds: u64) -> Vec<u8> {
    let samples = u32::try_from(seconds)
        .unwrap_or(300)
        .saturating_mul(SAMPLE_RATE);
    let data_len = samples * 2;
    let pitch = 220.0
        + f64::from(
            prompt
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 440,
        );
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(SAMPLE_RATE);
        let sample = (t * pitch * std::f64::consts::TAU).sin() * 8_000.0;
        out.extend_from_slice(&(sample as i16).to_le_bytes());
    }
    out
}
