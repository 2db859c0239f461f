//! The local stand-ins for `alert-delivery`'s two event sources: the alerts table's stream on
//! DynamoDB Local, read with the DynamoDB Streams API and handed over as Lambda's event source
//! mapping would (new alerts only, as its filter keeps them); and the retry queue (with its
//! dead-letter queue) on moto's SQS, polled like the jobs queue. Also the sender's identity on
//! moto's SES, which refuses an unverified sender as SES does.

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Map, Value};
use son1k_app::delivery::{AlertDelivery, DeliverySettings};
use son1k_app::AppState;
use std::collections::HashMap;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The sender alert emails come from locally.
pub const LOCAL_SENDER: &str = "alerts@son1k.test";

/// Makes (or finds) the retry queue `name` and its dead-letter queue `name-dlq`, verifies the sender
/// on SES, and gives the state its alert delivery with `retry_base` and the webhook `sinks`.
pub async fn ensure_delivery(
    state: &mut AppState,
    name: &str,
    retry_base: chrono::Duration,
    sinks: HashMap<String, String>,
) -> Result<(), Failure> {
    let sqs = state.sqs_client();
    let mut urls = Vec::new();
    for queue in [format!("{name}-dlq"), name.to_owned()] {
        let made = sqs
            .create_queue()
            .queue_name(&queue)
            .attributes(QueueAttributeName::VisibilityTimeout, "60")
            .send()
            .await?;
        urls.push(made.queue_url().ok_or("no queue URL")?.to_owned());
    }
    let [dead_letter_url, retry_queue_url] =
        <[String; 2]>::try_from(urls).map_err(|_| "two queues were made")?;
    let ses = state.ses_client();
    match ses
        .create_email_identity()
        .email_identity(LOCAL_SENDER)
        .send()
        .await
    {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) => {}
        Err(err) => return Err(err.into()),
    }
    let settings = DeliverySettings {
        dead_letter_url,
        retry_queue_url,
        sender: Some(LOCAL_SENDER.to_owned()),
        configuration_set: None,
        retry_base,
        sinks,
    };
    state.alert_delivery = Some(AlertDelivery::new(sqs, ses, settings)?);
    Ok(())
}

/// A reader of the alerts table's stream: where each shard was read up to.
#[derive(Debug, Default)]
pub struct StreamReader {
    iterators: HashMap<String, Option<String>>,
}

