//! Language models behind one trait, and its Ollama implementation (`POST {OLLAMA_URL}/api/chat`).
//!
//! What a model writes is data: lyrics are asked for as JSON under a JSON schema (Ollama's `format`),
//! parsed and checked in code, and asked for once more when they do not fit; a reply is shown as
//! text. Nothing a model says is ever executed, routed or written anywhere but where the caller
//! puts it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use son1k_domain::assist::Feature;
pub use son1k_domain::assist::{Message, Role};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// One request to a model: the conversation, a JSON schema its answer must follow (if any), and
/// the feature asking (which sets how much the model may write: `MaxTokens`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub format: Option<serde_json::Value>,
    pub feature: Feature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The model's server could not be reached, failed, or answered something unreadable.
    #[error("language model unavailable: {0}")]
    Unavailable(String),
    /// No answer within the configured timeout.
    #[error("language model timed out")]
    TimedOut,
    /// Answers that did not fit the asked shape, twice.
    #[error("language model output invalid: {0}")]
    Invalid(String),
}

pub type ChatFuture<'a> = Pin<Box<dyn Future<Output = Result<String, LlmError>> + Send + 'a>>;

/// A language model.
pub trait LanguageModel: Send + Sync + std::fmt::Debug {
    /// The model's name, as answers report it.
    fn model(&self) -> &str;
    /// The assistant's answer to `request` (its content, whole).
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> ChatFuture<'a>;
}

/// How to reach Ollama (`OLLAMA_URL`, `OLLAMA_MODEL`, `OLLAMA_TIMEOUT_MS`, and
/// `OLLAMA_API_KEY_PARAMETER`: the SSM SecureString of a bearer key, for an endpoint behind a gateway
/// that wants one; a plain Ollama wants none), and how much it may write per feature
/// (`OLLAMA_MAX_TOKENS_LYRICS`, `OLLAMA_MAX_TOKENS_PIXEL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaConfig {
    pub url: String,
    pub model: String,
    pub timeout: Duration,
    pub key_parameter: Option<String>,
    pub max_tokens: MaxTokens,
}

/// The most tokens the model may generate for one answer of each feature (Ollama's
/// `options.num_predict`): a prompt cannot make it write for longer, and the answer read back is
/// capped in bytes from it (`MaxTokens::answer_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxTokens {
    /// A whole song as JSON (default 1024).
    pub lyrics: u32,
    /// One chat reply, shown up to 2,000 characters (default 512).
    pub pixel: u32,
}

impl Default for MaxTokens {
    fn default() -> Self {
        Self {
            lyrics: 1024,
            pixel: 512,
        }
    }
}

impl MaxTokens {
    pub fn of(self, feature: Feature) -> u32 {
        match feature {
            Feature::Lyrics => self.lyrics,
            Feature::Pixel => self.pixel,
        }
    }

    /// The most bytes of an answer read for `feature`: 32 per token (a token is a few characters,
    /// up to 6 bytes each once JSON-escaped) and 16 KiB for the envelope. A server that writes more
    /// than it was allowed is failing.
    pub fn answer_bytes(self, feature: Feature) -> usize {
        16 * 1024 + 32 * self.of(feature) as usize
    }
}

pub const DEFAULT_MODEL: &str = "llama3.2:1b";
const DEFAULT_TIMEOUT_MS: u64 = 20_000;

