//! Housekeeping for the `scheduled-reset` function. Nothing here decides what a user may do (periods
//! and entitlements are computed on every request); it only makes stored state catch up with what is
//! already computed, and removes items DynamoDB's TTL would remove (moto never does).

use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, schema, sdk_failure, StoreError};
use crate::config::Config;
use crate::domain::entitlement::TierSource;
use crate::domain::tiers::Tier;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Scans `table` with `filter`, page by page, handing every item to `each`.
async fn scan_each(
    client: &Client,
    table: &str,
    filter: &str,
    values: &[(&str, AttributeValue)],
    mut each: impl AsyncFnMut(Item) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut start: Option<Item> = None;
    let mut scanned = 0;
    loop {
        let mut scan = client
            .scan()
            .table_name(table)
            .filter_expression(filter)
            .consistent_read(true)
            .set_exclusive_start_key(start.take());
        for (name, value) in values {
            scan = scan.expression_attribute_values(*name, value.clone());
        }
        let page = scan.send().await.map_err(|err| sdk_failure("Scan", err))?;
        scanned += u64::try_from(page.scanned_count).unwrap_or(0);
        for item in page.items.unwrap_or_default() {
            each(item).await?;
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(scanned),
        }
    }
}

/// Stores FREE for every Stripe user whose computed entitlement has already fallen back to FREE
/// (canceled, unpaid, or past period end + grace). Conditioned on `entitlement_rev`, so a webhook
/// applied meanwhile wins. Returns (users scanned, users changed).
pub async fn expire_lapsed_subscriptions(
    client: &Client,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let mut expired = 0;
    let scanned = scan_each(
        client,
        &config.users_table,
        "sk = :profile AND tier_source = :stripe AND tier <> :free",
        &[
            (":profile", AttributeValue::S(PROFILE_SK.into())),
            (":stripe", AttributeValue::S("stripe".into())),
            (":free", AttributeValue::S(Tier::Free.as_str().into())),
        ],
        async |item| {
            let user: UserRecord = serde_dynamo::from_item(item).map_err(StoreError::corrupt)?;
            if user.tier_source != TierSource::Stripe || user.entitlement(now).tier != Tier::Free {
                return Ok(());
            }
            let result = client.update_item()
                .table_name(&config.users_table)
                .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
                .update_expression("SET tier = :free ADD entitlement_rev :one")
                .condition_expression("attribute_exists(pk) AND (attribute_not_exists(entitlement_rev) OR entitlement_rev = :rev)")
                .expression_attribute_values(":free", AttributeValue::S(Tier::Free.as_str().into()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":rev", AttributeValue::N(user.entitlement_rev.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => {
                    expired += 1;
                    tracing::info!(user_id = %user.user_id, "lapsed subscription expired to FREE");
                    Ok(())
                }
                Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
                Err(err) => Err(sdk_failure("UpdateItem users", err)),
            }
        },
    )
    .await?;
    Ok((scanned, expired))
}

/// Deletes the items of `table` whose `expires_at` (epoch seconds) has passed. Returns how many.
pub async fn delete_expired_items(
    client: &Client,
    table: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let now = AttributeValue::N(now.timestamp().to_string());
    let mut deleted = 0;
    let ttl = schema::TTL_ATTRIBUTE;
    scan_each(
        client,
        table,
        &format!("{ttl} < :now"),
        &[(":now", now.clone())],
        async |item| {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                (item.get(schema::PK), item.get(schema::SK))
            else {
                return Ok(());
            };
            let result = client
                .delete_item()
                .table_name(table)
                .set_key(Some(item_key(pk.clone(), sk)))
                .condition_expression(format!("{ttl} < :now"))
                .expression_attribute_values(":now", now.clone())
                .send()
                .await;
            match result {
                Ok(_) => {
                    deleted += 1;
                    Ok(())
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(err) => Err(sdk_failure("DeleteItem", err)),
            }
        },
    )
    .await?;
    Ok(deleted)
}
