use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    // Closings and exports are queued for the account worker.
    let state = son1k_app::AppState::from_env().await?.with_account_jobs()?;
    run(service_fn(|req| account::handler(&state, req))).await
}
