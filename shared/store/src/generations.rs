//! Recorded generations (`GEN#<generation_id>` / `GEN` in the stats table) and the two writes that
//! record one: a single-item `UpdateItem` spends one unit of its period's counter on the user item
//! (conditioned only on what the decision needs, answering the counter as it now is), then one
//! transaction stores the generation with its body and, on every 20th paid generation, the pool
//! contribution and its ranking rows, with the analytics — all or nothing.
//!
//! This module builds items and conditions and reports what DynamoDB said; what to do about it
//! (replay, refuse, retry) is the use case's (`crate::metering`).

use super::alerts::{pace_flag, AlertWrites, Fired, Marker};
use super::analytics::Tally;
use super::pool::{contribution_items, ContributionRecord, Contributor};
use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, Attempt, StoreError, Transacted, Transaction};
use crate::Names;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use son1k_domain::ids::{GenerationId, UserId};
use son1k_domain::metering::Grant;
use son1k_domain::period::Period;
use son1k_domain::rate::RateStep;
use son1k_domain::storage::AudioType;
use son1k_domain::tiers::{Quality, Tier};
use std::collections::HashMap;

pub const GEN_SK: &str = "GEN";

pub fn generation_pk(id: &GenerationId) -> String {
    format!("GEN#{id}")
}

/// Where a generation's audio stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioState {
    None,
    Stored,
    Rejected,
}

/// A recorded generation as stored, with the exact 201 body to replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub pk: String,
    pub sk: String,
    pub generation_id: GenerationId,
    pub owner_id: UserId,
    pub quality: Quality,
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    pub period_key: String,
    pub recorded_at: DateTime<Utc>,
    /// The 201 body exactly as first sent.
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution_id: Option<String>,
    pub audio_state: AudioState,
    /// The upload last granted to the owner: what the object must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadGrant>,
    /// The object accounted for this generation, once S3 reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<StoredAudio>,
    /// The cloned voice it is sung in: such a generation never enters the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_id: Option<son1k_domain::ids::VoiceId>,
}

/// A presigned upload handed out: its type and exact size, and the upload's own id (its object key:
/// `domain::storage::upload_key`; absent on grants made before uploads had keys of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadGrant {
    pub content_type: AudioType,
    pub size_bytes: u64,
    pub granted_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<son1k_domain::storage::UploadId>,
}

impl UploadGrant {
    /// The object key this grant's link uploads to.
    pub fn key(&self, owner: &UserId, generation: &GenerationId) -> String {
        match &self.upload_id {
            Some(upload) => son1k_domain::storage::upload_key(owner, generation, upload),
            None => son1k_domain::storage::audio_key(owner, generation),
        }
    }
}

/// A stored object, as counted in the owner's `storage_used_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAudio {
    pub etag: String,
    pub size_bytes: u64,
    pub content_type: AudioType,
    pub stored_at: DateTime<Utc>,
    /// Its object key when it came from an upload (`upload_key`); absent for the worker's
    /// `audio_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl StoredAudio {
    /// The object key of this audio of `owner`'s `generation`.
    pub fn object_key(&self, owner: &UserId, generation: &GenerationId) -> String {
        self.key
            .clone()
            .unwrap_or_else(|| son1k_domain::storage::audio_key(owner, generation))
    }
}

/// The items of a recorded generation: the user as its spend left it, the grant settled from that
/// spend, and what to store.
#[derive(Debug, Clone)]
pub struct RecordWrite<'a> {
    pub user: &'a UserRecord,
    pub grant: &'a Grant,
    pub generation: &'a GenerationRecord,
    pub contribution: Option<&'a ContributionRecord>,
    /// The analytics events of this attempt, counted in the same transaction.
    pub tally: &'a Tally,
    /// The alerts the spend fired, written with the generation.
    pub alerts: &'a AlertWrites,
    pub now: DateTime<Utc>,
}

