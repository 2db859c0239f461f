//! Generation jobs (`GEN#<generation_id>` / `JOB` in the stats table) and their writes: reserve (one
//! unit of the period spent on the user item with the job's reservation, a single-item update like
//! record-generation's spend), the job's item (a plain put: the prompt stays out of any transaction),
//! commit (one transaction: the recorded generation exactly as record-generation writes it, the job
//! finished, the reservation dropped and the audio's bytes added under the quota; the unit stays
//! spent) and release (the job failed, then its unit given back).

use super::alerts::{storage_within, AlertWrites, Fired, Marker};
use super::analytics::Tally;
use super::generations::{
    decode, generation_pk, send_spend, spend_request, GenerationRecord, Holder, Spend, StoredAudio,
    GEN_SK,
};
use super::pool::{contribution_items, ContributionRecord, Contributor};
use super::users::{user_pk, UserRecord, PROFILE_SK};
use super::{item_key, sdk_failure, Attempt, StoreError, Transacted, Transaction};
use crate::Names;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::ids::{GenerationId, UserId};
use son1k_domain::jobs::{JobFailure, JobStatus, Reservation};
use son1k_domain::metering::Grant;
use son1k_domain::tiers::{Quality, Tier};
use std::collections::HashMap;

pub const JOB_SK: &str = "JOB";
/// How long a job's item is kept (then the table's TTL removes it).
pub const JOB_KEPT: chrono::Duration = chrono::Duration::days(90);

/// A voice a job is sung in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceRef {
    pub voice_id: son1k_domain::ids::VoiceId,
    pub model_key: String,
}

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
    /// Whether its generation goes to the community pool: the reservation made it the 20th paid one.
    #[serde(default)]
    pub contributes: bool,
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
    /// The caller's voice it is sung in (its id and trained model): never contributed to the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceRef>,
    /// The credit block its reservation took a unit from (`Reservation::credit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<StoredAudio>,
    /// The alerts its reservation fired (a threshold crossed, the month's pace): written by its
    /// commit, so a job that fails and gives its unit back fires nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<son1k_domain::alerts::Alert>,
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

    /// The reservation that holds its unit on the owner's item.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            period_key: self.period_key.clone(),
            until: self.reserved_until,
            paid: self.tier.is_paid(),
            credit: self.credit.clone(),
        }
    }
}

pub fn job_key(id: &GenerationId) -> std::collections::HashMap<String, AttributeValue> {
    item_key(generation_pk(id), JOB_SK)
}

/// What a submission decides from: the user, the job and the recorded generation of its id.
pub type SubmissionState = (
    Option<UserRecord>,
    Option<JobRecord>,
    Option<GenerationRecord>,
);

/// What DynamoDB did with a commit or a release.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    Done,
    /// This run no longer holds the job (another run took it over, or it finished).
    LeaseLost,
    /// The generation id was recorded by record-generation meanwhile.
    GenerationExists,
    /// The owner's item does not allow the commit (the reservation is gone, the storage quota is
    /// full, its storage moved past what the alerts were decided from, the period's pace alert was
    /// sent), or another transaction held an item: read the owner again and decide again.
    UserChanged,
    /// Thresholds among the alerts had fired before: nothing was written; commit without them.
    AlertsFired(Fired),
}

/// The items of a commit's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitItem {
    Job,
    Generation,
    Owner,
    /// A threshold's marker: refused when it fired before.
    Fired(Marker),
    /// The pool contribution and the analytics counts: unconditioned.
    Counts,
}

/// A commit: the generation as record-generation would store it, the job's audio and the numbers.
#[derive(Debug, Clone)]
pub struct CommitWrite<'a> {
    pub job: &'a JobRecord,
    pub lease_id: &'a str,
    /// The owner as read (the contributor's name and picture).
    pub user: &'a UserRecord,
    pub generation: &'a GenerationRecord,
    pub audio: &'a StoredAudio,
    /// The owner's `storage_used_bytes` must be at most this before the audio is added.
    pub max_storage_before: Option<u64>,
    pub contribution: Option<&'a ContributionRecord>,
    pub tally: &'a Tally,
    /// The alerts committed with it (`store::alerts`).
    pub alerts: &'a AlertWrites,
    /// The owner's `storage_used_bytes` must lie in `[from, to)`, the range within which the audio's
    /// bytes cross the storage thresholds the alerts were decided with.
    pub storage_within: Option<(u64, u64)>,
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
    names: &'a Names,
}

