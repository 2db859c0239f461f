//! Cloned voices: who may have how many, the consent phrase, where a voice's objects live, what an
//! uploaded recording is (its container and duration, read from its header), the messages
//! exchanged with the GPU worker (`schemas/voice-*.schema.json`) and how a worker's result changes
//! a voice.

use crate::ids::{UserId, VoiceId};
use crate::tiers::Tier;
use crate::DomainError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Sample recordings a voice may have (each its own upload link).
pub const SAMPLE_SLOTS: u8 = 3;
/// The largest recording accepted, in bytes (50 MB).
pub const MAX_UPLOAD_BYTES: u64 = 50_000_000;
/// The samples of a voice together: at least 10 s, at most 5 min.
pub const MIN_SAMPLES_MS: u64 = 10_000;
pub const MAX_SAMPLES_MS: u64 = 300_000;
/// Voices a user may create in any rolling hour.
pub const CREATIONS_PER_HOUR: usize = 5;
/// Consent verifications a voice may have; after the last mismatch a new voice is needed.
pub const VERIFY_ATTEMPTS: u32 = 3;
/// How long an upload link stays valid.
pub const UPLOAD_LINK_SECONDS: u64 = 3600;
/// Versions of the worker's message schemas (`schema` in every message).
pub const JOB_SCHEMA: &str = "son1k.voice-job.v1";
pub const RESULT_SCHEMA: &str = "son1k.voice-result.v1";

/// The voices a tier may keep at once; `None`: voice cloning is not in the tier.
pub fn voice_limit(tier: Tier) -> Option<u32> {
    match tier {
        Tier::Free => None,
        Tier::Creator => Some(1),
        Tier::Pro => Some(3),
        Tier::Studio => Some(10),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the consent recording and the samples.
    AwaitingSamples,
    /// Submitted: the worker checks the consent recording.
    Verifying,
    Training,
    /// Usable by its owner in generations.
    Ready,
    Failed,
    /// Deleted by its owner: its audio and model are gone; the consent record stays.
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingSamples => "awaiting_samples",
            Self::Verifying => "verifying",
            Self::Training => "training",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }
}

/// Why a voice failed (or, for a mismatch with attempts left, why its last verification did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// A recording is not wav, flac or mp3, is too large, or the samples' total is out of range.
    SampleInvalid,
    /// The consent recording does not say the phrase, or is not the samples' speaker.
    ConsentMismatch,
    /// The worker could not train the voice.
    TrainingFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: FailureCode,
    pub reason: String,
}

/// One recording of a voice: the consent recording of an attempt, or a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The consent recording for verification attempt `n` (from 1).
    Consent(u32),
    /// Sample `n` (from 1 to `SAMPLE_SLOTS`).
    Sample(u8),
}

impl Slot {
    /// The object's name under the voice's prefix.
    pub fn name(self) -> String {
        match self {
            Self::Consent(n) => format!("consent-{n}"),
            Self::Sample(n) => format!("sample-{n}"),
        }
    }

    fn parse(name: &str) -> Option<Self> {
        if let Some(n) = name.strip_prefix("consent-") {
            let n: u32 = n.parse().ok()?;
            return (1..=VERIFY_ATTEMPTS)
                .contains(&n)
                .then_some(Self::Consent(n));
        }
        let n: u8 = name.strip_prefix("sample-")?.parse().ok()?;
        (1..=SAMPLE_SLOTS).contains(&n).then_some(Self::Sample(n))
    }
}

/// Every recording of a voice lives under `voices/<user>/<voice>/`.
pub fn recordings_prefix(owner: &UserId, voice: &VoiceId) -> String {
    format!("voices/{owner}/{voice}/")
}

/// The worker's trained model of a voice lives under `voice-models/<user>/<voice>/`.
pub fn models_prefix(owner: &UserId, voice: &VoiceId) -> String {
    format!("voice-models/{owner}/{voice}/")
}

pub fn recording_key(owner: &UserId, voice: &VoiceId, slot: Slot) -> String {
    format!("{}{}", recordings_prefix(owner, voice), slot.name())
}

