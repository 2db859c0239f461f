//! The Stripe API calls of checkout and the billing portal, through async-stripe. In AWS they go to
//! api.stripe.com; locally `STRIPE_API_BASE` points them at the stub the local stack starts. The
//! secret key comes from Secrets Manager on the first call; when Stripe refuses it (401: rotated),
//! it is read again and the call made once more.

use super::client::{StripeCallError, StripeHttp};
use super::BillingError;
use crate::config::BillingConfig;
use crate::secrets::Secrets;
use son1k_domain::ids::UserId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_client_core::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_core::customer::CreateCustomer;

/// Tries of a customer create whose idempotency key is busy with a racing request.
const CONFLICT_ATTEMPTS: u64 = 5;

/// A Stripe client with our secret key (read when first needed), timeout and endpoint.
#[derive(Debug, Clone)]
pub struct StripeApi {
    secrets: Secrets,
    /// The Secrets Manager secret whose `secret_key` field is the key.
    secret_name: String,
    timeout: Duration,
    api_base: Option<String>,
    client: Arc<tokio::sync::Mutex<Option<StripeHttp>>>,
}

/// What a checkout session is created for.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    pub user_id: &'a UserId,
    pub customer: &'a str,
    pub tier: &'a str,
    pub price_id: &'a str,
    /// Days of trial the subscription starts with (a first checkout of a tier with a trial).
    pub trial_days: Option<u32>,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// What a pack's checkout session is created for.
