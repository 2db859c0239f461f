//! The pool table: contributions (`CONTRIB#<id>` / `META`) and contributor ranking rows
//! (`RANK#<period>` / `USER#<id>`, indexed by `rank_period` + `points`).

use super::analytics::Tally;
use super::{item_key, sdk_failure, Attempt, StoreError, Transacted, Transaction};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::analytics::Event;
use son1k_domain::ids::{GenerationId, UserId};
use son1k_domain::pool::{Standing, Timeframe};
use son1k_domain::tiers::{Quality, Tier};

pub const META_SK: &str = "META";

pub fn contribution_pk(id: &str) -> String {
    format!("CONTRIB#{id}")
}

/// The listing partition every listed item is in (`lst`).
pub const ALL_LISTED: &str = "ALL";

/// The listing partition of a genre (`lst_genre`).
pub fn genre_partition(genre: &str) -> String {
    format!("G#{genre}")
}

pub fn rank_pk(period_key: &str) -> String {
    format!("RANK#{period_key}")
}

/// A generation shared with the pool. It is listed (gets the listing index keys) only once its audio
/// is stored; its points count in the ranking from the moment it is contributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContributionRecord {
    pub pk: String,
    pub sk: String,
    pub contribution_id: String,
    pub generation_id: GenerationId,
    pub contributor_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub quality: Quality,
    pub points: u32,
    pub plays: u64,
    pub likes: u64,
    pub contributed_at: DateTime<Utc>,
    pub listed: bool,
    /// The listing index keys, present only while listed (sparse indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lst_genre: Option<String>,
    /// Listing sort keys (see `schema::POOL`), set when listed; `popularity` moves with plays and likes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_rank: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qual_rank: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<u64>,
    /// The object key of its audio when that came from an upload (`upload_key`); absent for the
    /// generation worker's `audio_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_key: Option<String>,
}

impl ContributionRecord {
    /// The object key of the contribution's audio.
    pub fn object_key(&self) -> String {
        self.audio_key.clone().unwrap_or_else(|| {
            son1k_domain::storage::audio_key(&self.contributor_id, &self.generation_id)
        })
    }

    /// A new contribution of `user`'s generation `generation_id`, earning `points`, made at `now`.
    pub fn new(
        user: &super::users::UserRecord,
        generation_id: &GenerationId,
        genre: Option<&str>,
        title: Option<&str>,
        quality: Quality,
        points: u32,
        now: DateTime<Utc>,
    ) -> Self {
        let contribution_id = ulid::Ulid::generate().to_string();
        Self {
            pk: contribution_pk(&contribution_id),
            sk: META_SK.to_owned(),
            contribution_id,
            generation_id: generation_id.clone(),
            contributor_id: user.user_id.clone(),
            contributor_username: user.username.clone(),
            contributor_avatar_url: user.avatar_url.clone(),
            genre: genre.map(str::to_owned),
            title: title.map(str::to_owned),
            quality,
            points,
            plays: 0,
            likes: 0,
            contributed_at: now,
            listed: false,
            lst: None,
            lst_genre: None,
            recent_rank: None,
            qual_rank: None,
            popularity: None,
            audio_key: None,
        }
    }

    /// The `recent` and `quality` sort keys: contribution time in ms, and points × 10¹³ + that time
    /// (most points first, then newest).
    pub fn ranks(&self) -> (i64, u64) {
        let ms = self.contributed_at.timestamp_millis().max(0);
        let quality = u64::from(self.points)
            .saturating_mul(10_000_000_000_000)
            .saturating_add(u64::try_from(ms).unwrap_or(0));
        (ms, quality)
    }

    /// The same contribution, listed (its audio is stored already).
    pub fn listed(self) -> Self {
        let lst_genre = self.genre.as_deref().map(genre_partition);
        let (recent, quality) = self.ranks();
        let popularity = self
            .plays
            .saturating_mul(POPULARITY_PER_PLAY)
            .saturating_add(self.likes);
        Self {
            listed: true,
            lst: Some(ALL_LISTED.to_owned()),
            lst_genre,
            recent_rank: Some(recent),
            qual_rank: Some(quality),
            popularity: Some(popularity),
            ..self
        }
    }
}

