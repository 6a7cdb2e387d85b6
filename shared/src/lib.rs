//! batch-orchestrator's shared crate: the domain, the ports it needs, the use cases each
//! stage runs, and the adapters behind the ports.
//!
//! The floors, from the bottom: each imports only the floors below it (held by
//! `tests/it/layout.rs` for app/ and domain/; docs/architecture.md has the full map).
//!
//! ```text
//! domain/                 pure rules, no I/O and no AWS: ids, the intent aggregate (intent/),
//!                         events, Bedrock's formats (bedrock.rs), manifests and record
//!                         families (manifest.rs, family/), images (media.rs, normalize/),
//!                         planning (plan.rs, pool.rs, quotas.rs, deadline.rs), results,
//!                         duplicates, usage, nights, settings
//! ports.rs                the small traits the use cases need and the one PortError  → domain
//! metrics.rs, topology.rs, config.rs
//!                         CloudWatch EMF metrics; the routing rules (event -> queue); settings
//!                         from the environment                                       → domain
//! telemetry.rs            tracing set-up                                             → nothing
//! app/                    the use cases, floor by floor (mod.rs: Deps, StageError, cas_loop)
//!                                                                  → ports, domain, metrics
//! adapters/               behind the ports: aws/ (feature `aws`), embedded/ (feature
//!                         `embedded`, which the Lambdas leave out), the clocks, the data dir,
//!                         webhooks over HTTP, and the SQS edge (envelopes in, batchItemFailures
//!                         out)                                            → app and all below
//! ```
//!
//! Above them all, outside this crate: `functions/*` (decode the Lambda event, call one use
//! case, encode the answer) and the `batch-orchestrator` binary.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod telemetry;
pub mod topology;
