//! `POST /api/generations/{generation_id}/upload-url`: a presigned S3 PUT for the caller's own
//! generation, bound to its content type and size, if it fits the tier's remaining storage.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::storage::issue_upload;
use son1k_app::AppState;
use son1k_domain::ids::GenerationId;
use son1k_domain::storage::{upload_size, AudioType};
use son1k_http::auth;
use son1k_http::request::{
    json, parse_json, path_param, render, request_id, HandlerResult, BODY_LIMIT,
};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct UploadRequest {
    content_type: AudioType,
    #[serde(deserialize_with = "son1k_http::request::whole_number")]
    size_bytes: u64,
}

#[derive(Debug, Serialize)]
struct UploadResponse {
    upload_url: String,
    method: String,
    headers: BTreeMap<String, String>,
    expires_at: String,
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let id = GenerationId::parse(&path_param(&req, "generation_id")?)?;
    let body: UploadRequest = parse_json(&req, BODY_LIMIT)?;
    let size = upload_size(body.size_bytes)?;
    son1k_app::rate::admit(state, &caller).await?;
    let link = issue_upload(state, &caller, &id, body.content_type, size).await?;
    json(
        StatusCode::OK,
        &UploadResponse {
            upload_url: link.url,
            method: link.method,
            headers: link.headers,
            expires_at: link
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    )
}
