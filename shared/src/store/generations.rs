//! Recording generations (`GEN#<generation_id>` / `GEN` in the stats table): the one transaction that
//! stores a generation, spends one unit of the period's quota and, on every 20th paid generation,
//! writes the pool contribution and its ranking rows — all of it or none of it.
//!
//! The quota counters live on the user item, one per usage period (`usage.<period key>`), and are
//! updated with an expected-value condition, not a blind `ADD`: the 201 body (with `used` and
//! `remaining`) is stored in the same transaction, so its numbers must be known before it commits.
//! Parallel requests of one user therefore take turns: a loser gets the user as it now is in the
//! cancellation reason (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), reads the clock again and
//! retries at once with a small full-jitter backoff, for as long as `RETRY_BUDGET` allows. A loser
//! only loses to a winner, so while quota remains every request of a burst gets its turn; past the
//! limit every loser ends in 429, and a 503 means the store failed or the budget ran out.

use super::pool::{contribution_items, contribution_pk, ContributionRecord, Contributor, META_SK};
use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, StoreError};
use crate::auth::Caller;
use crate::domain::entitlement::Entitlement;
use crate::domain::generation::{NewGeneration, PoolContribution, RecordedGeneration};
use crate::domain::ids::{GenerationId, UserId};
use crate::domain::limits::limit_reached_code;
use crate::domain::period::Period;
use crate::domain::pool::{is_contribution, points};
use crate::domain::tiers::{Quality, Tier};
use crate::error::{ApiError, ErrorCode};
use crate::http::with_retry_after;
use crate::AppState;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

pub const GEN_SK: &str = "GEN";
/// How long one request may keep retrying lost races before answering 503: far more than a burst of
/// one user's parallel requests needs to take turns (16 parallel clients of one user: at most about
/// 4.5 s on DynamoDB Local on 2 cores), and with one last call's operation timeout still inside the
/// function's timeout (15 s in template.yaml).
pub const RETRY_BUDGET: Duration = Duration::from_secs(6);
/// Upper bound of one backoff sleep (full jitter: uniform in `0..=min(cap, base * 2^attempt)`).
pub const BACKOFF_CAP: Duration = Duration::from_millis(100);
/// How fast the backoff ceiling shrinks with the time a request has already waited.
const AGING: Duration = Duration::from_secs(1);
const BACKOFF_BASE: Duration = Duration::from_millis(2);

pub fn generation_pk(id: &GenerationId) -> String {
    format!("GEN#{id}")
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Where a generation's audio stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioState {
    None,
    Stored,
    Rejected,
}

/// A recorded generation as stored, with the exact 201 body to replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub pk: String,
    pub sk: String,
    pub generation_id: GenerationId,
    pub owner_id: UserId,
    pub quality: Quality,
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    pub period_key: String,
    pub recorded_at: DateTime<Utc>,
    /// The 201 body exactly as first sent.
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution_id: Option<String>,
    pub audio_state: AudioState,
}

/// What record-generation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Newly recorded: 201 with this body.
    Created(String),
    /// Already recorded by this caller: 200 with the stored body.
    Replayed(String),
}

impl Recorded {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Created(_) => StatusCode::CREATED,
            Self::Replayed(_) => StatusCode::OK,
        }
    }

    pub fn into_body(self) -> String {
        match self {
            Self::Created(body) | Self::Replayed(body) => body,
        }
    }
}

/// Access to generation records.
#[derive(Debug, Clone, Copy)]
pub struct GenerationsStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> GenerationsStore<'a> {
    pub fn new(client: &'a Client, table: &'a str) -> Self {
        Self { client, table }
    }

    #[tracing::instrument(skip_all, fields(generation_id = %id))]
    pub async fn get(&self, id: &GenerationId) -> Result<Option<GenerationRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .set_key(Some(item_key(generation_pk(id), GEN_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_failure("GetItem generation", err))?;
        out.item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(StoreError::corrupt)
    }
}

/// Why a transaction did not commit.
enum TxFailure {
    /// The generation id is already recorded (by someone): the record as the cancellation returned
    /// it, when it did.
    IdTaken(Option<Box<GenerationRecord>>),
    /// The user changed since it was read (or DynamoDB saw a conflict): the user as it now is, when
    /// the cancellation returned it.
    UserChanged(Option<Box<UserRecord>>),
    Store(StoreError),
}

