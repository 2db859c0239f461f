use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k::telemetry::init();
    // Answers from code alone: no AWS client is configured, no credentials read.
    let state = son1k::AppState::without_services();
    run(service_fn(|req| health::handler(&state, req))).await
}
