//! What a use case may touch. Each use case names the ports it uses as bounds on its first
//! argument (`app: &(impl Time + Users + Pool)`), so its signature says which tables, adapters and
//! settings it reads or writes, and the compiler refuses a call to anything it did not name.
//! `AppState` provides every port (built once per cold start); a use case is instantiated for it
//! alone, so the bounds cost nothing at run time.

use crate::billing::api::StripeApi;
use crate::clock::Clock;
use crate::jobs::JobsQueue;
use crate::llm::LanguageModel;
use crate::secrets::Secrets;
use son1k_domain::billing::PriceTable;
use son1k_domain::rate::RequestBudget;
use son1k_store::account::AccountStore;
use son1k_store::alerts::AlertsStore;
use son1k_store::allowances::AllowancesStore;
use son1k_store::analytics::AnalyticsStore;
use son1k_store::audio::AudioStore;
use son1k_store::audit::AuditStore;
use son1k_store::billing::BillingStore;
use son1k_store::credits::CreditsStore;
use son1k_store::generations::GenerationsStore;
use son1k_store::housekeeping::HousekeepingStore;
use son1k_store::jobs::JobsStore;
use son1k_store::lyrics::LyricsStore;
use son1k_store::pixel::PixelStore;
use son1k_store::pool::PoolStore;
use son1k_store::providers::ProvidersStore;
use son1k_store::uploads::UploadsStore;
use son1k_store::users::UsersStore;
use son1k_store::voices::VoicesStore;

/// The time: every decision reads it here, once per attempt.
pub trait Time {
    fn clock(&self) -> &dyn Clock;
}

/// Users: profiles, tiers, usage per period, reservations, request budgets.
pub trait Users {
    fn users(&self) -> UsersStore<'_>;
}

/// Recorded generations and their owners' storage.
pub trait Generations {
    fn generations(&self) -> GenerationsStore<'_>;
}

/// The community pool: contributions, plays, likes, claims, rankings.
pub trait Pool {
    fn pool(&self) -> PoolStore<'_>;
}

/// The analytics counters.
pub trait Analytics {
    fn analytics(&self) -> AnalyticsStore<'_>;
}

/// Usage alerts (`GET /api/me/alerts`, their deliveries).
pub trait Alerts {
    fn alerts(&self) -> AlertsStore<'_>;
}

/// Where alerts go out (`alert-delivery`): SES, webhooks, the retry queue.
pub trait Deliveries {
    fn delivery(&self) -> Option<&crate::delivery::AlertDelivery>;
}

/// The daily allowances of Lyric Studio and Pixel.
pub trait Allowances {
    fn allowances(&self) -> AllowancesStore<'_>;
}

/// Lyric Studio's drafts and their versions.
pub trait Lyrics {
    fn lyrics(&self) -> LyricsStore<'_>;
}

/// Pixel's conversations.
pub trait PixelMemory {
    fn pixel(&self) -> PixelStore<'_>;
}

/// Generation jobs.
pub trait Jobs {
    fn jobs(&self) -> JobsStore<'_>;
}

/// The providers' shared state: token buckets and circuit breakers.
pub trait ProviderStates {
    fn providers(&self) -> ProvidersStore<'_>;
}

/// The audio bucket.
pub trait AudioBucket {
    fn audio(&self) -> AudioStore<'_>;
}

/// Upload grants and audio accounting.
pub trait Uploads {
    fn uploads(&self) -> UploadsStore<'_>;
}

/// Stripe customers and the webhook's applied events.
pub trait Billing {
    fn billing(&self) -> BillingStore<'_>;
}

/// The housekeeping indexes: lapsing subscriptions, uploads granted by day.
pub trait Housekeeping {
    fn housekeeping(&self) -> HousekeepingStore<'_>;
}

/// Stripe's API (`None`: not configured; billing routes answer 503), the price table, the trials
/// and the packs of credits on sale.
pub trait Stripe {
    fn stripe(&self) -> Option<&StripeApi>;
    fn prices(&self) -> &PriceTable;
    fn trials(&self) -> &son1k_domain::billing::TrialDays;
    fn packs(&self) -> &son1k_domain::credits::Packs;
}

/// The language model of Lyric Studio and Pixel (`None`: not configured; those routes answer 503).
pub trait Model {
    fn model(&self) -> Option<&dyn LanguageModel>;
}

/// The generation jobs queue (`None`: this function sends no jobs).
pub trait JobsQueues {
    fn jobs_queue(&self) -> Option<&JobsQueue>;
}

/// Each user's budget of costly requests.
pub trait RequestBudgets {
    fn request_budget(&self) -> RequestBudget;
}

/// Secrets Manager (read on first use, kept for the container's life) and the names of our secrets
/// there, when configured: the backend's own keys (`APP_SECRET_NAME`) and Stripe's
/// (`STRIPE_SECRET_NAME`).
pub trait Keys {
    fn secrets(&self) -> &Secrets;
    fn app_secret_name(&self) -> Option<&str>;
    fn stripe_secret_name(&self) -> Option<&str>;
}

/// Accounts as a whole: tombstones, deletion receipts, every item of a user.
pub trait Accounts {
    fn accounts(&self) -> AccountStore<'_>;
}

/// The account worker's queue (`None`: not configured; closing an account answers 503).
pub trait AccountJobs {
    fn account_jobs(&self) -> Option<&crate::account::AccountQueue>;
}

/// The Cognito user pool (`None`: not configured, as in tests that need none).
pub trait Directory {
    fn cognito(&self) -> Option<&crate::account::Cognito>;
}

/// The audit log of admin actions: its head, its entries, the items that append one.
pub trait Audit {
    fn audit(&self) -> AuditStore<'_>;
}

/// Credit blocks' ledger and the writes that add blocks.
pub trait Credits {
    fn credits(&self) -> CreditsStore<'_>;
}

/// Cloned voices and their consent records.
pub trait Voices {
    fn voices(&self) -> VoicesStore<'_>;
}

/// The voice worker's jobs queue (`None`: this function sends no voice jobs).
pub trait VoiceJobs {
    fn voice_jobs(&self) -> Option<&crate::voices::VoiceJobsQueue>;
}
