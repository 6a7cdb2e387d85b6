//! batch-orchestrator's shared crate: the domain, the ports it needs, the use cases each
//! stage runs, and the adapters behind the ports.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod telemetry;
pub mod topology;
