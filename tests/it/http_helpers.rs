//! The shared HTTP glue every route with a body uses: limits, field-naming 400s, problem documents.

use lambda_http::Body;
use son1k_http::request::{parse_json, BODY_LIMIT};

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
fn an_array_is_no_object_even_where_every_field_has_a_default() {
    #[derive(Debug, Default, serde::Deserialize)]
    struct Optional {
        #[serde(default)]
        #[allow(dead_code)]
        return_url: Option<String>,
    }
    for body in ["[]", " [\"x\"]", "null", "3"] {
        let err = son1k_http::request::parse_optional_json::<Optional>(&request(body), BODY_LIMIT)
            .expect_err(body);
        assert_eq!(err.body()["field"], "body", "{body}");
    }
    assert!(
        son1k_http::request::parse_optional_json::<Optional>(&request(" "), BODY_LIMIT).is_ok()
    );
    assert!(
        son1k_http::request::parse_optional_json::<Optional>(&request(" {}"), BODY_LIMIT).is_ok()
    );
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
    let err = son1k_http::ApiError::dependency_unavailable("the database").retry_after(7);
    let res = son1k_http::request::problem(&err);
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let retry_after: Vec<_> = res.headers().get_all("retry-after").iter().collect();
    assert_eq!(retry_after, ["7"]);
}

/// Found by schemathesis's positive and negative data checks: what openapi.yaml's conventions say
/// about `null`, whole numbers written as floats and query parameters, through real routes.
mod contract_conventions {
    use serde_json::json;
    use son1k_tests::{As, TestApp};

    #[tokio::test]
    async fn an_optional_field_sent_as_null_is_the_same_as_one_left_out() {
        let app = TestApp::spawn().await;
        let res = app
            .record(
                "nora",
                json!({"generation_id": "n1", "genre": null, "title": null, "prompt": null,
                       "duration_seconds": null, "quality": null}),
            )
            .await;
        assert_eq!(
            (res.status, res.json()["used"].clone()),
            (201, json!(1)),
            "{}",
            res.text()
        );
        let stored = app.generation("n1").await.expect("recorded");
        assert_eq!((stored.genre, stored.duration_seconds), (None, None));
    }

    #[tokio::test]
    async fn a_whole_number_written_as_a_float_is_taken_and_a_fraction_is_not() {
        let app = TestApp::spawn().await;
        app.record("fay", json!({"generation_id": "f1"})).await;
        let url = |size: &str| format!(r#"{{"content_type": "audio/mpeg", "size_bytes": {size}}}"#);
        let path = "/api/generations/f1/upload-url";
        let whole = app
            .call("POST", path, As::user("fay"), Some(&url("8139.0")))
            .await;
        assert_eq!(whole.status, 200, "{}", whole.text());
        let half = app
            .call("POST", path, As::user("fay"), Some(&url("8139.5")))
            .await;
        assert_eq!(
            half.assert_problem(400, "invalid_request")["field"],
            "size_bytes"
        );
    }

    #[tokio::test]
    async fn a_query_parameter_given_twice_or_an_empty_number_is_400_and_empty_text_is_left_out() {
        let app = TestApp::spawn().await;
        let twice = app
            .call(
                "GET",
                "/api/tiers/limits/me?quality=high&quality=ultra",
                As::user("quin"),
                None,
            )
            .await;
        assert_eq!(
            twice.assert_problem(400, "invalid_request")["field"],
            "quality"
        );
        let empty_limit = app
            .call("GET", "/api/community/pool?limit=", None, None)
            .await;
        assert_eq!(
            empty_limit.assert_problem(400, "invalid_request")["field"],
            "limit"
        );
        let empty_genre = app
            .call("GET", "/api/community/pool?genre=", None, None)
            .await;
        assert_eq!(empty_genre.status, 200, "{}", empty_genre.text());
        let version = app
            .call(
                "GET",
                "/api/lyrics/01JD0000000000000000000000?version=",
                As::user("quin"),
                None,
            )
            .await;
        assert_eq!(
            version.assert_problem(400, "invalid_request")["field"],
            "version"
        );
    }
}
