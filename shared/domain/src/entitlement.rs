//! What a user is entitled to right now: the effective tier and the usage period, derived from the
//! stored tier, where it came from, the Stripe subscription and the clock. Nothing here is stored:
//! it is recomputed on every request, so a missed webhook or a scheduled job that never ran cannot
//! leave a user with the wrong quota.

use super::period::Period;
use super::tiers::Tier;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long past the end of a billing period a paid tier is kept while no renewal has been heard of.
/// Within it the next billing month is derived from the cycle's anchor; after it the user is FREE.
pub const RENEWAL_GRACE: Duration = Duration::days(3);

/// Who set the stored tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TierSource {
    /// Never changed: FREE.
    #[default]
    Default,
    /// Granted by an admin without Stripe; a paid tier then counts by UTC calendar month.
    Admin,
    /// Follows a Stripe subscription; a paid tier counts by its billing period.
    Stripe,
}

/// Stripe's subscription statuses; anything new Stripe invents is `Unknown` and keeps no paid tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Canceled,
    Unpaid,
    Incomplete,
    IncompleteExpired,
    Paused,
    #[serde(other)]
    Unknown,
}

impl SubscriptionStatus {
    /// `active`, `trialing` and `past_due` (Stripe is still retrying) keep the paid tier.
    pub fn keeps_paid_tier(self) -> bool {
        matches!(self, Self::Active | Self::Trialing | Self::PastDue)
    }
}

/// The subscription as last applied from Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub status: SubscriptionStatus,
    #[serde(default)]
    pub price_id: Option<String>,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// Stripe's `billing_cycle_anchor`: the day-of-month every billing period starts on.
    #[serde(default)]
    pub billing_cycle_anchor: Option<DateTime<Utc>>,
}

/// The tier in force and the period whose counter is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entitlement {
    pub tier: Tier,
    pub period: Period,
}

impl Entitlement {
    fn free(now: DateTime<Utc>) -> Self {
        Self {
            tier: Tier::Free,
            period: Period::utc_day(now),
        }
    }
}

/// The first instant at which a stored paid Stripe tier with `sub` is FREE by `entitlement` unless a
/// newer event arrives: at once for a status that keeps no paid tier, at the period's end for a
/// cancellation at period end, else once the renewal grace after the period's end has passed.
pub fn lapses_at(sub: &Subscription) -> DateTime<Utc> {
    if !sub.status.keeps_paid_tier() {
        sub.current_period_start
    } else if sub.cancel_at_period_end {
        sub.current_period_end
    } else {
        sub.current_period_end + RENEWAL_GRACE
    }
}

/// The allowance's month within a billing period holding `now`: the period itself when it is a
/// month; for a longer one (a yearly price) the month of it holding `now`, counted from its start,
/// so an annual subscriber gets the tier's monthly allowance every month, not a year's at once.
fn monthly_within(stored: Period, now: DateTime<Utc>) -> Period {
    let a_month_on = stored
        .start
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(stored.end);
    // A day of slack: Stripe's monthly periods end on the anchor's day, to the second.
    if stored.end <= a_month_on + Duration::days(1) {
        return stored;
    }
    let month = Period::billing_month(stored.start, now);
    Period {
        kind: month.kind,
        start: month.start.max(stored.start),
        end: month.end.min(stored.end),
    }
}

