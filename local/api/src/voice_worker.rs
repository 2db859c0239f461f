//! The local stand-in for the GPU voice worker and for the voice queues' plumbing: the jobs and
//! results queues (each with a dead-letter queue) on moto's SQS, a stub worker that serves the jobs
//! queue as a real worker would (`shared/domain/schemas/voice-job.schema.json` in,
//! `voice-result.schema.json` out, written here as JSON by field name, not with the API's types),
//! and a poller that hands the results to the `voice-results` handler as the event source mapping
//! does.
//!
//! The stub "verifies" by reading the consent recording and the samples from S3 (they must be
//! there), "trains" by writing a small model under the job's `models_prefix`, and keeps its "copy"
//! of each trained voice in memory until told to delete it. Steered per voice or for all:
//! `{"mode": "ok" | "mismatch" | "fail", "delay_ms": 0, "duplicate_results": false}` (`make dev`:
//! `PUT /_control/voice-worker`, with `"voice_id"` for one voice; `GET` reports what it received).

use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use son1k_app::voices::VoiceJobsQueue;
use son1k_app::AppState;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How the stub treats a voice's jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    #[serde(default)]
    pub mode: Mode,
    /// How long verifying and training take, each.
    #[serde(default)]
    pub delay_ms: u64,
    /// Send every result twice (as a worker retrying after a lost acknowledgement would).
    #[serde(default)]
    pub duplicate_results: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Ok,
    /// The consent recording is found not to match: `consent_mismatch`.
    Mismatch,
    /// Verification passes, training fails: `failed`.
    Fail,
}

#[derive(Debug, Default)]
struct Inner {
    default: Behaviour,
    by_voice: HashMap<String, Behaviour>,
    /// Every job received, as received.
    jobs: Vec<Value>,
    /// The voices the stub holds a trained copy of.
    copies: BTreeSet<String>,
}

/// The stub worker: its queues and its state.
#[derive(Debug, Clone)]
pub struct VoiceWorker {
    state: AppState,
    jobs_url: String,
    results_url: String,
    inner: Arc<Mutex<Inner>>,
}

/// Creates (or finds) the queue `name` with its dead-letter queue `name-dlq`: its URL.
async fn queue_with_dlq(state: &AppState, name: &str) -> Result<String, Failure> {
    let sqs = state.sqs_client();
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await?;
    let dlq_url = dlq.queue_url().ok_or("no dead-letter queue URL")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("no dead-letter queue ARN")?;
    let redrive = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5" });
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await?;
    Ok(queue.queue_url().ok_or("no queue URL")?.to_owned())
}

impl VoiceWorker {
    /// The queues `<prefix>-voice-jobs` and `<prefix>-voice-results`, the state's voice jobs queue
    /// set to the first, and a stub worker between them.
    pub async fn start(state: &mut AppState, prefix: &str) -> Result<Self, Failure> {
        let jobs_url = queue_with_dlq(state, &format!("{prefix}-voice-jobs")).await?;
        let results_url = queue_with_dlq(state, &format!("{prefix}-voice-results")).await?;
        state.voice_jobs = Some(VoiceJobsQueue::new(state.sqs_client(), jobs_url.clone()));
        Ok(Self {
            state: state.clone(),
            jobs_url,
            results_url,
            inner: Arc::default(),
        })
    }

    /// A worker on queues that exist elsewhere (or not at all: a store that is down).
    pub fn detached(state: &mut AppState, jobs_url: &str, results_url: &str) -> Self {
        state.voice_jobs = Some(VoiceJobsQueue::new(state.sqs_client(), jobs_url.to_owned()));
        Self {
            state: state.clone(),
            jobs_url: jobs_url.to_owned(),
            results_url: results_url.to_owned(),
            inner: Arc::default(),
        }
    }

