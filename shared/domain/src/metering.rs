//! The metering decision, pure: may a user record a generation now, and with which numbers? From the
//! entitlement, the period's count, the paid history and the quality asked for. `GET /api/tiers/limits`
//! and record-generation both ask it, so the order of the checks (quality before quota: a quality the
//! tier lacks will not come back tomorrow, a spent quota will) is said once.

use super::entitlement::Entitlement;
use super::pool::is_contribution;
use super::tiers::{PeriodKind, Quality, Tier};
use chrono::{DateTime, Utc};

/// What the decision is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub entitlement: Entitlement,
    /// Generations counted in the entitlement's period: recorded ones and the units running jobs hold.
    pub used: u32,
    /// The period's stored counter: `used` and the units of expired reservations still in it (the
    /// spend that takes them out is conditioned on this).
    pub counted: u32,
    /// Generations recorded on any paid tier over the user's whole history.
    pub paid_total: u64,
}

/// Why a generation may not be recorded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    QualityNotInTier {
        tier: Tier,
        quality: Quality,
    },
    LimitReached {
        period: PeriodKind,
        limit: u32,
        used: u32,
        reset_at: DateTime<Utc>,
        /// Whole seconds until the period ends, at least 1 (`Retry-After`).
        retry_after: u64,
    },
}

/// The contract's code of each refusal (`reason` in the limits view, `code` of the problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    QualityNotInTier,
    DailyLimitReached,
    MonthlyLimitReached,
}

impl Refusal {
    /// The code that names this refusal.
    pub fn code(&self) -> RefusalCode {
        match self {
            Self::QualityNotInTier { .. } => RefusalCode::QualityNotInTier,
            Self::LimitReached {
                period: PeriodKind::Day,
                ..
            } => RefusalCode::DailyLimitReached,
            Self::LimitReached {
                period: PeriodKind::Month,
                ..
            } => RefusalCode::MonthlyLimitReached,
        }
    }
}

/// A granted generation: the numbers its 201 body and its writes are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tier: Tier,
    /// The counter this generation spends (`D#2026-11-26`, `M#<start>`).
    pub period_key: String,
    pub reset_at: DateTime<Utc>,
    /// The period's count before and after this generation (running jobs' units included).
    pub used_before: u32,
    /// The period's stored counter before this generation (expired reservations still in it).
    pub counter_before: u32,
    pub used_after: u32,
    pub remaining: u32,
    /// The paid history after this generation: it grows only on a paid tier.
    pub paid_total_after: u64,
    /// Whether this generation goes to the community pool (every 20th paid one).
    pub contributes: bool,
    /// The credit block that pays it, when the period's allowance is used up (`credits`): the
    /// period's counter does not move then.
    pub credit: Option<String>,
}

impl Grant {
    /// The tier's limit for the period.
    pub fn limit(&self) -> u32 {
        self.tier.spec().generations
    }

    /// The value the period's stored counter must stay below for this grant to hold: the tier's
    /// limit plus the units of expired reservations still in the counter (the spend takes them out).
    pub fn counter_cap(&self) -> u32 {
        self.counter_before + self.remaining + 1
    }

    /// The grant as the store applied it: `counter_after` and `paid_total_after` are the period's
    /// counter and the paid history with this generation in them (and the expired reservations it
    /// took out gone), as the write returned them: other requests of the user may have spent between
    /// the read this grant was decided from and the write. The answer's numbers and the every-20th
    /// contribution come from them, so each request of a burst gets its own `used` and exactly one
    /// gets each 20th paid generation.
    pub fn settled(&self, counter_after: u32, paid_total_after: u64) -> Grant {
        if self.credit.is_some() {
            return Grant {
                counter_before: counter_after,
                used_before: counter_after,
                used_after: counter_after,
                remaining: 0,
                paid_total_after,
                contributes: contributes(self.tier, paid_total_after),
                ..self.clone()
            };
        }
        let used_after = counter_after.max(1);
        Grant {
            counter_before: used_after - 1,
            used_before: used_after - 1,
            used_after,
            remaining: self.limit().saturating_sub(used_after),
            paid_total_after,
            contributes: contributes(self.tier, paid_total_after),
            ..self.clone()
        }
    }
}

/// Whether a generation that brings the paid history to `paid_total_after` goes to the pool: every
/// 20th paid one (`pool::is_contribution`), never a FREE one.
fn contributes(tier: Tier, paid_total_after: u64) -> bool {
    tier.is_paid() && is_contribution(paid_total_after)
}

/// The decision. `quality` is `None` when only the quota is asked about (the limits view).
pub fn decide(
    usage: &Usage,
    quality: Option<Quality>,
    now: DateTime<Utc>,
) -> Result<Grant, Refusal> {
    decide_with_credit(usage, None, quality, now)
}

