//! `GET /api/community/pool?genre=&sort=recent|popular|quality&limit=&cursor=` (public): listed
//! contributions (audio stored), from the listing indexes, with an HMAC-signed cursor. Only the
//! contributor's public profile; never an email, never an audio link.

use chrono::SecondsFormat;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use son1k_app::AppState;
use son1k_domain::cursor;
use son1k_domain::tiers::Quality;
use son1k_http::request::{json, limit_param, query_param, render, request_id, HandlerResult};
use son1k_http::ApiError;
use son1k_store::pool::{genre_partition, ContributionRecord, ALL_LISTED};

#[derive(Debug, Serialize)]
struct Contributor {
    user_id: String,
    username: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct PoolItem {
    id: String,
    generation_id: String,
    title: Option<String>,
    genre: Option<String>,
    quality: Quality,
    points: u32,
    plays: u64,
    likes: u64,
    contributed_at: String,
    contributor: Contributor,
}

#[derive(Debug, Serialize)]
struct PoolPage {
    items: Vec<PoolItem>,
    next_cursor: Option<String>,
}

/// The query, validated: which index and partition, and how many.
struct Listing {
    sort: &'static str,
    genre: Option<String>,
    limit: usize,
}

impl Listing {
    fn from_request(req: &Request) -> Result<Self, ApiError> {
        let sort = match query_param(req, "sort")?.as_deref() {
            None | Some("recent") => "recent",
            Some("popular") => "popular",
            Some("quality") => "quality",
            Some(_) => {
                return Err(ApiError::invalid(
                    "sort",
                    "must be recent, popular or quality",
                ))
            }
        };
        let genre = query_param(req, "genre")?;
        if genre.as_ref().is_some_and(|g| g.chars().count() > 40) {
            return Err(ApiError::invalid("genre", "must be at most 40 characters"));
        }
        let limit = limit_param(req)?;
        Ok(Self { sort, genre, limit })
    }

    /// What a cursor is bound to: the same sort and genre.
    fn scope(&self) -> String {
        format!("{}|{}", self.sort, self.genre.as_deref().unwrap_or(""))
    }

    fn index(&self) -> (String, &'static str, String) {
        match &self.genre {
            Some(genre) => (
                format!("{}_genre", self.sort),
                "lst_genre",
                genre_partition(genre),
            ),
            None => (self.sort.to_owned(), "lst", ALL_LISTED.to_owned()),
        }
    }
}

/// The key that signs cursors: `cursor_secret` of the app secret (`APP_SECRET_NAME`), read from
/// Secrets Manager once per container. Without it the listing answers 503.
async fn cursor_secret(state: &AppState) -> Result<son1k_app::config::Secret, ApiError> {
    let secret = match state.config.app_secret_name.as_deref() {
        Some(name) => state.secrets.field(name, "cursor_secret").await?,
        None => None,
    };
    secret.ok_or_else(|| {
        tracing::error!("no cursor_secret in the app secret: the listing cannot sign cursors");
        ApiError::dependency_unavailable("the pool listing")
    })
}

pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    render(request_id(&req), handle(state, req).await)
}

async fn handle(state: &AppState, req: Request) -> HandlerResult {
    let listing = Listing::from_request(&req)?;
    let secret = cursor_secret(state).await?;
    let secret = &secret;
    let start = match query_param(&req, "cursor")? {
        None => None,
        Some(raw) => {
            let payload = cursor::open(secret.expose(), &listing.scope(), &raw)?;
            Some(serde_json::from_slice(&payload).map_err(|_| {
                ApiError::invalid("cursor", "is not a cursor this listing gave out")
            })?)
        }
    };
    let (index, key_attr, partition) = listing.index();
    let page = state
        .pool()
        .listing(&index, key_attr, &partition, listing.limit, start)
        .await?;
    let next_cursor = match page.next {
        Some(next) => {
            let payload = serde_json::to_vec(&next).map_err(|_| ApiError::internal())?;
            Some(cursor::seal(secret.expose(), &listing.scope(), &payload))
        }
        None => None,
    };
    json(
        StatusCode::OK,
        &PoolPage {
            items: page.items.into_iter().map(item).collect(),
            next_cursor,
        },
    )
}

fn item(c: ContributionRecord) -> PoolItem {
    PoolItem {
        id: c.contribution_id,
        generation_id: c.generation_id.to_string(),
        title: c.title,
        genre: c.genre,
        quality: c.quality,
        points: c.points,
        plays: c.plays,
        likes: c.likes,
        contributed_at: c.contributed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        contributor: Contributor {
            user_id: c.contributor_id.to_string(),
            username: c.contributor_username,
            avatar_url: c.contributor_avatar_url,
        },
    }
}
