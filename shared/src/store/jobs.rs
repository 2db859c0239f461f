//! Generation jobs (`GEN#<generation_id>` / `JOB` in the stats table) and their three transactions:
//! reserve (the job and one unit of quota on the user item), commit (the recorded generation exactly
//! as record-generation writes it, the unit spent from the reservation's period, the storage added
//! under the quota) and release (the job failed, the unit given back). Each is all or nothing.

use super::analytics::Tally;
use super::generations::{
    decode, generation_pk, spend_update, GenerationRecord, StoredAudio, GEN_SK,
};
use super::pool::{contribution_items, ContributionRecord, Contributor};
use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, StoreError};
use crate::config::Config;
use crate::domain::ids::{GenerationId, UserId};
use crate::domain::jobs::{JobFailure, JobStatus, Reservation};
use crate::domain::metering::Grant;
use crate::domain::tiers::{Quality, Tier};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const JOB_SK: &str = "JOB";
/// How long a job's item is kept (then the table's TTL removes it).
pub const JOB_KEPT: chrono::Duration = chrono::Duration::days(90);

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub pk: String,
    pub sk: String,
    pub generation_id: GenerationId,
    pub owner_id: UserId,
    pub status: JobStatus,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub quality: Quality,
    pub duration_seconds: f64,
    /// The tier and period the unit was reserved in.
    pub tier: Tier,
    pub period_key: String,
    /// When the reservation stops counting (epoch seconds); the job cannot commit after it.
    pub reserved_until: i64,
    /// The table's TTL (epoch seconds): a job is kept `JOB_KEPT` after it was submitted; a
    /// succeeded one's generation stays as its own item.
    pub expires_at: i64,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobFailure>,
    /// The worker run holding the job, and until when (epoch ms): another run waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    /// Provider calls made for this job, over every run.
    #[serde(default)]
    pub provider_calls: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<StoredAudio>,
}

impl JobRecord {
    /// The status at `now`: a job whose reservation expired unfinished has failed, whatever the
    /// item still says (computed on read; the worker or the next run writes it down).
    pub fn status_at(&self, now: DateTime<Utc>) -> (JobStatus, Option<JobFailure>) {
        if !self.status.is_final() && now.timestamp() >= self.reserved_until {
            return (JobStatus::Failed, Some(JobFailure::TimedOut));
        }
        (self.status, self.error)
    }

    pub fn reservation(&self) -> Reservation {
        Reservation {
            period_key: self.period_key.clone(),
            until: self.reserved_until,
        }
    }
}

pub fn job_key(id: &GenerationId) -> std::collections::HashMap<String, AttributeValue> {
    item_key(generation_pk(id), JOB_SK)
}

/// What DynamoDB did with a reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum ReserveOutcome {
    Reserved,
    /// A job with this id exists: as the cancellation returned it, if it did.
    JobExists(Option<Box<JobRecord>>),
    /// The id was recorded by record-generation.
    GenerationExists,
    /// The user item changed since it was read (or a conflicting transaction): the user as it now
    /// is, when the cancellation returned it.
    UserChanged(Option<Box<UserRecord>>),
}

/// What DynamoDB did with a commit or a release.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    Done,
    /// This run no longer holds the job (another run took it over, or it finished).
    LeaseLost,
    /// The generation id was recorded by record-generation meanwhile.
    GenerationExists,
    /// The user item is not as read: read it again and decide again.
    UserChanged,
}

/// A commit: the generation as record-generation would store it, the job's audio and the numbers.
#[derive(Debug, Clone)]
pub struct CommitWrite<'a> {
    pub job: &'a JobRecord,
    pub lease_id: &'a str,
    pub user: &'a UserRecord,
    pub generation: &'a GenerationRecord,
    pub audio: &'a StoredAudio,
    /// The owner's `storage_used_bytes` must be at most this before the audio is added.
    pub max_storage_before: Option<u64>,
    pub paid_total_after: u64,
    pub contribution: Option<&'a ContributionRecord>,
    pub tally: &'a Tally,
    pub provider: &'a str,
    pub now: DateTime<Utc>,
}