/// The decision when `credit` (the block `credits::next_block` names) may pay once the period's
/// allowance is used up: the allowance first, then the credit; the quality is the tier's either way.
pub fn decide_with_credit(
    usage: &Usage,
    credit: Option<&str>,
    quality: Option<Quality>,
    now: DateTime<Utc>,
) -> Result<Grant, Refusal> {
    let Usage {
        entitlement,
        used,
        counted,
        paid_total,
    } = *usage;
    let tier = entitlement.tier;
    let spec = tier.spec();
    if let Some(quality) = quality.filter(|q| !tier.allows(*q)) {
        return Err(Refusal::QualityNotInTier { tier, quality });
    }
    if used >= spec.generations {
        if let Some(block) = credit {
            let paid_total_after = paid_total + u64::from(tier.is_paid());
            return Ok(Grant {
                tier,
                period_key: entitlement.period.key(),
                reset_at: entitlement.period.end,
                used_before: used,
                counter_before: counted,
                used_after: used,
                remaining: 0,
                paid_total_after,
                contributes: contributes(tier, paid_total_after),
                credit: Some(block.to_owned()),
            });
        }
        return Err(Refusal::LimitReached {
            period: spec.period,
            limit: spec.generations,
            used,
            reset_at: entitlement.period.end,
            retry_after: entitlement.period.seconds_until_end(now),
        });
    }
    let paid_total_after = paid_total + u64::from(tier.is_paid());
    Ok(Grant {
        tier,
        period_key: entitlement.period.key(),
        reset_at: entitlement.period.end,
        used_before: used,
        counter_before: counted,
        used_after: used + 1,
        remaining: spec.generations - used - 1,
        paid_total_after,
        contributes: contributes(tier, paid_total_after),
        credit: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::period::Period;

    fn usage(tier: Tier, used: u32, paid_total: u64) -> Usage {
        let now = at("2026-11-26T10:00:00Z");
        let period = if tier.is_paid() {
            Period::utc_month(now)
        } else {
            Period::utc_day(now)
        };
        Usage {
            entitlement: Entitlement { tier, period },
            used,
            counted: used,
            paid_total,
        }
    }

    #[test]
    fn quality_is_refused_before_the_quota_is_looked_at() {
        let spent = usage(Tier::Free, 3, 0);
        assert_eq!(
            decide(&spent, Some(Quality::High), at("2026-11-26T10:00:00Z")),
            Err(Refusal::QualityNotInTier {
                tier: Tier::Free,
                quality: Quality::High
            })
        );
    }

    #[test]
    fn a_spent_period_is_refused_with_its_reset_and_retry_after() {
        let refusal = decide(&usage(Tier::Free, 3, 0), None, at("2026-11-26T23:59:58.5Z"));
        assert_eq!(
            refusal,
            Err(Refusal::LimitReached {
                period: PeriodKind::Day,
                limit: 3,
                used: 3,
                reset_at: at("2026-11-27T00:00:00Z"),
                retry_after: 2,
            })
        );
    }

    #[test]
    fn a_grant_carries_the_numbers_of_the_body_and_the_writes() {
        let grant = decide(
            &usage(Tier::Creator, 49, 7),
            Some(Quality::High),
            at("2026-11-26T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            (grant.used_before, grant.used_after, grant.remaining),
            (49, 50, 0)
        );
        assert_eq!((grant.paid_total_after, grant.contributes), (8, false));
        assert_eq!(grant.period_key, "M#2026-11-01T00:00:00Z");
        assert_eq!(grant.reset_at, at("2026-12-01T00:00:00Z"));
    }

    #[test]
    fn a_settled_grant_takes_its_numbers_from_the_write_not_the_read() {
        let now = at("2026-11-26T10:00:00Z");
        // Read: 12 counted (recorded or held by running jobs), 2 more units of expired reservations
        // still in the counter, 19 paid so far; 50 a month.
        let mut read = usage(Tier::Creator, 12, 19);
        read.counted = 14;
        let grant = decide(&read, None, now).unwrap();
        assert_eq!(
            (grant.counter_cap(), grant.limit(), grant.used_after),
            (52, 50, 13)
        );
        assert!(grant.contributes);
        // Three siblings spent first; this write took the two expired units out and made the
        // counter 16 and the paid history 23.
        let settled = grant.settled(16, 23);
        assert_eq!(
            (settled.used_before, settled.used_after, settled.remaining),
            (15, 16, 34)
        );
        assert_eq!((settled.paid_total_after, settled.contributes), (23, false));
        assert!(grant.settled(50, 40).contributes);
        assert_eq!(grant.settled(50, 40).remaining, 0);
        let free = decide(&usage(Tier::Free, 0, 19), None, now).unwrap();
        assert!(!free.settled(1, 20).contributes, "FREE never contributes");
    }

    #[test]
    fn every_twentieth_paid_generation_contributes_and_free_ones_never_count() {
        let now = at("2026-11-26T10:00:00Z");
        let twentieth = decide(&usage(Tier::Pro, 0, 19), None, now).unwrap();
        assert_eq!(
            (twentieth.paid_total_after, twentieth.contributes),
            (20, true)
        );
        let free = decide(&usage(Tier::Free, 0, 19), None, now).unwrap();
        assert_eq!((free.paid_total_after, free.contributes), (19, false));
    }

    #[test]
    fn a_credit_pays_only_once_the_allowance_is_used_up_and_never_a_quality_the_tier_lacks() {
        let now = at("2026-11-26T10:00:00Z");
        let grant = decide_with_credit(&usage(Tier::Free, 2, 0), Some("b1"), None, now).unwrap();
        assert_eq!(grant.credit, None, "the allowance first");
        let grant = decide_with_credit(&usage(Tier::Free, 3, 0), Some("b1"), None, now).unwrap();
        assert_eq!(grant.credit.as_deref(), Some("b1"));
        assert_eq!(
            (grant.used_before, grant.used_after, grant.remaining),
            (3, 3, 0)
        );
        assert_eq!(grant.limit(), 3);
        assert_eq!(
            decide_with_credit(
                &usage(Tier::Free, 3, 0),
                Some("b1"),
                Some(Quality::High),
                now
            )
            .err()
            .map(|r| r.code()),
            Some(RefusalCode::QualityNotInTier)
        );
        // A paid tier's credit generation is in the paid history (the 5 % rule counts it).
        let grant = decide_with_credit(&usage(Tier::Pro, 200, 19), Some("b"), None, now).unwrap();
        assert!(grant.contributes);
        let settled = grant.settled(200, 20);
        assert_eq!(
            (
                settled.used_after,
                settled.remaining,
                settled.credit.as_deref()
            ),
            (200, 0, Some("b"))
        );
    }
}
