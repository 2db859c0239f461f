//! Housekeeping for the `scheduled-reset` function. Nothing here decides what a user may do (periods
//! and entitlements are computed on every request); it only makes stored state catch up with what is
//! already computed. Expired items are DynamoDB's TTL's to delete (every read already treats an item
//! past its `expires_at` as absent), so nothing here scans a table.

use super::users::{user_pk, UserRecord, LAPSE_SHARD, PROFILE_SK};
use super::{item_key, sdk_failure, StoreError};
use crate::Names;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::entitlement::TierSource;
use son1k_domain::tiers::Tier;
use std::time::Instant;

/// Users read per page of the `lapsing` index.
pub const PAGE_SIZE: i32 = 100;

/// What a run of `expire_lapsed_subscriptions` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapseReport {
    /// Users the index listed as lapsed by now.
    pub checked: u64,
    /// Users stored as FREE.
    pub expired: u64,
    /// Users whose update failed (each logged); the next run finds them again.
    pub failed: u64,
    /// Whether every lapsed user was seen (false: the time budget ran out, or a page failed).
    pub complete: bool,
}

/// Stores FREE for every Stripe user whose stored paid tier has lapsed (canceled, unpaid, or past
/// period end + grace without a renewal), found through the sparse `lapsing` index, page by page,
/// until `deadline`. A failed user is counted and passed over. Each update is conditioned on
/// `entitlement_rev`, so a webhook applied meanwhile wins.
pub async fn expire_lapsed_subscriptions(
    client: &Client,
    names: &Names,
    now: DateTime<Utc>,
    deadline: Instant,
) -> LapseReport {
    let mut report = LapseReport::default();
    let mut start = None;
    loop {
        if Instant::now() >= deadline {
            tracing::warn!(?report, "housekeeping stopped at its time budget");
            return report;
        }
        let page = client
            .query()
            .table_name(&names.users_table)
            .index_name("lapsing")
            .key_condition_expression("lapse_shard = :shard AND lapses_at <= :now")
            .expression_attribute_values(":shard", AttributeValue::S(LAPSE_SHARD.into()))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .limit(PAGE_SIZE)
            .set_exclusive_start_key(start.take())
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                let _ = sdk_failure("Query users lapsing", err);
                return report;
            }
        };
        for item in page.items.unwrap_or_default() {
            report.checked += 1;
            match expire_one(client, names, item, now).await {
                Ok(true) => report.expired += 1,
                Ok(false) => {}
                Err(_) => report.failed += 1,
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => {
                report.complete = true;
                return report;
            }
        }
    }
}

/// Expires one user from the index; `Ok(false)` when its entitlement is still paid or a change won.
async fn expire_one(
    client: &Client,
    names: &Names,
    item: std::collections::HashMap<String, AttributeValue>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let user: UserRecord = serde_dynamo::from_item(item).map_err(StoreError::corrupt)?;
    if user.tier_source != TierSource::Stripe || user.entitlement(now).tier != Tier::Free {
        return Ok(false);
    }
    let result = client
        .update_item()
        .table_name(&names.users_table)
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
        Ok(_) => {
            tracing::info!(user_id = %user.user_id, "lapsed subscription expired to FREE");
            Ok(true)
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(err) => {
            let err = sdk_failure("UpdateItem users", err);
            tracing::warn!(user_id = %user.user_id, "lapsed user not expired; the next run retries");
            Err(err)
        }
    }
}

/// One page of the audio keys granted an upload on `day` (`YYYY-MM-DD`), from `uploads_by_day`,
/// and where the next page starts.
pub async fn uploads_granted_on(
    client: &Client,
    names: &Names,
    day: &str,
    start: Option<std::collections::HashMap<String, AttributeValue>>,
) -> Result<UploadsPage, StoreError> {
    let page = client
        .query()
        .table_name(&names.stats_table)
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

/// A page of `uploads_granted_on`.
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    pub keys: Vec<String>,
    pub next: Option<std::collections::HashMap<String, AttributeValue>>,
}
