//! Configuration: the environment turned into a typed `Config`, read once per cold start.

use son1k_domain::billing::{PriceTable, TrialDays};
use son1k_domain::credits::Packs;
use son1k_domain::rate::RequestBudget;
use son1k_store::Names;
use std::time::Duration;
use url::Url;

/// Names of the resources this deployment uses, and the knobs of its SDK calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The tables and the bucket (`USERS_TABLE`, `STATS_TABLE`, `POOL_TABLE`, `ALERTS_TABLE`, `AUDIT_TABLE`, `AUDIO_BUCKET`).
    pub names: Names,
    /// How long one attempt of one AWS call may take before it is abandoned.
    pub aws_attempt_timeout: Duration,
    /// How long one AWS call may take in all, retries included.
    pub aws_operation_timeout: Duration,
    /// Attempts per AWS call (1 = no retry).
    pub aws_max_attempts: u32,
    /// Path-style S3 addressing, which local wire-protocol servers need (`S3_FORCE_PATH_STYLE=true`).
    pub s3_force_path_style: bool,
    pub billing: BillingConfig,
    /// `APP_SECRET_NAME`: the Secrets Manager secret with the backend's own keys, a JSON object
    /// with `cursor_secret` (signs pool listing cursors; the listing needs it).
    pub app_secret_name: Option<String>,
    /// Each user's budget of costly requests (`REQUEST_BUDGET_PER_MINUTE`, `REQUEST_BUDGET_BURST`;
    /// default 120 and 200: `domain::rate`).
    pub request_budget: RequestBudget,
}

/// Stripe: keys, prices and where users return to. Every part is optional at start: a function
/// that bills answers `503 billing_not_configured` without its key, the others never look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingConfig {
    /// `STRIPE_SECRET_NAME`: the Secrets Manager secret with the Stripe keys, a JSON object with
    /// `secret_key` (checkout, portal) and `webhook_secret` (webhook signatures). The keys are read
    /// when first needed, never from the environment.
    pub secret_name: Option<String>,
    /// `STRIPE_PRICE_CREATOR|PRO|STUDIO`, and yearly `STRIPE_PRICE_<TIER>_ANNUAL`.
    pub prices: PriceTable,
    /// `STRIPE_TRIAL_DAYS_<TIER>`: the trial a user's first checkout of that tier offers.
    pub trials: TrialDays,
    /// `CREDIT_PACKS`: the packs of credits on sale (`domain::credits::Packs::parse`).
    pub packs: Packs,
    /// `FRONTEND_URL` (default `http://localhost:3000`): return URLs must share its origin.
    pub frontend_url: Url,
    /// `STRIPE_API_BASE`: another Stripe API endpoint (the local stub); unset in AWS.
    pub api_base: Option<String>,
    /// How long one Stripe call may take (`STRIPE_TIMEOUT_MS`, default 5 s).
    pub timeout: Duration,
}

/// A secret value: never printed, not even in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The environment, read through a lookup (the process's, or a test's pairs).
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A variable that is set to something other than blanks.
    fn set(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.set(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number of at least 1; `default` when unset.
    fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.set(name) {
            None => Ok(default),
            Some(value) => {
                value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(ConfigError::Invalid {
                        name,
                        value,
                        expected: "a whole number of at least 1",
                    })
            }
        }
    }

    /// A trial's days: 1 to Stripe's longest trial, or `None` when unset.
    fn trial_days(&self, name: &'static str) -> Result<Option<u32>, ConfigError> {
        if self.set(name).is_none() {
            return Ok(None);
        }
        let value = self.small(name, 1)?;
        if value > MAX_TRIAL_DAYS {
            return Err(ConfigError::Invalid {
                name,
                value: value.to_string(),
                expected: "at most 730 (Stripe's longest trial)",
            });
        }
        Ok(Some(value))
    }

    fn millis(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.number(name, default).map(Duration::from_millis)
    }

    /// `number` that fits a `u32`.
    fn small(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        let value = self.number(name, u64::from(default))?;
        u32::try_from(value).map_err(|_| ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "a whole number below 4294967296",
        })
    }
}

/// Stripe's longest trial (`trial_period_days`).
const MAX_TRIAL_DAYS: u32 = 730;

/// `CREDIT_PACKS`, or none on sale when unset.
fn packs(value: Option<String>) -> Result<Packs, ConfigError> {
    let Some(value) = value else {
        return Ok(Packs::default());
    };
    Packs::parse(&value).map_err(|_| ConfigError::Invalid {
        name: "CREDIT_PACKS",
        value,
        expected: "comma-separated name:generations:price_cents:currency:price_id entries",
    })
}

pub const DEFAULT_FRONTEND_URL: &str = "http://localhost:3000";
const STRIPE_TIMEOUT_MS: u64 = 5_000;

