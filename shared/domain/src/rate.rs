//! The per-user request budget of the costly routes (record-generation, submit, lyrics, Pixel,
//! checkout, portal, upload-url, claim, like, play): a token bucket of `burst` requests refilled at
//! `per_minute`, kept as one number on the user item, the bucket's theoretical arrival time (GCRA):
//! `tat`, the time at which the bucket would be full again.
//!
//! A request at `now` is admitted when `tat ≤ now + tolerance` (tolerance = (burst − 1) × interval),
//! and moves `tat` to `max(tat, now) + interval`. DynamoDB has no `max`, so the move is one of two
//! conditional updates, each exact under any number of parallel requests: **idle** (`tat` absent or
//! more than one interval before `now`: `SET tat = now + interval`) or **busy** (`now − interval ≤ tat
//! ≤ now + tolerance`: `SET tat = tat + interval`). The busy form reaches one interval into the past
//! so that time passing between a read and its write never flips a request from one form to the
//! other: a form's condition fails only when another request was admitted meanwhile, so the tries of
//! a request are bounded by the progress of the others. (The price: a request up to one interval
//! early, once, after a pause.) A request picks the form from the `tat` it last saw and, when the
//! condition fails, from the `tat` the failure returns.
//!
//! API Gateway's throttles are per route for all callers together; this is what keeps one client
//! from starving the rest.

/// How many costly requests a user may make: `burst` at once, then `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    pub per_minute: u32,
    pub burst: u32,
}

impl Default for RequestBudget {
    /// 200 at once, then two a second: above what a person, or a client's parallel requests (a
    /// STUDIO user's 16 clients of 12 generations each), ask at once; far below a script's loop.
    fn default() -> Self {
        Self {
            per_minute: 120,
            burst: 200,
        }
    }
}

/// What a request may do with the bucket at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateStep {
    /// Admitted on an idle bucket: `tat` absent or before `floor_ms` becomes `now + interval`.
    Idle { floor_ms: i64, new_tat_ms: i64 },
    /// Admitted on a busy bucket: `tat`, between `floor_ms` (`now − interval`) and `limit_ms`
    /// (`now + tolerance`), grows by `interval`.
    Busy {
        floor_ms: i64,
        limit_ms: i64,
        interval_ms: i64,
    },
    /// Refused: the bucket is empty for this long (whole seconds, at least 1: `Retry-After`).
    Refused { retry_after: u64 },
}

impl RequestBudget {
    /// Milliseconds between two requests at the sustained rate.
    pub fn interval_ms(self) -> i64 {
        60_000 / i64::from(self.per_minute.max(1))
    }

    /// How far ahead of `now` the bucket's `tat` may be and still admit a request.
    pub fn tolerance_ms(self) -> i64 {
        i64::from(self.burst.max(1) - 1) * self.interval_ms()
    }

    /// The step of a request at `now_ms` on a bucket whose `tat` was last seen as `tat_ms`.
    pub fn step(self, tat_ms: Option<i64>, now_ms: i64) -> RateStep {
        let interval_ms = self.interval_ms();
        let floor_ms = now_ms - interval_ms;
        match tat_ms {
            Some(tat) if tat >= floor_ms => {
                let limit_ms = now_ms + self.tolerance_ms();
                if tat <= limit_ms {
                    RateStep::Busy {
                        floor_ms,
                        limit_ms,
                        interval_ms,
                    }
                } else {
                    let wait = tat - limit_ms;
                    RateStep::Refused {
                        retry_after: u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1),
                    }
                }
            }
            _ => RateStep::Idle {
                floor_ms,
                new_tat_ms: now_ms + interval_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits like DynamoDB would apply the step's update, from `tat`.
    fn admit(budget: RequestBudget, tat: &mut Option<i64>, now: i64) -> Result<(), u64> {
        match budget.step(*tat, now) {
            RateStep::Idle { new_tat_ms, .. } => *tat = Some(new_tat_ms),
            RateStep::Busy { interval_ms, .. } => *tat = tat.map(|t| t + interval_ms),
            RateStep::Refused { retry_after } => return Err(retry_after),
        }
        Ok(())
    }

    #[test]
    fn a_burst_is_admitted_then_the_sustained_rate() {
        let budget = RequestBudget {
            per_minute: 60,
            burst: 5,
        };
        let mut tat = None;
        let now = 1_000_000;
        for _ in 0..5 {
            assert_eq!(admit(budget, &mut tat, now), Ok(()));
        }
        // Empty: the next token comes in one second.
        assert_eq!(admit(budget, &mut tat, now), Err(1));
        assert_eq!(admit(budget, &mut tat, now + 999), Err(1));
        assert_eq!(admit(budget, &mut tat, now + 1_000), Ok(()));
        assert_eq!(admit(budget, &mut tat, now + 1_000), Err(1));
        // Idle for a minute: the whole burst again, never more.
        let later = now + 60_000;
        for _ in 0..5 {
            assert_eq!(admit(budget, &mut tat, later), Ok(()));
        }
        assert_eq!(admit(budget, &mut tat, later), Err(1));
    }

    #[test]
    fn time_passing_between_a_read_and_its_write_keeps_a_request_in_its_form() {
        let budget = RequestBudget {
            per_minute: 120,
            burst: 3,
        };
        // Read with `tat` just ahead of `now`: busy. Written a little later, `tat` is behind the
        // clock by less than an interval: still busy, not flipped to idle.
        let step = budget.step(Some(10_100), 10_000);
        assert!(matches!(step, RateStep::Busy { .. }));
        assert!(matches!(
            budget.step(Some(10_100), 10_400),
            RateStep::Busy { .. }
        ));
        assert!(matches!(
            budget.step(Some(10_100), 10_601),
            RateStep::Idle { .. }
        ));
    }

    #[test]
    fn retry_after_is_the_wait_for_the_next_token_in_whole_seconds() {
        let budget = RequestBudget {
            per_minute: 6,
            burst: 1,
        };
        let mut tat = None;
        assert_eq!(admit(budget, &mut tat, 0), Ok(()));
        assert_eq!(admit(budget, &mut tat, 0), Err(10));
        assert_eq!(admit(budget, &mut tat, 9_001), Err(1));
        assert_eq!(admit(budget, &mut tat, 10_000), Ok(()));
    }
}
