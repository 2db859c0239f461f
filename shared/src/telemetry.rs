//! Logging: JSON lines in Lambda (CloudWatch picks the request id from the runtime's span), compact
//! text locally. Level from `RUST_LOG` (default `info`). Never log tokens, secrets or emails.

use tracing_subscriber::EnvFilter;

/// async-stripe's webhook verifier also parses each event with its strict typed model and logs an
/// error when a field is missing or new; we read events tolerantly ourselves, so that is noise.
const QUIET: &str = "stripe_webhook=off";

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(QUIET.parse().unwrap_or_default());
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests, local API) is harmless: the first subscriber stays.
    let _ = if in_lambda {
        builder
            .json()
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
