//! The local DynamoDB must be atomic under concurrency, as AWS is: otherwise every quota test here
//! proves nothing. These hit the raw server (no handler) the way our quota does.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use son1k_tests::TestApp;
use std::sync::Arc;

const ROUNDS: usize = 20;
const PARALLEL: usize = 50;
const LIMIT: u32 = 3;

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    son1k::store::item_key(pk.to_owned(), "COUNTER")
}

async fn stored_used(app: &TestApp, pk: &str) -> u32 {
    let item = app
        .state
        .dynamo
        .get_item()
        .table_name(&app.state.config.stats_table)
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
    let mut over_grants = 0;
    for round in 0..ROUNDS {
        let pk = format!("race-update-{round}");
        let calls = (0..PARALLEL).map(|_| {
            let app = app.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                app.state
                    .dynamo
                    .update_item()
                    .table_name(&app.state.config.stats_table)
                    .set_key(Some(key(&pk)))
                    .update_expression("ADD used :one")
                    .condition_expression("attribute_not_exists(used) OR used < :limit")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":limit", AttributeValue::N(LIMIT.to_string()))
                    .send()
                    .await
            })
        });
        let results = futures::future::join_all(calls).await;
        let granted = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.is_ok()))
            .count();
        let refused = results
            .iter()
            .filter(|r| {
                r.as_ref().is_ok_and(|r| {
                    r.as_ref()
                        .err()
                        .and_then(|e| e.as_service_error())
                        .is_some_and(|e| e.is_conditional_check_failed_exception())
                })
            })
            .count();
        assert_eq!(
            granted + refused,
            PARALLEL,
            "round {round}: every request is granted or refused by its condition"
        );
        over_grants += granted.saturating_sub(LIMIT as usize);
        assert_eq!(
            stored_used(&app, &pk).await,
            LIMIT,
            "round {round}: stored counter"
        );
        assert_eq!(granted, LIMIT as usize, "round {round}: granted");
    }
    assert_eq!(over_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_transactions_never_exceed_the_limit() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..ROUNDS {
        let pk = format!("race-tx-{round}");
        let calls = (0..PARALLEL).map(|i| {
            let app = app.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                let table = app.state.config.stats_table.clone();
                let put = Put::builder()
                    .table_name(&table)
                    .set_item(Some(son1k::store::item_key(
                        format!("{pk}-item-{i}"),
                        "GEN",
                    )))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("put");
                let update = Update::builder()
                    .table_name(&table)
                    .set_key(Some(key(&pk)))
                    .update_expression("ADD used :one")
                    .condition_expression("attribute_not_exists(used) OR used < :limit")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":limit", AttributeValue::N(LIMIT.to_string()))
                    .build()
                    .expect("update");
                app.state
                    .dynamo
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .transact_items(TransactWriteItem::builder().update(update).build())
                    .send()
                    .await
            })
        });
        let results = futures::future::join_all(calls).await;
        let granted = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.is_ok()))
            .count();
        let cancelled = results
            .iter()
            .filter(|r| {
                r.as_ref().is_ok_and(|r| {
                    r.as_ref()
                        .err()
                        .and_then(|e| e.as_service_error())
                        .is_some_and(|e| e.is_transaction_canceled_exception())
                })
            })
            .count();
        assert_eq!(
            (granted, cancelled),
            (LIMIT as usize, PARALLEL - LIMIT as usize),
            "round {round}"
        );
        assert_eq!(
            stored_used(&app, &pk).await,
            LIMIT,
            "round {round}: stored counter"
        );
        let written = app
            .state
            .dynamo
            .scan()
            .table_name(&app.state.config.stats_table)
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
    for round in 0..ROUNDS {
        let pk = format!("race-put-{round}");
        let calls = (0..PARALLEL).map(|i| {
            let app = app.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                app.state
                    .dynamo
                    .put_item()
                    .table_name(&app.state.config.stats_table)
                    .set_item(Some(key(&pk)))
                    .item("winner", AttributeValue::N(i.to_string()))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await
            })
        });
        let results = futures::future::join_all(calls).await;
        let winners = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.is_ok()))
            .count();
        assert_eq!(winners, 1, "round {round}");
    }
}
