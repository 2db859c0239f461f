//! How every worker of the fleet together keeps within a generation provider's published limits,
//! decided on the provider's shared state (stored by `son1k_store::providers`):
//!
//! - a token bucket (`tokens`, refilled at the provider's requests per second up to its burst, as of
//!   `refilled_at`): a call takes a token or is not made;
//! - the calls in flight (`in_flight`: job → until when, epoch ms), at most the provider's maximum
//!   concurrency; a crashed worker's slot runs out by itself;
//! - a cooldown (`cooldown_until`) set from a 429's `Retry-After`: no call before it;
//! - a circuit breaker: `failures` in a row open it for `BREAKER_OPEN_MS`; then one probe call at a
//!   time (`probe_until`) is let through; a success closes it.
//!
//! Every change is a read, a decision here (`take`, `end`) and a write conditioned on the state's
//! `rev` being what was read: two workers cannot both take the last token.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Failures in a row that open a provider's circuit.
pub const BREAKER_FAILURES: u32 = 3;
/// How long an open circuit stays open before a probe is let through.
pub const BREAKER_OPEN_MS: i64 = 30_000;

/// The limits a provider publishes, as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub requests_per_second: f64,
    pub burst: u32,
    pub max_concurrency: u32,
    /// How long one call may hold its slot (the call's timeout and a margin).
    pub slot_ms: i64,
}

/// A provider's state as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderState {
    #[serde(default)]
    pub tokens: f64,
    #[serde(default)]
    pub refilled_at: i64,
    #[serde(default)]
    pub cooldown_until: i64,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub open_until: i64,
    #[serde(default)]
    pub probe_until: i64,
    #[serde(default)]
    pub in_flight: BTreeMap<String, i64>,
    #[serde(default)]
    pub rev: u64,
    /// Whether the item exists (a new provider starts with a full bucket).
    #[serde(skip)]
    pub stored: bool,
}

/// Why a provider cannot be called now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// After a 429: not before this time (epoch ms).
    CoolingDown { until: i64 },
    /// The circuit is open (or a probe is under way).
    Open { until: i64 },
    /// As many calls in flight as it allows.
    Busy,
    /// No token: the next one comes at this time (epoch ms).
    OutOfRate { next: i64 },
}

impl Unavailable {
    /// The earliest time (epoch ms) it might be callable again.
    pub fn until(&self, now_ms: i64) -> i64 {
        match *self {
            Self::CoolingDown { until } | Self::Open { until } => until,
            Self::OutOfRate { next } => next,
            Self::Busy => now_ms + 250,
        }
    }
}

/// How a call ended, for the provider's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    Success,
    /// A failure of the provider (5xx, timeout, broken answer): counts towards opening the circuit.
    Failure,
    /// A 429: cool down for this long (ms); not a failure of the provider.
    RateLimited {
        retry_after_ms: i64,
    },
    /// The provider refused this request (4xx): says nothing about its health.
    Refused,
}

impl ProviderState {
    /// The state after taking a slot for `job` at `now_ms`, or why not. Pure.
    pub fn take(&self, limits: &Limits, job: &str, now_ms: i64) -> Result<Self, Unavailable> {
        if now_ms < self.cooldown_until {
            return Err(Unavailable::CoolingDown {
                until: self.cooldown_until,
            });
        }
        let mut next = self.clone();
        if self.failures >= BREAKER_FAILURES {
            if now_ms < self.open_until {
                return Err(Unavailable::Open {
                    until: self.open_until,
                });
            }
            if now_ms < self.probe_until {
                return Err(Unavailable::Open {
                    until: self.probe_until,
                });
            }
            // Half open: this call is the probe; no other until it ends or its slot runs out.
            next.probe_until = now_ms + limits.slot_ms;
        }
        next.in_flight.retain(|_, until| *until > now_ms);
        if next.in_flight.len() >= limits.max_concurrency as usize {
            return Err(Unavailable::Busy);
        }
        let burst = f64::from(limits.burst.max(1));
        let tokens = if self.stored {
            let elapsed = (now_ms - self.refilled_at).max(0) as f64 / 1000.0;
            (self.tokens + elapsed * limits.requests_per_second).min(burst)
        } else {
            burst
        };
        if tokens < 1.0 {
            let wait_ms = ((1.0 - tokens) / limits.requests_per_second * 1000.0).ceil() as i64;
            return Err(Unavailable::OutOfRate {
                next: now_ms + wait_ms.max(1),
            });
        }
        next.tokens = tokens - 1.0;
        next.refilled_at = now_ms;
        next.in_flight
            .insert(job.to_owned(), now_ms + limits.slot_ms);
        Ok(next)
    }

