//! Stripe state in the tables: the customer and subscription on the user item, and one
//! `STRIPE#<event_id>` / `EVENT` item per applied webhook event in the stats table (30-day TTL), written
//! in the same transaction as the change it made, so an event is applied exactly once.

use super::analytics::Tally;
use super::users::{user_pk, PROFILE_SK};
use super::{item_key, sdk_failure, StoreError, Transacted, Transaction};
use crate::Names;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use son1k_domain::billing::TierChange;
use son1k_domain::ids::UserId;

pub const EVENT_SK: &str = "EVENT";
/// How long an event id is remembered; Stripe retries an event for at most 3 days.
pub const EVENT_TTL: Duration = Duration::days(30);

pub fn event_pk(event_id: &str) -> String {
    format!("STRIPE#{event_id}")
}

/// The dedupe item of an applied event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StripeEventRecord {
    pub pk: String,
    pub sk: String,
    pub event_type: String,
    pub user_id: UserId,
    pub applied_at: DateTime<Utc>,
    /// Unix seconds; the table's TTL attribute. Past it the item counts as absent.
    pub expires_at: i64,
}

/// The event being applied: its id and type, and the instant of this attempt.
#[derive(Debug, Clone, Copy)]
pub struct EventMark<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub now: DateTime<Utc>,
}

/// What one attempt to apply an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// The event id was already applied.
    Duplicate,
    /// The user changed since it was read (or the race was lost): read again and decide again.
    UserChanged,
}

/// Access to the Stripe state of users.
#[derive(Debug, Clone, Copy)]
pub struct BillingStore<'a> {
    client: &'a Client,
    names: &'a Names,
}

