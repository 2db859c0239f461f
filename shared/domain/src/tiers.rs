//! The one tier table of the product, and the qualities a tier may generate at.

use super::DomainError;
use serde::{Deserialize, Serialize};

pub const GIB: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE", try_from = "String")]
pub enum Tier {
    Free,
    Creator,
    Pro,
    Studio,
}

/// A canonical WAV file's header.
pub const WAV_HEADER_BYTES: u64 = 44;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Quality {
    Standard,
    High,
    Ultra,
}

/// How long one allowance of generations lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Day,
    Month,
}

impl PeriodKind {
    /// `day` or `month`, as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// One row of the tier table, serialised as `GET /api/tiers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierSpec {
    #[serde(rename = "id")]
    pub tier: Tier,
    pub price_cents: u64,
    pub generations: u32,
    pub period: PeriodKind,
    pub qualities: &'static [Quality],
    /// `None` is unlimited storage.
    pub storage_bytes: Option<u64>,
    /// Lyrics drafts written by the language model per UTC day (`POST /api/lyrics`).
    pub lyrics_per_day: u32,
    /// Messages to Pixel, the companion, per UTC day (`POST /api/pixel/chat`).
    pub pixel_messages_per_day: u32,
    pub features: &'static [&'static str],
}

const ALL_QUALITIES: &[Quality] = &[Quality::Standard, Quality::High, Quality::Ultra];

/// The tier table, in the contract's order (openapi.yaml).
pub const TIERS: [TierSpec; 4] = [
    TierSpec {
        tier: Tier::Free,
        price_cents: 0,
        generations: 3,
        period: PeriodKind::Day,
        qualities: &[Quality::Standard],
        storage_bytes: Some(GIB),
        lyrics_per_day: 5,
        pixel_messages_per_day: 20,
        features: &[
            "3 generations per day",
            "standard quality",
            "1 GiB audio storage",
            "claim up to 3 community pool tracks per day",
        ],
    },
    TierSpec {
        tier: Tier::Creator,
        price_cents: 999,
        generations: 50,
        period: PeriodKind::Month,
        qualities: &[Quality::Standard, Quality::High],
        storage_bytes: Some(10 * GIB),
        lyrics_per_day: 50,
        pixel_messages_per_day: 200,
        features: &[
            "50 generations per month",
            "standard and high quality",
            "10 GiB audio storage",
            "community pool contributions and ranking",
            "billing portal",
        ],
    },
    TierSpec {
        tier: Tier::Pro,
        price_cents: 2999,
        generations: 200,
        period: PeriodKind::Month,
        qualities: ALL_QUALITIES,
        storage_bytes: Some(100 * GIB),
        lyrics_per_day: 200,
        pixel_messages_per_day: 500,
        features: &[
            "200 generations per month",
            "standard, high and ultra quality",
            "100 GiB audio storage",
            "community pool contributions and ranking",
            "billing portal",
        ],
    },
    TierSpec {
        tier: Tier::Studio,
        price_cents: 9999,
        generations: 1000,
        period: PeriodKind::Month,
        qualities: ALL_QUALITIES,
        storage_bytes: None,
        lyrics_per_day: 1000,
        pixel_messages_per_day: 2000,
        features: &[
            "1000 generations per month",
            "standard, high and ultra quality",
            "unlimited audio storage",
            "community pool contributions and ranking",
            "billing portal",
        ],
    },
];

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Creator, Tier::Pro, Tier::Studio];

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "FREE" => Ok(Self::Free),
            "CREATOR" => Ok(Self::Creator),
            "PRO" => Ok(Self::Pro),
            "STUDIO" => Ok(Self::Studio),
            _ => Err(DomainError::new(
                "tier",
                "must be one of FREE, CREATOR, PRO, STUDIO",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "FREE",
            Self::Creator => "CREATOR",
            Self::Pro => "PRO",
            Self::Studio => "STUDIO",
        }
    }

    pub fn spec(self) -> &'static TierSpec {
        match self {
            Self::Free => &TIERS[0],
            Self::Creator => &TIERS[1],
            Self::Pro => &TIERS[2],
            Self::Studio => &TIERS[3],
        }
    }

    pub fn is_paid(self) -> bool {
        self != Self::Free
    }

    pub fn allows(self, quality: Quality) -> bool {
        self.spec().qualities.contains(&quality)
    }
}

