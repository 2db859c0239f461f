//! `voice-results` (SQS, the voice results queue): applies each result the GPU worker reports to
//! its voice, once (`son1k_app::voices::apply_result`), and reports the messages to deliver again
//! (`batchItemFailures`) when the store failed. A result that does not parse is dropped (logged).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use son1k_app::AppState;

pub async fn handler(
    state: &AppState,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        let Some(result) = record
            .body
            .as_deref()
            .and_then(son1k_app::voices::parse_result)
        else {
            continue;
        };
        if let Err(err) = son1k_app::voices::apply_result(state, &result).await {
            tracing::error!(error = %err, voice = %result.voice_id, "voice result not applied; it will be delivered again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