/// What DynamoDB did with the record transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    Committed,
    /// The generation id is recorded already: the record as the cancellation returned it, if it did.
    IdTaken(Option<Box<GenerationRecord>>),
    /// Another transaction held one of the items (the user's analytics shard or preferences, written
    /// by the user's other requests): nothing was written, and the same items may be sent again.
    Busy,
    /// Some of the alerts had fired already (a threshold's marker, the period's pace): nothing was
    /// written; send it again without them.
    AlertsFired(Fired),
}

/// The user's item and a generation's record, each when stored.
pub type UserAndGeneration = (Option<UserRecord>, Option<GenerationRecord>);

/// What spending a unit on the user item did.
#[derive(Debug, Clone, PartialEq)]
pub enum Spend {
    /// Spent: the user as it now is, with the unit in the period's counter (and in the paid history on
    /// a paid tier).
    Spent(Box<UserRecord>),
    /// The user item no longer allows the grant (another request took the last unit, the entitlement
    /// or the jobs' reservations changed): nothing spent; the user as it now is, when there is one.
    Stale(Option<Box<UserRecord>>),
    /// The user item is in another transaction (a job's reservation or commit): nothing spent; a moment
    /// later it is free.
    Busy,
}

/// A unit given back: where it was taken from.
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    /// The period's counter it is in, unless a credit paid.
    pub period_key: &'a str,
    /// Whether it is in the paid history.
    pub paid: bool,
    /// The credit block that paid it, if one did: the unit goes back there.
    pub credit: Option<&'a str>,
    /// For a credit: the instant (epoch seconds) before which the block must still pay for the
    /// unit to go back to it; `None`: the unit goes nowhere (the block expired).
    pub to_block_before: Option<i64>,
}

impl<'a> Unit<'a> {
    /// The unit `grant` spent.
    pub fn of(grant: &'a Grant) -> Self {
        Self {
            period_key: &grant.period_key,
            paid: grant.tier.is_paid(),
            credit: grant.credit.as_deref(),
            to_block_before: None,
        }
    }
}

/// The items of a credit's give back with its ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldItem {
    User,
    Ledger,
}

/// What held a unit that is given back.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// Record-generation's in-flight marker for this generation.
    InFlight(&'a GenerationId),
    /// A job's reservation for this generation, made with this `until`.
    Reservation(&'a GenerationId, i64),
}

/// Access to generation records.
#[derive(Debug, Clone, Copy)]
pub struct GenerationsStore<'a> {
    client: &'a Client,
    names: &'a Names,
}

