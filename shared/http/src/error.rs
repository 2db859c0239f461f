//! `ApiError`: every expected failure of a request, rendered as an RFC 9457 problem document.
//!
//! The `code`s are the binding machine codes of the contract (openapi.yaml), defined once here. Every lower layer's failure
//! (store, metering refusal, bad input) becomes a problem document here, in `From` impls without side
//! effects. A 5xx body is always generic: the cause is logged once where it is found, never sent.

use lambda_http::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use son1k_app::billing::signature::SignatureError;
use son1k_app::billing::webhook::WebhookError;
use son1k_app::billing::BillingError;
use son1k_app::metering::RecordError;
use son1k_app::storage::StorageError;
use son1k_domain::billing::EventError;
use son1k_domain::metering::{Refusal, RefusalCode};
use son1k_domain::storage::QuotaExceeded;
use son1k_domain::DomainError;
use son1k_store::StoreError;

/// The binding problem `code`s of the contract (`openapi.yaml`); serialised as `as_str`, the one place
/// their strings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    PayloadTooLarge,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    DependencyUnavailable,
    InternalError,
    DailyLimitReached,
    MonthlyLimitReached,
    QualityNotInTier,
    GenerationIdTaken,
    AlreadySubscribed,
    BillingNotConfigured,
    NoBillingAccount,
    InvalidSignature,
    OnlyFreeTier,
    OnlyPaidTiers,
    DailyClaimLimitReached,
    AlreadyClaimed,
    AlreadyContributed,
    PoolEmpty,
    StorageQuotaExceeded,
    LyricsLimitReached,
    PixelLimitReached,
    VersionConflict,
    PreconditionRequired,
    NoProviderConfigured,
    RateLimited,
}

impl ErrorCode {
    /// Every code, in the order of `openapi.yaml`'s `Problem.code` (a test compares them).
    pub const ALL: [ErrorCode; 29] = [
        Self::InvalidRequest,
        Self::PayloadTooLarge,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::DependencyUnavailable,
        Self::InternalError,
        Self::DailyLimitReached,
        Self::MonthlyLimitReached,
        Self::QualityNotInTier,
        Self::GenerationIdTaken,
        Self::AlreadySubscribed,
        Self::BillingNotConfigured,
        Self::NoBillingAccount,
        Self::InvalidSignature,
        Self::OnlyFreeTier,
        Self::OnlyPaidTiers,
        Self::DailyClaimLimitReached,
        Self::AlreadyClaimed,
        Self::AlreadyContributed,
        Self::PoolEmpty,
        Self::StorageQuotaExceeded,
        Self::LyricsLimitReached,
        Self::PixelLimitReached,
        Self::VersionConflict,
        Self::PreconditionRequired,
        Self::NoProviderConfigured,
        Self::RateLimited,
    ];

