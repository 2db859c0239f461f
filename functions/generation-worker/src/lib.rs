//! `generation-worker` (SQS, the jobs queue): runs each job of the batch (a provider from the pool,
//! the audio streamed into S3, then commit or release) and reports the messages to deliver again
//! (`batchItemFailures`): a job another run holds, one no provider could take yet, or a store
//! failure. A job runs once whatever the number of deliveries.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use son1k_app::jobs::{work, JobMessage, Providers, WorkOutcome};
use son1k_app::AppState;
use tracing::Instrument;

pub async fn handler(
    state: &AppState,
    providers: &Providers,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let runs = event.payload.records.iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        // One span per message: every line of its run carries its id.
        let span = tracing::info_span!("job message", message_id = %id);
        run(state, providers, record, id).instrument(span)
    });
    let failures = futures::future::join_all(runs).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .flatten()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    Ok(response)
}

/// Runs one message's job: `Some(id)` when the message must be delivered again.
async fn run(
    state: &AppState,
    providers: &Providers,
    record: &SqsMessage,
    id: String,
) -> Option<String> {
    let message = record
        .body
        .as_deref()
        .and_then(|body| serde_json::from_str::<JobMessage>(body).ok());
    let Some(message) = message else {
        tracing::error!("a message that is not a job; dropped");
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
}

/// An SQS event of `(message id, body)` pairs, as SQS sends it, for the local stack and tests.
pub fn event_for(messages: &[(String, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|(id, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(id.clone());
            message.receipt_handle = Some(id.clone());
            message.body = Some(body.clone());
            message.event_source = Some("aws:sqs".to_owned());
            message.aws_region = Some("us-east-1".to_owned());
            message
        })
        .collect();
    event
}
