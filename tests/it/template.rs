//! `template.yaml` declares what the code uses: the tables of `store/schema.rs`, a function per route
//! with the right authorization, and a private bucket. cfn-lint checks CloudFormation's rules; this
//! checks ours (cfn-lint would not notice a table whose index differs from the code's).

use serde_norway::Value;
use son1k_http::routes::ROUTES;
use son1k_store::schema::{self, IndexProjection, TABLES};
use son1k_tests::template;
use std::collections::BTreeSet;

/// (name, key schema, projection) of one index.
type IndexShape = (String, Vec<(String, String)>, String);

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn key_schema(v: &Value) -> Vec<(String, String)> {
    v.as_sequence()
        .expect("KeySchema list")
        .iter()
        .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
        .collect()
}

fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn tables_match_the_schema_the_code_uses() {
    let t = template();
    for table in TABLES {
        let res = &t["Resources"][table.logical_id];
        assert_eq!(res["Type"], "AWS::DynamoDB::Table", "{}", table.logical_id);
        let props = &res["Properties"];
        assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(
            key_schema(&props["KeySchema"]),
            vec![
                (schema::PK.into(), "HASH".into()),
                (schema::SK.into(), "RANGE".into())
            ]
        );
        let declared: BTreeSet<(String, String)> = props["AttributeDefinitions"]
            .as_sequence()
            .expect("attributes")
            .iter()
            .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
            .collect();
        let wanted: BTreeSet<(String, String)> = table
            .attributes()
            .iter()
            .map(|a| (a.name.to_owned(), a.kind.as_str().to_owned()))
            .collect();
        assert_eq!(
            declared, wanted,
            "{} attribute definitions",
            table.logical_id
        );

        let declared: BTreeSet<IndexShape> = props["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|gsis| {
                gsis.iter()
                    .map(|g| {
                        (
                            text(&g["IndexName"]),
                            key_schema(&g["KeySchema"]),
                            text(&g["Projection"]["ProjectionType"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let wanted: BTreeSet<IndexShape> = table
            .indexes
            .iter()
            .map(|i| {
                let mut keys = vec![(i.pk.name.to_owned(), "HASH".to_owned())];
                keys.extend(i.sk.map(|sk| (sk.name.to_owned(), "RANGE".to_owned())));
                (i.name.to_owned(), keys, i.projection.as_str().to_owned())
            })
            .collect();
        assert_eq!(declared, wanted, "{} indexes", table.logical_id);
        assert_eq!(
            props["TimeToLiveSpecification"]["AttributeName"],
            schema::TTL_ATTRIBUTE
        );
        assert_eq!(props["TimeToLiveSpecification"]["Enabled"], true);
        let stream = props["StreamSpecification"]["StreamViewType"].as_str();
        assert_eq!(
            stream,
            table.stream.then_some("NEW_IMAGE"),
            "{} stream",
            table.logical_id
        );
    }
    assert!(TABLES.iter().any(|t| t
        .indexes
        .iter()
        .any(|i| i.projection == IndexProjection::KeysOnly)));
}

#[test]
fn every_route_is_served_by_its_function_with_the_right_authorization() {
    let t = template();
    for route in ROUTES {
        let res = &t["Resources"][pascal(route.function).as_str()];
        assert_eq!(
            res["Type"], "AWS::Serverless::Function",
            "{} has a function resource",
            route.function
        );
        assert_eq!(res["Metadata"]["BuildProperties"]["Binary"], route.function);
        let events = res["Properties"]["Events"].as_mapping().expect("events");
        let event = events
            .values()
            .find(|e| {
                e["Type"] == "HttpApi"
                    && e["Properties"]["Path"] == route.path
                    && e["Properties"]["Method"] == route.method
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} {} is routed to {}",
                    route.method, route.path, route.function
                )
            });
        let public = event["Properties"]["Auth"]["Authorizer"] == "NONE";
        assert_eq!(
            public, route.public,
            "{} {} public",
            route.method, route.path
        );
    }
}

#[test]
fn browser_preflights_reach_an_unauthenticated_route_and_cors_matches_the_local_api() {
    let t = template();
    let events = t["Resources"]["Fallback"]["Properties"]["Events"]
        .as_mapping()
        .expect("events");
    let preflight = events
        .values()
        .find(|e| e["Properties"]["Method"] == "OPTIONS")
        .expect("an OPTIONS route on the fallback function");
    assert_eq!(preflight["Type"], "HttpApi");
    assert_eq!(preflight["Properties"]["Path"], "/{proxy+}");
    assert_eq!(
        preflight["Properties"]["Auth"]["Authorizer"], "NONE",
        "a preflight carries no token"
    );
    let cors = &t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let list = |v: &Value| -> String {
        v.as_sequence()
            .expect("a list")
            .iter()
            .map(text)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(list(&cors["AllowMethods"]), local_api::CORS_ALLOW_METHODS);
    assert_eq!(list(&cors["AllowHeaders"]), local_api::CORS_ALLOW_HEADERS);
    assert_eq!(list(&cors["ExposeHeaders"]), local_api::CORS_EXPOSE_HEADERS);
    for header in [
        "retry-after",
        "allow",
        son1k_http::request::REQUEST_ID_HEADER,
    ] {
        assert!(local_api::CORS_EXPOSE_HEADERS
            .split(',')
            .any(|h| h == header));
    }
}

#[test]
fn the_api_is_throttled_by_default_and_costly_routes_more() {
    let t = template();
    let api = &t["Resources"]["HttpApi"]["Properties"];
    let limit = |settings: &Value, key: &str| -> String {
        let Value::Tagged(tagged) = &settings[key] else {
            panic!("{key} is a !Ref to a parameter: {settings:?}")
        };
        let parameter = text(&tagged.value);
        assert_eq!(t["Parameters"][parameter.as_str()]["Type"], "Number");
        parameter
    };
    let default = &api["DefaultRouteSettings"];
    assert_eq!(limit(default, "ThrottlingRateLimit"), "ApiThrottleRate");
    assert_eq!(limit(default, "ThrottlingBurstLimit"), "ApiThrottleBurst");
    let routes = api["RouteSettings"].as_mapping().expect("route settings");
    for costly in [
        "POST /api/tiers/record-generation",
        "POST /api/tiers/checkout",
        "POST /api/tiers/portal",
        "GET /api/analytics/summary",
    ] {
        assert!(
            routes.keys().any(|k| text(k) == costly),
            "{costly} has its own limit"
        );
    }
    for (key, settings) in routes {
        let key = text(key);
        let (method, path) = key.split_once(' ').expect("METHOD /path");
        assert!(
            ROUTES.iter().any(|r| r.method == method && r.path == path),
            "{key} is a route"
        );
        limit(settings, "ThrottlingRateLimit");
        limit(settings, "ThrottlingBurstLimit");
    }
}

#[test]
fn every_function_crate_is_deployed_and_every_function_is_a_crate() {
    let t = template();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
    let crates: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("functions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let deployed: BTreeSet<String> = t["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| {
            let binary = text(&r["Metadata"]["BuildProperties"]["Binary"]);
            assert_eq!(
                text(id),
                pascal(&binary),
                "logical id is the crate name in PascalCase"
            );
            assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda");
            binary
        })
        .collect();
    assert_eq!(deployed, crates);
}

#[test]
fn the_api_authorizes_with_cognito_jwts_by_default() {
    let t = template();
    let auth = &t["Resources"]["HttpApi"]["Properties"]["Auth"];
    let name = text(&auth["DefaultAuthorizer"]);
    let authorizer = &auth["Authorizers"][name.as_str()];
    assert_eq!(
        authorizer["IdentitySource"],
        "$request.header.Authorization"
    );
    assert!(authorizer["JwtConfiguration"]["issuer"].is_tagged_or_string());
    assert_eq!(t["Resources"]["UserPool"]["Type"], "AWS::Cognito::UserPool");
    assert_eq!(
        t["Resources"]["AdminGroup"]["Properties"]["GroupName"],
        "admin"
    );
}

#[test]
fn the_bucket_is_private_and_encrypted() {
    let t = template();
    let props = &t["Resources"]["AudioBucket"]["Properties"];
    assert_blocks_public_access(props);
    let rule = &props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert!(rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"].is_string());
    let lifecycle = &props["LifecycleConfiguration"]["Rules"];
    assert!(
        lifecycle
            .as_sequence()
            .expect("rules")
            .iter()
            .any(|r| r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].is_number()),
        "incomplete multipart uploads are aborted"
    );
    // Versioned, and what is overwritten or deleted (counted nowhere) is gone after a day.
    assert_eq!(props["VersioningConfiguration"]["Status"], "Enabled");
    assert!(
        lifecycle
            .as_sequence()
            .expect("rules")
            .iter()
            .any(|r| r["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1),
        "noncurrent versions expire after a day"
    );
    let cors = &props["CorsConfiguration"]["CorsRules"][0];
    // A browser sends the upload link's signed If-None-Match.
    assert!(cors["AllowedHeaders"]
        .as_sequence()
        .expect("headers")
        .contains(&"if-none-match".into()));
    let Value::Tagged(origin) = &cors["AllowedOrigins"][0] else {
        panic!("CORS origin must be !Ref FrontendUrl: {cors:?}")
    };
    assert_eq!(origin.value, "FrontendUrl");
    assert!(cors["AllowedMethods"]
        .as_sequence()
        .expect("methods")
        .contains(&"PUT".into()));
    let policy =
        &t["Resources"]["AudioBucketTlsOnly"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        (
            policy["Effect"].as_str(),
            policy["Condition"]["Bool"]["aws:SecureTransport"].as_str()
        ),
        (Some("Deny"), Some("false")),
        "TLS only"
    );
}

/// A bucket's properties turn on all four of S3's blocks of public access.
fn assert_blocks_public_access(props: &Value) {
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            props["PublicAccessBlockConfiguration"][flag], true,
            "{flag}"
        );
    }
}

/// S3 reports every object created under `audio/` to storage-events, and to nothing else.
#[test]
fn created_audio_objects_reach_storage_events() {
    let t = template();
    let event = &t["Resources"]["StorageEvents"]["Properties"]["Events"]["AudioCreated"];
    assert_eq!(event["Type"], "S3");
    let Value::Tagged(bucket) = &event["Properties"]["Bucket"] else {
        panic!("the bucket must be !Ref AudioBucket")
    };
    assert_eq!(bucket.value, "AudioBucket");
    assert_eq!(event["Properties"]["Events"], "s3:ObjectCreated:*");
    let rule = &event["Properties"]["Filter"]["S3Key"]["Rules"][0];
    assert_eq!(
        (rule["Name"].as_str(), rule["Value"].as_str()),
        (Some("prefix"), Some("audio/"))
    );
}

trait TaggedOrString {
    fn is_tagged_or_string(&self) -> bool;
}

impl TaggedOrString for Value {
    fn is_tagged_or_string(&self) -> bool {
        matches!(self, Value::Tagged(_) | Value::String(_))
    }
}

#[test]
fn scheduled_reset_runs_daily_and_monthly_at_midnight_utc() {
    let t = template();
    let events = &t["Resources"]["ScheduledReset"]["Properties"]["Events"];
    let schedules: BTreeSet<(String, String)> = events
        .as_mapping()
        .expect("events")
        .values()
        .filter(|e| e["Type"] == "Schedule")
        .map(|e| {
            let input: serde_json::Value =
                serde_json::from_str(&text(&e["Properties"]["Input"])).expect("input is JSON");
            (
                text(&e["Properties"]["Schedule"]),
                input["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        schedules,
        BTreeSet::from([
            ("cron(0 0 * * ? *)".to_owned(), "daily".to_owned()),
            ("cron(0 0 1 * ? *)".to_owned(), "monthly".to_owned())
        ])
    );
}

/// A spend's in-flight marker stands for as long as its request may still run (record-generation's
/// timeout): a shorter one would let a parallel copy of the request spend a second unit while the
/// original is on its way to its record.
#[test]
fn an_in_flight_marker_outlives_record_generations_timeout() {
    let template = template();
    let timeout = template["Resources"]["RecordGeneration"]["Properties"]["Timeout"]
        .as_u64()
        .or_else(|| template["Globals"]["Function"]["Timeout"].as_u64())
        .expect("a timeout");
    let kept = son1k_store::generations::INFLIGHT_KEPT.num_seconds();
    assert!(
        i64::try_from(timeout).expect("seconds") < kept,
        "Timeout {timeout} s, markers kept {kept} s"
    );
}

/// Lyric Studio and Pixel answer before their function's timeout, and that before API Gateway's 30 s
/// integration limit, even when every call hangs to its timeout: lyrics asks the model at most twice
/// between two store calls (take; store or give back), Pixel once between four rounds of store calls
/// (the conversation, the take, the facts read together, the save or the give back).
#[test]
fn language_model_calls_fit_the_function_and_the_api_timeouts() {
    let template = template();
    let store = son1k_app::config::Config::with_prefix("t").aws_operation_timeout;
    for (function, model_calls, store_rounds) in [("LyricsCreate", 2, 2), ("PixelChat", 1, 4)] {
        let props = &template["Resources"][function]["Properties"];
        let timeout = props["Timeout"].as_u64().expect("a timeout");
        let model_ms: u64 = props["Environment"]["Variables"]["OLLAMA_TIMEOUT_MS"]
            .as_str()
            .and_then(|ms| ms.parse().ok())
            .expect("OLLAMA_TIMEOUT_MS");
        let worst = std::time::Duration::from_millis(model_ms) * model_calls + store * store_rounds;
        assert!(
            worst < std::time::Duration::from_secs(timeout) && timeout < 30,
            "{function}: worst case {worst:?}, Timeout {timeout} s, API Gateway 30 s"
        );
        let url = format!("{:?}", props["Environment"]["Variables"]["OLLAMA_URL"]);
        assert!(
            url.contains("Ref") && url.contains("OllamaUrl"),
            "{function}: the URL is the OllamaUrl parameter, not {url}"
        );
    }
}

/// The jobs' timing holds together: a submission ends before its reservation stops standing for it; a
/// worker run lives exactly as long as its lease; the queue hides a message longer than a run, so a
/// message comes back only after its run ended or died and its lease ran out; the dead-letter queue
/// catches a job that keeps failing; the worker reports partial batch failures.
#[test]
fn the_jobs_timing_and_queues_hold_together() {
    let template = template();
    let resources = &template["Resources"];
    let seconds = |function: &str| {
        resources[function]["Properties"]["Timeout"]
            .as_u64()
            .expect("a timeout")
    };
    // A parallel copy of a submission waits for its original while the original may still run: a
    // reservation older than INFLIGHT_KEPT without a job is of a submission that died.
    let kept = u64::try_from(son1k_store::generations::INFLIGHT_KEPT.num_seconds()).expect("kept");
    assert!(seconds("GenerationSubmit") < kept);
    let lease = u64::try_from(son1k_app::jobs::LEASE.num_seconds()).expect("lease");
    assert_eq!(seconds("GenerationWorker"), lease);
    let queue = &resources["JobsQueue"]["Properties"];
    assert!(queue["VisibilityTimeout"].as_u64().expect("visibility") > lease);
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64(), Some(5));
    let source = &resources["GenerationWorker"]["Properties"]["Events"]["Jobs"]["Properties"];
    assert_eq!(
        source["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    // Every delivery of one message ends before the reservation stops counting.
    let reservation = son1k_domain::jobs::RESERVATION_TTL.num_seconds();
    assert!(i64::try_from(lease).expect("lease") * 2 < reservation);
}

/// No key is in any function's environment (CloudFormation would resolve a dynamic reference once,
/// at deploy, into configuration anyone with `lambda:GetFunctionConfiguration` reads, and would not
/// read it again after a rotation): a function that needs a key is given the *name* of its secret
/// and may `secretsmanager:GetSecretValue` exactly that secret, nothing else; no other function may
/// read any secret; no parameter defaults to a key.
#[test]
fn keys_are_read_from_secrets_manager_by_exactly_the_functions_that_use_them() {
    let template = template();
    let readers = [
        (
            "STRIPE_SECRET_NAME",
            "StripeSecretName",
            &[
                "AccountWorker",
                "Checkout",
                "Portal",
                "StripeWebhook",
                "TiersPreview",
            ][..],
        ),
        ("APP_SECRET_NAME", "AppSecretName", &["PoolList"][..]),
    ];
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let text = |v: &Value| format!("{v:?}");
    assert!(
        !text(&template["Resources"]).contains("resolve:secretsmanager"),
        "a dynamic reference puts the key in an environment"
    );
    for (id, resource) in template["Resources"].as_mapping().expect("resources") {
        let id = id.as_str().expect("id");
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let mut granted = BTreeSet::new();
        for policy in resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions = text(&statement["Action"]);
                if actions.contains("secretsmanager") {
                    assert_eq!(
                        statement["Action"].as_sequence().map(Vec::len),
                        Some(1),
                        "{id}: only GetSecretValue"
                    );
                    assert!(actions.contains("secretsmanager:GetSecretValue"), "{id}");
                    let Value::Tagged(sub) = &statement["Resource"] else {
                        panic!("{id}: a secret's ARN must be a !Sub of its name parameter")
                    };
                    granted.insert(sub.value.as_str().expect("an ARN").to_owned());
                }
            }
        }
        let mut wanted = BTreeSet::new();
        for (variable, parameter, functions) in readers {
            assert!(
                globals.get(variable).is_none(),
                "{variable} must not be global"
            );
            let value = &resource["Properties"]["Environment"]["Variables"][variable];
            if !functions.contains(&id) {
                assert!(value.is_null(), "{id} gets {variable} but does not use it");
                continue;
            }
            let Value::Tagged(reference) = value else {
                panic!("{id}: {variable} must be !Ref {parameter}, got {value:?}")
            };
            assert_eq!(
                (reference.tag.to_string(), &reference.value),
                ("!Ref".into(), &Value::from(parameter)),
                "{id}: {variable}"
            );
            // Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
            wanted.insert(format!(
                "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{{parameter}}}-??????"
            ));
        }
        assert_eq!(granted, wanted, "{id}: the secrets it may read");
        for (name, value) in resource["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            let name = name.as_str().expect("name");
            assert!(
                !["KEY", "SECRET", "TOKEN", "PASSWORD"]
                    .iter()
                    .any(|w| name.ends_with(w)),
                "{id}: {name} = {value:?} looks like a key in the environment"
            );
        }
    }
    for (name, parameter) in template["Parameters"].as_mapping().expect("parameters") {
        let default = parameter["Default"].as_str().unwrap_or_default();
        assert!(
            !["sk_", "rk_", "whsec_"]
                .iter()
                .any(|p| default.starts_with(p)),
            "parameter {name:?} defaults to a key"
        );
    }
}

/// What holds users' data is kept when the stack is deleted or a change replaces it, except when
/// the stack's first create rolls back: a fixed bucket name left behind would make the next deploy
/// fail with "already exists" (`RetainExceptOnCreate`,
/// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
#[test]
fn stored_data_is_kept_and_a_failed_first_deploy_can_be_retried() {
    let t = template();
    let stateful = [
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::Cognito::UserPool",
    ];
    let mut seen = Vec::new();
    for (name, resource) in t["Resources"].as_mapping().expect("resources") {
        let kind = text(&resource["Type"]);
        if !stateful.contains(&kind.as_str()) {
            continue;
        }
        let name = text(name);
        assert_eq!(
            (
                resource["DeletionPolicy"].as_str(),
                resource["UpdateReplacePolicy"].as_str()
            ),
            (Some("RetainExceptOnCreate"), Some("Retain")),
            "{name} ({kind})"
        );
        seen.push(kind);
    }
    for kind in stateful {
        assert!(seen.iter().any(|k| k == kind), "no {kind} checked");
    }
}

/// With JSON logs Lambda drops application logs below its ApplicationLogLevel (INFO unless set):
/// `LogLevel` sets it for every function, each of its values mapped to Lambda's spelling.
/// https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
#[test]
fn the_log_level_parameter_sets_lambdas_own_log_filter() {
    let t = template();
    let logging = &t["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"], "JSON");
    let Value::Tagged(find) = &logging["ApplicationLogLevel"] else {
        panic!("ApplicationLogLevel must follow LogLevel: {logging:?}")
    };
    assert_eq!(find.tag, "!FindInMap");
    assert_eq!(find.value[0], "LambdaLogLevel");
    let Value::Tagged(by) = &find.value[1] else {
        panic!("keyed by !Ref LogLevel")
    };
    assert_eq!(
        (by.tag.to_string(), &by.value),
        ("!Ref".into(), &"LogLevel".into())
    );
    let lambda_levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    for level in t["Parameters"]["LogLevel"]["AllowedValues"]
        .as_sequence()
        .expect("LogLevel's values")
    {
        let mapped = &t["Mappings"]["LambdaLogLevel"][text(level).as_str()]["Level"];
        assert!(
            mapped
                .as_str()
                .is_some_and(|m| lambda_levels.contains(&m) && m.eq_ignore_ascii_case(&text(level))),
            "LogLevel {level:?} maps to {mapped:?}"
        );
    }
}

/// Submissions know whether the worker has a provider (the same parameter), and a deploy without
/// one says what that means in its outputs.
#[test]
fn submit_and_worker_read_the_same_providers_and_a_deploy_without_one_says_so() {
    let t = template();
    for function in ["GenerationSubmit", "GenerationWorker"] {
        let Value::Tagged(value) = &t["Resources"][function]["Properties"]["Environment"]
            ["Variables"]["GENERATION_PROVIDERS"]
        else {
            panic!("{function}: GENERATION_PROVIDERS must be !Ref GenerationProviders")
        };
        assert_eq!(
            (value.tag.to_string(), &value.value),
            ("!Ref".into(), &"GenerationProviders".into()),
            "{function}"
        );
    }
    assert_eq!(t["Parameters"]["GenerationProviders"]["Default"], "[]");
    let output = format!("{:?}", t["Outputs"]["GenerationProviders"]["Value"]);
    assert!(
        output.contains("NoGenerationProviders") && output.contains("no_provider_configured"),
        "{output}"
    );
}

/// Operating it: the worker cannot take the account's concurrency, Stripe's deliveries keep some,
/// storage-events' failed events are kept, and what needs a person raises an alarm.
#[test]
fn the_stack_bounds_its_worker_keeps_failed_events_and_alarms() {
    let t = template();
    let resources = &t["Resources"];
    let tagged = |v: &Value| match v {
        Value::Tagged(tagged) => (tagged.tag.to_string(), tagged.value.clone()),
        other => panic!("expected an intrinsic function, got {other:?}"),
    };
    // The jobs queue's trigger: at most WorkerMaxConcurrency workers at once.
    let jobs = &resources["GenerationWorker"]["Properties"]["Events"]["Jobs"]["Properties"];
    assert_eq!(
        tagged(&jobs["ScalingConfig"]["MaximumConcurrency"]),
        ("!Ref".into(), "WorkerMaxConcurrency".into())
    );
    assert!(t["Parameters"]["WorkerMaxConcurrency"]["MinValue"].as_u64() >= Some(2));
    // The webhook's reserved concurrency (none when the parameter is 0).
    let (tag, value) =
        tagged(&resources["StripeWebhook"]["Properties"]["ReservedConcurrentExecutions"]);
    assert_eq!(tag, "!If");
    assert_eq!(value[0], "ReserveWebhookConcurrency");
    // An S3 event storage-events could not account goes to a queue, not away.
    let on_failure = &resources["StorageEvents"]["Properties"]["EventInvokeConfig"]
        ["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"], "SQS");
    assert_eq!(
        tagged(&on_failure["Destination"]),
        ("!GetAtt".into(), "StorageEventsFailures.Arn".into())
    );
    // Alarms, each notifying the topic when one is given.
    let mut watched = BTreeSet::new();
    for (name, resource) in resources.as_mapping().expect("resources") {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let props = &resource["Properties"];
        let (tag, value) = tagged(&props["AlarmActions"]);
        assert_eq!(
            (tag.as_str(), &value[0]),
            ("!If", &"HasAlarmTopic".into()),
            "{name:?}"
        );
        let dimension = props["Dimensions"][0]["Value"].clone();
        let watched_resource = match &dimension {
            Value::Null => props["Metrics"][1]["MetricStat"]["Metric"]["MetricName"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
            other => tagged(other)
                .1
                .as_str()
                .unwrap_or("?")
                .trim_end_matches(".QueueName")
                .to_owned(),
        };
        watched.insert(format!(
            "{} {}",
            props["MetricName"].as_str().unwrap_or("API"),
            watched_resource
        ));
    }
    for expected in [
        "ApproximateNumberOfMessagesVisible JobsDeadLetterQueue",
        "ApproximateNumberOfMessagesVisible StorageEventsFailures",
        "Errors GenerationWorker",
        "Errors StorageEvents",
        "Errors ScheduledReset",
        "Errors StripeWebhook",
        "Throttles StripeWebhook",
        "API 5xx",
    ] {
        assert!(
            watched.contains(expected),
            "no alarm on {expected}: {watched:?}"
        );
    }
}

/// The language model is reached over the internet (no function runs in a VPC): its URL must be
/// https, and a deploy with a URL and no key is refused by a rule.
#[test]
fn the_language_model_endpoint_is_https_and_keyed() {
    let t = template();
    assert_eq!(
        t["Parameters"]["OllamaUrl"]["AllowedPattern"],
        "(https://[^\\s]+)?"
    );
    let rule = &t["Rules"]["OllamaNeedsKey"];
    assert!(
        format!("{rule:?}").contains("OllamaUrl")
            && format!("{rule:?}").contains("OllamaKeyParameter"),
        "{rule:?}"
    );
    for (id, resource) in t["Resources"].as_mapping().expect("resources") {
        assert!(
            resource["Properties"]["VpcConfig"].is_null(),
            "{id:?} runs in a VPC: the docs say none does"
        );
    }
}

/// `FrontendUrl` is an https origin (no path, no trailing slash: CORS compares origins exactly);
/// `http://localhost` is allowed only through `LocalFrontendUrl`, a dev stage's explicit parameter.
#[test]
fn the_frontend_is_an_https_origin_and_localhost_only_when_asked() {
    let t = template();
    let pattern = |name: &str| {
        let p = text(&t["Parameters"][name]["AllowedPattern"]);
        move |value: &str| full_match(&p, value)
    };
    let frontend = pattern("FrontendUrl");
    for good in ["https://app.example.com", "https://app.example.com:8443"] {
        assert!(frontend(good), "{good}");
    }
    for bad in [
        "http://localhost:3000",
        "http://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/app",
        "",
    ] {
        assert!(!frontend(bad), "{bad:?}");
    }
    assert!(
        t["Parameters"]["FrontendUrl"]["Default"].is_null(),
        "no default: say which"
    );
    let local = pattern("LocalFrontendUrl");
    assert!(local("") && local("http://localhost:3000"));
    assert!(!local("http://example.com") && !local("https://localhost:3000"));
    assert_eq!(t["Parameters"]["LocalFrontendUrl"]["Default"], "");
}

/// The web app signs in through Cognito's hosted UI with the authorization code and PKCE: a public
/// client (no secret) that may return only to the app's own `/callback` (and the local one only
/// when asked), and never the implicit flow, which would put the token in the URL.
#[test]
fn the_web_app_signs_in_with_the_code_flow_back_to_its_own_origin() {
    let t = template();
    let client = &t["Resources"]["UserPoolClient"]["Properties"];
    assert_eq!(client["GenerateSecret"], false);
    assert_eq!(client["AllowedOAuthFlowsUserPoolClient"], true);
    assert_eq!(
        client["AllowedOAuthFlows"],
        serde_norway::from_str::<Value>("[code]").unwrap()
    );
    let sub = |v: &Value| match v {
        Value::Tagged(tagged) if tagged.tag == "!Sub" => text(&tagged.value),
        Value::Tagged(tagged) if tagged.tag == "!If" => {
            let branches = tagged.value.as_sequence().expect("!If branches");
            assert_eq!(branches[0], "HasLocalFrontend", "{v:?}");
            assert!(matches!(&branches[2], Value::Tagged(t) if t.value == "AWS::NoValue"));
            match &branches[1] {
                Value::Tagged(t) if t.tag == "!Sub" => text(&t.value),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("a URL of the app's origin, not {other:?}"),
    };
    let urls = |name: &str| -> Vec<String> {
        client[name]
            .as_sequence()
            .expect(name)
            .iter()
            .map(sub)
            .collect()
    };
    assert_eq!(
        urls("CallbackURLs"),
        ["${FrontendUrl}/callback", "${LocalFrontendUrl}/callback"]
    );
    assert_eq!(
        urls("LogoutURLs"),
        ["${FrontendUrl}/", "${LocalFrontendUrl}/"]
    );
    // The token the app holds in memory lives an hour, as the local sign-in's does.
    assert_eq!(client["IdTokenValidity"], 60);
    assert_eq!(client["TokenValidityUnits"]["IdToken"], "minutes");
    assert_eq!(
        local_api::sign_in::TOKEN_TTL_SECONDS,
        60 * 60,
        "the local sign-in's token lives as long as Cognito's"
    );
    assert_eq!(
        t["Resources"]["UserPoolDomain"]["Type"],
        "AWS::Cognito::UserPoolDomain"
    );
    let domain = |value: &str| {
        full_match(
            &text(&t["Parameters"]["AuthDomainPrefix"]["AllowedPattern"]),
            value,
        )
    };
    assert!(domain("") && domain("son1k-prod") && !domain("Son1k") && !domain("-son1k"));
}

/// When the stack hosts the app, its bucket is private and read only by the distribution, through
/// its origin access control, over TLS; the app's routes all answer its index.
#[test]
fn a_hosted_web_app_is_served_by_cloudfront_from_a_private_bucket() {
    let t = template();
    let r = &t["Resources"];
    for name in [
        "WebBucket",
        "WebOriginAccessControl",
        "WebDistribution",
        "WebBucketPolicy",
    ] {
        assert_eq!(r[name]["Condition"], "HostsWebApp", "{name}");
    }
    assert_blocks_public_access(&r["WebBucket"]["Properties"]);
    let statements = r["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements");
    let read = &statements[0];
    assert_eq!(read["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert_eq!(read["Action"], "s3:GetObject");
    assert!(read["Condition"]["StringEquals"]["AWS:SourceArn"].is_tagged_or_string());
    assert_eq!(statements[1]["Effect"], "Deny");
    let config = &r["WebDistribution"]["Properties"]["DistributionConfig"];
    assert!(config["Origins"][0]["OriginAccessControlId"].is_tagged_or_string());
    assert_eq!(
        config["DefaultCacheBehavior"]["ViewerProtocolPolicy"],
        "redirect-to-https"
    );
    let fallbacks: Vec<(u64, &str)> = config["CustomErrorResponses"]
        .as_sequence()
        .expect("error responses")
        .iter()
        .map(|e| {
            (
                e["ErrorCode"].as_u64().expect("code"),
                e["ResponsePagePath"].as_str().expect("path"),
            )
        })
        .collect();
    assert_eq!(fallbacks, [(403, "/index.html"), (404, "/index.html")]);
    assert_eq!(t["Parameters"]["HostWebApp"]["Default"], "false");
}

/// Whether `value` matches all of `pattern`, as CloudFormation applies `AllowedPattern`.
fn full_match(pattern: &str, value: &str) -> bool {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .expect("a pattern")
        .is_match(value)
}
