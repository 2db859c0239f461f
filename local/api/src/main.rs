//! `local-api serve | init | reset daily|monthly | token --user ID [--admin] [--email E] [--ttl SECONDS]
//! | stripe-event --user ID [--tier T] [--status S] [--type T] | stripe-sign < BODY
//! | bench --bins DIR [--runs N] [--samples N] | bench-cold --bin PATH --name NAME [--runs N]
//! [--env K=V]...` (JSON for `local/bench.py`)
use local_api::{
    exposure_warning, init_stack, mint_token, router, JwtRules, LocalApi, TokenRequest,
};
use std::sync::Arc;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str).unwrap_or("serve") {
        "token" => token(&args),
        "init" => init().await,
        "reset" => reset(args.get(1).map_or("daily", String::as_str)).await,
        "serve" => serve().await,
        "stripe-event" => stripe_event(&args),
        "stripe-sign" => stripe_sign(),
        "bench" => bench(&args).await,
        "bench-cold" => bench_cold(&args).await,
        other => Err(format!(
            "unknown command {other:?}: use serve, init, reset, token, stripe-event, stripe-sign, bench or bench-cold"
        )
        .into()),
    }
}

/// The value after `--name` on the command line.
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Prints a bearer token the running local API accepts.
fn token(args: &[String]) -> Result<(), Failure> {
    let flag = |name: &str| flag(args, name);
    let user = flag("--user")
        .ok_or("usage: local-api token --user ID [--admin] [--email E] [--ttl SECONDS]")?;
    let ttl_seconds = flag("--ttl")
        .map(|t| t.parse())
        .transpose()?
        .unwrap_or(24 * 3600);
    let request = TokenRequest {
        user,
        email: flag("--email"),
        admin: args.iter().any(|a| a == "--admin"),
        ttl_seconds,
    };
    println!("{}", mint_token(&JwtRules::from_env()?, &request)?);
    Ok(())
}

/// Prints a real-shaped `customer.subscription.*` event for `--user` (what Stripe would send after
/// a checkout), to be signed with `stripe-sign` and posted to the webhook (`make stripe-event`).
fn stripe_event(args: &[String]) -> Result<(), Failure> {
    use local_api::stripe_events::SubEvent;
    use son1k_domain::tiers::Tier;
    let user = flag(args, "--user").ok_or(
        "usage: local-api stripe-event --user ID [--tier CREATOR|PRO|STUDIO] [--status active|past_due|unpaid|canceled] [--type customer.subscription.updated] [--customer cus_...]",
    )?;
    let tier: Tier = serde_json::from_value(flag(args, "--tier").unwrap_or("PRO".into()).into())?;
    let var = |name: &str| std::env::var(name).ok();
    let prices = son1k_domain::billing::PriceTable {
        creator: var("STRIPE_PRICE_CREATOR"),
        pro: var("STRIPE_PRICE_PRO"),
        studio: var("STRIPE_PRICE_STUDIO"),
        ..Default::default()
    };
    let price = prices.price_of(tier).ok_or(format!(
        "no price is configured for {tier} (STRIPE_PRICE_{tier})"
    ))?;
    let status = flag(args, "--status").unwrap_or_else(|| "active".into());
    let kind = flag(args, "--type").unwrap_or_else(|| "customer.subscription.updated".into());
    let now = chrono::Utc::now();
    let event = SubEvent {
        kind,
        status,
        price: price.to_owned(),
        created: now.to_rfc3339(),
        start: (now - chrono::Duration::days(1)).to_rfc3339(),
        end: (now + chrono::Duration::days(29)).to_rfc3339(),
        ..SubEvent::new(&user)
    };
    let event = SubEvent {
        customer: flag(args, "--customer").unwrap_or(event.customer.clone()),
        ..event
    };
    print!("{}", event.json());
    Ok(())
}

