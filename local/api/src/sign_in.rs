//! The local stand-in for Cognito's hosted sign-in, at the same paths (`/oauth2/authorize`,
//! `/oauth2/token`, `/logout`), so the web app runs one sign-in flow (authorization code + PKCE)
//! locally and in AWS, only its base URL differing. Dev and tests only: the page asks for no
//! password and signs in as whichever user is typed. It is part of the local API binary and never
//! of a Lambda.
//!
//! As Cognito's does, the page remembers who signed in (a cookie on this origin), so an app that
//! lost its in-memory token on a reload gets a new one without asking again; `prompt=login` or
//! `/logout` forgets.

use crate::{mint_token, JwtRules, TokenRequest};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an authorization code may wait for its exchange (Cognito's: 5 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The ID token's lifetime (Cognito's default: one hour).
pub const TOKEN_TTL_SECONDS: i64 = 3600;
/// The cookie that remembers who signed in on this origin.
const SESSION_COOKIE: &str = "son1k_local_session";

/// The sign-in's state: the token rules, where the app may be sent back to, the codes not yet
/// exchanged.
#[derive(Debug)]
pub struct SignIn {
    jwt: JwtRules,
    frontend_origin: String,
    codes: Mutex<HashMap<String, Grant>>,
}

/// What a code stands for until it is exchanged (once).
#[derive(Debug, Clone)]
struct Grant {
    who: Who,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    issued: Instant,
}

/// The user a sign-in is for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Who {
    user: String,
    admin: bool,
}

/// The authorization request's parameters (RFC 6749 §4.1.1 with PKCE's, RFC 7636 §4.3).
#[derive(Debug, Deserialize)]
struct Authorize {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    code_challenge_method: String,
    prompt: Option<String>,
}

/// The token request's parameters (RFC 6749 §4.1.3, RFC 7636 §4.5).
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

/// The page's form.
#[derive(Debug, Deserialize)]
struct Chosen {
    user: String,
    admin: Option<String>,
}

impl SignIn {
    pub fn new(jwt: JwtRules, frontend_origin: String) -> Arc<Self> {
        Arc::new(Self {
            jwt,
            frontend_origin,
            codes: Mutex::default(),
        })
    }

    /// The client id the app signs in with: the tokens' audience, as a Cognito app client's id is.
    fn client_id(&self) -> &str {
        self.jwt
            .audiences
            .first()
            .map_or(crate::LOCAL_AUDIENCE, String::as_str)
    }
}

/// `/oauth2/authorize` (GET: the page, or straight back when signed in; POST: the page's answer),
/// `/oauth2/token` and `/logout`.
pub fn router(sign_in: Arc<SignIn>) -> Router {
    Router::new()
        .route("/oauth2/authorize", get(authorize_page).post(authorize))
        .route("/oauth2/token", post(token))
        .route("/logout", get(logout))
        .with_state(sign_in)
}

type Shared = State<Arc<SignIn>>;

async fn authorize_page(
    State(sign_in): Shared,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let request = match checked_request(&sign_in, query.as_deref()) {
        Ok(request) => request,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let remembered = session(&headers).filter(|_| request.prompt.as_deref() != Some("login"));
    match remembered {
        Some(who) => back_with_code(&sign_in, &request, who),
        None => page().into_response(),
    }
}

async fn authorize(State(sign_in): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let request = match checked_request(&sign_in, query.as_deref()) {
        Ok(request) => request,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let Ok(chosen) = serde_urlencoded::from_bytes::<Chosen>(&body) else {
        return (StatusCode::BAD_REQUEST, "the form needs a user").into_response();
    };
    let user = chosen.user.trim();
    if !valid_user(user) {
        return (
            StatusCode::BAD_REQUEST,
            "a user id is 1 to 64 letters, digits, _ or -",
        )
            .into_response();
    }
    let who = Who {
        user: user.to_owned(),
        admin: chosen.admin.is_some(),
    };
    let mut response = back_with_code(&sign_in, &request, who.clone());
    let cookie = format!(
        "{SESSION_COOKIE}={}{}; Path=/; HttpOnly; SameSite=Lax",
        who.user,
        if who.admin { ".admin" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The authorization request, when it is one this server answers: a code with S256 PKCE, for our
/// client, back to the app's origin. Anything else is refused here, never redirected.
fn checked_request(sign_in: &SignIn, query: Option<&str>) -> Result<Authorize, String> {
    let request: Authorize = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|err| format!("invalid authorization request: {err}"))?;
    if request.response_type != "code" || request.code_challenge_method != "S256" {
        return Err("only response_type=code with code_challenge_method=S256".into());
    }
    if request.client_id != sign_in.client_id() {
        return Err("unknown client_id".into());
    }
    if !on_origin(&request.redirect_uri, &sign_in.frontend_origin) {
        return Err("redirect_uri is not on the app's origin (FRONTEND_URL)".into());
    }
    Ok(request)
}

/// A redirect to the app with a fresh code (and the app's `state`).
fn back_with_code(sign_in: &SignIn, request: &Authorize, who: Who) -> Response {
    let code = ulid::Ulid::generate().to_string();
    let grant = Grant {
        who,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        challenge: request.code_challenge.clone(),
        issued: Instant::now(),
    };
    let mut codes = sign_in.codes.lock().unwrap_or_else(|p| p.into_inner());
    codes.retain(|_, g| g.issued.elapsed() < CODE_LIFETIME);
    codes.insert(code.clone(), grant);
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let separator = if request.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!("{}{separator}{query}", request.redirect_uri)).into_response()
}

/// Exchanges a code for an ID token; readable by the app's origin, as Cognito's token endpoint is.
async fn token(State(sign_in): Shared, body: Bytes) -> Response {
    let mut response = exchange(&sign_in, &body);
    if let Ok(origin) = HeaderValue::from_str(&sign_in.frontend_origin) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

fn exchange(sign_in: &SignIn, body: &[u8]) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(body) else {
        return oauth_error("invalid_request");
    };
    if form.grant_type != "authorization_code" {
        return oauth_error("unsupported_grant_type");
    }
    let grant = sign_in
        .codes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&form.code);
    let Some(grant) = grant.filter(|g| g.issued.elapsed() < CODE_LIFETIME) else {
        return oauth_error("invalid_grant");
    };
    if grant.client_id != form.client_id
        || grant.redirect_uri != form.redirect_uri
        || challenge_of(&form.code_verifier) != grant.challenge
    {
        return oauth_error("invalid_grant");
    }
    let request = TokenRequest {
        user: grant.who.user,
        email: None,
        admin: grant.who.admin,
        ttl_seconds: TOKEN_TTL_SECONDS,
    };
    match mint_token(&sign_in.jwt, &request) {
        Ok(id_token) => Json(serde_json::json!({
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECONDS,
        }))
        .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not sign the token",
        )
            .into_response(),
    }
}

/// Forgets who signed in and sends the browser to `logout_uri` (on the app's origin).
async fn logout(State(sign_in): Shared, RawQuery(query): RawQuery) -> Response {
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let target = params
        .get("logout_uri")
        .filter(|uri| on_origin(uri, &sign_in.frontend_origin))
        .cloned()
        .unwrap_or_else(|| format!("{}/", sign_in.frontend_origin));
    let mut response = Redirect::to(&target).into_response();
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// RFC 7636's S256: BASE64URL(SHA256(verifier)), unpadded.
fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `uri` is on `origin` (the same scheme, host and port, then a path).
fn on_origin(uri: &str, origin: &str) -> bool {
    uri.strip_prefix(origin)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A user id as the API takes one (`UserId`): 1 to 64 letters, digits, `_` or `-`.
fn valid_user(user: &str) -> bool {
    son1k_domain::ids::UserId::parse(user).is_ok()
}

/// Who the session cookie names, if any.
fn session(headers: &HeaderMap) -> Option<Who> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .and_then(|(_, value)| {
            let (user, admin) = match value.strip_suffix(".admin") {
                Some(user) => (user, true),
                None => (value, false),
            };
            valid_user(user).then(|| Who {
                user: user.to_owned(),
                admin,
            })
        })
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": code })),
    )
        .into_response()
}

/// The sign-in page: a user id (the seeded `test_user_1` by default) and whether to be an admin.
fn page() -> Html<String> {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign in (local)</title><link rel=\"icon\" href=\"data:,\">\
         <style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}\
         label{display:block;margin:1rem 0 .25rem}input[type=text]{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box}\
         button{margin-top:1.5rem;font-size:1rem;padding:.6rem 1.2rem}</style></head>\
         <body><main><h1>Sign in to Son1kVers3</h1>\
         <p>Local development: no password. Any user id signs in as that user; a new one starts on FREE.</p>\
         <form method=\"post\"><label for=\"user\">User id</label>\
         <input type=\"text\" id=\"user\" name=\"user\" value=\"test_user_1\" required pattern=\"[A-Za-z0-9_\\-]{1,64}\" autocomplete=\"username\">\
         <label><input type=\"checkbox\" name=\"admin\" value=\"1\"> Admin</label>\
         <button type=\"submit\">Sign in</button></form></main></body></html>"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636, Appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_redirect_must_stay_on_the_apps_origin() {
        let origin = "http://localhost:3000";
        assert!(on_origin("http://localhost:3000/callback", origin));
        assert!(on_origin("http://localhost:3000", origin));
        assert!(!on_origin("http://localhost:30000/callback", origin));
        assert!(!on_origin(
            "http://localhost:3000.evil.test/callback",
            origin
        ));
        assert!(!on_origin("https://localhost:3000/callback", origin));
    }

    #[test]
    fn the_session_cookie_names_a_valid_user_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; son1k_local_session=alice.admin"),
        );
        assert_eq!(
            session(&headers),
            Some(Who {
                user: "alice".into(),
                admin: true
            })
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("son1k_local_session=../x"),
        );
        assert_eq!(session(&headers), None);
    }
}
