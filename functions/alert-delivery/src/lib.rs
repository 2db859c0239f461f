//! `alert-delivery`: two event sources, one job. The alerts table's stream (new alerts only, by
//! the event source mapping's filter) hands over each alert the commits wrote, the outbox; the
//! retry queue hands back a delivery whose attempt failed, when it is due. Each is delivered by
//! `son1k_app::delivery`. The answer names the records to hand over again (`batchItemFailures`:
//! a stream record's sequence number, a message's id), the same shape for both sources.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use son1k_app::delivery::{on_new_alert, on_retry, RetryMessage};
use son1k_app::AppState;
use son1k_store::alerts::{AlertRecord, ALERT_PREFIX};

pub async fn handler(
    state: &AppState,
    event: LambdaEvent<Value>,
) -> Result<SqsBatchResponse, Error> {
    let source = event
        .payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let failed = match source.as_str() {
        "aws:dynamodb" => stream(state, serde_json::from_value(event.payload)?).await,
        "aws:sqs" => retries(state, serde_json::from_value(event.payload)?).await,
        "" => Vec::new(),
        other => return Err(format!("an event from {other}").into()),
    };
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    Ok(response)
}

/// New alerts, in order: the first record that fails and every one after it are handed over again
/// (a stream's checkpoint is the first failure).
async fn stream(state: &AppState, event: StreamEvent) -> Vec<String> {
    let mut failed = Vec::new();
    for record in event.records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        if !failed.is_empty() {
            failed.push(sequence);
            continue;
        }
        if record.event_name != "INSERT" {
            continue;
        }
        let alert = match serde_dynamo::from_item::<_, AlertRecord>(record.change.new_image) {
            Ok(alert) if alert.sk.starts_with(ALERT_PREFIX) => alert,
            Ok(_) => continue,
            Err(err) => {
                tracing::error!(error = %err, "a stream record that is not an alert; skipped");
                continue;
            }
        };
        if let Err(err) = Box::pin(on_new_alert(state, &alert)).await {
            tracing::error!(error = %err, alert_id = %alert.id, "alert delivery failed; the record is handed over again");
            failed.push(sequence);
        }
    }
    failed
}

/// Retries that are due (or put back for the rest of their wait).
async fn retries(state: &AppState, event: SqsEvent) -> Vec<String> {
    let mut failed = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let Some(message) = record
            .body
            .as_deref()
            .and_then(|body| serde_json::from_str::<RetryMessage>(body).ok())
        else {
            tracing::error!("a retry message that is not one; dropped");
            continue;
        };
        if let Err(err) = Box::pin(on_retry(state, &message)).await {
            tracing::error!(error = %err, alert_id = %message.alert_id, "alert retry failed; delivered again");
            failed.push(id);
        }
    }
    failed
}
