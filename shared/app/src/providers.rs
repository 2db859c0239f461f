//! Music generation providers behind one trait, and the pool that chooses among them.
//!
//! Each provider is used with its own key and within its own published limits (the fleet-wide token
//! bucket, concurrency, cooldowns and circuit breaker: `domain::providers`, taken in `slots`). Nothing here
//! rotates keys, accounts, addresses or user agents: a provider that says "slow down" is left alone
//! until it said it may be called again.
//!
//! The one adapter is for a predictions-style HTTP API (Replicate's shape, serving MusicGen):
//! `POST {base}/v1/predictions` with `Authorization: Bearer <key>` (answered at once with the
//! prediction's id), then `GET {base}/v1/predictions/{id}` until the prediction is final, then the
//! audio at its `output` URL (fetched without the key: it is another host's link). A prediction
//! given up on (the provider's timeout, a failed poll) is cancelled with
//! `POST {base}/v1/predictions/{id}/cancel`: nothing keeps generating, billed, for nobody.
//!
//! The `output` link is the provider's to choose, so it is fetched as untrusted input: only
//! https (http only when the provider itself is a local http server), no redirects, no userinfo, a
//! host that resolves to public addresses only (checked in the resolver, so the address connected
//! to is the address checked; `is_public` lists the ranges refused), and at most the quality's
//! largest audio for the asked duration. The provider's own origin is the one exception (the local
//! stub serves its files from its loopback address).

use serde::Deserialize;
use son1k_domain::providers::Limits;
use son1k_domain::tiers::Quality;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// One provider as configured (`GENERATION_PROVIDERS`, a JSON array).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProviderConfig {
    pub name: String,
    /// The API's base URL (`https://api.replicate.com`).
    pub base_url: String,
    /// The model version the predictions run.
    #[serde(default)]
    pub model: Option<String>,
    /// The SSM parameter (SecureString) holding the provider's API key.
    #[serde(default)]
    pub key_parameter: Option<String>,
    /// Requests per second the provider allows this account (its published limit).
    pub requests_per_second: f64,
    /// Requests it allows at once above the rate (default 1).
    #[serde(default = "one")]
    pub burst: u32,
    /// Predictions it runs at once for this account.
    pub max_concurrency: u32,
    /// Relative share of jobs among healthy providers (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// How long one generation may take there, in seconds (default 120).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How often a prediction is polled, in ms (default 1000).
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
}

fn one() -> u32 {
    1
}

fn default_timeout() -> u64 {
    120
}

fn default_poll() -> u64 {
    1_000
}

impl ProviderConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            requests_per_second: self.requests_per_second,
            burst: self.burst,
            max_concurrency: self.max_concurrency,
            slot_ms: i64::try_from(self.timeout_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
                + 10_000,
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

/// Parses `GENERATION_PROVIDERS`: names unique and plain, rates and concurrency positive.
pub fn parse_providers(raw: &str) -> Result<Vec<ProviderConfig>, String> {
    let providers: Vec<ProviderConfig> =
        serde_json::from_str(raw).map_err(|err| format!("GENERATION_PROVIDERS: {err}"))?;
    let mut names = std::collections::BTreeSet::new();
    for p in &providers {
        let plain = !p.name.is_empty()
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain || !names.insert(p.name.clone()) {
            return Err(format!(
                "GENERATION_PROVIDERS: provider names must be unique letters, digits, - or _ ({:?})",
                p.name
            ));
        }
        if !(p.requests_per_second.is_finite() && p.requests_per_second > 0.0)
            || p.max_concurrency == 0
            || p.weight == 0
            || p.timeout_seconds == 0
        {
            return Err(format!(
                "GENERATION_PROVIDERS: {}: requests_per_second, max_concurrency, weight and \
                 timeout_seconds must be positive",
                p.name
            ));
        }
        if url::Url::parse(&p.base_url).is_err() {
            return Err(format!(
                "GENERATION_PROVIDERS: {}: base_url is not a URL",
                p.name
            ));
        }
    }
    Ok(providers)
}

/// What a provider is asked to make.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub generation_id: String,
    pub prompt: String,
    pub quality: Quality,
    pub duration_seconds: f64,
    /// The caller's cloned voice to sing in: its id and trained model's key.
    pub voice: Option<son1k_store::jobs::VoiceRef>,
}