/// Who contributed, as shown in the ranking.
#[derive(Debug, Clone, Copy)]
pub struct Contributor<'a> {
    pub id: &'a UserId,
    pub username: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
    pub tier: Tier,
}

impl<'a> Contributor<'a> {
    /// `user` as the ranking shows them, at `tier`.
    pub fn of(user: &'a super::users::UserRecord, tier: Tier) -> Self {
        Self {
            id: &user.user_id,
            username: user.username.as_deref(),
            avatar_url: user.avatar_url.as_deref(),
            tier,
        }
    }
}

/// The transaction items that store a new contribution and add its points to the contributor's
/// week, month and all-time ranking rows.
pub fn contribution_items(
    pool_table: &str,
    record: &ContributionRecord,
    contributor: Contributor<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let put = Put::builder()
        .table_name(pool_table)
        .set_item(Some(
            serde_dynamo::to_item(record).map_err(StoreError::invalid_request)?,
        ))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(StoreError::invalid_request)?;
    let mut items = vec![TransactWriteItem::builder().put(put).build()];
    for timeframe in Timeframe::ALL {
        let period = timeframe.period_key(now);
        let mut set = vec![
            "rank_period = :period",
            "user_id = :uid",
            "tier = :tier",
            "updated_at = :now",
        ];
        let mut update = Update::builder()
            .table_name(pool_table)
            .set_key(Some(item_key(
                rank_pk(&period),
                &format!("USER#{}", contributor.id),
            )))
            .expression_attribute_values(":period", AttributeValue::S(period.clone()))
            .expression_attribute_values(":uid", AttributeValue::S(contributor.id.to_string()))
            .expression_attribute_values(
                ":tier",
                AttributeValue::S(contributor.tier.as_str().to_owned()),
            )
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
            .expression_attribute_values(":points", AttributeValue::N(record.points.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        if let Some(name) = contributor.username {
            set.push("username = :username");
            update =
                update.expression_attribute_values(":username", AttributeValue::S(name.to_owned()));
        }
        if let Some(url) = contributor.avatar_url {
            set.push("avatar_url = :avatar");
            update =
                update.expression_attribute_values(":avatar", AttributeValue::S(url.to_owned()));
        }
        let update = update
            .update_expression(format!(
                "ADD points :points, contributions :one SET {}",
                set.join(", ")
            ))
            .build()
            .map_err(StoreError::invalid_request)?;
        items.push(TransactWriteItem::builder().update(update).build());
    }
    Ok(items)
}

/// A ranking row as stored (`RANK#<period>` / `USER#<id>`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct RankRecord {
    user_id: UserId,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
    tier: Tier,
    #[serde(default)]
    contributions: u64,
    #[serde(default)]
    points: u64,
}

/// Access to the pool table (and, for the analytics that ride in its transactions, the stats table).
#[derive(Debug, Clone, Copy)]
pub struct PoolStore<'a> {
    client: &'a aws_sdk_dynamodb::Client,
    table: &'a str,
    stats_table: &'a str,
    users_table: &'a str,
}

impl<'a> PoolStore<'a> {
    pub fn new(client: &'a aws_sdk_dynamodb::Client, names: &'a crate::Names) -> Self {
        Self {
            client,
            table: &names.pool_table,
            stats_table: &names.stats_table,
            users_table: &names.users_table,
        }
    }

