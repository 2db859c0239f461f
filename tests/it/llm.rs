//! The language-model client (`son1k_app::llm::Ollama`) against the local Ollama stub, which speaks
//! Ollama's API: answers, structured output checked in code with one retry, failures and timeouts.

use local_api::ollama_stub::{Behaviour, Mode, OllamaStub, STUB_MODEL};
use serde::Deserialize;
use serde_json::{json, Value};
use son1k_app::llm::{structured, ChatRequest, LanguageModel, LlmError, Message, Ollama, Role};
use std::time::{Duration, Instant};

async fn stub() -> (OllamaStub, String) {
    son1k_tests::spawn_ollama().await
}

fn client(url: &str, timeout: Duration) -> Ollama {
    son1k_tests::ollama_client(url, timeout)
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::new(Role::System, "You are a test."),
            Message::new(Role::User, text),
        ],
        format: None,
        feature: son1k_domain::assist::Feature::Pixel,
    }
}

#[derive(Debug, Deserialize)]
struct Song {
    title: String,
    sections: Vec<Section>,
}

#[derive(Debug, Deserialize)]
struct Section {
    kind: String,
    lines: Vec<String>,
}

fn song_schema(kinds: &[&str]) -> Value {
    let items: Vec<Value> = kinds
        .iter()
        .map(|k| {
            json!({"type": "object", "required": ["kind", "lines"],
                        "properties": {"kind": {"const": k},
                                       "lines": {"type": "array", "items": {"type": "string"}}}})
        })
        .collect();
    json!({"type": "object", "required": ["title", "sections"], "properties": {
        "title": {"type": "string"},
        "sections": {"type": "array", "minItems": kinds.len(), "maxItems": kinds.len(),
                     "prefixItems": items, "items": false}}})
}

#[tokio::test]
async fn a_chat_is_answered_with_the_whole_conversation_sent() {
    let (stub, base) = stub().await;
    let model = client(&base, Duration::from_secs(5));
    assert_eq!(model.model(), STUB_MODEL);
    let reply = model.chat(&ask("hello there")).await.expect("reply");
    assert_eq!(reply, "Pixel here! You said \"hello there\".");
    let received = stub.received();
    assert_eq!(received.chats, 1);
    assert_eq!(received.last_messages[0]["role"], "system");
    assert_eq!(received.last_messages[1]["content"], "hello there");
    assert_eq!(received.last_format, None);
}

#[tokio::test]
async fn structured_output_follows_the_schema_and_is_checked_in_code() {
    let (stub, base) = stub().await;
    let model = client(&base, Duration::from_secs(5));
    let kinds = ["intro", "verse", "chorus", "outro"];
    let request = ChatRequest {
        format: Some(song_schema(&kinds)),
        ..ask("rain on a tin roof")
    };
    let song: Song = structured(&model, &request, |s: &Song| {
        let got: Vec<&str> = s.sections.iter().map(|x| x.kind.as_str()).collect();
        (got == kinds)
            .then_some(())
            .ok_or(format!("structure {got:?}"))
    })
    .await
    .expect("a song");
    assert_eq!(song.title, "Stub Song");
    assert!(song.sections.iter().all(|s| !s.lines.is_empty()));
    assert_eq!(stub.received().last_format, Some(song_schema(&kinds)));
    assert_eq!(stub.received().chats, 1);

    // Output that does not parse is asked for once more, then refused.
    stub.set(Behaviour {
        mode: Mode::Invalid,
        ..Behaviour::default()
    });
    let err = structured(&model, &request, |_: &Song| Ok(()))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Invalid(_)), "{err:?}");
    assert_eq!(stub.received().chats, 3);

    // Output that parses but fails the check is refused the same way.
    stub.set(Behaviour::default());
    let err = structured(&model, &request, |_: &Song| Err("no".into()))
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Invalid("no".into()));
    assert_eq!(stub.received().chats, 5);
}

#[tokio::test]
async fn a_failing_slow_or_absent_server_is_an_error_within_the_timeout() {
    let (stub, base) = stub().await;
    stub.set(Behaviour {
        mode: Mode::Fail,
        ..Behaviour::default()
    });
    let model = client(&base, Duration::from_millis(500));
    assert!(matches!(
        model.chat(&ask("x")).await,
        Err(LlmError::Unavailable(_))
    ));

    stub.set(Behaviour {
        mode: Mode::Slow,
        delay_ms: 3_000,
        ..Behaviour::default()
    });
    let started = Instant::now();
    assert_eq!(model.chat(&ask("x")).await, Err(LlmError::TimedOut));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let absent = client(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_millis(500),
    );
    assert!(matches!(
        absent.chat(&ask("x")).await,
        Err(LlmError::Unavailable(_))
    ));
}

/// The stub speaks Ollama's API as a real client sees it: the model list, and a streamed chat as
/// NDJSON lines whose contents make up the answer, the last one `done`.
#[tokio::test]
async fn the_stub_speaks_ollamas_api_streaming_and_not() {
    let (_stub, base) = stub().await;
    let http = reqwest::Client::new();
    let tags: Value = http
        .get(format!("{base}/api/tags"))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("json");
    assert_eq!(tags["models"][0]["name"], STUB_MODEL);
    let streamed = http
        .post(format!("{base}/api/chat"))
        .json(&json!({"model": STUB_MODEL, "messages": [{"role": "user", "content": "one two"}]}))
        .send()
        .await
        .expect("chat");
    assert_eq!(
        streamed.headers()["content-type"].to_str().expect("type"),
        "application/x-ndjson"
    );
    let text = streamed.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.len() > 2);
    let whole: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(whole, "Pixel here! You said \"one two\".");
    assert!(lines.iter().rev().skip(1).all(|l| l["done"] == false));
    assert_eq!(lines.last().expect("last")["done"], true);
}
