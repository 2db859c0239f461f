//! Audio objects in S3 (`audio/<user>/<generation>`): presigned upload and download links, the object
//! as S3 has it, and its removal. Keys and links only; the rules are `domain::storage`'s.

use super::StoreError;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use son1k_domain::storage::AudioType;
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
    /// The generation job that wrote it (`x-amz-meta-son1k-job`): the worker accounts for it.
    pub job: Option<String>,
    /// The provider that made it (`x-amz-meta-son1k-provider`).
    pub provider: Option<String>,
}

/// One version of an object (or a delete marker) in the versioned bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version_id: String,
    pub size_bytes: u64,
    pub delete_marker: bool,
}

/// The metadata key naming the job that wrote an object. A presigned upload cannot set it: S3
/// refuses `x-amz-meta-*` headers that were not signed.
pub const JOB_METADATA: &str = "son1k-job";
pub const PROVIDER_METADATA: &str = "son1k-provider";

/// S3's smallest part of a multipart upload (but the last): objects up to this size are one PUT,
/// larger ones go up in parts of this size, so at most one part is ever held in memory.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

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

    pub fn bucket(&self) -> &str {
        self.bucket
    }

    /// A presigned PUT of `key` bound to `content_type` and `size_bytes`, valid for `seconds` from
    /// `now`, that can create the object once: the content type, length and `If-None-Match: *` are
    /// signed headers (S3 refuses an upload without them), and S3 answers `412 Precondition Failed`
    /// to a PUT of a key that exists (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
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
            .if_none_match("*")
            .presigned(signing(now, seconds)?)
            .await
            .map_err(|err| s3_failure("presign PutObject", err))?;
        let mut link = presigned(request, now, seconds);
        // The SDK signs the length but leaves it to the HTTP client; the caller must send it.
        link.headers
            .insert("content-length".into(), size_bytes.to_string());
        Ok(link)
    }

    /// A presigned PUT of `key` of any type and length (a voice recording: its size and container
    /// are checked when it arrives), that can create the object once (`If-None-Match: *` signed).
    pub async fn presign_put_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        seconds: u64,
    ) -> Result<Presigned, StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(self.bucket)
            .key(key)
            .if_none_match("*")
            .presigned(signing(now, seconds)?)
            .await
            .map_err(|err| s3_failure("presign PutObject", err))?;
        Ok(presigned(request, now, seconds))
    }

    /// The first `bytes` bytes of `key` and the object's whole size; `None` when there is none.
    pub async fn head_bytes(
        &self,
        key: &str,
        bytes: u64,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", bytes.saturating_sub(1)))
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            // An empty object has no byte 0: S3 answers 416 to the range.
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 416) =>
            {
                return Ok(Some((Vec::new(), 0)))
            }
            Err(err) => return Err(s3_failure("GetObject range", err)),
        };
        // `Content-Range: bytes 0-N/TOTAL` carries the whole size; without a range answer the
        // length is the object's.
        let total = out
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse().ok())
            .or_else(|| out.content_length().and_then(|n| u64::try_from(n).ok()))
            .unwrap_or(0);
        let body = out
            .body
            .collect()
            .await
            .map_err(|err| StoreError::unavailable("GetObject body", err.to_string()))?;
        Ok(Some((body.into_bytes().to_vec(), total)))
    }

    /// SHA-256 of the object `key`, read as a stream (hex); `None` when there is none.
    pub async fn sha256(&self, key: &str) -> Result<Option<String>, StoreError> {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        let found = self
            .read_into(key, |chunk| {
                hash.update(chunk);
                Ok(())
            })
            .await?;
        Ok(found.then(|| hex::encode(hash.finalize())))
    }

    /// The current objects under `prefix`: key and size.
    pub async fn list_under(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| s3_failure("ListObjectsV2", err))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let size = object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0);
                    out.push((key.to_owned(), size));
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// Streams the object `key` into `sink`, chunk by chunk (never whole in memory); `false` when
    /// there is no such object.
    pub async fn read_into(
        &self,
        key: &str,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<bool, StoreError> {
        let mut out = match self
            .client
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(false)
            }
            Err(err) => return Err(s3_failure("GetObject", err)),
        };
        while let Some(chunk) = out
            .body
            .try_next()
            .await
            .map_err(|err| StoreError::unavailable("GetObject body", err.to_string()))?
        {
            sink(&chunk)
                .map_err(|err| StoreError::unavailable("write the export", err.to_string()))?;
        }
        Ok(true)
    }

    /// Deletes every version and delete marker of every object under `prefix`: what is left is
    /// nothing. How many versions were deleted.
    pub async fn delete_under(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(self.bucket)
                .prefix(prefix)
                .send()
                .await
                .map_err(|err| s3_failure("ListObjectVersions", err))?;
            let versions: Vec<(String, String)> = page
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    page.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                )
                .filter_map(|(key, version)| {
                    Some((key?.to_owned(), version.unwrap_or("null").to_owned()))
                })
                .collect();
            if versions.is_empty() {
                return Ok(deleted);
            }
            for (key, version) in versions {
                self.client
                    .delete_object()
                    .bucket(self.bucket)
                    .key(&key)
                    .version_id(&version)
                    .send()
                    .await
                    .map_err(|err| s3_failure("DeleteObject of a version", err))?;
                deleted += 1;
            }
        }
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
                job: out.metadata().and_then(|m| m.get(JOB_METADATA)).cloned(),
                provider: out
                    .metadata()
                    .and_then(|m| m.get(PROVIDER_METADATA))
                    .cloned(),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            // Never "absent": without s3:ListBucket on the key's prefix S3 answers a missing key
            // with 403 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html), and any
            // other 403 is a policy to fix too.
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 403) =>
            {
                Err(StoreError::misconfigured(
                    "HeadObject",
                    format!(
                        "403 on {key}: the function's role needs s3:GetObject on the key and \
                         s3:ListBucket on the bucket for its prefix ({})",
                        DisplayErrorContext(&err)
                    ),
                ))
            }
            Err(err) => Err(s3_failure("HeadObject", err)),
        }
    }

    /// Deletes every version of `key` (and its delete markers): the bucket is versioned, and a plain
    /// DeleteObject would only hide the bytes behind a delete marker, stored and uncounted until the
    /// noncurrent versions expire. Nothing to delete is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        for version in self.versions(key).await? {
            self.client
                .delete_object()
                .bucket(self.bucket)
                .key(key)
                .version_id(&version.version_id)
                .send()
                .await
                .map_err(|err| s3_failure("DeleteObject of a version", err))?;
        }
        Ok(())
    }

    /// Every version and delete marker of exactly `key`, newest first.
    pub async fn versions(&self, key: &str) -> Result<Vec<Version>, StoreError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(self.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|err| s3_failure("ListObjectVersions", err))?;
            for v in page.versions() {
                if v.key() == Some(key) {
                    out.push(Version {
                        version_id: v.version_id().unwrap_or("null").to_owned(),
                        size_bytes: v.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                        delete_marker: false,
                    });
                }
            }
            for m in page.delete_markers() {
                if m.key() == Some(key) {
                    out.push(Version {
                        version_id: m.version_id().unwrap_or("null").to_owned(),
                        size_bytes: 0,
                        delete_marker: true,
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }
}

/// An object written as it arrives: buffered up to `PART_SIZE`, then sent as a multipart upload part
/// by part. `finish` completes it; `abort` (or an error) leaves no object and no parts behind.
pub struct StreamingUpload<'a> {
    client: &'a Client,
    bucket: &'a str,
    key: String,
    content_type: String,
    job: String,
    provider: String,
    buffer: Vec<u8>,
    multipart: Option<(String, Vec<aws_sdk_s3::types::CompletedPart>)>,
    size: u64,
}

impl<'a> AudioStore<'a> {
    /// Starts writing `key` for `job`, made by `provider` (nothing is sent until the first part is
    /// full or `finish`).
    pub fn upload(
        &self,
        key: &str,
        content_type: &str,
        job: &str,
        provider: &str,
    ) -> StreamingUpload<'a> {
        StreamingUpload {
            client: self.client,
            bucket: self.bucket,
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            job: job.to_owned(),
            provider: provider.to_owned(),
            buffer: Vec::new(),
            multipart: None,
            size: 0,
        }
    }
}

