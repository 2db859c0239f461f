//! Generation jobs, pure: what a submission must be, the states a job goes through, why one fails,
//! and the reservation that holds one unit of quota while the job runs.
//!
//! A reservation counts as used in its period until the job commits (it becomes a recorded generation
//! of that period) or is released (the unit comes back), or until it expires: a job that never
//! finishes stops counting `RESERVATION_TTL` after it was submitted, computed on read like periods,
//! so no scheduled job is needed for the quota to come back.

use super::generation::{MAX_GENRE_CHARS, MAX_PROMPT_CHARS, MAX_TITLE_CHARS};
use super::ids::{GenerationId, LyricsId};
use super::tiers::Quality;
use super::DomainError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a reservation holds its unit: longer than a worker may take (its Lambda timeout, a
/// redelivery and a second run), short enough that a lost job gives the quota back the same day.
pub const RESERVATION_TTL: Duration = Duration::minutes(15);
pub const MIN_JOB_SECONDS: f64 = 5.0;
pub const MAX_JOB_SECONDS: f64 = 300.0;

/// The body of `POST /api/generations`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubmitRequest {
    pub generation_id: GenerationId,
    pub prompt: String,
    #[serde(default)]
    pub genre: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub quality: Quality,
    pub duration_seconds: f64,
    /// One of the caller's lyrics drafts this generation sings (marked as turned into a song).
    #[serde(default)]
    pub lyrics_id: Option<LyricsId>,
    /// One of the caller's own ready voices the generation is sung in (never shared to the pool).
    #[serde(default)]
    pub voice_id: Option<crate::ids::VoiceId>,
}

/// A validated submission.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub generation_id: GenerationId,
    pub prompt: String,
    pub genre: Option<String>,
    pub title: Option<String>,
    pub quality: Quality,
    pub duration_seconds: f64,
    pub lyrics_id: Option<LyricsId>,
    pub voice_id: Option<crate::ids::VoiceId>,
}

impl TryFrom<SubmitRequest> for NewJob {
    type Error = DomainError;

    fn try_from(req: SubmitRequest) -> Result<Self, DomainError> {
        let prompt_chars = super::trim_text(&req.prompt).chars().count();
        if prompt_chars == 0 || req.prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(DomainError::new(
                "prompt",
                format!("must be 1 to {MAX_PROMPT_CHARS} characters, not only spaces"),
            ));
        }
        let genre = match req.genre {
            Some(g) if g.chars().count() > MAX_GENRE_CHARS => {
                return Err(DomainError::new(
                    "genre",
                    format!("must be at most {MAX_GENRE_CHARS} characters"),
                ))
            }
            other => other
                .map(|g| g.trim().to_lowercase())
                .filter(|g| !g.is_empty()),
        };
        if req
            .title
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS)
        {
            return Err(DomainError::new(
                "title",
                format!("must be at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        let d = req.duration_seconds;
        if !d.is_finite() || !(MIN_JOB_SECONDS..=MAX_JOB_SECONDS).contains(&d) {
            return Err(DomainError::new(
                "duration_seconds",
                "must be a number from 5 to 300",
            ));
        }
        Ok(Self {
            generation_id: req.generation_id,
            prompt: req.prompt,
            genre,
            title: req.title,
            quality: req.quality,
            duration_seconds: (d * 1000.0).round() / 1000.0,
            lyrics_id: req.lyrics_id,
            voice_id: req.voice_id,
        })
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// Why a job failed (the `error` of its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFailure {
    /// Every provider was down, open, cooling down or out of rate, or each attempt failed.
    NoProviderAvailable,
    /// A provider refused the request itself (its content or parameters): no other would differ.
    ProviderRejected,
    /// A provider's result could not be taken: its output link pointed where the worker may not
    /// fetch (a redirect, a non-public address, not https), or its audio was larger than the
    /// quality allows. The prediction is abandoned, not retried elsewhere.
    ProviderOutputRefused,
    /// The reservation expired before the job finished.
    TimedOut,
    /// The audio would not fit the owner's storage quota.
    StorageQuotaExceeded,
    /// The generation id was recorded meanwhile by `record-generation`.
    GenerationIdTaken,
}

impl JobFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoProviderAvailable => "no_provider_available",
            Self::ProviderRejected => "provider_rejected",
            Self::ProviderOutputRefused => "provider_output_refused",
            Self::TimedOut => "timed_out",
            Self::StorageQuotaExceeded => "storage_quota_exceeded",
            Self::GenerationIdTaken => "generation_id_taken",
        }
    }
}

