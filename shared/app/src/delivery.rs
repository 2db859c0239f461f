//! Delivering usage alerts (the `alert-delivery` function): the alerts table's stream hands each new
//! alert over (the outbox); each of its deliveries is tried once at once, then again through the
//! retry queue with a doubling wait (`domain::alerts::retry_delay`) until 24 h after the alert, then
//! dead-lettered. Email goes through SES; a webhook is a signed POST (`Son1k-Signature`). Every
//! delivery carries its idempotency id (`<alert id>.<channel>`): a receiver that sees one twice (a
//! stream record handed over twice, a retry racing a slow success) keeps the first.

use crate::ports::{Alerts, Deliveries, Time, Users};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::alerts::{next_attempt, signature, AlertKind, SIGNATURE_HEADER};
use son1k_domain::ids::UserId;
use son1k_store::alerts::{AlertRecord, Channel, Delivery, DeliveryStatus};
use son1k_store::StoreError;
use std::collections::HashMap;

/// The header carrying a delivery's idempotency id.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The longest an SQS message can be delayed; a longer wait is done in steps.
const MAX_SQS_DELAY: i64 = 900;

/// Where alerts go out, and how retries are kept.
#[derive(Clone)]
pub struct AlertDelivery {
    sqs: aws_sdk_sqs::Client,
    retry_queue_url: String,
    dead_letter_url: String,
    ses: aws_sdk_sesv2::Client,
    /// `None`: no email is sent (email deliveries are skipped).
    sender: Option<String>,
    configuration_set: Option<String>,
    /// The webhook client, built on the first webhook: it loads the platform's trust roots, which
    /// a cold start should not wait for.
    http: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    /// Webhook hosts served by a local sink (dev and tests only: `ALERT_WEBHOOK_SINKS`).
    sinks: HashMap<String, String>,
    retry_base: Duration,
}

impl std::fmt::Debug for AlertDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDelivery")
            .field("retry_queue_url", &self.retry_queue_url)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// What an [`AlertDelivery`] is made from.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_queue_url: String,
    pub dead_letter_url: String,
    /// The verified SES address alert emails come from; `None`: no email is sent.
    pub sender: Option<String>,
    pub configuration_set: Option<String>,
    /// The first wait after a failure (doubled after each further one).
    pub retry_base: Duration,
    /// `host=base URL` pairs: webhooks to `host` are posted to the base instead (a local sink).
    pub sinks: HashMap<String, String>,
}

impl DeliverySettings {
    /// From `ALERT_RETRY_QUEUE_URL`, `ALERT_DEAD_LETTER_QUEUE_URL`, `ALERT_EMAIL_SENDER` and
    /// `ALERT_EMAIL_CONFIGURATION_SET` (both optional), `ALERT_RETRY_BASE_SECONDS` (60 unless set) and,
    /// locally, `ALERT_WEBHOOK_SINKS`.
    pub fn from_env() -> Result<Self, crate::StartError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let required = |name: &str| {
            var(name).ok_or_else(|| format!("{name} is not set: template.yaml sets it"))
        };
        let retry_base = match var("ALERT_RETRY_BASE_SECONDS") {
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .ok_or("ALERT_RETRY_BASE_SECONDS: 1 to 3600")?,
            None => 60,
        };
        Ok(Self {
            retry_queue_url: required("ALERT_RETRY_QUEUE_URL")?,
            dead_letter_url: required("ALERT_DEAD_LETTER_QUEUE_URL")?,
            sender: var("ALERT_EMAIL_SENDER"),
            configuration_set: var("ALERT_EMAIL_CONFIGURATION_SET"),
            retry_base: Duration::seconds(retry_base),
            sinks: parse_sinks(var("ALERT_WEBHOOK_SINKS").as_deref().unwrap_or_default()),
        })
    }
}

/// `host=url,host=url` as a map.
pub fn parse_sinks(raw: &str) -> HashMap<String, String> {
    raw.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(host, url)| (host.trim().to_ascii_lowercase(), url.trim().to_owned()))
        .collect()
}