impl<'a> GenerationsStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    #[tracing::instrument(skip_all, fields(generation_id = %id))]
    pub async fn get(&self, id: &GenerationId) -> Result<Option<GenerationRecord>, StoreError> {
        let key = item_key(generation_pk(id), GEN_SK);
        super::get_item(
            self.client,
            &self.names.stats_table,
            key,
            "GetItem generation",
        )
        .await
    }

    /// The user's item and the generation record of `id`, both read consistently in one call: what
    /// record-generation decides from, and whether the request is a replay.
    #[tracing::instrument(skip_all, fields(user_id = %user, generation_id = %id))]
    pub async fn user_and_generation(
        &self,
        user: &UserId,
        id: &GenerationId,
    ) -> Result<Attempt<UserAndGeneration>, StoreError> {
        let Attempt::Done(items) = super::batch_get(
            self.client,
            "BatchGetItem user and generation",
            &[
                (&self.names.users_table, item_key(user_pk(user), PROFILE_SK)),
                (&self.names.stats_table, item_key(generation_pk(id), GEN_SK)),
            ],
        )
        .await?
        else {
            return Ok(Attempt::Busy);
        };
        let (mut found_user, mut found_generation) = (None, None);
        for item in items {
            let is_user = matches!(item.get(super::schema::PK), Some(AttributeValue::S(pk)) if pk.starts_with("USER#"));
            if is_user {
                found_user = Some(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?);
            } else {
                found_generation =
                    Some(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?);
            }
        }
        Ok(Attempt::Done((found_user, found_generation)))
    }

    /// Spends one unit of `grant`'s period on `user`'s item for record-generation, with its in-flight
    /// marker (see [`spend_request`]).
    #[tracing::instrument(skip_all, fields(user_id = %user.user_id, period = %grant.period_key))]
    pub async fn spend(
        &self,
        user: &UserRecord,
        grant: &Grant,
        rate: &RateStep,
        generation: &GenerationId,
        now: DateTime<Utc>,
    ) -> Result<Spend, StoreError> {
        let (update, mut expression) =
            spend_request(self.client, &self.names.users_table, user, grant, rate, now);
        let update = mark_inflight(update, &mut expression, user, generation, now);
        send_spend(update, &expression, "UpdateItem spend").await
    }

    /// Gives back a unit that did not become a recorded generation: one less in the period's counter
    /// `period_key` (and in the paid history when `paid`), and what held it dropped (`holder`: the
    /// in-flight marker of a record that did not land, or a job's reservation, exactly as made). A
    /// failed condition means nothing is owed: the reservation was given back or taken out already,
    /// or the counter is gone with its period. `Busy`: a transaction held the user item.
    #[tracing::instrument(skip_all, fields(user_id = %user, period = %unit.period_key))]
    pub async fn give_back(
        &self,
        user: &UserId,
        holder: Holder<'_>,
        unit: Unit<'_>,
        now: DateTime<Utc>,
    ) -> Result<Attempt<()>, StoreError> {
        let Some(block) = unit.credit else {
            return Ok(self
                .end_hold(user, holder, Some(unit), None)
                .await?
                .map(|_| ()));
        };
        // A job's credit ends in the ledger: released back to its block, or expired with it. (A
        // record-generation whose record did not land spent nothing the ledger shows.)
        let entry = |kind| match holder {
            Holder::Reservation(generation, _) => {
                let mut entry = super::credits::LedgerRecord::new(user, kind, block, 1, now);
                entry.generation_id = Some(generation.clone());
                Some(entry)
            }
            Holder::InFlight(_) => None,
        };
        // Back to its block while the block still pays; once it has expired the credit is not
        // owed (the hold still ends, and its paid unit comes out of the history).
        let release = entry(son1k_domain::credits::LedgerKind::Release);
        match self
            .end_hold(
                user,
                holder,
                Some(Unit {
                    credit: Some(block),
                    to_block_before: Some(now.timestamp()),
                    ..unit
                }),
                release.as_ref(),
            )
            .await?
        {
            Attempt::Done(true) => Ok(Attempt::Done(())),
            // Refused: the hold is gone (nothing owed), or the block no longer pays.
            Attempt::Done(false) if !self.holds(user, holder).await? => Ok(Attempt::Done(())),
            Attempt::Done(false) => {
                let expire = entry(son1k_domain::credits::LedgerKind::Expire);
                Ok(self
                    .end_hold(
                        user,
                        holder,
                        Some(Unit {
                            to_block_before: None,
                            ..unit
                        }),
                        expire.as_ref(),
                    )
                    .await?
                    .map(|_| ()))
            }
            Attempt::Busy => Ok(Attempt::Busy),
        }
    }

    /// Whether `holder` is still on the user item (read consistently).
    async fn holds(&self, user: &UserId, holder: Holder<'_>) -> Result<bool, StoreError> {
        let found: Option<UserRecord> = super::get_item(
            self.client,
            &self.names.users_table,
            item_key(user_pk(user), PROFILE_SK),
            "GetItem user after a give back",
        )
        .await?;
        Ok(found.is_some_and(|u| match holder {
            Holder::InFlight(id) => u.inflight.contains_key(id.as_str()),
            Holder::Reservation(id, until) => u
                .reservations
                .get(id.as_str())
                .is_some_and(|r| r.until == until),
        }))
    }

    /// Ends a job's reservation with its unit spent (the provider was paid, the audio could not be
    /// kept): the reservation entry goes, the counters keep the unit. Nothing happens when the
    /// reservation is no longer this one (it expired and was taken out meanwhile).
    pub async fn keep_spent(
        &self,
        user: &UserId,
        generation: &GenerationId,
        until: i64,
    ) -> Result<Attempt<()>, StoreError> {
        Ok(self
            .end_hold(user, Holder::Reservation(generation, until), None, None)
            .await?
            .map(|_| ()))
    }

    /// Removes `holder` from the user item, conditioned on it being that very one; with
    /// `Some(unit)` its unit also goes back to the period's counter or its block (and the paid
    /// history), else the unit stays spent. With `entry`, the ledger entry is written in the same
    /// transaction (a job's credit released, or expired with its block).
    async fn end_hold(
        &self,
        user: &UserId,
        holder: Holder<'_>,
        give_back: Option<Unit<'_>>,
        entry: Option<&super::credits::LedgerRecord>,
    ) -> Result<Attempt<bool>, StoreError> {
        let mut set = Vec::new();
        let mut condition = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        let mut name = |placeholder: &str, value: &str| {
            names.insert(placeholder.to_owned(), value.to_owned());
        };
        if let Some(unit) = give_back {
            match unit.credit {
                None => {
                    set.push("#usage.#period = #usage.#period - :one");
                    condition.push("#usage.#period >= :one");
                    name("#usage", "usage");
                    name("#period", unit.period_key);
                }
                // Back to its block while it pays (`to_block_before`), else nowhere.
                Some(block) => {
                    if let Some(now) = unit.to_block_before {
                        set.push("#credits.#block.remaining = #credits.#block.remaining + :one");
                        condition.push("#credits.#block.remaining < #credits.#block.generations");
                        condition.push("#credits.#block.#until > :now");
                        name("#credits", "credits");
                        name("#block", block);
                        name("#until", "until");
                        values.insert(":now".to_owned(), number(now));
                    }
                }
            }
            if unit.paid {
                set.push("paid_generations_total = paid_generations_total - :one");
                condition.push("paid_generations_total >= :one");
            }
            if !set.is_empty() {
                values.insert(":one".to_owned(), number(1));
            }
        }
        let remove = match holder {
            Holder::InFlight(generation) => {
                name("#inflight", "inflight");
                name("#gid", generation.as_str());
                "REMOVE #inflight.#gid"
            }
            Holder::Reservation(generation, until) => {
                condition.push("#res.#gid.#until = :until");
                name("#res", "reservations");
                name("#gid", generation.as_str());
                name("#until", "until");
                values.insert(":until".to_owned(), number(until));
                "REMOVE #res.#gid"
            }
        };
        let expression = if set.is_empty() {
            remove.to_owned()
        } else {
            format!("SET {} {remove}", set.join(", "))
        };
        let condition = (!condition.is_empty()).then(|| condition.join(" AND "));
        let values = (!values.is_empty()).then_some(values);
        let key = item_key(user_pk(user), PROFILE_SK);
        if let Some(entry) = entry {
            let update = Update::builder()
                .table_name(&self.names.users_table)
                .set_key(Some(key))
                .update_expression(expression)
                .set_condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(values)
                .build()
                .map_err(StoreError::invalid_request)?;
            let mut items = Transaction::new("TransactWriteItems give back a credit");
            items.push(
                HoldItem::User,
                TransactWriteItem::builder().update(update).build(),
            );
            items.push(HoldItem::Ledger, entry.put(&self.names.users_table)?);
            return Ok(items.send(self.client).await?.attempt(HoldItem::User));
        }
        let request = self
            .client
            .update_item()
            .table_name(&self.names.users_table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(values);
        let operation = if give_back.is_some() {
            "UpdateItem give back generation"
        } else {
            "UpdateItem keep a failed job spent"
        };
        super::update_once(operation, request).await
    }

    /// Stores a spent generation: its record with the exact body, its pool contribution when it
    /// makes one, and its analytics, as one transaction that does not touch the user item.
    #[tracing::instrument(skip_all, fields(generation_id = %write.generation.generation_id))]
    pub async fn record(&self, write: &RecordWrite<'_>) -> Result<RecordOutcome, StoreError> {
        match self.items(write)?.send(self.client).await? {
            Transacted::Committed => Ok(RecordOutcome::Committed),
            Transacted::Refused(refused) if refused.by(RecordItem::Generation) => Ok(
                RecordOutcome::IdTaken(decode(refused.current(RecordItem::Generation))?),
            ),
            Transacted::Refused(refused) => {
                let fired = write.alerts.fired(
                    &refused,
                    RecordItem::Fired,
                    refused.by(RecordItem::PaceFlag),
                );
                if fired.is_empty() {
                    tracing::debug!("record transaction met another transaction");
                    return Ok(RecordOutcome::Busy);
                }
                Ok(RecordOutcome::AlertsFired(fired))
            }
            Transacted::Busy => {
                tracing::debug!("record transaction met another transaction");
                Ok(RecordOutcome::Busy)
            }
        }
    }

    fn items(&self, write: &RecordWrite<'_>) -> Result<Transaction<RecordItem>, StoreError> {
        let put = Put::builder()
            .table_name(&self.names.stats_table)
            .set_item(Some(
                serde_dynamo::to_item(write.generation).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems record");
        items.push(
            RecordItem::Generation,
            TransactWriteItem::builder().put(put).build(),
        );
        if let Some(contribution) = write.contribution {
            let contributor = Contributor::of(write.user, write.grant.tier);
            items.extend(
                RecordItem::Counts,
                contribution_items(&self.names.pool_table, contribution, contributor, write.now)?,
            );
        }
        items.extend(
            RecordItem::Counts,
            write.tally.items(&self.names.stats_table)?,
        );
        if let Some(block) = &write.grant.credit {
            let mut entry = super::credits::LedgerRecord::new(
                &write.user.user_id,
                son1k_domain::credits::LedgerKind::Spend,
                block,
                1,
                write.now,
            );
            entry.generation_id = Some(write.generation.generation_id.clone());
            items.push(RecordItem::Counts, entry.put(&self.names.users_table)?);
        }
        write.alerts.push_to(
            &mut items,
            &self.names.alerts_table,
            RecordItem::Counts,
            RecordItem::Fired,
        )?;
        if let Some(period) = write.alerts.pace_period() {
            items.push(
                RecordItem::PaceFlag,
                pace_flag(&self.names.users_table, &write.user.user_id, period)?,
            );
        }
        Ok(items)
    }
}

/// The items of record-generation's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordItem {
    /// The generation record: refused when its id is recorded already.
    Generation,
    /// The pool contribution, the analytics counts and the alerts: unconditioned.
    Counts,
    /// A threshold's marker: refused when it fired before.
    Fired(Marker),
    /// The user item marked with the period of a pace alert: refused when it was sent before.
    PaceFlag,
}

/// How long a spend's in-flight marker stands for a request that may still be running: longer than
/// record-generation's function timeout (20 s in template.yaml, checked by a test), so an older
/// marker is of a request that died.
pub const INFLIGHT_KEPT: chrono::Duration = chrono::Duration::seconds(30);

impl UserRecord {
    /// Whether a spend for `generation` may still be on its way to its record at `now`.
    pub fn in_flight(&self, generation: &GenerationId, now: DateTime<Utc>) -> bool {
        self.inflight
            .get(generation.as_str())
            .is_some_and(|at| now.timestamp_millis() < at + INFLIGHT_KEPT.num_milliseconds())
    }
}

/// The spend's in-flight marker for `generation` (refused while a live one exists: a parallel
/// duplicate does not spend a second unit), with the markers of requests long over dropped.
fn mark_inflight(
    mut update: UpdateItemFluentBuilder,
    expression: &mut SpendExpression,
    user: &UserRecord,
    generation: &GenerationId,
    now: DateTime<Utc>,
) -> UpdateItemFluentBuilder {
    let at = now.timestamp_millis();
    update = update.expression_attribute_names("#inflight", "inflight");
    if user.inflight.is_empty() {
        // No marker read: start the map (or replace an emptied one).
        expression.condition("(attribute_not_exists(#inflight) OR size(#inflight) = :zero)");
        expression.set("#inflight = :marker");
        return update
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(
                ":marker",
                AttributeValue::M(HashMap::from([(generation.to_string(), number(at))])),
            );
    }
    let stale_before = at - INFLIGHT_KEPT.num_milliseconds();
    expression.condition(
        "attribute_exists(#inflight) AND (attribute_not_exists(#inflight.#gid) OR #inflight.#gid < :stale)",
    );
    expression.set("#inflight.#gid = :at");
    update = update
        .expression_attribute_names("#gid", generation.as_str())
        .expression_attribute_values(":at", number(at))
        .expression_attribute_values(":stale", number(stale_before));
    let done = user
        .inflight
        .iter()
        .filter(|(id, at)| id.as_str() != generation.as_str() && **at < stale_before);
    for (i, (id, _)) in done.enumerate() {
        expression.remove(format!("#inflight.#done{i}"));
        update = update.expression_attribute_names(format!("#done{i}"), id.clone());
    }
    update
}

/// The condition that a revision attribute is still `value` (`placeholder`; absent counts as 0).
fn revision_condition(attribute: &str, placeholder: &str, value: u64) -> String {
    if value == 0 {
        format!("(attribute_not_exists({attribute}) OR {attribute} = {placeholder})")
    } else {
        format!("{attribute} = {placeholder}")
    }
}

/// The update that spends one unit of `grant`'s period on `user`'s item (the caller adds its marker
/// and sends it with [`send_spend`]). DynamoDB applies single-item updates of one item one after
/// another, so a user's parallel spends queue there instead of invalidating each other: the condition
/// holds only what the decision needs (the counter below the grant's cap, the entitlement as read),
/// never the counter's exact value. On the way, the reservations that expired come out of their
/// counters and the paid history (each on condition it is still there: otherwise its release took it
/// out already), and counters no clock can compute again are dropped.
pub(crate) fn spend_request(
    client: &Client,
    table: &str,
    user: &UserRecord,
    grant: &Grant,
    rate: &RateStep,
    now: DateTime<Utc>,
) -> (UpdateItemFluentBuilder, SpendExpression) {
    let mut expression = SpendExpression::default();
    let mut update = client
        .update_item()
        .table_name(table)
        .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .expression_attribute_names("#usage", "usage")
        .expression_attribute_values(":rev", number(user.entitlement_rev));
    expression.condition("attribute_exists(pk)");
    // The request budget's step, in the same update (no call of its own).
    if let Some((condition, set, values)) = super::users::rate_clause(rate) {
        expression.condition(condition);
        expression.set(set);
        update = update.expression_attribute_names("#rate", "rate_tat");
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
    }
    expression.condition(&revision_condition(
        "entitlement_rev",
        ":rev",
        user.entitlement_rev,
    ));
    let mut paid_delta = i64::from(grant.tier.is_paid());
    update = match &user.usage {
        Some(usage) => {
            let (update, paid_back) =
                count_in_period(update, &mut expression, user, usage, grant, now);
            paid_delta -= paid_back;
            update
        }
        // An item from before per-period counters: the map starts with this period.
        None => {
            expression.condition("attribute_not_exists(#usage)");
            expression.set("#usage = :usage");
            update.expression_attribute_values(
                ":usage",
                AttributeValue::M(HashMap::from([(grant.period_key.clone(), number(1))])),
            )
        }
    };
    if paid_delta != 0 {
        expression.set(
            "paid_generations_total = if_not_exists(paid_generations_total, :zero) + :paid_delta",
        );
        update = update
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":paid_delta", number(paid_delta));
    }
    (update, expression)
}

