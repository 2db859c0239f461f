//! Usage alerts: the settings a user keeps (`GET`/`PUT /api/me/alerts/settings`), the alerts a
//! committed change of usage fires (decided here from the counter as its write answered it, written
//! by the transaction that commits the change), and the list of them (`GET /api/me/alerts`).

use crate::caller::Caller;
use crate::ports::{Alerts, Time, Users};
use crate::retry;
use chrono::{DateTime, Utc};
use son1k_domain::alerts::{pace, Alert, AlertSettings, Change, Quota};
use son1k_domain::assist::{Feature, Granted};
use son1k_domain::metering::Grant;
use son1k_domain::period::Period;
use son1k_store::alerts::{AlertPage, AlertWrites};
use son1k_store::users::UserRecord;
use son1k_store::StoreError;

/// Tries of a save while the user's item is in other transactions.
const SAVE_ATTEMPTS: u32 = 8;

/// The caller's alert settings: as they set them, or the defaults. One read; a user who never made
/// a request is not created by looking (a second read tells them from a deleted account's token).
pub async fn settings(
    app: &(impl Users + crate::ports::Accounts),
    caller: &Caller,
) -> Result<AlertSettings, StoreError> {
    match app.users().get(&caller.id).await? {
        Some(user) => Ok(user.alert_settings.unwrap_or_default()),
        None => {
            crate::account::refuse_if_closed(app, &caller.id).await?;
            Ok(AlertSettings::default())
        }
    }
}

/// Stores `settings` as the caller's, whole: one update. A caller who never made a request is
/// stored as a new FREE user with them (the update finds no item, the put makes it).
pub async fn save_settings(
    app: &(impl Time + Users),
    caller: &Caller,
    settings: &AlertSettings,
) -> Result<(), StoreError> {
    save_on_user(
        app,
        caller,
        |users| async move { users.save_alert_settings(&caller.id, settings).await },
        |fresh| fresh.alert_settings = Some(settings.clone()),
    )
    .await
}

/// Makes the caller a new webhook signing secret (`whsec_` and 32 random bytes, hex), replacing
/// any: the answer is the only time it is shown. One update (a new user: one put).
pub async fn new_webhook_secret(
    app: &(impl Time + Users),
    caller: &Caller,
) -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| StoreError::unavailable("getrandom", err.to_string()))?;
    let secret = format!("whsec_{}", hex::encode(bytes));
    let kept = &secret;
    save_on_user(
        app,
        caller,
        |users| async move { users.save_webhook_secret(&caller.id, kept).await },
        |fresh| fresh.webhook_secret = Some(kept.clone()),
    )
    .await?;
    Ok(secret)
}

