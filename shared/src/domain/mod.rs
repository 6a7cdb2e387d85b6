//! The domain: ids, the intent state machine, events, manifest and result rules.
//! Nothing in here imports an AWS or Lambda crate.

pub mod backoff;
pub mod bedrock;
pub mod catalog;
pub mod deadline;
pub mod duplicates;
pub mod events;
pub mod family;
pub mod ids;
pub mod intent;
pub mod manifest;
pub mod media;
pub mod night;
pub mod normalize;
pub mod plan;
pub mod pool;
pub mod quotas;
pub mod rate;
pub mod receipt;
pub mod results;
pub mod settings;
pub mod status;
pub mod uploads;
pub mod usage;
pub mod webhook;