/// The period's counter one up, under its cap, with the reservations that expired taken out (each
/// conditioned on still being there) and their units out of their counters, and the counters of
/// outlived periods dropped. Returns the request and the paid units the expired reservations held.
fn count_in_period(
    mut update: UpdateItemFluentBuilder,
    expression: &mut SpendExpression,
    user: &UserRecord,
    usage: &std::collections::BTreeMap<String, u32>,
    grant: &Grant,
    now: DateTime<Utc>,
) -> (UpdateItemFluentBuilder, i64) {
    let outlived: Vec<(String, String)> = outlived(usage, &grant.period_key, now).collect();
    let expired = take_out_expired(update, expression, user, usage, grant, &outlived, now);
    update = expired.update;
    // A credit pays instead of the period's counter: the counter takes only the expired units out.
    let unit = i64::from(grant.credit.is_none());
    // Never below what the counter holds (an expired unit is always in it).
    let counter_delta = (unit - expired.in_period).max(unit - i64::from(grant.counter_before));
    update = update
        .expression_attribute_names("#period", grant.period_key.clone())
        .expression_attribute_values(":zero", number(0))
        .expression_attribute_values(":delta", number(counter_delta));
    expression.condition("attribute_exists(#usage)");
    match &grant.credit {
        None => {
            update = update.expression_attribute_values(":cap", number(grant.counter_cap()));
            expression.condition("(attribute_not_exists(#usage.#period) OR #usage.#period < :cap)");
        }
        Some(block) => {
            update = take_credit(update, expression, block, now);
        }
    }
    expression.set("#usage.#period = if_not_exists(#usage.#period, :zero) + :delta");
    for (i, (key, n)) in expired.in_others.into_iter().enumerate() {
        expression.set(&format!("#usage.#ex{i} = #usage.#ex{i} - :ex{i}"));
        update = update
            .expression_attribute_names(format!("#ex{i}"), key)
            .expression_attribute_values(format!(":ex{i}"), number(n));
    }
    for (name, key) in outlived {
        expression.remove(format!("#usage.{name}"));
        update = update.expression_attribute_names(name, key);
    }
    (update, expired.paid)
}

