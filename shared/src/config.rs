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

impl Config {
    /// Reads the environment; every name has the local stack's default.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as `from_env` over any lookup, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name: &str, default: &str| {
            get(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let millis = |name: &str, default: u64| {
            Duration::from_millis(get(name).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        Self {
            users_table: text("USERS_TABLE", "son1k-users"),
            stats_table: text("STATS_TABLE", "son1k-stats"),
            pool_table: text("POOL_TABLE", "son1k-pool"),
            audio_bucket: text("AUDIO_BUCKET", "son1k-audio"),
            aws_attempt_timeout: millis("AWS_ATTEMPT_TIMEOUT_MS", 2_000),
            aws_operation_timeout: millis("AWS_OPERATION_TIMEOUT_MS", 5_000),
            aws_max_attempts: get("AWS_MAX_ATTEMPTS")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n >= 1)
                .unwrap_or(3),
            s3_force_path_style: get("S3_FORCE_PATH_STYLE")
                .is_some_and(|v| v == "true" || v == "1"),
        }
    }

    /// A config whose resource names all start with `prefix`: each test gets tables of its own.
    pub fn with_prefix(prefix: &str) -> Self {
        let base = Self::from_lookup(|_| None);
        Self {
            users_table: format!("{prefix}-users"),
            stats_table: format!("{prefix}-stats"),
            pool_table: format!("{prefix}-pool"),
            audio_bucket: format!("{prefix}-audio"),
            s3_force_path_style: true,
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_the_local_stack_resources() {
        let config = Config::from_lookup(|_| None);
        assert_eq!(config.users_table, "son1k-users");
        assert_eq!(config.audio_bucket, "son1k-audio");
        assert_eq!(config.aws_max_attempts, 3);
        assert!(
            !config.s3_force_path_style,
            "virtual-hosted S3 addressing in AWS"
        );
    }

    #[test]
    fn environment_overrides_defaults_and_bad_numbers_fall_back() {
        let config = Config::from_lookup(|name| match name {
            "USERS_TABLE" => Some("prod-users".into()),
            "AWS_MAX_ATTEMPTS" => Some("zero".into()),
            "AWS_ATTEMPT_TIMEOUT_MS" => Some("250".into()),
            "S3_FORCE_PATH_STYLE" => Some("true".into()),
            _ => None,
        });
        assert_eq!(config.users_table, "prod-users");
        assert_eq!(config.aws_max_attempts, 3);
        assert_eq!(config.aws_attempt_timeout, Duration::from_millis(250));
        assert!(config.s3_force_path_style);
    }
}