/// The owner, voice and slot of a recording's key; `None` for any other key.
pub fn parse_recording_key(key: &str) -> Option<(UserId, VoiceId, Slot)> {
    let mut parts = key.strip_prefix("voices/")?.split('/');
    let owner = UserId::parse(parts.next()?).ok()?;
    let voice = VoiceId::parse(parts.next()?).ok()?;
    let slot = Slot::parse(parts.next()?)?;
    parts.next().is_none().then_some((owner, voice, slot))
}

/// The phrase the person whose voice it is reads aloud in the consent recording: it names the
/// account and carries a code made for this voice, so a recording made for another voice or
/// another account does not pass.
pub fn consent_phrase(owner: &UserId, code: &str) -> String {
    format!(
        "I am the speaker of these recordings and I allow Son1kVers3 account {owner} to create a \
         synthetic copy of my voice for its own use. Consent code {code}."
    )
}

/// The name of a voice: 1 to 60 characters, not only spaces.
pub fn parse_name(raw: &str) -> Result<String, DomainError> {
    let name = crate::trim_text(raw);
    if name.is_empty() || name.chars().count() > 60 {
        return Err(DomainError::new("name", "must be 1 to 60 characters"));
    }
    Ok(name.to_owned())
}

/// A language tag such as `en` or `pt-BR` (2 to 3 letters, optionally a region).
pub fn parse_language(raw: &str) -> Result<String, DomainError> {
    let mut parts = raw.split('-');
    let lang = parts.next().unwrap_or_default();
    let region = parts.next();
    let ok = (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
        && parts.next().is_none();
    if !ok {
        return Err(DomainError::new(
            "language",
            "must be a language tag such as en or pt-BR",
        ));
    }
    Ok(raw.to_owned())
}

/// When each of the user's recent creations happened, by slot (`0` to `CREATIONS_PER_HOUR - 1`).
pub type Creations = BTreeMap<String, DateTime<Utc>>;

/// A creation slot free at `now` (none used in the last hour; the oldest first), or when the first
/// one frees up.
pub fn free_creation_slot(used: &Creations, now: DateTime<Utc>) -> Result<String, DateTime<Utc>> {
    let hour = Duration::hours(1);
    let mut earliest: Option<DateTime<Utc>> = None;
    for slot in 0..CREATIONS_PER_HOUR {
        let name = slot.to_string();
        match used.get(&name) {
            Some(at) if *at + hour > now => {
                earliest = Some(earliest.map_or(*at, |e| e.min(*at)));
            }
            _ => return Ok(name),
        }
    }
    Err(earliest.map_or(now, |at| at + hour))
}

/// The container of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    Wav,
    Flac,
    Mp3,
}

/// What a recording's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub container: Container,
    pub duration_ms: u64,
}

/// How many of a recording's first bytes `probe` needs (an ID3 tag before an MP3's first frame can
/// be larger: it is skipped by its declared size when the head holds it).
pub const PROBE_BYTES: u64 = 256 * 1024;

