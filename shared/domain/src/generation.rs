//! A recorded generation: the request of `POST /api/tiers/record-generation`, checked field by field,
//! and the 201 body that is stored with it and replayed byte for byte on a retry.

use super::ids::GenerationId;
use super::tiers::Quality;
use super::DomainError;
use serde::{Deserialize, Serialize};

pub const MAX_GENRE_CHARS: usize = 40;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_PROMPT_CHARS: usize = 2000;
pub const MAX_DURATION_SECONDS: f64 = 3600.0;

/// The body as sent; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordGenerationRequest {
    pub generation_id: GenerationId,
    #[serde(default)]
    pub quality: Option<Quality>,
    #[serde(default)]
    pub genre: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
}

/// A request whose every field is known to be within bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGeneration {
    pub generation_id: GenerationId,
    pub quality: Quality,
    /// Lower-cased and trimmed, so the pool's genre filter matches however it was typed.
    pub genre: Option<String>,
    pub title: Option<String>,
    pub prompt: Option<String>,
    pub duration_seconds: Option<f64>,
}

pub(crate) fn bounded(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match value {
        Some(v) if v.chars().count() > max => Err(DomainError::new(
            field,
            format!("must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

impl TryFrom<RecordGenerationRequest> for NewGeneration {
    type Error = DomainError;

    fn try_from(req: RecordGenerationRequest) -> Result<Self, DomainError> {
        let genre = bounded("genre", req.genre, MAX_GENRE_CHARS)?
            .map(|g| g.trim().to_lowercase())
            .filter(|g| !g.is_empty());
        let title = bounded("title", req.title, MAX_TITLE_CHARS)?;
        let prompt = bounded("prompt", req.prompt, MAX_PROMPT_CHARS)?;
        if let Some(d) = req.duration_seconds {
            if !d.is_finite() || !(0.0..=MAX_DURATION_SECONDS).contains(&d) {
                return Err(DomainError::new(
                    "duration_seconds",
                    "must be a number from 0 to 3600",
                ));
            }
        }
        Ok(Self {
            generation_id: req.generation_id,
            quality: req.quality.unwrap_or(Quality::Standard),
            genre,
            title,
            prompt,
            // Kept to the millisecond: DynamoDB numbers cannot hold magnitudes below 1e-130, and
            // a finer duration means nothing (found by the fuzzer: 4.6e-276 s was a 503).
            duration_seconds: req.duration_seconds.map(|d| (d * 1000.0).round() / 1000.0),
        })
    }
}

/// `pool_contribution` of the 201 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolContribution {
    pub contribution_id: String,
    pub points: u32,
}

/// The 201 body of a recorded generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedGeneration {
    pub generation_id: GenerationId,
    pub recorded: bool,
    pub used: u32,
    pub remaining: u32,
    /// RFC 3339 to the second: the end of the period the generation was counted in.
    pub reset_at: String,
    pub pool_contribution: Option<PoolContribution>,
    /// The credit block that paid it, when the period's allowance was used up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_block_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(d: f64) -> Option<f64> {
        let request: RecordGenerationRequest = serde_json::from_value(
            serde_json::json!({"generation_id": "g", "duration_seconds": d}),
        )
        .unwrap();
        NewGeneration::try_from(request).unwrap().duration_seconds
    }

    #[test]
    fn durations_are_kept_to_the_millisecond() {
        assert_eq!(duration(4.578030570935428e-276), Some(0.0));
        assert_eq!(duration(12.345_678), Some(12.346));
        assert_eq!(duration(3600.0), Some(3600.0));
    }

    fn parse(json: &str) -> Result<NewGeneration, String> {
        let req: RecordGenerationRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        NewGeneration::try_from(req).map_err(|e| e.field.to_owned())
    }

    #[test]
    fn quality_defaults_to_standard_and_genre_is_normalised() {
        let g = parse(r#"{"generation_id":"g-1","genre":"  Lo-Fi "}"#).unwrap();
        assert_eq!(
            (g.quality, g.genre.as_deref()),
            (Quality::Standard, Some("lo-fi"))
        );
        let g = parse(r#"{"generation_id":"g-1","quality":null,"genre":"   "}"#).unwrap();
        assert_eq!((g.quality, g.genre), (Quality::Standard, None));
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        let ok = format!(r#"{{"generation_id":"g","genre":"{}"}}"#, "é".repeat(40));
        assert!(parse(&ok).is_ok());
        let long = format!(r#"{{"generation_id":"g","genre":"{}"}}"#, "é".repeat(41));
        assert_eq!(parse(&long).err().as_deref(), Some("genre"));
        let title = format!(r#"{{"generation_id":"g","title":"{}"}}"#, "t".repeat(201));
        assert_eq!(parse(&title).err().as_deref(), Some("title"));
        let prompt = format!(r#"{{"generation_id":"g","prompt":"{}"}}"#, "p".repeat(2001));
        assert_eq!(parse(&prompt).err().as_deref(), Some("prompt"));
    }

    #[test]
    fn duration_must_be_between_0_and_3600() {
        assert!(parse(r#"{"generation_id":"g","duration_seconds":0}"#).is_ok());
        assert!(parse(r#"{"generation_id":"g","duration_seconds":3600}"#).is_ok());
        for bad in ["-0.5", "3600.01", "1e9"] {
            let json = format!(r#"{{"generation_id":"g","duration_seconds":{bad}}}"#);
            assert_eq!(
                parse(&json).err().as_deref(),
                Some("duration_seconds"),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_ids_and_qualities_do_not_deserialise() {
        assert!(parse(r#"{"generation_id":"has space"}"#).is_err());
        assert!(parse(r#"{"generation_id":"g","quality":"lossless"}"#).is_err());
        assert!(parse(r#"{"quality":"high"}"#).is_err());
    }
}
