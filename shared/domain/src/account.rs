//! A user's account as a whole: the legal hold an admin places on it.

use crate::ids::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An admin's hold on an account: while it stands the account cannot be deleted (its data may be
/// needed by a court or an investigation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub since: DateTime<Utc>,
    pub by: UserId,
    pub reason: String,
}
