//! The users table: one `USER#<id>` / `PROFILE` item per user, created on the first request.

use super::audit::{Link, Role};
use super::{item_key, sdk_failure, Attempt, StoreError, Transaction};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::account::LegalHold;
use son1k_domain::alerts::AlertSettings;
use son1k_domain::billing::BillingState;
use son1k_domain::credits::Block;
use son1k_domain::entitlement::Entitlement;
use son1k_domain::entitlement::{Subscription, TierSource};
use son1k_domain::ids::UserId;
use son1k_domain::jobs::Reservation;
use son1k_domain::limits::LimitsView;
use son1k_domain::metering::Usage;
use son1k_domain::tiers::{Quality, Tier};
use std::collections::BTreeMap;

pub const PROFILE_SK: &str = "PROFILE";

pub fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub pk: String,
    pub sk: String,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    pub tier: Tier,
    #[serde(default)]
    pub tier_source: TierSource,
    /// Absent, never null: it is the key of the `by_customer` index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
    /// Created time and id of the last Stripe event applied; older events are not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_fence: Option<String>,
    #[serde(default)]
    pub storage_used_bytes: u64,
    /// Generations recorded on any paid tier over the user's whole history (drives the 5% pool rule).
    #[serde(default)]
    pub paid_generations_total: u64,
    /// Generations spent per usage period, by period key (`D#2026-11-26`, `M#<start>`). Each period
    /// keeps its count while any clock can compute it again (`Period::key_outlived`), so a user who
    /// leaves a tier and returns inside the same period finds its count where it was left. `None`
    /// only on an item written before the map existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<BTreeMap<String, u32>>,
    /// Bumped by every change of tier or subscription, so a generation recorded against an
    /// entitlement that changed meanwhile is retried against the new one.
    #[serde(default)]
    pub entitlement_rev: u64,
    /// Units of quota held by generation jobs, by generation id (see `domain::jobs`). Each is in its
    /// period's counter (and in the paid history when `paid`) from the moment it is reserved; an
    /// expired one stops counting (computed on read) and is taken out of the counter by the user's
    /// next spend or by its job's release.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reservations: BTreeMap<String, Reservation>,
    /// Record-generation's spends whose record may not have landed yet: generation id → when the unit
    /// was spent (epoch ms). A parallel duplicate of that id sees it and waits for the record instead
    /// of spending a second unit; entries older than `INFLIGHT_KEPT` are dropped by later spends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inflight: BTreeMap<String, i64>,
    pub created_at: DateTime<Utc>,
    /// The request budget's bucket (`domain::rate`): its theoretical arrival time, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_tat: Option<i64>,
    /// The sparse `lapsing` index's keys, set only while a Stripe subscription keeps a stored paid
    /// tier: `LAPSE_SHARD`, and when that tier lapses unless Stripe says more (`lapses_at`, epoch
    /// seconds). Housekeeping finds lapsed users by querying it instead of scanning the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapse_shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapses_at: Option<i64>,
    /// What the user asked to be told of their usage, and how; `None`: the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_settings: Option<AlertSettings>,
    /// The period whose pace alert was sent (`store::alerts`): at most one a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace_alerted: Option<String>,
    /// The key webhook deliveries are signed with (`POST /api/me/alerts/webhook-secret`): shown
    /// once when made, never answered again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Voices the user keeps (not deleted): at most the tier's `voice_limit`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub voices_active: u32,
    /// The user's voice creations of the last hour, by slot (`domain::voices::free_creation_slot`):
    /// epoch ms.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub voice_creations: BTreeMap<String, i64>,
    /// Credit blocks, by block id (`domain::credits`): spent once the period's allowance is used up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub credits: BTreeMap<String, Block>,
    /// PaymentIntents refunded before their pack's block was added (Stripe does not promise the
    /// order of events): the block is added voided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunded_payments: Vec<String>,
    /// When a checkout first offered this user a trial: a trial is offered once per user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_offered_at: Option<DateTime<Utc>>,
    /// An admin's legal hold: the account cannot be deleted while it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<LegalHold>,
    /// When the user last asked for an export of their data, and the export being made (`None`
    /// once it is done): one a day, one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_running: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The one partition of the `lapsing` index (written only on subscription changes: no hot key).
pub const LAPSE_SHARD: &str = "LAPSE";

/// The `lapsing` index keys for a stored state: `Some(lapses_at)` while a Stripe subscription keeps
/// a stored paid tier.
pub fn lapse_key(
    tier: Tier,
    source: TierSource,
    subscription: Option<&Subscription>,
) -> Option<i64> {
    match (tier.is_paid(), source, subscription) {
        (true, TierSource::Stripe, Some(sub)) => {
            Some(son1k_domain::entitlement::lapses_at(sub).timestamp())
        }
        _ => None,
    }
}

