//! The API's `$default` route: every request no other route took. Answers 405 with `Allow` when the
//! path exists under another method, else 404, both as problem+json (API Gateway's own answers are not).
//! Also the `OPTIONS /{proxy+}` route: a CORS preflight of a path that exists is answered 204 (API
//! Gateway adds the configured CORS headers to it); of any other path 404.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::AppState;
use son1k_http::request::{no_content, render, request_id, HandlerResult};
use son1k_http::routes::{match_route, RouteMatch};
use son1k_http::ApiError;

/// The handler with the state every function is called with (the local API); it needs none.
pub async fn handler(_state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    respond(req).await
}

/// Answers from the route table alone: no AWS client, no credentials, no configuration.
pub async fn respond(req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(req))
}

fn handle(req: Request) -> HandlerResult {
    let route = match_route(req.method().as_str(), req.uri().path());
    if req.method() == Method::OPTIONS && !matches!(route, RouteMatch::NotFound) {
        return no_content();
    }
    match route {
        RouteMatch::WrongMethod(allowed) => Err(ApiError::method_not_allowed(&allowed)),
        // A route that exists is never sent here by API Gateway; treat a stray one as unknown.
        RouteMatch::NotFound | RouteMatch::Found(..) => Err(ApiError::not_found("no such route")),
    }
}
