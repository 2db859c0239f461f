//! The local API: serves every function's handler in-process behind the same routes as
//! `template.yaml`, verifying HS256 bearer tokens itself and handing handlers the same API Gateway v2
//! request context (JWT authorizer claims included) that AWS would. Dev and tests only.

// The Stripe stub writes Stripe's objects as `json!` literals, deeper than the default limit.
#![recursion_limit = "256"]

use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response as AxumResponse;
use axum::Router;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::{Map, Value};
use son1k_app::ports::Users;
use son1k_app::AppState;
use son1k_domain::ids::UserId;
use son1k_http::auth::format_list_claim;
use son1k_http::request::problem;
use son1k_http::routes::{match_route, Route, RouteMatch};
use son1k_http::ApiError;
use son1k_store::users::UserRecord;
use std::collections::HashMap;
use std::sync::Arc;

pub mod accounts;
pub mod alerts;
pub mod bench;
pub mod jobs;
pub mod ollama_stub;
pub mod provider_stub;
pub mod sign_in;
pub mod stripe_events;
mod stripe_pages;
pub mod stripe_stub;
pub mod voice_worker;
pub mod webhook_sink;

pub const DEFAULT_JWT_SECRET: &str = "local-dev-secret";
/// API Gateway's own cap on a request body is far larger than any route's; the handlers enforce theirs.
const MAX_BODY: usize = 1024 * 1024;

/// Everything the local API needs: the handlers' state, the token rules, the allowed CORS origin.
#[derive(Debug, Clone)]
pub struct LocalApi {
    pub state: AppState,
    pub jwt: JwtRules,
    pub frontend_origin: Option<String>,
}

/// Runs one function's handler, exactly as its Lambda binary would.
pub async fn invoke(
    function: &str,
    state: &AppState,
    req: lambda_http::Request,
) -> lambda_http::Response<Body> {
    // Each handler's future on the heap: the largest one would otherwise sit inside every caller's
    // future, and in a debug build that outgrew a test thread's 2 MiB stack (pixel-chat's).
    let result = match function {
        "health" => Box::pin(health::handler(state, req)).await,
        "tiers-list" => Box::pin(tiers_list::handler(state, req)).await,
        "tiers-limits" => Box::pin(tiers_limits::handler(state, req)).await,
        "record-generation" => Box::pin(record_generation::handler(state, req)).await,
        "admin-tier" => Box::pin(admin_tier::handler(state, req)).await,
        "admin-audit" => Box::pin(admin_audit::handler(state, req)).await,
        "account" => Box::pin(account::handler(state, req)).await,
        "checkout" => Box::pin(checkout::handler(state, req)).await,
        "portal" => Box::pin(portal::handler(state, req)).await,
        "stripe-webhook" => Box::pin(stripe_webhook::handler(state, req)).await,
        "upload-url" => Box::pin(upload_url::handler(state, req)).await,
        "audio-get" => Box::pin(audio_get::handler(state, req)).await,
        "ranking" => Box::pin(ranking::handler(state, req)).await,
        "pool-like" => Box::pin(pool_like::handler(state, req)).await,
        "pool-play" => Box::pin(pool_play::handler(state, req)).await,
        "pool-contribute" => Box::pin(pool_contribute::handler(state, req)).await,
        "pool-list" => Box::pin(pool_list::handler(state, req)).await,
        "pool-claim" => Box::pin(pool_claim::handler(state, req)).await,
        "analytics-summary" => Box::pin(analytics_summary::handler(state, req)).await,
        "generation-submit" => Box::pin(generation_submit::handler(state, req)).await,
        "generation-status" => Box::pin(generation_status::handler(state, req)).await,
        "lyrics-create" => Box::pin(lyrics_create::handler(state, req)).await,
        "lyrics-list" => Box::pin(lyrics_list::handler(state, req)).await,
        "lyrics-get" => Box::pin(lyrics_get::handler(state, req)).await,
        "lyrics-update" => Box::pin(lyrics_update::handler(state, req)).await,
        "pixel-chat" => Box::pin(pixel_chat::handler(state, req)).await,
        "alert-settings" => Box::pin(alert_settings::handler(state, req)).await,
        "alerts-list" => Box::pin(alerts_list::handler(state, req)).await,
        "tiers-preview" => Box::pin(tiers_preview::handler(state, req)).await,
        "voices" => Box::pin(voices::handler(state, req)).await,
        "voice-delete" => Box::pin(voice_delete::handler(state, req)).await,
        "credits" => Box::pin(credits::handler(state, req)).await,
        _ => Box::pin(fallback::handler(state, req)).await,
    };
    // A Lambda error is an opaque 500 from API Gateway; it never happens for expected outcomes.
    result.unwrap_or_else(|err| {
        tracing::error!(error = %err, function, "handler failed");
        problem(&ApiError::internal())
    })
}