/// One unit of a period's quota held by a job, stored on the user item by generation id. The unit is
/// in the period's counter from the moment it is reserved (and in the paid history when `paid`): a
/// commit leaves it there, a release or an expiry takes it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The usage counter it is counted in (`D#…`, `M#…`).
    pub period_key: String,
    /// Epoch seconds after which it no longer counts (and can no longer be committed). Not named
    /// `expires_at`: that is the tables' TTL attribute.
    pub until: i64,
    /// Reserved on a paid tier: it is in the paid history too.
    #[serde(default)]
    pub paid: bool,
    /// The credit block that pays it (the period's allowance was used up): its unit is in that
    /// block, not in the period's counter, and goes back there on a release unless the block
    /// expired meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<String>,
}

impl Reservation {
    pub fn new(period_key: String, paid: bool, now: DateTime<Utc>) -> Self {
        Self {
            period_key,
            until: (now + RESERVATION_TTL).timestamp(),
            paid,
            credit: None,
        }
    }

    /// Whether it still holds its unit at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now.timestamp() < self.until
    }

    /// When it was made (epoch seconds).
    pub fn reserved_at(&self) -> i64 {
        self.until - RESERVATION_TTL.num_seconds()
    }
}

/// The status body of a job (`GET /api/generations/{id}`, and a repeated submission).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub generation_id: GenerationId,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_url_expires_at: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// The 202 body of a new submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submitted {
    pub generation_id: GenerationId,
    pub status: JobStatus,
    pub used: u32,
    pub remaining: u32,
    pub reset_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> Result<NewJob, String> {
        let req: SubmitRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
        NewJob::try_from(req).map_err(|e| e.field.to_owned())
    }

    #[test]
    fn submissions_are_bounded_field_by_field() {
        let ok = json!({"generation_id": "g1", "prompt": "calm piano", "quality": "standard",
                        "duration_seconds": 5});
        assert_eq!(parse(ok.clone()).unwrap().duration_seconds, 5.0);
        let with = |field: &str, value: serde_json::Value| {
            let mut body = ok.clone();
            body[field] = value;
            parse(body)
        };
        assert_eq!(with("prompt", json!("   ")), Err("prompt".into()));
        assert_eq!(
            with("prompt", json!("x".repeat(2001))),
            Err("prompt".into())
        );
        assert!(with("prompt", json!("é".repeat(2000))).is_ok());
        assert_eq!(
            with("duration_seconds", json!(4.999)),
            Err("duration_seconds".into())
        );
        assert_eq!(
            with("duration_seconds", json!(300.001)),
            Err("duration_seconds".into())
        );
        assert!(with("duration_seconds", json!(300)).is_ok());
        assert_eq!(with("genre", json!("g".repeat(41))), Err("genre".into()));
        assert_eq!(with("title", json!("t".repeat(201))), Err("title".into()));
        assert_eq!(
            with("genre", json!("  Lo-Fi ")).unwrap().genre.as_deref(),
            Some("lo-fi")
        );
    }

    #[test]
    fn a_reservation_holds_its_unit_for_fifteen_minutes_exactly() {
        let r = Reservation::new("D#2026-11-26".into(), false, at("2026-11-26T23:50:00Z"));
        assert!(r.active(at("2026-11-27T00:04:59Z")));
        assert!(!r.active(at("2026-11-27T00:05:00Z")));
    }
}