/// Why a provider call did not give audio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// 429: come back after this long.
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// The provider refused this request (its content or parameters).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The provider failed, answered something unreadable, or could not be reached.
    #[error("failed: {0}")]
    Failed(String),
    /// No answer within the provider's timeout.
    #[error("timed out")]
    TimedOut,
    /// The provider's result cannot be taken: its output link points where the worker may not go,
    /// or the audio is larger than the quality allows for the asked duration.
    #[error("output refused: {0}")]
    OutputRefused(String),
}

/// Audio as it arrives from a provider.
pub struct Audio {
    pub content_type: String,
    pub content_length: Option<u64>,
    response: reqwest::Response,
    /// Bytes read so far, and the most that may be.
    read: u64,
    cap: u64,
}

impl Audio {
    /// The next piece of the audio; `None` at its end. A download that goes past the cap stops
    /// there with `OutputRefused`.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ProviderError> {
        let chunk = self
            .response
            .chunk()
            .await
            .map_err(|err| ProviderError::Failed(format!("audio download: {err}")))?;
        if let Some(chunk) = &chunk {
            self.read += chunk.len() as u64;
            if self.read > self.cap {
                return Err(too_large(self.cap));
            }
        }
        Ok(chunk)
    }
}

fn too_large(cap: u64) -> ProviderError {
    ProviderError::OutputRefused(format!(
        "the audio is larger than the {cap} bytes the quality allows for its duration"
    ))
}

pub type ProviderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Audio, ProviderError>> + Send + 'a>>;

/// The worker's providers, in configuration order.
pub type Providers = Vec<Box<dyn MusicProvider>>;

/// A music generation provider.
pub trait MusicProvider: Send + Sync {
    fn config(&self) -> &ProviderConfig;
    /// Makes the audio for `request`, ready to stream.
    fn generate<'a>(&'a self, request: &'a GenerationRequest) -> ProviderFuture<'a>;
}

/// The predictions-style adapter (see the module's documentation).
pub struct Predictions {
    config: ProviderConfig,
    key: Option<String>,
    /// For the provider's API (its configured base URL).
    http: reqwest::Client,
    /// For `output` links: no redirects, public addresses only (`PublicOnly`), https only unless
    /// the provider itself is plain http.
    files: reqwest::Client,
    base: url::Url,
}

