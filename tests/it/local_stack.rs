//! The local stack is what it claims to be: DynamoDB requests reach DynamoDB Local, never moto,
//! through the same environment-driven configuration a Lambda uses.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use son1k_app::config::Config;
use son1k_app::AppState;
use son1k_tests::{endpoints, unique_prefix};

/// `AppState::from_env` is the production path: it must pick each service's endpoint from the
/// per-service variables the local stack exports, DynamoDB's at DynamoDB Local.
#[tokio::test]
async fn the_production_state_talks_dynamodb_to_dynamodb_local() {
    let state = AppState::from_env().await.expect("state");
    // DynamoDB Local validates like AWS: a 2-character table name is refused. moto accepts it.
    let err = state
        .dynamo()
        .create_table()
        .table_name("ab")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect_err("DynamoDB Local refuses a 2-character table name");
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");

    // And its S3 client reaches moto: a bucket made through it is listed there.
    let bucket = format!("{}-env", unique_prefix());
    state
        .s3()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket on moto");
    let listed = state
        .s3()
        .list_buckets()
        .send()
        .await
        .expect("list buckets");
    assert!(listed.buckets().iter().any(|b| b.name() == Some(&bucket)));
}

/// moto serves S3 only: a DynamoDB request sent to it is refused, so a client pointed at the wrong
/// server fails loudly instead of running on a non-atomic emulator.
#[tokio::test]
async fn moto_refuses_dynamodb_requests() {
    let config = Config::with_prefix(&unique_prefix());
    let sdk = son1k_app::state::local_sdk_config(&config).await;
    let wrong = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(endpoints().s3)
            .build(),
    );
    let err = wrong
        .list_tables()
        .send()
        .await
        .expect_err("moto answers no DynamoDB request");
    assert_eq!(err.code(), Some("DynamoDBNotServedHere"), "{err:?}");
}
