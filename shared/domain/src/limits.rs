//! The limits view of `GET /api/tiers/limits/{user_id}`: what a user may still generate, computed from
//! their entitlement, the period's counter and the clock.

use super::entitlement::Subscription;
use super::ids::UserId;
use super::metering::{decide, RefusalCode, Usage};
use super::tiers::{PeriodKind, Quality, Tier};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339(*at))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageView {
    pub used_bytes: u64,
    /// `None`: unlimited.
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionView {
    pub status: super::entitlement::SubscriptionStatus,
    #[serde(serialize_with = "rfc3339")]
    pub current_period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitsView {
    pub user_id: UserId,
    pub tier: Tier,
    pub period: PeriodKind,
    #[serde(serialize_with = "rfc3339")]
    pub period_start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub reset_at: DateTime<Utc>,
    pub limit: u32,
    pub used: u32,
    /// What the user may still generate: the period's allowance left and the credits.
    pub remaining: u32,
    /// The period's allowance left, credits aside.
    pub remaining_in_period: u32,
    /// The credit blocks' balance (`credits::balance`): spent once the allowance is used up.
    pub credits: u32,
    pub can_generate: bool,
    pub reason: Option<RefusalCode>,
    pub qualities: &'static [Quality],
    pub storage: StorageView,
    pub subscription: Option<SubscriptionView>,
}

impl LimitsView {
    /// The view of `usage` at `now`; `quality`, when asked about, is decided as a generation would be
    /// (`metering::decide`).
    pub fn new(
        user_id: UserId,
        usage: &Usage,
        quality: Option<Quality>,
        storage_used_bytes: u64,
        subscription: Option<&Subscription>,
        now: DateTime<Utc>,
    ) -> Self {
        let entitlement = usage.entitlement;
        let spec = entitlement.tier.spec();
        let reason = decide(usage, quality, now).err().map(|r| r.code());
        Self {
            user_id,
            tier: entitlement.tier,
            period: spec.period,
            period_start: entitlement.period.start,
            reset_at: entitlement.period.end,
            limit: spec.generations,
            used: usage.used,
            remaining: spec.generations.saturating_sub(usage.used),
            remaining_in_period: spec.generations.saturating_sub(usage.used),
            credits: 0,
            can_generate: reason.is_none(),
            reason,
            qualities: spec.qualities,
            storage: StorageView {
                used_bytes: storage_used_bytes,
                limit_bytes: spec.storage_bytes,
            },
            subscription: subscription.map(|s| SubscriptionView {
                status: s.status,
                current_period_end: s.current_period_end,
                cancel_at_period_end: s.cancel_at_period_end,
            }),
        }
    }
}

impl LimitsView {
    /// The view with `balance` credits beside the allowance: they count in `remaining`, and a period
    /// whose allowance is used up may still generate while any is left (a quality the tier lacks
    /// stays refused).
    pub fn with_credits(mut self, balance: u32) -> Self {
        self.credits = balance;
        self.remaining = self.remaining_in_period.saturating_add(balance);
        if balance > 0
            && matches!(
                self.reason,
                Some(RefusalCode::DailyLimitReached | RefusalCode::MonthlyLimitReached)
            )
        {
            self.reason = None;
            self.can_generate = true;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::Entitlement;
    use crate::period::Period;

    fn now() -> DateTime<Utc> {
        crate::clock::at("2026-11-26T10:00:00Z")
    }

    fn free(used: u32) -> Usage {
        Usage {
            entitlement: Entitlement {
                tier: Tier::Free,
                period: Period::utc_day(now()),
            },
            used,
            counted: used,
            paid_total: 0,
        }
    }

    fn id() -> UserId {
        UserId::parse("u1").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn remaining_counts_down_and_stops_at_zero() {
        let view = LimitsView::new(id(), &free(2), None, 0, None, now());
        assert_eq!(
            (
                view.limit,
                view.used,
                view.remaining,
                view.can_generate,
                view.reason
            ),
            (3, 2, 1, true, None)
        );
        let spent = LimitsView::new(id(), &free(5), None, 0, None, now());
        assert_eq!(
            (spent.remaining, spent.can_generate, spent.reason),
            (0, false, Some(RefusalCode::DailyLimitReached))
        );
    }

    #[test]
    fn a_quality_outside_the_tier_is_the_reason_even_with_quota_left() {
        let view = LimitsView::new(id(), &free(0), Some(Quality::High), 0, None, now());
        assert_eq!(
            (view.can_generate, view.reason),
            (false, Some(RefusalCode::QualityNotInTier))
        );
        let ok = LimitsView::new(id(), &free(0), Some(Quality::Standard), 0, None, now());
        assert!(ok.can_generate);
    }

    #[test]
    fn serialises_times_to_the_second_and_codes_as_strings() {
        let json = serde_json::to_value(LimitsView::new(id(), &free(3), None, 7, None, now()))
            .unwrap_or_default();
        assert_eq!(json["period_start"], "2026-11-26T00:00:00Z");
        assert_eq!(json["reset_at"], "2026-11-27T00:00:00Z");
        assert_eq!(json["reason"], "daily_limit_reached");
        assert_eq!(
            json["storage"],
            serde_json::json!({"used_bytes": 7, "limit_bytes": 1_073_741_824u64})
        );
        assert_eq!(json["subscription"], serde_json::Value::Null);
    }

    #[test]
    fn credits_count_in_remaining_and_outlast_a_spent_allowance_but_not_a_missing_quality() {
        let view = LimitsView::new(id(), &free(1), None, 0, None, now()).with_credits(4);
        assert_eq!(
            (view.remaining, view.remaining_in_period, view.credits),
            (6, 2, 4)
        );
        let spent = LimitsView::new(id(), &free(3), None, 0, None, now()).with_credits(1);
        assert_eq!(
            (spent.remaining, spent.can_generate, spent.reason),
            (1, true, None)
        );
        let none = LimitsView::new(id(), &free(3), None, 0, None, now()).with_credits(0);
        assert_eq!(none.reason, Some(RefusalCode::DailyLimitReached));
        let high =
            LimitsView::new(id(), &free(3), Some(Quality::High), 0, None, now()).with_credits(9);
        assert_eq!(
            (high.can_generate, high.reason),
            (false, Some(RefusalCode::QualityNotInTier))
        );
    }
}