impl StreamReader {
    /// Hands every record written since the last pass to `alert-delivery` (from the stream's start
    /// on the first pass). Returns how many records were handed over.
    pub async fn pass(&mut self, state: &AppState) -> Result<usize, Failure> {
        let streams = streams_client(state);
        // Its own client: the event source mapping's calls are not the function's.
        let mut tables = aws_sdk_dynamodb::config::Builder::from(&state.sdk);
        if let Some(url) = &state.endpoints.dynamodb {
            tables = tables.endpoint_url(url);
        }
        let table = aws_sdk_dynamodb::Client::from_conf(tables.build())
            .describe_table()
            .table_name(&state.config.names.alerts_table)
            .send()
            .await?;
        let Some(arn) = table.table().and_then(|t| t.latest_stream_arn()) else {
            return Ok(0);
        };
        let stream = streams.describe_stream().stream_arn(arn).send().await?;
        for shard in stream
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let Some(id) = shard.shard_id() else { continue };
            if !self.iterators.contains_key(id) {
                let it = streams
                    .get_shard_iterator()
                    .stream_arn(arn)
                    .shard_id(id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await?;
                self.iterators
                    .insert(id.to_owned(), it.shard_iterator().map(str::to_owned));
            }
        }
        let mut records = Vec::new();
        let mut stale = Vec::new();
        for (shard, iterator) in self.iterators.iter_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let out = match streams.get_records().shard_iterator(current).send().await {
                Ok(out) => out,
                Err(err) => {
                    // A trimmed or expired position: read the shard again from its start on the
                    // next pass (deliveries already made are final and not made again).
                    tracing::debug!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err), shard, "stream position lost");
                    stale.push(shard.clone());
                    continue;
                }
            };
            *iterator = out.next_shard_iterator().map(str::to_owned);
            for record in out.records() {
                let Some(change) = record.dynamodb() else {
                    continue;
                };
                let image = change.new_image().cloned().unwrap_or_default();
                // The event source mapping's filter: new alert items only.
                let is_alert = matches!(image.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with(son1k_store::alerts::ALERT_PREFIX));
                let name = record.event_name().map(|n| n.as_str().to_owned());
                if !is_alert || name.as_deref() != Some("INSERT") {
                    continue;
                }
                records.push(json!({
                    "eventID": record.event_id(),
                    "eventName": "INSERT",
                    "eventSource": "aws:dynamodb",
                    "eventVersion": "1.1",
                    "awsRegion": "us-east-1",
                    "dynamodb": {
                        "ApproximateCreationDateTime": change
                            .approximate_creation_date_time()
                            .map(|t| t.as_secs_f64()),
                        "Keys": change.keys().map(item_json),
                        "NewImage": item_json(&image),
                        "SequenceNumber": change.sequence_number(),
                        "SizeBytes": change.size_bytes(),
                        "StreamViewType": "NEW_IMAGE",
                    },
                }));
            }
        }
        for shard in stale {
            self.iterators.remove(&shard);
        }
        let count = records.len();
        if count > 0 {
            let event = json!({ "Records": records });
            let invocation =
                lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default());
            let report = alert_delivery::handler(state, invocation).await?;
            if !report.batch_item_failures.is_empty() {
                // Read again from the start on the next pass; deliveries already made are final.
                self.iterators.clear();
                return Err("alert-delivery failed a stream batch".into());
            }
        }
        Ok(count)
    }
}

fn streams_client(state: &AppState) -> aws_sdk_dynamodbstreams::Client {
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&state.sdk);
    if let Some(url) = &state.endpoints.dynamodb {
        config = config.endpoint_url(url);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}

/// An item as Lambda's DynamoDB event writes it (DynamoDB JSON).
fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn value_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(items) => {
            json!({ "L": items.iter().map(value_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_json(map) }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        _ => Value::Null,
    }
}

/// Receives one batch of the retry queue (waiting up to `wait_seconds`) and hands it to
/// `alert-delivery`, deleting what it did not report as failed. Returns how many were received.
pub async fn drain_retries(state: &AppState, wait_seconds: i32) -> Result<usize, Failure> {
    let queue = retry_queue_url(state)?;
    let sqs = state.sqs_client();
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .send()
        .await?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let event = json!({ "Records": records });
    let invocation = lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default());
    let report = alert_delivery::handler(state, invocation).await?;
    for message in messages {
        let id = message.message_id().unwrap_or_default();
        if report
            .batch_item_failures
            .iter()
            .any(|f| f.item_identifier == id)
        {
            continue;
        }
        sqs.delete_message()
            .queue_url(&queue)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await?;
    }
    Ok(messages.len())
}

/// The URL of the state's retry queue (and of its dead-letter queue: `-dlq`).
pub fn retry_queue_url(state: &AppState) -> Result<String, Failure> {
    Ok(state
        .alert_delivery
        .as_ref()
        .ok_or("no alert delivery")?
        .queues()
        .0
        .to_owned())
}

/// Polls the stream and the retry queue until the process ends (`make dev`).
pub async fn run(state: AppState) {
    let mut reader = StreamReader::default();
    loop {
        if let Err(err) = reader.pass(&state).await {
            tracing::warn!(error = %err, "alerts stream: a pass failed; read again");
        }
        if let Err(err) = drain_retries(&state, 1).await {
            tracing::warn!(error = %err, "alert retries: a batch failed; received again");
        }
    }
}
