//! Stripe: the API calls we make (through async-stripe), webhook signature checks, and the webhook
//! use case that turns a verified event into stored state.

pub mod api;
pub mod checkout;
pub mod client;
pub mod signature;
pub mod webhook;

use son1k_domain::tiers::Tier;
use son1k_store::StoreError;

/// A failure of billing. Stripe's own messages are logged where they are met, never sent.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// A key or price this route needs is not configured.
    #[error("billing is not configured: {0} is not set")]
    NotConfigured(&'static str),
    /// Stripe failed, refused, timed out or answered what we cannot read.
    #[error("Stripe call {operation} failed")]
    Stripe { operation: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Stripe subscription keeps this paid tier already.
    #[error("already subscribed to {0}")]
    AlreadySubscribed(Tier),
    /// The user has no Stripe customer yet.
    #[error("no billing account")]
    NoBillingAccount,
}

impl BillingError {
    /// A Stripe failure, logged once here with its cause.
    pub fn stripe(operation: &'static str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(operation, error = %cause, "Stripe call failed");
        Self::Stripe { operation }
    }
}
