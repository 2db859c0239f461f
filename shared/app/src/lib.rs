//! Son1kVers3's use cases, one module each, over the store (`son1k-store`) and the rules
//! (`son1k-domain`), with the adapters they call beside them: Stripe (`billing::api`), the language
//! model (`llm`), the music providers (`providers`), SQS (`jobs::JobsQueue`) and Secrets Manager
//! (`secrets`). Each use case names the ports it touches (`ports`); `AppState`, built once per cold start,
//! provides them.

pub mod account;
pub mod admin;
pub mod alerts;
pub mod analytics;
pub mod assist;
pub mod audit;
pub mod billing;
pub mod caller;
pub mod clock;
pub mod community;
pub mod config;
pub mod credits;
pub mod delivery;
pub mod export;
pub mod housekeeping;
pub mod jobs;
pub mod limits;
pub mod listing;
pub mod llm;
pub mod lyrics;
pub mod metering;
pub mod pixel;
pub mod ports;
pub mod preview;
pub mod providers;
pub mod rate;
pub mod retry;
pub mod secrets;
pub mod slots;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod voices;

pub use state::AppState;

/// Why a function could not start (configuration, a client it could not build).
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// The backend's version, reported by `GET /health` and sent to Stripe.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
