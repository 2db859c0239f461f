//! A local stand-in for Ollama's HTTP API: `GET /api/tags` and `POST /api/chat`, streaming (NDJSON,
//! Ollama's default) and not (`"stream": false`), in Ollama's shapes.
//!
//! What it answers: with a JSON-schema `format` that asks for song sections (`sections.prefixItems`
//! naming each section's `kind`), a JSON lyric in exactly that structure; without one, a short reply
//! that quotes the last user message and the one before it (so a test can tell what the model was
//! given). Like Ollama it stops at `options.num_predict` tokens (here: words), `done_reason:
//! "length"`. Tests and `make dev` steer it with `PUT /_control` `{"mode": "normal" | "invalid" |
//! "fail" | "slow" | "say", "text": "...", "repeat": 1, "delay_ms": 500}` (`say` answers `text`
//! `repeat` times whatever was asked and however long, as a server that ignores `num_predict`
//! would) and read `GET /_control` (`{"chats", "last_messages", "last_format", "last_num_predict"}`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const STUB_MODEL: &str = "stub-llama:1b";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Normal,
    /// Output that is not what was asked (not JSON for a `format`).
    Invalid,
    /// 500 with Ollama's error document.
    Fail,
    /// Waits `delay_ms`, then answers as `normal`.
    Slow,
    /// Answers `text`, whatever was asked.
    Say,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub text: String,
    /// How many times `say` repeats `text` (0 or absent: once).
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub delay_ms: u64,
    /// Only chats whose messages contain this text are answered as told; the others as `normal`
    /// (so one browser test can make the model fail without failing its neighbours').
    #[serde(default)]
    pub when_contains: Option<String>,
}

/// What the stub received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Received {
    pub chats: u32,
    pub last_messages: Vec<Value>,
    pub last_format: Option<Value>,
    /// `options.num_predict` of the last chat.
    pub last_num_predict: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    behaviour: Behaviour,
    received: Received,
}

#[derive(Debug, Clone, Default)]
pub struct OllamaStub {
    inner: Arc<Mutex<Inner>>,
}

impl OllamaStub {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, behaviour: Behaviour) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.behaviour = behaviour;
        }
    }

    pub fn received(&self) -> Received {
        self.inner
            .lock()
            .map(|inner| inner.received.clone())
            .unwrap_or_default()
    }
}

pub fn router(stub: OllamaStub) -> Router {
    Router::new()
        .route("/api/tags", get(tags))
        .route("/api/chat", post(chat))
        .route("/_control", put(control).get(report))
        .with_state(stub)
}

pub async fn serve(listener: tokio::net::TcpListener, stub: OllamaStub) {
    if let Err(err) = axum::serve(listener, router(stub)).await {
        tracing::error!(error = %err, "Ollama stub stopped");
    }
}

async fn tags() -> Json<Value> {
    Json(json!({"models": [{
        "name": STUB_MODEL, "model": STUB_MODEL, "modified_at": "2026-11-01T00:00:00Z",
        "size": 0, "digest": "stub",
        "details": {"format": "gguf", "family": "llama", "parameter_size": "1B",
                    "quantization_level": "Q4_K_M"}
    }]}))
}

async fn control(State(stub): State<OllamaStub>, Json(behaviour): Json<Behaviour>) -> StatusCode {
    stub.set(behaviour);
    StatusCode::NO_CONTENT
}

async fn report(State(stub): State<OllamaStub>) -> Json<Received> {
    Json(stub.received())
}

