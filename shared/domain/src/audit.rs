//! The audit log of admin actions: one entry per action, chained by SHA-256 so that an entry changed
//! or removed after it was written is found by recomputing the chain.
//!
//! Entry `n` stores `prev_hash` (entry `n - 1`'s `hash`, or [`GENESIS`] for the first) and
//! `hash = SHA-256(prev_hash "\n" canonical(entry))`, where `canonical` is the entry's JSON without
//! `hash`, keys sorted at every depth, no white space. The log's head (the last `seq`, `hash` and
//! `id`) is written in the same transaction as each entry, so removing the newest entry is found too.

use crate::ids::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an admin did. Reads count: an admin reading another user's data is an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "tier.grant")]
    TierGrant,
    #[serde(rename = "credits.grant")]
    CreditsGrant,
    #[serde(rename = "hold.place")]
    HoldPlace,
    #[serde(rename = "hold.release")]
    HoldRelease,
    #[serde(rename = "user.read")]
    UserRead,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::TierGrant,
        Action::CreditsGrant,
        Action::HoldPlace,
        Action::HoldRelease,
        Action::UserRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::TierGrant => "tier.grant",
            Action::CreditsGrant => "credits.grant",
            Action::HoldPlace => "hold.place",
            Action::HoldRelease => "hold.release",
            Action::UserRead => "user.read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// Who acted, and through which route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: UserId,
    /// The route the action came through, as `METHOD /path/template`.
    pub via: String,
}

/// One action, before it is linked into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    pub actor: Actor,
    pub action: Action,
    /// The user acted on.
    pub target: UserId,
    /// What the action changed, as it was and as it became (`null` for nothing: a read, a new item).
    pub before: Value,
    pub after: Value,
    pub request_id: String,
}

/// Where the chain ends: the last entry's position and hash. The empty log is `Head::EMPTY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    /// The last entry's id (`None` while the log is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
    /// The last entry's `at` in epoch ms: entries' instants never go back along the chain.
    #[serde(default)]
    pub at_ms: i64,
}

impl Head {
    pub fn empty() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
            last_id: None,
            at_ms: 0,
        }
    }
}

/// A stored entry of the log, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// Its position in the chain, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: Action,
    pub target: UserId,
    pub before: Value,
    pub after: Value,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// `record` as the entry after `head`, at `now` (or at the head's instant when the clock reads
    /// earlier than it, so `at` never goes back along the chain), hashed.
    pub fn link(record: ActionRecord, head: &Head, now: DateTime<Utc>, id: String) -> Self {
        let now_ms = now.timestamp_millis().max(head.at_ms);
        let at = DateTime::from_timestamp_millis(now_ms).unwrap_or(now);
        let mut entry = Self {
            id,
            seq: head.seq + 1,
            at,
            actor: record.actor,
            action: record.action,
            target: record.target,
            before: record.before,
            after: record.after,
            request_id: record.request_id,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    /// The hash this entry's content and `prev_hash` give.
    pub fn computed_hash(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("hash");
        }
        let mut digest = Sha256::new();
        digest.update(self.prev_hash.as_bytes());
        digest.update(b"\n");
        digest.update(canonical(&value).as_bytes());
        hex::encode(digest.finalize())
    }

    /// The head once this entry is the last.
    pub fn as_head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
            last_id: Some(self.id.clone()),
            at_ms: self.at.timestamp_millis(),
        }
    }
}

/// `value` as JSON with every object's keys sorted and no white space.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// What recomputing part of the chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub ok: bool,
    /// The first entry that does not follow from the one before it (changed, or the one after a
    /// removed entry), or the head's last entry when that one is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<String>,
    pub checked: u64,
}

