//! The cross-stage tests, linked into one test binary: each module used to be its own binary,
//! and every one of them linked the whole AWS SDK, which cost gigabytes of disk per build.
//! `tests/metrics.rs` stays a binary of its own: it installs the process-wide metrics recorder.
// A test reads as one scenario, top to bottom: the function-length limit is for the code.
#![allow(clippy::too_many_lines)]

#[path = "../common/mod.rs"]
mod common;

mod authz;
#[cfg(feature = "aws")]
mod aws_duplicates;
#[cfg(feature = "aws")]
mod aws_e2e;
#[cfg(feature = "aws")]
mod aws_history;
#[cfg(feature = "aws")]
mod aws_limits;
#[cfg(feature = "aws")]
mod aws_nights;
mod bedrock_faults;
mod chaos;
mod deadlines;
mod docs;
mod duplicates;
mod edges;
mod events;
mod faults;
mod hostile;
mod intake;
mod layout;
mod legibility;
mod limits;
mod nightly;
mod nova;
mod openapi;
mod ops_page;
mod photos;
mod pipeline;
mod pools;
mod rates;
mod reading;
mod receipts;
mod scale;
mod serve_api;
mod usage;
mod use_cases;
mod webhooks;