    /// The snake_case string clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::DependencyUnavailable => "dependency_unavailable",
            Self::InternalError => "internal_error",
            Self::DailyLimitReached => "daily_limit_reached",
            Self::MonthlyLimitReached => "monthly_limit_reached",
            Self::QualityNotInTier => "quality_not_in_tier",
            Self::GenerationIdTaken => "generation_id_taken",
            Self::AlreadySubscribed => "already_subscribed",
            Self::BillingNotConfigured => "billing_not_configured",
            Self::NoBillingAccount => "no_billing_account",
            Self::InvalidSignature => "invalid_signature",
            Self::OnlyFreeTier => "only_free_tier",
            Self::OnlyPaidTiers => "only_paid_tiers",
            Self::DailyClaimLimitReached => "daily_claim_limit_reached",
            Self::AlreadyClaimed => "already_claimed",
            Self::AlreadyContributed => "already_contributed",
            Self::PoolEmpty => "pool_empty",
            Self::StorageQuotaExceeded => "storage_quota_exceeded",
            Self::LyricsLimitReached => "lyrics_limit_reached",
            Self::PixelLimitReached => "pixel_limit_reached",
            Self::VersionConflict => "version_conflict",
            Self::PreconditionRequired => "precondition_required",
            Self::NoProviderConfigured => "no_provider_configured",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl From<RefusalCode> for ErrorCode {
    fn from(code: RefusalCode) -> Self {
        match code {
            RefusalCode::QualityNotInTier => Self::QualityNotInTier,
            RefusalCode::DailyLimitReached => Self::DailyLimitReached,
            RefusalCode::MonthlyLimitReached => Self::MonthlyLimitReached,
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An expected failure of a request: status, binding code, a safe human sentence and extra fields.
/// Boxed so `Result<_, ApiError>` stays one pointer wide on the happy path.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(Box<Problem>);

#[derive(Debug, Clone, PartialEq)]
struct Problem {
    status: StatusCode,
    code: ErrorCode,
    detail: String,
    extra: Map<String, Value>,
    headers: Vec<(&'static str, String)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.code.as_str(),
            self.0.detail
        )
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(Box::new(Problem {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
            headers: Vec::new(),
        }))
    }

    /// 400 `invalid_request`; `field` is named in the detail so the client knows what to fix.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            format!("{field}: {problem}"),
        )
        .with("field", field)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid bearer token is required",
        )
        .with_header("www-authenticate", "Bearer".to_owned())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
    }

    /// 405 with the `Allow` header listing what the route accepts.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            format!("this route accepts {}", allowed.join(", ")),
        )
        .with_header("allow", allowed.join(", "))
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit_bytes} bytes"),
        )
        .with("limit_bytes", limit_bytes)
    }

    /// 503: a dependency failed. The caller learns which kind, never the underlying message. It does
    /// not claim that nothing changed (an answer can be lost after a commit); every write route is safe
    /// to retry with the same request.
    pub fn dependency_unavailable(dependency: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DependencyUnavailable,
            format!("{dependency} did not answer in time; retry the same request shortly"),
        )
        .retry_after(1)
    }

    /// 500: a bug. The body says nothing about it; the cause was logged where it was found.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "an unexpected error occurred",
        )
    }

    /// Adds an extra member to the problem document.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.0.extra.insert(key.to_owned(), value);
        self
    }

    /// Sets a response header, replacing an earlier value of the same name.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.0
            .headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.0.headers.push((name, value));
        self
    }

    /// `Retry-After` in whole seconds (at least 1), replacing any earlier one.
    pub fn retry_after(self, seconds: u64) -> Self {
        self.with_header("retry-after", seconds.max(1).to_string())
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.0.headers
    }

    /// The RFC 9457 document: standard members first, extras after; extras never override them.
    pub fn body(&self) -> Value {
        let p = &self.0;
        let mut doc = Map::new();
        doc.insert("type".into(), Value::from("about:blank"));
        doc.insert(
            "title".into(),
            Value::from(p.status.canonical_reason().unwrap_or("Error")),
        );
        doc.insert("status".into(), Value::from(p.status.as_u16()));
        doc.insert("detail".into(), Value::from(p.detail.clone()));
        doc.insert("code".into(), Value::from(p.code.as_str()));
        for (k, v) in &p.extra {
            doc.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(doc)
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        ApiError::invalid(err.field, err.reason)
    }
}

impl From<StoreError> for ApiError {
    /// Every store failure is a 503: the store was unreachable, refused, or held what we cannot read.
    /// It was logged where it was made.
    fn from(_: StoreError) -> Self {
        ApiError::dependency_unavailable("the database")
    }
}

impl From<son1k_app::rate::RateLimited> for ApiError {
    fn from(limited: son1k_app::rate::RateLimited) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "too many requests in a short time; retry after {} s",
                limited.retry_after
            ),
        )
        .with("retry_after", limited.retry_after)
        .retry_after(limited.retry_after)
    }
}

