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
                ["Put", "Update", "Delete", "ConditionCheck"]
                    .into_iter()
                    .filter(|kind| item.get(*kind).is_some())
                    .flat_map(|kind| {
                        crate::iam::rule(&format!("TransactWriteItems.{kind}"))
                            .needs
                            .iter()
                            .map(move |(action, _)| ((*action).to_owned(), table(&item[kind])))
                    })
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

/// Records which S3 calls a function makes on which keys, with the key reduced to its top folder
/// (`audio/*`): (`HeadObject`, `audio/*`). `crate::iam::s3_needs` turns them into the permissions
/// they need.
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
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let call = format!("presigned {}", crate::iam::s3_operation(method, query));
        self.seen.lock().expect("lock").insert((call, folder(path)));
    }
}

/// `<folder>/*` of a path-style request `/bucket/folder/...` (or a full URL).
fn folder(uri: &str) -> String {
    let folder = crate::iam::s3_key(uri).split('/').next().unwrap_or("");
    format!("{folder}/*")
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
        let (path, query) = request.uri().split_once('?').unwrap_or((request.uri(), ""));
        // Presigning runs the request up to here too, signed in its query: the test records what
        // the link lets its holder do with `presigned`.
        if query.contains("X-Amz-Signature=") {
            return Ok(());
        }
        let call = crate::iam::s3_operation(request.method(), query);
        // A listing names its folder in `prefix=`, not in its path.
        let listed = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("prefix="))
            .map(|prefix| {
                let prefix = prefix.replace("%2F", "/").replace("%2f", "/");
                format!("{}/*", prefix.split('/').next().unwrap_or(""))
            });
        self.seen
            .lock()
            .expect("lock")
            .insert((call.to_owned(), listed.unwrap_or_else(|| folder(path))));
        Ok(())
    }
}
