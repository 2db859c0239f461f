//! The stats table: usage counters per user and period (`USER#<id>` / `PERIOD#<key>`).

use super::{item_key, sdk_failure, StoreError};
use crate::domain::ids::UserId;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

pub fn period_sk(period_key: &str) -> String {
    format!("PERIOD#{period_key}")
}

/// Access to the stats table.
#[derive(Debug, Clone, Copy)]
pub struct StatsStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> StatsStore<'a> {
    pub fn new(client: &'a Client, table: &'a str) -> Self {
        Self { client, table }
    }

    /// Generations spent in one usage period (0 when the period has no counter yet).
    #[tracing::instrument(skip_all, fields(user_id = %user, period = period_key))]
    pub async fn used(&self, user: &UserId, period_key: &str) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(item_key(
                super::users::user_pk(user),
                &period_sk(period_key),
            )))
            .projection_expression("used")
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem stats", err))?;
        match out.item.as_ref().and_then(|item| item.get("used")) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n.parse().map_err(StoreError::corrupt),
            Some(other) => Err(StoreError::Corrupt(format!(
                "used is not a number: {other:?}"
            ))),
        }
    }
}
