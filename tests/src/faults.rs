//! Faults the local server cannot produce, injected at the SDK level: a DynamoDB call that fails before
//! it is sent, one whose response is lost after DynamoDB applied it, and a transaction that DynamoDB
//! cancels for a conflict, and a single-item write refused because its item is in a transaction.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeDeserializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call never reaches DynamoDB (connection refused).
    FailBeforeSend,
    /// DynamoDB applies the call, then the response is lost (timeout after commit).
    LoseResponse,
    /// DynamoDB answers `TransactionCanceledException` with `TransactionConflict` for the second item,
    /// having applied nothing (the call is turned into a harmless `DescribeLimits` before it is sent).
    CancelWithConflict,
    /// Likewise, but the second item's reason is one no retry overcomes (`ValidationError`).
    CancelWithValidationError,
    /// A single-item write (`UpdateItem`, `PutItem`) refused with `TransactionConflictException`, as
    /// DynamoDB does while the item is in another transaction; nothing applied.
    ConflictWithTransaction,
}

impl FaultMode {
    /// The cancellation reason code of the second item, for the modes that cancel a transaction.
    fn cancel_code(self) -> Option<&'static str> {
        match self {
            Self::CancelWithConflict => Some("TransactionConflict"),
            Self::CancelWithValidationError => Some("ValidationError"),
            Self::ConflictWithTransaction => Some("TransactionConflict"),
            Self::FailBeforeSend | Self::LoseResponse => None,
        }
    }
}

/// Injects `mode` into the next `times` calls of `operation` (e.g. `TransactWriteItems`).
#[derive(Debug, Clone)]
pub struct Fault {
    operation: &'static str,
    mode: FaultMode,
    remaining: Arc<AtomicU32>,
    fired: Arc<AtomicU32>,
    /// Calls defused before sending whose response is still to be replaced.
    pending: Arc<AtomicU32>,
    /// Matching calls let through before the fault starts.
    skip: Arc<AtomicU32>,
}

impl Fault {
    pub fn new(operation: &'static str, mode: FaultMode, times: u32) -> Self {
        Self {
            operation,
            mode,
            remaining: Arc::new(AtomicU32::new(times)),
            fired: Arc::new(AtomicU32::new(0)),
            pending: Arc::new(AtomicU32::new(0)),
            skip: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The same fault, starting after `calls` matching calls went through untouched.
    pub fn after(self, calls: u32) -> Self {
        self.skip.store(calls, Ordering::SeqCst);
        self
    }

    /// How often the fault fired.
    pub fn fired(&self) -> u32 {
        self.fired.load(Ordering::SeqCst)
    }

    fn fire(&self, mode: FaultMode, cfg: &ConfigBag) -> bool {
        let matches = self.mode == mode
            && cfg
                .load::<Metadata>()
                .is_some_and(|m| m.name() == self.operation);
        if matches
            && self
                .skip
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return false;
        }
        if matches
            && self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.fired.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        false
    }
}

impl Intercept for Fault {
    fn name(&self) -> &'static str {
        "Fault"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.fire(FaultMode::FailBeforeSend, cfg) {
            return Err("injected fault: connection refused".into());
        }
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.mode.cancel_code().is_some() && self.fire(self.mode, cfg) {
            let request = ctx.request_mut();
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.DescribeLimits");
            *request.body_mut() = SdkBody::from("{}");
            request.headers_mut().insert("content-length", "2");
            self.pending.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.fire(FaultMode::LoseResponse, cfg) {
            return Err("injected fault: response lost".into());
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ours = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == self.operation);
        if ours
            && self
                .pending
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            let code = self.mode.cancel_code().unwrap_or("TransactionConflict");
            let body = if self.mode == FaultMode::ConflictWithTransaction {
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#.to_owned()
            } else {
                format!(
                    r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, {code}]","CancellationReasons":[{{"Code":"None"}},{{"Code":"{code}","Message":"injected"}}]}}"#
                )
            };
            let mut response = Response::new(StatusCode::try_from(400u16)?, SdkBody::from(body));
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            *ctx.response_mut() = response;
        }
        Ok(())
    }
}

/// Records what DynamoDB answered each call: its operation and HTTP status (`("PutItem", 200)`,
/// `("PutItem", 400)` for a failed condition), in the order the answers arrived; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Outcomes(Arc<std::sync::Mutex<Vec<(String, u16)>>>);

impl Outcomes {
    pub fn new() -> Self {
        Self::default()
    }

    /// The answers since the last `take`; the log starts again empty.
    pub fn take(&self) -> Vec<(String, u16)> {
        std::mem::take(&mut *self.0.lock().expect("outcomes"))
    }
}

impl Intercept for Outcomes {
    fn name(&self) -> &'static str {
        "Outcomes"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown".to_owned(), |m| m.name().to_owned());
        let status = context.response().status().as_u16();
        self.0.lock().expect("outcomes").push((operation, status));
        Ok(())
    }
}
