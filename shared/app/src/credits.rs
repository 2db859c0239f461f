//! Credit blocks beside the subscription (`domain::credits`): the caller's balance and ledger, and an
//! admin's promotional grant.

use crate::audit::{change_user, lost_after, AdminAct};
use crate::caller::Caller;
use crate::ports::{Audit, Credits, Time, Users};
use crate::retry;
use crate::retry::Linked;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use son1k_domain::analytics::Event;
use son1k_domain::audit::Action;
use son1k_domain::credits::{Block, BlockView, CreditsView, GrantRequest, LedgerKind, Source};
use son1k_domain::ids::UserId;
use son1k_store::analytics::Tally;
use son1k_store::credits::{LedgerPage, LedgerRecord};
use son1k_store::users::UserRecord;
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
    app: &(impl Credits + crate::ports::Accounts),
    caller: &Caller,
    after: Option<&str>,
) -> Result<LedgerPage, StoreError> {
    let page = app.credits().ledger(&caller.id, after, PAGE_LIMIT).await?;
    if page.items.is_empty() {
        crate::account::refuse_if_closed(app, &caller.id).await?;
    }
    Ok(page)
}

/// The entry id a ledger cursor names, or a 400 naming `cursor`.
pub fn cursor(raw: &str) -> Result<String, son1k_domain::DomainError> {
    crate::alerts::cursor(raw)
}

/// `act`'s admin grants `target` a promotional block as `request` asks (checked against the clock
/// by the caller: `GrantRequest::new`), with its audit entry; `None` when there is no such user.
pub async fn grant(
    app: &(impl Time + Users + Credits + Audit),
    act: &AdminAct<'_>,
    target: &UserId,
    request: &GrantRequest,
) -> Result<Option<BlockView>, StoreError> {
    let block_id = ulid::Ulid::generate().to_string();
    let block_id = block_id.as_str();
    change_user(app, "TransactWriteItems credit grant", target, |head, user| async move {
        let Some(user) = user else {
            return Ok(Linked::Done(None));
        };
        let now = app.clock().now();
        let block = Block::new(Source::Grant, request.generations, request.expires_at, now);
        let mut entry =
            LedgerRecord::new(target, LedgerKind::Grant, block_id, block.generations, now);
        entry.actor = Some(act.admin.clone());
        entry.reason = Some(request.reason.clone());
        let view = BlockView::of(block_id, &block);
        let record = act.record(
            Action::CreditsGrant,
            target,
            Value::Null,
            json!({"block": view, "reason": request.reason}),
        );
        let link = app.audit().link(record, head, now);
        match app
            .credits()
            .add_block(&user, (block_id, &block), &[entry], None, Some(&link))
            .await?
        {
            Attempt::Done(true) => {
                tracing::info!(admin = %act.admin, user_id = %target, block_id, generations = block.generations, "credits granted");
                Ok(Linked::Done(Some(view)))
            }
            // Its first block came meanwhile, another entry came first, or an item was held.
            Attempt::Done(false) | Attempt::Busy => Ok(lost_after(&link.after)),
        }
    })
    .await
}

/// A paid pack, as the webhook read it from the checkout session.
#[derive(Debug, Clone)]
pub struct Purchase<'a> {
    /// The checkout session's id: the block's id, so a session adds one block however often its
    /// events arrive.
    pub session: &'a str,
    pub generations: u32,
    pub payment: Option<&'a str>,
    /// When Stripe says it was paid (the event's `created`): the block pays for 12 months from it.
    pub paid_at: DateTime<Utc>,
    pub pack: Option<&'a str>,
}

/// What a purchase or a refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (a block added, or voided, or a refund noted).
    Applied,
    /// Nothing to do: done before.
    Done,
}

