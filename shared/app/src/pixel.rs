//! Pixel, the companion: one message in, one reply out, with suggestions computed from the caller's
//! own state. The model is given that state as data and can do nothing but answer in text: no
//! route is called, nothing is written but the conversation's memory, whatever it says.

use crate::assist::{model, take, AssistError, Ticket};
use crate::caller::Caller;
use crate::llm::ChatRequest as ModelRequest;
use crate::ports::{
    Allowances, Analytics, Lyrics, Model, PixelMemory, Pool, RequestBudgets, Time, Users,
};
use serde::Serialize;
use son1k_domain::assist::Feature;
use son1k_domain::ids::ConversationId;
use son1k_domain::pixel::{
    checked_reply, messages, suggestions, ChatRequest, GenerationsLeft, LyricsPick, PoolPick,
    Suggestion, UserFacts, MAX_MESSAGE_CHARS,
};
use son1k_domain::tiers::Tier;
use son1k_domain::DomainError;
use son1k_store::pixel::Turn;
use son1k_store::StoreError;

/// The 200 body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatReply {
    pub conversation_id: ConversationId,
    pub reply: String,
    pub suggestions: Vec<Suggestion>,
    /// The day's messages after this one.
    pub messages: MessagesLeft,
}

/// The day's message allowance, as this message left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessagesLeft {
    pub limit: u32,
    pub used: u32,
    pub remaining: u32,
    /// The next UTC midnight.
    pub reset_at: String,
}

impl MessagesLeft {
    fn of(granted: &son1k_domain::assist::Granted) -> Self {
        Self {
            limit: granted.limit,
            used: granted.used,
            remaining: granted.remaining,
            reset_at: son1k_domain::clock::rfc3339(granted.reset_at),
        }
    }
}

/// The message, checked: 1 to `MAX_MESSAGE_CHARS` characters once trimmed.
fn message(raw: &str) -> Result<String, DomainError> {
    let message = son1k_domain::trim_text(raw);
    let length = message.chars().count();
    if length == 0 || length > MAX_MESSAGE_CHARS {
        return Err(DomainError::new(
            "message",
            format!("must be 1 to {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    Ok(message.to_owned())
}

/// Answers `request` for `caller`.
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn chat(
    app: &(impl Time
          + Users
          + Pool
          + Analytics
          + Allowances
          + Lyrics
          + PixelMemory
          + Model
          + RequestBudgets),
    caller: &Caller,
    request: ChatRequest,
) -> Result<ChatReply, AssistError> {
    let text = message(&request.message)?;
    let asked = request
        .conversation_id
        .as_deref()
        .map(ConversationId::parse)
        .transpose()?;
    let model = model(app)?;
    let (conversation_id, memory) = conversation(app, caller, asked).await?;
    let ticket = take(app, caller, Feature::Pixel).await?;
    match answer(app, caller, &ticket, model, &memory, &text).await {
        Ok((reply, suggestions)) => {
            let turn = Turn {
                message: text,
                reply: reply.clone(),
                at: app.clock().now(),
            };
            let mut alerts = ticket.alerts.clone();
            loop {
                match app
                    .pixel()
                    .remember(&caller.id, &conversation_id, turn.clone(), &alerts)
                    .await
                {
                    Ok(None) => break,
                    // Thresholds that fired before: remembered without them.
                    Ok(Some(fired)) => alerts = alerts.without(&fired),
                    Err(err) => {
                        ticket.give_back(app).await;
                        return Err(err.into());
                    }
                }
            }
            Ok(ChatReply {
                conversation_id,
                reply,
                suggestions,
                messages: MessagesLeft::of(&ticket.granted),
            })
        }
        Err(err) => {
            ticket.give_back(app).await;
            Err(err)
        }
    }
}

/// The conversation to go on with and what it remembers: the caller's `asked` one, or a new one.
/// Another user's conversation (or one forgotten) is a 404 before anything is spent.
async fn conversation(
    app: &(impl Time + PixelMemory),
    caller: &Caller,
    asked: Option<ConversationId>,
) -> Result<(ConversationId, Vec<Turn>), AssistError> {
    match asked {
        Some(id) => {
            let memory = app
                .pixel()
                .memory(&caller.id, &id, app.clock().now())
                .await?
                .ok_or(AssistError::NotFound)?;
            Ok((id, memory))
        }
        None => Ok((
            ConversationId::parse(&ulid::Ulid::generate().to_string())?,
            Vec::new(),
        )),
    }
}

/// The reply to `text` after `memory`, and the suggestions, from the caller's state.
async fn answer(
    app: &(impl Time + Pool + Lyrics + PixelMemory),
    caller: &Caller,
    ticket: &Ticket,
    model: &dyn crate::llm::LanguageModel,
    memory: &[Turn],
    text: &str,
) -> Result<(String, Vec<Suggestion>), AssistError> {
    let facts = facts(app, caller, ticket).await?;
    let memory: Vec<(String, String)> = memory
        .iter()
        .map(|t| (t.message.clone(), t.reply.clone()))
        .collect();
    let reply = model
        .chat(&ModelRequest {
            messages: messages(&facts, &memory, text),
            format: None,
            feature: son1k_domain::assist::Feature::Pixel,
        })
        .await?;
    Ok((checked_reply(&reply), suggestions(&facts)))
}

/// The caller's favourite genre (from their preference counters) and a listed pool item in it that
/// is not their own.
async fn taste(
    app: &(impl Pool + PixelMemory),
    caller: &Caller,
) -> Result<(Option<String>, Option<PoolPick>), StoreError> {
    let prefs = app.pixel().preferences(&caller.id).await?;
    let Some(genre) = prefs.favourite_genre().map(str::to_owned) else {
        return Ok((None, None));
    };
    let page = app
        .pool()
        .listing(
            "recent_genre",
            "lst_genre",
            &son1k_store::pool::genre_partition(&genre),
            10,
            None,
        )
        .await?;
    let pick = page
        .items
        .into_iter()
        .find(|item| item.contributor_id != caller.id)
        .map(|item| PoolPick {
            contribution_id: item.contribution_id,
            genre: genre.clone(),
            title: item.title,
        });
    Ok((Some(genre), pick))
}

/// The caller's own state, as the model and the suggestions see it: the reads run together.
async fn facts(
    app: &(impl Time + Pool + Lyrics + PixelMemory),
    caller: &Caller,
    ticket: &Ticket,
) -> Result<UserFacts, AssistError> {
    let now = app.clock().now();
    let user = &ticket.user;
    let limits = user.limits(None, now);
    let tier = limits.tier;
    let (_, day_label) = crate::community::claim_day(now);
    let claims = async {
        if tier == Tier::Free {
            let used = app.pool().claims_on(&caller.id, &day_label).await?;
            Ok::<_, StoreError>(Some(crate::community::DAILY_CLAIMS.saturating_sub(used)))
        } else {
            Ok(None)
        }
    };
    let taste = taste(app, caller);
    let lyrics = async { app.lyrics().newest_unused(&caller.id).await };
    let (claims, taste, lyrics) = tokio::join!(claims, taste, lyrics);
    let (favourite_genre, pool_pick) = taste?;
    Ok(UserFacts {
        tier,
        generations: GenerationsLeft::from(&limits),
        pool_claims_left: claims?,
        favourite_genre,
        pool_pick,
        unused_lyrics: lyrics?.map(|entry| LyricsPick {
            lyrics_id: entry.lyrics_id.to_string(),
            title: entry.title,
        }),
        pixel_messages_left_today: ticket.granted.remaining,
    })
}
