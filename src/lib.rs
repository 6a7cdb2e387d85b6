//! batch-orchestrator's command-line side: the embedded runtime that runs the whole pipeline
//! on one machine, sample receipt images, and the reports the CLI prints.

pub mod embedded;
pub mod report;
pub mod samples;
pub mod bedrock_server;
pub mod local_aws;
