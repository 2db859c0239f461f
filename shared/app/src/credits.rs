//! Credit blocks beside the subscription (`domain::credits`): the caller's balance and ledger, and an
//! admin's promotional grant.

use crate::caller::Caller;
use crate::ports::{Credits, Time, Users};
use crate::retry;
use son1k_domain::credits::{Block, BlockView, CreditsView, GrantRequest, LedgerKind, Source};
use son1k_domain::ids::UserId;
use son1k_store::credits::{LedgerPage, LedgerRecord};
use son1k_store::{Attempt, StoreError};

/// Tries of a grant while the user item changes under it or is in another transaction.
const GRANT_ATTEMPTS: u32 = 8;

/// The most ledger entries a page holds.
pub const PAGE_LIMIT: usize = 20;

/// The caller's balance and the blocks that can still pay, in spending order (one read; the
/// caller's first request makes its user).
pub async fn view(app: &(impl Time + Users), caller: &Caller) -> Result<CreditsView, StoreError> {
    let now = app.clock().now();
    let user = app.users().get_or_create(caller.new_user(now)).await?;
    Ok(CreditsView::new(&user.credits, now))
}

/// A page of the caller's ledger, newest first, after the entry `after` (from [`cursor`]).
pub async fn ledger(
    app: &impl Credits,
    caller: &Caller,
    after: Option<&str>,
) -> Result<LedgerPage, StoreError> {
    app.credits().ledger(&caller.id, after, PAGE_LIMIT).await
}

/// The entry id a ledger cursor names, or a 400 naming `cursor`.
pub fn cursor(raw: &str) -> Result<String, son1k_domain::DomainError> {
    crate::alerts::cursor(raw)
}

/// `admin` grants `target` a promotional block as `request` asks (checked against the clock by the
/// caller: `GrantRequest::new`); `None` when there is no such user.
pub async fn grant(
    app: &(impl Time + Users + Credits),
    admin: &UserId,
    target: &UserId,
    request: &GrantRequest,
) -> Result<Option<BlockView>, StoreError> {
    let block_id = ulid::Ulid::generate().to_string();
    let mut attempt = 0;
    while attempt < GRANT_ATTEMPTS {
        let Some(user) = app.users().get(target).await? else {
            return Ok(None);
        };
        let now = app.clock().now();
        let block = Block::new(Source::Grant, request.generations, request.expires_at, now);
        let mut entry =
            LedgerRecord::new(target, LedgerKind::Grant, &block_id, block.generations, now);
        entry.actor = Some(admin.clone());
        entry.reason = Some(request.reason.clone());
        match app
            .credits()
            .add_block(&user, &block_id, &block, &entry)
            .await?
        {
            Attempt::Done(true) => {
                tracing::info!(admin = %admin, user_id = %target, block_id, generations = block.generations, "credits granted");
                return Ok(Some(BlockView::of(&block_id, &block)));
            }
            // Its first block came meanwhile: read it again.
            Attempt::Done(false) => {}
            Attempt::Busy => retry::pause(attempt).await,
        }
        attempt += 1;
    }
    Err(StoreError::unavailable(
        "TransactWriteItems credit block",
        "the user item stayed in other transactions",
    ))
}