impl UserRecord {
    /// A new FREE user with the profile the token's claims give.
    pub fn new(
        id: UserId,
        email: Option<String>,
        username: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            pk: user_pk(&id),
            sk: PROFILE_SK.to_owned(),
            user_id: id,
            email,
            username,
            avatar_url: None,
            tier: Tier::Free,
            tier_source: TierSource::Default,
            stripe_customer_id: None,
            subscription: None,
            sub_fence: None,
            storage_used_bytes: 0,
            paid_generations_total: 0,
            usage: Some(BTreeMap::new()),
            entitlement_rev: 0,
            reservations: BTreeMap::new(),
            inflight: BTreeMap::new(),
            created_at: now,
            rate_tat: None,
            lapse_shard: None,
            lapses_at: None,
            alert_settings: None,
            pace_alerted: None,
            webhook_secret: None,
            voices_active: 0,
            voice_creations: BTreeMap::new(),
            credits: BTreeMap::new(),
            refunded_payments: Vec::new(),
            trial_offered_at: None,
            legal_hold: None,
            export_at: None,
            export_running: None,
        }
    }

    /// The record with its `lapsing` index keys matching its tier and subscription.
    pub fn with_lapse_key(mut self) -> Self {
        self.lapses_at = lapse_key(self.tier, self.tier_source, self.subscription.as_ref());
        self.lapse_shard = self.lapses_at.map(|_| LAPSE_SHARD.to_owned());
        self
    }
}