    /// The standings of ranking period `period_key` with the most points: at least `limit` of them
    /// (when there are), plus every one tied with the last, so ties can be broken in code.
    #[tracing::instrument(skip_all, fields(period = %period_key))]
    pub async fn standings(
        &self,
        period_key: &str,
        limit: usize,
    ) -> Result<Vec<Standing>, StoreError> {
        let mut standings: Vec<Standing> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(self.table)
                .index_name("ranking")
                .key_condition_expression("rank_period = :p")
                .expression_attribute_values(":p", AttributeValue::S(period_key.to_owned()))
                .scan_index_forward(false)
                .limit(i32::try_from(limit + 1).unwrap_or(101))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_failure("Query pool ranking", err))?;
            for item in out.items() {
                let row: RankRecord =
                    serde_dynamo::from_item(item.clone()).map_err(StoreError::corrupt)?;
                standings.push(Standing {
                    user_id: row.user_id,
                    username: row.username,
                    avatar_url: row.avatar_url,
                    tier: row.tier,
                    contributions: row.contributions,
                    points: row.points,
                });
            }
            let cutoff = standings.get(limit.saturating_sub(1)).map(|s| s.points);
            let last = standings.last().map(|s| s.points);
            let past_ties = matches!((cutoff, last), (Some(cut), Some(last)) if last < cut);
            match out.last_evaluated_key {
                Some(key) if !past_ties => start = Some(key),
                _ => return Ok(standings),
            }
        }
    }
}

/// What one attempt at a play found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayTry {
    Played(Played),
    /// No such listed item.
    NotListed,
    /// The caller played it within the hour: try again as a play not counted.
    CountedBefore,
    /// The request budget was not as the step assumed, or the caller has no user item yet.
    RateStale,
    /// Lost to another transaction: nothing changed.
    Busy,
}

/// What a play found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    pub plays: u64,
    /// The object key of the item's audio.
    pub audio_key: String,
}

/// A play: one more play and its weight in `popularity`, on a listed item only.
const PLAY: &str = "ADD plays :one, popularity :weight";
const LISTED: &str = "attribute_exists(pk) AND listed = :yes";

fn play_values() -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        (":one".to_owned(), AttributeValue::N("1".into())),
        (
            ":weight".to_owned(),
            AttributeValue::N(POPULARITY_PER_PLAY.to_string()),
        ),
        (":yes".to_owned(), AttributeValue::Bool(true)),
    ])
}

/// Each play outranks any number of likes in the `popular` order: most plays, then likes.
pub const POPULARITY_PER_PLAY: u64 = 1 << 32;

