//! HTTP glue for handlers: bounded JSON bodies, JSON and problem responses, path and query helpers.

use crate::error::ApiError;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest request body a route accepts.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The result type of a handler's inner `handle`: every expected failure is an `ApiError`.
pub type HandlerResult = Result<Response<Body>, ApiError>;

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HandlerResult {
    let body = serde_json::to_vec(value).map_err(|err| {
        tracing::error!(error = %err, "response did not serialise");
        ApiError::internal()
    })?;
    bytes_response(status, "application/json", body)
}

/// A JSON response for version `version` of a resource, with `ETag: "<version>"` (what `If-Match`
/// sends back to edit it).
pub fn json_versioned<T: Serialize>(status: StatusCode, value: &T, version: u32) -> HandlerResult {
    let mut response = json(status, value)?;
    if let Ok(etag) = format!("\"{version}\"").parse() {
        response
            .headers_mut()
            .insert(lambda_http::http::header::ETAG, etag);
    }
    Ok(response)
}

/// A request header's value, when it is there and readable.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A JSON response from bytes that are already serialised JSON (a stored response replayed verbatim).
pub fn raw_json(status: StatusCode, body: Vec<u8>) -> HandlerResult {
    bytes_response(status, "application/json", body)
}

fn bytes_response(status: StatusCode, content_type: &str, body: Vec<u8>) -> HandlerResult {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CACHE_CONTROL, "no-store")
        .body(Body::Binary(body))
        .map_err(|err| {
            tracing::error!(error = %err, "response did not build");
            ApiError::internal()
        })
}

/// `204 No Content`: no body, so no `Content-Type`.
pub fn no_content() -> HandlerResult {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(CACHE_CONTROL, "no-store")
        .body(Body::Empty)
        .map_err(|err| {
            tracing::error!(error = %err, "response did not build");
            ApiError::internal()
        })
}

/// Renders an `ApiError` as `application/problem+json` with its headers.
pub fn problem(err: &ApiError) -> Response<Body> {
    let body = serde_json::to_vec(&err.body()).unwrap_or_else(|_| b"{}".to_vec());
    let mut builder = Response::builder()
        .status(err.status())
        .header(CONTENT_TYPE, "application/problem+json")
        .header(CACHE_CONTROL, "no-store");
    for (name, value) in err.headers() {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Body::Binary(body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Empty);
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// The response header naming the request: API Gateway's request id (`requestContext.requestId`),
/// which is also in API Gateway's access log, so a client's report can be found.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id, as API Gateway (or the local API) put it in the request context.
pub fn request_id(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
}

/// Turns a handler's outcome into what the Lambda returns, with the request id header: every
/// expected outcome is an `Ok(Response)`.
pub fn render(
    request_id: Option<String>,
    result: HandlerResult,
) -> Result<Response<Body>, lambda_http::Error> {
    let mut response = result.unwrap_or_else(|err| problem(&err));
    if let Some(id) = request_id.and_then(|id| id.parse().ok()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    Ok(response)
}

/// The request body, refused with 413 when larger than `limit` bytes.
pub fn body_bytes(req: &Request, limit: usize) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > limit {
        return Err(ApiError::payload_too_large(limit));
    }
    Ok(bytes)
}

/// Parses a JSON body of at most `limit` bytes. Every failure is a 400 naming the offending field
/// (`body` when the document itself is broken); unknown fields are ignored.
pub fn parse_json<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, ApiError> {
    let bytes = body_bytes(req, limit)?;
    // Every body of the API is an object; serde would read a struct's fields from an array too.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "a JSON object is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // A broken document (syntax, truncation) is the body's fault, whatever path was reached.
        let broken = inner.is_syntax() || inner.is_eof();
        let field = if broken || path == "." || path.is_empty() || path.contains('?') {
            missing_field(&inner).unwrap_or_else(|| "body".into())
        } else {
            path
        };
        ApiError::invalid(&field, clean_serde_message(&inner))
    })?;
    de.end()
        .map_err(|_| ApiError::invalid("body", "trailing characters after the JSON document"))?;
    Ok(value)
}

/// Like `parse_json`, but an empty body (or only whitespace) is `T::default()`: for routes whose
/// body is optional.
pub fn parse_optional_json<T: DeserializeOwned + Default>(
    req: &Request,
    limit: usize,
) -> Result<T, ApiError> {
    if body_bytes(req, limit)?.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(req, limit)
}

/// serde reports a missing field at the parent's path; pull its name out of the message.
fn missing_field(err: &serde_json::Error) -> Option<String> {
    let msg = err.to_string();
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}

/// serde_json's message without its "at line 1 column 9" suffix (the caller sent the document).
fn clean_serde_message(err: &serde_json::Error) -> String {
    let msg = err.to_string();
    match msg.find(" at line ") {
        Some(cut) => msg.get(..cut).unwrap_or(&msg).to_owned(),
        None => msg,
    }
}

/// A path parameter the route template guarantees; its absence is a routing bug (404).
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::not_found("no such resource"))
}

/// The query parameter `name` of a free text (a cursor, a genre): an empty one is the same as one
/// left out; one given more than once is a 400 (which one would count is a guess).
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    Ok(query_value(req, name)?.filter(|v| !v.is_empty()))
}

/// The query parameter `name` as given, empty included: for a number, an enum or a date, whose
/// empty value is invalid (`?limit=` is no number, `?sort=` no order); one given more than once is
/// a 400.
pub fn query_value(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let values = req
        .query_string_parameters_ref()
        .and_then(|params| params.all(name))
        .unwrap_or_default();
    match values.as_slice() {
        [] => Ok(None),
        [value] => Ok(Some((*value).to_owned())),
        _ => Err(ApiError::invalid(name, "must be given at most once")),
    }
}

/// The `limit` query parameter of a list: 1..100, default 20 (the API's convention).
pub fn limit_param(req: &Request) -> Result<usize, ApiError> {
    match query_value(req, "limit")? {
        None => Ok(20),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 100")),
    }
}

/// Deserialises a non-negative integer written either way JSON allows (`8139` or `8139.0`): JSON
/// Schema's `integer` is any whole-valued number, so clients and generators may send either.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_u64() {
        return Ok(n);
    }
    match number.as_f64() {
        // 2^64 as f64: every whole float below it converts exactly.
        Some(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(f as u64)
        }
        _ => Err(serde::de::Error::custom(format!(
            "invalid value: {number}, expected a whole number from 0"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::whole_number;

    #[derive(Debug, serde::Deserialize)]
    struct Size {
        #[serde(deserialize_with = "whole_number")]
        n: u64,
    }

    #[test]
    fn a_whole_number_may_be_written_as_a_float_but_nothing_else_passes() {
        let n = |body: &str| serde_json::from_str::<Size>(body).map(|s| s.n).ok();
        assert_eq!(n(r#"{"n": 8139}"#), Some(8139));
        assert_eq!(n(r#"{"n": 8139.0}"#), Some(8139));
        assert_eq!(n(r#"{"n": 0}"#), Some(0));
        for bad in [
            r#"{"n": 1.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": -1.0}"#,
            r#"{"n": 1e30}"#,
            r#"{"n": "1"}"#,
            r#"{"n": null}"#,
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }
}
