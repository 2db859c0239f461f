use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    // Answers from code alone: no AWS client, no credentials, no configuration.
    let clock = son1k_app::clock::SystemClock;
    run(service_fn(|req| health::respond(&clock, req))).await
}