impl StreamingUpload<'_> {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `chunk`, sending full parts as they fill.
    pub async fn write(&mut self, mut chunk: &[u8]) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let room = PART_SIZE.saturating_sub(self.buffer.len());
            let (now, later) = chunk.split_at(room.min(chunk.len()));
            self.buffer.extend_from_slice(now);
            chunk = later;
            if self.buffer.len() >= PART_SIZE && !chunk.is_empty() {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self) -> Result<(), StoreError> {
        if self.multipart.is_none() {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .metadata(JOB_METADATA, &self.job)
                .metadata(PROVIDER_METADATA, &self.provider)
                .send()
                .await
                .map_err(|err| s3_failure("CreateMultipartUpload", err))?;
            let id = out
                .upload_id()
                .ok_or_else(|| StoreError::corrupt("a multipart upload without an id"))?;
            self.multipart = Some((id.to_owned(), Vec::new()));
        }
        let Some((id, parts)) = self.multipart.as_mut() else {
            return Err(StoreError::corrupt("multipart upload lost"));
        };
        let number = i32::try_from(parts.len() + 1).map_err(StoreError::invalid_request)?;
        let body = std::mem::take(&mut self.buffer);
        let out = self
            .client
            .upload_part()
            .bucket(self.bucket)
            .key(&self.key)
            .upload_id(id.as_str())
            .part_number(number)
            .body(body.into())
            .send()
            .await
            .map_err(|err| s3_failure("UploadPart", err))?;
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Completes the object: one PUT if it never filled a part, else the last part and the
    /// multipart completion. Returns the object as stored.
    pub async fn finish(mut self) -> Result<ObjectInfo, StoreError> {
        let etag = match self.multipart.is_some() {
            false => {
                let body = std::mem::take(&mut self.buffer);
                self.client
                    .put_object()
                    .bucket(self.bucket)
                    .key(&self.key)
                    .content_type(&self.content_type)
                    .metadata(JOB_METADATA, &self.job)
                    .metadata(PROVIDER_METADATA, &self.provider)
                    .body(body.into())
                    .send()
                    .await
                    .map_err(|err| s3_failure("PutObject", err))?
                    .e_tag()
                    .map(str::to_owned)
            }
            true => {
                if !self.buffer.is_empty() {
                    self.send_part().await?;
                }
                let Some((id, parts)) = self.multipart.take() else {
                    return Err(StoreError::corrupt("multipart upload lost"));
                };
                let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build();
                let result = self
                    .client
                    .complete_multipart_upload()
                    .bucket(self.bucket)
                    .key(&self.key)
                    .upload_id(&id)
                    .multipart_upload(done)
                    .send()
                    .await;
                match result {
                    Ok(out) => out.e_tag().map(str::to_owned),
                    Err(err) => {
                        let failure = s3_failure("CompleteMultipartUpload", err);
                        self.multipart = Some((id, Vec::new()));
                        self.abort().await;
                        return Err(failure);
                    }
                }
            }
        };
        Ok(ObjectInfo {
            size_bytes: self.size,
            content_type: Some(self.content_type.clone()),
            etag: etag.unwrap_or_default().trim_matches('"').to_owned(),
            job: Some(self.job.clone()),
            provider: Some(self.provider.clone()),
        })
    }

    /// Abandons the object: a started multipart upload is aborted (its parts freed).
    pub async fn abort(self) {
        if let Some((id, _)) = &self.multipart {
            let result = self
                .client
                .abort_multipart_upload()
                .bucket(self.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
            if let Err(err) = result {
                tracing::warn!(error = %DisplayErrorContext(&err), "multipart upload not aborted; the bucket's lifecycle rule removes it");
            }
        }
    }
}
