//! Adapters behind the ports. `embedded` runs everything on one machine with no AWS account.

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
pub mod sqs_edge;
pub mod webhook_http;