impl<'a> JobsStore<'a> {
    pub fn new(client: &'a Client, names: &'a Names) -> Self {
        Self { client, names }
    }

    #[tracing::instrument(skip_all, fields(generation_id = %id))]
    pub async fn get(&self, id: &GenerationId) -> Result<Option<JobRecord>, StoreError> {
        super::get_item(
            self.client,
            &self.names.stats_table,
            job_key(id),
            "GetItem job",
        )
        .await
    }

    /// The user's item, the job and the recorded generation of `id`, read consistently in one call:
    /// what a submission decides from, and whether it repeats one.
    #[tracing::instrument(skip_all, fields(user_id = %user, generation_id = %id))]
    pub async fn user_job_and_generation(
        &self,
        user: &UserId,
        id: &GenerationId,
    ) -> Result<Attempt<SubmissionState>, StoreError> {
        let Attempt::Done(items) = super::batch_get(
            self.client,
            "BatchGetItem user, job and generation",
            &[
                (&self.names.users_table, item_key(user_pk(user), PROFILE_SK)),
                (&self.names.stats_table, job_key(id)),
                (&self.names.stats_table, item_key(generation_pk(id), GEN_SK)),
            ],
        )
        .await?
        else {
            return Ok(Attempt::Busy);
        };
        let (mut found_user, mut job, mut generation) = (None, None, None);
        for item in items {
            let sk = match item.get(super::schema::SK) {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => String::new(),
            };
            match sk.as_str() {
                JOB_SK => job = Some(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?),
                GEN_SK => {
                    generation = Some(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?)
                }
                _ => found_user = Some(serde_dynamo::from_item(item).map_err(StoreError::corrupt)?),
            }
        }
        Ok(Attempt::Done((found_user, job, generation)))
    }

    /// Spends one unit of `grant`'s period on `user`'s item with `reservation` for the job `id`, in one
    /// single-item update (see `store::generations::spend_request`), refused while a reservation for
    /// `id` exists: a parallel copy of the submission does not reserve a second unit.
    #[tracing::instrument(skip_all, fields(generation_id = %id))]
    pub async fn reserve(
        &self,
        user: &UserRecord,
        grant: &Grant,
        id: &GenerationId,
        reservation: &Reservation,
        rate: &son1k_domain::rate::RateStep,
        now: DateTime<Utc>,
    ) -> Result<Spend, StoreError> {
        let (mut update, mut expression) =
            spend_request(self.client, &self.names.users_table, user, grant, rate, now);
        let value =
            serde_dynamo::to_attribute_value(reservation).map_err(StoreError::invalid_request)?;
        update = update.expression_attribute_names("#res", "reservations");
        if user.reservations.is_empty() {
            // None read: start the map (or replace an emptied one).
            expression.condition("(attribute_not_exists(#res) OR size(#res) = :zero)");
            expression.set("#res = :reservations");
            update = update
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(
                    ":reservations",
                    AttributeValue::M(HashMap::from([(id.to_string(), value)])),
                );
        } else {
            expression.condition("attribute_exists(#res) AND attribute_not_exists(#res.#gid)");
            expression.set("#res.#gid = :reservation");
            update = update
                .expression_attribute_names("#gid", id.as_str())
                .expression_attribute_values(":reservation", value);
        }
        send_spend(update, &expression, "UpdateItem reserve").await
    }

