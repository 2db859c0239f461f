use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    son1k_app::telemetry::init();
    // Answers from code and `CREDIT_PACKS` alone: no AWS client, no credentials.
    let packs =
        son1k_domain::credits::Packs::parse(&std::env::var("CREDIT_PACKS").unwrap_or_default())
            .map_err(|problem| format!("CREDIT_PACKS: {problem}"))?;
    let packs = &packs;
    run(service_fn(move |req| tiers_list::respond(packs, req))).await
}
