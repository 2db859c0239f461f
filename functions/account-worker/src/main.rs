use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    let state = son1k_app::AppState::from_env()
        .await?
        .with_stripe()?
        .with_voice_jobs()?
        .with_cognito()?;
    run(service_fn(|event| account_worker::handler(&state, event))).await
}