/// One credit of `block` taken, on condition that it still has one and has not expired at `now`.
fn take_credit(
    update: UpdateItemFluentBuilder,
    expression: &mut SpendExpression,
    block: &str,
    now: DateTime<Utc>,
) -> UpdateItemFluentBuilder {
    expression.condition("#credits.#block.remaining >= :credit_one");
    expression.condition("#credits.#block.#until > :credit_now");
    expression.set("#credits.#block.remaining = #credits.#block.remaining - :credit_one");
    update
        .expression_attribute_names("#credits", "credits")
        .expression_attribute_names("#block", block)
        .expression_attribute_names("#until", "until")
        .expression_attribute_values(":credit_one", number(1))
        .expression_attribute_values(":credit_now", number(now.timestamp()))
}

/// The expired reservations a spend takes out, and where their units were counted.
struct Expired<'a> {
    update: UpdateItemFluentBuilder,
    /// Units in the period being spent on.
    in_period: i64,
    /// Units in other periods' counters still kept (not outlived), by period key.
    in_others: std::collections::BTreeMap<&'a str, i64>,
    /// Paid units among them.
    paid: i64,
}

fn take_out_expired<'a>(
    mut update: UpdateItemFluentBuilder,
    expression: &mut SpendExpression,
    user: &'a UserRecord,
    usage: &std::collections::BTreeMap<String, u32>,
    grant: &Grant,
    outlived: &[(String, String)],
    now: DateTime<Utc>,
) -> Expired<'a> {
    let (mut in_period, mut paid) = (0, 0);
    let mut in_others: std::collections::BTreeMap<&str, i64> = Default::default();
    for (i, (id, reservation)) in user.expired_reservations(now).enumerate() {
        let name = format!("#exp{i}");
        expression.condition(&format!("attribute_exists(#res.{name})"));
        expression.remove(format!("#res.{name}"));
        update = update
            .expression_attribute_names("#res", "reservations")
            .expression_attribute_names(name, id.clone());
        paid += i64::from(reservation.paid);
        let key = reservation.period_key.as_str();
        if key == grant.period_key {
            in_period += 1;
        } else if usage.contains_key(key) && !outlived.iter().any(|(_, k)| k == key) {
            *in_others.entry(key).or_default() += 1;
        }
    }
    Expired {
        update,
        in_period,
        in_others,
        paid,
    }
}

