//! Records which DynamoDB actions a function performs on which table, as IAM sees them: a
//! `TransactWriteItems` is authorised item by item as `PutItem`, `UpdateItem`, `DeleteItem` or
//! `ConditionCheckItem`. The permissions test compares this with the function's policy in
//! `template.yaml`, so a missing permission fails here instead of in production.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// (IAM action such as `dynamodb:GetItem`, table name)
pub type Access = (String, String);

#[derive(Debug, Clone, Default)]
pub struct AccessRecorder {
    seen: Arc<Mutex<BTreeSet<Access>>>,
}

impl AccessRecorder {
    pub fn take(&self) -> BTreeSet<Access> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

fn accesses(operation: &str, body: &serde_json::Value) -> Vec<Access> {
    let table = |v: &serde_json::Value| v["TableName"].as_str().unwrap_or_default().to_owned();
    match operation {
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| {
                [
                    ("Put", "PutItem"),
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                ]
                .into_iter()
                .filter(|(kind, _)| item.get(*kind).is_some())
                .map(|(kind, action)| (format!("dynamodb:{action}"), table(&item[kind])))
                .collect::<Vec<_>>()
            })
            .collect(),
        "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| ("dynamodb:GetItem".to_owned(), table(&item["Get"])))
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.keys())
            .map(|name| (format!("dynamodb:{operation}"), name.clone()))
            .collect(),
        // IAM authorises a query of an index on the index's own ARN.
        _ => match body["IndexName"].as_str() {
            Some(index) => vec![(
                format!("dynamodb:{operation}"),
                format!("{}/index/{index}", table(body)),
            )],
            None => vec![(format!("dynamodb:{operation}"), table(body))],
        },
    }
}

impl Intercept for AccessRecorder {
    fn name(&self) -> &'static str {
        "AccessRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target);
        let body: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        self.seen
            .lock()
            .expect("lock")
            .extend(accesses(operation, &body));
        Ok(())
    }
}

/// Records which S3 actions a function performs on which keys, as IAM sees them (`HeadObject` is
/// authorised as `s3:GetObject`), with the key reduced to its top folder (`audio/*`).
#[derive(Debug, Clone, Default)]
pub struct S3AccessRecorder {
    seen: Arc<Mutex<BTreeSet<Access>>>,
}

impl S3AccessRecorder {
    pub fn take(&self) -> BTreeSet<Access> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }

    /// What a presigned link the function handed out lets its holder do, with the function's rights.
    pub fn presigned(&self, method: &str, url: &str) {
        let path = url.split('?').next().unwrap_or(url);
        self.seen
            .lock()
            .expect("lock")
            .insert(s3_access(method, path));
    }
}

/// (IAM action, `<folder>/*`) for a path-style request `METHOD /bucket/folder/...`.
fn s3_access(method: &str, path: &str) -> Access {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let path = path.split('?').next().unwrap_or(path);
    let action = match method {
        "GET" | "HEAD" => "s3:GetObject",
        // PutObject, UploadPart, and (POST) CreateMultipartUpload, CompleteMultipartUpload.
        "PUT" | "POST" => "s3:PutObject",
        "DELETE" if query.contains("uploadId=") => "s3:AbortMultipartUpload",
        "DELETE" => "s3:DeleteObject",
        other => other,
    };
    let path = path.split("://").nth(1).map_or(path, |rest| {
        rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/")
    });
    let folder = path.trim_start_matches('/').split('/').nth(1).unwrap_or("");
    (action.to_owned(), format!("{folder}/*"))
}

impl aws_sdk_s3::config::Intercept for S3AccessRecorder {
    fn name(&self) -> &'static str {
        "S3AccessRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let access = s3_access(request.method(), request.uri());
        self.seen.lock().expect("lock").insert(access);
        Ok(())
    }
}