/// Reads the container and the duration of a recording of `size` bytes from its first bytes:
/// WAV (`RIFF`/`WAVE`, the `fmt ` chunk's byte rate and the `data` chunk's size), FLAC (`fLaC`,
/// STREAMINFO's sample rate and total samples) or MPEG audio layer III (an optional ID3v2 tag, the
/// first frame's header, and its Xing/Info frame count, or the bitrate for a constant-rate file).
/// Anything else is refused with the reason.
pub fn probe(head: &[u8], size: u64) -> Result<Probe, String> {
    if size > MAX_UPLOAD_BYTES {
        return Err(format!(
            "the recording is {size} bytes; at most {MAX_UPLOAD_BYTES} are accepted"
        ));
    }
    let duration_ms = if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE") {
        (Container::Wav, wav_duration(head)?)
    } else if head.starts_with(b"fLaC") {
        (Container::Flac, flac_duration(head)?)
    } else {
        (Container::Mp3, mp3_duration(head, size)?)
    };
    if duration_ms.1 == 0 {
        return Err("the recording is empty".into());
    }
    Ok(Probe {
        container: duration_ms.0,
        duration_ms: duration_ms.1,
    })
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn wav_duration(head: &[u8]) -> Result<u64, String> {
    let mut at = 12;
    let mut byte_rate = None;
    while let (Some(id), Some(len)) = (head.get(at..at + 4), le_u32(head, at + 4)) {
        match id {
            b"fmt " => byte_rate = le_u32(head, at + 16).filter(|r| *r > 0),
            b"data" => {
                let rate = byte_rate.ok_or("a WAV file without a format before its data")?;
                return Ok(u64::from(len) * 1000 / u64::from(rate));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at += 8 + len as usize + (len as usize & 1);
    }
    Err("a WAV file without a data chunk in its first bytes".into())
}

fn flac_duration(head: &[u8]) -> Result<u64, String> {
    // The first metadata block must be STREAMINFO (type 0), 34 bytes.
    let info: [u8; 18] = head
        .get(8..26)
        .filter(|_| head.get(4).is_some_and(|b| b & 0x7f == 0))
        .and_then(|b| b.try_into().ok())
        .ok_or("a FLAC file without its STREAMINFO")?;
    let rate =
        (u32::from(info[10]) << 12) | (u32::from(info[11]) << 4) | (u32::from(info[12]) >> 4);
    let samples = (u64::from(info[13] & 0x0f) << 32)
        | (u64::from(info[14]) << 24)
        | (u64::from(info[15]) << 16)
        | (u64::from(info[16]) << 8)
        | u64::from(info[17]);
    if rate == 0 || samples == 0 {
        return Err("a FLAC file that does not state its length".into());
    }
    Ok(samples * 1000 / u64::from(rate))
}

fn mp3_duration(head: &[u8], size: u64) -> Result<u64, String> {
    let not_audio = || "not a WAV, FLAC or MP3 recording".to_owned();
    let mut at = 0usize;
    if head.starts_with(b"ID3") {
        let tag = head.get(6..10).ok_or_else(not_audio)?;
        let len = tag
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
        at = 10 + len;
    }
    let header: [u8; 4] = head
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(not_audio)?;
    if header[0] != 0xff || header[1] & 0xe0 != 0xe0 {
        return Err(not_audio());
    }
    let version = (header[1] >> 3) & 0b11; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let layer = (header[1] >> 1) & 0b11; // 1: layer III
    if version == 1 || layer != 1 {
        return Err(not_audio());
    }
    const MPEG1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let kbps = *(if version == 3 { &MPEG1 } else { &MPEG2 })
        .get(usize::from(header[2] >> 4))
        .filter(|k| **k > 0)
        .ok_or_else(not_audio)?;
    let rate = match ((header[2] >> 2) & 0b11, version) {
        (0, 3) => 44_100,
        (1, 3) => 48_000,
        (2, 3) => 32_000,
        (0, 2) => 22_050,
        (1, 2) => 24_000,
        (2, 2) => 16_000,
        (0, 0) => 11_025,
        (1, 0) => 12_000,
        (2, 0) => 8_000,
        _ => return Err(not_audio()),
    };
    let samples_per_frame: u64 = if version == 3 { 1152 } else { 576 };
    // A Xing or Info frame (after the side information) counts the frames of a variable-rate file.
    let mono = header[3] >> 6 == 3;
    let side = match (version == 3, mono) {
        (true, false) => 32,
        (true, true) => 17,
        (false, false) => 17,
        (false, true) => 9,
    };
    let tag = at + 4 + side;
    if matches!(head.get(tag..tag + 4), Some(b"Xing") | Some(b"Info"))
        && head.get(tag + 7).is_some_and(|flags| flags & 1 == 1)
    {
        let frames = head
            .get(tag + 8..tag + 12)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(not_audio)?;
        return Ok(u64::from(frames) * samples_per_frame * 1000 / rate);
    }
    let audio_bytes = size.saturating_sub(at as u64);
    Ok(audio_bytes * 8 / u64::from(kbps))
}

/// What the worker is asked to do (`schemas/voice-job.schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Check the consent recording against the phrase and the samples' speaker, then train.
    VerifyAndTrain {
        consent: ConsentRef,
        samples: Vec<SampleRef>,
        /// Where the trained model goes.
        models_prefix: String,
        language: Option<String>,
    },
    /// Delete every copy the worker keeps of the voice.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRef {
    pub key: String,
    pub phrase: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRef {
    pub key: String,
    pub duration_ms: u64,
}

/// A message on the voice jobs queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceJob {
    pub schema: String,
    pub job_id: String,
    pub voice_id: VoiceId,
    pub owner_id: UserId,
    /// The verification attempt (from 1); a result names it, so a late result of an earlier
    /// attempt changes nothing.
    pub attempt: u32,
    pub bucket: String,
    #[serde(flatten)]
    pub kind: JobKind,
}

/// What the worker reports (`schemas/voice-result.schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The consent recording says the phrase in the samples' voice: training starts.
    Verified,
    ConsentMismatch {
        reason: String,
    },
    /// Trained: the model is at `model_key`.
    Ready {
        model_key: String,
        model_bytes: u64,
    },
    /// Training failed.
    Failed {
        reason: String,
    },
    /// The worker's copies of a deleted voice are gone.
    Deleted,
}