impl AlertDelivery {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        ses: aws_sdk_sesv2::Client,
        settings: DeliverySettings,
    ) -> Result<Self, crate::StartError> {
        Ok(Self {
            sqs,
            retry_queue_url: settings.retry_queue_url,
            dead_letter_url: settings.dead_letter_url,
            ses,
            sender: settings.sender,
            configuration_set: settings.configuration_set,
            http: Default::default(),
            sinks: settings.sinks,
            retry_base: settings.retry_base,
        })
    }
}

impl AlertDelivery {
    /// The webhook client: no redirects, no proxy, 5 s to connect and 10 s in all, and a resolver
    /// that refuses non-public addresses (`providers::PublicOnly`).
    fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .timeout(std::time::Duration::from_secs(10))
                    .user_agent("Son1kVers3-Alerts/1")
                    .dns_resolver(crate::providers::PublicOnly::new(None))
                    .build()
                    .map_err(|err| err.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The retry queue's URL and the dead-letter queue's.
    pub fn queues(&self) -> (&str, &str) {
        (&self.retry_queue_url, &self.dead_letter_url)
    }
}

/// A delivery to try again: the retry queue's message (and the dead-letter queue's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryMessage {
    pub user_id: UserId,
    pub alert_id: String,
    pub channel: Channel,
    /// The idempotency id of the delivery.
    pub delivery_id: String,
    /// When the next attempt is due.
    pub due_at: DateTime<Utc>,
}

/// Why a delivery could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("alert delivery is not configured")]
    NotConfigured,
    #[error("the retry queue refused a message: {0}")]
    Queue(String),
}

/// The idempotency id of `alert`'s delivery on `channel`.
pub fn delivery_id(alert: &AlertRecord, channel: Channel) -> String {
    format!("{}.{}", alert.id, channel.as_str())
}

/// A new alert from the stream: each of its deliveries not tried yet is tried now.
#[tracing::instrument(skip_all, fields(alert_id = %alert.id))]
pub async fn on_new_alert(
    app: &(impl Time + Users + Alerts + Deliveries),
    alert: &AlertRecord,
) -> Result<(), DeliveryError> {
    for (index, delivery) in alert.deliveries.iter().enumerate() {
        if delivery.status == DeliveryStatus::Pending {
            attempt(app, alert, index).await?;
        }
    }
    Ok(())
}

/// A retry from the queue: tried when due (a wait longer than SQS can delay goes back to the queue
/// for the rest), unless the delivery is over or its alert gone.
#[tracing::instrument(skip_all, fields(alert_id = %message.alert_id))]
pub async fn on_retry(
    app: &(impl Time + Users + Alerts + Deliveries),
    message: &RetryMessage,
) -> Result<(), DeliveryError> {
    let now = app.clock().now();
    if now < message.due_at {
        return enqueue(app, message, now).await;
    }
    let Some(alert) = app
        .alerts()
        .get(&message.user_id, &message.alert_id)
        .await?
    else {
        return Ok(());
    };
    let Some(index) = alert
        .deliveries
        .iter()
        .position(|d| d.channel == message.channel)
    else {
        return Ok(());
    };
    if alert
        .deliveries
        .get(index)
        .is_none_or(|d| d.status.is_final())
    {
        return Ok(());
    }
    attempt(app, &alert, index).await
}

