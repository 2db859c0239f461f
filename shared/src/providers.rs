//! Music generation providers behind one trait, and the pool that chooses among them.
//!
//! Each provider is used with its own key and within its own published limits (`store::providers`
//! keeps the fleet-wide token bucket, concurrency, cooldowns and circuit breaker). Nothing here
//! rotates keys, accounts, addresses or user agents: a provider that says "slow down" is left alone
//! until it said it may be called again.
//!
//! The one adapter is for a predictions-style HTTP API (Replicate's shape, serving MusicGen):
//! `POST {base}/v1/predictions` with `Authorization: Bearer <key>` and `Prefer: wait`, then
//! `GET {base}/v1/predictions/{id}` until the prediction is final, then the audio at its `output`
//! URL (fetched without the key: it is another host's link).

use crate::domain::tiers::Quality;
use crate::store::providers::Limits;
use serde::Deserialize;
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
}

/// Audio as it arrives from a provider.
pub struct Audio {
    pub content_type: String,
    pub content_length: Option<u64>,
    response: reqwest::Response,
}

impl Audio {
    /// The next piece of the audio; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ProviderError> {
        self.response
            .chunk()
            .await
            .map_err(|err| ProviderError::Failed(format!("audio download: {err}")))
    }
}

pub type ProviderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Audio, ProviderError>> + Send + 'a>>;

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
    http: reqwest::Client,
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
    pub fn new(config: ProviderConfig, key: Option<String>, http: reqwest::Client) -> Self {
        Self { config, key, http }
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
        serde_json::json!({
            "prompt": request.prompt,
            "duration": (request.duration_seconds.round() as u64).max(1),
            "model_version": model_version,
            "output_format": "wav",
        })
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

    async fn run(&self, request: &GenerationRequest) -> Result<Audio, ProviderError> {
        let body = serde_json::json!({
            "version": self.config.model,
            "input": self.input(request),
        });
        let created = self
            .authorized(self.http.post(self.url("/v1/predictions")))
            .header("Prefer", "wait=60")
            .json(&body)
            .send()
            .await
            .map_err(|err| ProviderError::Failed(format!("create prediction: {err}")))?;
        let mut prediction = Self::read(created).await?;
        loop {
            match prediction.status.as_str() {
                "succeeded" => break,
                "failed" | "canceled" | "aborted" => {
                    return Err(ProviderError::Failed(format!(
                        "prediction {}: {}",
                        prediction.status,
                        prediction
                            .error
                            .map(|e| e.to_string())
                            .unwrap_or_default()
                            .chars()
                            .take(200)
                            .collect::<String>()
                    )))
                }
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
        let output = match prediction.output {
            Some(serde_json::Value::String(url)) => url,
            Some(serde_json::Value::Array(urls)) => urls
                .into_iter()
                .find_map(|u| u.as_str().map(str::to_owned))
                .ok_or_else(|| ProviderError::Failed("prediction without output".into()))?,
            _ => return Err(ProviderError::Failed("prediction without output".into())),
        };
        if !output_allowed(&self.config.base_url, &output) {
            return Err(ProviderError::Failed(
                "the output link is not an http(s) link to a public host".into(),
            ));
        }
        // The output is a link of the provider's file host: fetched without our key.
        let response = self
            .http
            .get(&output)
            .send()
            .await
            .map_err(|err| ProviderError::Failed(format!("audio download: {err}")))?;
        if !response.status().is_success() {
            return Err(ProviderError::Failed(format!(
                "audio download answered {}",
                response.status()
            )));
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
        })
    }
}

impl MusicProvider for Predictions {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    fn generate<'a>(&'a self, request: &'a GenerationRequest) -> ProviderFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.config.timeout(), self.run(request))
                .await
                .unwrap_or(Err(ProviderError::TimedOut))
        })
    }
}

/// Whether the worker may fetch a provider's `output` link: http(s) only, and never a loopback,
/// private or link-local address (the Lambda's own Runtime API, a VPC's hosts) unless the provider
/// itself is on such an address (the local stub).
fn output_allowed(base: &str, output: &str) -> bool {
    use std::net::IpAddr;
    let internal = |url: &url::Url| match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
        }
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
        }
        None => true,
    };
    let (Ok(base), Ok(output)) = (url::Url::parse(base), url::Url::parse(output)) else {
        return false;
    };
    matches!(output.scheme(), "http" | "https") && (!internal(&output) || internal(&base))
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
) -> Result<crate::jobs::Providers, Box<dyn std::error::Error + Send + Sync>> {
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
) -> Result<crate::jobs::Providers, Box<dyn std::error::Error + Send + Sync>> {
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
    let mut providers: crate::jobs::Providers = Vec::new();
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
        providers.push(Box::new(Predictions::new(config, key, http.clone())));
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

    #[test]
    fn output_links_to_internal_hosts_are_refused_unless_the_provider_is_local() {
        let public = "https://api.replicate.com";
        assert!(output_allowed(
            public,
            "https://replicate.delivery/x/out.wav"
        ));
        for bad in [
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/a.wav",
            "http://localhost/a.wav",
            "http://[::1]/a.wav",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!output_allowed(public, bad), "{bad}");
        }
        assert!(output_allowed(
            "http://127.0.0.1:12112/alpha",
            "http://127.0.0.1:12112/alpha/files/x.wav"
        ));
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