impl TryFrom<String> for Tier {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Quality {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "standard" => Ok(Self::Standard),
            "high" => Ok(Self::High),
            "ultra" => Ok(Self::Ultra),
            _ => Err(DomainError::new(
                "quality",
                "must be one of standard, high, ultra",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::High => "high",
            Self::Ultra => "ultra",
        }
    }

    /// The most bytes one second of a job's audio at this quality may take as stored: 16-bit PCM
    /// WAV at 16 kHz mono (standard), 32 kHz mono (high), 44.1 kHz stereo (ultra). A submission
    /// needs `max_audio_bytes` free in its owner's storage.
    pub fn max_bytes_per_second(self) -> u64 {
        match self {
            Self::Standard => 32_000,
            Self::High => 64_000,
            Self::Ultra => 176_400,
        }
    }

    /// The most bytes a job of `seconds` at this quality may store: the samples and a WAV header.
    pub fn max_audio_bytes(self, seconds: f64) -> u64 {
        let samples = (seconds.max(0.0) * self.max_bytes_per_second() as f64).ceil();
        WAV_HEADER_BYTES + samples as u64
    }

    /// Community pool points a contribution at this quality earns.
    pub fn points(self) -> u32 {
        match self {
            Self::Standard => 1,
            Self::High => 2,
            Self::Ultra => 3,
        }
    }
}

impl TryFrom<String> for Quality {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_product_card() {
        let rows: Vec<_> = TIERS
            .iter()
            .map(|t| {
                (
                    t.tier.as_str(),
                    t.price_cents,
                    t.generations,
                    t.period,
                    t.qualities.len(),
                    t.storage_bytes,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("FREE", 0, 3, PeriodKind::Day, 1, Some(1_073_741_824)),
                (
                    "CREATOR",
                    999,
                    50,
                    PeriodKind::Month,
                    2,
                    Some(10_737_418_240)
                ),
                (
                    "PRO",
                    2999,
                    200,
                    PeriodKind::Month,
                    3,
                    Some(107_374_182_400)
                ),
                ("STUDIO", 9999, 1000, PeriodKind::Month, 3, None),
            ]
        );
    }

    #[test]
    fn spec_returns_the_row_of_its_own_tier() {
        for tier in Tier::ALL {
            assert_eq!(tier.spec().tier, tier);
        }
    }

    #[test]
    fn qualities_are_gated_by_tier() {
        assert!(Tier::Free.allows(Quality::Standard));
        assert!(!Tier::Free.allows(Quality::High));
        assert!(Tier::Creator.allows(Quality::High));
        assert!(!Tier::Creator.allows(Quality::Ultra));
        assert!(Tier::Pro.allows(Quality::Ultra));
        assert!(Tier::Studio.allows(Quality::Ultra));
    }

    #[test]
    fn points_are_one_two_three() {
        assert_eq!(
            [Quality::Standard, Quality::High, Quality::Ultra].map(Quality::points),
            [1, 2, 3]
        );
    }

    #[test]
    fn parsers_reject_other_spellings() {
        for bad in ["free", "Pro", "", "ENTERPRISE"] {
            assert_eq!(Tier::parse(bad).map_err(|e| e.field), Err("tier"));
        }
        for bad in ["Standard", "HIGH", "low", ""] {
            assert_eq!(Quality::parse(bad).map_err(|e| e.field), Err("quality"));
        }
        assert_eq!(
            serde_json::from_str::<Tier>("\"PRO\"").ok(),
            Some(Tier::Pro)
        );
        assert!(serde_json::from_str::<Quality>("\"extreme\"").is_err());
    }

    #[test]
    fn tiers_serialise_as_the_api_shows_them() {
        let json = serde_json::to_value(Tier::Studio.spec()).unwrap_or_default();
        assert_eq!(json["id"], "STUDIO");
        assert_eq!(json["period"], "month");
        assert_eq!(json["storage_bytes"], serde_json::Value::Null);
        assert_eq!(
            json["qualities"],
            serde_json::json!(["standard", "high", "ultra"])
        );
    }
}
