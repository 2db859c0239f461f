//! Integration tests: real handlers against the local wire-protocol server (`make test` starts it).
//! One test binary on purpose: each binary is another link of the AWS SDK.

mod admin_tier;
mod http_helpers;
mod limits;
mod local_api;
mod metering;
mod moto_atomicity;
mod permissions;
mod public_routes;
mod scheduled_reset;
mod template;
mod users;
