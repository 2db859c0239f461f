//! `ApiError`: every expected failure of a request, rendered as an RFC 9457 problem document.
//!
//! The `code`s are the binding machine codes of the contract (openapi.yaml), defined once here. Every lower layer's failure
//! (store, metering refusal, bad input) becomes a problem document here, in `From` impls without side
//! effects, one module per use case next to the others (`billing`, `community`, ...). A 5xx body is always generic: the cause is logged once where it is found, never sent.

mod account;
mod assist;
mod billing;
mod community;
mod jobs;
mod listing;
mod metering;
mod rate;
mod storage;
mod voices;

use lambda_http::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use son1k_domain::metering::RefusalCode;
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
    AlreadyOnTier,
    FeatureNotInTier,
    VoiceLimitReached,
    SamplesMissing,
    VoiceNotReady,
    VoiceDeleted,
    LegalHold,
    ExportInProgress,
    ExportLimitReached,
}

impl ErrorCode {
    /// Every code, in the order of `openapi.yaml`'s `Problem.code` (a test compares them).
    pub const ALL: [ErrorCode; 38] = [
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
        Self::AlreadyOnTier,
        Self::FeatureNotInTier,
        Self::VoiceLimitReached,
        Self::SamplesMissing,
        Self::VoiceNotReady,
        Self::VoiceDeleted,
        Self::LegalHold,
        Self::ExportInProgress,
        Self::ExportLimitReached,
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
            Self::AlreadyOnTier => "already_on_tier",
            Self::FeatureNotInTier => "feature_not_in_tier",
            Self::VoiceLimitReached => "voice_limit_reached",
            Self::SamplesMissing => "samples_missing",
            Self::VoiceNotReady => "voice_not_ready",
            Self::VoiceDeleted => "voice_deleted",
            Self::LegalHold => "legal_hold",
            Self::ExportInProgress => "export_in_progress",
            Self::ExportLimitReached => "export_limit_reached",
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
    /// It was logged where it was made. A deleted account's token is a 401, as a token API Gateway
    /// had refused.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AccountDeleted => ApiError::unauthorized(),
            _ => ApiError::dependency_unavailable("the database"),
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
