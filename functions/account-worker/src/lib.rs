//! `account-worker` (SQS, the account queue): runs each account job (a deletion,
//! `son1k_app::account`; an export, `son1k_app::export`), one
//! message at a time, and reports the ones to deliver again (`batchItemFailures`) when a step
//! failed: every step is idempotent, so the next delivery does what is left. A message that does
//! not parse is dropped (logged).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use son1k_app::account::AccountJob;
use son1k_app::AppState;

pub async fn handler(
    state: &AppState,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let Some(job) = record
            .body
            .as_deref()
            .and_then(|body| serde_json::from_str::<AccountJob>(body).ok())
        else {
            tracing::error!(message_id = %id, "an account job that does not parse: dropped");
            continue;
        };
        let done = match &job {
            AccountJob::Delete { deletion_id } => {
                son1k_app::account::run_deletion(state, deletion_id)
                    .await
                    .map(|_| ())
            }
            AccountJob::Export { user_id, export_id } => {
                son1k_app::export::run(state, user_id, export_id)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(err) = done {
            tracing::error!(error = %err, message_id = %id, ?job, "account job failed; it will be delivered again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
