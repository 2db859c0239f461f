//! The pool listing (`GET /api/community/pool`, public): listed contributions from the listing
//! indexes, a page at a time, with an HMAC-signed cursor bound to the sort and genre it was given for.
//! Only the contributor's public profile; never an email, never an audio link.

use crate::ports::{Keys, Pool};
use chrono::SecondsFormat;
use serde::Serialize;
use son1k_domain::cursor;
use son1k_domain::tiers::Quality;
use son1k_store::pool::{genre_partition, ContributionRecord, ALL_LISTED};
use son1k_store::StoreError;

/// The orders the listing offers, each an index of the pool table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Recent,
    Popular,
    Quality,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recent => "recent",
            Self::Popular => "popular",
            Self::Quality => "quality",
        }
    }
}

/// The longest genre a listing is asked for.
pub const GENRE_MAX_CHARS: usize = 40;

/// What is asked: the order, an optional genre and how many items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub sort: Sort,
    pub genre: Option<String>,
    pub limit: usize,
}

impl Listing {
    /// What a cursor is bound to: the same sort and genre.
    fn scope(&self) -> String {
        format!(
            "{}|{}",
            self.sort.as_str(),
            self.genre.as_deref().unwrap_or("")
        )
    }

    /// The index, its partition attribute and the partition to read.
    fn index(&self) -> (String, &'static str, String) {
        match &self.genre {
            Some(genre) => (
                format!("{}_genre", self.sort.as_str()),
                "lst_genre",
                genre_partition(genre),
            ),
            None => (self.sort.as_str().to_owned(), "lst", ALL_LISTED.to_owned()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Contributor {
    pub user_id: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PoolItem {
    pub id: String,
    pub generation_id: String,
    pub title: Option<String>,
    pub genre: Option<String>,
    pub quality: Quality,
    pub points: u32,
    pub plays: u64,
    pub likes: u64,
    pub contributed_at: String,
    pub contributor: Contributor,
}

#[derive(Debug, Serialize)]
pub struct PoolPage {
    pub items: Vec<PoolItem>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// The cursor was not made by this listing for this sort and genre.
    #[error("not a cursor of this listing")]
    BadCursor,
    /// No key to sign cursors with (`cursor_secret` of the app secret).
    #[error("no cursor key")]
    NoCursorKey,
    /// The next page's position could not be written down (never expected: three strings).
    #[error("the next cursor could not be made")]
    Unsealable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of `listing`, starting where `cursor` (from the previous page) says.
pub async fn list(
    app: &(impl Pool + Keys),
    listing: &Listing,
    cursor: Option<&str>,
) -> Result<PoolPage, ListingError> {
    let secret = cursor_secret(app).await?;
    let start = match cursor {
        None => None,
        Some(raw) => {
            let payload = cursor::open(secret.expose(), &listing.scope(), raw)
                .map_err(|_| ListingError::BadCursor)?;
            Some(serde_json::from_slice(&payload).map_err(|_| ListingError::BadCursor)?)
        }
    };
    let (index, key_attr, partition) = listing.index();
    let page = app
        .pool()
        .listing(&index, key_attr, &partition, listing.limit, start)
        .await?;
    let next_cursor = match page.next {
        Some(next) => {
            let payload = serde_json::to_vec(&next).map_err(|_| ListingError::Unsealable)?;
            Some(cursor::seal(secret.expose(), &listing.scope(), &payload))
        }
        None => None,
    };
    Ok(PoolPage {
        items: page.items.into_iter().map(item).collect(),
        next_cursor,
    })
}

/// The key that signs cursors: `cursor_secret` of the app secret (`APP_SECRET_NAME`), read from
/// Secrets Manager once per container.
async fn cursor_secret(app: &impl Keys) -> Result<crate::config::Secret, ListingError> {
    let secret = match app.app_secret_name() {
        Some(name) => app.secrets().field(name, "cursor_secret").await?,
        None => None,
    };
    secret.ok_or_else(|| {
        tracing::error!("no cursor_secret in the app secret: the listing cannot sign cursors");
        ListingError::NoCursorKey
    })
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
