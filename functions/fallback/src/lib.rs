//! The API's `$default` route: every request no other route took. Answers 405 with `Allow` when the
//! path exists under another method, else 404, both as problem+json (API Gateway's own answers are not).

use lambda_http::{Body, Error, Request, Response};
use son1k::http::{render, HandlerResult};
use son1k::routes::{match_route, RouteMatch};
use son1k::{ApiError, AppState};

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(handle(state, req).await)
}

async fn handle(_state: &AppState, req: Request) -> HandlerResult {
    match match_route(req.method().as_str(), req.uri().path()) {
        RouteMatch::WrongMethod(allowed) => Err(ApiError::method_not_allowed(&allowed)),
        // A route that exists is never sent here by API Gateway; treat a stray one as unknown.
        RouteMatch::NotFound | RouteMatch::Found(..) => Err(ApiError::not_found("no such route")),
    }
}
