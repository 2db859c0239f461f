//! Usage alerts in the alerts table, under their user (`USER#<id>`): each alert (`ALERT#<ulid>`)
//! with its deliveries, and one marker per threshold that fired (`FIRED#<quota>#<period>#<limit>#<t>`).
//! An alert and its markers are items of the transaction that commits the usage it reports; a
//! marker's put is conditioned on there being none, so a threshold fires at most once for a
//! (user, quota, period, limit). The table's stream carries each new alert to the delivery function
//! (the outbox).

use super::users::user_pk;
use super::{item_key, sdk_failure, Refused, StoreError, Transaction};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use son1k_domain::alerts::{Alert, AlertKind, AlertSettings, Quota};
use son1k_domain::ids::UserId;

/// The sort key prefix of alerts (newest last: ULIDs).
pub const ALERT_PREFIX: &str = "ALERT#";
/// How long an alert is kept (the table's TTL).
pub const ALERT_KEPT: Duration = Duration::days(400);
/// How long a period's markers outlive the period (a storage marker, with no period, an alert's
/// life): long enough that no request of the period can still be committing.
const MARKER_AFTER_PERIOD: Duration = Duration::days(35);

/// A channel an alert goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not tried yet.
    Pending,
    /// Tried and failed; tried again later.
    Retrying,
    Delivered,
    /// Failed until the retry window closed: in the dead-letter queue.
    Failed,
    /// Nowhere to send it (no email address known).
    Skipped,
}

impl DeliveryStatus {
    /// Whether the delivery is over, one way or another.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Skipped)
    }
}

/// One channel's delivery of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: Channel,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The address or URL it goes to, as the settings said when the alert fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: AlertKind,
    pub quota: Quota,
    pub period_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<DateTime<Utc>>,
    pub limit: u64,
    pub used: u64,
    #[serde(default)]
    pub thresholds: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_exhaustion_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub deliveries: Vec<Delivery>,
    pub expires_at: i64,
}

/// A delivery as the list shows it.
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub channel: Channel,
    pub status: DeliveryStatus,
    pub attempts: u32,
}

/// An alert as `GET /api/me/alerts` shows it.
#[derive(Debug, Serialize)]
pub struct AlertView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AlertKind,
    pub quota: Quota,
    pub thresholds: Vec<u8>,
    pub used: u64,
    pub limit: u64,
    pub period_start: Option<DateTime<Utc>>,
    pub reset_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected_exhaustion_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub deliveries: Vec<DeliveryView>,
}

impl AlertRecord {
    /// The alert `alert` of `user` fired at `now`, to go out on the channels `settings` name
    /// (`email`: the address known for the user, if any).
    pub fn new(
        user: &UserId,
        email: Option<&str>,
        settings: &AlertSettings,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Self {
        let id = ulid::Ulid::from_datetime(now.into()).to_string();
        let mut deliveries = Vec::new();
        if settings.channels.email {
            deliveries.push(Delivery {
                channel: Channel::Email,
                status: if email.is_some() {
                    DeliveryStatus::Pending
                } else {
                    DeliveryStatus::Skipped
                },
                attempts: 0,
                to: email.map(str::to_owned),
            });
        }
        if let Some(url) = &settings.channels.webhook_url {
            deliveries.push(Delivery {
                channel: Channel::Webhook,
                status: DeliveryStatus::Pending,
                attempts: 0,
                to: Some(url.clone()),
            });
        }
        Self {
            pk: user_pk(user),
            sk: format!("{ALERT_PREFIX}{id}"),
            id,
            user_id: user.clone(),
            kind: alert.kind,
            quota: alert.quota,
            period_key: alert.period_key.clone(),
            period_start: alert.period_start,
            reset_at: alert.reset_at,
            limit: alert.limit,
            used: alert.used,
            thresholds: alert.thresholds.clone(),
            projected_exhaustion_at: alert.projected_exhaustion_at,
            created_at: now,
            deliveries,
            expires_at: (now + ALERT_KEPT).timestamp(),
        }
    }

    pub fn view(&self) -> AlertView {
        AlertView {
            id: self.id.clone(),
            kind: self.kind,
            quota: self.quota,
            thresholds: self.thresholds.clone(),
            used: self.used,
            limit: self.limit,
            period_start: self.period_start,
            reset_at: self.reset_at,
            projected_exhaustion_at: self.projected_exhaustion_at,
            estimate: (self.kind == AlertKind::Pace).then_some(true),
            created_at: self.created_at,
            deliveries: self
                .deliveries
                .iter()
                .map(|d| DeliveryView {
                    channel: d.channel,
                    status: d.status,
                    attempts: d.attempts,
                })
                .collect(),
        }
    }
}

/// What a refused transaction said had fired before: these thresholds' markers, the period's pace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    pub markers: Vec<Marker>,
    pub pace: bool,
}

impl Fired {
    pub fn is_empty(&self) -> bool {
        self.markers.is_empty() && !self.pace
    }

