//! `storage-events` (S3 ObjectCreated on `audio/`): accounts each reported object once — its real
//! size added to the owner's storage under the quota, the generation's audio stored and its pool item
//! listed — or deletes it and marks the generation rejected. S3 delivers at least once; accounting
//! is idempotent per key and ETag. A failure fails the invocation, so the event is delivered again.
//! Under `voices/` (its second notification) an object is a voice's recording: checked (container,
//! duration, size) and counted on the voice and in the owner's storage, or deleted
//! (`son1k_app::voices::arrived`).

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use son1k_app::storage::{account_object, Accounted};
use son1k_app::AppState;

/// What one invocation did, by outcome.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct StorageReport {
    pub stored: u32,
    pub duplicate: u32,
    pub rejected: u32,
    pub ignored: u32,
}

pub async fn handler(
    state: &AppState,
    event: LambdaEvent<S3Event>,
) -> Result<StorageReport, Error> {
    let mut report = StorageReport::default();
    for key in created_keys(&event.payload) {
        if key.starts_with("voices/") {
            let arrival = son1k_app::voices::arrived(state, &key).await.map_err(|err| {
                tracing::error!(error = %err, key, "recording not checked; the event will be redelivered");
                Error::from(err.to_string())
            })?;
            match arrival {
                son1k_app::voices::Arrival::Stored => report.stored += 1,
                son1k_app::voices::Arrival::Discarded => report.ignored += 1,
                son1k_app::voices::Arrival::Invalid(_) => report.rejected += 1,
            }
            continue;
        }
        let outcome = account_object(state, &key).await.map_err(|err| {
            tracing::error!(error = %err, key, "object not accounted; the event will be redelivered");
            Error::from(err.to_string())
        })?;
        match outcome {
            Accounted::Stored => report.stored += 1,
            Accounted::Duplicate => report.duplicate += 1,
            Accounted::Rejected => report.rejected += 1,
            Accounted::Ignored => report.ignored += 1,
        }
    }
    tracing::info!(?report, "storage events handled");
    Ok(report)
}

/// The object keys of the event's `ObjectCreated:*` records, URL-decoded (S3 encodes them, with `+`
/// for a space).
pub fn created_keys(event: &S3Event) -> Vec<String> {
    event
        .records
        .iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_some_and(|name| name.starts_with("ObjectCreated:"))
        })
        .filter_map(|r| r.s3.object.key.as_deref())
        .map(|key| {
            percent_encoding::percent_decode_str(&key.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// An S3 event for `keys`, as S3 sends it (keys URL-encoded), for the local stack and tests.
pub fn event_for(bucket: &str, keys: &[String]) -> S3Event {
    let mut event = S3Event::default();
    event.records = keys
        .iter()
        .map(|key| {
            let mut record = S3EventRecord::default();
            record.event_version = Some("2.1".to_owned());
            record.event_source = Some("aws:s3".to_owned());
            record.aws_region = Some("us-east-1".to_owned());
            record.event_name = Some("ObjectCreated:Put".to_owned());
            record.s3.bucket.name = Some(bucket.to_owned());
            record.s3.object.key = Some(
                percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
            record
        })
        .collect();
    event
}
