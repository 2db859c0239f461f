//! Cloned voices, for their owner (an admin may read any):
//! - `POST /api/voices {"name", "language"?}` → `201` the voice, awaiting its recordings, with the
//!   consent phrase and an upload link for the consent recording and each sample;
//! - `GET /api/voices` → `200 {"items"}` the caller's voices (deleted ones left out);
//! - `GET /api/voices/{voice_id}` → `200` the voice (with fresh upload links for what it still
//!   needs, for its owner), `404` for another user's, `410 voice_deleted`;
//! - `POST /api/voices/{voice_id}/submit` → `202 {"status": "verifying"}` once its recordings are
//!   there (`409 samples_missing` otherwise).

use chrono::SecondsFormat;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use son1k_app::audit::Via;
use son1k_app::voices::Uploads;
use son1k_app::AppState;
use son1k_domain::ids::VoiceId;
use son1k_domain::voices::{self as rules, Container, Failure, Status};
use son1k_http::auth;
use son1k_http::request::{
    json, parse_json, path_param, render, request_id, HandlerResult, BODY_LIMIT,
};
use son1k_store::audio::Presigned;
use son1k_store::voices::VoiceRecord;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Debug, Serialize)]
struct Link {
    url: String,
    method: String,
    headers: BTreeMap<String, String>,
    expires_at: String,
}

impl From<Presigned> for Link {
    fn from(link: Presigned) -> Self {
        Self {
            url: link.url,
            method: link.method,
            headers: link.headers,
            expires_at: link.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

#[derive(Debug, Serialize)]
struct UploadLinks {
    consent: Option<Link>,
    samples: Vec<Link>,
}

#[derive(Debug, Serialize)]
struct SampleView {
    slot: String,
    container: Container,
    duration_ms: u64,
    bytes: u64,
}

/// A voice as its owner (or an admin) sees it.
#[derive(Debug, Serialize)]
pub struct VoiceView {
    voice_id: String,
    name: String,
    language: Option<String>,
    status: Status,
    consent_phrase: String,
    consent_received: bool,
    samples: Vec<SampleView>,
    samples_ms: u64,
    failure: Option<Failure>,
    attempts_left: u32,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uploads: Option<UploadLinks>,
}

fn view(voice: VoiceRecord, uploads: Option<Uploads>) -> VoiceView {
    VoiceView {
        voice_id: voice.voice_id.to_string(),
        name: voice.name,
        language: voice.language,
        status: voice.status,
        consent_phrase: voice.consent_phrase,
        consent_received: voice.consent.is_some(),
        samples: voice
            .samples
            .into_iter()
            .map(|(slot, s)| SampleView {
                slot,
                container: s.container,
                duration_ms: s.duration_ms,
                bytes: s.bytes,
            })
            .collect(),
        samples_ms: voice.samples_ms,
        failure: voice.failure,
        attempts_left: rules::VERIFY_ATTEMPTS.saturating_sub(voice.attempt),
        created_at: voice.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        updated_at: voice.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        uploads: uploads.map(|u| UploadLinks {
            consent: u.consent.map(Link::from),
            samples: u.samples.into_iter().map(Link::from).collect(),
        }),
    }
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let caller = auth::caller(&req)?;
    let path = req.uri().path().trim_end_matches('/').to_owned();
    if req.method() == Method::POST && path.ends_with("/submit") {
        let id = VoiceId::parse(&path_param(&req, "voice_id")?)?;
        let status = son1k_app::voices::submit(state, &caller, &id).await?;
        return json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "voice_id": id, "status": status }),
        );
    }
    if req.method() == Method::POST {
        let body: CreateRequest = parse_json(&req, BODY_LIMIT)?;
        let name = rules::parse_name(&body.name)?;
        let language = body
            .language
            .as_deref()
            .map(rules::parse_language)
            .transpose()?;
        let created = son1k_app::voices::create(state, &caller, name, language).await?;
        return json(
            StatusCode::CREATED,
            &view(created.voice, Some(created.uploads)),
        );
    }
    if path == "/api/voices" {
        let voices = son1k_app::voices::list(state, &caller).await?;
        let items: Vec<VoiceView> = voices.into_iter().map(|v| view(v, None)).collect();
        return json(StatusCode::OK, &serde_json::json!({ "items": items }));
    }
    let id = VoiceId::parse(&path_param(&req, "voice_id")?)?;
    let request_id = request_id(&req).unwrap_or_default();
    let via = Via {
        route: "GET /api/voices/{voice_id}",
        request_id: &request_id,
    };
    let voice = son1k_app::voices::get(state, &caller, &id, via).await?;
    // Upload links carry the signer's rights: only the owner gets them.
    let uploads = if voice.owner_id == caller.id {
        Some(
            son1k_app::voices::uploads(state, &voice, son1k_app::ports::Time::clock(state).now())
                .await?,
        )
        .filter(|u| u.consent.is_some() || !u.samples.is_empty())
    } else {
        None
    };
    json(StatusCode::OK, &view(voice, uploads))
}