/// A message on the voice results queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceResult {
    pub schema: String,
    /// Unique per result: a result delivered twice is applied once.
    pub result_id: String,
    pub voice_id: VoiceId,
    pub owner_id: UserId,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A voice as a result finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub status: Status,
    pub attempt: u32,
}

/// What a result does to a voice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Move to `status` (with a failure, for `failed`, or the last one, for a retry).
    To {
        status: Status,
        failure: Option<Failure>,
        /// The consent recording is spent: the next attempt needs a new one.
        consent_spent: bool,
        model: Option<(String, u64)>,
    },
    /// The worker no longer holds a deleted voice.
    Purged,
    /// A result of an earlier attempt, or for a state already past: nothing changes.
    Stale,
}

/// How `result` changes a voice that is `current`. Only results of the current attempt apply;
/// `ready` may overtake `verified` (a queue does not keep order); a mismatch leaves the voice
/// awaiting a new consent recording while attempts remain, and failed after the last.
pub fn apply(current: Current, result: &Outcome, attempt: u32) -> Change {
    use Status::*;
    if current.status == Deleted {
        return match result {
            Outcome::Deleted => Change::Purged,
            _ => Change::Stale,
        };
    }
    if attempt != current.attempt {
        return Change::Stale;
    }
    let to = |status, failure, consent_spent, model| Change::To {
        status,
        failure,
        consent_spent,
        model,
    };
    match (current.status, result) {
        (Verifying, Outcome::Verified) => to(Training, None, false, None),
        (Verifying, Outcome::ConsentMismatch { reason }) => {
            let failure = Failure {
                code: FailureCode::ConsentMismatch,
                reason: reason.clone(),
            };
            if attempt >= VERIFY_ATTEMPTS {
                to(Failed, Some(failure), true, None)
            } else {
                to(AwaitingSamples, Some(failure), true, None)
            }
        }
        (
            Verifying | Training,
            Outcome::Ready {
                model_key,
                model_bytes,
            },
        ) => to(Ready, None, false, Some((model_key.clone(), *model_bytes))),
        (Verifying | Training, Outcome::Failed { reason }) => to(
            Failed,
            Some(Failure {
                code: FailureCode::TrainingFailed,
                reason: reason.clone(),
            }),
            false,
            None,
        ),
        _ => Change::Stale,
    }
}

