//! The HTTP edge of every API function: the caller from the authorizer's claims (`auth`), request
//! parsing and responses (`request`), the route table (`routes`), and every failure of a use case
//! rendered as a problem document (`error`). Nothing here writes or calls anything: a handler parses,
//! calls one use case of `son1k-app`, and renders what it answered.

pub mod auth;
pub mod error;
pub mod request;
pub mod routes;

pub use error::{ApiError, ErrorCode};