impl PoolStore<'_> {
    /// One attempt at a play of listed contribution `id` by `user`, with the request budget's
    /// `rate` step in the same transaction. Counted (one more play, its weight in `popularity`, the
    /// analytics) only for the user's first play of the item in the UTC hour, so `popular` cannot
    /// be bought with a loop: a marker item (`PLAYED#<id>` / `<user>#<hour>`, kept two hours by TTL)
    /// is put with it. `counted_before`: the marker exists, so only the listing is checked. Then the
    /// item is read back for its plays: two calls on the common path.
    #[tracing::instrument(skip_all, fields(contribution_id = %id, user_id = %user))]
    pub async fn play(
        &self,
        id: &str,
        user: &UserId,
        rate: &son1k_domain::rate::RateStep,
        counted_before: bool,
        now: DateTime<Utc>,
    ) -> Result<PlayTry, StoreError> {
        let rate_item = super::users::rate_transact_item(self.users_table, user, rate)?;
        let tally = Tally::new(user, now).with(Event::PoolPlay, [("contribution_id", id)]);
        let mut items = Transaction::new("TransactWriteItems pool play");
        if counted_before {
            let listed = aws_sdk_dynamodb::types::ConditionCheck::builder()
                .table_name(self.table)
                .set_key(Some(item_key(contribution_pk(id), META_SK)))
                .condition_expression(LISTED)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .build()
                .map_err(StoreError::invalid_request)?;
            items.push(
                PlayItem::Listing,
                TransactWriteItem::builder().condition_check(listed).build(),
            );
            items.push(PlayItem::Budget, rate_item);
        } else {
            items.push(PlayItem::Listing, counted_play(self.table, id)?);
            items.push(PlayItem::Budget, rate_item);
            items.push(
                PlayItem::HourMarker,
                played_marker(self.stats_table, id, user, now)?,
            );
            items.extend(PlayItem::Counts, tally.items(self.stats_table)?);
        }
        match items.send(self.client).await? {
            Transacted::Committed => {
                if !counted_before {
                    tally.log();
                }
                Ok(self
                    .contribution(id)
                    .await?
                    .filter(|record| record.listed)
                    .map_or(PlayTry::NotListed, |record| {
                        PlayTry::Played(Played {
                            plays: record.plays,
                            audio_key: record.object_key(),
                        })
                    }))
            }
            Transacted::Refused(refused) if refused.by(PlayItem::Listing) => Ok(PlayTry::NotListed),
            Transacted::Refused(refused) if refused.by(PlayItem::Budget) => Ok(PlayTry::RateStale),
            Transacted::Refused(refused) if refused.by(PlayItem::HourMarker) => {
                Ok(PlayTry::CountedBefore)
            }
            Transacted::Refused(_) | Transacted::Busy => Ok(PlayTry::Busy),
        }
    }

    /// Likes (`true`) or unlikes listed contribution `item` for `user`, once whatever the retries:
    /// the like row and the count change together, and a new like is counted (`pool_like`, and one
    /// more on the user's preference counter of the item's genre) with them. `Done` once committed or
    /// refused (already (un)liked, or delisted meanwhile: nothing changed); `Busy` when another
    /// transaction held an item.
    #[tracing::instrument(skip_all, fields(contribution_id = %item.contribution_id, user_id = %user))]
    pub async fn like(
        &self,
        item: &ContributionRecord,
        user: &UserId,
        like: bool,
        now: DateTime<Utc>,
    ) -> Result<Attempt<()>, StoreError> {
        let id = item.contribution_id.as_str();
        let tally = Tally::new(user, now);
        let tally = if like {
            tally
                .with(Event::PoolLike, [("contribution_id", id)])
                .prefer(item.genre.as_deref())
        } else {
            tally
        };
        let mut items = Transaction::new("TransactWriteItems pool like");
        items.extend(LikeItem::Like, self.like_items(id, user, like)?);
        items.extend(LikeItem::Counts, tally.items(self.stats_table)?);
        Ok(match items.send(self.client).await? {
            Transacted::Committed => {
                tally.log();
                Attempt::Done(())
            }
            Transacted::Refused(_) => Attempt::Done(()),
            Transacted::Busy => Attempt::Busy,
        })
    }

    /// The likes of `id` as stored now (`None` once it is gone or delisted).
    pub async fn likes_now(&self, id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .contribution(id)
            .await?
            .filter(|c| c.listed)
            .map(|c| c.likes))
    }

    /// The like row (put or deleted, each only once) and the count that moves with it.
    fn like_items(
        &self,
        id: &str,
        user: &UserId,
        like: bool,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let key = item_key(contribution_pk(id), &format!("LIKE#{user}"));
        let mark = if like {
            let mut item = key;
            item.insert("user_id".into(), AttributeValue::S(user.to_string()));
            let put = Put::builder()
                .table_name(self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::invalid_request)?;
            TransactWriteItem::builder().put(put).build()
        } else {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(self.table)
                .set_key(Some(key))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(StoreError::invalid_request)?;
            TransactWriteItem::builder().delete(delete).build()
        };
        let mut count = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(contribution_pk(id), META_SK)))
            .update_expression("ADD likes :delta, popularity :delta")
            .expression_attribute_values(
                ":delta",
                AttributeValue::N(if like { "1" } else { "-1" }.into()),
            )
            .expression_attribute_values(":yes", AttributeValue::Bool(true));
        count = if like {
            count.condition_expression("attribute_exists(pk) AND listed = :yes")
        } else {
            count
                .condition_expression("attribute_exists(pk) AND listed = :yes AND likes > :zero")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        };
        let count = count.build().map_err(StoreError::invalid_request)?;
        Ok(vec![
            mark,
            TransactWriteItem::builder().update(count).build(),
        ])
    }

    /// The contribution `id`, listed or not.
    pub async fn contribution(&self, id: &str) -> Result<Option<ContributionRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(item_key(contribution_pk(id), META_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem pool item", err))?;
        out.item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(StoreError::corrupt)
    }
}

/// One page of a listing index.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingPage {
    pub items: Vec<ContributionRecord>,
    /// Where the next page starts (the index's last key, as `[name, type, value]` triples).
    pub next: Option<Vec<(String, String, String)>>,
}