impl<'a> BillingStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    /// Applies a subscription change decided against the user as read with fence `read_fence`:
    /// the event's dedupe item and the user's new state in one transaction, conditioned on the
    /// fence being unchanged. The usage counters are not touched; `entitlement_rev` is bumped so a
    /// generation being recorded against the old tier retries against the new one.
    #[tracing::instrument(skip_all, fields(user_id = %user_id, event_id = event.id))]
    pub async fn apply_change(
        &self,
        user_id: &UserId,
        read_fence: Option<&str>,
        change: &TierChange,
        customer: Option<&str>,
        event: EventMark<'_>,
        tally: &Tally,
    ) -> Result<ApplyOutcome, StoreError> {
        let subscription = serde_dynamo::to_attribute_value(&change.subscription)
            .map_err(StoreError::invalid_request)?;
        let source = serde_dynamo::to_attribute_value(change.tier_source)
            .map_err(StoreError::invalid_request)?;
        let mut set = vec![
            "tier = :tier",
            "tier_source = :source",
            "subscription = :sub",
            "sub_fence = :fence",
        ];
        let mut update = Update::builder()
            .table_name(&self.names.users_table)
            .set_key(Some(item_key(user_pk(user_id), PROFILE_SK)))
            .expression_attribute_values(":tier", s(change.tier.as_str()))
            .expression_attribute_values(":source", source)
            .expression_attribute_values(":sub", subscription)
            .expression_attribute_values(":fence", s(&change.fence))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        if let Some(customer) = customer {
            set.push("stripe_customer_id = if_not_exists(stripe_customer_id, :customer)");
            update = update.expression_attribute_values(":customer", s(customer));
        }
        let (update, remove) = lapsing_follows(update, &mut set, change);
        let mut update = update;
        let condition = match read_fence {
            Some(fence) => {
                update = update.expression_attribute_values(":read_fence", s(fence));
                "attribute_exists(pk) AND sub_fence = :read_fence"
            }
            None => "attribute_exists(pk) AND attribute_not_exists(sub_fence)",
        };
        let update = update
            .update_expression(format!(
                "SET {}{remove} ADD entitlement_rev :one",
                set.join(", ")
            ))
            .condition_expression(condition)
            .build()
            .map_err(StoreError::invalid_request)?;
        self.transact(user_id, update, event, tally).await
    }

    /// Stores the customer of a completed checkout on a user who has none yet, with the event's
    /// dedupe item. A user who already has a customer keeps it (the condition fails: `UserChanged`
    /// tells the caller to read again, and it will find the customer set).
    #[tracing::instrument(skip_all, fields(user_id = %user_id, event_id = event.id))]
    pub async fn link_customer(
        &self,
        user_id: &UserId,
        customer: &str,
        event: EventMark<'_>,
    ) -> Result<ApplyOutcome, StoreError> {
        let update = Update::builder()
            .table_name(&self.names.users_table)
            .set_key(Some(item_key(user_pk(user_id), PROFILE_SK)))
            .update_expression("SET stripe_customer_id = :customer")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(stripe_customer_id)",
            )
            .expression_attribute_values(":customer", s(customer))
            .build()
            .map_err(StoreError::invalid_request)?;
        self.transact(user_id, update, event, &Tally::new(user_id, event.now))
            .await
    }

    /// The event's dedupe item, the user's update and the analytics of the change: all or nothing.
    async fn transact(
        &self,
        user_id: &UserId,
        update: Update,
        event: EventMark<'_>,
        tally: &Tally,
    ) -> Result<ApplyOutcome, StoreError> {
        let record = StripeEventRecord {
            pk: event_pk(event.id),
            sk: EVENT_SK.to_owned(),
            event_type: event.kind.to_owned(),
            user_id: user_id.clone(),
            applied_at: event.now,
            expires_at: (event.now + EVENT_TTL).timestamp(),
        };
        let put = Put::builder()
            .table_name(&self.names.stats_table)
            .set_item(Some(
                serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?,
            ))
            // An id remembered past its TTL (which local servers never enforce) counts as new.
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(
                ":now",
                AttributeValue::N(event.now.timestamp().to_string()),
            )
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = Transaction::new("TransactWriteItems stripe event");
        items.push(
            EventItem::Event,
            TransactWriteItem::builder().put(put).build(),
        );
        items.push(
            EventItem::User,
            TransactWriteItem::builder().update(update).build(),
        );
        items.extend(EventItem::Counts, tally.items(&self.names.stats_table)?);
        match items.send(self.client).await? {
            Transacted::Committed => {
                tally.log();
                Ok(ApplyOutcome::Applied)
            }
            Transacted::Refused(refused) if refused.by(EventItem::Event) => {
                Ok(ApplyOutcome::Duplicate)
            }
            // The user item's fence, or another transaction on an item: the user changed.
            Transacted::Refused(_) | Transacted::Busy => Ok(ApplyOutcome::UserChanged),
        }
    }

    /// Stores `customer` as the user's Stripe customer unless one is stored; returns the stored
    /// one (so two racing checkouts agree on one customer). `None` when there is no such user.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn set_customer(
        &self,
        user_id: &UserId,
        customer: &str,
    ) -> Result<Option<String>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.names.users_table)
            .set_key(Some(item_key(user_pk(user_id), PROFILE_SK)))
            .update_expression("SET stripe_customer_id = if_not_exists(stripe_customer_id, :c)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":c", s(customer))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .and_then(|mut item| item.remove("stripe_customer_id"))
                .and_then(|value| value.as_s().ok().cloned())),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(sdk_failure("UpdateItem users customer", err)),
        }
    }

    /// Claims the user's one trial at `now`: `true` for the first claim, `false` once claimed (or
    /// for no such user).
    pub async fn claim_trial(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.names.users_table)
            .set_key(Some(item_key(user_pk(user_id), PROFILE_SK)))
            .update_expression("SET trial_offered_at = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(trial_offered_at)")
            .expression_attribute_values(":now", s(&son1k_domain::clock::rfc3339(now)));
        Ok(matches!(
            super::update_once("UpdateItem claim a trial", request).await?,
            super::Attempt::Done(true)
        ))
    }

    /// Gives back the trial claimed at `now` (its checkout could not be created).
    pub async fn unclaim_trial(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.names.users_table)
            .set_key(Some(item_key(user_pk(user_id), PROFILE_SK)))
            .update_expression("REMOVE trial_offered_at")
            .condition_expression("trial_offered_at = :now")
            .expression_attribute_values(":now", s(&son1k_domain::clock::rfc3339(now)));
        super::update_once("UpdateItem give back a trial", request).await?;
        Ok(())
    }

    /// The user whose Stripe customer is `customer`, through the `by_customer` index.
    #[tracing::instrument(skip_all)]
    pub async fn user_of_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.names.users_table)
            .index_name("by_customer")
            .key_condition_expression("stripe_customer_id = :c")
            .expression_attribute_values(":c", s(customer))
            .limit(2)
            .send()
            .await
            .map_err(|err| sdk_failure("Query users by_customer", err))?;
        let mut ids = out.items().iter().filter_map(|item| {
            let pk = item.get(super::schema::PK)?.as_s().ok()?;
            UserId::parse(pk.strip_prefix("USER#")?).ok()
        });
        let first = ids.next();
        if ids.next().is_some() {
            tracing::warn!("two users share one Stripe customer; the first is used");
        }
        Ok(first)
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The `lapsing` index follows the stored state: the change's lapse time set (added to `set`), or
/// the user taken out of the index (the returned ` REMOVE` clause).
fn lapsing_follows(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    set: &mut Vec<&str>,
    change: &TierChange,
) -> (
    aws_sdk_dynamodb::types::builders::UpdateBuilder,
    &'static str,
) {
    match super::users::lapse_key(change.tier, change.tier_source, Some(&change.subscription)) {
        Some(lapses_at) => {
            set.push("lapse_shard = :lapse_shard");
            set.push("lapses_at = :lapses_at");
            let update = update
                .expression_attribute_values(":lapse_shard", s(super::users::LAPSE_SHARD))
                .expression_attribute_values(
                    ":lapses_at",
                    AttributeValue::N(lapses_at.to_string()),
                );
            (update, "")
        }
        None => (update, " REMOVE lapse_shard, lapses_at"),
    }
}

/// The items of an event's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventItem {
    /// The event id remembered: refused when it was applied before.
    Event,
    /// The user's entitlement, fenced on what was read.
    User,
    /// The analytics counts: unconditioned.
    Counts,
}