impl std::fmt::Debug for Predictions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictions")
            .field("config", &self.config)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct Prediction {
    id: String,
    status: String,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl Predictions {
    /// The adapter for `config`, calling its API with `http`; `Err` when the base URL is not a URL
    /// or the file client cannot be built.
    pub fn new(
        config: ProviderConfig,
        key: Option<String>,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let base = url::Url::parse(&config.base_url)
            .map_err(|err| format!("{}: base_url: {err}", config.name))?;
        let files = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(base.scheme() == "https")
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(PublicOnly {
                trusted: base.host_str().map(str::to_owned),
            })
            .build()
            .map_err(|err| format!("{}: the file client: {err}", config.name))?;
        Ok(Self {
            config,
            key,
            http,
            files,
            base,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url.trim_end_matches('/'), path)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// The model's input: MusicGen's fields (whole seconds, at least 1; the model size by quality).
    fn input(&self, request: &GenerationRequest) -> serde_json::Value {
        let model_version = match request.quality {
            Quality::Standard => "melody-large",
            Quality::High => "stereo-large",
            Quality::Ultra => "stereo-melody-large",
        };
        let mut input = serde_json::json!({
            "prompt": request.prompt,
            "duration": Self::seconds(request),
            "model_version": model_version,
            "output_format": "wav",
        });
        if let (Some(voice), Some(fields)) = (&request.voice, input.as_object_mut()) {
            fields.insert(
                "voice".into(),
                serde_json::json!({ "id": voice.voice_id, "model_key": voice.model_key }),
            );
        }
        input
    }

    async fn read(response: reqwest::Response) -> Result<Prediction, ProviderError> {
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(ProviderError::RateLimited(retry_after(&response)));
        }
        if status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 404 | 408) {
            let body = response.text().await.unwrap_or_default();
            return Err(ProviderError::Rejected(format!(
                "{status}: {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Failed(format!("answered {status}")));
        }
        response
            .json::<Prediction>()
            .await
            .map_err(|err| ProviderError::Failed(format!("unreadable prediction: {err}")))
    }

    /// Creates the prediction, polls it to its end and opens its audio. `running` holds the id of
    /// the prediction while it is neither final nor given up on, for `generate` to cancel.
    async fn run(
        &self,
        request: &GenerationRequest,
        running: &std::sync::Mutex<Option<String>>,
    ) -> Result<Audio, ProviderError> {
        let created = self.create(request).await?;
        let done = self.finished(created, running).await?;
        let output = Self::output_link(&self.base, done)?;
        self.download(output, request).await
    }

    /// Creates the prediction of `request`.
    async fn create(&self, request: &GenerationRequest) -> Result<Prediction, ProviderError> {
        let body = serde_json::json!({
            "version": self.config.model,
            "input": self.input(request),
        });
        let created = self
            .authorized(self.http.post(self.url("/v1/predictions")))
            .json(&body)
            .send()
            .await
            .map_err(|err| ProviderError::Failed(format!("create prediction: {err}")))?;
        Self::read(created).await
    }

    /// Polls `prediction` every `poll_ms` until it succeeds (or fails), noting in `running` the id
    /// of a prediction still running (to cancel it if the call is given up).
    async fn finished(
        &self,
        mut prediction: Prediction,
        running: &std::sync::Mutex<Option<String>>,
    ) -> Result<Prediction, ProviderError> {
        loop {
            let finished = matches!(
                prediction.status.as_str(),
                "succeeded" | "failed" | "canceled" | "aborted"
            );
            if let Ok(mut running) = running.lock() {
                *running = (!finished).then(|| prediction.id.clone());
            }
            match prediction.status.as_str() {
                "succeeded" => return Ok(prediction),
                "failed" | "canceled" | "aborted" => return Err(Self::failed(prediction)),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(self.config.poll_ms)).await;
            let polled = self
                .authorized(
                    self.http
                        .get(self.url(&format!("/v1/predictions/{}", prediction.id))),
                )
                .send()
                .await
                .map_err(|err| ProviderError::Failed(format!("poll prediction: {err}")))?;
            prediction = Self::read(polled).await?;
        }
    }

    /// A prediction that ended without audio, with (the start of) its error.
    fn failed(prediction: Prediction) -> ProviderError {
        ProviderError::Failed(format!(
            "prediction {}: {}",
            prediction.status,
            prediction
                .error
                .map(|e| e.to_string())
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect::<String>()
        ))
    }

    /// The output link of a succeeded prediction, if it is one we may fetch (`output_allowed`).
    fn output_link(base: &url::Url, prediction: Prediction) -> Result<url::Url, ProviderError> {
        let output = match prediction.output {
            Some(serde_json::Value::String(url)) => url,
            Some(serde_json::Value::Array(urls)) => urls
                .into_iter()
                .find_map(|u| u.as_str().map(str::to_owned))
                .ok_or_else(|| ProviderError::Failed("prediction without output".into()))?,
            _ => return Err(ProviderError::Failed("prediction without output".into())),
        };
        let output = url::Url::parse(&output)
            .map_err(|_| ProviderError::OutputRefused("the output is not a link".into()))?;
        output_allowed(base, &output).map_err(|why| ProviderError::OutputRefused(why.into()))?;
        Ok(output)
    }

    /// Starts the download of the audio at `output`, a link of the provider's file host, fetched
    /// without our key; refused before a byte is read when it announces more than the quality's cap.
    async fn download(
        &self,
        output: url::Url,
        request: &GenerationRequest,
    ) -> Result<Audio, ProviderError> {
        let response = self.files.get(output).send().await.map_err(|err| {
            if is_refused_address(&err) {
                ProviderError::OutputRefused(format!("audio download: {}", error_chain(&err)))
            } else {
                ProviderError::Failed(format!("audio download: {}", error_chain(&err)))
            }
        })?;
        if response.status().is_redirection() {
            return Err(ProviderError::OutputRefused(format!(
                "the output link answered {} (redirects are not followed)",
                response.status()
            )));
        }
        if !response.status().is_success() {
            return Err(ProviderError::Failed(format!(
                "audio download answered {}",
                response.status()
            )));
        }
        let cap = request
            .quality
            .max_audio_bytes(Self::seconds(request) as f64);
        if response.content_length().is_some_and(|len| len > cap) {
            return Err(too_large(cap));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .filter(|v| v.starts_with("audio/"))
            .unwrap_or_else(|| "audio/wav".to_owned());
        Ok(Audio {
            content_type,
            content_length: response.content_length(),
            response,
            read: 0,
            cap,
        })
    }

    /// The whole seconds asked of the model (at least 1).
    fn seconds(request: &GenerationRequest) -> u64 {
        (request.duration_seconds.round() as u64).max(1)
    }

    /// Cancels prediction `id`, within 5 s; a failure is logged (the prediction then runs to its
    /// end at the provider).
    async fn cancel(&self, id: &str) {
        let sent = self
            .authorized(
                self.http
                    .post(self.url(&format!("/v1/predictions/{id}/cancel"))),
            )
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(provider = %self.config.name, prediction = id, "prediction cancelled");
            }
            Ok(response) => tracing::warn!(
                provider = %self.config.name, prediction = id, status = %response.status(),
                "the prediction could not be cancelled"
            ),
            Err(err) => tracing::warn!(
                provider = %self.config.name, prediction = id, error = %err,
                "the prediction could not be cancelled"
            ),
        }
    }
}

impl MusicProvider for Predictions {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    fn generate<'a>(&'a self, request: &'a GenerationRequest) -> ProviderFuture<'a> {
        Box::pin(async move {
            let running = std::sync::Mutex::new(None);
            let result = tokio::time::timeout(self.config.timeout(), self.run(request, &running))
                .await
                .unwrap_or(Err(ProviderError::TimedOut));
            let unfinished = running.lock().ok().and_then(|mut r| r.take());
            if let (Err(_), Some(id)) = (&result, unfinished) {
                self.cancel(&id).await;
            }
            result
        })
    }
}

/// Whether the worker may fetch `output`, a provider's result link, at the URL's level: https (http
/// only when the provider's own base is http), no userinfo, and either the provider's own origin or
/// a host that is not a non-public address literal. Names are checked when they are resolved
/// (`PublicOnly`), as a name's addresses are only known then.
fn output_allowed(base: &url::Url, output: &url::Url) -> Result<(), &'static str> {
    let scheme_ok =
        output.scheme() == "https" || (output.scheme() == "http" && base.scheme() == "http");
    if !scheme_ok {
        return Err("the output link is not https");
    }
    if !output.username().is_empty() || output.password().is_some() {
        return Err("the output link carries credentials");
    }
    if output.origin() == base.origin() {
        return Ok(());
    }
    match output.host() {
        Some(url::Host::Ipv4(ip)) if !is_public(ip.into()) => {
            Err("the output link is a non-public address")
        }
        Some(url::Host::Ipv6(ip)) if !is_public(ip.into()) => {
            Err("the output link is a non-public address")
        }
        Some(url::Host::Domain(name))
            if base
                .host_str()
                .is_some_and(|b| b.eq_ignore_ascii_case(name)) =>
        {
            Err("the output link is another port of the provider's host")
        }
        None => Err("the output link has no host"),
        _ => Ok(()),
    }
}

pub use son1k_domain::net::is_public;

/// The resolver of the file client: a name resolving to any non-public address is refused, so the
/// connection goes only to addresses that were checked. The provider's own host (`trusted`) is
/// the one name exempt: a local stub's base names its own loopback host.
pub(crate) struct PublicOnly {
    trusted: Option<String>,
}

impl PublicOnly {
    /// Refusing every non-public address, except those of the name `trusted`.
    pub(crate) fn new(trusted: Option<String>) -> Self {
        Self { trusted }
    }
}

/// The message of a refusal by `PublicOnly`, found again in the request's error chain.
const NON_PUBLIC: &str = "resolves to a non-public address";

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let trusted = self
            .trusted
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !trusted && !is_public(a.ip())) {
                return Err(format!("{host} {NON_PUBLIC} ({})", bad.ip()).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn is_refused_address(err: &reqwest::Error) -> bool {
    error_chain(err).contains(NON_PUBLIC)
}

/// `Retry-After` in seconds (or an HTTP date, read as 1 s), at least 1 s and at most 10 minutes.
fn retry_after(response: &reqwest::Response) -> Duration {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds.clamp(1, 600))
}

/// The order in which providers are tried for one job: a weighted random order (each next one
/// drawn among those left in proportion to its weight), so load spreads as configured and a
/// failover goes to another provider.
pub fn weighted_order(weights: &[u32], mut draw: impl FnMut(u64) -> u64) -> Vec<usize> {
    let mut left: Vec<usize> = (0..weights.len()).collect();
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let total: u64 = left
            .iter()
            .map(|&i| u64::from(weights.get(i).copied().unwrap_or(1)))
            .sum();
        let mut pick = draw(total.max(1));
        let mut chosen = 0;
        for (at, &i) in left.iter().enumerate() {
            let w = u64::from(weights.get(i).copied().unwrap_or(1));
            if pick < w {
                chosen = at;
                break;
            }
            pick -= w;
        }
        order.push(left.remove(chosen));
    }
    order
}

/// The providers of `GENERATION_PROVIDERS` (a JSON array of `ProviderConfig`; none when unset),
/// each with its key read from SSM (`key_parameter`, decrypted) once per cold start.
pub async fn load(
    state: &crate::AppState,
) -> Result<Providers, Box<dyn std::error::Error + Send + Sync>> {
    load_from(
        state,
        &std::env::var("GENERATION_PROVIDERS").unwrap_or_default(),
    )
    .await
}

/// `load` from the JSON `raw` instead of the environment.
pub async fn load_from(
    state: &crate::AppState,
    raw: &str,
) -> Result<Providers, Box<dyn std::error::Error + Send + Sync>> {
    let configs = if raw.trim().is_empty() {
        Vec::new()
    } else {
        parse_providers(raw)?
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let ssm = configs
        .iter()
        .any(|c| c.key_parameter.is_some())
        .then(|| state.ssm_client());
    let mut providers: Providers = Vec::new();
    for config in configs {
        let key = match (&config.key_parameter, &ssm) {
            (Some(name), Some(ssm)) => Some(
                ssm.get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|err| {
                        format!(
                            "the key of provider {} ({name}) could not be read: {}",
                            config.name,
                            aws_sdk_ssm::error::DisplayErrorContext(&err)
                        )
                    })?
                    .parameter
                    .and_then(|p| p.value)
                    .ok_or_else(|| format!("the key of provider {} is empty", config.name))?,
            ),
            _ => None,
        };
        providers.push(Box::new(Predictions::new(config, key, http.clone())?));
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked_before_any_job_runs() {
        let ok =
            r#"[{"name":"a","base_url":"http://x","requests_per_second":0.5,"max_concurrency":2}]"#;
        let p = parse_providers(ok).unwrap();
        assert_eq!((p[0].burst, p[0].weight, p[0].timeout_seconds), (1, 1, 120));
        for bad in [
            r#"[{"name":"a","base_url":"http://x","requests_per_second":0,"max_concurrency":2}]"#,
            r#"[{"name":"a","base_url":"http://x","requests_per_second":1,"max_concurrency":0}]"#,
            r#"[{"name":"a b","base_url":"http://x","requests_per_second":1,"max_concurrency":1}]"#,
            r#"[{"name":"a","base_url":"nope","requests_per_second":1,"max_concurrency":1}]"#,
            r#"[{"name":"a","base_url":"http://x","requests_per_second":1,"max_concurrency":1},
                {"name":"a","base_url":"http://y","requests_per_second":1,"max_concurrency":1}]"#,
        ] {
            assert!(parse_providers(bad).is_err(), "{bad}");
        }
    }

    fn allowed(base: &str, output: &str) -> bool {
        let (Ok(base), Ok(output)) = (url::Url::parse(base), url::Url::parse(output)) else {
            return false;
        };
        output_allowed(&base, &output).is_ok()
    }

    #[test]
    fn output_links_must_be_https_public_and_plain_unless_on_the_providers_own_origin() {
        let public = "https://api.replicate.com";
        assert!(allowed(public, "https://replicate.delivery/x/out.wav"));
        // A name passes here: its addresses are checked when it is resolved.
        assert!(allowed(public, "https://localhost/a.wav"));
        for bad in [
            "http://replicate.delivery/x/out.wav",
            "https://user:pw@replicate.delivery/x/out.wav",
            "https://127.0.0.1/a.wav",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.5/a.wav",
            "https://100.64.0.1/a.wav",
            "https://[::1]/a.wav",
            "https://[::ffff:127.0.0.1]/a.wav",
            "https://[::ffff:7f00:1]/a.wav",
            "https://[fe80::1]/a.wav",
            "https://[fd00::1]/a.wav",
            "https://api.replicate.com:8443/a.wav",
            "file:///etc/passwd",
        ] {
            assert!(!allowed(public, bad), "{bad}");
        }
        let local = "http://127.0.0.1:12112/alpha";
        assert!(allowed(local, "http://127.0.0.1:12112/alpha/files/x.wav"));
        for bad in [
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "http://[::ffff:127.0.0.1]:12112/alpha/files/x.wav",
            "http://10.0.0.5/a.wav",
        ] {
            assert!(!allowed(local, bad), "{bad}");
        }
    }

    #[test]
    fn only_global_addresses_are_public() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_order_is_weighted_and_holds_every_provider_once() {
        let mut first = [0u32; 3];
        let mut seed = 7u64;
        for _ in 0..6000 {
            let order = weighted_order(&[1, 2, 3], |n| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) % n
            });
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
            first[order[0]] += 1;
        }
        // 1000, 2000, 3000 expected.
        assert!((800..1200).contains(&first[0]), "{first:?}");
        assert!((1800..2200).contains(&first[1]), "{first:?}");
        assert!((2800..3200).contains(&first[2]), "{first:?}");
    }
}
