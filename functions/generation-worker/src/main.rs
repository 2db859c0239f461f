use lambda_runtime::{run, service_fn, Error};
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    let state = son1k_app::AppState::from_env().await?;
    // The providers (their HTTP client, which loads the system's trust roots, and their keys from
    // SSM) are made on the first batch: nobody waits on a queue consumer's first invocation, and a
    // key that cannot be read fails that batch (delivered again) instead of the function's start.
    let providers = OnceCell::new();
    run(service_fn(|event| async {
        let providers = providers
            .get_or_try_init(|| son1k_app::providers::load(&state))
            .await?;
        generation_worker::handler(&state, providers, event).await
    }))
    .await
}
