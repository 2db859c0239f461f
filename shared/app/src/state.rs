//! `AppState`: configuration, SDK clients and the clock, built once per cold start and borrowed by
//! every invocation.

use crate::billing::api::StripeApi;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Config,
    /// The DynamoDB client, built on first use (`dynamo()`): building it (and its connector) before
    /// the first poll delays the cold start, and the first request needs it at once either way.
    dynamo: Arc<std::sync::OnceLock<aws_sdk_dynamodb::Client>>,
    /// The S3 client, built on first use (`s3()`): half the functions never call S3, and building a
    /// client parses the SDK's endpoint partitions.
    s3: Arc<std::sync::OnceLock<aws_sdk_s3::Client>>,
    /// The Stripe client (`checkout`, `portal`, `stripe-webhook`: see `with_stripe`); `None` without
    /// `STRIPE_SECRET_NAME` (billing routes answer 503). Its key is read on its first call.
    pub stripe: Option<StripeApi>,
    /// Secrets Manager, read on first use and kept for the container's life.
    pub secrets: crate::secrets::Secrets,
    pub clock: Arc<dyn Clock>,
    /// The SDK settings and endpoint overrides the clients were built with: a function that needs
    /// another AWS client (SQS, SSM) builds it from them.
    pub sdk: SdkConfig,
    pub endpoints: Endpoints,
    /// The generation jobs queue (`generation-submit` and the local API): see `with_jobs_queue`.
    pub jobs_queue: Option<crate::jobs::JobsQueue>,
    /// The voice worker's jobs queue (`voice-submit`, `voice-delete`): see `with_voice_jobs`.
    pub voice_jobs: Option<crate::voices::VoiceJobsQueue>,
    /// Where alerts go out (`alert-delivery`): see `with_alert_delivery`.
    pub alert_delivery: Option<crate::delivery::AlertDelivery>,
    /// The language model of Lyric Studio and Pixel (`lyrics-create`, `pixel-chat`): see `with_llm`.
    /// `None`: those routes answer 503.
    pub llm: Option<Arc<dyn crate::llm::LanguageModel>>,
    /// The account worker's queue (`account`, the account worker): see `with_account_jobs`.
    pub account_jobs: Option<crate::account::AccountQueue>,
    /// The Cognito user pool (the account worker): see `with_cognito`.
    pub cognito: Option<crate::account::Cognito>,
}

impl AppState {
    /// The production state: config from the environment, the wall clock, and AWS clients built
    /// without the default provider chain (`lambda_sdk_config`): nothing read from disk at cold start.
    pub async fn from_env() -> Result<Self, crate::StartError> {
        let config = Config::from_env().inspect_err(|err| {
            tracing::error!(error = %err, "configuration refused; the function cannot start");
        })?;
        let sdk = lambda_sdk_config(&config)?;
        let endpoints = Endpoints::from_env();
        Ok(Self::build(config, &sdk, &endpoints, Arc::new(SystemClock)))
    }

    /// The state with its Stripe client (`checkout`, `portal`, `stripe-webhook`: the only functions
    /// that call Stripe's API, so the others neither link nor build it). Without `STRIPE_SECRET_NAME` there is none;
    /// without that secret in Secrets Manager the billing routes answer 503 `billing_not_configured`.
    pub fn with_stripe(mut self) -> Result<Self, crate::StartError> {
        self.stripe = Self::stripe_or_none(&self.config, &self.secrets);
        Ok(self)
    }

    /// The state with the voice worker's jobs queue (`VOICE_JOBS_QUEUE_URL`).
    pub fn with_voice_jobs(mut self) -> Result<Self, crate::StartError> {
        self.voice_jobs = Some(crate::voices::VoiceJobsQueue::from_env(&self)?);
        Ok(self)
    }

    /// A state over an explicit SDK config and clock (tests, local tools).
    pub fn new(config: Config, sdk: &SdkConfig, clock: Arc<dyn Clock>) -> Self {
        Self::build(config, sdk, &Endpoints::default(), clock)
    }