/// Checks `entries` (ascending by `seq`, a contiguous stretch of the log as stored): each one's
/// hash, and its link to the one before. `before` is the entry just before the stretch (`None`
/// when the stretch starts the log); `head`, when given, is where the stretch must end (it reaches
/// the end of the log).
pub fn verify(entries: &[Entry], before: Option<&Entry>, head: Option<&Head>) -> Verdict {
    let genesis = Head::empty();
    let mut expected = before.map_or(genesis, Entry::as_head);
    let mut checked = 0;
    for entry in entries {
        checked += 1;
        let follows = entry.seq == expected.seq + 1 && entry.prev_hash == expected.hash;
        if !follows || entry.computed_hash() != entry.hash {
            return Verdict {
                ok: false,
                first_bad: Some(entry.id.clone()),
                checked,
            };
        }
        expected = entry.as_head();
    }
    if let Some(head) = head {
        if head.seq != expected.seq || head.hash != expected.hash {
            return Verdict {
                ok: false,
                first_bad: head.last_id.clone(),
                checked,
            };
        }
    }
    Verdict {
        ok: true,
        first_bad: None,
        checked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(n: u32) -> ActionRecord {
        ActionRecord {
            actor: Actor {
                user_id: UserId::parse("admin").unwrap_or_else(|_| unreachable!()),
                via: "PUT /api/admin/users/{user_id}/tier".into(),
            },
            action: Action::TierGrant,
            target: UserId::parse(&format!("u{n}")).unwrap_or_else(|_| unreachable!()),
            before: json!({"tier": "FREE", "n": n}),
            after: json!({"tier": "PRO", "nested": {"b": 1, "a": [2, 1]}}),
            request_id: format!("req-{n}"),
        }
    }

    fn chain(n: u32) -> Vec<Entry> {
        let mut head = Head::empty();
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        (0..n)
            .map(|i| {
                let entry = Entry::link(
                    record(i),
                    &head,
                    start + chrono::Duration::seconds(i64::from(i)),
                    format!("e{i}"),
                );
                head = entry.as_head();
                entry
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies_whole_and_in_part() {
        let entries = chain(5);
        let head = entries[4].as_head();
        assert_eq!(
            verify(&entries, None, Some(&head)),
            Verdict {
                ok: true,
                first_bad: None,
                checked: 5
            }
        );
        assert!(verify(&entries[2..4], Some(&entries[1]), None).ok);
        assert!(verify(&[], None, Some(&Head::empty())).ok);
        assert_eq!(entries[0].prev_hash, GENESIS);
    }

    #[test]
    fn a_changed_entry_is_named() {
        let mut entries = chain(5);
        entries[2].after = json!({"tier": "STUDIO"});
        let verdict = verify(&entries, None, Some(&entries[4].as_head()));
        assert_eq!(verdict.first_bad.as_deref(), Some("e2"));
        assert_eq!(verdict.checked, 3);
        // Its hash made to match its new content: the next entry no longer follows from it.
        entries[2].hash = entries[2].computed_hash();
        let verdict = verify(&entries, None, None);
        assert_eq!(verdict.first_bad.as_deref(), Some("e3"));
    }

    #[test]
    fn a_removed_entry_is_found_in_the_middle_and_at_the_end() {
        let mut entries = chain(5);
        let head = entries[4].as_head();
        let removed = entries.remove(1);
        assert_eq!(
            verify(&entries, None, Some(&head)).first_bad.as_deref(),
            Some("e2")
        );
        entries.insert(1, removed);
        entries.pop();
        assert_eq!(
            verify(&entries, None, Some(&head)).first_bad.as_deref(),
            Some("e4")
        );
    }

    #[test]
    fn key_order_does_not_change_the_hash_but_any_value_does() {
        let entry = &chain(1)[0];
        let mut reordered = entry.clone();
        reordered.after = json!({"nested": {"a": [2, 1], "b": 1}, "tier": "PRO"});
        assert_eq!(reordered.computed_hash(), entry.hash);
        let mut changed = entry.clone();
        changed.after = json!({"nested": {"a": [1, 2], "b": 1}, "tier": "PRO"});
        assert_ne!(changed.computed_hash(), entry.hash);
        let mut actor = entry.clone();
        actor.actor.via = "GET /api/admin/audit".into();
        assert_ne!(actor.computed_hash(), entry.hash);
    }

    #[test]
    fn instants_never_go_back_along_the_chain() {
        let first = &chain(1)[0];
        let earlier = first.at - chrono::Duration::seconds(30);
        let next = Entry::link(record(9), &first.as_head(), earlier, "late".into());
        assert_eq!(next.at, first.at);
        assert_eq!(next.seq, 2);
        assert_eq!(next.prev_hash, first.hash);
    }

    #[test]
    fn actions_parse_from_their_names_only() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            assert_eq!(
                serde_json::to_value(action).ok(),
                Some(json!(action.as_str()))
            );
        }
        assert_eq!(Action::parse("TierGrant"), None);
    }
}
