//! batch-orchestrator's shared crate: the domain, the ports it needs, the use cases each
//! stage runs, and the adapters behind the ports.
//!
//! Dependencies point one way, down this list:
//!
//! ```text
//! functions/*/src/main.rs   decode the Lambda event, call one use case, encode the answer
//!   adapters/sqs_edge.rs    the SQS edge: envelopes in, batchItemFailures out
//!   app/                    one use case per stage: intake/, manifest/, submit, watch,
//!                           reconcile, cancel, status, pool/, on_demand, deadline, webhooks,
//!                           normalized (the image copies), outbox (and its sweep)
//!   ports.rs                the small traits the use cases need (stores, bus, objects,
//!                           Bedrock batch and on-demand, clock) and the one PortError
//!   domain/                 pure rules, no I/O and no AWS: ids, the intent aggregate
//!                           (intent/), events, Bedrock's formats, job names and state
//!                           changes, each decoded once (bedrock.rs),
//!                           manifests and record families (manifest.rs, family/), media
//!                           types (media.rs), image normalization (normalize/), planning
//!                           (plan.rs, pool.rs, deadline.rs), settings
//!   adapters/aws/           one file per AWS service, behind the ports (feature `aws`)
//!   adapters/embedded/      the same ports on one machine: SQLite store and bus, files for
//!                           S3, the Bedrock batch emulator, fault injection (feature
//!                           `embedded`, which the Lambdas leave out)
//!   adapters/clock.rs, data_dir.rs   the clocks and the local data dir both backends use
//! config.rs, topology.rs    settings from the environment; the routing rules (event ->
//!                           queue) every backend shares
//! metrics.rs, telemetry.rs  CloudWatch EMF metrics; tracing set-up
//! ```

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod telemetry;
pub mod topology;