/// Sends a spend built by [`spend_request`] and reads DynamoDB's answer.
pub(crate) async fn send_spend(
    update: UpdateItemFluentBuilder,
    expression: &SpendExpression,
    operation: &'static str,
) -> Result<Spend, StoreError> {
    let result = update
        .update_expression(expression.update())
        .condition_expression(expression.conditions.join(" AND "))
        .send()
        .await;
    match result {
        Ok(out) => Ok(Spend::Spent(Box::new(
            serde_dynamo::from_item(out.attributes.unwrap_or_default())
                .map_err(StoreError::corrupt)?,
        ))),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                Ok(Spend::Stale(decode(ccf.item())?))
            }
            Some(e) if e.is_transaction_conflict_exception() => Ok(Spend::Busy),
            _ => Err(sdk_failure(operation, err)),
        },
    }
}

/// The counters of `usage` that no clock can compute again (all but `keep`), each with the
/// placeholder name its REMOVE uses (`#old0`, `#old1`, ...).
fn outlived<'a>(
    usage: &'a std::collections::BTreeMap<String, u32>,
    keep: &'a str,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (String, String)> + 'a {
    usage
        .keys()
        .filter(move |key| key.as_str() != keep && Period::key_outlived(key, now))
        .enumerate()
        .map(|(i, key)| (format!("#old{i}"), key.clone()))
}

