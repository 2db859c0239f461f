//! Credit blocks: generations bought in packs or granted by an admin, kept beside the subscription's
//! allowance and spent only once the period's allowance is used up. Which block pays is decided
//! here, once: granted before purchased, then the one expiring soonest, then the oldest.

use crate::DomainError;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a block came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Granted by an admin (promotional): spent first.
    Grant,
    /// Bought as a pack through Stripe Checkout.
    Purchase,
}

/// The most generations one admin grant may carry.
pub const MAX_GRANT: u32 = 10_000;
/// The longest a granted block may last.
pub const MAX_GRANT_DAYS: i64 = 5 * 366;
/// The longest reason an admin may give.
pub const MAX_REASON_CHARS: usize = 500;

/// A block as stored on the user item, by block id (`credits.<block_id>`). Times are epoch numbers
/// so that a spend's condition compares them (`until > now`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub source: Source,
    pub generations: u32,
    pub remaining: u32,
    /// Epoch seconds from which the block no longer pays (its `expires_at`). Not named
    /// `expires_at`: that is the tables' TTL attribute.
    pub until: i64,
    /// Epoch milliseconds it was added.
    pub added: i64,
}

impl Block {
    pub fn new(
        source: Source,
        generations: u32,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            source,
            generations,
            remaining: generations,
            until: expires_at.timestamp(),
            added: now.timestamp_millis(),
        }
    }

    /// Whether it can pay for a generation at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.remaining > 0 && now.timestamp() < self.until
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.until, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The block that pays the next generation beyond the allowance at `now`: granted before purchased,
/// then the soonest `expires_at`, then the oldest (then the id, for a total order).
pub fn next_block(blocks: &BTreeMap<String, Block>, now: DateTime<Utc>) -> Option<&str> {
    blocks
        .iter()
        .filter(|(_, b)| b.usable(now))
        .min_by_key(|(id, b)| (b.source, b.until, b.added, id.as_str()))
        .map(|(id, _)| id.as_str())
}

/// The generations the blocks can still pay for at `now`.
pub fn balance(blocks: &BTreeMap<String, Block>, now: DateTime<Utc>) -> u32 {
    blocks
        .values()
        .filter(|b| b.usable(now))
        .map(|b| b.remaining)
        .fold(0u32, u32::saturating_add)
}

/// A block as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockView {
    pub block_id: String,
    pub source: Source,
    pub generations: u32,
    pub remaining: u32,
    pub expires_at: String,
}

impl BlockView {
    pub fn of(id: &str, block: &Block) -> Self {
        Self {
            block_id: id.to_owned(),
            source: block.source,
            generations: block.generations,
            remaining: block.remaining,
            expires_at: crate::clock::rfc3339(block.expires_at()),
        }
    }
}

/// `GET /api/credits`: the balance and the blocks that can still pay, in the order they are spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditsView {
    pub balance: u32,
    pub blocks: Vec<BlockView>,
}

impl CreditsView {
    pub fn new(blocks: &BTreeMap<String, Block>, now: DateTime<Utc>) -> Self {
        let mut live: Vec<(&String, &Block)> =
            blocks.iter().filter(|(_, b)| b.usable(now)).collect();
        live.sort_by_key(|(id, b)| (b.source, b.until, b.added, id.as_str()));
        Self {
            balance: balance(blocks, now),
            blocks: live
                .into_iter()
                .map(|(id, b)| BlockView::of(id, b))
                .collect(),
        }
    }
}

/// What changed a block, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Purchase,
    Grant,
    Spend,
    Release,
    Expire,
    Void,
}

/// An admin's grant, as asked (`POST /api/admin/users/{user_id}/credits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub generations: u32,
    pub expires_at: DateTime<Utc>,
    pub reason: String,
}

