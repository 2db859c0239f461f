use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    // The Stripe client reads a subscription back only to settle a same-second tie of two events.
    let state = son1k_app::AppState::from_env().await?.with_stripe()?;
    run(service_fn(|req| stripe_webhook::handler(&state, req))).await
}