/// The clauses of an update expression and its condition, gathered as the update is built.
#[derive(Debug, Default)]
pub(crate) struct SpendExpression {
    set: Vec<String>,
    remove: Vec<String>,
    conditions: Vec<String>,
}

impl SpendExpression {
    pub(crate) fn set(&mut self, clause: &str) {
        self.set.push(clause.to_owned());
    }

    pub(crate) fn remove(&mut self, path: String) {
        self.remove.push(path);
    }

    pub(crate) fn condition(&mut self, clause: &str) {
        self.conditions.push(clause.to_owned());
    }

    fn update(&self) -> String {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

pub(crate) fn decode<T: DeserializeOwned>(
    item: Option<&HashMap<String, AttributeValue>>,
) -> Result<Option<Box<T>>, StoreError> {
    item.cloned()
        .map(serde_dynamo::from_item)
        .transpose()
        .map(|decoded| decoded.map(Box::new))
        .map_err(StoreError::corrupt)
}

impl GenerationsStore<'_> {
    /// Shares `generation` with the pool as `record` (its contributor `contributor`): the
    /// generation notes the contribution, the contribution and its ranking rows are written — all or
    /// nothing. `Done(false)` when the generation was contributed already (automatically or by a
    /// racing request): exactly one contribution per generation; `Busy` when the transaction lost a
    /// race with another one and may be tried again.
    pub async fn contribute(
        &self,
        generation: &GenerationRecord,
        record: &ContributionRecord,
        contributor: Contributor<'_>,
        tally: &Tally,
        now: DateTime<Utc>,
    ) -> Result<Attempt<bool>, StoreError> {
        let mark = Update::builder()
            .table_name(&self.names.stats_table)
            .set_key(Some(item_key(
                generation_pk(&generation.generation_id),
                GEN_SK,
            )))
            .update_expression("SET contribution_id = :cid")
            .condition_expression("owner_id = :owner AND attribute_not_exists(contribution_id)")
            .expression_attribute_values(":cid", AttributeValue::S(record.contribution_id.clone()))
            .expression_attribute_values(
                ":owner",
                AttributeValue::S(generation.owner_id.to_string()),
            )
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems contribute");
        items.push(
            ContributeItem::Generation,
            TransactWriteItem::builder().update(mark).build(),
        );
        items.extend(
            ContributeItem::Listing,
            contribution_items(&self.names.pool_table, record, contributor, now)?,
        );
        items.extend(
            ContributeItem::Listing,
            tally.items(&self.names.stats_table)?,
        );
        match items.send(self.client).await? {
            Transacted::Committed => {
                tally.log();
                Ok(Attempt::Done(true))
            }
            Transacted::Refused(refused) if refused.by(ContributeItem::Generation) => {
                Ok(Attempt::Done(false))
            }
            Transacted::Refused(_) | Transacted::Busy => Ok(Attempt::Busy),
        }
    }
}

/// The items of a contribution's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContributeItem {
    /// The generation, noting its contribution: refused when it has one (or is not the caller's).
    Generation,
    /// The contribution, its ranking rows and the counts.
    Listing,
}