/// Access to the users table.
#[derive(Debug, Clone, Copy)]
pub struct UsersStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> UsersStore<'a> {
    pub fn new(client: &'a Client, table: &'a str) -> Self {
        Self { client, table }
    }

    /// The user, read consistently; `None` when there is no such user.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn get(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(id), PROFILE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem users", err))?;
        out.item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(StoreError::corrupt)
    }

    /// Stores `record` unless the user exists. Returns the stored user: `record` if it was created,
    /// else the one that was already there (two racing first requests make one user). A user who
    /// deleted their account is not made again: `AccountDeleted` while their tombstone stands (their
    /// tokens outlive the account until they expire). A request racing its own account's closing
    /// may still make a profile; the deletion worker, which runs after the closing, deletes it.
    #[tracing::instrument(skip_all, fields(user_id = %record.user_id))]
    pub async fn create(&self, record: UserRecord) -> Result<(UserRecord, bool), StoreError> {
        let tombstone: Option<super::account::TombstoneRecord> = super::get_item(
            self.client,
            self.table,
            super::account::tombstone_item_key(&record.user_id),
            "GetItem tombstone",
        )
        .await?;
        if tombstone.is_some() {
            tracing::info!("a deleted account's token: no user is made");
            return Err(StoreError::AccountDeleted);
        }
        let item = serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?;
        let result = self
            .client
            .put_item()
            .table_name(self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok((record, true)),
            Err(err) => err,
        };
        let existing = match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(ccf)) => ccf.item().cloned(),
            _ => return Err(sdk_failure("PutItem users", err)),
        };
        let existing = match existing {
            Some(item) => serde_dynamo::from_item(item).map_err(StoreError::corrupt)?,
            None => self.get(&record.user_id).await?.ok_or_else(|| {
                StoreError::corrupt("user exists by condition but cannot be read")
            })?,
        };
        Ok((existing, false))
    }

    /// Grants `tier` without Stripe (admin) to `user` as read, with its audit entry: `true` when
    /// committed, `false` when the user's entitlement changed meanwhile, another entry came first or
    /// another transaction held an item (read both again). Bumps `entitlement_rev` so a generation
    /// being recorded against the old tier retries.
    #[tracing::instrument(skip_all, fields(user_id = %user.user_id, tier = %tier))]
    pub async fn grant_tier(
        &self,
        user: &UserRecord,
        tier: Tier,
        link: &Link,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
            .update_expression(
                "SET tier = :tier, tier_source = :source REMOVE lapse_shard, lapses_at \
                 ADD entitlement_rev :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(entitlement_rev) OR entitlement_rev = :rev)",
            )
            .expression_attribute_values(":tier", AttributeValue::S(tier.as_str().to_owned()))
            .expression_attribute_values(":source", AttributeValue::S("admin".to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":rev", AttributeValue::N(user.entitlement_rev.to_string()))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut transaction = Transaction::new("TransactWriteItems tier grant");
        transaction.push(
            Role::Change,
            TransactWriteItem::builder().update(update).build(),
        );
        link.send_with(self.client, transaction).await
    }

    /// Places (`Some`) or lifts (`None`) the legal hold of `user` as read, with its audit entry:
    /// `true` when committed, `false` when the hold changed meanwhile or the transaction lost (read
    /// again).
    #[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
    pub async fn set_hold(
        &self,
        user: &UserRecord,
        hold: Option<&LegalHold>,
        link: &Link,
    ) -> Result<bool, StoreError> {
        let mut update = Update::builder()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
            .expression_attribute_names("#hold", "legal_hold");
        update = match hold {
            Some(hold) => update
                .update_expression("SET #hold = :hold")
                .expression_attribute_values(
                    ":hold",
                    serde_dynamo::to_attribute_value(hold).map_err(StoreError::invalid_request)?,
                ),
            None => update.update_expression("REMOVE #hold"),
        };
        update = match &user.legal_hold {
            Some(was) => update
                .condition_expression("attribute_exists(pk) AND #hold.since = :since")
                .expression_attribute_values(
                    ":since",
                    serde_dynamo::to_attribute_value(was.since)
                        .map_err(StoreError::invalid_request)?,
                ),
            None => {
                update.condition_expression("attribute_exists(pk) AND attribute_not_exists(#hold)")
            }
        };
        let mut transaction = Transaction::new("TransactWriteItems legal hold");
        transaction.push(
            Role::Change,
            TransactWriteItem::builder()
                .update(update.build().map_err(StoreError::invalid_request)?)
                .build(),
        );
        link.send_with(self.client, transaction).await
    }

    /// Stores the user's alert settings, whole; `false` when there is no such user (nothing is
    /// written: an update would make an item without a profile). `Busy`: the item is in another
    /// transaction (a generation being recorded).
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn save_alert_settings(
        &self,
        id: &UserId,
        settings: &AlertSettings,
    ) -> Result<Attempt<bool>, StoreError> {
        let value =
            serde_dynamo::to_attribute_value(settings).map_err(StoreError::invalid_request)?;
        self.set_attribute(id, "alert_settings", value).await
    }

    /// Stores the user's webhook signing secret, replacing any; as [`Self::save_alert_settings`].
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn save_webhook_secret(
        &self,
        id: &UserId,
        secret: &str,
    ) -> Result<Attempt<bool>, StoreError> {
        self.set_attribute(id, "webhook_secret", AttributeValue::S(secret.to_owned()))
            .await
    }

    /// `SET <name> = value` on an existing user item: `false` when there is none.
    async fn set_attribute(
        &self,
        id: &UserId,
        name: &str,
        value: AttributeValue,
    ) -> Result<Attempt<bool>, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(id), PROFILE_SK)))
            .update_expression("SET #attr = :value")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#attr", name)
            .expression_attribute_values(":value", value);
        super::update_once("UpdateItem users", request).await
    }

    /// The stored user with `fresh`'s id, or `fresh` itself stored now (a user's first request).
    pub async fn get_or_create(&self, fresh: UserRecord) -> Result<UserRecord, StoreError> {
        match self.get(&fresh.user_id).await? {
            Some(user) => Ok(user),
            None => Ok(self.create(fresh).await?.0),
        }
    }
}

impl UserRecord {
    /// The tier in force and the usage period right now.
    pub fn entitlement(&self, now: DateTime<Utc>) -> Entitlement {
        son1k_domain::entitlement::entitlement(
            self.tier,
            self.tier_source,
            self.subscription.as_ref(),
            now,
        )
    }

    /// What a Stripe subscription event is decided against.
    pub fn billing_state(&self) -> BillingState<'_> {
        BillingState {
            tier: self.tier,
            tier_source: self.tier_source,
            subscription: self.subscription.as_ref(),
            sub_fence: self.sub_fence.as_deref(),
        }
    }

    /// Generations recorded in the period `period_key`.
    pub fn used_in(&self, period_key: &str) -> u32 {
        self.usage
            .as_ref()
            .and_then(|usage| usage.get(period_key))
            .copied()
            .unwrap_or(0)
    }

    /// The reservations that stopped counting at `now` and are still in their period's counter.
    pub fn expired_reservations(
        &self,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&String, &Reservation)> {
        // A credit's reservation is in no counter: only its job's release ends it.
        self.reservations
            .iter()
            .filter(move |(_, r)| !r.active(now) && r.credit.is_none())
    }

    /// What the metering decision needs at `now`: the entitlement and its period's count (recorded
    /// generations and the units running jobs hold; expired reservations left out).
    pub fn usage(&self, now: DateTime<Utc>) -> Usage {
        let entitlement = self.entitlement(now);
        let key = entitlement.period.key();
        let counted = self.used_in(&key);
        let expired = self
            .expired_reservations(now)
            .filter(|(_, r)| r.period_key == key)
            .count();
        Usage {
            entitlement,
            used: counted.saturating_sub(u32::try_from(expired).unwrap_or(u32::MAX)),
            counted,
            paid_total: self.paid_generations_total,
        }
    }

    /// The limits view of `GET /api/tiers/limits/{user_id}` at `now`.
    pub fn limits(&self, quality: Option<Quality>, now: DateTime<Utc>) -> LimitsView {
        LimitsView::new(
            self.user_id.clone(),
            &self.usage(now),
            quality,
            self.storage_used_bytes,
            self.subscription.as_ref(),
            now,
        )
        .with_credits(son1k_domain::credits::balance(&self.credits, now))
    }

    /// The block that pays this user's next generation beyond the allowance at `now`.
    /// Whether `payment` was refunded before its pack's block was added.
    pub fn refunded(&self, payment: &str) -> bool {
        self.refunded_payments.iter().any(|r| r == payment)
    }

    pub fn next_credit(&self, now: DateTime<Utc>) -> Option<&str> {
        son1k_domain::credits::next_block(&self.credits, now)
    }
}

