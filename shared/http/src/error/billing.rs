//! Checkout, the portal and the Stripe webhook.

use super::{ApiError, ErrorCode};
use lambda_http::http::StatusCode;
use son1k_app::billing::signature::SignatureError;
use son1k_app::billing::webhook::WebhookError;
use son1k_app::billing::BillingError;
use son1k_domain::billing::EventError;

impl From<BillingError> for ApiError {
    fn from(err: BillingError) -> Self {
        match err {
            BillingError::NotConfigured(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::BillingNotConfigured,
                "billing is not configured on this deployment",
            ),
            BillingError::Stripe { .. } => ApiError::dependency_unavailable("the payment provider"),
            BillingError::Store(err) => err.into(),
            BillingError::AlreadySubscribed(tier) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadySubscribed,
                format!("a subscription to {tier} is active; change plans in the billing portal"),
            )
            .with("tier", tier),
            BillingError::NoBillingAccount => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NoBillingAccount,
                "there is no billing account yet; subscribe through checkout first",
            ),
        }
    }
}

impl From<son1k_app::preview::PreviewError> for ApiError {
    fn from(err: son1k_app::preview::PreviewError) -> Self {
        use son1k_app::preview::PreviewError;
        match err {
            PreviewError::AlreadyOnTier(tier) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyOnTier,
                format!("{tier} is the tier in force already"),
            )
            .with("tier", tier),
            PreviewError::Billing(err) => err.into(),
        }
    }
}

impl From<son1k_app::billing::webhook::AuthenticateError> for ApiError {
    fn from(err: son1k_app::billing::webhook::AuthenticateError) -> Self {
        use son1k_app::billing::webhook::AuthenticateError;
        match err {
            AuthenticateError::Billing(err) => err.into(),
            AuthenticateError::Store(err) => err.into(),
            AuthenticateError::Signature(err) => err.into(),
        }
    }
}

impl From<SignatureError> for ApiError {
    /// One answer for every refused signature: the caller learns nothing about which check failed.
    fn from(_: SignatureError) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidSignature,
            "the Stripe-Signature header does not verify this body",
        )
    }
}

impl From<EventError> for ApiError {
    fn from(err: EventError) -> Self {
        ApiError::invalid(err.field, err.problem)
    }
}

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::Malformed(err) => err.into(),
            WebhookError::Store(err) => err.into(),
            WebhookError::Contended(_) => ApiError::dependency_unavailable("the database"),
            // Stripe retries the event: the tie is settled once Stripe can be asked.
            WebhookError::Billing(err) => err.into(),
        }
    }
}
