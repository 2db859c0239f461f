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

/// Stores `settings` as the caller's, whole: one update. A caller who never made a request is
/// stored as a new FREE user with them (the update finds no item, the put makes it).
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
    let mut fresh = caller.new_user(app.clock().now());
    fresh.alert_settings = Some(settings.clone());
    let (_, created) = app.users().create(fresh).await?;
    // Another request of the caller's made the user first: save over it.
    if created || save().await? {
        Ok(())
    } else {
        Err(StoreError::corrupt(
            "the user was created but cannot be updated",
        ))
    }
}
