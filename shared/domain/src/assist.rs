//! Daily allowances of the language-model features: lyrics drafts (`POST /api/lyrics`) and messages
//! to Pixel (`POST /api/pixel/chat`), per tier and UTC day (the tier table holds the numbers).
//!
//! A unit is taken before the model is called and given back when the call fails, so a burst of
//! parallel requests never makes the model work for more requests than the allowance has left. A
//! failure gives its unit back at most `GIVE_BACKS_PER_DAY` times a day per user and feature; after
//! that a failure spends its unit, so a prompt that stalls the model ("write 5,000 words") costs at
//! most the day's allowance, not unlimited model calls.
//! The counters live in the user's `usage` map beside the generation counters, keyed by feature and
//! day (`lyrics/D#2026-11-26`), so no day's count is lost while any clock can still compute that day.

use super::period::Period;
use super::tiers::Tier;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Lyrics,
    Pixel,
}

/// Units a user gets back per feature and UTC day when the model fails.
pub const GIVE_BACKS_PER_DAY: u32 = 3;

impl Feature {
    pub const ALL: [Feature; 2] = [Self::Lyrics, Self::Pixel];

    /// The prefix of this feature's give-back counters (`pixel-back/D#2026-11-26`).
    fn back_prefix(self) -> &'static str {
        match self {
            Self::Lyrics => "lyrics-back/",
            Self::Pixel => "pixel-back/",
        }
    }

    /// The give-back counter of the day of `counter_key` (a counter key of this feature).
    pub fn give_back_key(self, counter_key: &str) -> String {
        let day = counter_key
            .strip_prefix(self.prefix())
            .unwrap_or(counter_key);
        format!("{}{day}", self.back_prefix())
    }

    /// The prefix of this feature's counter keys in the usage map.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Lyrics => "lyrics/",
            Self::Pixel => "pixel/",
        }
    }

    /// `lyrics` or `pixel`, as analytics and logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lyrics => "lyrics",
            Self::Pixel => "pixel",
        }
    }

    /// Units per UTC day on `tier`.
    pub fn limit(self, tier: Tier) -> u32 {
        let spec = tier.spec();
        match self {
            Self::Lyrics => spec.lyrics_per_day,
            Self::Pixel => spec.pixel_messages_per_day,
        }
    }

    /// The largest allowance of any tier: no counter is ever taken past it.
    pub fn cap(self) -> u32 {
        super::tiers::TIERS
            .iter()
            .map(|spec| self.limit(spec.tier))
            .max()
            .unwrap_or(0)
    }

    /// The counter of the UTC day holding `now`.
    pub fn counter_key(self, now: DateTime<Utc>) -> String {
        format!("{}{}", self.prefix(), Period::utc_day(now).key())
    }

    /// The period key inside a counter key of any feature, or its give-back counter
    /// (`D#2026-11-26` of `pixel/D#2026-11-26` and of `pixel-back/D#2026-11-26`).
    pub fn strip(key: &str) -> Option<&str> {
        Self::ALL.iter().find_map(|f| {
            key.strip_prefix(f.prefix())
                .or_else(|| key.strip_prefix(f.back_prefix()))
        })
    }
}

/// A unit granted: what is left of the day after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub limit: u32,
    pub used: u32,
    pub remaining: u32,
    pub reset_at: DateTime<Utc>,
}

/// The day's allowance is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub feature: Feature,
    pub tier: Tier,
    pub limit: u32,
    pub reset_at: DateTime<Utc>,
    /// Whole seconds until the day ends, at least 1 (`Retry-After`).
    pub retry_after: u64,
}

/// The refusal of a unit of `feature` on `tier` at `now`: the day's allowance is spent.
pub fn spent(feature: Feature, tier: Tier, now: DateTime<Utc>) -> Spent {
    let day = Period::utc_day(now);
    Spent {
        feature,
        tier,
        limit: feature.limit(tier),
        reset_at: day.end,
        retry_after: day.seconds_until_end(now),
    }
}

/// The decision after a unit was counted: `count` is the day's counter with this request's unit in
/// it. Over the tier's limit the unit must be given back.
pub fn decide(
    feature: Feature,
    tier: Tier,
    count: u32,
    now: DateTime<Utc>,
) -> Result<Granted, Spent> {
    let limit = feature.limit(tier);
    if count > limit {
        return Err(spent(feature, tier, now));
    }
    Ok(Granted {
        limit,
        used: count,
        remaining: limit - count,
        reset_at: Period::utc_day(now).end,
    })
}

/// Who said a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;

    #[test]
    fn each_tier_has_its_daily_allowances() {
        let lyrics: Vec<u32> = [Tier::Free, Tier::Creator, Tier::Pro, Tier::Studio]
            .iter()
            .map(|t| Feature::Lyrics.limit(*t))
            .collect();
        let pixel: Vec<u32> = [Tier::Free, Tier::Creator, Tier::Pro, Tier::Studio]
            .iter()
            .map(|t| Feature::Pixel.limit(*t))
            .collect();
        assert_eq!(lyrics, [5, 50, 200, 1000]);
        assert_eq!(pixel, [20, 200, 500, 2000]);
        assert_eq!((Feature::Lyrics.cap(), Feature::Pixel.cap()), (1000, 2000));
    }

    #[test]
    fn the_unit_past_the_limit_is_refused_until_the_utc_day_ends() {
        let now = at("2026-11-26T23:59:59.250Z");
        let ok = decide(Feature::Lyrics, Tier::Free, 5, now).unwrap();
        assert_eq!((ok.used, ok.remaining), (5, 0));
        assert_eq!(ok.reset_at, at("2026-11-27T00:00:00Z"));
        let spent = decide(Feature::Lyrics, Tier::Free, 6, now).unwrap_err();
        assert_eq!((spent.limit, spent.retry_after), (5, 1));
        assert!(decide(Feature::Lyrics, Tier::Creator, 6, now).is_ok());
    }

    #[test]
    fn counters_are_keyed_by_feature_and_utc_day() {
        let key = Feature::Pixel.counter_key(at("2026-11-26T23:59:59.999Z"));
        assert_eq!(key, "pixel/D#2026-11-26");
        assert_eq!(
            Feature::Lyrics.counter_key(at("2026-11-27T00:00:00Z")),
            "lyrics/D#2026-11-27"
        );
        assert_eq!(Feature::strip(&key), Some("D#2026-11-26"));
        let back = Feature::Pixel.give_back_key(&key);
        assert_eq!(back, "pixel-back/D#2026-11-26");
        assert_eq!(Feature::strip(&back), Some("D#2026-11-26"));
        assert_eq!(Feature::strip("D#2026-11-26"), None);
    }
}
