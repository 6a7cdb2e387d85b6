//! intake: the front door, two Lambdas from this crate.
//! - `intake` (HTTP): API Gateway's REST (v1) and HTTP API (v2) events through `lambda_http`'s
//!   adapter ([`http`]) to one axum [`router`], which `serve` also serves on localhost: one code
//!   path for both.
//! - `intake-events`: the plain events ([`events`]): a direct invoke, S3 "Object Created" for
//!   the uploads index, and the nightly schedule.
//!
//! [`answer`] owns every answer either gives.

pub mod answer;
pub mod auth;
pub mod events;
pub mod hs256;
pub mod http;
pub mod router;

pub use auth::{Auth, LocalKey, USER_CLAIM};
pub use events::IntakeEvent;
pub use router::router;
