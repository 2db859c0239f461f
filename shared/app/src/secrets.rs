//! Secrets read from AWS Secrets Manager when first needed and kept for the container's life: the
//! Stripe keys and the backend's own keys never sit in a function's environment, and a rotated
//! value is picked up without a redeploy (`forget` after the old one was refused).

use crate::clock::Clock;
use crate::config::Secret;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use chrono::{DateTime, Duration, Utc};
use son1k_store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// How old a secret must be before a refusal anyone can provoke (a webhook signature that does not
/// verify) has it read again: a rotation is picked up within this, and bad requests cannot turn
/// into a Secrets Manager call each.
pub const REREAD_AFTER: Duration = Duration::seconds(60);

/// A JSON object of string fields, as stored in one secret.
type Fields = HashMap<String, String>;

/// One read of a secret: when, and its fields (`None`: no such secret).
type Read = (DateTime<Utc>, Option<Arc<Fields>>);

/// The secrets of one container: each read at most once until forgotten.
#[derive(Clone)]
pub struct Secrets {
    inner: Arc<Inner>,
}

struct Inner {
    client: OnceLock<aws_sdk_secretsmanager::Client>,
    /// What the client is built from: the state's SDK settings and Secrets Manager endpoint.
    sdk: SdkConfig,
    endpoint: Option<String>,
    /// When a read happened (the state's clock).
    clock: Arc<dyn Clock>,
    /// By secret name, with when it was read; `None`: there is no such secret (the feature is not
    /// configured).
    cache: tokio::sync::Mutex<HashMap<String, Read>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(***)")
    }
}

impl Secrets {
    /// Secrets Manager with `sdk`'s settings, at `endpoint` when given (the local stack); `clock`
    /// dates each read.
    pub fn new(sdk: &SdkConfig, endpoint: Option<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: OnceLock::new(),
                sdk: sdk.clone(),
                endpoint,
                clock,
                cache: tokio::sync::Mutex::default(),
            }),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The Secrets Manager client (built on first use); the local stack writes its keys with it.
    pub fn client(&self) -> &aws_sdk_secretsmanager::Client {
        self.inner.client.get_or_init(|| {
            let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.inner.sdk);
            if let Some(url) = &self.inner.endpoint {
                config = config.endpoint_url(url);
            }
            aws_sdk_secretsmanager::Client::from_conf(config.build())
        })
    }

    /// The field `field` of the JSON secret `name`; `None` when the secret or the field does not
    /// exist (the feature is not configured). Read once, then from memory until `forget`; a
    /// missing secret is looked for again a minute later.
    pub async fn field(&self, name: &str, field: &str) -> Result<Option<Secret>, StoreError> {
        let mut cache = self.inner.cache.lock().await;
        let now = self.now();
        // A secret found missing is looked for again after `REREAD_AFTER` (created since?).
        let fresh = |(read_at, fields): &Read| fields.is_some() || now - *read_at < REREAD_AFTER;
        let fields = match cache.get(name).filter(|read| fresh(read)) {
            Some((_, fields)) => fields.clone(),
            None => {
                let fields = self.read(name).await?;
                cache.insert(name.to_owned(), (now, fields.clone()));
                fields
            }
        };
        Ok(fields
            .and_then(|f| f.get(field).cloned())
            .filter(|v| !v.is_empty())
            .map(Secret::new))
    }

    /// Drops what was read of `name`: the next `field` reads it again (after a rotation).
    pub async fn forget(&self, name: &str) {
        self.inner.cache.lock().await.remove(name);
    }

    /// `forget`, only when what was read of `name` is older than `age`: for a refusal anyone can
    /// provoke (a bad webhook signature), so that it cannot make every request a Secrets Manager
    /// call. Whether it was forgotten.
    pub async fn forget_if_older(&self, name: &str, age: Duration) -> bool {
        let now = self.now();
        let mut cache = self.inner.cache.lock().await;
        let old = cache
            .get(name)
            .is_some_and(|(read_at, _)| now - *read_at >= age);
        if old {
            cache.remove(name);
        }
        old
    }

    async fn read(&self, name: &str) -> Result<Option<Arc<Fields>>, StoreError> {
        let out = match self
            .client()
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                tracing::warn!(
                    secret = name,
                    "no such secret: what needs it is not configured"
                );
                return Ok(None);
            }
            Err(err)
                if err
                    .as_service_error()
                    .and_then(ProvideErrorMetadata::code)
                    .is_some_and(|code| code == "AccessDeniedException") =>
            {
                return Err(StoreError::misconfigured(
                    "GetSecretValue",
                    format!("{name}: {}", DisplayErrorContext(&err)),
                ))
            }
            Err(err) => return Err(son1k_store::sdk_failure("GetSecretValue", err)),
        };
        let text = out.secret_string().unwrap_or_default();
        let fields: Fields = serde_json::from_str(text).map_err(|_| {
            StoreError::misconfigured(
                "GetSecretValue",
                format!("{name} is not a JSON object of strings"),
            )
        })?;
        Ok(Some(Arc::new(fields)))
    }
}