impl PoolStore<'_> {
    /// Listed contributions from `index` (partition `partition` of key `key_attr`), highest sort
    /// key first, `limit` of them, starting after `start`.
    pub async fn listing(
        &self,
        index: &str,
        key_attr: &str,
        partition: &str,
        limit: usize,
        start: Option<Vec<(String, String, String)>>,
    ) -> Result<ListingPage, StoreError> {
        let start = start.map(|key| {
            key.into_iter()
                .map(|(name, kind, value)| {
                    let value = if kind == "N" {
                        AttributeValue::N(value)
                    } else {
                        AttributeValue::S(value)
                    };
                    (name, value)
                })
                .collect()
        });
        let out = self
            .client
            .query()
            .table_name(self.table)
            .index_name(index)
            .key_condition_expression("#k = :p")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_values(":p", AttributeValue::S(partition.to_owned()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(100))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| sdk_failure("Query pool listing", err))?;
        let items = out
            .items()
            .iter()
            .map(|item| serde_dynamo::from_item(item.clone()).map_err(StoreError::corrupt))
            .collect::<Result<Vec<ContributionRecord>, _>>()?;
        let next = out.last_evaluated_key.map(|key| {
            let mut triples: Vec<(String, String, String)> = key
                .into_iter()
                .filter_map(|(name, value)| match value {
                    AttributeValue::S(s) => Some((name, "S".to_owned(), s)),
                    AttributeValue::N(n) => Some((name, "N".to_owned(), n)),
                    _ => None,
                })
                .collect();
            triples.sort();
            triples
        });
        Ok(ListingPage { items, next })
    }
}

/// A claim of a pool item by a FREE user (`CLAIM#<user>` / `CONTRIB#<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub pk: String,
    pub sk: String,
    pub claim_id: String,
    pub contribution_id: String,
    pub generation_id: GenerationId,
    pub contributor_id: UserId,
    /// The item's genre when claimed (it counts for the claimer's taste).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    pub claimed_at: DateTime<Utc>,
}

pub fn claim_pk(user: &UserId) -> String {
    format!("CLAIM#{user}")
}

pub fn claims_day_key(
    user: &UserId,
    day: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    item_key(format!("CLAIMS#{user}"), &format!("DAY#{day}"))
}

/// What one claim attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed,
    /// The day's claims changed since they were read: read again.
    CountChanged,
    AlreadyClaimed,
    /// No such listed item.
    Gone,
}

impl PoolStore<'_> {
    /// Claims made by `user` on `day` (`2026-11-26`).
    pub async fn claims_on(&self, user: &UserId, day: &str) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(claims_day_key(user, day)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem pool claims", err))?;
        Ok(out
            .item
            .and_then(|item| {
                item.get("claims")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0))
    }

    /// Whether `user` claimed contribution `id`.
    pub async fn has_claimed(&self, user: &UserId, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(item_key(claim_pk(user), &contribution_pk(id))))
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem pool claim", err))?;
        Ok(out.item.is_some())
    }

    /// The contribution ids `user` has claimed.
    pub async fn claimed_by(
        &self,
        user: &UserId,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut claimed = std::collections::BTreeSet::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(claim_pk(user)))
                .projection_expression("sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_failure("Query pool claims", err))?;
            claimed.extend(out.items().iter().filter_map(|item| {
                item.get("sk")?
                    .as_s()
                    .ok()?
                    .strip_prefix("CONTRIB#")
                    .map(str::to_owned)
            }));
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(claimed),
            }
        }
    }

    /// One claim, all or nothing: the day's count moves from `used` to `used + 1`, the claim row
    /// appears (once per user and item), the item counts a play.
    pub async fn claim(
        &self,
        record: &ClaimRecord,
        user: &UserId,
        day: &str,
        used: u32,
        expires_at: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let row = Put::builder()
            .table_name(self.table)
            .set_item(Some(
                serde_dynamo::to_item(record).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::invalid_request)?;
        let item = record.contribution_id.as_str();
        let tally = Tally::new(user, record.claimed_at)
            .with(Event::PoolClaim, [("contribution_id", item)])
            .with(
                Event::PoolPlay,
                [("contribution_id", item), ("via", "claim")],
            )
            .prefer(record.genre.as_deref());
        let mut items = Transaction::new("TransactWriteItems pool claim");
        items.push(
            ClaimItem::DayCount,
            self.claims_counted(user, day, used, expires_at)?,
        );
        items.push(
            ClaimItem::Claim,
            TransactWriteItem::builder().put(row).build(),
        );
        items.push(
            ClaimItem::Listing,
            counted_play(self.table, &record.contribution_id)?,
        );
        items.extend(ClaimItem::Counts, tally.items(self.stats_table)?);
        Ok(match items.send(self.client).await? {
            Transacted::Committed => {
                tally.log();
                ClaimOutcome::Claimed
            }
            Transacted::Refused(refused) if refused.by(ClaimItem::Claim) => {
                ClaimOutcome::AlreadyClaimed
            }
            Transacted::Refused(refused) if refused.by(ClaimItem::Listing) => ClaimOutcome::Gone,
            Transacted::Refused(_) | Transacted::Busy => ClaimOutcome::CountChanged,
        })
    }
}

