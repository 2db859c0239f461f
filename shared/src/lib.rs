//! Son1kVers3 backend common crate: everything two Lambda functions need.
pub mod analytics;
pub mod assist;
pub mod auth;
pub mod billing;
pub mod clock;
pub mod community;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod llm;
pub mod lyrics;
pub mod metering;
pub mod pixel;
pub mod providers;
pub mod rate;
pub mod retry;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod storage;
pub mod store;
pub mod telemetry;

pub use error::{ApiError, ErrorCode};
pub use state::AppState;

/// The backend's version, reported by `GET /health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
