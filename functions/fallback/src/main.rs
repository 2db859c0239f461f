use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    // Answers from the route table alone: no AWS client, no credentials, no configuration.
    run(service_fn(fallback::respond)).await
}
