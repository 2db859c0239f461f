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
/// How long a purchased pack pays, from its payment.
pub const PURCHASE_MONTHS: u32 = 12;
/// The most generations one configured pack may sell.
pub const MAX_PACK: u32 = 10_000;
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
    /// For a purchase: the Stripe PaymentIntent that paid it (a refund of its charge names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
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
            payment: None,
        }
    }

    /// A purchased pack of `generations`, paid at `paid_at` by `payment`, added at `now`: it pays
    /// for [`PURCHASE_MONTHS`] months from the payment.
    pub fn purchase(
        generations: u32,
        paid_at: DateTime<Utc>,
        payment: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let expires_at = paid_at
            .checked_add_months(chrono::Months::new(PURCHASE_MONTHS))
            .unwrap_or(paid_at);
        Self {
            payment,
            ..Self::new(Source::Purchase, generations, expires_at, now)
        }
    }

    /// The block voided at `now`: nothing left, and no longer paying (so a credit a running job
    /// holds does not come back to it). The generations it still had.
    pub fn void(&mut self, now: DateTime<Utc>) -> u32 {
        let voided = self.remaining;
        self.remaining = 0;
        self.until = self.until.min(now.timestamp());
        voided
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

/// A pack of credits for sale (`CREDIT_PACKS`): its name, what it holds, its price as shown, and
/// the Stripe price that sells it (never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pack {
    pub pack: String,
    pub generations: u32,
    pub price_cents: u64,
    pub currency: String,
    #[serde(skip)]
    pub price_id: String,
}

/// The packs on sale, in the configured order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packs(Vec<Pack>);

impl Packs {
    /// Reads `CREDIT_PACKS`: comma-separated `name:generations:price_cents:currency:price_id`
    /// entries (`pack_10:10:499:usd:price_123`); blank means none on sale.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut packs: Vec<Pack> = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parts: Vec<&str> = entry.split(':').map(str::trim).collect();
            let [pack, generations, price_cents, currency, price_id] = parts[..] else {
                return Err(format!(
                    "{entry:?} is not name:generations:price_cents:currency:price_id"
                ));
            };
            let name_ok = !pack.is_empty()
                && pack.len() <= 40
                && pack
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let generations = generations
                .parse::<u32>()
                .ok()
                .filter(|g| (1..=MAX_PACK).contains(g));
            let price_cents = price_cents.parse::<u64>().ok().filter(|c| *c >= 1);
            let currency_ok =
                currency.len() == 3 && currency.chars().all(|c| c.is_ascii_lowercase());
            let (true, Some(generations), Some(price_cents), true, false) = (
                name_ok,
                generations,
                price_cents,
                currency_ok,
                price_id.is_empty(),
            ) else {
                return Err(format!(
                    "{entry:?}: the name is 1 to 40 of a-z, 0-9, _ and -; generations 1 to \
                     {MAX_PACK}; price_cents at least 1; currency three lower-case letters; a price id"
                ));
            };
            if packs.iter().any(|p| p.pack == pack) {
                return Err(format!("{pack:?} is configured twice"));
            }
            packs.push(Pack {
                pack: pack.to_owned(),
                generations,
                price_cents,
                currency: currency.to_owned(),
                price_id: price_id.to_owned(),
            });
        }
        Ok(Self(packs))
    }

    pub fn items(&self) -> &[Pack] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn find(&self, pack: &str) -> Option<&Pack> {
        self.0.iter().find(|p| p.pack == pack)
    }
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
            payment: None,
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

    #[test]
    fn packs_are_read_from_the_configuration_and_bad_entries_stop_the_start() {
        let packs =
            Packs::parse(" pack_10:10:499:usd:price_a , pack_50:50:1999:eur:price_b,").unwrap();
        assert_eq!(packs.items().len(), 2);
        let small = packs.find("pack_10").unwrap();
        assert_eq!(
            (
                small.generations,
                small.price_cents,
                small.currency.as_str(),
                small.price_id.as_str()
            ),
            (10, 499, "usd", "price_a")
        );
        assert_eq!(packs.find("pack_50").unwrap().currency, "eur");
        assert!(packs.find("pack_5").is_none());
        // The price id is never shown.
        let shown = serde_json::to_value(small).unwrap();
        assert_eq!(
            shown,
            serde_json::json!({"pack": "pack_10", "generations": 10, "price_cents": 499, "currency": "usd"})
        );
        assert!(Packs::parse("  ").unwrap().is_empty());
        for bad in [
            "pack_10:10:499:usd",
            "pack_10:0:499:usd:price_a",
            "pack_10:10001:499:usd:price_a",
            "pack_10:10:0:usd:price_a",
            "pack_10:10:499:USD:price_a",
            "pack 10:10:499:usd:price_a",
            "pack_10:10:499:usd:",
            "a:1:1:usd:p,a:2:2:usd:q",
        ] {
            assert!(Packs::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_purchase_pays_twelve_months_and_a_void_keeps_what_was_spent() {
        let paid = at("2026-02-28T00:00:00Z");
        let mut block = Block::purchase(10, paid, Some("pi_1".into()), paid);
        assert_eq!(block.expires_at(), at("2027-02-28T00:00:00Z"));
        assert_eq!(block.source, Source::Purchase);
        block.remaining = 7;
        let now = at("2026-03-01T00:00:00Z");
        assert_eq!(block.void(now), 7);
        assert_eq!((block.remaining, block.generations), (0, 10));
        assert!(!block.usable(now));
        assert_eq!(block.until, now.timestamp());
    }
}
