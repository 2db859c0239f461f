//! GET /health and GET /api/tiers.

use son1k_tests::TestApp;

#[tokio::test]
async fn health_reports_healthy_with_version_and_the_clock() {
    let app = TestApp::spawn().await;
    let res = app.call("GET", "/health", None, None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.content_type(), Some("application/json"));
    assert_eq!(
        res.json(),
        serde_json::json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION"), "time": "2026-11-26T10:00:00Z"})
    );
}

#[tokio::test]
async fn health_answers_even_when_the_store_is_down() {
    let app = TestApp::with_store_down().await;
    assert_eq!(app.call("GET", "/health", None, None).await.status, 200);
}

#[tokio::test]
async fn tiers_lists_the_four_tiers_in_order_with_every_field() {
    let app = TestApp::spawn().await;
    let res = app.call("GET", "/api/tiers", None, None).await;
    assert_eq!(res.status, 200);
    let body = res.json();
    let tiers = body["tiers"].as_array().expect("tiers array");
    let summary: Vec<_> = tiers
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_owned(),
                t["price_cents"].as_u64(),
                t["generations"].as_u64(),
                t["period"].as_str().unwrap_or_default().to_owned(),
                t["qualities"].clone(),
                t["storage_bytes"].clone(),
            )
        })
        .collect();
    use serde_json::json;
    assert_eq!(
        summary,
        vec![
            (
                "FREE".into(),
                Some(0),
                Some(3),
                "day".into(),
                json!(["standard"]),
                json!(1_073_741_824u64)
            ),
            (
                "CREATOR".into(),
                Some(999),
                Some(50),
                "month".into(),
                json!(["standard", "high"]),
                json!(10_737_418_240u64)
            ),
            (
                "PRO".into(),
                Some(2999),
                Some(200),
                "month".into(),
                json!(["standard", "high", "ultra"]),
                json!(107_374_182_400u64)
            ),
            (
                "STUDIO".into(),
                Some(9999),
                Some(1000),
                "month".into(),
                json!(["standard", "high", "ultra"]),
                json!(null)
            ),
        ]
    );
    assert!(tiers
        .iter()
        .all(|t| t["features"].as_array().is_some_and(|f| !f.is_empty())));
}

fn raw_request(method: &str, path: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path}"))
        .body(lambda_http::Body::Empty)
        .expect("request")
}

#[tokio::test]
async fn the_fallback_function_answers_405_for_known_paths_and_404_for_the_rest() {
    let app = TestApp::spawn().await;
    let res = son1k_tests::send("fallback", &app.state, raw_request("DELETE", "/api/tiers")).await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET"));
    let res = son1k_tests::send(
        "fallback",
        &app.state,
        raw_request("GET", "/api/tiers/record-generation"),
    )
    .await;
    assert_eq!(res.header("allow"), Some("POST"));
    let res = son1k_tests::send("fallback", &app.state, raw_request("GET", "/wp-login.php")).await;
    res.assert_problem(404, "not_found");
}
