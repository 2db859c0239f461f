//! The wall clock, for production and the local stack (the rules' `Clock` is `son1k_domain::clock`).

use chrono::{DateTime, Utc};
pub use son1k_domain::clock::{rfc3339, Clock, FixedClock};

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
