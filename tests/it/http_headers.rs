//! What every response carries (`Content-Type`, `Cache-Control`, the request id) and how a browser's
//! CORS preflight is answered, by the handler and through the local API as API Gateway would.

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use son1k_tests::{build_request, send, As, TestApp};

const SECRET: &str = "local-dev-secret";

/// A request no route takes, as API Gateway hands it to the fallback function.
fn unrouted(method: &str, path: &str, request_id: &str) -> lambda_http::Request {
    let mut ctx = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.request_id = Some(request_id.to_owned());
    ctx.route_key = Some("OPTIONS /{proxy+}".to_owned());
    lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path}"))
        .body(Body::Empty)
        .expect("request")
        .with_request_context(RequestContext::ApiGatewayV2(ctx))
}

#[tokio::test]
async fn a_preflight_of_a_route_is_204_without_a_body_and_of_no_route_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/tiers/limits/me",
        "/api/tiers/record-generation",
        "/api/community/pool/like/01JD0000000000000000000000",
    ] {
        let res = send("fallback", &app.state, unrouted("OPTIONS", path, "pre-1")).await;
        assert_eq!(res.status, 204, "{path}");
        assert!(res.body.is_empty());
        assert!(res.content_type().is_none(), "no body, no content type");
        assert_eq!(res.header("x-request-id"), Some("pre-1"));
    }
    let res = send(
        "fallback",
        &app.state,
        unrouted("OPTIONS", "/nowhere", "pre-2"),
    )
    .await;
    res.assert_problem(404, "not_found");
    assert_eq!(res.header("x-request-id"), Some("pre-2"));
}

#[tokio::test]
async fn every_answer_names_its_request_and_is_not_cached() {
    let app = TestApp::spawn().await;
    for (method, path, caller, body, status) in [
        ("GET", "/health", None, None, 200),
        ("GET", "/api/tiers/limits/me", As::user("hal"), None, 200),
        (
            "POST",
            "/api/tiers/record-generation",
            As::user("hal"),
            Some("{"),
            400,
        ),
        ("GET", "/api/tiers/limits/other", As::user("hal"), None, 403),
        (
            "GET",
            "/api/generations/nope/audio",
            As::user("hal"),
            None,
            404,
        ),
    ] {
        let (function, req) = build_request(method, path, caller, body);
        let id = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().expect("id"),
            _ => panic!("an API Gateway v2 request"),
        };
        let res = send(function, &app.state, req).await;
        assert_eq!(res.status, status, "{method} {path}: {}", res.text());
        assert_eq!(
            res.header("x-request-id"),
            Some(id.as_str()),
            "{method} {path}"
        );
        assert_eq!(
            res.header("cache-control"),
            Some("no-store"),
            "{method} {path}"
        );
        let expected = if status < 400 {
            "application/json"
        } else {
            "application/problem+json"
        };
        assert_eq!(res.content_type(), Some(expected), "{method} {path}");
    }
}

#[tokio::test]
async fn through_the_local_api_a_preflight_gets_api_gateway_s_cors_answer() {
    let app = TestApp::spawn().await;
    let base = app.serve_http(SECRET).await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/api/tiers/record-generation"),
        )
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(preflight.status().as_u16(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
    assert_eq!(
        h["access-control-allow-methods"],
        local_api::CORS_ALLOW_METHODS
    );
    assert_eq!(
        h["access-control-allow-headers"],
        local_api::CORS_ALLOW_HEADERS
    );
    assert!(
        h.get("x-request-id").is_some(),
        "served by the fallback function"
    );

    let answer = client
        .get(format!("{base}/api/tiers/limits/me"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status().as_u16(), 401);
    assert!(
        answer.headers().get("x-request-id").is_some(),
        "the local API's own answers name their request too"
    );
    assert_eq!(
        answer.headers()["access-control-expose-headers"],
        local_api::CORS_EXPOSE_HEADERS
    );
    let stranger = client
        .get(format!("{base}/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "another origin gets no CORS headers"
    );
    let missing = client
        .request(reqwest::Method::OPTIONS, format!("{base}/nowhere"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status().as_u16(), 404);
}
