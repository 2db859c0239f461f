//! A webhook receiver for the tests: records every POST (path, headers, body) and answers 200, or
//! 500 for the next `fail_next(n)` requests (a receiver that is down, then recovers).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use std::sync::{Arc, Mutex};

/// One request the sink received, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub signature: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    failures_left: u32,
}

/// A running sink.
#[derive(Debug, Clone, Default)]
pub struct WebhookSink {
    inner: Arc<Mutex<Inner>>,
}

impl WebhookSink {
    /// Starts a sink on a free local port: it and its base URL.
    pub async fn spawn() -> std::io::Result<(Self, String)> {
        let sink = Self::default();
        let app = Router::new().fallback(receive).with_state(sink.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((sink, base))
    }

    /// The next `n` requests are answered 500.
    pub fn fail_next(&self, n: u32) {
        self.lock().failures_left = n;
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn receive(
    State(sink): State<WebhookSink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut inner = sink.lock();
    let status = if inner.failures_left > 0 {
        inner.failures_left -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    inner.received.push(Received {
        path: uri.path().to_owned(),
        signature: header("son1k-signature"),
        idempotency_key: header("idempotency-key"),
        body: body.to_vec(),
        status: status.as_u16(),
    });
    status
}