/// The axum app: one catch-all handler that routes by `son1k_http::routes`.
pub fn router(api: Arc<LocalApi>) -> Router {
    Router::new().fallback(serve_request).with_state(api)
}

async fn serve_request(
    State(api): State<Arc<LocalApi>>,
    req: axum::extract::Request,
) -> AxumResponse {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let origin = req.headers().get("origin").cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut response = route(&api, req).await;
    // Answers of the local API itself (401, 413) name their request too, as the handlers' do.
    if !response
        .headers()
        .contains_key(son1k_http::request::REQUEST_ID_HEADER)
    {
        if let Ok(id) = HeaderValue::from_str(&ulid::Ulid::generate().to_string()) {
            response
                .headers_mut()
                .insert(son1k_http::request::REQUEST_ID_HEADER, id);
        }
    }
    // API Gateway's CORS configuration (template.yaml), applied to what the integration answered.
    if let (Some(origin), Some(allowed)) = (origin, api.frontend_origin.as_deref()) {
        if origin.as_bytes() == allowed.as_bytes() {
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", origin);
            headers.insert("vary", HeaderValue::from_static("origin"));
            if preflight {
                headers.insert(
                    "access-control-allow-methods",
                    HeaderValue::from_static(CORS_ALLOW_METHODS),
                );
                headers.insert(
                    "access-control-allow-headers",
                    HeaderValue::from_static(CORS_ALLOW_HEADERS),
                );
                headers.insert("access-control-max-age", HeaderValue::from_static("600"));
            } else {
                headers.insert(
                    "access-control-expose-headers",
                    HeaderValue::from_static(CORS_EXPOSE_HEADERS),
                );
            }
        }
    }
    let (status, ms) = (response.status(), started.elapsed().as_secs_f64() * 1000.0);
    // A 5xx is an error line, seen at any log level (local/fuzz.sh looks for these).
    if status.is_server_error() {
        tracing::error!("{method} {path} -> {} in {ms:.1} ms", status.as_u16());
    } else {
        tracing::info!("{method} {path} -> {} in {ms:.1} ms", status.as_u16());
    }
    response
}

/// The CORS settings of `HttpApi` in template.yaml (a test compares them).
pub const CORS_ALLOW_METHODS: &str = "GET,POST,PUT,DELETE";
pub const CORS_ALLOW_HEADERS: &str = "authorization,content-type,if-match";
pub const CORS_EXPOSE_HEADERS: &str = "retry-after,allow,x-request-id,etag";

/// What API Gateway does with a request no route takes: the `$default` route, public, served by the
/// fallback function; `OPTIONS /{proxy+}` (preflights) goes to the same function.
const DEFAULT_ROUTE: Route = Route {
    method: "ANY",
    path: "$default",
    function: "fallback",
    public: true,
};

