//! Business events and their daily counts: the event names, which counter shard a user's events go
//! to, and the date range an admin summary may ask for.

use super::ids::UserId;
use super::DomainError;
use chrono::{DateTime, NaiveDate, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Something that happened, counted per UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// A generation recorded (not its replays).
    GenerationRecorded,
    /// A request refused because a quota is spent: generations (429) or daily pool claims (429).
    LimitReached,
    /// A Stripe Checkout session created for a user.
    CheckoutStarted,
    /// A subscription started keeping a paid tier: new, or back from a state that did not keep it.
    SubscriptionActivated,
    /// A subscription reached Stripe's `canceled` status.
    SubscriptionCanceled,
    /// A generation shared with the pool, automatically or by hand.
    PoolContribution,
    /// A FREE user's claim of a pool item.
    PoolClaim,
    /// A like that was not there before (an unlike or a repeated like counts nothing).
    PoolLike,
    /// One more play of a pool item; a claim counts as a play too, as the item's `plays` do.
    PoolPlay,
    /// A pack of credits paid for (its block added; a redelivered event counts nothing).
    CreditsPurchased,
    /// A generation paid by a credit instead of the period's allowance.
    CreditSpent,
}

impl Event {
    /// Every event, in the order the summary lists them.
    pub const ALL: [Event; 11] = [
        Self::GenerationRecorded,
        Self::LimitReached,
        Self::CheckoutStarted,
        Self::SubscriptionActivated,
        Self::SubscriptionCanceled,
        Self::PoolContribution,
        Self::PoolClaim,
        Self::PoolLike,
        Self::PoolPlay,
        Self::CreditsPurchased,
        Self::CreditSpent,
    ];

    /// The name in counters, raw events, logs and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerationRecorded => "generation_recorded",
            Self::LimitReached => "limit_reached",
            Self::CheckoutStarted => "checkout_started",
            Self::SubscriptionActivated => "subscription_activated",
            Self::SubscriptionCanceled => "subscription_canceled",
            Self::PoolContribution => "pool_contribution",
            Self::PoolClaim => "pool_claim",
            Self::PoolLike => "pool_like",
            Self::PoolPlay => "pool_play",
            Self::CreditsPurchased => "credits_purchased",
            Self::CreditSpent => "credit_spent",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many of each event; serialises as an object with every event name, zeros included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; Event::ALL.len()]);

impl Counts {
    pub fn get(&self, event: Event) -> u64 {
        self.0.get(event.index()).copied().unwrap_or(0)
    }

    pub fn add(&mut self, event: Event, n: u64) {
        if let Some(slot) = self.0.get_mut(event.index()) {
            *slot = slot.saturating_add(n);
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        for event in Event::ALL {
            self.add(event, other.get(event));
        }
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Event::ALL.len()))?;
        for event in Event::ALL {
            map.serialize_entry(event.as_str(), &self.get(event))?;
        }
        map.end()
    }
}

/// Counter shards of one day. Each action's counter update rides in its own transaction, and two
/// transactions touching one item conflict: spreading users over shards keeps different users'
/// actions apart (a user's own requests already take turns on the user's item).
pub const SHARDS: u32 = 16;

/// The shard of `user`'s events: FNV-1a of the id, so it is the same in every process and version.
pub fn shard_of(user: &UserId) -> u32 {
    let hash = user
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    u32::try_from(hash % u64::from(SHARDS)).unwrap_or(0)
}

/// The UTC day `at` counts in, as `2026-11-26`.
pub fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// The longest range a summary covers, in days (a leap year).
pub const MAX_DAYS: i64 = 366;

/// The days a summary covers, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DayRange {
    /// Parses `from` and `to` (`YYYY-MM-DD`, both required, `from` ≤ `to`, at most `MAX_DAYS` days).
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, DomainError> {
        let from = date("from", from)?;
        let to = date("to", to)?;
        if from > to {
            return Err(DomainError::new("from", "must not be after to"));
        }
        let range = Self { from, to };
        if range.day_count() > MAX_DAYS {
            return Err(DomainError::new(
                "to",
                format!("the range is at most {MAX_DAYS} days, from and to included"),
            ));
        }
        Ok(range)
    }

    /// Days in the range (at least one).
    pub fn day_count(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Every day from `from` to `to`, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }
}

fn date(field: &'static str, raw: Option<&str>) -> Result<NaiveDate, DomainError> {
    let raw = raw.ok_or_else(|| DomainError::new(field, "required, as YYYY-MM-DD"))?;
    // `%Y` alone would take `+2026` or a five-digit year; the shape is checked first.
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(DomainError::new(field, "must be a date as YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| DomainError::new(field, "is not a calendar date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: &str, to: &str) -> Result<DayRange, DomainError> {
        DayRange::parse(Some(from), Some(to))
    }

    #[test]
    fn a_range_lists_every_day_across_a_month_end() {
        let days: Vec<String> = range("2026-11-29", "2026-12-02")
            .unwrap()
            .days()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            days,
            ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
        );
        assert_eq!(range("2026-11-26", "2026-11-26").unwrap().days().count(), 1);
    }

    #[test]
    fn a_range_is_at_most_366_days() {
        assert_eq!(range("2028-01-01", "2028-12-31").unwrap().day_count(), 366);
        assert_eq!(range("2026-01-01", "2027-01-01").unwrap().day_count(), 366);
        assert_eq!(range("2026-01-01", "2027-01-02").unwrap_err().field, "to");
    }

    #[test]
    fn bad_dates_name_their_field() {
        for (from, to, field) in [
            (None, Some("2026-11-26"), "from"),
            (Some("2026-11-26"), None, "to"),
            (Some("26-11-2026"), Some("2026-11-26"), "from"),
            (Some("2026-11-26"), Some("2026-02-30"), "to"),
            (Some("2026-1-26"), Some("2026-11-26"), "from"),
            (Some("+2026-11-2"), Some("2026-11-26"), "from"),
            (Some("2026-11-26"), Some("2026-11-26T00:00:00Z"), "to"),
            (Some("2026-11-27"), Some("2026-11-26"), "from"),
        ] {
            assert_eq!(
                DayRange::parse(from, to).unwrap_err().field,
                field,
                "{from:?}..{to:?}"
            );
        }
    }

    #[test]
    fn counts_serialise_every_event_in_order_with_zeros() {
        let mut counts = Counts::default();
        counts.add(Event::PoolPlay, 2);
        counts.add(Event::GenerationRecorded, 3);
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(
            json,
            r#"{"generation_recorded":3,"limit_reached":0,"checkout_started":0,"subscription_activated":0,"subscription_canceled":0,"pool_contribution":0,"pool_claim":0,"pool_like":0,"pool_play":2,"credits_purchased":0,"credit_spent":0}"#
        );
        let mut total = Counts::default();
        total.merge(&counts);
        total.merge(&counts);
        assert_eq!(total.get(Event::GenerationRecorded), 6);
    }

    #[test]
    fn event_names_round_trip() {
        for event in Event::ALL {
            assert_eq!(Event::parse(event.as_str()), Some(event));
        }
        assert_eq!(Event::parse("pool_unlike"), None);
    }

    #[test]
    fn users_spread_over_every_shard_and_keep_theirs() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..400 {
            let user = UserId::parse(&format!("user-{i}")).unwrap();
            let shard = shard_of(&user);
            assert!(shard < SHARDS);
            assert_eq!(shard, shard_of(&user));
            seen.insert(shard);
        }
        assert_eq!(seen.len(), SHARDS as usize);
    }
}
