//! Logging: JSON lines in Lambda (CloudWatch picks the request id from the runtime's span), compact
//! text locally. Level from `RUST_LOG` (default `info`). Never log tokens, secrets or emails.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `RUST_LOG` as `level` or `level,target=level,...` (targets by prefix, no regular expressions:
/// `tracing_subscriber`'s `Targets`, which keeps the regex engine out of every binary).
fn filter() -> Targets {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    directives
        .parse::<Targets>()
        .or_else(|_| "info".parse::<Targets>())
        .unwrap_or_default()
}

pub fn init() {
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let registry = tracing_subscriber::registry().with(filter());
    // A second init (tests, local API) is harmless: the first subscriber stays.
    let _ = if in_lambda {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .without_time()
                    .with_target(false),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_target(false),
            )
            .try_init()
    };
}