/// Why a voice cannot be submitted yet: what is missing.
pub fn missing_for_submit(consent: bool, samples_ms: u64, samples: usize) -> Option<String> {
    if !consent {
        return Some("the consent recording has not arrived".into());
    }
    if samples == 0 {
        return Some("no sample has arrived".into());
    }
    if samples_ms < MIN_SAMPLES_MS {
        return Some(format!(
            "the samples last {:.1} s together; at least {} s are needed",
            samples_ms as f64 / 1000.0,
            MIN_SAMPLES_MS / 1000
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;

    fn wav(seconds: u32) -> Vec<u8> {
        let rate = 16_000u32;
        let data = rate * 2 * seconds;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        out
    }

    #[test]
    fn tiers_keep_their_number_of_voices_and_free_has_none() {
        assert_eq!(voice_limit(Tier::Free), None);
        assert_eq!(voice_limit(Tier::Creator), Some(1));
        assert_eq!(voice_limit(Tier::Pro), Some(3));
        assert_eq!(voice_limit(Tier::Studio), Some(10));
    }

    #[test]
    fn a_wav_header_gives_its_duration() {
        let head = wav(12);
        let size = head.len() as u64 + 16_000 * 2 * 12;
        assert_eq!(
            probe(&head, size),
            Ok(Probe {
                container: Container::Wav,
                duration_ms: 12_000
            })
        );
    }

    #[test]
    fn a_flac_streaminfo_gives_its_duration() {
        let mut head = b"fLaC".to_vec();
        head.extend_from_slice(&[0x80, 0, 0, 34]);
        let mut info = [0u8; 34];
        // 44 100 Hz, 20 bits: 0x0AC44; total samples 441 000 (10 s).
        info[10] = 0x0a;
        info[11] = 0xc4;
        info[12] = 0x40;
        let samples: u64 = 441_000;
        info[13] = ((samples >> 32) & 0x0f) as u8;
        info[14..18].copy_from_slice(&(samples as u32).to_be_bytes());
        head.extend_from_slice(&info);
        assert_eq!(probe(&head, 500_000).map(|p| p.duration_ms), Ok(10_000));
    }

    #[test]
    fn a_constant_rate_mp3_is_timed_by_its_bitrate_after_its_tag() {
        let mut head = b"ID3\x04\x00\x00\x00\x00\x00\x0a".to_vec();
        head.extend_from_slice(&[0; 10]);
        // MPEG-1 layer III, 128 kbps, 44.1 kHz, stereo.
        head.extend_from_slice(&[0xff, 0xfb, 0x90, 0x00]);
        head.extend_from_slice(&[0; 64]);
        let size = 20 + 16_000 * 30; // 30 s at 16 000 bytes a second
        assert_eq!(
            probe(&head, size as u64).map(|p| (p.container, p.duration_ms)),
            Ok((Container::Mp3, 30_000))
        );
    }

    #[test]
    fn a_variable_rate_mp3_is_timed_by_its_xing_frame_count() {
        let mut head = vec![0xff, 0xfb, 0x90, 0x00];
        head.extend_from_slice(&[0; 32]);
        head.extend_from_slice(b"Xing\x00\x00\x00\x01");
        head.extend_from_slice(&383u32.to_be_bytes()); // 383 × 1152 / 44 100 ≈ 10.004 s
        assert_eq!(probe(&head, 1_000_000).map(|p| p.duration_ms), Ok(10_004));
    }

    #[test]
    fn anything_else_or_too_large_is_refused_with_its_reason() {
        assert!(probe(b"%PDF-1.7 not audio", 100)
            .unwrap_err()
            .contains("not a WAV, FLAC or MP3"));
        assert!(probe(&wav(10), MAX_UPLOAD_BYTES + 1)
            .unwrap_err()
            .contains("at most 50000000"));
        let mut no_data = wav(10);
        no_data.truncate(36);
        assert!(probe(&no_data, 1000).unwrap_err().contains("data chunk"));
    }

    #[test]
    fn keys_name_their_owner_voice_and_slot_and_nothing_else_parses() {
        let owner = UserId::parse("u1").unwrap();
        let voice = VoiceId::parse("01JVOICE").unwrap();
        let key = recording_key(&owner, &voice, Slot::Consent(2));
        assert_eq!(key, "voices/u1/01JVOICE/consent-2");
        assert_eq!(
            parse_recording_key(&key),
            Some((owner.clone(), voice.clone(), Slot::Consent(2)))
        );
        for bad in [
            "voices/u1/01JVOICE/consent-4",
            "voices/u1/01JVOICE/sample-0",
            "voices/u1/01JVOICE/sample-4",
            "voices/u1/01JVOICE/sample-1/x",
            "audio/u1/01JVOICE/sample-1",
            "voices/u 1/01JVOICE/sample-1",
        ] {
            assert_eq!(parse_recording_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn five_creations_an_hour_in_a_rolling_window() {
        let now = at("2026-12-04T10:30:00Z");
        let mut used = Creations::new();
        for n in 0..CREATIONS_PER_HOUR {
            let slot = free_creation_slot(&used, now).expect("free");
            assert_eq!(slot, n.to_string());
            used.insert(slot, now - Duration::minutes(50 - n as i64));
        }
        // The oldest (50 minutes ago) frees up 10 minutes from now, not at the top of the hour.
        assert_eq!(
            free_creation_slot(&used, now),
            Err(at("2026-12-04T10:40:00Z"))
        );
        assert_eq!(
            free_creation_slot(&used, at("2026-12-04T10:40:00Z")),
            Ok("0".to_owned())
        );
    }

    #[test]
    fn results_apply_to_their_attempt_only_and_mismatches_end_after_three() {
        let verifying = |attempt| Current {
            status: Status::Verifying,
            attempt,
        };
        let mismatch = Outcome::ConsentMismatch {
            reason: "other speaker".into(),
        };
        assert!(matches!(
            apply(verifying(1), &mismatch, 1),
            Change::To {
                status: Status::AwaitingSamples,
                consent_spent: true,
                ..
            }
        ));
        assert!(matches!(
            apply(verifying(3), &mismatch, 3),
            Change::To {
                status: Status::Failed,
                ..
            }
        ));
        assert_eq!(apply(verifying(2), &mismatch, 1), Change::Stale);
        assert!(matches!(
            apply(verifying(1), &Outcome::Verified, 1),
            Change::To {
                status: Status::Training,
                ..
            }
        ));
        let ready = Outcome::Ready {
            model_key: "voice-models/u/v/model".into(),
            model_bytes: 10,
        };
        assert!(matches!(
            apply(verifying(1), &ready, 1),
            Change::To {
                status: Status::Ready,
                ..
            }
        ));
        let trained = Current {
            status: Status::Ready,
            attempt: 1,
        };
        assert_eq!(apply(trained, &Outcome::Verified, 1), Change::Stale);
        let deleted = Current {
            status: Status::Deleted,
            attempt: 1,
        };
        assert_eq!(apply(deleted, &ready, 1), Change::Stale);
        assert_eq!(apply(deleted, &Outcome::Deleted, 0), Change::Purged);
    }

    #[test]
    fn submission_needs_consent_and_ten_seconds_of_samples() {
        assert!(missing_for_submit(false, 20_000, 1).is_some());
        assert!(missing_for_submit(true, 0, 0).is_some());
        assert!(missing_for_submit(true, 9_999, 2)
            .unwrap()
            .contains("at least 10 s"));
        assert_eq!(missing_for_submit(true, 10_000, 1), None);
    }

    #[test]
    fn phrases_and_names_and_languages() {
        let owner = UserId::parse("alice").unwrap();
        let phrase = consent_phrase(&owner, "K7Q2-9XPA");
        assert!(phrase.contains("alice") && phrase.contains("K7Q2-9XPA"));
        assert_eq!(parse_name("  Studio voice "), Ok("Studio voice".into()));
        assert!(parse_name("   ").is_err());
        assert!(parse_language("pt-BR").is_ok());
        assert!(parse_language("en").is_ok());
        assert!(parse_language("english").is_err());
        assert!(parse_language("EN").is_err());
    }
}
