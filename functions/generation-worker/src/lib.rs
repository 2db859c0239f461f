//! `generation-worker` (SQS, the jobs queue): runs each job of the batch (a provider from the pool,
//! the audio streamed into S3, then commit or release) and reports the messages to deliver again
//! (`batchItemFailures`): a job another run holds, one no provider could take yet, or a store
//! failure. A job runs once whatever the number of deliveries.

use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use son1k::jobs::{work, JobMessage, Providers, WorkOutcome};
use son1k::AppState;

/// SQS's partial batch response.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

pub async fn handler(
    state: &AppState,
    providers: &Providers,
    event: LambdaEvent<Value>,
) -> Result<BatchResponse, Error> {
    let records = event
        .payload
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let runs = records.iter().map(|record| async move {
        let id = record
            .get("messageId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let message = record
            .get("body")
            .and_then(Value::as_str)
            .and_then(|body| serde_json::from_str::<JobMessage>(body).ok());
        let Some(message) = message else {
            tracing::error!(message_id = %id, "a message that is not a job; dropped");
            return None;
        };
        match work(state, providers, &message).await {
            Ok(WorkOutcome::Done(status)) => {
                tracing::info!(generation_id = %message.generation_id, ?status, "job handled");
                None
            }
            Ok(WorkOutcome::Retry) => Some(id),
            Err(err) => {
                tracing::error!(error = %err, generation_id = %message.generation_id, "job run failed; it will be delivered again");
                Some(id)
            }
        }
    });
    let failures = futures::future::join_all(runs).await;
    Ok(BatchResponse {
        batch_item_failures: failures
            .into_iter()
            .flatten()
            .map(|item_identifier| ItemFailure { item_identifier })
            .collect(),
    })
}

/// An SQS event holding `bodies`, as SQS sends it, for the local stack and tests.
pub fn event_for(messages: &[(String, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id, "receiptHandle": id, "body": body,
                "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                "attributes": {"ApproximateReceiveCount": "1"}
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}
