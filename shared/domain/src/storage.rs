//! Audio storage rules, pure: which types and sizes may be uploaded, where an upload lives, and
//! whether it fits the tier's storage quota.

use super::ids::{GenerationId, UserId};
use super::DomainError;
use serde::{Deserialize, Serialize};

/// The largest single upload: 2 GiB.
pub const MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How long a presigned upload or download link lives.
pub const UPLOAD_LINK_SECONDS: u64 = 15 * 60;
pub const AUDIO_LINK_SECONDS: u64 = 5 * 60;

/// The audio types an upload may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AudioType {
    Mpeg,
    Wav,
    Ogg,
    Flac,
}

impl AudioType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mpeg => "audio/mpeg",
            Self::Wav => "audio/wav",
            Self::Ogg => "audio/ogg",
            Self::Flac => "audio/flac",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "audio/mpeg" => Ok(Self::Mpeg),
            "audio/wav" => Ok(Self::Wav),
            "audio/ogg" => Ok(Self::Ogg),
            "audio/flac" => Ok(Self::Flac),
            _ => Err(DomainError::new(
                "content_type",
                "must be one of audio/mpeg, audio/wav, audio/ogg, audio/flac",
            )),
        }
    }
}

impl TryFrom<String> for AudioType {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

impl From<AudioType> for String {
    fn from(t: AudioType) -> String {
        t.as_str().to_owned()
    }
}

/// A requested upload size: 1 byte to 2 GiB.
pub fn upload_size(size: u64) -> Result<u64, DomainError> {
    if (1..=MAX_UPLOAD_BYTES).contains(&size) {
        Ok(size)
    } else {
        Err(DomainError::new(
            "size_bytes",
            format!("must be a whole number from 1 to {MAX_UPLOAD_BYTES}"),
        ))
    }
}

/// The object key of a generation's audio as the generation worker writes it.
pub fn audio_key(user: &UserId, generation: &GenerationId) -> String {
    format!("audio/{user}/{generation}")
}

/// The object key of one presigned upload of a generation's audio: a key of its own per upload, so
/// the link (signed with `If-None-Match: *`) can create it once and never overwrite it, and a
/// replacement never turns the audio it replaces into a hidden noncurrent version.
pub fn upload_key(user: &UserId, generation: &GenerationId, upload: &UploadId) -> String {
    format!("audio/{user}/{generation}/{upload}")
}

/// The id of one presigned upload: a ULID (26 characters of Crockford base32).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadId(String);

impl UploadId {
    pub fn new() -> Self {
        Self(ulid::Ulid::generate().to_string())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        ulid::Ulid::from_string(raw)
            .ok()
            .filter(|u| u.to_string() == raw)
            .map(|_| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UploadId {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw).ok_or_else(|| DomainError::new("upload_id", "must be a ULID"))
    }
}

impl From<UploadId> for String {
    fn from(id: UploadId) -> String {
        id.0
    }
}

/// What an audio object key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioKey {
    pub owner: UserId,
    pub generation: GenerationId,
    /// The upload it came from (`upload_key`); `None` for the worker's key (`audio_key`).
    pub upload: Option<UploadId>,
}

/// The user, generation and upload an object key names; `None` for any other key.
pub fn parse_audio_key(key: &str) -> Option<AudioKey> {
    let mut parts = key.strip_prefix("audio/")?.split('/');
    let (user, generation) = (parts.next()?, parts.next()?);
    let upload = match parts.next() {
        Some(upload) => Some(UploadId::parse(upload)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(AudioKey {
        owner: UserId::parse(user).ok()?,
        generation: GenerationId::parse(generation).ok()?,
        upload,
    })
}

/// Whether `extra` more bytes fit a quota of `limit` (`None`: unlimited) with `used` spent.
/// Exactly what remains fits.
pub fn fits(used: u64, extra: u64, limit: Option<u64>) -> bool {
    limit.is_none_or(|limit| used.checked_add(extra).is_some_and(|total| total <= limit))
}

/// `fits` as a condition on the stored usage: how much may be stored already for `extra` more bytes
/// to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedAtMost {
    /// Any usage (unlimited, or nothing added).
    Any,
    Bytes(u64),
    /// None: `extra` alone is past the quota.
    Nothing,
}

pub fn most_used_for(extra: u64, limit: Option<u64>) -> UsedAtMost {
    match limit {
        Some(limit) if extra > 0 => limit
            .checked_sub(extra)
            .map_or(UsedAtMost::Nothing, UsedAtMost::Bytes),
        _ => UsedAtMost::Any,
    }
}

/// Audio that does not fit: the quota, what is stored, and what was asked for (the 413's fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub limit_bytes: u64,
    pub used_bytes: u64,
    pub requested_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_on_stored_usage_says_what_fits_says() {
        let limit = Some(1_000);
        for (used, extra) in [
            (990, 10),
            (990, 11),
            (0, 1_000),
            (0, 1_001),
            (5, 0),
            (1_200, 0),
        ] {
            let by_condition = match most_used_for(extra, limit) {
                UsedAtMost::Any => true,
                UsedAtMost::Bytes(most) => used <= most,
                UsedAtMost::Nothing => false,
            };
            assert_eq!(
                by_condition,
                fits(used, extra, limit) || extra == 0,
                "{used} + {extra}"
            );
        }
        assert_eq!(most_used_for(u64::MAX, None), UsedAtMost::Any);
    }

    #[test]
    fn exactly_what_remains_fits_and_one_byte_more_does_not() {
        let gib = 1024 * 1024 * 1024;
        assert!(fits(gib - 10, 10, Some(gib)));
        assert!(!fits(gib - 10, 11, Some(gib)));
        assert!(fits(u64::MAX - 1, 1, None));
        assert!(!fits(u64::MAX, 1, Some(u64::MAX)));
    }

    #[test]
    fn sizes_and_types_are_checked_at_the_boundary() {
        assert!(upload_size(0).is_err() && upload_size(MAX_UPLOAD_BYTES + 1).is_err());
        assert_eq!(upload_size(MAX_UPLOAD_BYTES), Ok(MAX_UPLOAD_BYTES));
        assert_eq!(AudioType::parse("audio/flac"), Ok(AudioType::Flac));
        assert_eq!(
            AudioType::parse("audio/x-flac").unwrap_err().field,
            "content_type"
        );
    }

    #[test]
    fn keys_name_their_user_and_generation_and_nothing_else_parses() {
        let (user, generation) = (
            UserId::parse("u1").unwrap(),
            GenerationId::parse("g-1").unwrap(),
        );
        let key = audio_key(&user, &generation);
        assert_eq!(key, "audio/u1/g-1");
        let named = |upload| AudioKey {
            owner: user.clone(),
            generation: generation.clone(),
            upload,
        };
        assert_eq!(parse_audio_key(&key), Some(named(None)));
        let upload = UploadId::parse("01KBJ2Z9XG4M5N6P7Q8R9S0T1V").unwrap();
        let key = upload_key(&user, &generation, &upload);
        assert_eq!(key, "audio/u1/g-1/01KBJ2Z9XG4M5N6P7Q8R9S0T1V");
        assert_eq!(parse_audio_key(&key), Some(named(Some(upload))));
        for other in [
            "audio/u1",
            "audio/u1/g/x",
            "audio/u1/g/01kbj2z9xg4m5n6p7q8r9s0t1v",
            "audio/u1/g/01KBJ2Z9XG4M5N6P7Q8R9S0T1V/x",
            "video/u1/g",
            "audio/u 1/g",
            "audio//g",
        ] {
            assert_eq!(parse_audio_key(other), None, "{other}");
        }
    }
}
