//! Counting DynamoDB round trips and capacity: SDK interceptors that record the operation of every
//! request sent (SDK retries included) and the capacity DynamoDB reports, for the call-count
//! assertions in tests and the numbers in BENCHMARKS.md.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::{Arc, Mutex};

/// A log an interceptor appends to and a test or benchmark takes; clones share it.
#[derive(Debug)]
struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Log<T> {
    fn push(&self, value: T) {
        if let Ok(mut all) = self.0.lock() {
            all.push(value);
        }
    }

    /// What was logged since the last `take`, in order; the log starts again empty.
    fn take(&self) -> Vec<T> {
        self.0
            .lock()
            .map(|mut all| std::mem::take(&mut *all))
            .unwrap_or_default()
    }
}

/// Shared log of operations sent (`GetItem`, `TransactWriteItems`, ...); clones share the log.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Log<String>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Operations sent since the last `take`, in order; the log starts again empty.
    pub fn take(&self) -> Vec<String> {
        self.calls.take()
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
        self.calls.push(operation);
        Ok(())
    }
}

/// Capacity units DynamoDB reports for each request sent through it: asks for `TOTAL` consumed
/// capacity on the operations that report it and reads it off the response (transactions report
/// per table; summed). For BENCHMARKS.md; never on in production.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter {
    units: Log<f64>,
}

/// The operations that take `ReturnConsumedCapacity`.
const METERED: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

impl CapacityMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Capacity units per request since the last `take`.
    pub fn take(&self) -> Vec<f64> {
        self.units.take()
    }
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request_mut();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        if !METERED.contains(&operation.as_str()) {
            return Ok(());
        }
        let Some(Ok(serde_json::Value::Object(mut body))) = request
            .body()
            .bytes()
            .map(serde_json::from_slice::<serde_json::Value>)
        else {
            return Ok(());
        };
        body.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = aws_smithy_types::body::SdkBody::from(bytes);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef<
            '_,
        >,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use aws_sdk_dynamodb::operation as op;
        use aws_sdk_dynamodb::types::ConsumedCapacity;
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let one = |c: Option<&ConsumedCapacity>| c.and_then(|c| c.capacity_units()).unwrap_or(0.0);
        let many = |cs: &[ConsumedCapacity]| cs.iter().filter_map(|c| c.capacity_units()).sum();
        macro_rules! single {
            ($($ty:ty),*) => {
                None$(.or_else(|| output.downcast_ref::<$ty>().map(|o| one(o.consumed_capacity()))))*
            };
        }
        let units: Option<f64> = single!(
            op::get_item::GetItemOutput,
            op::put_item::PutItemOutput,
            op::update_item::UpdateItemOutput,
            op::delete_item::DeleteItemOutput,
            op::query::QueryOutput,
            op::scan::ScanOutput
        )
        .or_else(|| {
            output
                .downcast_ref::<op::transact_write_items::TransactWriteItemsOutput>()
                .map(|o| many(o.consumed_capacity()))
        });
        if let Some(units) = units {
            self.units.push(units);
        }
        Ok(())
    }
}
