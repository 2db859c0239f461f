//! What IAM needs for the calls the functions make, where AWS's documented behaviour differs from
//! the action's name, and an S3 interceptor that answers as AWS would under a function's policy.
//!
//! The local stack enforces no IAM, so a missing permission that changes an *answer* (not only a
//! refusal) would pass every other test: S3 answers a HeadObject of a missing key with 403 instead of
//! 404 when the caller may not list the bucket. [`RULES`] states each such rule once, with the AWS
//! page it comes from; the permissions test derives the permissions a function needs from the calls
//! it made through them, and [`S3AsAws`] replays S3's answer under the function's policy from
//! `template.yaml`, so code that reads a 403 as "absent" (or a policy without `s3:ListBucket`) fails
//! here.

use crate::template;
use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_norway::Value;
use std::collections::BTreeSet;

/// One API call as IAM authorises it.
pub struct Rule {
    /// The call: an S3 operation, `TransactWriteItems.<kind>`, `GetParameter` of a SecureString.
    pub call: &'static str,
    /// The IAM actions it needs, each on `object` (the key's folder, `audio/*`), `list` (the bucket,
    /// with `s3:prefix` matching the key's folder), `table` or `key` (the parameter's KMS key).
    pub needs: &'static [(&'static str, &'static str)],
    /// The AWS page that says so.
    pub doc: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        call: "HeadObject",
        // Without s3:ListBucket a missing key answers 403 Forbidden instead of 404 Not Found.
        needs: &[("s3:GetObject", "object"), ("s3:ListBucket", "list")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html",
    },
    Rule {
        call: "GetObject",
        // The same: a missing key is AccessDenied (403) instead of NoSuchKey (404).
        needs: &[("s3:GetObject", "object"), ("s3:ListBucket", "list")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html",
    },
    Rule {
        // A link handed to a client for an object that exists: the client sees 403 if it is gone.
        call: "presigned GetObject",
        needs: &[("s3:GetObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html",
    },
    Rule {
        call: "presigned PutObject",
        needs: &[("s3:PutObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/userguide/PresignedUrlUploadObject.html",
    },
    Rule {
        call: "PutObject",
        needs: &[("s3:PutObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html",
    },
    Rule {
        // CreateMultipartUpload, UploadPart and CompleteMultipartUpload are all s3:PutObject.
        call: "CreateMultipartUpload",
        needs: &[("s3:PutObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html",
    },
    Rule {
        call: "UploadPart",
        needs: &[("s3:PutObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html",
    },
    Rule {
        call: "CompleteMultipartUpload",
        needs: &[("s3:PutObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html",
    },
    Rule {
        call: "AbortMultipartUpload",
        needs: &[("s3:AbortMultipartUpload", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html",
    },
    Rule {
        call: "DeleteObject",
        needs: &[("s3:DeleteObject", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html",
    },
    Rule {
        // Deleting one version of an object is its own action.
        call: "DeleteObjectVersion",
        needs: &[("s3:DeleteObjectVersion", "object")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html",
    },
    Rule {
        // Listing versions is its own action, on the bucket, scoped by s3:prefix like ListBucket.
        call: "ListObjectVersions",
        needs: &[("s3:ListBucketVersions", "list")],
        doc: "https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html",
    },
    Rule {
        // A transaction is authorised item by item; a condition check is an action of its own.
        call: "TransactWriteItems.ConditionCheck",
        needs: &[("dynamodb:ConditionCheckItem", "table")],
        doc: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html",
    },
    Rule {
        call: "TransactWriteItems.Put",
        needs: &[("dynamodb:PutItem", "table")],
        doc: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html",
    },
    Rule {
        call: "TransactWriteItems.Update",
        needs: &[("dynamodb:UpdateItem", "table")],
        doc: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html",
    },
    Rule {
        call: "TransactWriteItems.Delete",
        needs: &[("dynamodb:DeleteItem", "table")],
        doc: "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html",
    },
    Rule {
        // Under the AWS managed key (aws/ssm) IAM on the parameter is enough; under a customer
        // managed key the caller also needs kms:Decrypt on that key.
        call: "GetParameter of a SecureString",
        needs: &[("ssm:GetParameter", "parameter"), ("kms:Decrypt", "key")],
        doc: "https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html",
    },
];

/// The rule of `call`.
pub fn rule(call: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.call == call)
        .unwrap_or_else(|| panic!("no IAM rule for {call}: add it to RULES with its AWS page"))
}

/// The S3 operation a request is, from its method and query (path-style requests).
pub fn s3_operation(method: &str, query: &str) -> &'static str {
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    match method {
        "HEAD" => "HeadObject",
        "GET" if has("versions") => "ListObjectVersions",
        "GET" => "GetObject",
        "PUT" if has("uploadId") => "UploadPart",
        "PUT" => "PutObject",
        "POST" if has("uploads") => "CreateMultipartUpload",
        "POST" => "CompleteMultipartUpload",
        "DELETE" if has("uploadId") => "AbortMultipartUpload",
        "DELETE" if has("versionId") => "DeleteObjectVersion",
        "DELETE" => "DeleteObject",
        other => panic!("an S3 request this test does not know: {other}"),
    }
}

/// The object key of a path-style S3 request or link (`[scheme://host]/<bucket>/<key>[?query]`);
/// empty for a request on the bucket itself.
pub fn s3_key(uri: &str) -> &str {
    let path = uri.split('?').next().unwrap_or_default();
    let path = path.split("://").nth(1).map_or(path, |rest| {
        rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/")
    });
    path.trim_start_matches('/')
        .split_once('/')
        .map_or("", |(_, key)| key)
}

/// The audio bucket's ARN as the template writes it.
pub const BUCKET_ARN: &str =
    "arn:${AWS::Partition}:s3:::${AudioBucketPrefix}-${AWS::AccountId}-${AWS::Region}";

fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// What a function's policy in `template.yaml` allows on the audio bucket: (action, `<folder>/*`)
/// for object ARNs, and (`s3:ListBucket`, `list <pattern>`) for the bucket with its `s3:prefix`
/// condition (`list *` without one).
pub fn s3_grants(logical_id: &str) -> BTreeSet<(String, String)> {
    let t = template();
    let mut out = BTreeSet::new();
    for policy in items(&t["Resources"][logical_id]["Properties"]["Policies"]) {
        for statement in items(&policy["Statement"]) {
            for resource in items(&statement["Resource"]) {
                let Value::Tagged(tagged) = &resource else {
                    continue;
                };
                let Some(arn) = tagged.value.as_str() else {
                    continue;
                };
                let target = if arn == BUCKET_ARN {
                    let prefixes = items(&statement["Condition"]["StringLike"]["s3:prefix"]);
                    if prefixes.is_empty() {
                        vec!["list *".to_owned()]
                    } else {
                        prefixes
                            .iter()
                            .map(|p| format!("list {}", p.as_str().expect("prefix")))
                            .collect()
                    }
                } else if let Some(path) = arn
                    .strip_prefix(BUCKET_ARN)
                    .and_then(|p| p.strip_prefix('/'))
                {
                    vec![path.to_owned()]
                } else {
                    continue;
                };
                for action in items(&statement["Action"]) {
                    for t in &target {
                        out.insert((action.as_str().expect("action").to_owned(), t.clone()));
                    }
                }
            }
        }
    }
    out
}

/// What the S3 calls `(call, folder)` need, by [`RULES`], in the form [`s3_grants`] reads a policy.
pub fn s3_needs(calls: &BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    calls
        .iter()
        .flat_map(|(call, folder)| {
            rule(call).needs.iter().map(move |(action, on)| {
                let target = match *on {
                    "object" => folder.clone(),
                    "list" => format!("list {folder}"),
                    other => panic!("{call}: an S3 call needs {action} on {other}"),
                };
                ((*action).to_owned(), target)
            })
        })
        .collect()
}

/// Whether a `list <pattern>` grant covers `key` (`s3:prefix` is matched with `StringLike`:
/// `*` matches any run of characters; S3 sets it to the key for the 403/404 decision).
fn may_list(grants: &BTreeSet<(String, String)>, key: &str) -> bool {
    grants.iter().any(|(action, target)| {
        action == "s3:ListBucket"
            && target
                .strip_prefix("list ")
                .is_some_and(|pattern| string_like(pattern, key))
    })
}

fn string_like(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, rest)) => {
            value.starts_with(head)
                && (0..=value.len() - head.len())
                    .filter(|&i| value.is_char_boundary(head.len() + i))
                    .any(|i| string_like(rest, &value[head.len() + i..]))
        }
    }
}

/// The request an S3 call sent, kept for the response's hook.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    key: String,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// Answers as S3 does under `grants` (a function's policy): a HeadObject or GetObject of a missing
/// key is 403 unless the policy may list the key's prefix. Everything else passes unchanged.
#[derive(Debug, Clone)]
pub struct S3AsAws {
    grants: BTreeSet<(String, String)>,
}

impl S3AsAws {
    /// Under the policy of the template's function `logical_id`.
    pub fn for_function(logical_id: &str) -> Self {
        Self::with_grants(s3_grants(logical_id))
    }

    pub fn with_grants(grants: BTreeSet<(String, String)>) -> Self {
        Self { grants }
    }
}

impl Intercept for S3AsAws {
    fn name(&self) -> &'static str {
        "S3AsAws"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        cfg.interceptor_state().store_put(Sent {
            method: request.method().to_owned(),
            key: s3_key(request.uri()).to_owned(),
        });
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(sent) = cfg.load::<Sent>() else {
            return Ok(());
        };
        let response = context.response_mut();
        let reads = matches!(sent.method.as_str(), "HEAD" | "GET") && !sent.key.is_empty();
        if reads && response.status().as_u16() == 404 && !may_list(&self.grants, &sent.key) {
            *response.status_mut() = 403u16.try_into().expect("403");
            let body = if sent.method == "HEAD" {
                String::new()
            } else {
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                 <Message>Access Denied</Message></Error>"
                    .to_owned()
            };
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(body);
            response.headers_mut().remove("content-length");
        }
        Ok(())
    }
}
