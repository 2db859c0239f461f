//! The Stripe API calls of checkout and the billing portal, through async-stripe. In AWS they go to
//! api.stripe.com; locally `STRIPE_API_BASE` points them at the stub the local stack starts.

use super::BillingError;
use crate::config::BillingConfig;
use crate::domain::ids::UserId;
use std::collections::HashMap;
use std::time::Duration;
use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_core::customer::CreateCustomer;

/// Tries of a customer create whose idempotency key is busy with a racing request.
const CONFLICT_ATTEMPTS: u64 = 5;

/// A Stripe client with our secret key, timeout and endpoint.
#[derive(Debug, Clone)]
pub struct StripeApi {
    client: stripe::Client,
}

/// What a checkout session is created for.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    pub user_id: &'a UserId,
    pub customer: &'a str,
    pub tier: &'a str,
    pub price_id: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// A created checkout session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLink {
    pub session_id: String,
    pub url: String,
}

impl StripeApi {
    /// The client, or `None` when no secret key is configured (billing routes then answer 503).
    pub fn from_config(config: &BillingConfig) -> Result<Option<Self>, BillingError> {
        let Some(key) = &config.secret_key else {
            return Ok(None);
        };
        let mut builder = ClientBuilder::new(key.expose())
            .timeout(config.timeout)
            .app_info("son1k", Some(crate::VERSION.to_owned()), None);
        if let Some(base) = &config.api_base {
            builder = builder.url(base.as_str());
        }
        let client = builder
            .build()
            .map_err(|err| BillingError::stripe("client configuration", &err))?;
        Ok(Some(Self { client }))
    }

    /// Creates the user's Stripe customer. The idempotency key is the user id, so two racing
    /// checkouts (or a retry after a lost answer) get the same customer back from Stripe.
    pub async fn create_customer(
        &self,
        user_id: &UserId,
        email: Option<&str>,
    ) -> Result<String, BillingError> {
        let key = IdempotencyKey::new(format!("son1k-customer-{user_id}"))
            .map_err(|err| BillingError::stripe("idempotency key", &err))?;
        let mut request = CreateCustomer::new().metadata(user_metadata(user_id));
        if let Some(email) = email {
            request = request.email(email);
        }
        for attempt in 1u64.. {
            let result = request
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key.clone()))
                .send(&self.client)
                .await;
            match result {
                Ok(customer) => return Ok(customer.id.to_string()),
                // 409: a racing request with the same key is still in flight at Stripe; once it
                // finishes, the same key answers with its customer.
                Err(StripeError::Stripe(_, 409)) if attempt < CONFLICT_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(err) => return Err(BillingError::stripe("create customer", &err)),
            }
        }
        Err(BillingError::stripe(
            "create customer",
            &"attempts exhausted",
        ))
    }

    /// A subscription-mode checkout session for one price, naming the user in
    /// `client_reference_id` and in the metadata of the session and of the subscription it creates.
    pub async fn create_checkout(
        &self,
        req: &CheckoutRequest<'_>,
    ) -> Result<CheckoutLink, BillingError> {
        let mut metadata = user_metadata(req.user_id);
        metadata.insert("tier".to_owned(), req.tier.to_owned());
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(metadata.clone());
        let line = CreateCheckoutSessionLineItems {
            price: Some(req.price_id.to_owned()),
            quantity: Some(1),
            ..Default::default()
        };
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(req.customer)
            .client_reference_id(req.user_id.as_str())
            .metadata(metadata)
            .subscription_data(subscription)
            .line_items(vec![line])
            .success_url(req.success_url)
            .cancel_url(req.cancel_url)
            .send(&self.client)
            .await
            .map_err(|err| BillingError::stripe("create checkout session", &err))?;
        let url = session.url.ok_or_else(|| {
            BillingError::stripe("create checkout session", &"no url in the answer")
        })?;
        Ok(CheckoutLink {
            session_id: session.id.to_string(),
            url,
        })
    }

    /// A billing portal session for `customer`, returning to `return_url`.
    pub async fn create_portal(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<String, BillingError> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .send(&self.client)
            .await
            .map_err(|err| BillingError::stripe("create billing portal session", &err))?;
        Ok(session.url)
    }
}

fn user_metadata(user_id: &UserId) -> HashMap<String, String> {
    HashMap::from([("user_id".to_owned(), user_id.as_str().to_owned())])
}
