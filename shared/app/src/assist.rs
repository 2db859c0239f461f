//! The language-model features' common ground: a unit of the caller's daily allowance taken before
//! the model is asked and given back when it fails (at most `GIVE_BACKS_PER_DAY` a day), and their
//! errors.

use crate::caller::Caller;
use crate::llm::{LanguageModel, LlmError};
use crate::ports::{Allowances, Analytics, Model, RequestBudgets, Time, Users};
use crate::rate::RateLimited;
use crate::retry;
use son1k_domain::analytics::Event;
use son1k_domain::assist::{decide, spent, Feature, Granted, Spent, GIVE_BACKS_PER_DAY};
use son1k_domain::rate::RateStep;
use son1k_store::alerts::AlertWrites;
use son1k_store::allowances::Take;
use son1k_store::analytics::Tally;
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AssistError {
    #[error("daily allowance spent")]
    Spent(Spent),
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error("no language model is configured")]
    NoModel,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] son1k_domain::DomainError),
    /// An edit of a version that is not the latest: the latest one's number.
    #[error("version {current} is the latest")]
    Stale { current: u32 },
}

/// A unit of `feature` taken from the caller's counter of the day the request began in.
#[derive(Debug)]
pub struct Ticket {
    pub feature: Feature,
    /// The counter the unit came from (`lyrics/D#2026-11-26`).
    pub key: String,
    pub granted: Granted,
    /// The user as the take left it.
    pub user: UserRecord,
    /// The alerts the unit fired: written with what the request keeps (the draft, the turn).
    pub alerts: AlertWrites,
}

/// Tries of a take while other transactions hold the user item (a job's commit) before it answers
/// 503. The store's own failures end it at once.
const TAKE_ATTEMPTS: u32 = 12;
/// Tries of a give-back while the user item is in other transactions.
const GIVE_BACK_ATTEMPTS: u32 = 12;

/// Tries of a take that learned something and changed its request: the user item or its counters
/// made, the bucket found in the other form (`domain::rate`: only after another request's progress).
const TAKE_LEARNED: u32 = 5;

/// The configured model, or 503.
pub fn model(app: &impl Model) -> Result<&dyn LanguageModel, AssistError> {
    app.model().ok_or_else(|| {
        tracing::error!("OLLAMA_URL is not set: the language-model routes answer 503");
        AssistError::NoModel
    })
}

/// Takes one unit of `feature` for `caller`, or refuses once the tier's daily allowance is spent
/// (the unit counted past the limit is given back at once).
#[tracing::instrument(skip_all, fields(user_id = %caller.id, feature = feature.as_str()))]
pub async fn take(
    app: &(impl Time + Users + Analytics + Allowances + RequestBudgets),
    caller: &Caller,
    feature: Feature,
) -> Result<Ticket, AssistError> {
    let budget = app.request_budget();
    let mut seen_tat = None;
    let (mut conflicts, mut learned) = (0, 0);
    while conflicts < TAKE_ATTEMPTS && learned < TAKE_LEARNED {
        let now = app.clock().now();
        let key = feature.counter_key(now);
        // The request budget's step from the bucket last seen, taken in the same update.
        let rate = budget.step(seen_tat, now.timestamp_millis());
        if let RateStep::Refused { retry_after } = rate {
            return Err(RateLimited { retry_after }.into());
        }
        let taken = app.allowances();
        let user = match taken.take(&caller.id, feature, &key, &rate, now).await? {
            Take::Counted(user) => *user,
            Take::AtCap(user) => {
                // Which condition failed: the budget (the bucket was not as assumed) or the cap.
                let found = budget.step(user.rate_tat, now.timestamp_millis());
                if std::mem::discriminant(&found) != std::mem::discriminant(&rate) {
                    seen_tat = user.rate_tat;
                    learned += 1;
                    continue;
                }
                let spent = spent(feature, user.entitlement(now).tier, now);
                return Err(refused(app, caller, spent, Some(&found)).await);
            }
            Take::NoUser => {
                app.users().get_or_create(caller.new_user(now)).await?;
                learned += 1;
                continue;
            }
            Take::NoCounters => {
                app.allowances().start_counters(&caller.id).await?;
                learned += 1;
                continue;
            }
            Take::Busy => {
                retry::pause(conflicts).await;
                conflicts += 1;
                continue;
            }
        };
        return granted(app, caller, feature, key, user, now).await;
    }
    Err(StoreError::unavailable(
        "UpdateItem take allowance",
        "the user's item stayed in other transactions",
    )
    .into())
}

/// After a take counted one unit of `key`: the ticket, or (past the tier's allowance) the unit
/// taken back and the refusal.
async fn granted(
    app: &(impl Time + Analytics + Allowances),
    caller: &Caller,
    feature: Feature,
    key: String,
    user: UserRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Ticket, AssistError> {
    let tier = user.entitlement(now).tier;
    match decide(feature, tier, user.used_in(&key), now) {
        Ok(granted) => Ok(Ticket {
            alerts: crate::alerts::of_allowance(&user, feature, &key, &granted, now),
            feature,
            key,
            granted,
            user,
        }),
        Err(spent) => {
            let key = &key;
            retry::until_done(
                "UpdateItem uncount allowance",
                GIVE_BACK_ATTEMPTS,
                || async move { app.allowances().uncount(&caller.id, key).await },
            )
            .await?;
            // The take spent this request's budget already.
            Err(refused(app, caller, spent, None).await)
        }
    }
}

/// The refusal of a spent allowance, counted; `rate`: the budget step the refused request takes
/// in the count's transaction (none when its take spent it).
async fn refused(
    app: &(impl Time + Analytics),
    caller: &Caller,
    spent: Spent,
    rate: Option<&RateStep>,
) -> AssistError {
    let tally = Tally::new(&caller.id, app.clock().now()).with(
        Event::LimitReached,
        [("limit", spent.feature.as_str()), ("period", "day")],
    );
    crate::analytics::count_refusal(app, &tally, rate.map(|step| (&caller.id, step))).await;
    AssistError::Spent(spent)
}

impl Ticket {
    /// Gives the unit back (the model failed, or nothing was stored): to the counter it was taken
    /// from, whatever the day is now, unless that day's `GIVE_BACKS_PER_DAY` are used (then the
    /// failure spends it). A failure to give it back is logged; the unit stays spent.
    pub async fn give_back(&self, app: &impl Allowances) {
        let back = self.feature.give_back_key(&self.key);
        let back = &back;
        let given = retry::until_done(
            "UpdateItem give back allowance",
            GIVE_BACK_ATTEMPTS,
            || async move {
                app.allowances()
                    .give_back(&self.user.user_id, &self.key, back, GIVE_BACKS_PER_DAY)
                    .await
            },
        )
        .await;
        if let Err(err) = given {
            tracing::error!(error = %err, key = %self.key, "a unit of allowance could not be given back");
        }
    }
}
