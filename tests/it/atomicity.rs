//! The local DynamoDB must be atomic under concurrency, as AWS is: otherwise every quota test here
//! proves nothing. These hit the raw server the tests use, DynamoDB Local (no handler), with the
//! condition shapes our quota uses. They can fail: `make test-atomicity-on-moto` runs them against
//! stock moto, whose DynamoDB is not atomic, and the first two fail within a few rounds.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use son1k_tests::TestApp;
use std::future::Future;
use std::sync::Arc;

/// 20 rounds in CI; `make test-atomicity-on-moto` asks for 100 (`SON1K_ATOMICITY_ROUNDS`) so that stock
/// moto fails every time, not in one run of two.
fn rounds() -> usize {
    std::env::var("SON1K_ATOMICITY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20)
}
const PARALLEL: usize = 50;
const LIMIT: usize = 3;

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    son1k_store::item_key(pk.to_owned(), "COUNTER")
}

/// Runs `PARALLEL` copies of `call` at once; returns how many succeeded and how many were refused
/// by their condition (anything else fails the test).
async fn race<T, E, Fut>(
    call: impl Fn(usize) -> Fut,
    refused: impl Fn(&E) -> bool,
) -> (usize, usize)
where
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static + std::fmt::Debug,
{
    let tasks = (0..PARALLEL).map(|i| tokio::spawn(call(i)));
    let results: Vec<Result<T, E>> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let granted = results.iter().filter(|r| r.is_ok()).count();
    let refusals = results
        .iter()
        .filter(|r| r.as_ref().err().is_some_and(&refused))
        .count();
    if let Some(Err(other)) = results
        .iter()
        .find(|r| r.as_ref().err().is_some_and(|e| !refused(e)))
    {
        panic!("a request failed for another reason than its condition: {other:?}");
    }
    (granted, refusals)
}

/// The quota shape: add one while under the limit.
const INCREMENT: &str = "ADD used :one";
const UNDER_LIMIT: &str = "attribute_not_exists(used) OR used < :limit";

fn increment_values() -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        (":one".to_owned(), AttributeValue::N("1".into())),
        (":limit".to_owned(), AttributeValue::N(LIMIT.to_string())),
    ])
}

fn limited_increment(app: &TestApp, pk: &str) -> Update {
    Update::builder()
        .table_name(&app.state.config.names.stats_table)
        .set_key(Some(key(pk)))
        .update_expression(INCREMENT)
        .condition_expression(UNDER_LIMIT)
        .set_expression_attribute_values(Some(increment_values()))
        .build()
        .expect("update")
}

/// Exactly `LIMIT` of the round's `PARALLEL` writes won, the rest were refused, and the stored
/// counter says `LIMIT`.
async fn assert_limit_held(app: &TestApp, pk: &str, round: usize, (won, lost): (usize, usize)) {
    assert_eq!((won, lost), (LIMIT, PARALLEL - LIMIT), "round {round}");
    assert_eq!(
        stored_used(app, pk).await,
        LIMIT,
        "round {round}: stored counter"
    );
}

async fn stored_used(app: &TestApp, pk: &str) -> usize {
    let item = app
        .state
        .dynamo()
        .get_item()
        .table_name(&app.state.config.names.stats_table)
        .set_key(Some(key(pk)))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .unwrap_or_default();
    match item.get("used") {
        Some(AttributeValue::N(n)) => n.parse().expect("number"),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_conditional_updates_never_exceed_the_limit() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..rounds() {
        let pk = format!("race-update-{round}");
        let (granted, refused) = race(
            |_| {
                let (app, pk) = (app.clone(), pk.clone());
                async move {
                    app.state
                        .dynamo()
                        .update_item()
                        .table_name(&app.state.config.names.stats_table)
                        .set_key(Some(key(&pk)))
                        .update_expression(INCREMENT)
                        .condition_expression(UNDER_LIMIT)
                        .set_expression_attribute_values(Some(increment_values()))
                        .send()
                        .await
                }
            },
            |e: &SdkError<_, _>| {
                e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
            },
        )
        .await;
        assert_limit_held(&app, &pk, round, (granted, refused)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_transactions_never_exceed_the_limit() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..rounds() {
        let pk = format!("race-tx-{round}");
        let (granted, cancelled) = race(
            |i| {
                let (app, pk) = (app.clone(), pk.clone());
                async move {
                    let put = Put::builder()
                        .table_name(&app.state.config.names.stats_table)
                        .set_item(Some(son1k_store::item_key(format!("{pk}-item-{i}"), "GEN")))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .expect("put");
                    app.state
                        .dynamo()
                        .transact_write_items()
                        .transact_items(TransactWriteItem::builder().put(put).build())
                        .transact_items(
                            TransactWriteItem::builder()
                                .update(limited_increment(&app, &pk))
                                .build(),
                        )
                        .send()
                        .await
                }
            },
            |e: &SdkError<_, _>| {
                e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception())
            },
        )
        .await;
        assert_limit_held(&app, &pk, round, (granted, cancelled)).await;
        let written = app
            .state
            .dynamo()
            .scan()
            .table_name(&app.state.config.names.stats_table)
            .filter_expression("begins_with(pk, :p) AND sk = :gen")
            .expression_attribute_values(":p", AttributeValue::S(format!("{pk}-item-")))
            .expression_attribute_values(":gen", AttributeValue::S("GEN".into()))
            .send()
            .await
            .expect("scan")
            .count;
        assert_eq!(
            written, LIMIT as i32,
            "round {round}: only granted transactions wrote their item"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_put_if_absent_has_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..rounds() {
        let pk = format!("race-put-{round}");
        let (winners, losers) = race(
            |i| {
                let (app, pk) = (app.clone(), pk.clone());
                async move {
                    app.state
                        .dynamo()
                        .put_item()
                        .table_name(&app.state.config.names.stats_table)
                        .set_item(Some(key(&pk)))
                        .item("winner", AttributeValue::N(i.to_string()))
                        .condition_expression("attribute_not_exists(pk)")
                        .send()
                        .await
                }
            },
            |e: &SdkError<_, _>| {
                e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
            },
        )
        .await;
        assert_eq!((winners, losers), (1, PARALLEL - 1), "round {round}");
    }
}
