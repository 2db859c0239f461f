//! The reads and writes of the `scheduled-reset` function's housekeeping (`son1k_app::housekeeping`
//! decides): the users whose paid tier may have lapsed, and the uploads granted on a day. Expired
//! items are DynamoDB's TTL's to delete (every read already treats an item past its `expires_at` as
//! absent), so nothing here scans a table.

use super::users::{user_pk, UserRecord, LAPSE_SHARD, PROFILE_SK};
use super::{item_key, sdk_failure, StoreError};
use crate::Names;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use son1k_domain::tiers::Tier;
use std::collections::HashMap;

/// Users read per page of the `lapsing` index.
pub const PAGE_SIZE: i32 = 100;

/// The housekeeping reads and writes over the users and stats tables.
#[derive(Debug, Clone, Copy)]
pub struct HousekeepingStore<'a> {
    client: &'a Client,
    names: &'a Names,
}

impl<'a> HousekeepingStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    /// One page of the users the sparse `lapsing` index lists as lapsed by `now` (Stripe users whose
    /// stored paid tier may have lapsed), and where the next page starts.
    pub async fn lapsing(
        &self,
        now: DateTime<Utc>,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<LapsingPage, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.names.users_table)
            .index_name("lapsing")
            .key_condition_expression("lapse_shard = :shard AND lapses_at <= :now")
            .expression_attribute_values(":shard", AttributeValue::S(LAPSE_SHARD.into()))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .limit(PAGE_SIZE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| sdk_failure("Query users lapsing", err))?;
        Ok(LapsingPage {
            users: page
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|item| serde_dynamo::from_item(item).map_err(StoreError::corrupt))
                .collect(),
            next: page.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Stores FREE for `user` (read from the index) and takes it out of the index, conditioned on its
    /// `entitlement_rev`, so a webhook applied meanwhile wins; `false` when one did.
    pub async fn store_free(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let result = self
        .client
        .update_item()
        .table_name(&self.names.users_table)
        .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
        .update_expression("SET tier = :free REMOVE lapse_shard, lapses_at ADD entitlement_rev :one")
        .condition_expression(
            "attribute_exists(pk) AND (attribute_not_exists(entitlement_rev) OR entitlement_rev = :rev)",
        )
        .expression_attribute_values(":free", AttributeValue::S(Tier::Free.as_str().into()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":rev", AttributeValue::N(user.entitlement_rev.to_string()))
        .send()
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_failure("UpdateItem users", err)),
        }
    }

    /// One page of the audio keys granted an upload on `day` (`YYYY-MM-DD`), from `uploads_by_day`,
    /// and where the next page starts.
    pub async fn uploads_granted_on(
        &self,
        day: &str,
        start: Option<std::collections::HashMap<String, AttributeValue>>,
    ) -> Result<UploadsPage, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.names.stats_table)
            .index_name(super::schema::UPLOADS_BY_DAY)
            .key_condition_expression("upload_day = :day")
            .expression_attribute_values(":day", AttributeValue::S(day.to_owned()))
            .limit(PAGE_SIZE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| sdk_failure("Query uploads_by_day", err))?;
        let keys = page
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| match item.get("upload_key") {
                Some(AttributeValue::S(key)) => Some(key.clone()),
                _ => None,
            })
            .collect();
        Ok(UploadsPage {
            keys,
            next: page.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }
}

/// A page of `lapsing`: each user as the index holds it (or why it could not be read).
#[derive(Debug, Default)]
pub struct LapsingPage {
    pub users: Vec<Result<UserRecord, StoreError>>,
    pub next: Option<HashMap<String, AttributeValue>>,
}

/// A page of `uploads_granted_on`.
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    pub keys: Vec<String>,
    pub next: Option<std::collections::HashMap<String, AttributeValue>>,
}
