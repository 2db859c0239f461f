//! Analytics in the stats table: daily counters and raw events, written in the same transaction as
//! the action they count, so a count never disagrees with the data.
//!
//! - Counters: `COUNTS#<shard>` / `DAY#<date>`, one number attribute per event name. A user's events
//!   go to shard `shard_of(user)` of `SHARDS`, so different users' transactions do not conflict on
//!   one hot item; a day's count is the sum over the shards, and one query per shard reads a whole
//!   date range.
//! - Raw events: `EVT#<date>#<shard>` / `<ulid>`, with user id, type, time and a few properties
//!   (ids, tier, quality; nothing personal beyond the user id), expiring after `EVENT_TTL`.

use super::{sdk_failure, Attempt, StoreError, Transaction};
use crate::Names;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::analytics::{day_of, shard_of, Counts, DayRange, Event, SHARDS};
use son1k_domain::ids::UserId;
use std::collections::{BTreeMap, HashMap};

/// How long raw events are kept for export.
pub const EVENT_TTL: Duration = Duration::days(90);

pub fn counter_pk(shard: u32) -> String {
    format!("COUNTS#{shard:02}")
}

pub fn counter_sk(day: NaiveDate) -> String {
    format!("DAY#{day}")
}

pub fn events_pk(day: NaiveDate, shard: u32) -> String {
    format!("EVT#{day}#{shard:02}")
}

/// One raw event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub pk: String,
    /// A ULID of the event's time: a day's events sort by time within their shard.
    pub sk: String,
    pub event: String,
    pub user_id: UserId,
    /// The user again, as the `by_owner` index's key: an account's export and deletion find its
    /// events without a scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Unix seconds; the table's TTL attribute.
    pub expires_at: i64,
}

/// The events one action causes: written with the action (`items`) and logged once it committed
/// (`log`).
#[derive(Debug, Clone)]
pub struct Tally {
    user: UserId,
    at: DateTime<Utc>,
    events: Vec<(Event, BTreeMap<String, String>)>,
    /// A genre the action speaks for: one more on the user's preference counter of it (Pixel's
    /// "learning", see `store::pixel`), written with the action.
    preference: Option<String>,
}

impl Tally {
    /// Events of `user` at `at` (the instant of the attempt that writes them: its UTC day counts).
    pub fn new(user: &UserId, at: DateTime<Utc>) -> Self {
        Self {
            user: user.clone(),
            at,
            events: Vec::new(),
            preference: None,
        }
    }

    /// The action speaks for `genre` (if any): the user's counter of it grows with the action.
    pub fn prefer(mut self, genre: Option<&str>) -> Self {
        self.preference = genre.filter(|g| !g.is_empty()).map(str::to_owned);
        self
    }

    /// One more event with its properties.
    pub fn with<K: Into<String>, V: Into<String>>(
        mut self,
        event: Event,
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let properties = properties
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.events.push((event, properties));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        self.events.iter().map(|(event, _)| *event)
    }

    /// The transaction items that count these events in `table` (the stats table): one update of
    /// the user's counter shard for the day, one put per raw event. Empty when there is nothing.
    pub fn items(&self, table: &str) -> Result<Vec<TransactWriteItem>, StoreError> {
        if self.events.is_empty() {
            return Ok(Vec::new());
        }
        let day = day_of(self.at);
        let shard = shard_of(&self.user);
        let mut per_event: BTreeMap<Event, u64> = BTreeMap::new();
        for (event, _) in &self.events {
            *per_event.entry(*event).or_default() += 1;
        }
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(super::item_key(counter_pk(shard), &counter_sk(day))));
        let mut adds = Vec::new();
        for (i, (event, n)) in per_event.iter().enumerate() {
            adds.push(format!("#e{i} :n{i}"));
            update = update
                .expression_attribute_names(format!("#e{i}"), event.as_str())
                .expression_attribute_values(format!(":n{i}"), AttributeValue::N(n.to_string()));
        }
        let update = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(genre) = &self.preference {
            items.push(super::pixel::preference_item(table, &self.user, genre)?);
        }
        let expires_at = (self.at + EVENT_TTL).timestamp();
        let time = std::time::SystemTime::from(self.at);
        for (event, properties) in &self.events {
            let record = EventRecord {
                pk: events_pk(day, shard),
                sk: ulid::Ulid::from_datetime(time).to_string(),
                event: event.as_str().to_owned(),
                user_id: self.user.clone(),
                owner_id: Some(self.user.clone()),
                at: self.at,
                properties: properties.clone(),
                expires_at,
            };
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(
                    serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?,
                ))
                .build()
                .map_err(StoreError::invalid_request)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(items)
    }

    /// One structured log line per event, once the action committed (in Lambda the line carries
    /// the invocation's request id from the runtime's span).
    pub fn log(&self) {
        for (event, properties) in &self.events {
            tracing::info!(
                event = event.as_str(),
                user_id = %self.user,
                at = %self.at.to_rfc3339(),
                properties = ?properties,
                "business event"
            );
        }
    }
}