/// A condition, a SET clause and their values.
pub(crate) type RateClause = (
    &'static str,
    &'static str,
    Vec<(&'static str, AttributeValue)>,
);

/// The condition and update of a request-budget step on the user item (`domain::rate`): `(condition,
/// SET clause, values)` over the name `#rate` (`rate_tat`); `None` for a refusal (nothing to send).
pub(crate) fn rate_clause(step: &son1k_domain::rate::RateStep) -> Option<RateClause> {
    use son1k_domain::rate::RateStep;
    let n = |v: i64| AttributeValue::N(v.to_string());
    match *step {
        RateStep::Idle {
            floor_ms,
            new_tat_ms,
        } => Some((
            "(attribute_not_exists(#rate) OR #rate < :rate_floor)",
            "#rate = :rate_new",
            vec![(":rate_floor", n(floor_ms)), (":rate_new", n(new_tat_ms))],
        )),
        RateStep::Busy {
            floor_ms,
            limit_ms,
            interval_ms,
        } => Some((
            "#rate BETWEEN :rate_floor AND :rate_lim",
            "#rate = #rate + :rate_step",
            vec![
                (":rate_floor", n(floor_ms)),
                (":rate_lim", n(limit_ms)),
                (":rate_step", n(interval_ms)),
            ],
        )),
        RateStep::Refused { .. } => None,
    }
}

/// The request budget's `step` on `user`'s item as one item of a transaction (conditioned on the
/// user existing); a cancellation code at its place means the bucket was not as the step assumed,
/// or the user has no item yet.
pub(crate) fn rate_transact_item(
    table: &str,
    user: &UserId,
    step: &son1k_domain::rate::RateStep,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
    let Some((condition, set, values)) = rate_clause(step) else {
        return Err(StoreError::invalid_request("a refusal has nothing to send"));
    };
    let mut update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
        .update_expression(format!("SET {set}"))
        .condition_expression(format!("attribute_exists(pk) AND {condition}"))
        .expression_attribute_names("#rate", "rate_tat");
    for (name, value) in values {
        update = update.expression_attribute_values(name, value);
    }
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .update(update.build().map_err(StoreError::invalid_request)?)
        .build())
}

/// What one attempt at admitting a request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitTry {
    Admitted,
    /// The bucket was not as the step assumed: its `tat` now.
    Seen(Option<i64>),
    NoUser,
    /// The user item is in another transaction: nothing changed.
    Busy,
}

impl UsersStore<'_> {
    /// Takes one request from `user`'s budget with `step` (not a refusal): one conditional update
    /// of the user item, nothing else changed.
    pub async fn try_admit(
        &self,
        user: &UserId,
        step: &son1k_domain::rate::RateStep,
    ) -> Result<AdmitTry, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let Some((condition, set, values)) = rate_clause(step) else {
            return Err(StoreError::invalid_request("a refusal has nothing to send"));
        };
        let mut update = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
            .update_expression(format!("SET {set}"))
            .condition_expression(format!("attribute_exists(pk) AND {condition}"))
            .expression_attribute_names("#rate", "rate_tat")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        match update.send().await {
            Ok(_) => Ok(AdmitTry::Admitted),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => match ccf.item() {
                    None => Ok(AdmitTry::NoUser),
                    Some(item) => Ok(AdmitTry::Seen(
                        item.get("rate_tat")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok()),
                    )),
                },
                Some(e) if e.is_transaction_conflict_exception() => Ok(AdmitTry::Busy),
                _ => Err(sdk_failure("UpdateItem request budget", err)),
            },
        }
    }
}