/// Records `generation` for `caller`: 201 once, 200 with the same body on every replay, 403/409/429
/// as API.md says, 503 when the store fails or the retry budget is spent.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %generation.generation_id))]
pub async fn record_generation(
    state: &AppState,
    caller: &Caller,
    generation: &NewGeneration,
) -> Result<Recorded, ApiError> {
    let users = state.users();
    let mut user = users.get_or_create(caller, state.clock.now()).await?;
    let started = tokio::time::Instant::now();
    for attempt in 0u32.. {
        // The clock on every attempt: a retry that crosses midnight counts in the new day.
        let now = state.clock.now();
        let entitlement = user.entitlement(now);
        if !entitlement.tier.allows(generation.quality) {
            return replay_or(
                state,
                caller,
                &generation.generation_id,
                quality_refused(&entitlement, generation.quality),
            )
            .await;
        }
        let used = user.used_in(&entitlement.period.key());
        if used >= entitlement.tier.spec().generations {
            return replay_or(
                state,
                caller,
                &generation.generation_id,
                limit_reached(&entitlement, used, now),
            )
            .await;
        }
        let plan = plan(state, &user, &entitlement, generation, used, now)?;
        match commit(&state.dynamo, plan.items).await {
            Ok(()) => return Ok(Recorded::Created(plan.body)),
            Err(TxFailure::IdTaken(record)) => {
                let record = match record {
                    Some(record) => Some(*record),
                    None => state.generations().get(&generation.generation_id).await?,
                };
                // Taken, yet unreadable an instant later: try again.
                if let Some(replay) = replay_of(caller, record)? {
                    return Ok(replay);
                }
            }
            Err(TxFailure::UserChanged(Some(current))) => user = *current,
            Err(TxFailure::UserChanged(None)) => {
                user = users.get(&caller.id).await?.ok_or_else(|| {
                    StoreError::Corrupt("user disappeared while recording".into())
                })?;
            }
            Err(TxFailure::Store(err)) => return Err(err.into()),
        }
        let pause = backoff(attempt, started.elapsed());
        if started.elapsed() + pause >= RETRY_BUDGET {
            tracing::warn!(
                attempts = attempt + 1,
                "record-generation retry budget spent"
            );
            break;
        }
        tokio::time::sleep(pause).await;
    }
    Err(ApiError::dependency_unavailable("the database"))
}

/// Full jitter, uniform in `0..=ceiling`, where the ceiling grows as `base * 2^attempt` up to the cap
/// (losers spread out instead of colliding again at once) and decays as `e^(-waited / AGING)`, so a
/// request that has waited long retries more often than a fresh loser.
fn backoff(attempt: u32, waited: Duration) -> Duration {
    let grown = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(10))
        .min(BACKOFF_CAP);
    let ceiling = grown.mul_f64((-waited.as_secs_f64() / AGING.as_secs_f64()).exp());
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(fastrand::u64(0..=micros))
}

/// The stored answer when this caller already recorded `id` (a replay, 200); 409 when another user
/// did; `None` when nobody has.
async fn recorded_before(
    state: &AppState,
    caller: &Caller,
    id: &GenerationId,
) -> Result<Option<Recorded>, ApiError> {
    replay_of(caller, state.generations().get(id).await?)
}

/// What a stored generation record means for `caller`: its replay, a 409, or nothing.
fn replay_of(
    caller: &Caller,
    record: Option<GenerationRecord>,
) -> Result<Option<Recorded>, ApiError> {
    match record {
        Some(record) if record.owner_id == caller.id => {
            Ok(Some(Recorded::Replayed(record.response)))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::GenerationIdTaken,
            "this generation_id is already recorded by another user; choose another id",
        )
        .with("field", "generation_id")),
        None => Ok(None),
    }
}

/// A refusal (403, 429) stands only if the generation was not recorded before: a retry of a recorded
/// generation gets its stored answer whatever the quota says now.
async fn replay_or(
    state: &AppState,
    caller: &Caller,
    id: &GenerationId,
    refusal: ApiError,
) -> Result<Recorded, ApiError> {
    recorded_before(state, caller, id).await?.ok_or(refusal)
}