    /// A state whose clients talk to the local stack's servers: DynamoDB Local and moto's S3.
    pub fn local(
        config: Config,
        sdk: &SdkConfig,
        endpoints: &LocalEndpoints,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // moto serves SQS, SSM and Secrets Manager beside S3.
        let endpoints = Endpoints {
            dynamodb: Some(endpoints.dynamodb.clone()),
            s3: Some(endpoints.s3.clone()),
            sqs: Some(endpoints.s3.clone()),
            ssm: Some(endpoints.s3.clone()),
            secrets: Some(endpoints.s3.clone()),
            ses: Some(endpoints.s3.clone()),
        };
        let mut state = Self::build(config, sdk, &endpoints, clock);
        state.stripe = Self::stripe_or_none(&state.config, &state.secrets);
        state
    }

    /// The Stripe client over `secrets`, when a Stripe secret is named.
    fn stripe_or_none(config: &Config, secrets: &crate::secrets::Secrets) -> Option<StripeApi> {
        StripeApi::new(&config.billing, secrets.clone())
    }

    fn build(
        config: Config,
        sdk: &SdkConfig,
        endpoints: &Endpoints,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            config,
            dynamo: Arc::default(),
            s3: Arc::default(),
            stripe: None,
            secrets: crate::secrets::Secrets::new(sdk, endpoints.secrets.clone(), clock.clone()),
            clock,
            sdk: sdk.clone(),
            endpoints: endpoints.clone(),
            jobs_queue: None,
            voice_jobs: None,
            alert_delivery: None,
            llm: None,
            account_jobs: None,
            cognito: None,
        }
    }

    /// The state with the jobs queue of `JOBS_QUEUE_URL` (only `generation-submit` sends jobs).
    pub fn with_jobs_queue(mut self) -> Result<Self, crate::StartError> {
        self.jobs_queue = Some(crate::jobs::JobsQueue::from_env(&self)?);
        Ok(self)
    }

    /// The state with the language model of `OLLAMA_URL` (its key, if any, read from SSM on the
    /// first call). Without `OLLAMA_URL` there is none and the routes that need it answer 503.
    pub fn with_llm(mut self) -> Result<Self, crate::StartError> {
        if let Some(config) = crate::llm::OllamaConfig::from_env()? {
            let ssm = config.key_parameter.is_some().then(|| self.ssm_client());
            self.llm = Some(Arc::new(crate::llm::Ollama::lazy(config).with_ssm(ssm)));
        }
        Ok(self)
    }

    /// The state with the account worker's queue of `ACCOUNT_QUEUE_URL`.
    pub fn with_account_jobs(mut self) -> Result<Self, crate::StartError> {
        let url = std::env::var("ACCOUNT_QUEUE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(crate::config::ConfigError::Missing("ACCOUNT_QUEUE_URL"))?;
        self.account_jobs = Some(crate::account::AccountQueue::new(self.sqs_client(), url));
        Ok(self)
    }

    /// The state with the Cognito user pool of `COGNITO_USER_POOL_ID` (its endpoint from
    /// `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` or `AWS_ENDPOINT_URL`, as the SDK reads them).
    pub fn with_cognito(mut self) -> Result<Self, crate::StartError> {
        let pool = std::env::var("COGNITO_USER_POOL_ID")
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(crate::config::ConfigError::Missing("COGNITO_USER_POOL_ID"))?;
        self.cognito = Some(crate::account::Cognito::new(self.cognito_client(), pool));
        Ok(self)
    }

    /// A Cognito user pools client with this state's settings (locally: moto's server).
    pub fn cognito_client(&self) -> aws_sdk_cognitoidentityprovider::Client {
        let mut config = aws_sdk_cognitoidentityprovider::config::Builder::from(&self.sdk);
        if let Some(url) = &self.endpoints.sqs {
            config = config.endpoint_url(url);
        }
        aws_sdk_cognitoidentityprovider::Client::from_conf(config.build())
    }

    /// An SQS client with this state's settings (the jobs queue).
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        sqs_client(&self.sdk, self.endpoints.sqs.as_deref())
    }

    /// An SES (v2) client with this state's settings (alert emails).
    pub fn ses_client(&self) -> aws_sdk_sesv2::Client {
        let mut ses = aws_sdk_sesv2::config::Builder::from(&self.sdk);
        if let Some(url) = &self.endpoints.ses {
            ses = ses.endpoint_url(url);
        }
        aws_sdk_sesv2::Client::from_conf(ses.build())
    }

    /// The state with where alerts go out, as the environment says (`alert-delivery`).
    pub fn with_alert_delivery(mut self) -> Result<Self, crate::StartError> {
        let settings = crate::delivery::DeliverySettings::from_env()?;
        self.alert_delivery = Some(crate::delivery::AlertDelivery::new(
            self.sqs_client(),
            self.ses_client(),
            settings,
        )?);
        Ok(self)
    }

    /// An SSM client with this state's settings (providers' keys).
    pub fn ssm_client(&self) -> aws_sdk_ssm::Client {
        let mut ssm = aws_sdk_ssm::config::Builder::from(&self.sdk);
        if let Some(url) = &self.endpoints.ssm {
            ssm = ssm.endpoint_url(url);
        }
        aws_sdk_ssm::Client::from_conf(ssm.build())
    }

    /// The same state with `interceptor` on every DynamoDB call (call counting, fault injection).
    pub fn with_dynamo_interceptor(
        mut self,
        interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
    ) -> Self {
        let config = match self.dynamo.get() {
            Some(client) => client.config().to_builder(),
            None => self.dynamo_config(),
        };
        let client = aws_sdk_dynamodb::Client::from_conf(config.interceptor(interceptor).build());
        self.dynamo = Arc::new(std::sync::OnceLock::from(client));
        self
    }

    /// The DynamoDB client (built on the first call).
    pub fn dynamo(&self) -> &aws_sdk_dynamodb::Client {
        self.dynamo
            .get_or_init(|| aws_sdk_dynamodb::Client::from_conf(self.dynamo_config().build()))
    }

    fn dynamo_config(&self) -> aws_sdk_dynamodb::config::Builder {
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(&self.sdk);
        if let Some(url) = &self.endpoints.dynamodb {
            dynamo = dynamo.endpoint_url(url);
        }
        dynamo
    }
}