/// A configuration the function cannot run with: it stops the cold start with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set: the function needs it (template.yaml sets it from the stack)")]
    Missing(&'static str),
    #[error("{name} is {value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Defaults of the SDK knobs, which every deployment may keep.
const ATTEMPT_TIMEOUT_MS: u64 = 2_000;
const OPERATION_TIMEOUT_MS: u64 = 5_000;
const MAX_ATTEMPTS: u32 = 3;

impl Config {
    /// Reads the environment. The resource names are required: a function without them must not
    /// start against a default name (it would read or write the wrong table).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as `from_env` over any lookup, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        Ok(Self {
            names: Names {
                users_table: env.required("USERS_TABLE")?,
                stats_table: env.required("STATS_TABLE")?,
                pool_table: env.required("POOL_TABLE")?,
                alerts_table: env.required("ALERTS_TABLE")?,
                audit_table: env.required("AUDIT_TABLE")?,
                audio_bucket: env.required("AUDIO_BUCKET")?,
            },
            aws_attempt_timeout: env.millis("AWS_ATTEMPT_TIMEOUT_MS", ATTEMPT_TIMEOUT_MS)?,
            aws_operation_timeout: env.millis("AWS_OPERATION_TIMEOUT_MS", OPERATION_TIMEOUT_MS)?,
            aws_max_attempts: env.small("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)?,
            s3_force_path_style: env
                .set("S3_FORCE_PATH_STYLE")
                .is_some_and(|v| v == "true" || v == "1"),
            billing: BillingConfig {
                secret_name: env.set("STRIPE_SECRET_NAME"),
                prices: PriceTable {
                    creator: env.set("STRIPE_PRICE_CREATOR"),
                    pro: env.set("STRIPE_PRICE_PRO"),
                    studio: env.set("STRIPE_PRICE_STUDIO"),
                    creator_annual: env.set("STRIPE_PRICE_CREATOR_ANNUAL"),
                    pro_annual: env.set("STRIPE_PRICE_PRO_ANNUAL"),
                    studio_annual: env.set("STRIPE_PRICE_STUDIO_ANNUAL"),
                },
                trials: TrialDays {
                    creator: env.trial_days("STRIPE_TRIAL_DAYS_CREATOR")?,
                    pro: env.trial_days("STRIPE_TRIAL_DAYS_PRO")?,
                    studio: env.trial_days("STRIPE_TRIAL_DAYS_STUDIO")?,
                },
                packs: packs(env.set("CREDIT_PACKS"))?,
                frontend_url: frontend_url(env.set("FRONTEND_URL"))?,
                api_base: env.set("STRIPE_API_BASE"),
                timeout: env.millis("STRIPE_TIMEOUT_MS", STRIPE_TIMEOUT_MS)?,
            },
            app_secret_name: env.set("APP_SECRET_NAME"),
            request_budget: RequestBudget {
                per_minute: env.small(
                    "REQUEST_BUDGET_PER_MINUTE",
                    RequestBudget::default().per_minute,
                )?,
                burst: env.small("REQUEST_BUDGET_BURST", RequestBudget::default().burst)?,
            },
        })
    }

    /// A config whose resource names all start with `prefix`, with the default SDK knobs and path-style
    /// S3 (local servers): each test gets tables of its own.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            names: Names {
                users_table: format!("{prefix}-users"),
                stats_table: format!("{prefix}-stats"),
                pool_table: format!("{prefix}-pool"),
                alerts_table: format!("{prefix}-alerts"),
                audit_table: format!("{prefix}-audit"),
                audio_bucket: format!("{prefix}-audio"),
            },
            aws_attempt_timeout: Duration::from_millis(ATTEMPT_TIMEOUT_MS),
            aws_operation_timeout: Duration::from_millis(OPERATION_TIMEOUT_MS),
            aws_max_attempts: MAX_ATTEMPTS,
            s3_force_path_style: true,
            billing: BillingConfig::unconfigured(),
            app_secret_name: None,
            request_budget: RequestBudget::default(),
        }
    }
}

impl BillingConfig {
    /// No keys, no prices, the default frontend: every billing route answers 503.
    pub fn unconfigured() -> Self {
        Self {
            secret_name: None,
            prices: PriceTable::default(),
            trials: TrialDays::default(),
            packs: Packs::default(),
            frontend_url: default_frontend(),
            api_base: None,
            timeout: Duration::from_millis(STRIPE_TIMEOUT_MS),
        }
    }
}

#[allow(clippy::expect_used)] // a constant that parses
fn default_frontend() -> Url {
    Url::parse(DEFAULT_FRONTEND_URL).expect("the default frontend URL parses")
}

