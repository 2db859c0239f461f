use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    let state = son1k_app::AppState::from_env().await?.with_jobs_queue()?;
    run(service_fn(|req| generation_submit::handler(&state, req))).await
}