    /// The same worker (its behaviours, its jobs, its copies) acting through `state`'s clients.
    pub fn with_state(&self, state: &AppState) -> Self {
        Self {
            state: state.clone(),
            ..self.clone()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the stub treats every voice without a behaviour of its own.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.lock().default = behaviour;
    }

    /// How the stub treats `voice`'s jobs.
    pub fn set_for(&self, voice: &str, behaviour: Behaviour) {
        self.lock().by_voice.insert(voice.to_owned(), behaviour);
    }

    /// Every job received so far, as received.
    pub fn jobs(&self) -> Vec<Value> {
        self.lock().jobs.clone()
    }

    /// Whether the stub holds a trained copy of `voice`.
    pub fn holds(&self, voice: &str) -> bool {
        self.lock().copies.contains(voice)
    }

    /// Receives the jobs waiting (up to `wait_seconds` for the first), works each and deletes it:
    /// how many.
    pub async fn work_once(&self, wait_seconds: i32) -> Result<usize, Failure> {
        let sqs = self.state.sqs_client();
        let received = sqs
            .receive_message()
            .queue_url(&self.jobs_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await?;
        for message in received.messages() {
            let job: Value = serde_json::from_str(message.body().unwrap_or_default())?;
            self.work(&job).await?;
            sqs.delete_message()
                .queue_url(&self.jobs_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
        Ok(received.messages().len())
    }

    async fn work(&self, job: &Value) -> Result<(), Failure> {
        let text = |field: &str| job[field].as_str().unwrap_or_default().to_owned();
        let (voice, owner, job_id, bucket) = (
            text("voice_id"),
            text("owner_id"),
            text("job_id"),
            text("bucket"),
        );
        let attempt = job["attempt"].as_u64().unwrap_or_default();
        let behaviour = {
            let mut inner = self.lock();
            inner.jobs.push(job.clone());
            inner
                .by_voice
                .get(&voice)
                .cloned()
                .unwrap_or_else(|| inner.default.clone())
        };
        let delay = std::time::Duration::from_millis(behaviour.delay_ms);
        let result = |outcome: &str, extra: Value| {
            let mut message = json!({
                "schema": "son1k.voice-result.v1",
                "result_id": format!("{job_id}-{outcome}"),
                "voice_id": voice,
                "owner_id": owner,
                "attempt": attempt,
                "outcome": outcome,
            });
            if let (Some(message), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
                message.extend(extra.clone());
            }
            message
        };
        if job["kind"] == "delete" {
            self.lock().copies.remove(&voice);
            return self.send(&result("deleted", json!({})), &behaviour).await;
        }
        // Verify: the recordings must be there to be listened to.
        tokio::time::sleep(delay).await;
        let mut keys = vec![text_at(job, &["consent", "key"])];
        if let Some(samples) = job["samples"].as_array() {
            keys.extend(samples.iter().map(|s| text_at(s, &["key"])));
        }
        for key in &keys {
            self.state
                .s3()
                .head_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .map_err(|err| format!("recording {key} is not readable: {err}"))?;
        }
        if behaviour.mode == Mode::Mismatch {
            let reason = json!({ "reason": "the consent recording is not the samples' speaker" });
            return self
                .send(&result("consent_mismatch", reason), &behaviour)
                .await;
        }
        self.send(&result("verified", json!({})), &behaviour)
            .await?;
        tokio::time::sleep(delay).await;
        if behaviour.mode == Mode::Fail {
            let reason = json!({ "reason": "training did not converge" });
            return self.send(&result("failed", reason), &behaviour).await;
        }
        let model_key = format!("{}model-{attempt}.bin", text("models_prefix"));
        let model = format!("stub voice model of {voice}, attempt {attempt}\n").into_bytes();
        let model_bytes = model.len();
        self.state
            .s3()
            .put_object()
            .bucket(&bucket)
            .key(&model_key)
            .body(model.into())
            .send()
            .await?;
        self.lock().copies.insert(voice.clone());
        let ready = json!({ "model_key": model_key, "model_bytes": model_bytes });
        self.send(&result("ready", ready), &behaviour).await
    }

    async fn send(&self, result: &Value, behaviour: &Behaviour) -> Result<(), Failure> {
        let times = if behaviour.duplicate_results { 2 } else { 1 };
        for _ in 0..times {
            self.state
                .sqs_client()
                .send_message()
                .queue_url(&self.results_url)
                .message_body(result.to_string())
                .send()
                .await?;
        }
        Ok(())
    }

    /// Hands the results waiting (up to `wait_seconds` for the first) to `voice-results` and
    /// deletes those it does not report failed: how many were received.
    pub async fn deliver_results(&self, wait_seconds: i32) -> Result<usize, Failure> {
        let sqs = self.state.sqs_client();
        let received = sqs
            .receive_message()
            .queue_url(&self.results_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(0);
        }
        let batch: Vec<(String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m.message_id().unwrap_or_default().to_owned(),
                    m.body().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let event = generation_worker::event_for(&batch);
        let invocation = lambda_http::lambda_runtime::LambdaEvent::new(event, Default::default());
        let report = voice_results::handler(&self.state, invocation).await?;
        for message in messages {
            let id = message.message_id().unwrap_or_default();
            if !report
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == id)
            {
                sqs.delete_message()
                    .queue_url(&self.results_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await?;
            }
        }
        Ok(messages.len())
    }

    /// Takes the results waiting (up to `wait_seconds` for the first) off the results queue,
    /// unapplied: a test hands them on with `send_result`, in the order it chooses.
    pub async fn take_results(&self, wait_seconds: i32) -> Result<Vec<Value>, Failure> {
        let sqs = self.state.sqs_client();
        let mut taken = Vec::new();
        let mut wait = wait_seconds;
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&self.results_url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .send()
                .await?;
            if received.messages().is_empty() {
                return Ok(taken);
            }
            for message in received.messages() {
                taken.push(serde_json::from_str(message.body().unwrap_or_default())?);
                sqs.delete_message()
                    .queue_url(&self.results_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await?;
            }
            wait = 0;
        }
    }

    /// Puts `result` on the results queue.
    pub async fn send_result(&self, result: &Value) -> Result<(), Failure> {
        self.state
            .sqs_client()
            .send_message()
            .queue_url(&self.results_url)
            .message_body(result.to_string())
            .send()
            .await?;
        Ok(())
    }

    /// Serves both queues until the process ends (`make dev`).
    pub async fn run(self) {
        loop {
            let worked = self.work_once(1).await;
            let delivered = self.deliver_results(0).await;
            if let Err(err) = worked.and(delivered) {
                tracing::warn!(error = %err, "voice worker stub: a pass failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

fn text_at(value: &Value, path: &[&str]) -> String {
    path.iter()
        .fold(value, |v, key| &v[*key])
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[derive(Debug, Deserialize)]
struct ControlRequest {
    #[serde(default)]
    voice_id: Option<String>,
    #[serde(flatten)]
    behaviour: Behaviour,
}

/// `GET /_control/voice-worker` (the jobs received) and `PUT` (a behaviour, for one voice or all).
pub fn router(worker: VoiceWorker) -> Router {
    Router::new()
        .route(
            "/_control/voice-worker",
            get(|State(worker): State<VoiceWorker>| async move {
                Json(json!({ "jobs": worker.jobs() }))
            })
            .put(
                |State(worker): State<VoiceWorker>, Json(control): Json<ControlRequest>| async move {
                    match &control.voice_id {
                        Some(voice) => worker.set_for(voice, control.behaviour),
                        None => worker.set_default(control.behaviour),
                    }
                    Json(json!({ "ok": true }))
                },
            ),
        )
        .with_state(worker)
}