/// One attempt of `alert`'s delivery `index`, and what follows from it: delivered; or the next
/// attempt queued; or, past the window, dead-lettered.
async fn attempt(
    app: &(impl Time + Users + Alerts + Deliveries),
    alert: &AlertRecord,
    index: usize,
) -> Result<(), DeliveryError> {
    let out = app.delivery().ok_or(DeliveryError::NotConfigured)?;
    let Some(delivery) = alert.deliveries.get(index) else {
        return Ok(());
    };
    let attempts = delivery.attempts + 1;
    let now = app.clock().now();
    let id = delivery_id(alert, delivery.channel);
    if delivery.channel == Channel::Email && out.sender.is_none() {
        tracing::warn!("ALERT_EMAIL_SENDER is not set: alert email skipped");
        app.alerts()
            .record_attempt(alert, index, DeliveryStatus::Skipped, delivery.attempts)
            .await?;
        return Ok(());
    }
    let sent = match delivery.channel {
        Channel::Email => email(out, alert, delivery, &id).await,
        Channel::Webhook => webhook(app, out, alert, delivery, &id, now).await,
    };
    let status = match sent {
        Ok(()) => {
            tracing::info!(
                channel = delivery.channel.as_str(),
                attempts,
                "alert delivered"
            );
            DeliveryStatus::Delivered
        }
        Err(reason) => {
            let retry = |due_at| RetryMessage {
                user_id: alert.user_id.clone(),
                alert_id: alert.id.clone(),
                channel: delivery.channel,
                delivery_id: id.clone(),
                due_at,
            };
            match next_attempt(out.retry_base, attempts, alert.created_at, now) {
                Some(due_at) => {
                    tracing::warn!(channel = delivery.channel.as_str(), attempts, %due_at, reason, "alert delivery failed; retried later");
                    enqueue(app, &retry(due_at), now).await?;
                    DeliveryStatus::Retrying
                }
                None => {
                    tracing::error!(
                        channel = delivery.channel.as_str(),
                        attempts,
                        reason,
                        "alert delivery failed for 24 h; dead-lettered"
                    );
                    dead_letter(out, &retry(now)).await?;
                    DeliveryStatus::Failed
                }
            }
        }
    };
    app.alerts()
        .record_attempt(alert, index, status, attempts)
        .await?;
    Ok(())
}

/// Queues `message` for when it is due (at most 15 minutes ahead: a longer wait comes back here).
async fn enqueue(
    app: &impl Deliveries,
    message: &RetryMessage,
    now: DateTime<Utc>,
) -> Result<(), DeliveryError> {
    let out = app.delivery().ok_or(DeliveryError::NotConfigured)?;
    let wait = (message.due_at - now).num_seconds().clamp(0, MAX_SQS_DELAY);
    send(
        out,
        &out.retry_queue_url,
        message,
        i32::try_from(wait).unwrap_or(0),
    )
    .await
}

async fn dead_letter(out: &AlertDelivery, message: &RetryMessage) -> Result<(), DeliveryError> {
    send(out, &out.dead_letter_url, message, 0).await
}

async fn send(
    out: &AlertDelivery,
    queue: &str,
    message: &RetryMessage,
    delay_seconds: i32,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_string(message).map_err(|e| DeliveryError::Queue(e.to_string()))?;
    out.sqs
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .delay_seconds(delay_seconds)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| {
            DeliveryError::Queue(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string())
        })
}

/// The subject and text of an alert's email.
pub fn email_text(alert: &AlertRecord) -> (String, String) {
    let what = match alert.quota {
        son1k_domain::alerts::Quota::Generations => "generations",
        son1k_domain::alerts::Quota::Storage => "storage",
        son1k_domain::alerts::Quota::Lyrics => "lyrics drafts for today",
        son1k_domain::alerts::Quota::Pixel => "messages to Pixel for today",
    };
    let reset = alert
        .reset_at
        .map(|at| format!(" It starts again at {}.", crate::clock::rfc3339(at)))
        .unwrap_or_default();
    match alert.kind {
        AlertKind::Threshold => {
            let top = alert.thresholds.last().copied().unwrap_or(100);
            (
                format!("Son1kVers3: {top} % of your {what} used"),
                format!(
                    "You have used {} of {} {what} ({top} %).{reset}\n\nAlert {}.",
                    alert.used, alert.limit, alert.id
                ),
            )
        }
        AlertKind::Pace => (
            format!("Son1kVers3: your {what} may run out early"),
            format!(
                "At this month's pace ({} of {} so far), your {what} would run out around {} \
                 (an estimate).{reset}\n\nAlert {}.",
                alert.used,
                alert.limit,
                alert
                    .projected_exhaustion_at
                    .map(crate::clock::rfc3339)
                    .unwrap_or_default(),
                alert.id
            ),
        ),
    }
}

