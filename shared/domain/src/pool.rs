//! Community pool rules: which paid generations contribute (5%, every 20th), their points, and the
//! ranking periods a contribution counts in.

use super::ids::UserId;
use super::tiers::{Quality, Tier};
use super::DomainError;
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

/// Whether the n-th generation recorded on a paid tier (1-based, over the user's whole history) goes
/// to the pool: when floor(n*5/100) > floor((n-1)*5/100), i.e. every 20th.
pub fn is_contribution(n: u64) -> bool {
    n >= 1 && n.saturating_mul(5) / 100 > (n - 1).saturating_mul(5) / 100
}

/// Points a contribution earns: standard 1, high 2, ultra 3.
pub fn points(quality: Quality) -> u32 {
    quality.points()
}

/// A pool item id as we mint them (a ULID), canonical; `None` for anything that cannot name one.
pub fn contribution_id(raw: &str) -> Option<String> {
    ulid::Ulid::from_string(raw).ok().map(|id| id.to_string())
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

    /// `week`, `month` or `all_time`, as the API names them.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "all_time" => Ok(Self::AllTime),
            _ => Err(DomainError::new(
                "timeframe",
                "must be one of week, month, all_time",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Month => "month",
            Self::AllTime => "all_time",
        }
    }

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

/// One contributor's standing in a ranking period, as stored and as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub user_id: UserId,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub tier: Tier,
    pub contributions: u64,
    pub points: u64,
}

/// A row of `GET /api/community/ranking`: the standing and its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RankedRow {
    pub rank: usize,
    #[serde(flatten)]
    pub standing: Standing,
}

/// The first `limit` standings: most points, then most contributions, then user id; ranked 1, 2, ...
pub fn rank(mut standings: Vec<Standing>, limit: usize) -> Vec<RankedRow> {
    standings.sort_by(|a, b| {
        b.points
            .cmp(&a.points)
            .then(b.contributions.cmp(&a.contributions))
            .then(a.user_id.cmp(&b.user_id))
    });
    standings
        .into_iter()
        .take(limit)
        .enumerate()
        .map(|(i, standing)| RankedRow {
            rank: i + 1,
            standing,
        })
        .collect()
}

#[cfg(test)]
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
    fn ranking_periods_follow_iso_weeks_and_utc_months() {
        use Timeframe::{AllTime, Month, Week};
        let cases = [
            // 2026-12-31 is a Thursday: week 53 of 2026, which runs until Sunday 2027-01-03.
            (Week, "2026-12-31T23:59:59Z", "W#2026-W53"),
            (Week, "2027-01-03T23:59:59Z", "W#2026-W53"),
            (Week, "2027-01-04T00:00:00Z", "W#2027-W01"),
            // Monday 2024-12-30 already belongs to 2025-W01.
            (Week, "2024-12-30T00:00:00Z", "W#2025-W01"),
            // The week turns at Monday 00:00 UTC.
            (Week, "2026-11-29T23:59:59Z", "W#2026-W48"),
            (Week, "2026-11-30T00:00:00Z", "W#2026-W49"),
            (Month, "2026-12-31T23:59:59Z", "M#2026-12"),
            (Month, "2027-01-01T00:00:00Z", "M#2027-01"),
            (AllTime, "2027-01-01T00:00:00Z", "ALL"),
        ];
        for (timeframe, now, key) in cases {
            assert_eq!(timeframe.period_key(at(now)), key, "{timeframe:?} at {now}");
        }
        assert_eq!(Week.label(at("2026-11-26T10:00:00Z")), "2026-W48");
        assert_eq!(Month.label(at("2026-11-26T10:00:00Z")), "2026-11");
        assert_eq!(AllTime.label(at("2026-11-26T10:00:00Z")), "all");
    }

    #[test]
    fn points_follow_quality() {
        assert_eq!(
            points(Quality::Standard) + points(Quality::High) + points(Quality::Ultra),
            6
        );
    }

    #[test]
    fn ranking_orders_by_points_then_contributions_then_user_id() {
        let standing = |id: &str, points, contributions| Standing {
            user_id: UserId::parse(id).unwrap(),
            username: None,
            avatar_url: None,
            tier: Tier::Pro,
            contributions,
            points,
        };
        let rows = rank(
            vec![
                standing("b", 6, 2),
                standing("a", 6, 2),
                standing("c", 6, 3),
                standing("d", 9, 3),
                standing("e", 1, 1),
            ],
            4,
        );
        let order: Vec<(usize, &str)> = rows
            .iter()
            .map(|r| (r.rank, r.standing.user_id.as_str()))
            .collect();
        assert_eq!(order, [(1, "d"), (2, "c"), (3, "a"), (4, "b")]);
        assert_eq!(Timeframe::parse("all_time"), Ok(Timeframe::AllTime));
        assert_eq!(Timeframe::parse("year").unwrap_err().field, "timeframe");
    }
}