async fn route(api: &LocalApi, req: axum::extract::Request) -> AxumResponse {
    let (route, params) = match match_route(req.method().as_str(), req.uri().path()) {
        RouteMatch::Found(route, params) => (route, params),
        RouteMatch::WrongMethod(_) | RouteMatch::NotFound => (&DEFAULT_ROUTE, Vec::new()),
    };
    let claims = if route.public {
        None
    } else {
        match bearer(req.headers()).and_then(|token| api.jwt.verify(token)) {
            Some(claims) => Some(claims),
            None => return to_axum(problem(&ApiError::unauthorized())),
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return to_axum(problem(&ApiError::payload_too_large(MAX_BODY))),
    };
    let query: QueryMap = parts.uri.query().unwrap_or("").parse().unwrap_or_default();
    let context = request_context(
        route,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        claims,
    );
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(err) => Body::Binary(err.into_bytes()),
        }
    };
    let request = lambda_http::Request::from_parts(parts, body)
        .with_path_parameters(params.into_iter().collect::<HashMap<_, _>>())
        .with_query_string_parameters(query)
        .with_request_context(RequestContext::ApiGatewayV2(context));
    to_axum(invoke(route.function, &api.state, request).await)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The request context API Gateway's HTTP API builds; protected routes carry the JWT claims.
pub fn request_context(
    route: &Route,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    claims: Option<HashMap<String, String>>,
) -> ApiGatewayV2httpRequestContext {
    let now = Utc::now();
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.route_key = Some(if route.path == DEFAULT_ROUTE.path {
        DEFAULT_ROUTE.path.to_owned()
    } else {
        format!("{} {}", route.method, route.path)
    });
    ctx.stage = Some("$default".into());
    ctx.account_id = Some("000000000000".into());
    ctx.apiid = Some("local".into());
    ctx.domain_name = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    ctx.request_id = Some(ulid::Ulid::generate().to_string());
    ctx.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    ctx.time_epoch = now.timestamp_millis();
    ctx.http.method = method.clone();
    ctx.http.path = Some(path.to_owned());
    ctx.http.protocol = Some("HTTP/1.1".into());
    ctx.http.source_ip = Some("127.0.0.1".into());
    ctx.http.user_agent = headers
        .get("user-agent")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    if let Some(claims) = claims {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims;
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        ctx.authorizer = Some(authorizer);
    }
    ctx
}

fn to_axum(response: lambda_http::Response<Body>) -> AxumResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}

/// How far a token's time claims may be off the local clock, as an authorizer allows for skew.
pub const CLOCK_SKEW_SECONDS: u64 = 60;
/// The issuer and audience `make token` writes when none is configured.
pub const LOCAL_ISSUER: &str = "son1k-local";
pub const LOCAL_AUDIENCE: &str = "son1k-local";

/// How the local API checks a bearer token, as API Gateway's JWT authorizer does: signature, `exp`
/// in the future and `nbf`/`iat` not (within `CLOCK_SKEW_SECONDS`), `iss` equal to the configured
/// issuer and `aud` or `client_id` among the configured audiences, when those are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRules {
    secret: String,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
}