impl PoolStore<'_> {
    /// The user's claims of `day` from `used` to one more, conditioned on being `used` still.
    fn claims_counted(
        &self,
        user: &UserId,
        day: &str,
        used: u32,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let count = Update::builder()
            .table_name(self.table)
            .set_key(Some(claims_day_key(user, day)))
            .update_expression("SET claims = :next, expires_at = :exp")
            .expression_attribute_values(":next", AttributeValue::N((used + 1).to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()));
        let count = if used == 0 {
            count.condition_expression("attribute_not_exists(claims)")
        } else {
            count
                .condition_expression("claims = :used")
                .expression_attribute_values(":used", AttributeValue::N(used.to_string()))
        };
        let count = count.build().map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().update(count).build())
    }
}

/// One counted play of listed item `id`: its plays and its weight in `popularity`, refused when it
/// is not listed.
fn counted_play(table: &str, id: &str) -> Result<TransactWriteItem, StoreError> {
    let play = Update::builder()
        .table_name(table)
        .set_key(Some(item_key(contribution_pk(id), META_SK)))
        .update_expression(PLAY)
        .condition_expression(LISTED)
        .set_expression_attribute_values(Some(play_values()))
        .build()
        .map_err(StoreError::invalid_request)?;
    Ok(TransactWriteItem::builder().update(play).build())
}

/// The items of a play's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlayItem {
    /// The listed item (its play count, or only a check that it is listed).
    Listing,
    /// The caller's request budget: refused when it is not as the step assumed.
    Budget,
    /// The caller's counted play of the item this hour: refused when there is one.
    HourMarker,
    Counts,
}

/// The items of a like's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikeItem {
    /// The like row and the count that moves with it.
    Like,
    Counts,
}

/// The items of a claim's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimItem {
    /// The caller's claims of the day: refused when it moved since it was read.
    DayCount,
    /// The claim row: refused when the caller claimed the item before.
    Claim,
    /// The listed item, counting a play: refused when it is no longer listed.
    Listing,
    Counts,
}

/// The marker of `user`'s counted play of `id` in `now`'s UTC hour, kept two hours by TTL.
fn played_marker(
    stats_table: &str,
    id: &str,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<TransactWriteItem, StoreError> {
    let hour = now.format("%Y-%m-%dT%H").to_string();
    let hour_start = now
        .date_naive()
        .and_hms_opt(now.hour(), 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let kept_until = (hour_start + chrono::Duration::hours(2)).timestamp();
    let marker = Put::builder()
        .table_name(stats_table)
        .item("pk", AttributeValue::S(format!("PLAYED#{id}")))
        .item("sk", AttributeValue::S(format!("{user}#{hour}")))
        // Its player, for the `by_owner` index: an account's deletion finds the markers.
        .item("owner_id", AttributeValue::S(user.to_string()))
        .item(
            super::schema::TTL_ATTRIBUTE,
            AttributeValue::N(kept_until.to_string()),
        )
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(StoreError::invalid_request)?;
    Ok(TransactWriteItem::builder().put(marker).build())
}
