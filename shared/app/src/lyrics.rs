//! Lyric Studio: drafts written by the language model to a song structure (a unit of the daily
//! allowance taken first, given back when the model or the store fails), read by their owner or an
//! admin, edited by their owner with optimistic versions (`If-Match`), every version kept.

use crate::assist::{model, take, AssistError};
use crate::audit::{self, Via};
use crate::caller::Caller;
use crate::llm::{structured, ChatRequest};
use crate::ports::{Allowances, Analytics, Audit, Lyrics, Model, RequestBudgets, Time, Users};
use crate::retry;
use son1k_domain::assist::Feature;
use son1k_domain::ids::LyricsId;
use son1k_domain::lyrics::{edited, tidy, Brief, Draft, EditRequest};
use son1k_store::lyrics::{EditOutcome, LyricsRecord, Page};

/// Tries of an edit while another transaction holds its items: once that one commits, this one is
/// refused by its condition and answered as stale.
const EDIT_ATTEMPTS: u32 = 8;

/// Writes a draft for `brief` and stores it as version 1.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn create(
    app: &(impl Time + Users + Analytics + Allowances + Lyrics + Model + RequestBudgets),
    caller: &Caller,
    brief: &Brief,
) -> Result<LyricsRecord, AssistError> {
    let model = model(app)?;
    let ticket = take(app, caller, Feature::Lyrics).await?;
    let request = ChatRequest {
        messages: brief.messages(),
        format: Some(brief.schema()),
        feature: Feature::Lyrics,
    };
    let draft = match structured::<Draft>(model, &request, |draft| brief.check(draft)).await {
        Ok(draft) => tidy(draft),
        Err(err) => {
            ticket.give_back(app).await;
            return Err(err.into());
        }
    };
    let now = app.clock().now();
    let record = LyricsRecord {
        pk: String::new(),
        sk: String::new(),
        lyrics_id: LyricsId::parse(&ulid::Ulid::generate().to_string())?,
        owner_id: caller.id.clone(),
        version: 1,
        title: draft.title,
        sections: draft.sections,
        model: model.model().to_owned(),
        theme: brief.theme.clone(),
        genre: brief.genre.clone(),
        mood: brief.mood.clone(),
        language: brief.language.clone(),
        created_at: now,
        updated_at: now,
    };
    let mut alerts = ticket.alerts.clone();
    loop {
        match app.lyrics().create(&record, &alerts).await {
            Ok(None) => return Ok(record),
            // Thresholds that fired before: stored without them.
            Ok(Some(fired)) => alerts = alerts.without(&fired),
            Err(err) => {
                ticket.give_back(app).await;
                return Err(err.into());
            }
        }
    }
}

/// A draft (its latest version, or `version`) for its owner or an admin; `NotFound` for anyone else,
/// exactly as for a draft that does not exist.
pub async fn get(
    app: &(impl Lyrics + Audit + Time),
    caller: &Caller,
    id: &LyricsId,
    version: Option<u32>,
    via: Via<'_>,
) -> Result<LyricsRecord, AssistError> {
    let found = match version {
        None => app.lyrics().latest(id).await?,
        Some(n) => app.lyrics().version(id, n).await?,
    };
    let record = found
        .filter(|r| r.owner_id == caller.id || caller.is_admin())
        .ok_or(AssistError::NotFound)?;
    audit::admin_read(app, caller, via, &record.owner_id, &format!("lyrics {id}")).await?;
    Ok(record)
}

/// Saves an edit of version `if_match` of the caller's draft as the next version.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, lyrics_id = %id))]
pub async fn edit(
    app: &(impl Time + Lyrics),
    caller: &Caller,
    id: &LyricsId,
    if_match: u32,
    request: EditRequest,
) -> Result<LyricsRecord, AssistError> {
    let current = app
        .lyrics()
        .latest(id)
        .await?
        .filter(|r| r.owner_id == caller.id)
        .ok_or(AssistError::NotFound)?;
    let draft = edited(request, &current.title)?;
    if current.version != if_match {
        return Err(AssistError::Stale {
            current: current.version,
        });
    }
    let (current, draft) = (&current, &draft);
    let edit = retry::until_done(
        "TransactWriteItems lyrics edit",
        EDIT_ATTEMPTS,
        || async move {
            app.lyrics()
                .edit(current, draft.clone(), app.clock().now())
                .await
        },
    )
    .await?;
    match edit {
        EditOutcome::Saved(record) => Ok(*record),
        EditOutcome::Stale => match app.lyrics().latest(id).await? {
            Some(latest) if latest.owner_id == caller.id => Err(AssistError::Stale {
                current: latest.version,
            }),
            _ => Err(AssistError::NotFound),
        },
    }
}

/// A page of the caller's drafts, newest first. The cursor is the last id of the page before
/// (it only ever continues the caller's own list).
pub async fn list(
    app: &(impl Lyrics + crate::ports::Accounts),
    caller: &Caller,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page, AssistError> {
    let after = cursor
        .map(|c| {
            LyricsId::parse(c).map_err(|_| {
                son1k_domain::DomainError::new("cursor", "is not a cursor this listing gave out")
            })
        })
        .transpose()?;
    let page = app.lyrics().list(&caller.id, after.as_ref(), limit).await?;
    if page.items.is_empty() {
        crate::account::refuse_if_closed(app, &caller.id).await?;
    }
    Ok(page)
}