/// Access to the counters.
#[derive(Debug, Clone, Copy)]
pub struct AnalyticsStore<'a> {
    client: &'a Client,
    names: &'a Names,
}

impl<'a> AnalyticsStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    /// Counts `tally` (events that come with no other write), taking one request of `user`'s budget
    /// (`rate`) in the same transaction when given: a refused request spends budget too, so a loop
    /// of refusals is slowed like any other. `Done(false)`: the bucket moved meanwhile (a parallel
    /// request), nothing was written. `Busy`: another transaction held the shard or the user.
    pub async fn count_taking(
        &self,
        tally: &Tally,
        rate: Option<(&son1k_domain::ids::UserId, &son1k_domain::rate::RateStep)>,
    ) -> Result<Attempt<bool>, StoreError> {
        if tally.is_empty() {
            return Ok(Attempt::Done(true));
        }
        let mut items = Transaction::new("TransactWriteItems analytics");
        items.extend(CountItem::Counts, tally.items(&self.names.stats_table)?);
        if let Some((user, step)) = rate {
            items.push(
                CountItem::Budget,
                super::users::rate_transact_item(&self.names.users_table, user, step)?,
            );
        }
        let outcome = items.send(self.client).await?.attempt(CountItem::Budget);
        if outcome == Attempt::Done(true) {
            tally.log();
        }
        Ok(outcome)
    }

    /// Every day of `range` with its counts (zeros where nothing happened): one query per shard,
    /// run together.
    #[tracing::instrument(skip_all)]
    pub async fn days(&self, range: &DayRange) -> Result<Vec<(NaiveDate, Counts)>, StoreError> {
        let mut queries = tokio::task::JoinSet::new();
        for shard in 0..SHARDS {
            let client = self.client.clone();
            let table = self.names.stats_table.clone();
            let range = *range;
            queries.spawn(async move { shard_days(&client, &table, shard, &range).await });
        }
        let mut by_day: BTreeMap<NaiveDate, Counts> =
            range.days().map(|d| (d, Counts::default())).collect();
        while let Some(joined) = queries.join_next().await {
            let shard = joined
                .map_err(|err| StoreError::unavailable("Query analytics", err.to_string()))??;
            for (day, counts) in shard {
                if let Some(total) = by_day.get_mut(&day) {
                    total.merge(&counts);
                }
            }
        }
        Ok(by_day.into_iter().collect())
    }
}

/// One shard's counters over `range`, every page.
async fn shard_days(
    client: &Client,
    table: &str,
    shard: u32,
    range: &DayRange,
) -> Result<Vec<(NaiveDate, Counts)>, StoreError> {
    let mut days = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(counter_pk(shard)))
            .expression_attribute_values(":from", AttributeValue::S(counter_sk(range.from)))
            .expression_attribute_values(":to", AttributeValue::S(counter_sk(range.to)))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| sdk_failure("Query analytics", err))?;
        days.extend(out.items().iter().filter_map(counter_day));
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(days),
        }
    }
}

/// A counter item's day and counts; attributes that are not event names are skipped.
fn counter_day(item: &HashMap<String, AttributeValue>) -> Option<(NaiveDate, Counts)> {
    let day = item
        .get(super::schema::SK)?
        .as_s()
        .ok()?
        .strip_prefix("DAY#")?
        .parse()
        .ok()?;
    let mut counts = Counts::default();
    for (name, value) in item {
        let (Some(event), Ok(n)) = (Event::parse(name), value.as_n()) else {
            continue;
        };
        counts.add(event, n.parse().unwrap_or(0));
    }
    Some((day, counts))
}

/// The items of a count's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountItem {
    Counts,
    /// The user's request budget: refused when it moved since it was read.
    Budget,
}
