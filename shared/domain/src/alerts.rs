//! Usage alerts: what a user asked to be told, and how; and what fires: a threshold of a quota
//! crossed by a committed change, and the pace of a monthly period. The settings are checked here;
//! the crossing is decided from the counter as the write that changed it answered it, so each
//! boundary is crossed by exactly one change.

use crate::net::is_public;
use crate::period::Period;
use crate::tiers::PeriodKind;
use crate::DomainError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// At most this many thresholds.
pub const MAX_THRESHOLDS: usize = 3;

/// How a user hears of an alert, and of what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSettings {
    /// Percentages of a quota (1..=100), distinct, ascending.
    pub thresholds: Vec<u8>,
    pub channels: Channels,
    /// Whether to hear when the month's pace would spend the allowance early.
    pub pace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    pub email: bool,
    /// An https URL on the public internet, or none.
    pub webhook_url: Option<String>,
}

impl Default for AlertSettings {
    /// A user who never set them: 80 % and 100 %, by email, with the pace.
    fn default() -> Self {
        Self {
            thresholds: vec![80, 100],
            channels: Channels {
                email: true,
                webhook_url: None,
            },
            pace: true,
        }
    }
}

/// The settings as a request states them, before they are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettingsRequest {
    pub thresholds: Vec<i64>,
    pub channels: ChannelsRequest,
    pub pace: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRequest {
    pub email: bool,
    pub webhook_url: Option<String>,
}

impl AlertSettingsRequest {
    /// The settings, or the field at fault: 1 to 3 distinct thresholds in 1..=100 (kept ascending),
    /// and a webhook only to an https URL without credentials whose host is not local or private.
    pub fn check(self) -> Result<AlertSettings, DomainError> {
        let mut thresholds = Vec::with_capacity(self.thresholds.len());
        for t in &self.thresholds {
            match u8::try_from(*t) {
                Ok(t) if (1..=100).contains(&t) => thresholds.push(t),
                _ => return Err(DomainError::new("thresholds", "each must be 1 to 100")),
            }
        }
        thresholds.sort_unstable();
        thresholds.dedup();
        if thresholds.len() != self.thresholds.len() {
            return Err(DomainError::new("thresholds", "must be distinct"));
        }
        if thresholds.is_empty() || thresholds.len() > MAX_THRESHOLDS {
            return Err(DomainError::new(
                "thresholds",
                format!("1 to {MAX_THRESHOLDS} of them"),
            ));
        }
        let webhook_url = match self.channels.webhook_url {
            Some(raw) => Some(webhook_url(&raw)?),
            None => None,
        };
        Ok(AlertSettings {
            thresholds,
            channels: Channels {
                email: self.channels.email,
                webhook_url,
            },
            pace: self.pace,
        })
    }
}

/// The longest webhook URL kept.
const MAX_URL: usize = 2048;

/// `raw` as a webhook target: https, no user or password, a host that is a public address or a name
/// that is not local. A name is resolved again when an alert is delivered, and a private answer
/// refused then.
fn webhook_url(raw: &str) -> Result<String, DomainError> {
    let bad = |why: &str| DomainError::new("channels.webhook_url", why.to_owned());
    if raw.len() > MAX_URL {
        return Err(bad("at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("not a URL"))?;
    if url.scheme() != "https" {
        return Err(bad("must be https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user or password"));
    }
    let public = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_public(ip.into()),
        Some(url::Host::Domain(name)) => !local_name(name),
        None => false,
    };
    if !public {
        return Err(bad("must name a public host, not a local or private one"));
    }
    Ok(url.to_string())
}

/// Names that are local by definition (RFC 6761, RFC 6762) or only inside a network.
fn local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.contains('.')
        || [
            "localhost",
            "local",
            "internal",
            "lan",
            "home.arpa",
            "intranet",
        ]
        .iter()
        .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")))
}

/// A quota an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    /// Generations of the tier's period (a UTC day on FREE, a month on the paid tiers).
    Generations,
    /// Bytes of stored audio (no period).
    Storage,
    /// Lyrics drafts of the UTC day.
    Lyrics,
    /// Messages to Pixel of the UTC day.
    Pixel,
}

impl Quota {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generations => "generations",
            Self::Storage => "storage",
            Self::Lyrics => "lyrics",
            Self::Pixel => "pixel",
        }
    }
}

/// What kind of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Threshold,
    Pace,
}

/// The period key of the storage quota, which has none: its thresholds fire once per limit.
pub const STORAGE_PERIOD: &str = "storage";

/// The usage at which threshold `t` (percent) of `limit` is reached: `ceil(t × limit / 100)`.
pub fn boundary(threshold: u8, limit: u64) -> u64 {
    (u64::from(threshold) * limit).div_ceil(100)
}