async fn chat(State(stub): State<OllamaStub>, Json(body): Json<Value>) -> Response {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let format = body.get("format").cloned().filter(|f| !f.is_null());
    let num_predict = body
        .get("options")
        .and_then(|o| o.get("num_predict"))
        .and_then(Value::as_u64);
    let behaviour = stub
        .inner
        .lock()
        .map(|mut inner| {
            inner.received.chats += 1;
            inner.received.last_messages = messages.clone();
            inner.received.last_format = format.clone();
            inner.received.last_num_predict = num_predict;
            inner.behaviour.clone()
        })
        .unwrap_or_default();
    let behaviour = match &behaviour.when_contains {
        Some(needle)
            if !messages
                .iter()
                .any(|m| m.to_string().contains(needle.as_str())) =>
        {
            Behaviour::default()
        }
        _ => behaviour,
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(STUB_MODEL)
        .to_owned();
    if model.is_empty() {
        let error = Json(json!({"error": "model is required"}));
        return (StatusCode::BAD_REQUEST, error).into_response();
    }
    let Some(content) = reply(&behaviour, &messages, format.as_ref(), num_predict).await else {
        let error = Json(json!({"error": "the stub failed"}));
        return (StatusCode::INTERNAL_SERVER_ERROR, error).into_response();
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(true);
    answer(&model, &content, stream)
}

/// What the stub says as told (`None`: it fails): lyrics in the asked format, or a reply, cut at
/// `num_predict` words.
async fn reply(
    behaviour: &Behaviour,
    messages: &[Value],
    format: Option<&Value>,
    num_predict: Option<u64>,
) -> Option<String> {
    Some(match behaviour.mode {
        Mode::Fail => return None,
        Mode::Say => behaviour.text.repeat(behaviour.repeat.max(1) as usize),
        Mode::Invalid => match format {
            Some(_) => "Sure! Here are your lyrics: la la la".to_owned(),
            None => normal_reply(messages),
        },
        Mode::Slow | Mode::Normal => {
            if behaviour.mode == Mode::Slow {
                tokio::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
            }
            let whole = match format {
                Some(schema) => lyrics(schema, messages).to_string(),
                None => normal_reply(messages),
            };
            match num_predict {
                Some(n) => whole
                    .split_inclusive(' ')
                    .take(usize::try_from(n).unwrap_or(usize::MAX))
                    .collect(),
                None => whole,
            }
        }
    })
}

/// `content` as Ollama answers it: one JSON object, or streamed as NDJSON (one line per word, then
/// the final one with `done: true`).
fn answer(model: &str, content: &str, stream: bool) -> Response {
    let now = chrono::Utc::now().to_rfc3339();
    if !stream {
        return Json(json!({
            "model": model, "created_at": now,
            "message": {"role": "assistant", "content": content},
            "done": true, "done_reason": "stop",
            "total_duration": 1_000_000, "eval_count": content.len()
        }))
        .into_response();
    }
    let mut lines = String::new();
    for piece in content.split_inclusive(' ') {
        lines.push_str(
            &json!({"model": model, "created_at": now,
                    "message": {"role": "assistant", "content": piece}, "done": false})
            .to_string(),
        );
        lines.push('\n');
    }
    lines.push_str(
        &json!({"model": model, "created_at": now,
                "message": {"role": "assistant", "content": ""},
                "done": true, "done_reason": "stop", "total_duration": 1_000_000})
        .to_string(),
    );
    lines.push('\n');
    ([("content-type", "application/x-ndjson")], lines).into_response()
}

fn said_by_user(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

fn normal_reply(messages: &[Value]) -> String {
    let said = said_by_user(messages);
    let last = said.last().cloned().unwrap_or_default();
    match said.len().checked_sub(2).and_then(|i| said.get(i)) {
        Some(before) => format!("Pixel here! You said \"{last}\". Before that: \"{before}\"."),
        None => format!("Pixel here! You said \"{last}\"."),
    }
}

/// Lyrics in the structure the schema asks for (`sections.prefixItems[i].properties.kind.const`).
fn lyrics(schema: &Value, messages: &[Value]) -> Value {
    let kinds: Vec<String> = schema
        .pointer("/properties/sections/prefixItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            item.pointer("/properties/kind/const")
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
        .collect();
    let said = said_by_user(messages).last().cloned().unwrap_or_default();
    // Lyric Studio sends its brief as `Brief: {json}`: write about its theme.
    let theme = said
        .strip_prefix("Brief: ")
        .and_then(|brief| serde_json::from_str::<Value>(brief).ok())
        .and_then(|brief| {
            brief
                .get("theme")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or(said);
    let sections: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            json!({"kind": kind, "lines": [
                format!("{kind} {} line one, about {}", i + 1, theme.chars().take(40).collect::<String>()),
                format!("{kind} {} line two", i + 1),
            ]})
        })
        .collect();
    json!({"title": "Stub Song", "sections": sections})
}
