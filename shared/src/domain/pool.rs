//! Community pool rules: which paid generations contribute (5%, every 20th), their points, and the
//! ranking periods a contribution counts in.

use super::tiers::Quality;
use chrono::{DateTime, Datelike, Utc};

/// Whether the n-th generation recorded on a paid tier (1-based, over the user's whole history) goes
/// to the pool: when floor(n*5/100) > floor((n-1)*5/100), i.e. every 20th.
pub fn is_contribution(n: u64) -> bool {
    n >= 1 && n.saturating_mul(5) / 100 > (n - 1).saturating_mul(5) / 100
}

/// Points a contribution earns: standard 1, high 2, ultra 3.
pub fn points(quality: Quality) -> u32 {
    quality.points()
}

/// A ranking timeframe of `GET /api/community/ranking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeframe {
    /// The current ISO week (UTC).
    Week,
    /// The current calendar month (UTC).
    Month,
    AllTime,
}

impl Timeframe {
    pub const ALL: [Timeframe; 3] = [Timeframe::Week, Timeframe::Month, Timeframe::AllTime];

    /// The label the API shows: `2026-W48`, `2026-11` or `all`.
    pub fn label(self, now: DateTime<Utc>) -> String {
        match self {
            Self::Week => {
                let week = now.iso_week();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            Self::Month => format!("{:04}-{:02}", now.year(), now.month()),
            Self::AllTime => "all".to_owned(),
        }
    }

    /// The key of the ranking partition for the period holding `now`: `W#2026-W48`, `M#2026-11`, `ALL`.
    pub fn period_key(self, now: DateTime<Utc>) -> String {
        match self {
            Self::Week => format!("W#{}", self.label(now)),
            Self::Month => format!("M#{}", self.label(now)),
            Self::AllTime => "ALL".to_owned(),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::clock::at;

    #[test]
    fn every_twentieth_paid_generation_contributes() {
        let hits: Vec<u64> = (1..=100).filter(|n| is_contribution(*n)).collect();
        assert_eq!(hits, vec![20, 40, 60, 80, 100]);
        assert!(!is_contribution(0));
    }

    #[test]
    fn five_percent_over_long_histories() {
        assert_eq!((1..=10_000).filter(|n| is_contribution(*n)).count(), 500);
        assert!(is_contribution(1_000_000) && !is_contribution(1_000_001));
    }

    #[test]
    fn iso_weeks_cross_years_as_iso_says() {
        // 2026-12-31 is a Thursday: week 53 of 2026. 2027-01-01 (Friday) is still 2026-W53.
        assert_eq!(
            Timeframe::Week.label(at("2026-12-31T23:59:59Z")),
            "2026-W53"
        );
        assert_eq!(
            Timeframe::Week.label(at("2027-01-03T23:59:59Z")),
            "2026-W53"
        );
        assert_eq!(
            Timeframe::Week.label(at("2027-01-04T00:00:00Z")),
            "2027-W01"
        );
        // 2024-12-30 (Monday) belongs to 2025-W01.
        assert_eq!(
            Timeframe::Week.label(at("2024-12-30T00:00:00Z")),
            "2025-W01"
        );
        assert_eq!(
            Timeframe::Week.period_key(at("2026-11-26T10:00:00Z")),
            "W#2026-W48"
        );
    }

    #[test]
    fn iso_week_turns_at_monday_midnight_utc() {
        assert_eq!(
            Timeframe::Week.label(at("2026-11-29T23:59:59Z")),
            "2026-W48"
        );
        assert_eq!(
            Timeframe::Week.label(at("2026-11-30T00:00:00Z")),
            "2026-W49"
        );
    }

    #[test]
    fn month_and_all_time_keys() {
        assert_eq!(
            Timeframe::Month.period_key(at("2026-12-31T23:59:59Z")),
            "M#2026-12"
        );
        assert_eq!(
            Timeframe::Month.period_key(at("2027-01-01T00:00:00Z")),
            "M#2027-01"
        );
        assert_eq!(
            Timeframe::AllTime.period_key(at("2027-01-01T00:00:00Z")),
            "ALL"
        );
        assert_eq!(Timeframe::AllTime.label(at("2027-01-01T00:00:00Z")), "all");
    }

    #[test]
    fn points_follow_quality() {
        assert_eq!(
            points(Quality::Standard) + points(Quality::High) + points(Quality::Ultra),
            6
        );
    }
}
