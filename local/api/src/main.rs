//! `local-api serve | init | reset daily|monthly | token --user ID [--admin] [--email E] [--ttl SECONDS]`
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
        other => Err(format!("unknown command {other:?}: use serve, init, reset or token").into()),
    }
}

/// Prints a bearer token the running local API accepts.
fn token(args: &[String]) -> Result<(), Failure> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
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

/// Creates the tables and the bucket (kept if they exist) and seeds test_user_1.
async fn init() -> Result<(), Failure> {
    son1k::telemetry::init();
    let state = son1k::AppState::from_env().await?;
    init_stack(&state).await?;
    tracing::info!(users = %state.config.users_table, bucket = %state.config.audio_bucket, "tables, bucket and test_user_1 ready");
    Ok(())
}

/// What the EventBridge schedules do in AWS: `local-api reset daily|monthly`.
async fn reset(kind: &str) -> Result<(), Failure> {
    son1k::telemetry::init();
    let state = son1k::AppState::from_env().await?;
    let event = lambda_http::lambda_runtime::LambdaEvent::new(
        serde_json::json!({ "kind": kind }),
        lambda_http::lambda_runtime::Context::default(),
    );
    let report = scheduled_reset::handler(&state, event).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Serves every route on API_HOST:API_PORT (127.0.0.1:8000) until Ctrl-C.
async fn serve() -> Result<(), Failure> {
    let jwt = JwtRules::from_env()?;
    son1k::telemetry::init();
    let state = son1k::AppState::from_env().await?;
    let frontend_origin =
        Some(std::env::var("FRONTEND_URL").unwrap_or_else(|_| "http://localhost:3000".into()));
    let app = router(Arc::new(LocalApi {
        state,
        jwt,
        frontend_origin,
    }));
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
