//! `GET /api/me/alerts/settings` and `PUT /api/me/alerts/settings`: the thresholds, channels and
//! pace alert the caller hears of their usage by; `200` with the settings now in force.
//! `POST /api/me/alerts/webhook-secret`: a new secret webhook deliveries are signed with, replacing
//! any; `201`, the only answer that shows it (like every answer, `Cache-Control: no-store`).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_domain::alerts::AlertSettingsRequest;
use son1k_http::auth;
use son1k_http::request::{json, parse_json, render, request_id, HandlerResult, BODY_LIMIT};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    if req.method() == Method::POST {
        let secret = son1k_app::alerts::new_webhook_secret(state, &caller).await?;
        return json(
            StatusCode::CREATED,
            &serde_json::json!({ "secret": secret }),
        );
    }
    if req.method() == Method::PUT {
        let settings = parse_json::<AlertSettingsRequest>(&req, BODY_LIMIT)?.check()?;
        son1k_app::alerts::save_settings(state, &caller, &settings).await?;
        return json(StatusCode::OK, &settings);
    }
    let settings = son1k_app::alerts::settings(state, &caller).await?;
    json(StatusCode::OK, &settings)
}