    /// The state after `job`'s call ended as `end` at `now_ms`. Pure.
    pub fn end(&self, job: &str, end: CallEnd, now_ms: i64) -> Self {
        let mut next = self.clone();
        next.in_flight.remove(job);
        match end {
            CallEnd::Success => {
                next.failures = 0;
                next.open_until = 0;
                next.probe_until = 0;
            }
            CallEnd::Failure => {
                next.failures = self.failures.saturating_add(1);
                next.probe_until = 0;
                if next.failures >= BREAKER_FAILURES {
                    next.open_until = now_ms + BREAKER_OPEN_MS;
                }
            }
            CallEnd::RateLimited { retry_after_ms } => {
                next.cooldown_until = self.cooldown_until.max(now_ms + retry_after_ms.max(0));
                next.probe_until = 0;
            }
            CallEnd::Refused => next.probe_until = 0,
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        requests_per_second: 2.0,
        burst: 2,
        max_concurrency: 10,
        slot_ms: 60_000,
    };

    fn stored() -> ProviderState {
        ProviderState {
            stored: true,
            ..ProviderState::default()
        }
    }

    #[test]
    fn the_bucket_starts_full_and_refills_at_the_published_rate() {
        let s0 = ProviderState::default();
        let s1 = s0.take(&LIMITS, "a", 1_000).unwrap();
        let s1 = ProviderState { stored: true, ..s1 };
        let s2 = s1.take(&LIMITS, "b", 1_000).unwrap();
        let s2 = ProviderState { stored: true, ..s2 };
        assert_eq!(
            s2.take(&LIMITS, "c", 1_000),
            Err(Unavailable::OutOfRate { next: 1_500 })
        );
        assert!(s2.take(&LIMITS, "c", 1_500).is_ok());
    }

    #[test]
    fn retry_after_cools_the_provider_down_without_counting_a_failure() {
        let s = stored().end(
            "a",
            CallEnd::RateLimited {
                retry_after_ms: 2_000,
            },
            10_000,
        );
        assert_eq!(s.failures, 0);
        assert_eq!(
            s.take(&LIMITS, "b", 11_999),
            Err(Unavailable::CoolingDown { until: 12_000 })
        );
        assert!(s.take(&LIMITS, "b", 12_000).is_ok());
    }

    #[test]
    fn failures_in_a_row_open_the_circuit_then_one_probe_at_a_time_closes_it() {
        let mut s = stored();
        for i in 0..BREAKER_FAILURES {
            s = s.end("a", CallEnd::Failure, 10_000 + i64::from(i));
        }
        let opened = 10_000 + i64::from(BREAKER_FAILURES - 1) + BREAKER_OPEN_MS;
        assert_eq!(
            s.take(&LIMITS, "b", opened - 1),
            Err(Unavailable::Open { until: opened })
        );
        let probing = ProviderState {
            stored: true,
            ..s.take(&LIMITS, "probe", opened).unwrap()
        };
        assert!(matches!(
            probing.take(&LIMITS, "other", opened + 1),
            Err(Unavailable::Open { .. })
        ));
        let closed = probing.end("probe", CallEnd::Success, opened + 2);
        assert_eq!(closed.failures, 0);
        assert!(closed.take(&LIMITS, "other", opened + 3).is_ok());
    }

    #[test]
    fn concurrency_is_bounded_and_a_lost_slot_runs_out() {
        let limits = Limits {
            max_concurrency: 1,
            burst: 10,
            ..LIMITS
        };
        let s = ProviderState {
            stored: true,
            ..ProviderState::default().take(&limits, "a", 0).unwrap()
        };
        assert_eq!(s.take(&limits, "b", 1_000), Err(Unavailable::Busy));
        assert!(s.take(&limits, "b", 60_000).is_ok());
    }
}
