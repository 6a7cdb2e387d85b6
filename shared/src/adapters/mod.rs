//! Adapters behind the ports. `aws` (feature `aws`) reaches the real services; `embedded`
//! (feature `embedded`, which the Lambdas leave out) runs everything on one machine with no AWS
//! account. The clocks and the local data dir serve both.

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
pub mod data_dir;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod sqs_edge;
pub mod webhook_http;
