//! Integration tests: real handlers against the local wire-protocol server (`make test` starts it).
//! One test binary on purpose: each binary is another link of the AWS SDK.

mod http_helpers;
mod limits;
mod local_api;
mod moto_atomicity;
mod public_routes;
mod template;
mod users;
