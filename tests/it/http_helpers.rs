//! The shared HTTP glue every route with a body uses: limits, field-naming 400s, problem documents.

use lambda_http::Body;
use son1k::http::{parse_json, BODY_LIMIT};

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Sample {
    generation_id: String,
    duration_seconds: Option<f64>,
    nested: Option<Nested>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Nested {
    count: u32,
}

fn request(body: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/x")
        .body(Body::Text(body.to_owned()))
        .expect("request")
}

fn field_of(body: &str) -> (u16, String, String) {
    let err = parse_json::<Sample>(&request(body), BODY_LIMIT).expect_err("must be rejected");
    let doc = err.body();
    (
        err.status().as_u16(),
        doc["field"].as_str().unwrap_or_default().to_owned(),
        err.detail().to_owned(),
    )
}

#[test]
fn a_body_over_64_kib_is_a_413() {
    let big = format!(
        r#"{{"generation_id":"g","pad":"{}"}}"#,
        "x".repeat(BODY_LIMIT)
    );
    let err = parse_json::<Sample>(&request(&big), BODY_LIMIT).expect_err("too large");
    assert_eq!(
        (err.status().as_u16(), err.code().as_str()),
        (413, "payload_too_large")
    );
}

#[test]
fn a_body_of_exactly_64_kib_is_parsed() {
    let head = r#"{"generation_id":"g","pad":""#;
    let pad = "x".repeat(BODY_LIMIT - head.len() - 2);
    let body = format!("{head}{pad}\"}}");
    assert_eq!(body.len(), BODY_LIMIT);
    assert!(parse_json::<Sample>(&request(&body), BODY_LIMIT).is_ok());
}

#[test]
fn a_missing_field_is_named() {
    let (status, field, detail) = field_of(r#"{"duration_seconds": 3}"#);
    assert_eq!((status, field.as_str()), (400, "generation_id"));
    assert!(detail.contains("generation_id"), "{detail}");
}

#[test]
fn a_wrong_type_is_named_even_when_nested() {
    assert_eq!(field_of(r#"{"generation_id": 5}"#).1, "generation_id");
    assert_eq!(
        field_of(r#"{"generation_id": "g", "duration_seconds": "long"}"#).1,
        "duration_seconds"
    );
    assert_eq!(
        field_of(r#"{"generation_id": "g", "nested": {"count": -1}}"#).1,
        "nested.count"
    );
}

#[test]
fn broken_empty_and_non_object_documents_are_400s() {
    for body in [
        "",
        "   ",
        "{",
        "[1,2]",
        "\"text\"",
        r#"{"generation_id":"g"} trailing"#,
    ] {
        let err = parse_json::<Sample>(&request(body), BODY_LIMIT).expect_err(body);
        assert_eq!(
            (err.status().as_u16(), err.code().as_str()),
            (400, "invalid_request"),
            "{body:?}"
        );
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let parsed = parse_json::<Sample>(
        &request(r#"{"generation_id": "g", "extra": {"a": 1}}"#),
        BODY_LIMIT,
    );
    assert_eq!(parsed.map(|s| s.generation_id).ok(), Some("g".to_owned()));
}

#[test]
fn problem_responses_carry_the_content_type_and_headers() {
    // dependency_unavailable sets Retry-After: 1; a later value replaces it, never a second header.
    let err = son1k::ApiError::dependency_unavailable("the database").retry_after(7);
    let res = son1k::http::problem(&err);
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let retry_after: Vec<_> = res.headers().get_all("retry-after").iter().collect();
    assert_eq!(retry_after, ["7"]);
}