impl From<son1k_app::rate::AdmitError> for ApiError {
    fn from(err: son1k_app::rate::AdmitError) -> Self {
        match err {
            son1k_app::rate::AdmitError::Limited(limited) => limited.into(),
            son1k_app::rate::AdmitError::Store(err) => err.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::QualityNotInTier { tier, quality } => ApiError::new(
                StatusCode::FORBIDDEN,
                refusal.code().into(),
                format!(
                    "{} quality is not included in the {tier} tier",
                    quality.as_str()
                ),
            )
            .with("quality", quality)
            .with("tier", tier)
            .with("qualities", tier.spec().qualities),
            Refusal::LimitReached {
                period,
                limit,
                used,
                reset_at,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                refusal.code().into(),
                format!(
                    "all {limit} generations of this {} are used",
                    period.as_str()
                ),
            )
            .with("limit", limit)
            .with("used", used)
            .with("reset_at", son1k_domain::clock::rfc3339(reset_at))
            .retry_after(retry_after),
        }
    }
}

impl From<RecordError> for ApiError {
    fn from(err: RecordError) -> Self {
        match err {
            RecordError::Refused(refusal) => refusal.into(),
            RecordError::RateLimited(limited) => limited.into(),
            RecordError::IdTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::GenerationIdTaken,
                "this generation_id is already recorded by another user; choose another id",
            )
            .with("field", "generation_id"),
            RecordError::Store(err) => err.into(),
            RecordError::BudgetSpent { .. } => ApiError::dependency_unavailable("the database"),
        }
    }
}

impl From<son1k_app::jobs::SubmitError> for ApiError {
    fn from(err: son1k_app::jobs::SubmitError) -> Self {
        use son1k_app::jobs::SubmitError;
        match err {
            SubmitError::Refused(refusal) => refusal.into(),
            SubmitError::RateLimited(limited) => limited.into(),
            SubmitError::IdTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::GenerationIdTaken,
                "this generation_id is already used by another user or recorded; choose another id",
            )
            .with("field", "generation_id"),
            SubmitError::NoSuchLyrics => {
                ApiError::not_found("no such lyrics draft of yours").with("field", "lyrics_id")
            }
            SubmitError::StorageFull(exceeded) => exceeded.into(),
            SubmitError::NoProvider => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NoProviderConfigured,
                "no generation provider is configured on this deployment",
            ),
            SubmitError::Store(err) => err.into(),
            SubmitError::BudgetSpent { .. } => ApiError::dependency_unavailable("the database"),
        }
    }
}

impl From<son1k_app::assist::AssistError> for ApiError {
    fn from(err: son1k_app::assist::AssistError) -> Self {
        use son1k_app::assist::AssistError;
        use son1k_domain::assist::Feature;
        match err {
            AssistError::Spent(spent) => {
                let (code, what) = match spent.feature {
                    Feature::Lyrics => (ErrorCode::LyricsLimitReached, "lyrics drafts"),
                    Feature::Pixel => (ErrorCode::PixelLimitReached, "messages to Pixel"),
                };
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    code,
                    format!(
                        "all {} {what} of this day are used on the {} tier",
                        spent.limit, spent.tier
                    ),
                )
                .with("limit", spent.limit)
                .with("used", spent.limit)
                .with("reset_at", son1k_domain::clock::rfc3339(spent.reset_at))
                .retry_after(spent.retry_after)
            }
            AssistError::RateLimited(limited) => limited.into(),
            AssistError::Store(err) => err.into(),
            // Logged where it was made; the caller learns only which dependency failed.
            AssistError::Model(_) | AssistError::NoModel => {
                ApiError::dependency_unavailable("the language model")
            }
            AssistError::NotFound => ApiError::not_found("no such resource"),
            AssistError::Invalid(err) => err.into(),
            AssistError::Stale { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                ErrorCode::VersionConflict,
                format!("version {current} is the latest: read it and edit that one"),
            )
            .with("current_version", current),
        }
    }
}

impl From<son1k_app::listing::ListingError> for ApiError {
    fn from(err: son1k_app::listing::ListingError) -> Self {
        use son1k_app::listing::ListingError;
        match err {
            ListingError::BadCursor => {
                ApiError::invalid("cursor", "is not a cursor this listing gave out")
            }
            ListingError::NoCursorKey => ApiError::dependency_unavailable("the pool listing"),
            ListingError::Unsealable => ApiError::internal(),
            ListingError::Store(err) => err.into(),
        }
    }
}

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

