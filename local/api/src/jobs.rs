//! The local stand-in for the jobs queue's Lambda event source mapping: the queue (and its
//! dead-letter queue) on moto's SQS, and a poller that hands received messages to the
//! generation-worker handler in batches and deletes the ones it does not report as failed, as the
//! event source mapping does with `ReportBatchItemFailures`.

use aws_sdk_sqs::types::QueueAttributeName;
use son1k_app::jobs::{JobsQueue, Providers};
use son1k_app::AppState;

/// Deliveries of one message before it goes to the dead-letter queue (as in template.yaml).
pub const MAX_RECEIVES: u32 = 5;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Creates (or finds) the queue `name` and its dead-letter queue `name-dlq` on the state's SQS.
pub async fn ensure_queue(
    state: &AppState,
    name: &str,
    providers: usize,
) -> Result<JobsQueue, Failure> {
    let sqs = state.sqs_client();
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await?;
    let dlq_url = dlq.queue_url().ok_or("no dead-letter queue URL")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("no dead-letter queue ARN")?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVES.to_string(),
    });
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await?;
    let url = queue.queue_url().ok_or("no queue URL")?.to_owned();
    Ok(JobsQueue::new(sqs, url, providers))
}

/// Receives one batch (waiting up to `wait_seconds`), runs it through the worker's handler and
/// deletes what it handled; a failed message becomes visible again after `retry_seconds`. Returns
/// how many messages were received.
pub async fn drain_once(
    state: &AppState,
    providers: &Providers,
    wait_seconds: i32,
    retry_seconds: i32,
) -> Result<usize, Failure> {
    let queue = state.jobs_queue.as_ref().ok_or("no jobs queue")?;
    let sqs = state.sqs_client();
    let received = sqs
        .receive_message()
        .queue_url(queue.url())
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .send()
        .await?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let batch: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m.message_id().unwrap_or_default().to_owned(),
                m.body().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let event = generation_worker::event_for(&batch);
    let invocation = lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default());
    let report = generation_worker::handler(state, providers, invocation).await?;
    for message in messages {
        let id = message.message_id().unwrap_or_default();
        let handle = message.receipt_handle().unwrap_or_default();
        let failed = report
            .batch_item_failures
            .iter()
            .any(|f| f.item_identifier == id);
        if failed {
            sqs.change_message_visibility()
                .queue_url(queue.url())
                .receipt_handle(handle)
                .visibility_timeout(retry_seconds)
                .send()
                .await?;
        } else {
            sqs.delete_message()
                .queue_url(queue.url())
                .receipt_handle(handle)
                .send()
                .await?;
        }
    }
    Ok(messages.len())
}

/// Polls the queue until the process ends (`make dev`).
pub async fn run_worker(state: AppState, providers: Providers) {
    loop {
        if let Err(err) = drain_once(&state, &providers, 1, 2).await {
            tracing::warn!(error = %err, "jobs poller: a batch failed; it will be received again");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}