impl AppState {
    /// The same state with `interceptor` on every S3 call (access recording in tests).
    pub fn with_s3_interceptor(
        mut self,
        interceptor: impl aws_sdk_s3::config::Intercept + 'static,
    ) -> Self {
        let config = match self.s3.get() {
            Some(client) => client.config().to_builder(),
            None => self.s3_config(),
        };
        let config = config.interceptor(interceptor).build();
        self.s3 = Arc::new(std::sync::OnceLock::from(aws_sdk_s3::Client::from_conf(
            config,
        )));
        self
    }

    /// The same state reading the time from `clock` (a second instance whose clock differs).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The S3 client (built on the first call).
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| aws_sdk_s3::Client::from_conf(self.s3_config().build()))
    }

    fn s3_config(&self) -> aws_sdk_s3::config::Builder {
        let mut s3 = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.config.s3_force_path_style);
        if let Some(url) = &self.endpoints.s3 {
            s3 = s3.endpoint_url(url);
        }
        s3
    }
}

/// Every port a use case may name (`crate::ports`), over this state's clients and configuration.
mod provided {
    use super::AppState;
    use crate::billing::api::StripeApi;
    use crate::clock::Clock;
    use crate::jobs::JobsQueue;
    use crate::llm::LanguageModel;
    use crate::ports;
    use crate::secrets::Secrets;
    use son1k_domain::billing::PriceTable;
    use son1k_domain::rate::RequestBudget;
    use son1k_store as store;

    impl ports::Time for AppState {
        fn clock(&self) -> &dyn Clock {
            self.clock.as_ref()
        }
    }

