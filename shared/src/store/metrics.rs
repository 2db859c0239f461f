//! Counting DynamoDB round trips: an SDK interceptor that records the operation of every request sent
//! (SDK retries included), for the call-count assertions in tests and the numbers in BENCHMARKS.md.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::{Arc, Mutex};

/// Shared log of operations sent (`GetItem`, `TransactWriteItems`, ...); clones share the log.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Operations sent since the last `take`, in order; the log starts again empty.
    pub fn take(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut calls| std::mem::take(&mut *calls))
            .unwrap_or_default()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.GetItem`.
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(operation);
        }
        Ok(())
    }
}
