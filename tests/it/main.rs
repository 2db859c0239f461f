//! Integration tests: real handlers against the local wire-protocol servers (`make test` starts
//! DynamoDB Local and moto S3).
//! One test binary on purpose: each binary is another link of the AWS SDK.

pub(crate) mod account;
mod admin_tier;
mod alerts;
mod analytics;
mod atomicity;
mod audit;
mod authorization;
mod aws_semantics;
mod checkout;
mod contract;
mod credit_packs;
mod credits;
mod dependency_faults;
mod http_headers;
mod http_helpers;
mod jobs;
mod limits;
mod llm;
mod local_api;
mod local_stack;
mod lyrics;
mod metering;
mod metering_periods;
mod model;
mod permissions;
mod pixel;
mod plans;
mod pool;
mod preview;
mod public_routes;
mod ranking;
mod rate;
mod scheduled_reset;
mod storage;
mod stripe_webhook;
mod template;
mod tokens;
mod users;
mod voices;