/// Adds the block of `purchase` to `user`, once: a second delivery (or the other event of an
/// asynchronous payment) finds the block there. A payment refunded before this adds it voided.
pub async fn purchase(
    app: &(impl Time + Users + Credits),
    mut user: UserRecord,
    purchase: &Purchase<'_>,
) -> Result<Outcome, StoreError> {
    for attempt in 0..GRANT_ATTEMPTS {
        if user.credits.contains_key(purchase.session) {
            return Ok(Outcome::Done);
        }
        let now = app.clock().now();
        let mut block = Block::purchase(
            purchase.generations,
            purchase.paid_at,
            purchase.payment.map(str::to_owned),
            now,
        );
        let id = &user.user_id;
        let mut entries = vec![LedgerRecord::new(
            id,
            LedgerKind::Purchase,
            purchase.session,
            block.generations,
            now,
        )];
        let refunded = purchase.payment.is_some_and(|p| user.refunded(p));
        if refunded {
            let voided = block.void(now);
            entries.push(LedgerRecord::new(
                id,
                LedgerKind::Void,
                purchase.session,
                voided,
                now,
            ));
        }
        let tally = Tally::new(id, now).with(
            Event::CreditsPurchased,
            [
                ("block_id", purchase.session),
                ("pack", purchase.pack.unwrap_or("")),
                ("generations", &block.generations.to_string()),
            ],
        );
        match app
            .credits()
            .add_block(
                &user,
                (purchase.session, &block),
                &entries,
                Some(&tally),
                None,
            )
            .await?
        {
            Attempt::Done(true) => {
                tracing::info!(user_id = %id, block_id = purchase.session, generations = block.generations, refunded, "credits purchased");
                return Ok(Outcome::Applied);
            }
            Attempt::Done(false) => {}
            Attempt::Busy => retry::pause(attempt).await,
        }
        user = retry::reread(app, &user.user_id, "changing credits").await?;
    }
    Err(contended())
}

/// Voids what remains of the block `payment` bought (spent credits stay spent). A refund that
/// arrives before its purchase is noted on the user, and the block is added voided.
pub async fn refund(
    app: &(impl Time + Users + Credits),
    mut user: UserRecord,
    payment: &str,
) -> Result<Outcome, StoreError> {
    for attempt in 0..GRANT_ATTEMPTS {
        let found = user
            .credits
            .iter()
            .find(|(_, b)| b.payment.as_deref() == Some(payment))
            .map(|(id, b)| (id.clone(), b.clone()));
        let now = app.clock().now();
        let stored = match found {
            // Voided before (a redelivery, or another refund of the same charge), or expired
            // with nothing left. A block with none left that still pays is voided all the same:
            // a credit a running job holds must not come back to it.
            Some((_, block)) if block.remaining == 0 && block.until <= now.timestamp() => {
                return Ok(Outcome::Done)
            }
            Some((block_id, block)) => {
                let entry = LedgerRecord::new(
                    &user.user_id,
                    LedgerKind::Void,
                    &block_id,
                    block.remaining,
                    now,
                );
                let done = app
                    .credits()
                    .void_block(&user.user_id, (&block_id, &block), &entry)
                    .await?;
                if done == Attempt::Done(true) {
                    tracing::info!(user_id = %user.user_id, block_id, voided = block.remaining, "credits voided by a refund");
                    return Ok(Outcome::Applied);
                }
                done
            }
            // Noted already, and still no block: nothing more until the purchase arrives.
            None if user.refunded(payment) => return Ok(Outcome::Done),
            // Noted now; read again, as a racing purchase may have added the block meanwhile.
            None => app
                .credits()
                .note_refund(&user.user_id, payment)
                .await?
                .map(|()| false),
        };
        if stored == Attempt::Busy {
            retry::pause(attempt).await;
        }
        user = retry::reread(app, &user.user_id, "changing credits").await?;
    }
    Err(contended())
}

fn contended() -> StoreError {
    StoreError::unavailable(
        "TransactWriteItems credit block",
        "the user item stayed in other transactions",
    )
}
