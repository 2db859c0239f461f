//! Usage periods: the UTC day, the UTC calendar month and the anchored billing month.
//!
//! Periods are computed from the clock on every request, never "reset" by a job: the counter of a
//! period is keyed by the period itself, so a new period simply starts at zero.

use super::tiers::PeriodKind;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, TimeZone, Utc};

/// A half-open interval `[start, end)` of one allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub kind: PeriodKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
}

impl Period {
    /// The UTC day holding `now`.
    pub fn utc_day(now: DateTime<Utc>) -> Self {
        let start = midnight(now.date_naive());
        Self {
            kind: PeriodKind::Day,
            start,
            end: start + Duration::days(1),
        }
    }

    /// The UTC calendar month holding `now`.
    pub fn utc_month(now: DateTime<Utc>) -> Self {
        let first = now.date_naive().with_day(1).unwrap_or(now.date_naive());
        let start = midnight(first);
        let end = start
            .checked_add_months(Months::new(1))
            .unwrap_or(start + Duration::days(31));
        Self {
            kind: PeriodKind::Month,
            start,
            end,
        }
    }

    /// The billing month holding `now` for a cycle anchored at `anchor`, as Stripe counts it: the n-th
    /// boundary is the anchor plus n months, clamped to the end of a shorter month (Jan 31 → Feb 28 or 29
    /// → Mar 31), always measured from the anchor so a short month does not shift later boundaries.
    pub fn billing_month(anchor: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let boundary = |n: i64| -> DateTime<Utc> {
            let shifted = if n >= 0 {
                anchor.checked_add_months(Months::new(u32::try_from(n).unwrap_or(u32::MAX)))
            } else {
                anchor.checked_sub_months(Months::new(u32::try_from(-n).unwrap_or(u32::MAX)))
            };
            shifted.unwrap_or(anchor)
        };
        let mut n = i64::from(now.year() - anchor.year()) * 12 + i64::from(now.month())
            - i64::from(anchor.month());
        // The estimate is off by at most one either way (day and time of day within the month).
        if boundary(n) > now {
            n -= 1;
        } else if boundary(n + 1) <= now {
            n += 1;
        }
        Self {
            kind: PeriodKind::Month,
            start: boundary(n),
            end: boundary(n + 1),
        }
    }

    /// The key of this period's usage counter: `D#2026-11-26` for a day, `M#<start>` for a month.
    pub fn key(&self) -> String {
        match self.kind {
            PeriodKind::Day => format!("D#{}", self.start.format("%Y-%m-%d")),
            PeriodKind::Month => format!("M#{}", self.start.format("%Y-%m-%dT%H:%M:%SZ")),
        }
    }

