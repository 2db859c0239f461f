use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    let state = son1k_app::AppState::from_env().await?.with_stripe()?;
    run(service_fn(|req| tiers_preview::handler(&state, req))).await
}
