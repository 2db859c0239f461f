//! The transport of our Stripe calls: async-stripe's request crates build each request (path, form
//! body, idempotency key) and parse what we read of the answer; this client sends it over reqwest,
//! the HTTP client the app already links. async-stripe's own client parses every error answer into
//! its full typed model (payment intents, payment methods, sources: most of the Stripe API), which
//! more than doubled the size of each binary that calls Stripe; an error here keeps its status and
//! Stripe's message, which is all we act on.

use bytes::Bytes;
use std::time::Duration;
use stripe_client_core::{
    CustomizedStripeRequest, RequestBuilder, StripeClient, StripeClientErr, StripeMethod,
};

const STRIPE_API: &str = "https://api.stripe.com";

/// A failed Stripe call: an answer with an error status (Stripe's `error.message`, or `None`), no
/// answer in time, no answer at all, or an answer we could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeCallError {
    #[error("Stripe answered {status}: {}", message.as_deref().unwrap_or("(no message)"))]
    Status {
        status: u16,
        message: Option<String>,
    },
    #[error("Stripe did not answer in time")]
    Timeout,
    #[error("Stripe could not be reached: {0}")]
    Transport(String),
    #[error("Stripe's answer could not be read: {0}")]
    Unreadable(String),
}

impl StripeCallError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl StripeClientErr for StripeCallError {
    fn deserialize_err(msg: impl std::fmt::Display) -> Self {
        Self::Unreadable(msg.to_string())
    }
}

/// Stripe's error document, of which we read the message.
#[derive(miniserde::Deserialize)]
struct ErrorDocument {
    error: ErrorBody,
}

#[derive(miniserde::Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// One Stripe account's client: its key, the API endpoint (Stripe's, or the local stub's), the API
/// version async-stripe's models are made for, and a time limit per call. One attempt per call:
/// the strategies we use (`Once`, `Idempotent`) make one, and a retry is the caller's decision.
#[derive(Clone)]
pub struct StripeHttp {
    http: reqwest::Client,
    base: String,
    authorization: String,
    user_agent: String,
    timeout: Duration,
}

impl std::fmt::Debug for StripeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeHttp")
            .field("base", &self.base)
            .field("key", &"***")
            .finish()
    }
}

impl StripeHttp {
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, StripeCallError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| StripeCallError::Transport(err.to_string()))?;
        Ok(Self {
            http,
            base: api_base
                .unwrap_or(STRIPE_API)
                .trim_end_matches('/')
                .to_owned(),
            authorization: format!("Bearer {secret_key}"),
            user_agent: format!("son1k/{}", crate::VERSION),
            timeout,
        })
    }
}

impl StripeHttp {
    /// `GET /v1{path}`: Stripe's JSON as it sent it.
    pub async fn get(&self, path: &str) -> Result<Bytes, StripeCallError> {
        self.send(RequestBuilder::new(StripeMethod::Get, path), None, None)
            .await
    }

    /// `POST /v1{path}` with the form `body` (already encoded), without an idempotency key: for
    /// reads that Stripe serves by POST (an invoice preview).
    pub async fn delete(&self, path: &str) -> Result<Bytes, StripeCallError> {
        self.send(RequestBuilder::new(StripeMethod::Delete, path), None, None)
            .await
    }

    pub async fn post_form(&self, path: &str, body: String) -> Result<Bytes, StripeCallError> {
        let mut req = RequestBuilder::new(StripeMethod::Post, path);
        req.body = Some(body);
        self.send(req, None, None).await
    }

    /// Sends one request: its own time limit when it has one, and an idempotency key when its
    /// strategy gives one.
    async fn send(
        &self,
        req: RequestBuilder,
        timeout: Option<Duration>,
        idempotency: Option<stripe_client_core::IdempotencyKey>,
    ) -> Result<Bytes, StripeCallError> {
        let mut url = format!("{}/v1{}", self.base, req.path);
        if let Some(query) = &req.query {
            url = format!("{url}?{query}");
        }
        let method = match req.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        let mut request = self
            .http
            .request(method, url)
            .timeout(timeout.unwrap_or(self.timeout))
            .header("authorization", &self.authorization)
            .header("user-agent", &self.user_agent)
            .header("stripe-version", stripe_client_core::VERSION.as_str());
        if let Some(key) = idempotency {
            request = request.header("idempotency-key", key.as_str());
        }
        if let Some(body) = req.body {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let failed = |err: reqwest::Error| {
            if err.is_timeout() {
                StripeCallError::Timeout
            } else {
                StripeCallError::Transport(err.to_string())
            }
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failed)?;
        if status.is_success() {
            return Ok(bytes);
        }
        let message = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| miniserde::json::from_str::<ErrorDocument>(text).ok())
            .and_then(|doc| doc.error.message);
        Err(StripeCallError::Status {
            status: status.as_u16(),
            message,
        })
    }
}

impl StripeClient for StripeHttp {
    type Err = StripeCallError;

    async fn execute(&self, req: CustomizedStripeRequest) -> Result<Bytes, StripeCallError> {
        let (req, config) = req.into_pieces();
        let key = config.request_strategy.as_ref().and_then(|s| s.get_key());
        self.send(req, config.timeout, key).await
    }
}