async fn email(
    out: &AlertDelivery,
    alert: &AlertRecord,
    delivery: &Delivery,
    id: &str,
) -> Result<(), String> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};
    let to = delivery.to.as_deref().ok_or("no address")?;
    let (subject, text) = email_text(alert);
    let content = |data: String| Content::builder().data(data).charset("UTF-8").build();
    let message = Message::builder()
        .subject(content(subject).map_err(|e| e.to_string())?)
        .body(
            Body::builder()
                .text(content(text).map_err(|e| e.to_string())?)
                .build(),
        )
        .headers(
            MessageHeader::builder()
                .name("X-Son1k-Delivery-Id")
                .value(id)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .build();
    out.ses
        .send_email()
        .set_from_email_address(out.sender.clone())
        .destination(Destination::builder().to_addresses(to).build())
        .content(EmailContent::builder().simple(message).build())
        .set_configuration_set_name(out.configuration_set.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|err| aws_sdk_sesv2::error::DisplayErrorContext(&err).to_string())
}

/// The body of a webhook delivery.
#[derive(Debug, Serialize)]
struct WebhookBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: DateTime<Utc>,
    alert: son1k_store::alerts::AlertView,
}

async fn webhook(
    app: &impl Users,
    out: &AlertDelivery,
    alert: &AlertRecord,
    delivery: &Delivery,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let url = delivery.to.as_deref().ok_or("no URL")?;
    let secret = app
        .users()
        .get(&alert.user_id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|user| user.webhook_secret)
        .ok_or("the user has no webhook secret yet (POST /api/me/alerts/webhook-secret)")?;
    let body = serde_json::to_vec(&WebhookBody {
        id,
        kind: "usage_alert",
        created_at: now,
        alert: alert.view(),
    })
    .map_err(|e| e.to_string())?;
    let target = target(&out.sinks, url)?;
    let response = out
        .http()?
        .post(target)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(&secret, now.timestamp(), &body))
        .header(IDEMPOTENCY_HEADER, id)
        .body(body)
        .send()
        .await
        .map_err(|e| crate::providers::error_chain(&e))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {}", response.status()))
    }
}

/// Where a webhook to `url` is posted: `url` itself (https, checked again), or a local sink's base
/// with the URL's path and query when its host is one (`ALERT_WEBHOOK_SINKS`).
fn target(sinks: &HashMap<String, String>, url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if parsed.scheme() != "https" {
        return Err("a webhook is https only".into());
    }
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::from(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::from(ip)),
        _ => None,
    };
    // A name is checked when it is resolved (`PublicOnly`); an address literal here.
    if literal.is_some_and(|ip| !son1k_domain::net::is_public(ip)) {
        return Err("the webhook's address is not public".into());
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    Ok(match sinks.get(&host) {
        Some(base) => format!(
            "{}{}{}",
            base.trim_end_matches('/'),
            parsed.path(),
            parsed.query().map(|q| format!("?{q}")).unwrap_or_default()
        ),
        None => parsed.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_takes_only_its_own_host_and_keeps_the_path() {
        let sinks = parse_sinks("hooks.example.test=http://127.0.0.1:9000");
        assert_eq!(
            target(&sinks, "https://hooks.example.test/a/b?x=1").unwrap(),
            "http://127.0.0.1:9000/a/b?x=1"
        );
        assert_eq!(
            target(&sinks, "https://other.example.com/a").unwrap(),
            "https://other.example.com/a"
        );
        assert!(target(&sinks, "http://hooks.example.test/a").is_err());
        assert!(target(&sinks, "https://127.0.0.1:9000/a").is_err());
        assert!(target(&sinks, "https://[::1]/a").is_err());
        assert!(target(&sinks, "https://10.0.0.7/a").is_err());
    }
}
