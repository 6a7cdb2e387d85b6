//! batch-orchestrator's command-line side: the embedded runtime that runs the whole pipeline
//! on one machine, sample receipt images, and the reports the CLI prints.

pub mod bedrock_server;
pub mod embedded;
pub mod http_api;
#[cfg(feature = "aws")]
pub mod local_aws;
pub mod ops;
pub mod progress;
pub mod receipts;
pub mod report;
pub mod samples;
pub mod serve;