    /// Stores a new job: `None` when stored, the job that has this id otherwise.
    #[tracing::instrument(skip_all, fields(generation_id = %job.generation_id))]
    pub async fn put(&self, job: &JobRecord) -> Result<Option<JobRecord>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.names.stats_table)
            .set_item(Some(
                serde_dynamo::to_item(job).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(None),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(ccf)) => match decode(ccf.item())? {
                Some(existing) => Ok(Some(*existing)),
                None => self
                    .get(&job.generation_id)
                    .await?
                    .map(Some)
                    .ok_or_else(|| {
                        StoreError::corrupt("a job's put was refused and there is no job")
                    }),
            },
            _ => Err(sdk_failure("PutItem job", err)),
        }
    }

    /// Gives back the unit `reservation` holds for the job `id` on `owner`'s item (a failed job, or a
    /// reservation whose submission died before storing its job). Nothing happens unless that very
    /// reservation is still there.
    pub async fn give_back(
        &self,
        owner: &UserId,
        id: &GenerationId,
        reservation: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<Attempt<()>, StoreError> {
        super::generations::GenerationsStore::new(self.client, self.names)
            .give_back(
                owner,
                Holder::Reservation(id, reservation.until),
                super::generations::Unit {
                    period_key: &reservation.period_key,
                    paid: reservation.paid,
                    credit: reservation.credit.as_deref(),
                    to_block_before: None,
                },
                now,
            )
            .await
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
            .table_name(&self.names.stats_table)
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
            .table_name(&self.names.stats_table)
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
    fn finish_job(lease_id: Option<&str>, end: &JobEnd<'_>) -> Result<Expression, StoreError> {
        let JobEnd {
            status,
            failure,
            provider,
            audio,
            calls,
            now,
        } = *end;
        let mut set = vec!["#status = :status", "finished_at = :now"];
        let mut finish = Expression::default()
            .name("#status", "status")
            .value(":status", s(status.as_str()))
            .value(":now", s(now.to_rfc3339()))
            .value(":calls", n(calls));
        if let Some(failure) = failure {
            set.push("#error = :error");
            finish = finish
                .name("#error", "error")
                .value(":error", s(failure.as_str()));
        }
        if let Some(provider) = provider {
            set.push("provider = :provider");
            finish = finish.value(":provider", s(provider));
        }
        if let Some(audio) = audio {
            set.push("audio = :audio");
            finish = finish.value(
                ":audio",
                serde_dynamo::to_attribute_value(audio).map_err(StoreError::invalid_request)?,
            );
        }
        finish.update = format!(
            "SET {} REMOVE lease_id, lease_until ADD provider_calls :calls",
            set.join(", ")
        );
        Ok(match lease_id {
            Some(lease) => {
                finish.condition = "lease_id = :lease".to_owned();
                finish.value(":lease", s(lease))
            }
            None => {
                finish.condition = "#status IN (:queued, :running)".to_owned();
                finish
                    .value(":queued", s(JobStatus::Queued.as_str()))
                    .value(":running", s(JobStatus::Running.as_str()))
            }
        })
    }

    /// Records the job's generation in one transaction: the GEN item as record-generation writes it,
    /// the job finished, the reservation dropped from the owner's item (its unit stays spent: it was
    /// counted when reserved) with the audio's bytes added under the quota, the 20th paid
    /// generation's pool contribution (listed at once: its audio is stored), the counts. The owner's
    /// item is conditioned on what the commit needs (that reservation, still active; room for the
    /// audio), never on values other requests change.
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
        let finish = Self::finish_job(Some(write.lease_id), &end)?
            .transact(&self.names.stats_table, job_key(&job.generation_id))?;
        let put = Put::builder()
            .table_name(&self.names.stats_table)
            .set_item(Some(
                serde_dynamo::to_item(write.generation).map_err(StoreError::invalid_request)?,
            ))
            .condition_expression("attribute_not_exists(pk)");
        let put = put.build().map_err(StoreError::invalid_request)?;
        let owner = self.commit_owner(write)?;
        let mut items = Transaction::new("TransactWriteItems commit");
        items.push(CommitItem::Job, finish);
        items.push(
            CommitItem::Generation,
            TransactWriteItem::builder().put(put).build(),
        );
        items.push(CommitItem::Owner, owner);
        if let Some(contribution) = write.contribution {
            let contributor = Contributor::of(user, job.tier);
            items.extend(
                CommitItem::Counts,
                contribution_items(&self.names.pool_table, contribution, contributor, write.now)?,
            );
        }
        items.extend(
            CommitItem::Counts,
            write.tally.items(&self.names.stats_table)?,
        );
        if let Some(block) = &job.credit {
            let mut entry = super::credits::LedgerRecord::new(
                &job.owner_id,
                son1k_domain::credits::LedgerKind::Spend,
                block,
                1,
                write.now,
            );
            entry.generation_id = Some(job.generation_id.clone());
            items.push(CommitItem::Counts, entry.put(&self.names.users_table)?);
        }
        write.alerts.push_to(
            &mut items,
            &self.names.alerts_table,
            CommitItem::Counts,
            CommitItem::Fired,
        )?;
        let outcome = match items.send(self.client).await? {
            Transacted::Committed => FinishOutcome::Done,
            Transacted::Refused(refused) if refused.by(CommitItem::Job) => FinishOutcome::LeaseLost,
            Transacted::Refused(refused) if refused.by(CommitItem::Generation) => {
                FinishOutcome::GenerationExists
            }
            Transacted::Refused(refused) if !refused.by(CommitItem::Owner) => {
                FinishOutcome::AlertsFired(write.alerts.fired(&refused, CommitItem::Fired, false))
            }
            Transacted::Refused(_) | Transacted::Busy => FinishOutcome::UserChanged,
        };
        if outcome == FinishOutcome::Done {
            write.tally.log();
            write.alerts.log();
        }
        Ok(outcome)
    }

    /// The owner's side of a commit: the job's reservation dropped (its unit stays spent: it was
    /// counted when reserved) and the audio's bytes added, conditioned on that reservation being
    /// there and active, and on room for the audio.
    fn commit_owner(&self, write: &CommitWrite<'_>) -> Result<TransactWriteItem, StoreError> {
        let job = write.job;
        let mut owner = Expression::default()
            .name("#res", "reservations")
            .name("#gid", job.generation_id.to_string())
            .name("#until", "until")
            .value(":until", n(job.reserved_until))
            .value(":now_s", n(write.now.timestamp()))
            .value(":size", n(write.audio.size_bytes));
        owner.update = "REMOVE #res.#gid ADD storage_used_bytes :size".to_owned();
        owner.condition = "#res.#gid.#until = :until AND #res.#gid.#until > :now_s".to_owned();
        if let Some(max) = write.max_storage_before {
            owner.condition.push_str(
                " AND (attribute_not_exists(storage_used_bytes) OR storage_used_bytes <= :max_storage)",
            );
            owner = owner.value(":max_storage", n(max));
        }
        if let Some(range) = write.storage_within {
            let (condition, values) = storage_within(range);
            owner.condition.push_str(&condition);
            for (name, value) in values {
                owner = owner.value(name, value);
            }
        }
        if let Some(period) = write.alerts.pace_period() {
            owner.update.push_str(" SET pace_alerted = :period");
            owner
                .condition
                .push_str(" AND (attribute_not_exists(pace_alerted) OR pace_alerted <> :period)");
            owner = owner.value(":period", s(period));
        }
        owner.transact(
            &self.names.users_table,
            item_key(user_pk(&write.user.user_id), PROFILE_SK),
        )
    }

    /// Fails the job as `end` says (the unit its reservation holds is the caller's to give back or
    /// keep spent: `give_back`, `keep_spent`). Without a lease (a job found expired), only a job
    /// still queued or running is failed; `LeaseLost` when it is not.
    pub async fn fail(
        &self,
        job: &JobRecord,
        lease_id: Option<&str>,
        end: &JobEnd<'_>,
    ) -> Result<FinishOutcome, StoreError> {
        let finish = Self::finish_job(lease_id, end)?;
        let result = finish
            .apply(
                self.client
                    .update_item()
                    .table_name(&self.names.stats_table)
                    .set_key(Some(job_key(&job.generation_id))),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(FinishOutcome::Done),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => {
                    Ok(FinishOutcome::LeaseLost)
                }
                _ => Err(sdk_failure("UpdateItem job release", err)),
            },
        }
    }

    /// Ends the job's reservation with its unit spent: the provider was paid for audio that cannot
    /// be kept (the owner's storage is full).
    pub async fn keep_spent(&self, job: &JobRecord) -> Result<Attempt<()>, StoreError> {
        super::generations::GenerationsStore::new(self.client, self.names)
            .keep_spent(&job.owner_id, &job.generation_id, job.reservation().until)
            .await
    }
}

/// An update expression, its condition and their placeholders, to send alone or in a transaction.
#[derive(Debug, Default)]
struct Expression {
    update: String,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(mut self, placeholder: &str, name: impl Into<String>) -> Self {
        self.names.insert(placeholder.to_owned(), name.into());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn transact(
        self,
        table: &str,
        key: HashMap<String, AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(self.update)
            .condition_expression(self.condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .build()
            .map_err(StoreError::invalid_request)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn apply(
        self,
        request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        request
            .update_expression(self.update)
            .condition_expression(self.condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
    }
}
