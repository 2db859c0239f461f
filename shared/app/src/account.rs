//! Closing an account and deleting everything of it but what the law or the accounts need
//! (`docs/account-data.md`). `DELETE /api/me` closes the account at once (the profile gone, the
//! tombstone and the receipt stored, in one transaction) and queues the deletion; the account
//! worker then deletes the rest, each step idempotent, and completes the receipt.

use crate::caller::Caller;
use crate::ports::{
    AccountJobs, Accounts, AudioBucket, Directory, Pool, Stripe, Time, Users, VoiceJobs,
};
use crate::retry;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use son1k_domain::account::{DeletionStatus, Kept, Receipt};
use son1k_domain::ids::UserId;
use son1k_store::account::{key_of, Closed, DeletionWork};
use son1k_store::schema::{BY_OWNER, BY_USER};
use son1k_store::voices::VoiceRecord;
use son1k_store::{Item, StoreError};

/// Tries of a closing while the user item changes under it or is in another transaction.
const CLOSE_ATTEMPTS: u32 = 8;

/// A job of the account worker's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountJob {
    /// Delete what a closed account left (its receipt holds the work).
    Delete { deletion_id: String },
    /// Write the export `export_id` of `user_id` (`crate::export`).
    Export { user_id: UserId, export_id: String },
}

/// The account worker's queue (`ACCOUNT_QUEUE_URL`).
#[derive(Debug, Clone)]
pub struct AccountQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl AccountQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self { client, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, job: &AccountJob) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(StoreError::invalid_request)?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                StoreError::unavailable(
                    "SendMessage account job",
                    aws_sdk_sqs::error::DisplayErrorContext(&err).to_string(),
                )
            })
    }
}

/// The user pool (`COGNITO_USER_POOL_ID`): a closed account's user is deleted from it.
#[derive(Debug, Clone)]
pub struct Cognito {
    client: aws_sdk_cognitoidentityprovider::Client,
    pool_id: String,
}

impl Cognito {
    pub fn new(client: aws_sdk_cognitoidentityprovider::Client, pool_id: String) -> Self {
        Self { client, pool_id }
    }

