use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k::telemetry::init();
    let state = son1k::AppState::from_env().await?;
    let providers = son1k::providers::load(&state).await?;
    run(service_fn(|event| {
        generation_worker::handler(&state, &providers, event)
    }))
    .await
}