/// The thresholds a change of usage from `before` to `after` crosses upwards (from below a
/// threshold's boundary to at or above it), ascending. A change downwards crosses none.
pub fn crossed(thresholds: &[u8], limit: u64, before: u64, after: u64) -> Vec<u8> {
    if limit == 0 {
        return Vec::new();
    }
    thresholds
        .iter()
        .copied()
        .filter(|t| {
            let b = boundary(*t, limit);
            before < b && after >= b
        })
        .collect()
}

/// The range of `before` values (`[from, to)`) within which a change of `delta` crosses exactly
/// the thresholds it crosses from `before`: a write that was decided from a read of `before` and is
/// conditioned on the stored value lying in it decides the same crossing as the stored value would.
pub fn same_crossing(thresholds: &[u8], limit: u64, before: u64, delta: u64) -> (u64, u64) {
    let (mut from, mut to) = (0, u64::MAX);
    for t in thresholds {
        let b = boundary(*t, limit);
        // The crossing of `t` changes where `before` reaches `b - delta` (it starts crossing) and
        // where it reaches `b` (it has crossed already).
        for point in [b.saturating_sub(delta), b] {
            if point <= before {
                from = from.max(point);
            } else {
                to = to.min(point);
            }
        }
    }
    (from, to)
}

/// An alert decided with the usage that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub quota: Quota,
    /// The counter's period (`M#…`, `D#…`), or [`STORAGE_PERIOD`].
    pub period_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<DateTime<Utc>>,
    pub limit: u64,
    /// The usage with the change in it.
    pub used: u64,
    /// The thresholds crossed (a threshold alert), ascending; empty for a pace alert.
    #[serde(default)]
    pub thresholds: Vec<u8>,
    /// When the usage, extended linearly, reaches the limit (a pace alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_exhaustion_at: Option<DateTime<Utc>>,
}

/// A quota's usage changed by a committed write: what, its limit and period, and the counter
/// before and after the change as the write answered it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub quota: Quota,
    pub period: Option<&'a Period>,
    pub period_key: &'a str,
    /// `None`: unlimited, nothing to cross.
    pub limit: Option<u64>,
    pub before: u64,
    pub after: u64,
}

impl Change<'_> {
    /// The threshold alert this change fires under `settings`, if it crosses any.
    pub fn crossing(&self, settings: &AlertSettings) -> Option<Alert> {
        let limit = self.limit?;
        let thresholds = crossed(&settings.thresholds, limit, self.before, self.after);
        (!thresholds.is_empty()).then(|| Alert {
            kind: AlertKind::Threshold,
            quota: self.quota,
            period_key: self.period_key.to_owned(),
            period_start: self.period.map(|p| p.start),
            reset_at: self.period.map(|p| p.end),
            limit,
            used: self.after,
            thresholds,
            projected_exhaustion_at: None,
        })
    }
}

/// How much of a monthly period must have passed before its pace is judged.
pub const PACE_AFTER_PERCENT: i64 = 20;
/// How long before the period's end the projected exhaustion must fall for the pace to alert.
pub const PACE_MARGIN: Duration = Duration::hours(24);

/// The pace alert of `used` generations of a monthly `period` at `now`, when the settings ask for it:
/// once a fifth of the period has passed, the usage so far extended linearly reaches `limit` more
/// than 24 h before the period ends. An estimate of what is left, so none once nothing is (the
/// 100 % threshold tells that); daily periods have none.
pub fn pace(
    settings: &AlertSettings,
    period: &Period,
    period_key: &str,
    limit: u64,
    used: u64,
    now: DateTime<Utc>,
) -> Option<Alert> {
    if !settings.pace || period.kind != PeriodKind::Month || used == 0 || used >= limit {
        return None;
    }
    let length = (period.end - period.start).num_milliseconds();
    let elapsed = (now - period.start).num_milliseconds();
    if elapsed * 100 < length * PACE_AFTER_PERCENT || elapsed >= length {
        return None;
    }
    // elapsed × limit / used, in milliseconds (u128: no overflow for any period and limit).
    let to_limit = u128::try_from(elapsed).ok()? * u128::from(limit) / u128::from(used);
    let projected = period.start + Duration::milliseconds(i64::try_from(to_limit).ok()?);
    (projected < period.end - PACE_MARGIN).then(|| Alert {
        kind: AlertKind::Pace,
        quota: Quota::Generations,
        period_key: period_key.to_owned(),
        period_start: Some(period.start),
        reset_at: Some(period.end),
        limit,
        used,
        thresholds: Vec::new(),
        projected_exhaustion_at: Some(projected),
    })
}