/// How a job ended, as its item records it.
#[derive(Debug, Clone, Copy)]
pub struct JobEnd<'a> {
    pub status: JobStatus,
    pub failure: Option<JobFailure>,
    pub provider: Option<&'a str>,
    pub audio: Option<&'a StoredAudio>,
    /// Provider calls this run made.
    pub calls: u32,
    pub now: DateTime<Utc>,
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Access to jobs.
#[derive(Debug, Clone, Copy)]
pub struct JobsStore<'a> {
    client: &'a Client,
    config: &'a Config,
}

impl<'a> JobsStore<'a> {
    pub fn new(client: &'a Client, config: &'a Config) -> Self {
        Self { client, config }
    }

    #[tracing::instrument(skip_all, fields(generation_id = %id))]
    pub async fn get(&self, id: &GenerationId) -> Result<Option<JobRecord>, StoreError> {
        super::get_item(
            self.client,
            &self.config.stats_table,
            job_key(id),
            "GetItem job",
        )
        .await
    }

    /// Stores `job` and reserves its unit on `user` (as read, decided as `grant`), unless the id is
    /// taken by a job or a recorded generation. Expired reservations are dropped on the way.
    #[tracing::instrument(skip_all, fields(generation_id = %job.generation_id))]
    pub async fn reserve(
        &self,
        user: &UserRecord,
        grant: &Grant,
        job: &JobRecord,
        now: DateTime<Utc>,
    ) -> Result<ReserveOutcome, StoreError> {
        let put = Put::builder()
            .table_name(&self.config.stats_table)
            .set_item(Some(
                serde_dynamo::to_item(job).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(StoreError::invalid_request)?;
        let unrecorded = ConditionCheck::builder()
            .table_name(&self.config.stats_table)
            .set_key(Some(item_key(generation_pk(&job.generation_id), GEN_SK)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut map: BTreeMap<String, Reservation> = user
            .reservations
            .iter()
            .filter(|(_, r)| r.active(now))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        map.insert(job.generation_id.to_string(), job.reservation());
        let update = spend_update(&self.config.users_table, user, grant, Some(&map), now)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder()
                .condition_check(unrecorded)
                .build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(ReserveOutcome::Reserved),
            Err(err) => err,
        };
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        let reasons = match err.as_service_error() {
            Some(E::TransactionCanceledException(cancel)) => cancel.cancellation_reasons(),
            Some(E::TransactionInProgressException(_)) => {
                return Ok(ReserveOutcome::UserChanged(None))
            }
            _ => return Err(sdk_failure("TransactWriteItems reserve", err)),
        };
        let codes = super::cancellation_codes(reasons);
        let returned = |i: usize| reasons.get(i).and_then(|r| r.item());
        if codes.first() == Some(&"ConditionalCheckFailed") {
            return Ok(ReserveOutcome::JobExists(decode(returned(0))?));
        }
        if codes.get(1) == Some(&"ConditionalCheckFailed") {
            return Ok(ReserveOutcome::GenerationExists);
        }
        super::retryable("TransactWriteItems reserve", &codes)?;
        let user = match codes.get(2) {
            Some(&"ConditionalCheckFailed") => decode(returned(2))?,
            _ => None,
        };
        Ok(ReserveOutcome::UserChanged(user))
    }

    /// Takes the job for one worker run until `until_ms`, unless it is final or another run holds
    /// it. Returns the job as it now is, `None` when it cannot be taken.
    pub async fn lease(
        &self,
        id: &GenerationId,
        lease_id: &str,
        now: DateTime<Utc>,
        until_ms: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.config.stats_table)
            .set_key(Some(job_key(id)))
            .update_expression(
                "SET #status = :running, lease_id = :lease, lease_until = :until, \
                 started_at = if_not_exists(started_at, :now)",
            )
            .condition_expression(
                "attribute_exists(pk) AND #status IN (:queued, :running) AND \
                 (attribute_not_exists(lease_until) OR lease_until <= :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":lease", s(lease_id))
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(serde_dynamo::from_item)
                .transpose()
                .map_err(StoreError::corrupt),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => Ok(None),
                _ => Err(sdk_failure("UpdateItem job lease", err)),
            },
        }
    }

    /// Gives the lease back early (a run that stops without finishing), so a redelivery need not
    /// wait for it to run out. Best effort: a lease that stays runs out by itself.
    pub async fn drop_lease(&self, id: &GenerationId, lease_id: &str, calls: u32) {
        let result = self
            .client
            .update_item()
            .table_name(&self.config.stats_table)
            .set_key(Some(job_key(id)))
            .update_expression("REMOVE lease_id, lease_until ADD provider_calls :calls")
            .condition_expression("lease_id = :lease")
            .expression_attribute_values(":lease", s(lease_id))
            .expression_attribute_values(":calls", n(calls))
            .send()
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "lease not given back; it runs out by itself");
        }
    }

    /// The job's final update: by the run holding `lease_id`, or (`None`) of a job found expired.
    fn finish_job(
        &self,
        job: &JobRecord,
        lease_id: Option<&str>,
        end: &JobEnd<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let JobEnd {
            status,
            failure,
            provider,
            audio,
            calls,
            now,
        } = *end;
        let mut set = vec!["#status = :status", "finished_at = :now"];
        let mut update = Update::builder()
            .table_name(&self.config.stats_table)
            .set_key(Some(job_key(&job.generation_id)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":calls", n(calls));
        if let Some(failure) = failure {
            set.push("#error = :error");
            update = update
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(failure.as_str()));
        }
        if let Some(provider) = provider {
            set.push("provider = :provider");
            update = update.expression_attribute_values(":provider", s(provider));
        }
        if let Some(audio) = audio {
            set.push("audio = :audio");
            update = update.expression_attribute_values(
                ":audio",
                serde_dynamo::to_attribute_value(audio).map_err(StoreError::invalid_request)?,
            );
        }
        update = match lease_id {
            Some(lease) => update
                .condition_expression("lease_id = :lease")
                .expression_attribute_values(":lease", s(lease)),
            None => update
                .condition_expression("#status IN (:queued, :running)")
                .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
                .expression_attribute_values(":running", s(JobStatus::Running.as_str())),
        };
        let update = update
            .update_expression(format!(
                "SET {} REMOVE lease_id, lease_until ADD provider_calls :calls",
                set.join(", ")
            ))
            .build()
            .map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Records the job's generation: the GEN item as record-generation writes it, the reservation
    /// spent from its period's counter, the audio's bytes added under the quota, the 20th paid
    /// generation's pool contribution (listed at once: its audio is stored), the counts.
    pub async fn commit(
        &self,
        write: &CommitWrite<'_>,
        calls: u32,
    ) -> Result<FinishOutcome, StoreError> {
        let (job, user) = (write.job, write.user);
        let end = JobEnd {
            status: JobStatus::Succeeded,
            failure: None,
            provider: Some(write.provider),
            audio: Some(write.audio),
            calls,
            now: write.now,
        };
        let finish = self.finish_job(job, Some(write.lease_id), &end)?;
        let put = Put::builder()
            .table_name(&self.config.stats_table)
            .set_item(Some(
                serde_dynamo::to_item(write.generation).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::invalid_request)?;
        let counted = user.used_in(&job.period_key);
        let mut conditions = vec!["attribute_exists(pk)", "#res.#gid.#until > :now_s"];
        let mut update = Update::builder()
            .table_name(&self.config.users_table)
            .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
            .expression_attribute_names("#res", "reservations")
            .expression_attribute_names("#gid", job.generation_id.to_string())
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#usage", "usage")
            .expression_attribute_names("#period", job.period_key.clone())
            .expression_attribute_values(":now_s", n(write.now.timestamp()))
            .expression_attribute_values(":used", n(counted + 1))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":size", n(write.audio.size_bytes));
        conditions.push(super::generations::counter_condition(counted));
        if counted > 0 {
            update = update.expression_attribute_values(":prev_used", n(counted));
        }
        let mut set = vec!["#usage.#period = :used"];
        if write.paid_total_after != user.paid_generations_total {
            set.push("paid_generations_total = :paid");
            conditions.push(super::generations::paid_condition(
                user.paid_generations_total,
            ));
            update = update
                .expression_attribute_values(":paid", n(write.paid_total_after))
                .expression_attribute_values(":prev_paid", n(user.paid_generations_total));
        }
        if let Some(max) = write.max_storage_before {
            conditions.push(
                "(attribute_not_exists(storage_used_bytes) OR storage_used_bytes <= :max_storage)",
            );
            update = update.expression_attribute_values(":max_storage", n(max));
        }
        let update = update
            .update_expression(format!(
                "SET {} REMOVE #res.#gid ADD reservations_rev :one, storage_used_bytes :size",
                set.join(", ")
            ))
            .condition_expression(conditions.join(" AND "))
            .build()
            .map_err(StoreError::invalid_request)?;
        let mut items = vec![
            finish,
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        if let Some(contribution) = write.contribution {
            let contributor = Contributor {
                id: &user.user_id,
                username: user.username.as_deref(),
                avatar_url: user.avatar_url.as_deref(),
                tier: job.tier,
            };
            items.extend(contribution_items(
                &self.config.pool_table,
                contribution,
                contributor,
                write.now,
            )?);
        }
        items.extend(write.tally.items(&self.config.stats_table)?);
        let outcome = self.finish(items, "TransactWriteItems commit").await?;
        if outcome == FinishOutcome::Done {
            write.tally.log();
        }
        Ok(outcome)
    }

    /// Fails the job with `failure` and gives its unit back (when `user` still holds it). Without a
    /// lease (a job found expired), only a job still queued or running is failed.
    pub async fn release(
        &self,
        job: &JobRecord,
        lease_id: Option<&str>,
        user: Option<&UserRecord>,
        end: &JobEnd<'_>,
    ) -> Result<FinishOutcome, StoreError> {
        let mut items = vec![self.finish_job(job, lease_id, end)?];
        let holds = user.is_some_and(|u| u.reservations.contains_key(job.generation_id.as_str()));
        if let (Some(user), true) = (user, holds) {
            let update = Update::builder()
                .table_name(&self.config.users_table)
                .set_key(Some(item_key(user_pk(&user.user_id), PROFILE_SK)))
                .update_expression("REMOVE #res.#gid ADD reservations_rev :one")
                .condition_expression("attribute_exists(#res.#gid)")
                .expression_attribute_names("#res", "reservations")
                .expression_attribute_names("#gid", job.generation_id.to_string())
                .expression_attribute_values(":one", n(1))
                .build()
                .map_err(StoreError::invalid_request)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        self.finish(items, "TransactWriteItems release").await
    }

    async fn finish(
        &self,
        items: Vec<TransactWriteItem>,
        operation: &'static str,
    ) -> Result<FinishOutcome, StoreError> {
        match super::transact(self.client, operation, items).await? {
            Ok(()) => Ok(FinishOutcome::Done),
            Err(codes) => Ok(
                match codes.iter().position(|c| c == "ConditionalCheckFailed") {
                    Some(0) => FinishOutcome::LeaseLost,
                    Some(1) if operation.ends_with("commit") => FinishOutcome::GenerationExists,
                    _ => FinishOutcome::UserChanged,
                },
            ),
        }
    }
}
