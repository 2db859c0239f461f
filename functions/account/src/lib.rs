//! A user's account as a whole:
//! - `DELETE /api/me {"confirm": "DELETE"}` → `202` the deletion's receipt: the account is closed at
//!   once (every route refuses its tokens from then on) and its data deleted by the account worker;
//!   asking again answers the same receipt. `400` without the confirmation, `409 legal_hold` while an
//!   admin holds the account.
//! - `GET /api/me/deletion?deletion_id=` (public: the deleted account's tokens no longer work) → the
//!   receipt for 30 days: what was deleted and what was kept, under which pseudonym.
//! - `POST /api/me/exports` → `202` an export of the caller's data, made by the account worker; `409
//!   export_in_progress` while one is made, `429 export_limit_reached` within a day of the last.
//! - `GET /api/me/exports/{export_id}` → its state, and once ready a 15-minute `download_url`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Deserialize;
use son1k_app::AppState;
use son1k_http::auth;
use son1k_http::request::{
    json, parse_json, path_param, query_value, render, request_id, HandlerResult, BODY_LIMIT,
};
use son1k_http::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRequest {
    confirm: String,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    if req.method() == Method::GET && path.ends_with("/deletion") {
        let id = query_value(&req, "deletion_id")?
            .filter(|id| ulid::Ulid::from_string(id).is_ok())
            .ok_or_else(|| {
                ApiError::invalid("deletion_id", "must be the id a deletion answered")
            })?;
        let receipt = son1k_app::account::receipt(state, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("no such deletion, or its receipt expired"))?;
        return json(StatusCode::OK, &receipt);
    }
    let caller = auth::caller(&req)?;
    if path.ends_with("/exports") {
        let export = son1k_app::export::start(state, &caller).await?;
        return json(StatusCode::ACCEPTED, &export);
    }
    if req.method() == Method::GET {
        let id = path_param(&req, "export_id")?;
        let export = match ulid::Ulid::from_string(&id) {
            Ok(_) => son1k_app::export::view(state, &caller, &id).await?,
            Err(_) => None,
        };
        return match export {
            Some(export) => json(StatusCode::OK, &export),
            None => {
                son1k_app::account::refuse_if_closed(state, &caller.id).await?;
                Err(ApiError::not_found(
                    "no such export, or its file was deleted",
                ))
            }
        };
    }
    let CloseRequest { confirm } = parse_json(&req, BODY_LIMIT)?;
    if confirm != "DELETE" {
        return Err(ApiError::invalid("confirm", "must be \"DELETE\""));
    }
    let receipt = son1k_app::account::close(state, &caller).await?;
    json(StatusCode::ACCEPTED, &receipt)
}
