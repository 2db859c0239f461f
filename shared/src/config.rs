//! Configuration: the environment turned into a typed `Config`, read once per cold start.

use std::time::Duration;

/// Names of the resources this deployment uses, and the knobs of its SDK calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub users_table: String,
    pub stats_table: String,
    pub pool_table: String,
    pub audio_bucket: String,
    /// How long one attempt of one AWS call may take before it is abandoned.
    pub aws_attempt_timeout: Duration,
    /// How long one AWS call may take in all, retries included.
    pub aws_operation_timeout: Duration,
    /// Attempts per AWS call (1 = no retry).
    pub aws_max_attempts: u32,
    /// Path-style S3 addressing, which local wire-protocol servers need (`S3_FORCE_PATH_STYLE=true`).
    pub s3_force_path_style: bool,
}

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
        let set = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| set(name).ok_or(ConfigError::Missing(name));
        let number =
            |name: &'static str, default: u64| match set(name) {
                None => Ok(default),
                Some(value) => value.trim().parse::<u64>().ok().filter(|n| *n >= 1).ok_or(
                    ConfigError::Invalid {
                        name,
                        value,
                        expected: "a whole number of at least 1",
                    },
                ),
            };
        let max_attempts = number("AWS_MAX_ATTEMPTS", u64::from(MAX_ATTEMPTS))?;
        Ok(Self {
            users_table: required("USERS_TABLE")?,
            stats_table: required("STATS_TABLE")?,
            pool_table: required("POOL_TABLE")?,
            audio_bucket: required("AUDIO_BUCKET")?,
            aws_attempt_timeout: Duration::from_millis(number(
                "AWS_ATTEMPT_TIMEOUT_MS",
                ATTEMPT_TIMEOUT_MS,
            )?),
            aws_operation_timeout: Duration::from_millis(number(
                "AWS_OPERATION_TIMEOUT_MS",
                OPERATION_TIMEOUT_MS,
            )?),
            aws_max_attempts: u32::try_from(max_attempts).map_err(|_| ConfigError::Invalid {
                name: "AWS_MAX_ATTEMPTS",
                value: max_attempts.to_string(),
                expected: "a small whole number",
            })?,
            s3_force_path_style: set("S3_FORCE_PATH_STYLE")
                .is_some_and(|v| v == "true" || v == "1"),
        })
    }

    /// A config whose resource names all start with `prefix`, with the default SDK knobs and path-style
    /// S3 (local servers): each test gets tables of its own.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            users_table: format!("{prefix}-users"),
            stats_table: format!("{prefix}-stats"),
            pool_table: format!("{prefix}-pool"),
            audio_bucket: format!("{prefix}-audio"),
            aws_attempt_timeout: Duration::from_millis(ATTEMPT_TIMEOUT_MS),
            aws_operation_timeout: Duration::from_millis(OPERATION_TIMEOUT_MS),
            aws_max_attempts: MAX_ATTEMPTS,
            s3_force_path_style: true,
        }
    }
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

    const NAMES: [(&str, &str); 4] = [
        ("USERS_TABLE", "prod-users"),
        ("STATS_TABLE", "prod-stats"),
        ("POOL_TABLE", "prod-pool"),
        ("AUDIO_BUCKET", "prod-audio"),
    ];

    #[test]
    fn resource_names_come_from_the_environment_and_knobs_default() {
        let config = Config::from_lookup(lookup(&NAMES)).unwrap();
        assert_eq!(
            (config.users_table.as_str(), config.audio_bucket.as_str()),
            ("prod-users", "prod-audio")
        );
        assert_eq!(config.aws_max_attempts, 3);
        assert_eq!(config.aws_operation_timeout, Duration::from_secs(5));
        assert!(
            !config.s3_force_path_style,
            "virtual-hosted S3 addressing in AWS"
        );
    }

    #[test]
    fn a_missing_or_blank_resource_name_stops_the_start() {
        for missing in ["USERS_TABLE", "STATS_TABLE", "POOL_TABLE", "AUDIO_BUCKET"] {
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
