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

/// How long a deleted user's tombstone is kept: far past the longest token lifetime (60 minutes,
/// `template.yaml`), so every token of theirs has expired before it goes.
pub const TOMBSTONE_DAYS: i64 = 30;

/// How long a deletion's receipt answers after the deletion was asked for.
pub const RECEIPT_DAYS: i64 = 30;

/// The key of a deleted user's tombstone: SHA-256 of their id, so the tombstone does not keep the id
/// in its key, while a request bearing the id finds it.
pub fn tombstone_key(user: &UserId) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(b"son1k tombstone\n");
    digest.update(user.as_str().as_bytes());
    hex::encode(digest.finalize())
}

/// Where a deletion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    /// Asked for: the account is closed (every route refuses its tokens) and its data is being
    /// deleted.
    Running,
    /// Everything but what is kept is gone.
    Completed,
}

/// A kind of data kept after a deletion, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub category: String,
    pub items: u64,
    pub reason: String,
}

/// What a deletion did, as its receipt says: answerable by its id for [`RECEIPT_DAYS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub deletion_id: String,
    pub status: DeletionStatus,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// What was deleted, by category: items, objects (every version), external accounts.
    #[serde(default)]
    pub deleted: std::collections::BTreeMap<String, u64>,
    /// What was kept, under `pseudonym` instead of the user's id.
    #[serde(default)]
    pub kept: Vec<Kept>,
    /// The id the kept records now carry instead of the user's.
    pub pseudonym: String,
}

impl Receipt {
    pub fn new(deletion_id: String, now: DateTime<Utc>) -> Self {
        Self {
            pseudonym: format!("deleted-{}", deletion_id.to_ascii_lowercase()),
            deletion_id,
            status: DeletionStatus::Running,
            requested_at: now,
            completed_at: None,
            deleted: std::collections::BTreeMap::new(),
            kept: Vec::new(),
        }
    }

    /// When the receipt stops answering.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.requested_at + chrono::Duration::days(RECEIPT_DAYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_key_is_the_ids_hash_and_differs_per_user() {
        let a = UserId::parse("user-a").unwrap_or_else(|_| unreachable!());
        let b = UserId::parse("user-b").unwrap_or_else(|_| unreachable!());
        assert_eq!(tombstone_key(&a), tombstone_key(&a));
        assert_ne!(tombstone_key(&a), tombstone_key(&b));
        assert_eq!(tombstone_key(&a).len(), 64);
        assert!(!tombstone_key(&a).contains("user-a"));
    }

    #[test]
    fn a_pseudonym_is_made_of_the_deletion_id_not_the_user() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let receipt = Receipt::new("01JDELETION".into(), now);
        assert_eq!(receipt.pseudonym, "deleted-01jdeletion");
        assert_eq!(receipt.expires_at() - now, chrono::Duration::days(30));
    }
}

/// How often a user may ask for an export of their data.
pub const EXPORT_EVERY_HOURS: i64 = 24;

/// How long an export's ZIP is kept (the bucket's lifecycle rule on `exports/` deletes it then).
pub const EXPORT_KEPT_DAYS: i64 = 7;

/// How long an export's download link works.
pub const EXPORT_LINK_SECONDS: u64 = 15 * 60;

/// What an export holds, in its manifest's order: each is listed, empty or not.
pub const EXPORT_CATEGORIES: [&str; 16] = [
    "profile",
    "tier_and_subscription",
    "usage",
    "generations",
    "audio",
    "lyrics",
    "pixel_conversations",
    "pool_contributions",
    "likes",
    "claims",
    "credits",
    "credit_ledger",
    "alerts",
    "alert_settings",
    "voices",
    "consent_records",
];

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Running,
    Ready,
    Failed,
}

/// The key of an export's ZIP.
pub fn export_key(user: &UserId, export_id: &str) -> String {
    format!("exports/{user}/{export_id}.zip")
}

/// Why an export cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportRefusal {
    /// One is being made.
    InProgress,
    /// One was asked for less than [`EXPORT_EVERY_HOURS`] ago: the seconds until another may be.
    TooSoon { retry_after: u64 },
}

/// Whether a user whose last export was asked for at `last` (and is `running` or not) may ask for
/// another at `now`.
pub fn export_refusal(
    last: Option<DateTime<Utc>>,
    running: bool,
    now: DateTime<Utc>,
) -> Option<ExportRefusal> {
    let last = last?;
    let next = last + chrono::Duration::hours(EXPORT_EVERY_HOURS);
    if now >= next {
        return None;
    }
    Some(if running {
        ExportRefusal::InProgress
    } else {
        ExportRefusal::TooSoon {
            retry_after: u64::try_from((next - now).num_seconds().max(1)).unwrap_or(1),
        }
    })
}

#[cfg(test)]
mod export_tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn one_export_a_day_and_one_at_a_time() {
        assert_eq!(export_refusal(None, false, t(0)), None);
        assert_eq!(
            export_refusal(Some(t(0)), true, t(10)),
            Some(ExportRefusal::InProgress)
        );
        assert_eq!(
            export_refusal(Some(t(0)), false, t(10)),
            Some(ExportRefusal::TooSoon {
                retry_after: 86_390
            })
        );
        assert_eq!(
            export_refusal(Some(t(0)), false, t(86_399)),
            Some(ExportRefusal::TooSoon { retry_after: 1 })
        );
        assert_eq!(export_refusal(Some(t(0)), false, t(86_400)), None);
        // A run that never finished stops blocking once the day is over.
        assert_eq!(export_refusal(Some(t(0)), true, t(86_400)), None);
    }
}