/// Derives the entitlement of a user whose stored state is `tier` from `source` (and `subscription`).
pub fn entitlement(
    tier: Tier,
    source: TierSource,
    subscription: Option<&Subscription>,
    now: DateTime<Utc>,
) -> Entitlement {
    if !tier.is_paid() {
        return Entitlement::free(now);
    }
    let sub = match (source, subscription) {
        (TierSource::Stripe, Some(sub)) => sub,
        // Granted without a billing period (admin, or a paid tier with no subscription data).
        _ => {
            return Entitlement {
                tier,
                period: Period::utc_month(now),
            }
        }
    };
    if !sub.status.keeps_paid_tier() {
        return Entitlement::free(now);
    }
    let stored = Period {
        kind: super::tiers::PeriodKind::Month,
        start: sub.current_period_start,
        end: sub.current_period_end,
    };
    if stored.contains(now) {
        return Entitlement {
            tier,
            period: monthly_within(stored, now),
        };
    }
    let ended = now >= sub.current_period_end;
    if ended && (sub.cancel_at_period_end || now >= sub.current_period_end + RENEWAL_GRACE) {
        return Entitlement::free(now);
    }
    // Renewal not heard of yet (or a clock ahead of Stripe's): the billing month of the cycle holding now.
    let anchor = sub.billing_cycle_anchor.unwrap_or(sub.current_period_start);
    Entitlement {
        tier,
        period: Period::billing_month(anchor, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::tiers::PeriodKind;

    fn sub(status: SubscriptionStatus, start: &str, end: &str) -> Subscription {
        Subscription {
            id: "sub_1".into(),
            status,
            price_id: Some("price_pro_monthly".into()),
            current_period_start: at(start),
            current_period_end: at(end),
            cancel_at_period_end: false,
            billing_cycle_anchor: None,
        }
    }

    #[test]
    fn free_counts_by_utc_day_whatever_the_source() {
        let e = entitlement(
            Tier::Free,
            TierSource::Stripe,
            None,
            at("2026-11-26T10:00:00Z"),
        );
        assert_eq!(
            (e.tier, e.period.kind, e.period.key()),
            (Tier::Free, PeriodKind::Day, "D#2026-11-26".into())
        );
    }

    #[test]
    fn admin_granted_paid_tier_counts_by_utc_month() {
        let e = entitlement(
            Tier::Pro,
            TierSource::Admin,
            None,
            at("2026-11-26T10:00:00Z"),
        );
        assert_eq!(
            (e.tier, e.period.key()),
            (Tier::Pro, "M#2026-11-01T00:00:00Z".into())
        );
    }

    #[test]
    fn stripe_tier_counts_by_its_billing_period() {
        let s = sub(
            SubscriptionStatus::Active,
            "2026-11-10T12:00:00Z",
            "2026-12-10T12:00:00Z",
        );
        let e = entitlement(
            Tier::Creator,
            TierSource::Stripe,
            Some(&s),
            at("2026-11-26T10:00:00Z"),
        );
        assert_eq!(
            (e.tier, e.period.start, e.period.end),
            (Tier::Creator, s.current_period_start, s.current_period_end)
        );
    }

    #[test]
    fn past_due_keeps_the_tier_and_canceled_or_unpaid_fall_back_to_free() {
        let now = at("2026-11-26T10:00:00Z");
        for (status, tier) in [
            (SubscriptionStatus::PastDue, Tier::Pro),
            (SubscriptionStatus::Trialing, Tier::Pro),
            (SubscriptionStatus::Canceled, Tier::Free),
            (SubscriptionStatus::Unpaid, Tier::Free),
            (SubscriptionStatus::IncompleteExpired, Tier::Free),
            (SubscriptionStatus::Unknown, Tier::Free),
        ] {
            let s = sub(status, "2026-11-10T12:00:00Z", "2026-12-10T12:00:00Z");
            assert_eq!(
                entitlement(Tier::Pro, TierSource::Stripe, Some(&s), now).tier,
                tier,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_missed_renewal_rolls_into_the_next_billing_month_within_the_grace() {
        let s = sub(
            SubscriptionStatus::Active,
            "2027-01-31T09:00:00Z",
            "2027-02-28T09:00:00Z",
        );
        let e = entitlement(
            Tier::Pro,
            TierSource::Stripe,
            Some(&s),
            at("2027-03-02T00:00:00Z"),
        );
        assert_eq!(
            (e.tier, e.period.start, e.period.end),
            (
                Tier::Pro,
                at("2027-02-28T09:00:00Z"),
                at("2027-03-31T09:00:00Z")
            )
        );
    }

    #[test]
    fn past_the_grace_or_a_cancellation_at_period_end_the_user_is_free() {
        let s = sub(
            SubscriptionStatus::Active,
            "2026-10-10T12:00:00Z",
            "2026-11-10T12:00:00Z",
        );
        let late = at("2026-11-13T12:00:00Z");
        assert_eq!(
            entitlement(Tier::Pro, TierSource::Stripe, Some(&s), late).tier,
            Tier::Free
        );
        let canceling = Subscription {
            cancel_at_period_end: true,
            ..s
        };
        assert_eq!(
            entitlement(
                Tier::Pro,
                TierSource::Stripe,
                Some(&canceling),
                at("2026-11-10T12:00:00Z")
            )
            .tier,
            Tier::Free
        );
        assert_eq!(
            entitlement(
                Tier::Pro,
                TierSource::Stripe,
                Some(&canceling),
                at("2026-11-10T11:59:59Z")
            )
            .tier,
            Tier::Pro
        );
    }

    #[test]
    fn unknown_statuses_deserialise_instead_of_failing() {
        let status: SubscriptionStatus =
            serde_json::from_str("\"something_new\"").unwrap_or(SubscriptionStatus::Active);
        assert_eq!(status, SubscriptionStatus::Unknown);
    }

    #[test]
    fn a_yearly_period_counts_its_allowance_by_the_month_from_its_start() {
        let s = sub(
            SubscriptionStatus::Active,
            "2026-01-31T09:00:00Z",
            "2027-01-31T09:00:00Z",
        );
        let month = |now: &str| {
            let e = entitlement(Tier::Pro, TierSource::Stripe, Some(&s), at(now));
            (e.tier, e.period.start, e.period.end)
        };
        assert_eq!(
            month("2026-02-10T00:00:00Z"),
            (
                Tier::Pro,
                at("2026-01-31T09:00:00Z"),
                at("2026-02-28T09:00:00Z")
            )
        );
        // Each boundary is measured from the start: Feb 28, then Mar 31, not Mar 28.
        assert_eq!(
            month("2026-02-28T09:00:00Z"),
            (
                Tier::Pro,
                at("2026-02-28T09:00:00Z"),
                at("2026-03-31T09:00:00Z")
            )
        );
        assert_eq!(
            month("2027-01-31T08:59:59Z"),
            (
                Tier::Pro,
                at("2026-12-31T09:00:00Z"),
                at("2027-01-31T09:00:00Z")
            )
        );
        // A trial of a few weeks, or a month, stays one period.
        let trial = sub(
            SubscriptionStatus::Trialing,
            "2026-11-20T00:00:00Z",
            "2026-12-04T00:00:00Z",
        );
        let e = entitlement(
            Tier::Pro,
            TierSource::Stripe,
            Some(&trial),
            at("2026-11-25T00:00:00Z"),
        );
        assert_eq!(
            (e.tier, e.period.start, e.period.end),
            (
                Tier::Pro,
                trial.current_period_start,
                trial.current_period_end
            )
        );
    }
}
