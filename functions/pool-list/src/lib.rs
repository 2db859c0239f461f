//! `GET /api/community/pool?genre=&sort=recent|popular|quality&limit=&cursor=` (public): a page of
//! listed contributions (`son1k_app::listing`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use son1k_app::listing::{list, Listing, Sort, GENRE_MAX_CHARS};
use son1k_app::AppState;
use son1k_http::request::{
    json, limit_param, query_param, query_value, render, request_id, HandlerResult,
};
use son1k_http::ApiError;

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let listing = listing(&req)?;
    let cursor = query_param(&req, "cursor")?;
    let page = list(state, &listing, cursor.as_deref()).await?;
    json(StatusCode::OK, &page)
}

/// The query, validated: the order, the genre and how many.
fn listing(req: &Request) -> Result<Listing, ApiError> {
    let sort = match query_value(req, "sort")?.as_deref() {
        None | Some("recent") => Sort::Recent,
        Some("popular") => Sort::Popular,
        Some("quality") => Sort::Quality,
        Some(_) => {
            return Err(ApiError::invalid(
                "sort",
                "must be recent, popular or quality",
            ))
        }
    };
    let genre = query_param(req, "genre")?;
    if genre
        .as_ref()
        .is_some_and(|g| g.chars().count() > GENRE_MAX_CHARS)
    {
        return Err(ApiError::invalid(
            "genre",
            format!("must be at most {GENRE_MAX_CHARS} characters"),
        ));
    }
    let limit = limit_param(req)?;
    Ok(Listing { sort, genre, limit })
}