impl JwtRules {
    /// Rules with only a secret; an empty secret is refused (anyone could sign with it).
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.is_empty() {
            return Err(
                "LOCAL_JWT_SECRET is empty: set a secret (the default is local-dev-secret)".into(),
            );
        }
        Ok(Self {
            secret: secret.to_owned(),
            issuer: None,
            audiences: Vec::new(),
        })
    }

    /// `LOCAL_JWT_SECRET` (unset: the public default; empty: refused), `LOCAL_JWT_ISSUER`,
    /// `LOCAL_JWT_AUDIENCE` (comma-separated).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let secret = get("LOCAL_JWT_SECRET").unwrap_or_else(|| DEFAULT_JWT_SECRET.to_owned());
        let mut rules = Self::new(&secret)?;
        rules.issuer = get("LOCAL_JWT_ISSUER").filter(|v| !v.is_empty());
        rules.audiences = get("LOCAL_JWT_AUDIENCE")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(rules)
    }

    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The token's claims serialised the way API Gateway's JWT authorizer hands them to a Lambda
    /// (strings, arrays as `[a b]`), or `None` when the authorizer would refuse it.
    pub fn verify(&self, token: &str) -> Option<HashMap<String, String>> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(if self.issuer.is_some() {
            &["exp", "iss"][..]
        } else {
            &["exp"][..]
        });
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false; // `aud` or `client_id`, checked below
        validation.leeway = CLOCK_SKEW_SECONDS;
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &DecodingKey::from_secret(self.secret.as_bytes()),
            &validation,
        )
        .map_err(|err| tracing::debug!(error = %err, "token rejected"))
        .ok()?
        .claims;
        if !self.issued_in_the_past(&claims) || !self.audience_matches(&claims) {
            return None;
        }
        Some(
            claims
                .into_iter()
                .map(|(name, value)| (name, claim_string(value)))
                .collect(),
        )
    }

    fn issued_in_the_past(&self, claims: &Map<String, Value>) -> bool {
        let now = Utc::now().timestamp();
        let skew = i64::try_from(CLOCK_SKEW_SECONDS).unwrap_or(i64::MAX);
        match claims.get("iat") {
            None => true,
            Some(iat) => iat
                .as_i64()
                .is_some_and(|iat| iat <= now.saturating_add(skew)),
        }
    }

    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        if self.audiences.is_empty() {
            return true;
        }
        let named = |value: Option<&Value>| match value {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        named(claims.get("aud"))
            .into_iter()
            .chain(named(claims.get("client_id")))
            .any(|aud| self.audiences.contains(&aud))
    }
}

/// A warning for a local API that listens beyond this machine: its default secret is public, so
/// anyone who can reach it can mint an admin token.
pub fn exposure_warning(host: &str) -> Option<String> {
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "WARNING: API_HOST={host} is not a loopback address: the local API is reachable from other machines, \
             and anyone who knows LOCAL_JWT_SECRET (the default one is public) can mint an admin token. \
             It is a development server; keep it on 127.0.0.1."
        )
    })
}

fn claim_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(items) => format_list_claim(
            &items
                .into_iter()
                .map(|v| {
                    if let Value::String(s) = v {
                        s
                    } else {
                        v.to_string()
                    }
                })
                .collect::<Vec<_>>(),
        ),
        other => other.to_string(),
    }
}

/// What `make token` puts in a local token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub user: String,
    pub email: Option<String>,
    pub admin: bool,
    pub ttl_seconds: i64,
}

/// Mints a token shaped like a Cognito ID token (`sub`, `email`, `cognito:username`, `cognito:groups`),
/// which `rules` accept: their secret, issuer and first audience.
pub fn mint_token(
    rules: &JwtRules,
    request: &TokenRequest,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("sub".into(), request.user.clone().into());
    claims.insert(
        "email".into(),
        request
            .email
            .clone()
            .unwrap_or_else(|| format!("{}@local.test", request.user))
            .into(),
    );
    // Cognito verifies the email at sign-up (AutoVerifiedAttributes).
    claims.insert("email_verified".into(), true.into());
    claims.insert("cognito:username".into(), request.user.clone().into());
    if request.admin {
        claims.insert("cognito:groups".into(), serde_json::json!(["admin"]));
    }
    claims.insert("token_use".into(), "id".into());
    claims.insert(
        "iss".into(),
        rules.issuer.as_deref().unwrap_or(LOCAL_ISSUER).into(),
    );
    claims.insert(
        "aud".into(),
        rules
            .audiences
            .first()
            .map_or(LOCAL_AUDIENCE, String::as_str)
            .into(),
    );
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + request.ttl_seconds).into());
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(rules.secret.as_bytes()),
    )
}

/// Creates the tables and bucket from `store/schema.rs` and seeds `test_user_1` (FREE).
pub async fn init_stack(state: &AppState) -> Result<(), son1k_store::StoreError> {
    put_local_secrets(state).await?;
    son1k_store::schema::create_tables(state.dynamo(), &state.config.names).await?;
    son1k_store::schema::create_bucket(state.s3(), &state.config.names).await?;
    let id = UserId::parse("test_user_1").map_err(son1k_store::StoreError::invalid_request)?;
    let seed = UserRecord::new(
        id,
        Some("test@son1k.com".into()),
        Some("TestCreator".into()),
        state.clock.now(),
    );
    state.users().create(seed).await?;
    Ok(())
}