impl From<son1k_app::community::CommunityError> for ApiError {
    fn from(err: son1k_app::community::CommunityError) -> Self {
        use son1k_app::community::CommunityError;
        match err {
            CommunityError::OnlyPaidTiers => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::OnlyPaidTiers,
                "only paid tiers contribute to the pool",
            ),
            CommunityError::NotFound => ApiError::not_found("no such generation of yours"),
            CommunityError::AlreadyContributed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyContributed,
                "this generation is in the pool already",
            ),
            CommunityError::OnlyFreeTier => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::OnlyFreeTier,
                "claiming from the pool is for FREE users",
            ),
            CommunityError::DailyClaimLimit {
                reset_at,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::DailyClaimLimitReached,
                format!(
                    "all {} claims of today are used",
                    son1k_app::community::DAILY_CLAIMS
                ),
            )
            .with("reset_at", son1k_domain::clock::rfc3339(reset_at))
            .retry_after(retry_after),
            CommunityError::AlreadyClaimed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyClaimed,
                "you claimed this item before",
            ),
            CommunityError::PoolEmpty => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::PoolEmpty,
                "nothing in the pool is left for you to claim",
            ),
            CommunityError::ItemNotFound => ApiError::not_found("no such item in the pool"),
            CommunityError::RateLimited(limited) => limited.into(),
            CommunityError::Store(err) => err.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound => {
                ApiError::not_found("no such generation of yours, or no audio stored")
            }
            StorageError::QuotaExceeded(exceeded) => exceeded.into(),
            StorageError::Store(err) => err.into(),
        }
    }
}

impl From<QuotaExceeded> for ApiError {
    fn from(exceeded: QuotaExceeded) -> Self {
        let QuotaExceeded {
            limit_bytes,
            used_bytes,
            requested_bytes,
        } = exceeded;
        let remaining = limit_bytes.saturating_sub(used_bytes);
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::StorageQuotaExceeded,
            format!(
                "{requested_bytes} bytes do not fit: {remaining} of {limit_bytes} bytes remain"
            ),
        )
        .with("limit_bytes", limit_bytes)
        .with("used_bytes", used_bytes)
        .with("remaining_bytes", remaining)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_has_the_rfc_9457_members_and_the_code() {
        let err = ApiError::invalid("quality", "must be one of standard, high, ultra");
        let body = err.body();
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Bad Request");
        assert_eq!(body["status"], 400);
        assert_eq!(body["code"], "invalid_request");
        assert_eq!(body["field"], "quality");
        assert!(body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("quality"));
    }

    #[test]
    fn every_store_failure_is_a_generic_503_with_one_retry_after() {
        for err in [
            StoreError::unavailable("GetItem", "connection refused by 10.0.0.1"),
            StoreError::corrupt("the user vanished while recording"),
            StoreError::invalid_request("transaction cancelled: ValidationError"),
        ] {
            let api = ApiError::from(err);
            assert_eq!(
                (api.status(), api.code()),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::DependencyUnavailable
                )
            );
            assert!(!api.detail().contains("10.0.0.1") && !api.detail().contains("vanished"));
            assert_eq!(api.headers(), [("retry-after", "1".to_owned())]);
        }
    }

    #[test]
    fn extras_cannot_override_standard_members() {
        let body = ApiError::forbidden("no")
            .with("status", 200)
            .with("code", "x")
            .body();
        assert_eq!(body["status"], 403);
        assert_eq!(body["code"], "forbidden");
    }

    #[test]
    fn codes_serialise_as_their_binding_strings() {
        for code in [
            ErrorCode::DailyLimitReached,
            ErrorCode::QualityNotInTier,
            ErrorCode::PayloadTooLarge,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap_or_default(),
                code.as_str()
            );
        }
    }
}