fn quality_refused(entitlement: &Entitlement, quality: Quality) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::QualityNotInTier,
        format!(
            "{} quality is not included in the {} tier",
            quality.as_str(),
            entitlement.tier
        ),
    )
    .with("quality", quality)
    .with("tier", entitlement.tier)
    .with("qualities", entitlement.tier.spec().qualities)
}

fn limit_reached(entitlement: &Entitlement, used: u32, now: DateTime<Utc>) -> ApiError {
    let spec = entitlement.tier.spec();
    let code = limit_reached_code(spec.period);
    let err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        format!(
            "all {} generations of this {} are used",
            spec.generations,
            if code == ErrorCode::DailyLimitReached {
                "day"
            } else {
                "month"
            }
        ),
    )
    .with("limit", spec.generations)
    .with("used", used)
    .with("reset_at", rfc3339(entitlement.period.end));
    with_retry_after(err, entitlement.period.seconds_until_end(now))
}

struct Plan {
    body: String,
    items: Vec<TransactWriteItem>,
}

/// The transaction for one attempt, conditioned on the user exactly as it was read.
fn plan(
    state: &AppState,
    user: &UserRecord,
    entitlement: &Entitlement,
    generation: &NewGeneration,
    used: u32,
    now: DateTime<Utc>,
) -> Result<Plan, StoreError> {
    let config = &state.config;
    let tier = entitlement.tier;
    let period_key = entitlement.period.key();
    let limit = tier.spec().generations;
    let paid_total = user.paid_generations_total + u64::from(tier.is_paid());
    let contribution = (tier.is_paid() && is_contribution(paid_total)).then(|| {
        let contribution_id = ulid::Ulid::generate().to_string();
        ContributionRecord {
            pk: contribution_pk(&contribution_id),
            sk: META_SK.to_owned(),
            contribution_id,
            generation_id: generation.generation_id.clone(),
            contributor_id: user.user_id.clone(),
            contributor_username: user.username.clone(),
            contributor_avatar_url: user.avatar_url.clone(),
            genre: generation.genre.clone(),
            title: generation.title.clone(),
            quality: generation.quality,
            points: points(generation.quality),
            plays: 0,
            likes: 0,
            contributed_at: now,
            listed: false,
        }
    });

    let body = RecordedGeneration {
        generation_id: generation.generation_id.clone(),
        recorded: true,
        used: used + 1,
        remaining: limit.saturating_sub(used + 1),
        reset_at: rfc3339(entitlement.period.end),
        pool_contribution: contribution.as_ref().map(|c| PoolContribution {
            contribution_id: c.contribution_id.clone(),
            points: c.points,
        }),
    };
    let body = serde_json::to_string(&body).map_err(StoreError::invalid_request)?;

    let record = GenerationRecord {
        pk: generation_pk(&generation.generation_id),
        sk: GEN_SK.to_owned(),
        generation_id: generation.generation_id.clone(),
        owner_id: user.user_id.clone(),
        quality: generation.quality,
        tier,
        genre: generation.genre.clone(),
        title: generation.title.clone(),
        prompt: generation.prompt.clone(),
        duration_seconds: generation.duration_seconds,
        period_key: period_key.clone(),
        recorded_at: now,
        response: body.clone(),
        contribution_id: contribution.as_ref().map(|c| c.contribution_id.clone()),
        audio_state: AudioState::None,
    };
    let put_generation = Put::builder()
        .table_name(&config.stats_table)
        .set_item(Some(
            serde_dynamo::to_item(&record).map_err(StoreError::invalid_request)?,
        ))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(StoreError::invalid_request)?;

    // The user item: spend one unit of this period's counter, conditioned on everything this attempt
    // was computed from; drop counters no clock can compute again.
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut conditions = vec!["attribute_exists(pk)".to_owned()];
    let mut update = Update::builder()
        .table_name(&config.users_table)
        .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .expression_attribute_values(":rev", AttributeValue::N(user.entitlement_rev.to_string()));
    conditions.push(if user.entitlement_rev == 0 {
        "(attribute_not_exists(entitlement_rev) OR entitlement_rev = :rev)".to_owned()
    } else {
        "entitlement_rev = :rev".to_owned()
    });
    match &user.usage {
        Some(usage) => {
            set.push("#usage.#period = :used".to_owned());
            update = update
                .expression_attribute_names("#usage", "usage")
                .expression_attribute_names("#period", period_key.clone())
                .expression_attribute_values(":used", AttributeValue::N((used + 1).to_string()));
            conditions.push(if used == 0 {
                "attribute_not_exists(#usage.#period)".to_owned()
            } else {
                update = update
                    .expression_attribute_values(":prev_used", AttributeValue::N(used.to_string()));
                "#usage.#period = :prev_used".to_owned()
            });
            let outlived = usage
                .keys()
                .filter(|key| **key != period_key && Period::key_outlived(key, now));
            for (i, key) in outlived.enumerate() {
                remove.push(format!("#usage.#old{i}"));
                update = update.expression_attribute_names(format!("#old{i}"), key.clone());
            }
        }
        // An item from before per-period counters: the map starts with this period.
        None => {
            set.push("#usage = :usage".to_owned());
            conditions.push("attribute_not_exists(#usage)".to_owned());
            update = update
                .expression_attribute_names("#usage", "usage")
                .expression_attribute_values(
                    ":usage",
                    AttributeValue::M(HashMap::from([(
                        period_key.clone(),
                        AttributeValue::N((used + 1).to_string()),
                    )])),
                );
        }
    }
    if tier.is_paid() {
        set.push("paid_generations_total = :paid".to_owned());
        conditions.push(if user.paid_generations_total == 0 {
            "(attribute_not_exists(paid_generations_total) OR paid_generations_total = :prev_paid)"
                .to_owned()
        } else {
            "paid_generations_total = :prev_paid".to_owned()
        });
        update = update
            .expression_attribute_values(":paid", AttributeValue::N(paid_total.to_string()))
            .expression_attribute_values(
                ":prev_paid",
                AttributeValue::N(user.paid_generations_total.to_string()),
            );
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    let update = update
        .update_expression(expression)
        .condition_expression(conditions.join(" AND "))
        .build()
        .map_err(StoreError::invalid_request)?;

    let mut items = vec![
        TransactWriteItem::builder().put(put_generation).build(),
        TransactWriteItem::builder().update(update).build(),
    ];
    if let Some(contribution) = &contribution {
        let contributor = Contributor {
            id: &user.user_id,
            username: user.username.as_deref(),
            avatar_url: user.avatar_url.as_deref(),
            tier,
        };
        items.extend(contribution_items(
            &config.pool_table,
            contribution,
            contributor,
            now,
        )?);
    }
    Ok(Plan { body, items })
}

/// Sends the transaction; tells an id already taken from a lost race from a store failure, and
/// hands back the items as the cancellation returned them.
async fn commit(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), TxFailure> {
    let err = match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            let reasons = cancel.cancellation_reasons();
            let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
            let returned = |index: usize| reasons.get(index).and_then(|r| r.item()).cloned();
            if codes.first() == Some(&"ConditionalCheckFailed") {
                let record = returned(0)
                    .map(serde_dynamo::from_item)
                    .transpose()
                    .map_err(|e| TxFailure::Store(StoreError::corrupt(e)))?;
                return Err(TxFailure::IdTaken(record.map(Box::new)));
            }
            let retryable = |code: &&str| {
                matches!(
                    *code,
                    "None"
                        | "ConditionalCheckFailed"
                        | "TransactionConflict"
                        | "ThrottlingError"
                        | "ProvisionedThroughputExceeded"
                        | "RequestLimitExceeded"
                )
            };
            if !codes.iter().all(retryable) {
                return Err(TxFailure::Store(StoreError::InvalidRequest(format!(
                    "transaction cancelled: {codes:?}"
                ))));
            }
            tracing::debug!(?codes, "transaction lost a race; retrying");
            let user = match codes.get(1) {
                Some(&"ConditionalCheckFailed") => returned(1)
                    .map(serde_dynamo::from_item)
                    .transpose()
                    .map_err(|e| TxFailure::Store(StoreError::corrupt(e)))?,
                _ => None,
            };
            Err(TxFailure::UserChanged(user.map(Box::new)))
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
            Err(TxFailure::UserChanged(None))
        }
        _ => Err(TxFailure::Store(sdk_failure("TransactWriteItems", err))),
    }
}