impl GrantRequest {
    /// Checks an admin's grant at `now`: 1 to `MAX_GRANT` generations, expiring after `now` and
    /// within `MAX_GRANT_DAYS`, with a reason that is not blank.
    pub fn new(
        generations: u64,
        expires_at: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let generations = u32::try_from(generations)
            .ok()
            .filter(|g| (1..=MAX_GRANT).contains(g))
            .ok_or_else(|| DomainError::new("generations", format!("must be 1 to {MAX_GRANT}")))?;
        let expires_at = DateTime::parse_from_rfc3339(expires_at)
            .map_err(|_| DomainError::new("expires_at", "must be an RFC 3339 date-time"))?
            .with_timezone(&Utc);
        if expires_at <= now {
            return Err(DomainError::new("expires_at", "must be in the future"));
        }
        if expires_at > now + chrono::Duration::days(MAX_GRANT_DAYS) {
            return Err(DomainError::new(
                "expires_at",
                format!("must be within {MAX_GRANT_DAYS} days"),
            ));
        }
        let reason = crate::trim_text(reason);
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(DomainError::new(
                "reason",
                format!("must be 1 to {MAX_REASON_CHARS} characters"),
            ));
        }
        Ok(Self {
            generations,
            expires_at,
            reason: reason.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;

    fn block(source: Source, remaining: u32, expires: &str, added: &str) -> Block {
        Block {
            source,
            generations: remaining.max(1),
            remaining,
            until: at(expires).timestamp(),
            added: at(added).timestamp_millis(),
        }
    }

    #[test]
    fn grants_pay_before_purchases_then_the_soonest_expiry_then_the_oldest() {
        let now = at("2026-12-04T10:00:00Z");
        let mut blocks = BTreeMap::from([
            (
                "a".to_owned(),
                block(
                    Source::Purchase,
                    5,
                    "2027-01-01T00:00:00Z",
                    "2026-01-01T00:00:00Z",
                ),
            ),
            (
                "b".to_owned(),
                block(
                    Source::Grant,
                    2,
                    "2027-06-01T00:00:00Z",
                    "2026-11-01T00:00:00Z",
                ),
            ),
            (
                "c".to_owned(),
                block(
                    Source::Grant,
                    1,
                    "2026-12-05T00:00:00Z",
                    "2026-12-01T00:00:00Z",
                ),
            ),
            (
                "d".to_owned(),
                block(
                    Source::Grant,
                    1,
                    "2026-12-05T00:00:00Z",
                    "2026-11-30T00:00:00Z",
                ),
            ),
        ]);
        assert_eq!(next_block(&blocks, now), Some("d"));
        assert_eq!(balance(&blocks, now), 9);
        blocks.get_mut("d").unwrap().remaining = 0;
        assert_eq!(next_block(&blocks, now), Some("c"));
        // From the instant c and d expire, b pays; purchases only once the grants are spent.
        assert_eq!(next_block(&blocks, at("2026-12-05T00:00:00Z")), Some("b"));
        assert_eq!(balance(&blocks, at("2026-12-05T00:00:00Z")), 7);
        blocks.get_mut("b").unwrap().remaining = 0;
        assert_eq!(next_block(&blocks, at("2026-12-05T00:00:00Z")), Some("a"));
        assert_eq!(next_block(&blocks, at("2027-01-01T00:00:00Z")), None);
        assert_eq!(balance(&blocks, at("2027-01-01T00:00:00Z")), 0);
    }

    #[test]
    fn the_view_lists_the_blocks_that_can_pay_in_spending_order() {
        let now = at("2026-12-04T10:00:00Z");
        let blocks = BTreeMap::from([
            (
                "p".to_owned(),
                block(
                    Source::Purchase,
                    10,
                    "2027-12-04T10:00:00Z",
                    "2026-12-04T10:00:00Z",
                ),
            ),
            (
                "g".to_owned(),
                block(
                    Source::Grant,
                    3,
                    "2027-12-04T10:00:00Z",
                    "2026-12-04T10:00:00Z",
                ),
            ),
            (
                "gone".to_owned(),
                block(
                    Source::Grant,
                    3,
                    "2026-12-04T10:00:00Z",
                    "2026-12-01T10:00:00Z",
                ),
            ),
        ]);
        let view = CreditsView::new(&blocks, now);
        assert_eq!(view.balance, 13);
        let ids: Vec<&str> = view.blocks.iter().map(|b| b.block_id.as_str()).collect();
        assert_eq!(ids, ["g", "p"]);
        assert_eq!(view.blocks[0].expires_at, "2027-12-04T10:00:00Z");
    }

    #[test]
    fn a_grant_is_checked_at_the_instant_it_is_made() {
        let now = at("2026-12-04T10:00:00Z");
        let ok = GrantRequest::new(5, "2026-12-05T00:00:00+01:00", " welcome ", now).unwrap();
        assert_eq!(ok.expires_at, at("2026-12-04T23:00:00Z"));
        assert_eq!(ok.reason, "welcome");
        for (generations, expires, reason, field) in [
            (0, "2027-01-01T00:00:00Z", "r", "generations"),
            (10_001, "2027-01-01T00:00:00Z", "r", "generations"),
            (u64::MAX, "2027-01-01T00:00:00Z", "r", "generations"),
            (1, "2026-12-04T10:00:00Z", "r", "expires_at"),
            (1, "2032-01-01T00:00:00Z", "r", "expires_at"),
            (1, "tomorrow", "r", "expires_at"),
            (1, "2027-01-01T00:00:00Z", " \u{3000}", "reason"),
        ] {
            assert_eq!(
                GrantRequest::new(generations, expires, reason, now)
                    .err()
                    .map(|e| e.field),
                Some(field),
                "{generations} {expires} {reason:?}"
            );
        }
    }
}