/// The header a webhook delivery is signed in.
pub const SIGNATURE_HEADER: &str = "Son1k-Signature";

/// The signature of a webhook body sent at `timestamp` (Unix seconds) with `secret`:
/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`. A receiver recomputes it with the
/// secret it was shown and compares in constant time, refusing a timestamp far from its clock.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).map(|mut mac| {
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    });
    format!("t={timestamp},v1={}", mac.unwrap_or_default())
}

/// How long an alert's delivery is tried before it is dead-lettered.
pub const DELIVERY_WINDOW: Duration = Duration::hours(24);
/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::hours(6);

/// The wait after the `attempts`-th failed attempt: `base`, doubled after each further failure, at
/// most [`MAX_RETRY_DELAY`] (with a one-minute base: 1, 2, 4 … 256 min, then 6 h; about eleven
/// attempts within the window).
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    (base * 2_i32.pow(doublings)).min(MAX_RETRY_DELAY)
}

/// When the next attempt of a delivery that failed for the `attempts`-th time at `now` is due, or
/// `None` when that would be past the window of an alert created at `created_at` (dead-letter it).
pub fn next_attempt(
    base: Duration,
    attempts: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let at = now + retry_delay(base, attempts);
    (at <= created_at + DELIVERY_WINDOW).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_an_hmac_of_the_timestamp_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_k
        assert_eq!(
            signature("whsec_k", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=a252a4340d8bbbdbac8643a2812cc7d628ad79bfba544bff054ac2fa10f795a2"
        );
        assert_ne!(
            signature("whsec_k", 1_700_000_001, br#"{"a":1}"#),
            signature("whsec_k", 1_700_000_000, br#"{"a":1}"#)
        );
    }

    #[test]
    fn retries_back_off_and_stop_at_the_window() {
        let base = Duration::minutes(1);
        let waits: Vec<i64> = (1..=11)
            .map(|n| retry_delay(base, n).num_minutes())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
        let created = at("2026-12-01T00:00:00Z");
        assert_eq!(
            next_attempt(base, 1, created, created),
            Some(at("2026-12-01T00:01:00Z"))
        );
        assert_eq!(
            next_attempt(base, 10, created, at("2026-12-01T17:59:59Z")),
            Some(at("2026-12-01T23:59:59Z"))
        );
        assert_eq!(
            next_attempt(base, 10, created, at("2026-12-01T18:00:01Z")),
            None
        );
    }

    use crate::clock::at;

    fn month() -> Period {
        Period::utc_month(at("2026-12-10T00:00:00Z"))
    }

    #[test]
    fn a_threshold_is_crossed_once_at_its_exact_boundary() {
        // limit 3: 80 % is ceil(2.4) = 3, so the third unit crosses 80 and 100 together.
        assert_eq!(crossed(&[80, 100], 3, 2, 3), [80, 100]);
        assert!(crossed(&[80, 100], 3, 1, 2).is_empty());
        assert!(crossed(&[80, 100], 3, 3, 4).is_empty());
        // limit 50: the 40th crosses 80, the 50th 100.
        assert_eq!(crossed(&[80, 100], 50, 39, 40), [80]);
        assert!(crossed(&[80, 100], 50, 40, 49).is_empty());
        assert_eq!(crossed(&[80, 100], 50, 49, 50), [100]);
        // A jump over both, a change downwards, an unlimited quota.
        assert_eq!(crossed(&[50, 80], 1000, 10, 900), [50, 80]);
        assert!(crossed(&[50, 80], 1000, 900, 10).is_empty());
        assert!(crossed(&[80], 0, 0, 5).is_empty());
        assert_eq!(boundary(1, 3), 1);
        assert_eq!(boundary(100, 200), 200);
    }

    #[test]
    fn within_the_same_crossing_range_every_before_crosses_the_same_thresholds() {
        let thresholds = [50, 80];
        for (before, delta) in [(0, 10), (40, 15), (45, 5), (79, 1), (80, 30), (10, 100)] {
            let (from, to) = same_crossing(&thresholds, 100, before, delta);
            assert!(from <= before && before < to, "{before} in [{from}, {to})");
            let expected = crossed(&thresholds, 100, before, before + delta);
            for other in from..to.min(200) {
                assert_eq!(
                    crossed(&thresholds, 100, other, other + delta),
                    expected,
                    "{other} in [{from}, {to}) for {before}+{delta}"
                );
            }
            if to < 200 {
                assert_ne!(crossed(&thresholds, 100, to, to + delta), expected);
            }
            if from > 0 {
                assert_ne!(
                    crossed(&thresholds, 100, from - 1, from - 1 + delta),
                    expected
                );
            }
        }
    }

    #[test]
    fn a_change_names_every_threshold_it_crosses_with_its_period() {
        let period = month();
        let change = Change {
            quota: Quota::Generations,
            period: Some(&period),
            period_key: "M#2026-12-01",
            limit: Some(3),
            before: 2,
            after: 3,
        };
        let alert = change.crossing(&AlertSettings::default()).unwrap();
        assert_eq!(alert.thresholds, [80, 100]);
        assert_eq!(
            (alert.used, alert.limit, alert.reset_at),
            (3, 3, Some(at("2027-01-01T00:00:00Z")))
        );
        let unlimited = Change {
            limit: None,
            ..change
        };
        assert!(unlimited.crossing(&AlertSettings::default()).is_none());
    }

    #[test]
    fn the_pace_alerts_a_month_that_runs_out_more_than_a_day_early() {
        let (period, settings) = (month(), AlertSettings::default());
        let key = "M#2026-12-01";
        // 31 days; a fifth is 6.2 days. 30 of 50 after 6.2 days: out after 10.3 days.
        let fast = pace(&settings, &period, key, 50, 30, at("2026-12-07T05:00:00Z")).unwrap();
        assert_eq!(fast.kind, AlertKind::Pace);
        let projected = fast.projected_exhaustion_at.unwrap();
        assert!(projected > at("2026-12-11T00:00:00Z") && projected < at("2026-12-12T00:00:00Z"));
        // Before a fifth has passed: not judged yet.
        assert!(pace(&settings, &period, key, 50, 30, at("2026-12-07T04:00:00Z")).is_none());
        // On pace to run out within the last day, or not at all: none.
        assert!(pace(&settings, &period, key, 50, 10, at("2026-12-07T05:00:00Z")).is_none());
        assert!(pace(&settings, &period, key, 50, 49, at("2026-12-30T12:00:00Z")).is_none());
        // Spent: nothing left to forecast.
        assert!(pace(&settings, &period, key, 50, 50, at("2026-12-07T05:00:00Z")).is_none());
        // Exactly 24 h early is not more than 24 h early.
        let at_margin = pace(&settings, &period, key, 30, 24, at("2026-12-25T00:00:00Z"));
        assert!(at_margin.is_none(), "{at_margin:?}");
        // Turned off, or a day's period: none.
        let off = AlertSettings {
            pace: false,
            ..AlertSettings::default()
        };
        assert!(pace(&off, &period, key, 50, 30, at("2026-12-07T05:00:00Z")).is_none());
        let day = Period::utc_day(at("2026-12-07T05:00:00Z"));
        assert!(pace(
            &settings,
            &day,
            "D#2026-12-07",
            3,
            3,
            at("2026-12-07T23:00:00Z")
        )
        .is_none());
    }

    fn request(thresholds: &[i64], webhook: Option<&str>) -> AlertSettingsRequest {
        AlertSettingsRequest {
            thresholds: thresholds.to_vec(),
            channels: ChannelsRequest {
                email: true,
                webhook_url: webhook.map(str::to_owned),
            },
            pace: false,
        }
    }

    #[test]
    fn one_to_three_distinct_thresholds_in_1_to_100_kept_ascending() {
        assert_eq!(
            request(&[100, 50], None).check().unwrap().thresholds,
            [50, 100]
        );
        assert_eq!(request(&[1], None).check().unwrap().thresholds, [1]);
        for bad in [
            &[][..],
            &[0],
            &[101],
            &[-5],
            &[80, 80],
            &[10, 20, 30, 40],
            &[300],
        ] {
            assert_eq!(
                request(bad, None).check().unwrap_err().field,
                "thresholds",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_webhook_is_https_to_a_public_host_without_credentials() {
        let ok = request(&[80], Some("https://hooks.example.com/son1k?x=1"))
            .check()
            .unwrap();
        assert_eq!(
            ok.channels.webhook_url.as_deref(),
            Some("https://hooks.example.com/son1k?x=1")
        );
        assert!(request(&[80], Some("https://93.184.216.34/hook"))
            .check()
            .is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://user@hooks.example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.10:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://localhost/",
            "https://api.localhost/",
            "https://printer.local/",
            "https://intranet/",
            "https://db.internal/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert_eq!(
                request(&[80], Some(bad)).check().unwrap_err().field,
                "channels.webhook_url",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_defaults_are_80_and_100_by_email_with_the_pace() {
        let d = AlertSettings::default();
        assert_eq!(d.thresholds, [80, 100]);
        assert!(d.channels.email && d.pace && d.channels.webhook_url.is_none());
    }
}