/// Writes one attribute of the caller's item with `save` (retried while the item is in other
/// transactions); a caller with no item yet is stored as a new user with `fill` applied.
async fn save_on_user<'a, F, Fut>(
    app: &'a (impl Time + Users),
    caller: &Caller,
    save: F,
    fill: impl FnOnce(&mut UserRecord),
) -> Result<(), StoreError>
where
    F: Fn(son1k_store::users::UsersStore<'a>) -> Fut + Copy,
    Fut: std::future::Future<Output = Result<son1k_store::Attempt<bool>, StoreError>>,
{
    let saved = || async move {
        retry::until_done("UpdateItem users", SAVE_ATTEMPTS, || save(app.users())).await
    };
    if saved().await? {
        return Ok(());
    }
    let mut fresh = caller.new_user(app.clock().now());
    fill(&mut fresh);
    let (_, created) = app.users().create(fresh).await?;
    // Another request of the caller's made the user first: save over it.
    if created || saved().await? {
        Ok(())
    } else {
        Err(StoreError::corrupt(
            "the user was created but cannot be updated",
        ))
    }
}

/// The alerts one generation's spend fires (`after`: the user as the spend left it; `grant`: the
/// grant as settled from it): the thresholds its unit crossed, and the month's pace when it is
/// fast and the period has not had its pace alert.
pub(crate) fn of_generation(after: &UserRecord, grant: &Grant, now: DateTime<Utc>) -> AlertWrites {
    AlertWrites::for_user(after, generation_alerts(after, grant, now), now)
}

/// The alerts of [`of_generation`], before they are addressed.
pub(crate) fn generation_alerts(
    after: &UserRecord,
    grant: &Grant,
    now: DateTime<Utc>,
) -> Vec<Alert> {
    // A credit leaves the period's counter where it was: nothing crossed.
    if grant.credit.is_some() {
        return Vec::new();
    }
    let settings = after.alert_settings.clone().unwrap_or_default();
    let period = Some(after.entitlement(now).period).filter(|p| p.key() == grant.period_key);
    let limit = u64::from(grant.limit());
    let change = Change {
        quota: Quota::Generations,
        period: period.as_ref(),
        period_key: &grant.period_key,
        limit: Some(limit),
        before: u64::from(grant.used_before),
        after: u64::from(grant.used_after),
    };
    let mut alerts: Vec<Alert> = change.crossing(&settings).into_iter().collect();
    if let Some(period) =
        period.filter(|_| after.pace_alerted.as_deref() != Some(&grant.period_key))
    {
        alerts.extend(pace(
            &settings,
            &period,
            &grant.period_key,
            limit,
            u64::from(grant.used_after),
            now,
        ));
    }
    alerts
}

/// The storage threshold alert of adding `added` bytes to `user`'s storage as read, and the range
/// the stored `storage_used_bytes` must lie in for that to be the crossing (the write is conditioned
/// on it); none for an unlimited tier or nothing added.
pub(crate) fn of_storage(
    user: &UserRecord,
    added: u64,
    now: DateTime<Utc>,
) -> (Option<Alert>, Option<(u64, u64)>) {
    let Some(limit) = user.entitlement(now).tier.spec().storage_bytes else {
        return (None, None);
    };
    if added == 0 {
        return (None, None);
    }
    let settings = user.alert_settings.clone().unwrap_or_default();
    let before = user.storage_used_bytes;
    let change = Change {
        quota: Quota::Storage,
        period: None,
        period_key: son1k_domain::alerts::STORAGE_PERIOD,
        limit: Some(limit),
        before,
        after: before.saturating_add(added),
    };
    let within = son1k_domain::alerts::same_crossing(&settings.thresholds, limit, before, added);
    (change.crossing(&settings), Some(within))
}

/// The alerts a unit of a language-model feature's day fires (`user`: as the take left it; `key`:
/// the day's counter; `granted`: the unit's numbers).
pub(crate) fn of_allowance(
    user: &UserRecord,
    feature: Feature,
    key: &str,
    granted: &Granted,
    now: DateTime<Utc>,
) -> AlertWrites {
    let settings = user.alert_settings.clone().unwrap_or_default();
    let day = Period::utc_day(now);
    let change = Change {
        quota: match feature {
            Feature::Lyrics => Quota::Lyrics,
            Feature::Pixel => Quota::Pixel,
        },
        period: Some(&day),
        period_key: key,
        limit: Some(u64::from(granted.limit)),
        before: u64::from(granted.used.saturating_sub(1)),
        after: u64::from(granted.used),
    };
    AlertWrites::for_user(user, change.crossing(&settings), now)
}

/// The most alerts a page holds.
pub const PAGE_LIMIT: usize = 20;

/// The alert id a listing cursor names (the last id of the page before), or a 400 naming `cursor`.
pub fn cursor(raw: &str) -> Result<String, son1k_domain::DomainError> {
    ulid::Ulid::from_string(raw)
        .map(|id| id.to_string())
        .map_err(|_| {
            son1k_domain::DomainError::new("cursor", "is not a cursor this listing gave out")
        })
}

/// A page of the caller's alerts, newest first, after the alert `after` (from [`cursor`]).
pub async fn list(
    app: &(impl Alerts + crate::ports::Accounts),
    caller: &Caller,
    after: Option<&str>,
) -> Result<AlertPage, StoreError> {
    let page = app.alerts().list(&caller.id, after, PAGE_LIMIT).await?;
    if page.items.is_empty() {
        crate::account::refuse_if_closed(app, &caller.id).await?;
    }
    Ok(page)
}
