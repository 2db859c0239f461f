//! Audio objects in S3 (`audio/<user>/<generation>`): presigned upload and download links, the object
//! as S3 has it, and its removal. Keys and links only; the rules are `domain::storage`'s.

use super::StoreError;
use crate::domain::storage::AudioType;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// A presigned request: where, how, and the headers the client must send exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// An object as S3 has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size_bytes: u64,
    pub content_type: Option<String>,
    pub etag: String,
}

fn s3_failure<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::unavailable(operation, DisplayErrorContext(&err).to_string())
}

fn signing(now: DateTime<Utc>, seconds: u64) -> Result<PresigningConfig, StoreError> {
    let start = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(now.timestamp()).unwrap_or_default());
    PresigningConfig::builder()
        .start_time(start)
        .expires_in(Duration::from_secs(seconds))
        .build()
        .map_err(StoreError::invalid_request)
}

fn presigned(
    request: aws_sdk_s3::presigning::PresignedRequest,
    now: DateTime<Utc>,
    seconds: u64,
) -> Presigned {
    Presigned {
        url: request.uri().to_owned(),
        method: request.method().to_owned(),
        headers: request
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect(),
        expires_at: now + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(0)),
    }
}

/// Access to the audio bucket.
#[derive(Debug, Clone, Copy)]
pub struct AudioStore<'a> {
    client: &'a Client,
    bucket: &'a str,
}

impl<'a> AudioStore<'a> {
    pub fn new(client: &'a Client, bucket: &'a str) -> Self {
        Self { client, bucket }
    }

    /// A presigned PUT of `key` bound to `content_type` and `size_bytes`, valid for `seconds` from
    /// `now`. The content type and length are signed headers: S3 refuses an upload without them.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: AudioType,
        size_bytes: u64,
        now: DateTime<Utc>,
        seconds: u64,
    ) -> Result<Presigned, StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(self.bucket)
            .key(key)
            .content_type(content_type.as_str())
            .content_length(i64::try_from(size_bytes).map_err(StoreError::invalid_request)?)
            .presigned(signing(now, seconds)?)
            .await
            .map_err(|err| s3_failure("presign PutObject", err))?;
        let mut link = presigned(request, now, seconds);
        // The SDK signs the length but leaves it to the HTTP client; the caller must send it.
        link.headers
            .insert("content-length".into(), size_bytes.to_string());
        Ok(link)
    }

    /// A presigned GET of `key`, valid for `seconds` from `now`.
    pub async fn presign_get(
        &self,
        key: &str,
        now: DateTime<Utc>,
        seconds: u64,
    ) -> Result<Presigned, StoreError> {
        let request = self
            .client
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .presigned(signing(now, seconds)?)
            .await
            .map_err(|err| s3_failure("presign GetObject", err))?;
        Ok(presigned(request, now, seconds))
    }

    /// The object under `key`; `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size_bytes: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                content_type: out.content_type().map(str::to_owned),
                etag: out.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(s3_failure("HeadObject", err)),
        }
    }

    /// Removes the object under `key` (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| s3_failure("DeleteObject", err))
    }
}