/// Measures what BENCHMARKS.md reports (see `local_api::bench`) and prints it as JSON.
async fn bench(args: &[String]) -> Result<(), Failure> {
    let bins =
        flag(args, "--bins").ok_or("usage: local-api bench --bins DIR [--runs N] [--samples N]")?;
    let runs = flag(args, "--runs")
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(20);
    let samples = flag(args, "--samples")
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(200);
    start_stripe_stub().await?;
    let report = local_api::bench::run(std::path::Path::new(&bins), runs, samples).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Cold starts of one binary (`make bench`'s trust-root and profile comparisons), as JSON.
async fn bench_cold(args: &[String]) -> Result<(), Failure> {
    let usage = "usage: local-api bench-cold --bin PATH --name NAME [--runs N] [--env K=V]...";
    let bin = flag(args, "--bin").ok_or(usage)?;
    let name = flag(args, "--name").ok_or(usage)?;
    let runs = flag(args, "--runs")
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(20);
    let env = args
        .windows(2)
        .filter(|w| w.first().is_some_and(|f| f == "--env"))
        .filter_map(|w| w.get(1)?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Vec<_>>();
    let cold = local_api::bench::cold_start(std::path::Path::new(&bin), &name, runs, &env).await?;
    println!("{}", serde_json::to_string(&cold)?);
    Ok(())
}

/// Reads a body on stdin and prints its `Stripe-Signature` for now, with `STRIPE_WEBHOOK_SECRET`.
fn stripe_sign() -> Result<(), Failure> {
    use std::io::Read;
    let secret =
        std::env::var("STRIPE_WEBHOOK_SECRET").map_err(|_| "STRIPE_WEBHOOK_SECRET is not set")?;
    let mut body = String::new();
    std::io::stdin().read_to_string(&mut body)?;
    print!(
        "{}",
        local_api::stripe_events::sign(&body, chrono::Utc::now().timestamp(), &secret)
    );
    Ok(())
}

/// Creates the tables and the bucket (kept if they exist) and seeds test_user_1.
async fn init() -> Result<(), Failure> {
    son1k_app::telemetry::init();
    let state = son1k_app::AppState::from_env().await?;
    init_stack(&state).await?;
    tracing::info!(users = %state.config.names.users_table, bucket = %state.config.names.audio_bucket, "tables, bucket and test_user_1 ready");
    Ok(())
}

/// What the EventBridge schedules do in AWS: `local-api reset daily|monthly`.
async fn reset(kind: &str) -> Result<(), Failure> {
    son1k_app::telemetry::init();
    let state = son1k_app::AppState::from_env().await?;
    let event = lambda_http::lambda_runtime::LambdaEvent::new(
        serde_json::json!({ "kind": kind }),
        lambda_http::lambda_runtime::Context::default(),
    );
    let report = scheduled_reset::handler(&state, event).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// With `STRIPE_STUB_PORT` set (as `make dev` does), serves the local Stripe stub on that loopback
/// port; billing then reaches it through `STRIPE_API_BASE`.
async fn start_stripe_stub() -> Result<(), Failure> {
    let Ok(port) = std::env::var("STRIPE_STUB_PORT") else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!("Stripe stub on http://{}", listener.local_addr()?);
    let stub = local_api::stripe_stub::StubState::new(std::time::Duration::ZERO);
    // The hosted pages deliver their events to this API, as Stripe would to the deployed webhook.
    if let Ok(secret) = std::env::var("STRIPE_WEBHOOK_SECRET") {
        let port = std::env::var("API_PORT").unwrap_or_else(|_| "8000".into());
        stub.deliver_to(
            &format!("http://127.0.0.1:{port}/api/tiers/webhook"),
            &secret,
        );
    }
    tokio::spawn(async move { local_api::stripe_stub::serve(listener, stub).await });
    Ok(())
}

/// With `PROVIDER_STUB_PORT` set (as `make dev` does), serves the local generation provider stub on
/// that loopback port (`GENERATION_PROVIDERS` points at it).
async fn start_provider_stub() -> Result<(), Failure> {
    let Ok(port) = std::env::var("PROVIDER_STUB_PORT") else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!(
        "generation provider stub on http://{}",
        listener.local_addr()?
    );
    let stub = local_api::provider_stub::ProviderStub::new();
    tokio::spawn(async move { local_api::provider_stub::serve(listener, stub).await });
    Ok(())
}

/// With `OLLAMA_STUB_PORT` set (as `make dev` does unless `OLLAMA_URL` names a real Ollama), serves
/// the local Ollama stub on that loopback port.
async fn start_ollama_stub() -> Result<(), Failure> {
    let Ok(port) = std::env::var("OLLAMA_STUB_PORT") else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!("Ollama stub on http://{}", listener.local_addr()?);
    let stub = local_api::ollama_stub::OllamaStub::new();
    tokio::spawn(async move { local_api::ollama_stub::serve(listener, stub).await });
    Ok(())
}

/// Serves every route on API_HOST:API_PORT (127.0.0.1:8000) until Ctrl-C.
async fn serve() -> Result<(), Failure> {
    let jwt = JwtRules::from_env()?;
    son1k_app::telemetry::init();
    start_stripe_stub().await?;
    let mut state = son1k_app::AppState::from_env()
        .await?
        .with_stripe()?
        .with_llm()?;
    start_provider_stub().await?;
    start_ollama_stub().await?;
    // The jobs queue and its worker, as the event source mapping runs it in AWS.
    let queue_name = std::env::var("JOBS_QUEUE_NAME").unwrap_or_else(|_| "son1k-jobs".into());
    let providers = son1k_app::providers::load(&state).await?;
    state.jobs_queue =
        Some(local_api::jobs::ensure_queue(&state, &queue_name, providers.len()).await?);
    tracing::info!(providers = providers.len(), queue = %queue_name, "generation worker polling");
    tokio::spawn(local_api::jobs::run_worker(state.clone(), providers));
    // Alerts: the table's stream and the retry queue, as their event source mappings run them.
    let retry_base = std::env::var("ALERT_RETRY_BASE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let sinks =
        son1k_app::delivery::parse_sinks(&std::env::var("ALERT_WEBHOOK_SINKS").unwrap_or_default());
    local_api::alerts::ensure_delivery(
        &mut state,
        "son1k-alert-retries",
        chrono::Duration::seconds(retry_base),
        sinks,
    )
    .await?;
    tokio::spawn(local_api::alerts::run(state.clone()));
    // Accounts: the deletion worker's queue and a Cognito user pool, on moto.
    local_api::accounts::ensure(&mut state, "son1k-accounts").await?;
    tokio::spawn(local_api::accounts::run(state.clone()));
    // Voices: the jobs and results queues, and a stub of the GPU worker between them.
    let voice_worker = local_api::voice_worker::VoiceWorker::start(&mut state, "son1k").await?;
    tokio::spawn(voice_worker.clone().run());
    // S3's ObjectCreated notifications, locally: uploads are accounted within a second or two.
    tokio::spawn(local_api::watch_audio(
        state.clone(),
        std::time::Duration::from_secs(1),
    ));
    let frontend_origin =
        std::env::var("FRONTEND_URL").unwrap_or_else(|_| "http://localhost:3000".into());
    let sign_in = local_api::sign_in::SignIn::new(jwt.clone(), frontend_origin.clone());
    let app = router(Arc::new(LocalApi {
        state,
        jwt,
        frontend_origin: Some(frontend_origin),
    }))
    .merge(local_api::sign_in::router(sign_in))
    .merge(local_api::voice_worker::router(voice_worker));
    let host = std::env::var("API_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    if let Some(warning) = exposure_warning(&host) {
        tracing::warn!("{warning}");
        eprintln!("\n{warning}\n");
    }
    let port = std::env::var("API_PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    tracing::info!(
        "local API on http://{} (token: `make -s token USER=test_user_1`, admin: add ADMIN=1)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
