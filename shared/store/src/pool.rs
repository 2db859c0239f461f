//! The pool table: contributions (`CONTRIB#<id>` / `META`) and contributor ranking rows
//! (`RANK#<period>` / `USER#<id>`, indexed by `rank_period` + `points`).

use super::analytics::Tally;
use super::{item_key, sdk_failure, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::analytics::Event;
use son1k_domain::clock::Clock;
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

/// Tries of a like or a play that keeps losing races to other transactions on the same item.
const TRANSACTION_ATTEMPTS: u32 = 10;

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
        let key = item_key(contribution_pk(id), META_SK);
        let rate_item = super::users::rate_transact_item(self.users_table, user, rate)?;
        let tally = Tally::new(user, now).with(Event::PoolPlay, [("contribution_id", id)]);
        let items = if counted_before {
            let listed = aws_sdk_dynamodb::types::ConditionCheck::builder()
                .table_name(self.table)
                .set_key(Some(key))
                .condition_expression(LISTED)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .build()
                .map_err(StoreError::invalid_request)?;
            vec![
                TransactWriteItem::builder().condition_check(listed).build(),
                rate_item,
            ]
        } else {
            let play = Update::builder()
                .table_name(self.table)
                .set_key(Some(key))
                .update_expression(PLAY)
                .condition_expression(LISTED)
                .set_expression_attribute_values(Some(play_values()))
                .build()
                .map_err(StoreError::invalid_request)?;
            let hour = now.format("%Y-%m-%dT%H").to_string();
            let hour_start = now
                .date_naive()
                .and_hms_opt(now.hour(), 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or(now);
            let kept_until = (hour_start + chrono::Duration::hours(2)).timestamp();
            let marker = Put::builder()
                .table_name(self.stats_table)
                .item("pk", AttributeValue::S(format!("PLAYED#{id}")))
                .item("sk", AttributeValue::S(format!("{user}#{hour}")))
                .item(
                    super::schema::TTL_ATTRIBUTE,
                    AttributeValue::N(kept_until.to_string()),
                )
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::invalid_request)?;
            let mut items = vec![
                TransactWriteItem::builder().update(play).build(),
                rate_item,
                TransactWriteItem::builder().put(marker).build(),
            ];
            items.extend(tally.items(self.stats_table)?);
            items
        };
        let failed = |codes: &[String], at: usize| {
            codes.get(at).is_some_and(|c| c == "ConditionalCheckFailed")
        };
        match super::transact(self.client, "TransactWriteItems pool play", items).await? {
            Ok(()) => {
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
            Err(codes) if failed(&codes, 0) => Ok(PlayTry::NotListed),
            Err(codes) if failed(&codes, 1) => Ok(PlayTry::RateStale),
            Err(codes) if !counted_before && failed(&codes, 2) => Ok(PlayTry::CountedBefore),
            Err(_) => Ok(PlayTry::Busy),
        }
    }

    /// Likes (`true`) or unlikes a listed contribution for `user`, once whatever the retries: the
    /// like row and the count change together, and a new like is counted (`pool_like`, and one more
    /// on the user's preference counter of the item's genre) with them (a race lost to another
    /// transaction is retried). Returns the likes after this request's own effect: the item read back
    /// once the transaction committed or found the like already there (a parallel like by the same
    /// user, or another user's meanwhile, is in it). `None` for no such listed item. Three calls: the
    /// read (the item's genre, for the preference), the transaction, the read-back.
    #[tracing::instrument(skip_all, fields(contribution_id = %id, user_id = %user))]
    pub async fn set_like(
        &self,
        id: &str,
        user: &UserId,
        like: bool,
        clock: &dyn Clock,
    ) -> Result<Option<u64>, StoreError> {
        let Some(item) = self.contribution(id).await?.filter(|c| c.listed) else {
            return Ok(None);
        };
        for attempt in 0..TRANSACTION_ATTEMPTS {
            let mut items = self.like_items(id, user, like)?;
            let tally = Tally::new(user, clock.now());
            let tally = if like {
                tally
                    .with(Event::PoolLike, [("contribution_id", id)])
                    .prefer(item.genre.as_deref())
            } else {
                tally
            };
            items.extend(tally.items(self.stats_table)?);
            match super::transact(self.client, "TransactWriteItems pool like", items).await? {
                Ok(()) => {
                    tally.log();
                    return self.likes_now(id).await;
                }
                // A condition failed: already (un)liked (or delisted meanwhile): nothing changed.
                // Only a conflict with another transaction is worth another try.
                Err(codes) if codes.iter().any(|c| c == "ConditionalCheckFailed") => {
                    return self.likes_now(id).await;
                }
                Err(_) => crate::retry::pause(attempt).await,
            }
        }
        Err(StoreError::unavailable(
            "TransactWriteItems pool like",
            "every attempt lost a race",
        ))
    }

    /// The likes of `id` as stored now (`None` once it is gone or delisted).
    async fn likes_now(&self, id: &str) -> Result<Option<u64>, StoreError> {
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
        let mut count = Update::builder()
            .table_name(self.table)
            .set_key(Some(claims_day_key(user, day)))
            .update_expression("SET claims = :next, expires_at = :exp")
            .expression_attribute_values(":next", AttributeValue::N((used + 1).to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()));
        count = if used == 0 {
            count.condition_expression("attribute_not_exists(claims)")
        } else {
            count
                .condition_expression("claims = :used")
                .expression_attribute_values(":used", AttributeValue::N(used.to_string()))
        };
        let row = Put::builder()
            .table_name(self.table)
            .set_item(Some(
                serde_dynamo::to_item(record).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::invalid_request)?;
        let play = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(
                contribution_pk(&record.contribution_id),
                META_SK,
            )))
            .update_expression(PLAY)
            .condition_expression(LISTED)
            .set_expression_attribute_values(Some(play_values()))
            .build()
            .map_err(StoreError::invalid_request)?;
        let count = count.build().map_err(StoreError::invalid_request)?;
        let item = record.contribution_id.as_str();
        let tally = Tally::new(user, record.claimed_at)
            .with(Event::PoolClaim, [("contribution_id", item)])
            .with(
                Event::PoolPlay,
                [("contribution_id", item), ("via", "claim")],
            )
            .prefer(record.genre.as_deref());
        let mut items = vec![
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().put(row).build(),
            TransactWriteItem::builder().update(play).build(),
        ];
        items.extend(tally.items(self.stats_table)?);
        let codes =
            match super::transact(self.client, "TransactWriteItems pool claim", items).await? {
                Ok(()) => {
                    tally.log();
                    return Ok(ClaimOutcome::Claimed);
                }
                Err(codes) => codes,
            };
        let failed = |i: usize| codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
        Ok(if failed(1) {
            ClaimOutcome::AlreadyClaimed
        } else if failed(2) {
            ClaimOutcome::Gone
        } else {
            ClaimOutcome::CountChanged
        })
    }
}
