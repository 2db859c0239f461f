//! The daily counters of the language-model features, in the user item's `usage` map (see
//! `domain::assist`): one `UpdateItem` takes a unit and answers the user as it now is, one gives a
//! unit back.

use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, Attempt, StoreError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use son1k_domain::assist::Feature;
use son1k_domain::ids::UserId;
use son1k_domain::period::Period;

/// What taking a unit found.
#[derive(Debug)]
pub enum Take {
    /// Counted: the user with the unit in its counter.
    Counted(Box<UserRecord>),
    /// A condition failed: the counter is at the largest allowance of any tier, or the request
    /// budget was not as the step assumed. Nothing was taken; the user as it was.
    AtCap(Box<UserRecord>),
    /// No such user yet.
    NoUser,
    /// A user item from before the usage map: nothing was taken.
    NoCounters,
    /// The user item is in another transaction (a generation being recorded): nothing was taken;
    /// a moment later it is free.
    Busy,
}

/// What DynamoDB answered a take.
fn taken(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<Take, StoreError> {
    let err = match result {
        Ok(out) => {
            let user = serde_dynamo::from_item(out.attributes.unwrap_or_default())
                .map_err(StoreError::corrupt)?;
            return Ok(Take::Counted(Box::new(user)));
        }
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => match ccf.item() {
            None => Ok(Take::NoUser),
            Some(item) if !item.contains_key("usage") => Ok(Take::NoCounters),
            Some(item) => Ok(Take::AtCap(Box::new(
                serde_dynamo::from_item(item.clone()).map_err(StoreError::corrupt)?,
            ))),
        },
        Some(e) if e.is_transaction_conflict_exception() => Ok(Take::Busy),
        _ => Err(sdk_failure("UpdateItem take allowance", err)),
    }
}

/// Days back whose counters a take drops (they are outlived: `Period::key_outlived`); older ones
/// are dropped by generation writes, which drop every outlived key they see.
const PRUNED_DAYS: std::ops::RangeInclusive<i64> = 3..=9;

#[derive(Debug, Clone, Copy)]
pub struct AllowancesStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> AllowancesStore<'a> {
    pub fn new(client: &'a Client, table: &'a str) -> Self {
        Self { client, table }
    }

    /// Adds one to `feature`'s counter `key` unless it is at the feature's cap, taking the request
    /// budget's `rate` step in the same update.
    #[tracing::instrument(skip_all, fields(user_id = %user, key))]
    pub async fn take(
        &self,
        user: &UserId,
        feature: Feature,
        key: &str,
        rate: &son1k_domain::rate::RateStep,
        now: DateTime<Utc>,
    ) -> Result<Take, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
            .expression_attribute_names("#usage", "usage")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":cap", AttributeValue::N(feature.cap().to_string()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut removed = Vec::new();
        for (i, days) in PRUNED_DAYS.enumerate() {
            let old = feature.counter_key(now - Duration::days(days));
            if old != key && Period::key_outlived(&old, now) {
                let back = feature.give_back_key(&old);
                removed.push(format!("#usage.#old{i}, #usage.#back{i}"));
                update = update
                    .expression_attribute_names(format!("#old{i}"), old)
                    .expression_attribute_names(format!("#back{i}"), back);
            }
        }
        let mut expression = "ADD #usage.#k :one".to_owned();
        let mut condition = "attribute_exists(pk) AND attribute_exists(#usage) \
                             AND (attribute_not_exists(#usage.#k) OR #usage.#k < :cap)"
            .to_owned();
        if let Some((rate_condition, set, values)) = super::users::rate_clause(rate) {
            condition = format!("{condition} AND {rate_condition}");
            expression = format!("{expression} SET {set}");
            update = update.expression_attribute_names("#rate", "rate_tat");
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
        }
        update = update.condition_expression(condition);
        if !removed.is_empty() {
            expression = format!("{expression} REMOVE {}", removed.join(", "));
        }
        taken(update.update_expression(expression).send().await)
    }

    /// Takes back the unit a refused take counted past the limit (it was never granted). `Busy`:
    /// another transaction held the user item.
    #[tracing::instrument(skip_all, fields(user_id = %user, key))]
    pub async fn uncount(&self, user: &UserId, key: &str) -> Result<Attempt<()>, StoreError> {
        self.give_back_within(user, key, None).await
    }

    /// Gives back one unit of counter `key` (the one it was taken from, whatever the day is now)
    /// and counts it in that day's give-back counter `back_key`, unless `back_key` is at `max`:
    /// then the unit stays spent. `Busy`: another transaction held the user item.
    #[tracing::instrument(skip_all, fields(user_id = %user, key))]
    pub async fn give_back(
        &self,
        user: &UserId,
        key: &str,
        back_key: &str,
        max: u32,
    ) -> Result<Attempt<()>, StoreError> {
        self.give_back_within(user, key, Some((back_key, max)))
            .await
    }

    /// One conditional update: nothing changes when the counter is empty (dropped meanwhile) or the
    /// give-back counter is at its most.
    async fn give_back_within(
        &self,
        user: &UserId,
        key: &str,
        back: Option<(&str, u32)>,
    ) -> Result<Attempt<()>, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
            .expression_attribute_names("#usage", "usage")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()));
        request = match back {
            None => request
                .update_expression("ADD #usage.#k :minus")
                .condition_expression("#usage.#k > :zero"),
            Some((back_key, max)) => request
                .update_expression("ADD #usage.#k :minus, #usage.#b :one")
                .condition_expression(
                    "#usage.#k > :zero AND (attribute_not_exists(#usage.#b) OR #usage.#b < :max)",
                )
                .expression_attribute_names("#b", back_key)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":max", AttributeValue::N(max.to_string())),
        };
        Ok(
            super::update_once("UpdateItem give back allowance", request)
                .await?
                .map(|_| ()),
        )
    }

    /// Starts the usage map of a user item written before it existed.
    pub async fn start_counters(&self, user: &UserId) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(user_pk(user), PROFILE_SK)))
            .update_expression("SET #usage = if_not_exists(#usage, :empty)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#usage", "usage")
            .expression_attribute_values(":empty", AttributeValue::M(Default::default()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| sdk_failure("UpdateItem start usage", err))
    }
}