impl OllamaConfig {
    /// From the environment; `None` without `OLLAMA_URL`.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `get` (the environment). The functions reach the model over the internet (they run in
    /// no VPC): an `http://` URL on anything but this machine's loopback needs a key, or anyone who
    /// finds the endpoint could use it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let Some(url) = var("OLLAMA_URL") else {
            return Ok(None);
        };
        let parsed =
            url::Url::parse(&url).map_err(|_| format!("OLLAMA_URL is {url:?}: not a URL"))?;
        let loopback = match parsed.host() {
            Some(url::Host::Domain(host)) => host == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if parsed.scheme() == "http" && !loopback && var("OLLAMA_API_KEY_PARAMETER").is_none() {
            return Err(format!(
                "OLLAMA_URL is {url:?}: plain http to another host without OLLAMA_API_KEY_PARAMETER; \
                 put the model behind https with a key"
            ));
        }
        let timeout = match var("OLLAMA_TIMEOUT_MS") {
            None => DEFAULT_TIMEOUT_MS,
            Some(ms) => ms
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| format!("OLLAMA_TIMEOUT_MS is {ms:?}: a whole number of ms"))?,
        };
        let tokens = |name: &str, default: u32| match var(name) {
            None => Ok(default),
            Some(n) => n
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=32_768).contains(n))
                .ok_or_else(|| format!("{name} is {n:?}: a whole number of tokens, 1 to 32768")),
        };
        let defaults = MaxTokens::default();
        Ok(Some(Self {
            url,
            model: var("OLLAMA_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            timeout: Duration::from_millis(timeout),
            key_parameter: var("OLLAMA_API_KEY_PARAMETER"),
            max_tokens: MaxTokens {
                lyrics: tokens("OLLAMA_MAX_TOKENS_LYRICS", defaults.lyrics)?,
                pixel: tokens("OLLAMA_MAX_TOKENS_PIXEL", defaults.pixel)?,
            },
        }))
    }
}

/// The HTTP client of a language model: system trust roots, a connect timeout.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
}

/// Ollama's chat API, non-streaming (the answer is needed whole before it is checked).
#[derive(Debug, Clone)]
pub struct Ollama {
    config: OllamaConfig,
    /// Built on the first call unless given (`new`): building it loads the TLS roots, a cost the
    /// cold start need not pay (an invalid or refused request never calls the model).
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    /// Where the key of `config.key_parameter` is read from, on the first call.
    ssm: Option<aws_sdk_ssm::Client>,
    key: std::sync::Arc<tokio::sync::OnceCell<Option<String>>>,
}

#[derive(Debug, Serialize)]
struct OllamaChat<'a> {
    model: &'a str,
    messages: &'a [Message],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a serde_json::Value>,
    options: OllamaOptions,
}

#[derive(Debug, Serialize)]
struct OllamaOptions {
    num_predict: u32,
}

#[derive(Debug, Deserialize)]
struct OllamaAnswer {
    message: Message,
}

impl Ollama {
    pub fn new(config: OllamaConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http: std::sync::Arc::new(std::sync::OnceLock::from(http)),
            ssm: None,
            key: Default::default(),
        }
    }

    /// The client of `config`, its HTTP client built on the first call.
    pub fn lazy(config: OllamaConfig) -> Self {
        Self {
            config,
            http: Default::default(),
            ssm: None,
            key: Default::default(),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, LlmError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client =
            http_client().map_err(|err| LlmError::Unavailable(format!("HTTP client: {err}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    /// Reads the key of `key_parameter` with `ssm` (on the first call, once).
    pub fn with_ssm(mut self, ssm: Option<aws_sdk_ssm::Client>) -> Self {
        self.ssm = ssm;
        self
    }

    async fn key(&self) -> Result<Option<&String>, LlmError> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let (Some(name), Some(ssm)) = (&self.config.key_parameter, &self.ssm) else {
                    return Ok(None);
                };
                let out = ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|err| {
                        LlmError::Unavailable(format!(
                            "the key parameter {name} could not be read: {}",
                            aws_sdk_ssm::error::DisplayErrorContext(&err)
                        ))
                    })?;
                Ok(out.parameter.and_then(|p| p.value))
            })
            .await?;
        Ok(key.as_ref())
    }

    async fn call(&self, request: &ChatRequest) -> Result<String, LlmError> {
        let body = OllamaChat {
            model: &self.config.model,
            messages: &request.messages,
            stream: false,
            format: request.format.as_ref(),
            options: OllamaOptions {
                num_predict: self.config.max_tokens.of(request.feature),
            },
        };
        let url = format!("{}/api/chat", self.config.url.trim_end_matches('/'));
        let mut post = self.http()?.post(url).json(&body);
        if let Some(key) = self.key().await? {
            post = post.bearer_auth(key);
        }
        let mut response = post
            .send()
            .await
            .map_err(|err| LlmError::Unavailable(format!("chat: {err}")))?;
        if !response.status().is_success() {
            return Err(LlmError::Unavailable(format!(
                "chat answered {}",
                response.status()
            )));
        }
        let cap = self.config.max_tokens.answer_bytes(request.feature);
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(too_long(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| LlmError::Unavailable(format!("chat answer: {err}")))?
        {
            if body.len() + chunk.len() > cap {
                return Err(too_long(cap));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: OllamaAnswer = serde_json::from_slice(&body)
            .map_err(|err| LlmError::Unavailable(format!("unreadable chat answer: {err}")))?;
        Ok(answer.message.content)
    }
}

fn too_long(cap: usize) -> LlmError {
    LlmError::Unavailable(format!("the chat answer is longer than {cap} bytes"))
}

impl LanguageModel for Ollama {
    fn model(&self) -> &str {
        &self.config.model
    }

    fn chat<'a>(&'a self, request: &'a ChatRequest) -> ChatFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.config.timeout, self.call(request))
                .await
                .unwrap_or(Err(LlmError::TimedOut))
                .inspect_err(|err| tracing::warn!(error = %err, "language model failed"))
        })
    }
}