    /// Whether a usage counter keyed `key` can be dropped at `now`: no clock, however far behind (within
    /// a day), can compute its period again. A day's counter is kept three days from its start; a
    /// month's 400 days, enough for any billing period Stripe may report, including a yearly one. An
    /// unknown key is never dropped.
    pub fn key_outlived(key: &str, now: DateTime<Utc>) -> bool {
        // The language-model features' counters are day counters under a feature prefix.
        let key = super::assist::Feature::strip(key).unwrap_or(key);
        let kept = |start: DateTime<Utc>, days: i64| now >= start + Duration::days(days);
        if let Some(day) = key.strip_prefix("D#") {
            NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok_and(|d| kept(midnight(d), 3))
        } else if let Some(start) = key.strip_prefix("M#") {
            DateTime::parse_from_rfc3339(start).is_ok_and(|s| kept(s.with_timezone(&Utc), 400))
        } else {
            false
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// Whole seconds from `now` until the period ends, rounded up and at least 1 (for `Retry-After`).
    pub fn seconds_until_end(&self, now: DateTime<Utc>) -> u64 {
        let millis = (self.end - now).num_milliseconds().max(1);
        u64::try_from(millis).unwrap_or(1).div_ceil(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;

    fn cycle(anchor: &str, now: &str) -> (DateTime<Utc>, DateTime<Utc>) {
        let p = Period::billing_month(at(anchor), at(now));
        (p.start, p.end)
    }

    #[test]
    fn counters_are_dropped_only_when_no_clock_can_compute_their_period_again() {
        let cases = [
            ("D#2026-11-26", "2026-11-28T23:59:59Z", false),
            ("D#2026-11-26", "2026-11-29T00:00:00Z", true),
            ("M#2026-11-14T17:42:09Z", "2027-12-18T17:42:08Z", false),
            ("M#2026-11-14T17:42:09Z", "2027-12-19T17:42:09Z", true),
            ("D#not-a-date", "2030-01-01T00:00:00Z", false),
            ("X#whatever", "2030-01-01T00:00:00Z", false),
            ("lyrics/D#2026-11-26", "2026-11-28T23:59:59Z", false),
            ("pixel/D#2026-11-26", "2026-11-29T00:00:00Z", true),
            ("other/D#2026-11-26", "2030-01-01T00:00:00Z", false),
        ];
        for (key, now, outlived) in cases {
            assert_eq!(
                Period::key_outlived(key, at(now)),
                outlived,
                "{key} at {now}"
            );
        }
        // Every key a period makes is parseable back.
        let day = Period::utc_day(at("2026-11-26T10:00:00Z"));
        assert!(Period::key_outlived(&day.key(), at("2026-12-01T00:00:00Z")));
        let month = Period::billing_month(at("2026-01-31T08:00:00Z"), at("2026-02-10T00:00:00Z"));
        assert!(Period::key_outlived(
            &month.key(),
            at("2027-06-01T00:00:00Z")
        ));
    }

    #[test]
    fn utc_day_runs_from_midnight_to_midnight() {
        let p = Period::utc_day(at("2026-11-26T23:59:59.999Z"));
        assert_eq!(
            (p.start, p.end),
            (at("2026-11-26T00:00:00Z"), at("2026-11-27T00:00:00Z"))
        );
        assert_eq!(p.key(), "D#2026-11-26");
        assert_eq!(
            Period::utc_day(at("2026-11-27T00:00:00Z")).key(),
            "D#2026-11-27"
        );
    }

    #[test]
    fn utc_day_crosses_year_and_leap_day() {
        let p = Period::utc_day(at("2026-12-31T12:00:00Z"));
        assert_eq!(p.end, at("2027-01-01T00:00:00Z"));
        let leap = Period::utc_day(at("2028-02-29T08:00:00Z"));
        assert_eq!(
            (leap.key().as_str(), leap.end),
            ("D#2028-02-29", at("2028-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn utc_month_handles_december_and_february() {
        let dec = Period::utc_month(at("2026-12-31T23:59:59Z"));
        assert_eq!(
            (dec.start, dec.end),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(dec.key(), "M#2026-12-01T00:00:00Z");
        let feb = Period::utc_month(at("2028-02-10T00:00:00Z"));
        assert_eq!(feb.end, at("2028-03-01T00:00:00Z"));
        let feb27 = Period::utc_month(at("2027-02-28T23:00:00Z"));
        assert_eq!(feb27.end, at("2027-03-01T00:00:00Z"));
    }

    #[test]
    fn billing_month_clamps_jan_31_to_the_end_of_february() {
        assert_eq!(
            cycle("2027-01-31T10:00:00Z", "2027-02-15T00:00:00Z"),
            (at("2027-01-31T10:00:00Z"), at("2027-02-28T10:00:00Z"))
        );
        // leap year: Feb 29
        assert_eq!(
            cycle("2028-01-31T10:00:00Z", "2028-02-15T00:00:00Z"),
            (at("2028-01-31T10:00:00Z"), at("2028-02-29T10:00:00Z"))
        );
    }

    #[test]
    fn billing_month_returns_to_the_anchor_day_after_a_short_month() {
        assert_eq!(
            cycle("2027-01-31T10:00:00Z", "2027-03-01T00:00:00Z"),
            (at("2027-02-28T10:00:00Z"), at("2027-03-31T10:00:00Z"))
        );
        assert_eq!(
            cycle("2027-01-31T10:00:00Z", "2027-04-30T10:00:00Z"),
            (at("2027-04-30T10:00:00Z"), at("2027-05-31T10:00:00Z"))
        );
    }

    #[test]
    fn billing_month_crosses_december_into_january() {
        assert_eq!(
            cycle("2026-10-15T08:30:00Z", "2027-01-02T00:00:00Z"),
            (at("2026-12-15T08:30:00Z"), at("2027-01-15T08:30:00Z"))
        );
        assert_eq!(
            cycle("2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z"),
            (at("2027-01-31T00:00:00Z"), at("2027-02-28T00:00:00Z"))
        );
    }

    #[test]
    fn billing_month_boundaries_are_half_open() {
        let anchor = "2026-11-10T12:00:00Z";
        assert_eq!(
            cycle(anchor, "2026-12-10T11:59:59Z").0,
            at("2026-11-10T12:00:00Z")
        );
        assert_eq!(
            cycle(anchor, "2026-12-10T12:00:00Z").0,
            at("2026-12-10T12:00:00Z")
        );
    }

    #[test]
    fn billing_month_before_the_anchor_counts_backwards() {
        assert_eq!(
            cycle("2027-03-31T00:00:00Z", "2027-03-01T00:00:00Z"),
            (at("2027-02-28T00:00:00Z"), at("2027-03-31T00:00:00Z"))
        );
    }

    #[test]
    fn billing_month_always_contains_now_over_years_of_days() {
        for anchor in [
            "2027-01-31T23:00:00Z",
            "2028-02-29T00:00:00Z",
            "2026-08-30T05:00:00Z",
        ] {
            let mut now = at("2026-01-01T00:00:00Z");
            while now < at("2030-01-01T00:00:00Z") {
                let p = Period::billing_month(at(anchor), now);
                assert!(p.contains(now), "{anchor} at {now}: {p:?}");
                assert!((28..=31).contains(&(p.end - p.start).num_days()), "{p:?}");
                now += Duration::hours(13);
            }
        }
    }

    #[test]
    fn seconds_until_end_rounds_up_and_is_never_zero() {
        let p = Period::utc_day(at("2026-11-26T23:59:59.200Z"));
        assert_eq!(p.seconds_until_end(at("2026-11-26T23:59:59.200Z")), 1);
        assert_eq!(p.seconds_until_end(at("2026-11-26T00:00:00Z")), 86_400);
        assert_eq!(p.seconds_until_end(at("2026-11-27T00:00:05Z")), 1);
    }
}
