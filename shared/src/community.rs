//! Community pool use cases that decide something: a manual contribution.

use crate::auth::Caller;
use crate::domain::ids::GenerationId;
use crate::domain::pool::points;
use crate::store::generations::AudioState;
use crate::store::pool::{ContributionRecord, Contributor};
use crate::store::StoreError;
use crate::AppState;

/// Tries of a contribution that keeps losing races to other transactions.
const CONTRIBUTE_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum CommunityError {
    #[error("only paid tiers contribute")]
    OnlyPaidTiers,
    #[error("not the caller's generation")]
    NotFound,
    #[error("already in the pool")]
    AlreadyContributed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Shares the caller's own recorded generation with the pool: same points and ranking rows as an
/// automatic contribution; once per generation, however many requests race.
#[tracing::instrument(skip_all, fields(user_id = %caller.id, generation_id = %id))]
pub async fn contribute(
    state: &AppState,
    caller: &Caller,
    id: &GenerationId,
) -> Result<ContributionRecord, CommunityError> {
    let now = state.clock.now();
    let user = state.users().get_or_create(caller.new_user(now)).await?;
    let tier = user.entitlement(now).tier;
    if !tier.is_paid() {
        return Err(CommunityError::OnlyPaidTiers);
    }
    for _ in 0..CONTRIBUTE_ATTEMPTS {
        let generation = state
            .generations()
            .get(id)
            .await?
            .filter(|g| g.owner_id == caller.id)
            .ok_or(CommunityError::NotFound)?;
        if generation.contribution_id.is_some() {
            return Err(CommunityError::AlreadyContributed);
        }
        let record = ContributionRecord::new(
            &user,
            id,
            generation.genre.as_deref(),
            generation.title.as_deref(),
            generation.quality,
            points(generation.quality),
            now,
        );
        // Audio stored before the contribution: listed at once (storage-events lists the others).
        let record = if generation.audio_state == AudioState::Stored {
            record.listed()
        } else {
            record
        };
        let contributor = Contributor {
            id: &user.user_id,
            username: user.username.as_deref(),
            avatar_url: user.avatar_url.as_deref(),
            tier,
        };
        match state
            .generations()
            .contribute(&generation, &record, contributor, now)
            .await?
        {
            Some(true) => return Ok(record),
            Some(false) => return Err(CommunityError::AlreadyContributed),
            None => {
                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(1..=20))).await
            }
        }
    }
    Err(StoreError::unavailable("contribute", "every attempt lost a race").into())
}