    impl ports::Users for AppState {
        fn users(&self) -> store::users::UsersStore<'_> {
            store::users::UsersStore::new(self.dynamo(), &self.config.names.users_table)
        }
    }

    impl ports::Generations for AppState {
        fn generations(&self) -> store::generations::GenerationsStore<'_> {
            store::generations::GenerationsStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Pool for AppState {
        fn pool(&self) -> store::pool::PoolStore<'_> {
            store::pool::PoolStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Alerts for AppState {
        fn alerts(&self) -> store::alerts::AlertsStore<'_> {
            store::alerts::AlertsStore::new(self.dynamo(), &self.config.names.alerts_table)
        }
    }

    impl ports::Deliveries for AppState {
        fn delivery(&self) -> Option<&crate::delivery::AlertDelivery> {
            self.alert_delivery.as_ref()
        }
    }

    impl ports::Analytics for AppState {
        fn analytics(&self) -> store::analytics::AnalyticsStore<'_> {
            store::analytics::AnalyticsStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Allowances for AppState {
        fn allowances(&self) -> store::allowances::AllowancesStore<'_> {
            store::allowances::AllowancesStore::new(self.dynamo(), &self.config.names.users_table)
        }
    }

    impl ports::Lyrics for AppState {
        fn lyrics(&self) -> store::lyrics::LyricsStore<'_> {
            store::lyrics::LyricsStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::PixelMemory for AppState {
        fn pixel(&self) -> store::pixel::PixelStore<'_> {
            store::pixel::PixelStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Jobs for AppState {
        fn jobs(&self) -> store::jobs::JobsStore<'_> {
            store::jobs::JobsStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::ProviderStates for AppState {
        fn providers(&self) -> store::providers::ProvidersStore<'_> {
            store::providers::ProvidersStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Audit for AppState {
        fn audit(&self) -> store::audit::AuditStore<'_> {
            store::audit::AuditStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Credits for AppState {
        fn credits(&self) -> store::credits::CreditsStore<'_> {
            store::credits::CreditsStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Voices for AppState {
        fn voices(&self) -> store::voices::VoicesStore<'_> {
            store::voices::VoicesStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Accounts for AppState {
        fn accounts(&self) -> store::account::AccountStore<'_> {
            store::account::AccountStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::AccountJobs for AppState {
        fn account_jobs(&self) -> Option<&crate::account::AccountQueue> {
            self.account_jobs.as_ref()
        }
    }

    impl ports::Directory for AppState {
        fn cognito(&self) -> Option<&crate::account::Cognito> {
            self.cognito.as_ref()
        }
    }

    impl ports::VoiceJobs for AppState {
        fn voice_jobs(&self) -> Option<&crate::voices::VoiceJobsQueue> {
            self.voice_jobs.as_ref()
        }
    }

    impl ports::AudioBucket for AppState {
        fn audio(&self) -> store::audio::AudioStore<'_> {
            store::audio::AudioStore::new(self.s3(), &self.config.names.audio_bucket)
        }
    }

    impl ports::Uploads for AppState {
        fn uploads(&self) -> store::uploads::UploadsStore<'_> {
            store::uploads::UploadsStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Billing for AppState {
        fn billing(&self) -> store::billing::BillingStore<'_> {
            store::billing::BillingStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Housekeeping for AppState {
        fn housekeeping(&self) -> store::housekeeping::HousekeepingStore<'_> {
            store::housekeeping::HousekeepingStore::new(self.dynamo(), &self.config.names)
        }
    }

    impl ports::Stripe for AppState {
        fn stripe(&self) -> Option<&StripeApi> {
            self.stripe.as_ref()
        }

        fn prices(&self) -> &PriceTable {
            &self.config.billing.prices
        }

        fn trials(&self) -> &son1k_domain::billing::TrialDays {
            &self.config.billing.trials
        }

        fn packs(&self) -> &son1k_domain::credits::Packs {
            &self.config.billing.packs
        }
    }

    impl ports::Model for AppState {
        fn model(&self) -> Option<&dyn LanguageModel> {
            self.llm.as_deref()
        }
    }

    impl ports::JobsQueues for AppState {
        fn jobs_queue(&self) -> Option<&JobsQueue> {
            self.jobs_queue.as_ref()
        }
    }

    impl ports::RequestBudgets for AppState {
        fn request_budget(&self) -> RequestBudget {
            self.config.request_budget
        }
    }

    impl ports::Keys for AppState {
        fn secrets(&self) -> &Secrets {
            &self.secrets
        }

        fn app_secret_name(&self) -> Option<&str> {
            self.config.app_secret_name.as_deref()
        }

        fn stripe_secret_name(&self) -> Option<&str> {
            self.config.billing.secret_name.as_deref()
        }
    }
}

/// An SQS client with `sdk`'s settings, at `endpoint` when given.
pub fn sqs_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        sqs = sqs.endpoint_url(url);
    }
    aws_sdk_sqs::Client::from_conf(sqs.build())
}

/// The AWS config loader with our one timeout and retry policy for every SDK call.
pub fn sdk_loader(config: &Config) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(config))
        .retry_config(retries(config))
}

fn timeouts(config: &Config) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500).min(config.aws_attempt_timeout))
        .operation_attempt_timeout(config.aws_attempt_timeout)
        .operation_timeout(config.aws_operation_timeout)
        .build()
}

fn retries(config: &Config) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(config.aws_max_attempts)
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(200))
}

