//! The audit log of admin actions (`domain::audit`): who wrote it (every admin change and every
//! admin read of another user's data, each in its own change's transaction), how it is listed and
//! how it is checked.

use crate::caller::Caller;
use crate::ports::{Audit, Time, Users};
use crate::retry::{self, Linked};
use serde_json::{json, Value};
use son1k_domain::account::LegalHold;
use son1k_domain::audit::{Action, ActionRecord, Actor, Verdict};
use son1k_domain::ids::UserId;
use son1k_store::audit::{Filter, Page, Position};
use son1k_store::users::UserRecord;
use son1k_store::{Attempt, StoreError};

/// The most entries a page of the log holds.
pub const PAGE_LIMIT: usize = 50;

/// An admin acting through a route: what every entry they cause says of them.
#[derive(Debug, Clone)]
pub struct AdminAct<'a> {
    pub admin: &'a UserId,
    /// The route, as `METHOD /path/template`.
    pub via: &'static str,
    pub request_id: &'a str,
}

impl AdminAct<'_> {
    pub fn record(
        &self,
        action: Action,
        target: &UserId,
        before: Value,
        after: Value,
    ) -> ActionRecord {
        ActionRecord {
            actor: Actor {
                user_id: self.admin.clone(),
                via: self.via.to_owned(),
            },
            action,
            target: target.clone(),
            before,
            after,
            request_id: self.request_id.to_owned(),
        }
    }
}

/// Runs one attempt of an audited change of user `target`: reads the log's head and the user
/// together, then `change` (given the head and the user) builds and sends the transaction. `None`
/// from `change` is an answer without a write (no such user, nothing to change).
pub(crate) async fn change_user<T, F, Fut>(
    app: &(impl Audit + Time),
    operation: &'static str,
    target: &UserId,
    change: F,
) -> Result<T, StoreError>
where
    F: Fn(son1k_domain::audit::Head, Option<UserRecord>) -> Fut,
    Fut: std::future::Future<Output = Result<Linked<T>, StoreError>>,
{
    retry::until_linked(operation, || {
        let read = async { app.audit().head_and_user(target).await };
        let change = &change;
        async move {
            match read.await? {
                Attempt::Done((head, user)) => change(head, user).await,
                Attempt::Busy => Ok(Linked::Lost { head_seq: None }),
            }
        }
    })
    .await
}

/// The outcome of a committed-or-not link, as the retry loop counts it.
pub(crate) fn lost_after<T>(head: &son1k_domain::audit::Head) -> Linked<T> {
    Linked::Lost {
        head_seq: Some(head.seq),
    }
}

/// The route a request came through and its id: what an entry says of a read.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// The route, as `METHOD /path/template`.
    pub route: &'static str,
    pub request_id: &'a str,
}

/// Records an admin's read of `owner`'s data before it is answered; nothing for a caller reading
/// their own data, or a user who is no admin (whatever they may read of others is theirs to read:
/// a claimed pool track).
pub async fn admin_read(
    app: &(impl Audit + Time),
    caller: &Caller,
    via: Via<'_>,
    owner: &UserId,
    what: &str,
) -> Result<(), StoreError> {
    if owner == &caller.id || !caller.is_admin() {
        return Ok(());
    }
    let act = AdminAct {
        admin: &caller.id,
        via: via.route,
        request_id: via.request_id,
    };
    user_read(app, &act, owner, what).await
}

/// Records that `act`'s admin read `what` of user `target` (another user's data): one entry, alone.
pub async fn user_read(
    app: &(impl Audit + Time),
    act: &AdminAct<'_>,
    target: &UserId,
    what: &str,
) -> Result<(), StoreError> {
    retry::until_linked("TransactWriteItems audit entry", || async {
        let head = app.audit().head().await?;
        let record = act.record(
            Action::UserRead,
            target,
            Value::Null,
            json!({ "read": what }),
        );
        let link = app.audit().link(record, head, app.clock().now());
        Ok(if app.audit().append(&link).await? {
            Linked::Done(())
        } else {
            lost_after(&link.after)
        })
    })
    .await
}

/// What a hold request did: the hold as it now stands, `None` for no such user.
pub async fn set_hold(
    app: &(impl Audit + Time + Users),
    act: &AdminAct<'_>,
    target: &UserId,
    hold: bool,
    reason: &str,
) -> Result<Option<Option<LegalHold>>, StoreError> {
    change_user(app, "TransactWriteItems legal hold", target, |head, user| async move {
        let Some(user) = user else {
            return Ok(Linked::Done(None));
        };
        // Already as asked: nothing changes, nothing is recorded.
        if user.legal_hold.is_some() == hold {
            return Ok(Linked::Done(Some(user.legal_hold)));
        }
        let now = app.clock().now();
        let placed = hold.then(|| LegalHold {
            since: now,
            by: act.admin.clone(),
            reason: reason.to_owned(),
        });
        let action = if hold {
            Action::HoldPlace
        } else {
            Action::HoldRelease
        };
        let record = act.record(action, target, json!(user.legal_hold), json!(placed));
        let link = app.audit().link(record, head, now);
        Ok(if app.users().set_hold(&user, placed.as_ref(), &link).await? {
            tracing::info!(admin = %act.admin, user_id = %target, hold, "legal hold changed");
            Linked::Done(Some(placed))
        } else {
            lost_after(&link.after)
        })
    })
    .await
}

/// The listing's filters, parsed.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Filter,
    pub after: Option<Position>,
}

/// A page of the log, newest first.
pub async fn list(app: &impl Audit, query: &Query) -> Result<Page, StoreError> {
    app.audit()
        .list(&query.filter, query.after, PAGE_LIMIT)
        .await
}

/// Recomputes the chain from `from_ms` to `to_ms` (epoch ms, included; open ends reach the log's
/// ends). A stretch that reaches the end is checked against the head too, so a removed newest entry
/// is found.
pub async fn verify(
    app: &impl Audit,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<Verdict, StoreError> {
    // The head first: entries written after it was read are beyond the stretch checked against it.
    let head = app.audit().head().await?;
    let to = to_ms.map_or(head.at_ms, |to| to.min(head.at_ms));
    let entries = app.audit().range(from_ms, Some(to)).await?;
    let before = match from_ms {
        Some(from) => app.audit().last_before(from).await?,
        None => None,
    };
    let reaches_end = to_ms.is_none_or(|to| to >= head.at_ms);
    let entries: Vec<_> = entries.into_iter().filter(|e| e.seq <= head.seq).collect();
    Ok(son1k_domain::audit::verify(
        &entries,
        before.as_ref(),
        reaches_end.then_some(&head),
    ))
}
