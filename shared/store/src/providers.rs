//! The shared state of each generation provider (`PROVIDER#<name>` / `STATE` in the stats table):
//! read, and written back conditioned on its `rev` being what was read. What the state allows is
//! decided in `son1k_domain::providers`.

use super::{item_key, sdk_failure, StoreError};
use crate::Names;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use son1k_domain::providers::ProviderState;

fn state_key(name: &str) -> std::collections::HashMap<String, AttributeValue> {
    item_key(format!("PROVIDER#{name}"), "STATE")
}

/// Access to providers' state.
#[derive(Debug, Clone, Copy)]
pub struct ProvidersStore<'a> {
    client: &'a Client,
    names: &'a Names,
}

impl<'a> ProvidersStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    pub async fn get(&self, name: &str) -> Result<ProviderState, StoreError> {
        let table = &self.names.stats_table;
        let found: Option<ProviderState> =
            super::get_item(self.client, table, state_key(name), "GetItem provider").await?;
        Ok(
            found.map_or_else(ProviderState::default, |state| ProviderState {
                stored: true,
                ..state
            }),
        )
    }

    /// Stores `next` if the item is still `read` (its `rev`); `false` when it changed meanwhile.
    pub async fn put(
        &self,
        name: &str,
        read: &ProviderState,
        next: &ProviderState,
    ) -> Result<bool, StoreError> {
        let mut item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(ProviderState {
                rev: read.rev + 1,
                ..next.clone()
            })
            .map_err(StoreError::invalid_request)?;
        item.extend(state_key(name));
        let request = self
            .client
            .put_item()
            .table_name(&self.names.stats_table)
            .set_item(Some(item));
        let request = if read.stored {
            request
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", AttributeValue::N(read.rev.to_string()))
        } else {
            request.condition_expression("attribute_not_exists(pk)")
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => Ok(false),
                _ => Err(sdk_failure("PutItem provider", err)),
            },
        }
    }
}