#[derive(Debug, Clone)]
pub struct PackCheckoutRequest<'a> {
    pub user_id: &'a UserId,
    pub customer: &'a str,
    pub pack: &'a son1k_domain::credits::Pack,
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
    /// The client over `secrets`, or `None` when no Stripe secret is named (billing routes then
    /// answer 503). Nothing is read until the first call.
    pub fn new(config: &BillingConfig, secrets: Secrets) -> Option<Self> {
        Some(Self {
            secrets,
            secret_name: config.secret_name.clone()?,
            timeout: config.timeout,
            api_base: config.api_base.clone(),
            client: Arc::default(),
        })
    }

    /// The client with the key as last read; reads it first when there is none.
    async fn client(&self) -> Result<StripeHttp, BillingError> {
        let mut client = self.client.lock().await;
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let key = self
            .secrets
            .field(&self.secret_name, "secret_key")
            .await?
            .ok_or(BillingError::NotConfigured(
                "the Stripe secret's secret_key",
            ))?;
        let built = StripeHttp::new(key.expose(), self.api_base.as_deref(), self.timeout)
            .map_err(|err| BillingError::stripe("client configuration", &err))?;
        *client = Some(built.clone());
        Ok(built)
    }

    /// `Ok` when the key can be had (read now if not yet): the billing routes answer 503
    /// `billing_not_configured` before anything else without it.
    pub async fn configured(&self) -> Result<(), BillingError> {
        self.client().await.map(|_| ())
    }

    /// Stripe refused the key (401): forget it, so the next client reads the secret again.
    async fn key_refused(&self) {
        tracing::warn!("Stripe refused the secret key: reading the secret again");
        *self.client.lock().await = None;
        self.secrets.forget(&self.secret_name).await;
    }

    /// Runs `call` with the current client; after a 401 once more with the key read again (a
    /// rotation). The outer error: no client (no key); the inner: Stripe's answer.
    async fn with_client<T, Fut>(
        &self,
        call: impl Fn(StripeHttp) -> Fut,
    ) -> Result<Result<T, StripeCallError>, BillingError>
    where
        Fut: std::future::Future<Output = Result<T, StripeCallError>>,
    {
        match call(self.client().await?).await {
            Err(err) if err.status() == Some(401) => {
                self.key_refused().await;
                Ok(call(self.client().await?).await)
            }
            other => Ok(other),
        }
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
            let (request, key) = (&request, &key);
            let result = self
                .with_client(|client| async move {
                    request
                        .build()
                        .customize::<Created>()
                        .request_strategy(RequestStrategy::Idempotent(key.clone()))
                        .send(&client)
                        .await
                })
                .await?;
            match result {
                Ok(customer) => return Ok(customer.id),
                // 409: a racing request with the same key is still in flight at Stripe; once it
                // finishes, the same key answers with its customer.
                Err(err) if err.status() == Some(409) && attempt < CONFLICT_ATTEMPTS => {
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
    /// `client_reference_id` and in the metadata of the session and of the subscription it creates;
    /// with a trial when asked; promotion codes allowed.
    pub async fn create_checkout(
        &self,
        req: &CheckoutRequest<'_>,
    ) -> Result<CheckoutLink, BillingError> {
        let mut metadata = user_metadata(req.user_id);
        metadata.insert("tier".to_owned(), req.tier.to_owned());
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(metadata.clone());
        subscription.trial_period_days = req.trial_days;
        let line = CreateCheckoutSessionLineItems {
            price: Some(req.price_id.to_owned()),
            quantity: Some(1),
            ..Default::default()
        };
        let request = &CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(req.customer)
            .client_reference_id(req.user_id.as_str())
            .metadata(metadata)
            .subscription_data(subscription)
            .line_items(vec![line])
            .allow_promotion_codes(true)
            .success_url(req.success_url)
            .cancel_url(req.cancel_url);
        self.send_checkout(request).await
    }

    /// A payment-mode checkout session for one pack of credits: the session's metadata names the
    /// user, the pack and the generations sold (what the webhook adds), and so does its
    /// PaymentIntent's; promotion codes allowed.
    pub async fn create_pack_checkout(
        &self,
        req: &PackCheckoutRequest<'_>,
    ) -> Result<CheckoutLink, BillingError> {
        let mut metadata = user_metadata(req.user_id);
        metadata.insert("pack".to_owned(), req.pack.pack.clone());
        metadata.insert("generations".to_owned(), req.pack.generations.to_string());
        let mut payment = CreateCheckoutSessionPaymentIntentData::new();
        payment.metadata = Some(metadata.clone());
        let line = CreateCheckoutSessionLineItems {
            price: Some(req.pack.price_id.clone()),
            quantity: Some(1),
            ..Default::default()
        };
        let request = &CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(req.customer)
            .client_reference_id(req.user_id.as_str())
            .metadata(metadata)
            .payment_intent_data(payment)
            .line_items(vec![line])
            .allow_promotion_codes(true)
            .success_url(req.success_url)
            .cancel_url(req.cancel_url);
        self.send_checkout(request).await
    }

    async fn send_checkout(
        &self,
        request: &CreateCheckoutSession,
    ) -> Result<CheckoutLink, BillingError> {
        let session = self
            .with_client(|client| async move {
                request
                    .build()
                    .customize::<SessionLink>()
                    .send(&client)
                    .await
            })
            .await?
            .map_err(|err| BillingError::stripe("create checkout session", &err))?;
        let url = session.url.ok_or_else(|| {
            BillingError::stripe("create checkout session", &"no url in the answer")
        })?;
        Ok(CheckoutLink {
            session_id: session.id,
            url,
        })
    }

    /// A billing portal session for `customer`, returning to `return_url`.
    pub async fn create_portal(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<String, BillingError> {
        let request = &CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        let session = self
            .with_client(|client| async move {
                request
                    .build()
                    .customize::<PortalLink>()
                    .send(&client)
                    .await
            })
            .await?
            .map_err(|err| BillingError::stripe("create billing portal session", &err))?;
        Ok(session.url)
    }
}

/// What we read of a created customer: its id (the rest of Stripe's answer is skipped unread, so the
/// typed model of a customer is never linked).
#[derive(miniserde::Deserialize)]
struct Created {
    id: String,
}

/// What we read of a Checkout Session: its id and the page to send the user to.
#[derive(miniserde::Deserialize)]
struct SessionLink {
    id: String,
    url: Option<String>,
}

/// What we read of a billing portal session: its page.
#[derive(miniserde::Deserialize)]
struct PortalLink {
    url: String,
}

impl StripeApi {
    /// `GET /v1/subscriptions/{id}`: the subscription as Stripe has it now, as the JSON object a
    /// subscription event carries, so one parser (`SubscriptionSnapshot::from_object`) reads both.
    pub async fn subscription(&self, id: &str) -> Result<serde_json::Value, BillingError> {
        let path = format!("/subscriptions/{id}");
        let path = path.as_str();
        let found = self
            .with_client(|client| async move { client.get(path).await })
            .await?
            .map_err(|err| BillingError::stripe("retrieve subscription", &err))?;
        serde_json::from_slice(&found)
            .map_err(|err| BillingError::stripe("retrieve subscription", &err))
    }
}

/// What an invoice preview answers, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct InvoicePreview {
    pub amount_due: i64,
    pub currency: String,
}

impl StripeApi {
    /// The id of `subscription`'s first item (the one its plan is), as Stripe has it now.
    pub async fn first_item(&self, subscription: &str) -> Result<String, BillingError> {
        self.subscription(subscription)
            .await?
            .pointer("/items/data/0/id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| BillingError::stripe("preview invoice", &"the subscription has no item"))
    }

    /// `POST /v1/invoices/create_preview` for `subscription` (of `customer`) with its item `item`
    /// switched to `price`: with `prorate_now: Some(now)`, the invoice the switch would make at once
    /// (the prorations as of `now`, `always_invoice`); with `None`, the next regular invoice at the
    /// new price (`none`).
    pub async fn preview_switch(
        &self,
        customer: &str,
        subscription: &str,
        (item, price): (&str, &str),
        prorate_now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<InvoicePreview, BillingError> {
        // The serializer is not `Send`: it is gone before the first await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            if let Some(now) = prorate_now {
                form.append_pair(
                    "subscription_details[proration_date]",
                    &now.timestamp().to_string(),
                );
            }
            form.append_pair("customer", customer)
                .append_pair("subscription", subscription)
                .append_pair("subscription_details[items][0][id]", item)
                .append_pair("subscription_details[items][0][price]", price)
                .append_pair(
                    "subscription_details[proration_behavior]",
                    if prorate_now.is_some() {
                        "always_invoice"
                    } else {
                        "none"
                    },
                )
                .finish()
        };
        let body = &body;
        let answer = self
            .with_client(|client| async move {
                client
                    .post_form("/invoices/create_preview", body.clone())
                    .await
            })
            .await?
            .map_err(|err| BillingError::stripe("preview invoice", &err))?;
        serde_json::from_slice(&answer).map_err(|err| BillingError::stripe("preview invoice", &err))
    }
}

impl StripeApi {
    /// `DELETE /v1/subscriptions/{id}`: cancelled at once, without proration or a final invoice
    /// (no refund: a closed account keeps what it paid for until now). A subscription Stripe no
    /// longer has (404), or one already cancelled, is done.
    pub async fn cancel_subscription(&self, id: &str) -> Result<(), BillingError> {
        let path = format!("/subscriptions/{id}");
        let path = path.as_str();
        let answer = self
            .with_client(|client| async move { client.delete(path).await })
            .await?;
        match answer {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(BillingError::stripe("cancel subscription", &err)),
        }
    }

    /// Detaches every payment method of `customer` (`GET /v1/customers/{id}/payment_methods`, then
    /// `POST /v1/payment_methods/{pm}/detach` each): Stripe keeps no card of a closed account. How
    /// many were detached; a customer Stripe no longer has (404) has none.
    pub async fn detach_payment_methods(&self, customer: &str) -> Result<u64, BillingError> {
        let mut detached = 0;
        // Each page lists what is still attached; a page whose every method was already detached
        // ends the work, and so does the tenth (a thousand cards is no customer of ours).
        for _ in 0..10 {
            let path = format!("/customers/{customer}/payment_methods?limit=100");
            let path = path.as_str();
            let page = match self
                .with_client(|client| async move { client.get(path).await })
                .await?
            {
                Ok(page) => page,
                Err(err) if err.status() == Some(404) => return Ok(detached),
                Err(err) => return Err(BillingError::stripe("list payment methods", &err)),
            };
            let page: serde_json::Value = serde_json::from_slice(&page)
                .map_err(|err| BillingError::stripe("list payment methods", &err))?;
            let ids: Vec<String> = page
                .get("data")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|pm| {
                    pm.get("id")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                })
                .collect();
            if ids.is_empty() {
                return Ok(detached);
            }
            let before = detached;
            for id in ids {
                let path = format!("/payment_methods/{id}/detach");
                let path = path.as_str();
                match self
                    .with_client(
                        |client| async move { client.post_form(path, String::new()).await },
                    )
                    .await?
                {
                    Ok(_) => detached += 1,
                    // Detached meanwhile (a retried deletion): already done.
                    Err(err) if matches!(err.status(), Some(400 | 404)) => {}
                    Err(err) => return Err(BillingError::stripe("detach payment method", &err)),
                }
            }
            if detached == before {
                return Ok(detached);
            }
        }
        Ok(detached)
    }
}

fn user_metadata(user_id: &UserId) -> HashMap<String, String> {
    HashMap::from([("user_id".to_owned(), user_id.as_str().to_owned())])
}