/// Writes the local keys (`STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET`, `POOL_CURSOR_SECRET` from
/// local/dev-env.sh, values that only work locally) into the local Secrets Manager under the names
/// the functions read (`STRIPE_SECRET_NAME`, `APP_SECRET_NAME`): as in AWS, no function takes a
/// key from its environment. A secret that exists gets the values as a new version.
pub async fn put_local_secrets(state: &AppState) -> Result<(), son1k_store::StoreError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut secrets = Vec::new();
    if let (Some(name), Some(key), Some(webhook)) = (
        state.config.billing.secret_name.clone(),
        var("STRIPE_SECRET_KEY"),
        var("STRIPE_WEBHOOK_SECRET"),
    ) {
        secrets.push((
            name,
            serde_json::json!({"secret_key": key, "webhook_secret": webhook}),
        ));
    }
    if let (Some(name), Some(cursor)) = (
        state.config.app_secret_name.clone(),
        var("POOL_CURSOR_SECRET"),
    ) {
        secrets.push((name, serde_json::json!({ "cursor_secret": cursor })));
    }
    let client = state.secrets.client();
    for (name, value) in secrets {
        let created = client
            .create_secret()
            .name(&name)
            .secret_string(value.to_string())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(value.to_string())
                    .send()
                    .await
                    .map_err(|err| son1k_store::sdk_failure("PutSecretValue", err))?;
            }
            Err(err) => return Err(son1k_store::sdk_failure("CreateSecret", err)),
        }
        state.secrets.forget(&name).await;
    }
    Ok(())
}

/// The local stand-in for S3's ObjectCreated notifications: every `every`, lists `audio/` in the
/// bucket and hands each new or changed object (by key and ETag) to the storage-events handler, as
/// S3 would. Accounting is idempotent, so seeing an object again after a restart changes nothing.
pub async fn watch_audio(state: AppState, every: std::time::Duration) {
    let mut seen: HashMap<String, String> = HashMap::new();
    loop {
        watch_once(&state, &mut seen).await;
        tokio::time::sleep(every).await;
    }
}

/// One pass of `watch_audio`: the objects new since `seen` handed to storage-events; how many.
pub async fn watch_once(state: &AppState, seen: &mut HashMap<String, String>) -> usize {
    match new_objects(state, seen).await {
        Ok(keys) if !keys.is_empty() => {
            let event = storage_events::event_for(&state.config.names.audio_bucket, &keys);
            let invocation =
                lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default());
            if let Err(err) = storage_events::handler(state, invocation).await {
                tracing::warn!(error = %err, "storage-events failed; retrying on the next pass");
                keys.iter().for_each(|k| {
                    seen.remove(k);
                });
                return 0;
            }
            keys.len()
        }
        Ok(_) => 0,
        Err(err) => {
            tracing::debug!(error = %err, "listing the audio bucket failed");
            0
        }
    }
}

/// Keys under `audio/` and `voices/` (the bucket's two notifications) whose ETag is not the one
/// last seen.
async fn new_objects(
    state: &AppState,
    seen: &mut HashMap<String, String>,
) -> Result<Vec<String>, aws_sdk_s3::Error> {
    let mut fresh = Vec::new();
    for prefix in ["audio/", "voices/"] {
        let mut pages = state
            .s3()
            .list_objects_v2()
            .bucket(&state.config.names.audio_bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.map_err(aws_sdk_s3::Error::from)?.contents() {
                let (Some(key), Some(etag)) = (object.key(), object.e_tag()) else {
                    continue;
                };
                if seen.get(key).map(String::as_str) != Some(etag) {
                    seen.insert(key.to_owned(), etag.to_owned());
                    fresh.push(key.to_owned());
                }
            }
        }
    }
    Ok(fresh)
}
