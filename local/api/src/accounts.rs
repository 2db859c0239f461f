//! The local stand-ins for the account worker's event source mapping and for Cognito: the account
//! queue on moto's SQS with a poller that hands its messages to the account-worker handler (deleting
//! the ones it does not report as failed, as `ReportBatchItemFailures` does), and a user pool on
//! moto's cognito-idp for the deletion's `AdminDeleteUser`.

use aws_sdk_sqs::types::QueueAttributeName;
use son1k_app::account::{AccountQueue, Cognito};
use son1k_app::AppState;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Creates (or finds) the queue `name` and a user pool named `name` on moto, and gives `state`
/// both.
pub async fn ensure(state: &mut AppState, name: &str) -> Result<(), Failure> {
    let sqs = state.sqs_client();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await?;
    let url = queue.queue_url().ok_or("no account queue URL")?.to_owned();
    state.account_jobs = Some(AccountQueue::new(sqs, url));
    let cognito = state.cognito_client();
    let existing = cognito.list_user_pools().max_results(60).send().await?;
    let pool_id = match existing
        .user_pools()
        .iter()
        .find(|p| p.name() == Some(name))
        .and_then(|p| p.id())
    {
        Some(id) => id.to_owned(),
        None => cognito
            .create_user_pool()
            .pool_name(name)
            .username_attributes(
                aws_sdk_cognitoidentityprovider::types::UsernameAttributeType::Email,
            )
            .send()
            .await?
            .user_pool()
            .and_then(|p| p.id())
            .ok_or("no user pool id")?
            .to_owned(),
    };
    state.cognito = Some(Cognito::new(cognito, pool_id.clone()));
    tracing::info!(queue = name, user_pool = %pool_id, "account worker ready");
    Ok(())
}

/// Receives one batch (waiting up to `wait_seconds`), runs it through the account worker and
/// deletes what it handled; a failed message becomes visible again after `retry_seconds`. How many
/// messages were received.
pub async fn drain_once(
    state: &AppState,
    wait_seconds: i32,
    retry_seconds: i32,
) -> Result<usize, Failure> {
    let queue = state.account_jobs.as_ref().ok_or("no account queue")?;
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
    let report = account_worker::handler(state, invocation).await?;
    for message in messages {
        let id = message.message_id().unwrap_or_default();
        let handle = message.receipt_handle().unwrap_or_default();
        if report
            .batch_item_failures
            .iter()
            .any(|f| f.item_identifier == id)
        {
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
pub async fn run(state: AppState) {
    loop {
        if let Err(err) = drain_once(&state, 1, 5).await {
            tracing::warn!(error = %err, "account poller: a batch failed; it will be received again");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}