/// Where the local stack listens: DynamoDB Local for DynamoDB, moto for S3. Each client gets its own
/// endpoint, so no DynamoDB request can reach the S3 server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoints {
    pub dynamodb: String,
    pub s3: String,
}

/// Endpoint overrides from the environment, as the SDK's own loader reads them:
/// `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`. Unset in AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub dynamodb: Option<String>,
    pub s3: Option<String>,
    pub sqs: Option<String>,
    pub ssm: Option<String>,
    pub secrets: Option<String>,
    pub ses: Option<String>,
}

impl Endpoints {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let global = var("AWS_ENDPOINT_URL");
        Self {
            dynamodb: var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| global.clone()),
            s3: var("AWS_ENDPOINT_URL_S3").or_else(|| global.clone()),
            sqs: var("AWS_ENDPOINT_URL_SQS").or_else(|| global.clone()),
            ssm: var("AWS_ENDPOINT_URL_SSM").or_else(|| global.clone()),
            secrets: var("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| global.clone()),
            ses: var("AWS_ENDPOINT_URL_SESV2").or(global),
        }
    }
}

/// The roots AWS endpoints chain to (Amazon Trust Services), compiled in: TLS is verified against
/// them without reading the system's CA directory at every cold start.
const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The SDK config of a Lambda function: region and credentials from the environment the Lambda
/// runtime sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
/// our timeouts and retries, and an HTTPS client trusting `AWS_ROOTS` only. The default provider
/// chain would probe profile files and build clients for IMDS, ECS and STS first.
pub fn lambda_sdk_config(config: &Config) -> Result<SdkConfig, crate::StartError> {
    lambda_sdk_config_trusting(config, aws_trust_store())
}

/// The trust store of `lambda_sdk_config`: `AWS_ROOTS` only, parsed when the first connection is
/// made (the SDK builds its connector on the first request).
pub fn aws_trust_store() -> aws_smithy_http_client::tls::TrustStore {
    aws_smithy_http_client::tls::TrustStore::empty().with_pem_certificate(AWS_ROOTS)
}

/// `lambda_sdk_config` with another trust store (`make bench` compares the choices).
pub fn lambda_sdk_config_trusting(
    config: &Config,
    trust: aws_smithy_http_client::tls::TrustStore,
) -> Result<SdkConfig, crate::StartError> {
    use aws_smithy_http_client::tls;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .map_err(|_| "AWS_REGION is not set (the Lambda runtime always sets it)")?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(tls::TlsContext::builder().with_trust_store(trust).build()?)
        .build_https();
    Ok(SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        )
        .timeout_config(timeouts(config))
        .retry_config(retries(config))
        .http_client(http)
        .build())
}

/// An SDK config for the local stack: dummy static credentials, us-east-1 (endpoints per client,
/// see `AppState::local`).
pub async fn local_sdk_config(config: &Config) -> SdkConfig {
    sdk_loader(config)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        .load()
        .await
}
