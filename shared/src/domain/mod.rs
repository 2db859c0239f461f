//! Pure business rules: no I/O, no clock of their own. Everything here is tested at any instant.

pub mod analytics;
pub mod assist;
pub mod billing;
pub mod cursor;
pub mod entitlement;
pub mod generation;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod lyrics;
pub mod metering;
pub mod period;
pub mod pixel;
pub mod pool;
pub mod rate;
pub mod storage;
pub mod tiers;

/// A value from outside that does not fit the domain. `field` names what was wrong for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DomainError {
    pub field: &'static str,
    pub reason: String,
}

impl DomainError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