    /// Adds what `other` names.
    pub fn add(&mut self, other: Fired) {
        self.markers.extend(other.markers);
        self.pace |= other.pace;
    }
}

/// A threshold's marker: it fired for this quota (and the alert's period and limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub quota: Quota,
    pub threshold: u8,
}

/// The marker key of threshold `t` of `alert`.
fn marker_sk(alert: &Alert, threshold: u8) -> String {
    format!(
        "FIRED#{}#{}#{}#{threshold}",
        alert.quota.as_str(),
        alert.period_key,
        alert.limit
    )
}

/// Alerts to write with a commit: each with the user it is for and how it goes out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertWrites {
    pub records: Vec<AlertRecord>,
}

impl AlertWrites {
    /// `alerts` of `user` (its settings and address as the commit read them) at `now`.
    pub fn new(
        user: &UserId,
        email: Option<&str>,
        settings: &AlertSettings,
        alerts: impl IntoIterator<Item = Alert>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            records: alerts
                .into_iter()
                .map(|alert| AlertRecord::new(user, email, settings, &alert, now))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds the alerts and their threshold markers to `items`: each alert as `alert_role`, each
    /// marker as `marker_role(marker)`, whose condition fails when the threshold fired already.
    pub fn push_to<R: Copy>(
        &self,
        items: &mut Transaction<R>,
        table: &str,
        alert_role: R,
        marker_role: impl Fn(Marker) -> R,
    ) -> Result<(), StoreError> {
        for record in &self.records {
            items.push(alert_role, put(table, record, None)?);
            if record.kind != AlertKind::Threshold {
                continue;
            }
            let alert = record.alert();
            let kept_until = record
                .reset_at
                .map_or(record.created_at + ALERT_KEPT, |end| {
                    end + MARKER_AFTER_PERIOD
                });
            for t in &record.thresholds {
                let marker = MarkerRecord {
                    pk: record.pk.clone(),
                    sk: marker_sk(&alert, *t),
                    alert_id: record.id.clone(),
                    expires_at: kept_until.timestamp(),
                };
                items.push(
                    marker_role(Marker {
                        quota: record.quota,
                        threshold: *t,
                    }),
                    put(table, &marker, Some("attribute_not_exists(pk)"))?,
                );
            }
        }
        Ok(())
    }

    /// What `refused` says fired before: the markers among these alerts' whose condition failed
    /// (named by `marker_role` as given to [`Self::push_to`]), and the pace when `pace_refused`.
    pub fn fired<R: Copy + PartialEq>(
        &self,
        refused: &Refused<R>,
        marker_role: impl Fn(Marker) -> R,
        pace_refused: bool,
    ) -> Fired {
        let mut fired = Fired {
            markers: Vec::new(),
            pace: pace_refused,
        };
        for record in &self.records {
            for t in &record.thresholds {
                let marker = Marker {
                    quota: record.quota,
                    threshold: *t,
                };
                if record.kind == AlertKind::Threshold && refused.by(marker_role(marker)) {
                    fired.markers.push(marker);
                }
            }
        }
        fired
    }

    /// These alerts without what fired before: the thresholds `fired` names (an alert left with
    /// none is dropped) and the pace alert when it names the pace.
    pub fn without(mut self, fired: &Fired) -> Self {
        self.records.retain_mut(|record| match record.kind {
            AlertKind::Pace => !fired.pace,
            AlertKind::Threshold => {
                let quota = record.quota;
                record.thresholds.retain(|t| {
                    !fired.markers.contains(&Marker {
                        quota,
                        threshold: *t,
                    })
                });
                !record.thresholds.is_empty()
            }
        });
        self
    }

    /// Whether there is a pace alert among them (whose writer marks the user item).
    pub fn pace_period(&self) -> Option<&str> {
        self.records
            .iter()
            .find(|r| r.kind == AlertKind::Pace)
            .map(|r| r.period_key.as_str())
    }

    /// Logs what was committed.
    pub fn log(&self) {
        for r in &self.records {
            tracing::info!(
                alert_id = %r.id,
                quota = r.quota.as_str(),
                kind = ?r.kind,
                thresholds = ?r.thresholds,
                used = r.used,
                limit = r.limit,
                "usage alert"
            );
        }
    }
}

impl AlertRecord {
    /// The alert this record stores.
    pub fn alert(&self) -> Alert {
        Alert {
            kind: self.kind,
            quota: self.quota,
            period_key: self.period_key.clone(),
            period_start: self.period_start,
            reset_at: self.reset_at,
            limit: self.limit,
            used: self.used,
            thresholds: self.thresholds.clone(),
            projected_exhaustion_at: self.projected_exhaustion_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct MarkerRecord {
    pk: String,
    sk: String,
    alert_id: String,
    expires_at: i64,
}

fn put(
    table: &str,
    item: &impl Serialize,
    condition: Option<&str>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(
            serde_dynamo::to_item(item).map_err(StoreError::invalid_request)?,
        ))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(StoreError::invalid_request)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A page of alerts and where the next one starts.
#[derive(Debug)]
pub struct AlertPage {
    pub items: Vec<AlertRecord>,
    pub next: Option<String>,
}

/// Access to the alerts table.
#[derive(Debug, Clone, Copy)]
pub struct AlertsStore<'a> {
    client: &'a Client,
    table: &'a str,
}

impl<'a> AlertsStore<'a> {
    pub fn new(client: &'a Client, table: &'a str) -> Self {
        Self { client, table }
    }

    /// A page of `user`'s alerts, newest first, after the alert `after` (the last of the page
    /// before).
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn list(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AlertPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :alert)")
            .expression_attribute_values(":pk", AttributeValue::S(user_pk(user)))
            .expression_attribute_values(":alert", AttributeValue::S(ALERT_PREFIX.into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true);
        if let Some(after) = after {
            query = query.set_exclusive_start_key(Some(item_key(
                user_pk(user),
                &format!("{ALERT_PREFIX}{after}"),
            )));
        }
        let out = query
            .send()
            .await
            .map_err(|err| sdk_failure("Query alerts", err))?;
        let items: Vec<AlertRecord> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<_, _>>()
            .map_err(StoreError::corrupt)?;
        let next = match out.last_evaluated_key {
            Some(_) => items.last().map(|a| a.id.clone()),
            None => None,
        };
        Ok(AlertPage { items, next })
    }

    /// One alert of `user`, read consistently.
    pub async fn get(&self, user: &UserId, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        super::get_item(
            self.client,
            self.table,
            item_key(user_pk(user), &format!("{ALERT_PREFIX}{id}")),
            "GetItem alert",
        )
        .await
    }

    /// Records the outcome of one delivery attempt of `alert`'s delivery `index` (`attempts` now
    /// made), unless that delivery is final already: `false` then.
    pub async fn record_attempt(
        &self,
        alert: &AlertRecord,
        index: usize,
        status: DeliveryStatus,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(item_key(alert.pk.clone(), &alert.sk)))
            .update_expression(format!(
                "SET deliveries[{index}].#status = :status, deliveries[{index}].attempts = :attempts"
            ))
            .condition_expression(format!(
                "attribute_exists(pk) AND deliveries[{index}].#status IN (:pending, :retrying)"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", enum_value(status)?)
            .expression_attribute_values(":attempts", AttributeValue::N(attempts.to_string()))
            .expression_attribute_values(":pending", enum_value(DeliveryStatus::Pending)?)
            .expression_attribute_values(":retrying", enum_value(DeliveryStatus::Retrying)?);
        match super::update_once("UpdateItem alert delivery", request).await? {
            super::Attempt::Done(applied) => Ok(applied),
            // Nothing else writes an alert in a transaction once it is made.
            super::Attempt::Busy => Err(StoreError::unavailable(
                "UpdateItem alert delivery",
                "the alert was in another transaction",
            )),
        }
    }
}

fn enum_value(value: impl Serialize) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(StoreError::invalid_request)
}

impl AlertWrites {
    /// `alerts` of `user`, going out as the user's settings (or the defaults) say.
    pub fn for_user(
        user: &super::users::UserRecord,
        alerts: impl IntoIterator<Item = Alert>,
        now: DateTime<Utc>,
    ) -> Self {
        let settings = user.alert_settings.clone().unwrap_or_default();
        Self::new(&user.user_id, user.email.as_deref(), &settings, alerts, now)
    }
}

/// The user item's side of a pace alert: the period marked as alerted, unless it is already (then
/// the transaction is refused and the alert dropped).
pub fn pace_flag(
    users_table: &str,
    user: &UserId,
    period_key: &str,
) -> Result<TransactWriteItem, StoreError> {
    let update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(users_table)
        .set_key(Some(item_key(user_pk(user), super::users::PROFILE_SK)))
        .update_expression("SET pace_alerted = :period")
        .condition_expression(PACE_CONDITION)
        .expression_attribute_values(":period", AttributeValue::S(period_key.to_owned()))
        .build()
        .map_err(StoreError::invalid_request)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The condition (appended with `AND`) and its values that the owner's `storage_used_bytes` lies in
/// `[from, to)`, the range within which a change crosses the thresholds its alerts were decided
/// with (`domain::alerts::same_crossing`); an item without the attribute has 0.
pub fn storage_within((from, to): (u64, u64)) -> (String, Vec<(&'static str, AttributeValue)>) {
    let mut values = vec![(":used_to", AttributeValue::N(to.to_string()))];
    if from == 0 {
        let condition =
            " AND (attribute_not_exists(storage_used_bytes) OR storage_used_bytes < :used_to)";
        return (condition.to_owned(), values);
    }
    values.push((":used_from", AttributeValue::N(from.to_string())));
    (
        " AND storage_used_bytes >= :used_from AND storage_used_bytes < :used_to".to_owned(),
        values,
    )
}

/// The condition of marking a pace alert's period (`:period`) on the user item.
pub const PACE_CONDITION: &str =
    "attribute_exists(pk) AND (attribute_not_exists(pace_alerted) OR pace_alerted <> :period)";