/// `FRONTEND_URL`: an absolute http(s) URL, or the local default.
fn frontend_url(value: Option<String>) -> Result<Url, ConfigError> {
    let Some(value) = value else {
        return Ok(default_frontend());
    };
    Url::parse(value.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or(ConfigError::Invalid {
            name: "FRONTEND_URL",
            value,
            expected: "an absolute http(s) URL such as https://app.example.com",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    const NAMES: [(&str, &str); 6] = [
        ("USERS_TABLE", "prod-users"),
        ("STATS_TABLE", "prod-stats"),
        ("POOL_TABLE", "prod-pool"),
        ("ALERTS_TABLE", "prod-alerts"),
        ("AUDIT_TABLE", "prod-audit"),
        ("AUDIO_BUCKET", "prod-audio"),
    ];

    #[test]
    fn resource_names_come_from_the_environment_and_knobs_default() {
        let config = Config::from_lookup(lookup(&NAMES)).unwrap();
        assert_eq!(
            (
                config.names.users_table.as_str(),
                config.names.audio_bucket.as_str()
            ),
            ("prod-users", "prod-audio")
        );
        assert_eq!(config.aws_max_attempts, 3);
        assert_eq!(config.aws_operation_timeout, Duration::from_secs(5));
        assert!(
            !config.s3_force_path_style,
            "virtual-hosted S3 addressing in AWS"
        );
        assert_eq!(config.billing, BillingConfig::unconfigured());
    }

    #[test]
    fn stripe_settings_are_read_and_keys_never_taken_from_the_environment() {
        let mut pairs = NAMES.to_vec();
        pairs.extend([
            ("STRIPE_SECRET_NAME", "son1k/stripe"),
            ("APP_SECRET_NAME", "son1k/app"),
            // Keys in the environment are not read: they come from Secrets Manager.
            ("STRIPE_SECRET_KEY", "sk_test_abc"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_xyz"),
            ("STRIPE_PRICE_PRO", "price_pro"),
            ("STRIPE_PRICE_PRO_ANNUAL", "price_pro_yearly"),
            ("STRIPE_TRIAL_DAYS_PRO", "14"),
            ("CREDIT_PACKS", "pack_10:10:499:usd:price_p10"),
            ("FRONTEND_URL", "https://app.son1k.com"),
        ]);
        let config = Config::from_lookup(lookup(&pairs)).unwrap();
        let billing = &config.billing;
        assert_eq!(billing.secret_name.as_deref(), Some("son1k/stripe"));
        assert_eq!(config.app_secret_name.as_deref(), Some("son1k/app"));
        assert_eq!(
            billing.prices.price_of(son1k_domain::tiers::Tier::Pro),
            Some("price_pro")
        );
        assert_eq!(billing.frontend_url.as_str(), "https://app.son1k.com/");
        assert_eq!(
            billing.prices.tier_of("price_pro_yearly"),
            Some(son1k_domain::tiers::Tier::Pro)
        );
        assert_eq!(billing.trials.of(son1k_domain::tiers::Tier::Pro), Some(14));
        assert_eq!(billing.trials.of(son1k_domain::tiers::Tier::Creator), None);
        assert_eq!(
            billing.packs.find("pack_10").map(|p| p.price_id.as_str()),
            Some("price_p10")
        );
        for (name, bad) in [
            ("CREDIT_PACKS", "pack_10:10"),
            ("STRIPE_TRIAL_DAYS_PRO", "731"),
            ("STRIPE_TRIAL_DAYS_PRO", "0"),
        ] {
            let mut pairs = NAMES.to_vec();
            pairs.push((name, bad));
            assert!(Config::from_lookup(lookup(&pairs)).is_err(), "{name}={bad}");
        }
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("sk_test_abc") && !printed.contains("whsec_xyz"),
            "{printed}"
        );
        for bad in ["app.son1k.com", "ftp://x.com", "http://"] {
            let mut pairs = NAMES.to_vec();
            pairs.push(("FRONTEND_URL", bad));
            assert!(Config::from_lookup(lookup(&pairs)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_or_blank_resource_name_stops_the_start() {
        for missing in [
            "USERS_TABLE",
            "STATS_TABLE",
            "POOL_TABLE",
            "ALERTS_TABLE",
            "AUDIT_TABLE",
            "AUDIO_BUCKET",
        ] {
            let without: Vec<_> = NAMES
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(
                Config::from_lookup(lookup(&without)),
                Err(ConfigError::Missing(missing))
            );
            let mut blank = without.clone();
            blank.push((missing, "  "));
            assert_eq!(
                Config::from_lookup(lookup(&blank)),
                Err(ConfigError::Missing(missing))
            );
        }
    }

    #[test]
    fn knobs_are_read_and_bad_numbers_stop_the_start() {
        let mut pairs = NAMES.to_vec();
        pairs.extend([
            ("AWS_ATTEMPT_TIMEOUT_MS", "250"),
            ("S3_FORCE_PATH_STYLE", "true"),
        ]);
        let config = Config::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.aws_attempt_timeout, Duration::from_millis(250));
        assert!(config.s3_force_path_style);
        for bad in ["zero", "0", "-1"] {
            let mut pairs = NAMES.to_vec();
            pairs.push(("AWS_MAX_ATTEMPTS", bad));
            let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        name: "AWS_MAX_ATTEMPTS",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }
}