/// Asks `model` for JSON following `request.format`, parsed as `T` and accepted by `check`; an
/// answer that does not parse or is refused is asked for once more, then `Invalid`.
pub async fn structured<T: DeserializeOwned>(
    model: &dyn LanguageModel,
    request: &ChatRequest,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, LlmError> {
    let mut last = String::new();
    for _ in 0..2 {
        let answer = model.chat(request).await?;
        match serde_json::from_str::<T>(answer.trim()) {
            Ok(value) => match check(&value) {
                Ok(()) => return Ok(value),
                Err(why) => last = why,
            },
            Err(err) => last = format!("not the asked JSON: {err}"),
        }
        tracing::warn!(why = %last, "language model output refused");
    }
    Err(LlmError::Invalid(last))
}

#[cfg(test)]
mod tests {
    use super::{MaxTokens, OllamaConfig};

    fn config(url: &str, key: Option<&str>) -> Result<Option<OllamaConfig>, String> {
        OllamaConfig::from_lookup(|name| match name {
            "OLLAMA_URL" => Some(url.to_owned()),
            "OLLAMA_API_KEY_PARAMETER" => key.map(str::to_owned),
            _ => None,
        })
    }

    #[test]
    fn each_feature_has_its_token_cap_from_config() {
        let with = |lyrics: &str, pixel: &str| {
            OllamaConfig::from_lookup(|name| match name {
                "OLLAMA_URL" => Some("http://127.0.0.1:11434".to_owned()),
                "OLLAMA_MAX_TOKENS_LYRICS" => Some(lyrics.to_owned()),
                "OLLAMA_MAX_TOKENS_PIXEL" => Some(pixel.to_owned()),
                _ => None,
            })
            .map(|c| c.map(|c| c.max_tokens))
        };
        assert_eq!(
            with("800", "200"),
            Ok(Some(MaxTokens {
                lyrics: 800,
                pixel: 200
            }))
        );
        assert_eq!(
            with("", " ").map(|c| c.map(|m| (m.lyrics, m.pixel))),
            Ok(Some((1024, 512)))
        );
        for bad in ["0", "-1", "many", "40000"] {
            assert!(with(bad, "200").is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_to_another_host_needs_a_key() {
        for local in [
            "http://127.0.0.1:11434",
            "http://localhost:11434",
            "http://[::1]:11434",
        ] {
            assert!(config(local, None).is_ok_and(|c| c.is_some()), "{local}");
        }
        for remote in ["http://10.0.0.5:11434", "http://ollama.example.com"] {
            let err = config(remote, None).expect_err(remote);
            assert!(err.contains("OLLAMA_API_KEY_PARAMETER"), "{err}");
            assert!(
                config(remote, Some("/son1k/ollama/key")).is_ok(),
                "{remote}"
            );
        }
        assert!(config("https://ollama.example.com", None).is_ok());
        assert!(config("not a url", None).is_err());
        assert_eq!(config("", None), Ok(None));
    }
}