    /// `AdminDeleteUser`: `true` when a user was deleted, `false` when the pool had none of that
    /// name (deleted before: a retried deletion).
    pub async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        match self
            .client
            .admin_delete_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::unavailable(
                "AdminDeleteUser",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&err).to_string(),
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// An admin placed a legal hold on the account.
    #[error("the account is on legal hold")]
    LegalHold,
    /// No account queue is configured: the deletion could not be started.
    #[error("no account queue")]
    QueueMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Closes the caller's account and queues the deletion of its data; the deletion's receipt as it
/// stands. Asking again answers the same receipt (and queues its deletion again while it runs, in
/// case the first job was lost).
pub async fn close(
    app: &(impl Time + Users + Accounts + AccountJobs),
    caller: &Caller,
) -> Result<Receipt, CloseError> {
    for attempt in 0..CLOSE_ATTEMPTS {
        let user = app.users().get(&caller.id).await?;
        let queue = app.account_jobs().ok_or(CloseError::QueueMissing)?;
        if user.as_ref().is_some_and(|u| u.legal_hold.is_some()) {
            return Err(CloseError::LegalHold);
        }
        if user.is_none() {
            if let Some(receipt) = closed_before(app, queue, &caller.id).await? {
                return Ok(receipt);
            }
        }
        let now = app.clock().now();
        let mut receipt = Receipt::new(ulid::Ulid::generate().to_string(), now);
        if user.is_some() {
            receipt.deleted.insert("profile".to_owned(), 1);
        }
        let work = DeletionWork {
            user_id: caller.id.clone(),
            username: caller.username.clone(),
            stripe_customer_id: user.as_ref().and_then(|u| u.stripe_customer_id.clone()),
            subscription_id: user
                .as_ref()
                .and_then(|u| u.subscription.as_ref())
                .map(|s| s.id.clone()),
        };
        match app
            .accounts()
            .close(&caller.id, user.as_ref(), &receipt, work)
            .await?
        {
            Closed::Done => {
                tracing::info!(user_id = %caller.id, deletion_id = %receipt.deletion_id, "account closed");
                queue
                    .send(&AccountJob::Delete {
                        deletion_id: receipt.deletion_id.clone(),
                    })
                    .await?;
                return Ok(receipt);
            }
            Closed::AlreadyClosed => {
                if let Some(receipt) = closed_before(app, queue, &caller.id).await? {
                    return Ok(receipt);
                }
            }
            Closed::Changed => {}
            Closed::Busy => retry::pause(attempt).await,
        }
    }
    Err(StoreError::unavailable("close account", "its items stayed in other requests").into())
}

/// The receipt of the deletion that closed `user`'s account before, if one did; its job queued
/// again while it runs.
async fn closed_before(
    app: &impl Accounts,
    queue: &AccountQueue,
    user: &UserId,
) -> Result<Option<Receipt>, StoreError> {
    let Some(tombstone) = app.accounts().tombstone(user).await? else {
        return Ok(None);
    };
    let Some(record) = app.accounts().receipt(&tombstone.deletion_id).await? else {
        return Ok(None);
    };
    if record.receipt.status == DeletionStatus::Running {
        queue
            .send(&AccountJob::Delete {
                deletion_id: record.receipt.deletion_id.clone(),
            })
            .await?;
    }
    Ok(Some(record.receipt))
}

/// For a route whose answer reads nothing of the user item (a list of the caller's own things): an
/// empty answer could be a deleted account's, whose token API Gateway still accepts, so the
/// tombstone is read then and such a caller gets 401 (`AccountDeleted`) instead. A user with
/// something to list pays nothing more.
pub async fn refuse_if_closed(app: &impl Accounts, user: &UserId) -> Result<(), StoreError> {
    match app.accounts().tombstone(user).await? {
        Some(_) => Err(StoreError::AccountDeleted),
        None => Ok(()),
    }
}

/// A deletion's receipt, while it answers (`RECEIPT_DAYS` after it was asked for).
pub async fn receipt(
    app: &(impl Time + Accounts),
    deletion_id: &str,
) -> Result<Option<Receipt>, StoreError> {
    Ok(app
        .accounts()
        .receipt(deletion_id)
        .await?
        .map(|r| r.receipt)
        .filter(|r| app.clock().now() < r.expires_at()))
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn sk_starts(item: &Item, prefix: &str) -> bool {
    string(item, "sk").is_some_and(|sk| sk.starts_with(prefix))
}

/// Where one deletion stands while the worker runs it: what it deleted so far.
struct Progress {
    receipt: Receipt,
    work: DeletionWork,
}

impl Progress {
    fn add(&mut self, category: &str, n: u64) {
        if n > 0 {
            *self.receipt.deleted.entry(category.to_owned()).or_default() += n;
        }
    }
}

/// The account worker's deletion `deletion_id`: every step is idempotent, so a job delivered again
/// after a failure does again what is left. `false` when there is nothing to do (no such deletion,
/// or it completed).
pub async fn run_deletion(
    app: &(impl Time + Users + Accounts + AudioBucket + Pool + Stripe + Directory + VoiceJobs),
    deletion_id: &str,
) -> Result<bool, StoreError> {
    let Some(record) = app.accounts().receipt(deletion_id).await? else {
        return Ok(false);
    };
    let Some(work) = record.work else {
        return Ok(false);
    };
    let mut progress = Progress {
        receipt: record.receipt,
        work,
    };
    let user = progress.work.user_id.clone();
    stripe(app, &mut progress).await?;
    voices(app, &mut progress).await?;
    pool(app, &mut progress).await?;
    // Twice: an index is eventually consistent, and what the first pass deleted made room for
    // anything it had not shown yet.
    for _ in 0..2 {
        owned(app, &mut progress).await?;
    }
    partitions(app, &mut progress).await?;
    objects(app, &mut progress).await?;
    if let (Some(cognito), Some(username)) = (app.cognito(), progress.work.username.clone()) {
        if cognito.delete_user(&username).await? {
            progress.add("cognito_user", 1);
        }
    }
    progress.receipt.status = DeletionStatus::Completed;
    progress.receipt.completed_at = Some(app.clock().now());
    app.accounts().save_receipt(&progress.receipt, None).await?;
    tracing::info!(user_id = %user, deletion_id, deleted = ?progress.receipt.deleted, "account deleted");
    Ok(true)
}

async fn stripe(app: &(impl Accounts + Stripe), progress: &mut Progress) -> Result<(), StoreError> {
    let work = progress.work.clone();
    if work.subscription_id.is_none() && work.stripe_customer_id.is_none() {
        return Ok(());
    }
    let stripe = app.stripe().ok_or_else(|| {
        StoreError::unavailable("close Stripe customer", "Stripe is not configured")
    })?;
    let failed = |err: crate::billing::BillingError| {
        StoreError::unavailable("close Stripe customer", err.to_string())
    };
    if let Some(subscription) = &work.subscription_id {
        stripe
            .cancel_subscription(subscription)
            .await
            .map_err(failed)?;
        progress.add("stripe_subscription_cancelled", 1);
    }
    if let Some(customer) = &work.stripe_customer_id {
        let detached = stripe
            .detach_payment_methods(customer)
            .await
            .map_err(failed)?;
        progress.add("stripe_payment_methods", detached);
    }
    Ok(())
}

/// Each voice's worker told to delete its copies, and the voice's owner pointer deleted (its item
/// and recordings go with the user's partition and objects).
async fn voices(
    app: &(impl Accounts + AudioBucket + VoiceJobs),
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let store = app.accounts();
    let users = store.users_table();
    let user = progress.work.user_id.clone();
    let items = store
        .partition(users, &son1k_store::users::user_pk(&user))
        .await?;
    let voices: Vec<VoiceRecord> = items
        .into_iter()
        .filter(|item| sk_starts(item, "VOICE#"))
        .map(|item| serde_dynamo::from_item(item).map_err(StoreError::corrupt))
        .collect::<Result<_, _>>()?;
    if voices.is_empty() {
        return Ok(());
    }
    let queue = app
        .voice_jobs()
        .ok_or_else(|| StoreError::unavailable("delete voices", "no voice jobs queue"))?;
    let mut pointers = Vec::new();
    for voice in &voices {
        queue.send(&crate::voices::delete_job(app, voice)).await?;
        pointers.push(son1k_store::voices::owner_pointer_key(&voice.voice_id));
    }
    // The voices themselves go with the user's partition (`partitions`), where they are counted.
    store.delete(users, pointers).await?;
    Ok(())
}

/// The user's pool contributions withdrawn (each with its likes: off every listing), their likes of
/// others' items taken back (the counts go down), their ranking rows and their claims deleted.
async fn pool(
    app: &(impl Time + Accounts + Pool),
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let store = app.accounts();
    let (stats, pool) = (store.stats_table(), store.pool_table());
    let user = progress.work.user_id.clone();
    // Contributions: the user's generations say which.
    let generations: Vec<Item> = store
        .indexed(stats, BY_OWNER, "owner_id", &user)
        .await?
        .into_iter()
        .filter(|key| string(key, "sk").as_deref() == Some("GEN"))
        .collect();
    let mut withdrawn = 0;
    for generation in store.items(stats, &generations).await? {
        if let Some(contribution) = string(&generation, "contribution_id") {
            // Only the user's own contributions: a claimed track names the contribution it came
            // from, which stays its contributor's.
            let own = app
                .pool()
                .contribution(&contribution)
                .await?
                .is_some_and(|c| c.contributor_id == user);
            if !own {
                continue;
            }
            let rows = store
                .partition(pool, &son1k_store::pool::contribution_pk(&contribution))
                .await?;
            let keys = rows.iter().map(key_of).collect();
            if store.delete(pool, keys).await? > 0 {
                withdrawn += 1;
            }
        }
    }
    progress.add("pool_contributions", withdrawn);
    // Likes (given back, so listings count right) and ranking rows.
    let rows = store.indexed(pool, BY_USER, "user_id", &user).await?;
    let (likes, ranks): (Vec<Item>, Vec<Item>) =
        rows.into_iter().partition(|key| sk_starts(key, "LIKE#"));
    for like in &likes {
        let Some(contribution) =
            string(like, "pk").and_then(|pk| pk.strip_prefix("CONTRIB#").map(str::to_owned))
        else {
            continue;
        };
        if let Some(item) = app.pool().contribution(&contribution).await? {
            if item.listed {
                for attempt in 0..CLOSE_ATTEMPTS {
                    match app
                        .pool()
                        .like(&item, &user, false, app.clock().now())
                        .await?
                    {
                        son1k_store::Attempt::Done(()) => break,
                        son1k_store::Attempt::Busy => retry::pause(attempt).await,
                    }
                }
            }
        }
    }
    // Whatever an unlike left (an item delisted meanwhile) goes as it is.
    progress.add("likes", store.delete(pool, likes).await?);
    progress.add("ranking_rows", store.delete(pool, ranks).await?);
    let mut claims = Vec::new();
    for pk in [son1k_store::pool::claim_pk(&user), format!("CLAIMS#{user}")] {
        claims.extend(store.partition(pool, &pk).await?.iter().map(key_of));
    }
    progress.add("claims", store.delete(pool, claims).await?);
    Ok(())
}

/// The user's items outside their partitions: generations and jobs, lyrics versions, analytics
/// events, play markers. (The daily counters hold no user.)
async fn owned(app: &impl Accounts, progress: &mut Progress) -> Result<(), StoreError> {
    let store = app.accounts();
    let stats = store.stats_table();
    let keys = store
        .indexed(stats, BY_OWNER, "owner_id", &progress.work.user_id)
        .await?;
    let groups = by_category(
        keys,
        "pk",
        &[
            ("GEN#", "generations"),
            ("LYR#", "lyrics_versions"),
            ("EVT#", "analytics_events"),
        ],
        "play_markers",
    );
    for (category, keys) in groups {
        progress.add(category, store.delete(stats, keys).await?);
    }
    Ok(())
}

/// The user's own partitions: in the users table everything but the consent records and the
/// ledger's payments (kept under the pseudonym), in the stats table Pixel's memory and taste, in the
/// alerts table the alerts and their markers.
async fn partitions(app: &impl Accounts, progress: &mut Progress) -> Result<(), StoreError> {
    let store = app.accounts();
    let user = progress.work.user_id.clone();
    let pk = son1k_store::users::user_pk(&user);
    let kept_pk = format!("ANON#{}", progress.receipt.pseudonym);
    let (mut consents, mut payments, mut deleted) = (0, 0, Vec::new());
    for item in store.partition(store.users_table(), &pk).await? {
        let kind = string(&item, "kind");
        if sk_starts(&item, "CONSENT#") {
            store
                .rekey(
                    store.users_table(),
                    &item,
                    &kept_pk,
                    (&user, &progress.receipt.pseudonym),
                )
                .await?;
            consents += 1;
        } else if sk_starts(&item, "LEDGER#")
            && matches!(kind.as_deref(), Some("purchase" | "void"))
        {
            store
                .rekey(
                    store.users_table(),
                    &item,
                    &kept_pk,
                    (&user, &progress.receipt.pseudonym),
                )
                .await?;
            payments += 1;
        } else {
            deleted.push(key_of(&item));
        }
    }
    for (category, keys) in by_category(
        deleted,
        "sk",
        &[
            ("VOICE#", "voices"),
            ("LEDGER#", "credit_ledger"),
            ("EXPORT#", "exports"),
        ],
        "profile",
    ) {
        progress.add(category, store.delete(store.users_table(), keys).await?);
    }
    let stats: Vec<Item> = store
        .partition(store.stats_table(), &pk)
        .await?
        .iter()
        .map(key_of)
        .collect();
    for (category, keys) in by_category(
        stats,
        "sk",
        &[("LYR#", "lyrics"), ("CONV#", "pixel_memory")],
        "pixel_taste",
    ) {
        progress.add(category, store.delete(store.stats_table(), keys).await?);
    }
    let alerts: Vec<Item> = store
        .partition(store.alerts_table(), &pk)
        .await?
        .iter()
        .map(key_of)
        .collect();
    progress.add("alerts", store.delete(store.alerts_table(), alerts).await?);
    keep(
        progress,
        "consent_records",
        consents,
        "proof that each cloned voice was made with its speaker's consent",
    );
    keep(
        progress,
        "payments",
        payments,
        "accounting: credit packs paid for and refunded",
    );
    Ok(())
}

/// `keys` grouped by the first of `prefixes` their `attribute` (`pk` or `sk`) starts with (`other`
/// for none).
fn by_category(
    keys: Vec<Item>,
    attribute: &str,
    prefixes: &[(&str, &'static str)],
    other: &'static str,
) -> Vec<(&'static str, Vec<Item>)> {
    let mut groups: Vec<(&'static str, Vec<Item>)> = Vec::new();
    for key in keys {
        let value = string(&key, attribute).unwrap_or_default();
        let category = prefixes
            .iter()
            .find(|(prefix, _)| value.starts_with(prefix))
            .map_or(other, |(_, category)| *category);
        match groups.iter_mut().find(|(c, _)| *c == category) {
            Some((_, group)) => group.push(key),
            None => groups.push((category, vec![key])),
        }
    }
    groups
}

fn keep(progress: &mut Progress, category: &str, items: u64, reason: &str) {
    if items == 0 {
        return;
    }
    match progress
        .receipt
        .kept
        .iter_mut()
        .find(|k| k.category == category)
    {
        Some(kept) => kept.items += items,
        None => progress.receipt.kept.push(Kept {
            category: category.to_owned(),
            items,
            reason: reason.to_owned(),
        }),
    }
}

/// Every version of every object under the user's prefixes.
async fn objects(app: &impl AudioBucket, progress: &mut Progress) -> Result<(), StoreError> {
    let user = progress.work.user_id.clone();
    for (category, prefix) in user_prefixes(&user) {
        let n = app.audio().delete_under(&prefix).await?;
        progress.add(category, n as u64);
    }
    Ok(())
}

/// The S3 prefixes that hold a user's objects, by what they hold.
pub fn user_prefixes(user: &UserId) -> [(&'static str, String); 4] {
    [
        ("audio_objects", format!("audio/{user}/")),
        ("voice_recordings", format!("voices/{user}/")),
        ("voice_models", format!("voice-models/{user}/")),
        ("exports", format!("exports/{user}/")),
    ]
}
