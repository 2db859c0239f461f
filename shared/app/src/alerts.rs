//! Usage alerts: the settings a user keeps (`GET`/`PUT /api/me/alerts/settings`).

use crate::caller::Caller;
use crate::ports::{Time, Users};
use crate::retry;
use son1k_domain::alerts::AlertSettings;
use son1k_store::StoreError;

/// Tries of a save while the user's item is in other transactions.
const SAVE_ATTEMPTS: u32 = 8;

/// The caller's alert settings: as they set them, or the defaults. One read; a user who never made
/// a request is not created by looking.
pub async fn settings(app: &impl Users, caller: &Caller) -> Result<AlertSettings, StoreError> {
    Ok(app
        .users()
        .get(&caller.id)
        .await?
        .and_then(|user| user.alert_settings)
        .unwrap_or_default())
}

/// Stores `settings` as the caller's, whole. One update; the caller's first request also stores
/// them as a new FREE user.
pub async fn save_settings(
    app: &(impl Time + Users),
    caller: &Caller,
    settings: &AlertSettings,
) -> Result<(), StoreError> {
    let save = || async move {
        retry::until_done("UpdateItem users", SAVE_ATTEMPTS, || async move {
            app.users().save_alert_settings(&caller.id, settings).await
        })
        .await
    };
    if save().await? {
        return Ok(());
    }
    app.users()
        .get_or_create(caller.new_user(app.clock().now()))
        .await?;
    if save().await? {
        Ok(())
    } else {
        Err(StoreError::corrupt(
            "the user was created but cannot be updated",
        ))
    }
}
