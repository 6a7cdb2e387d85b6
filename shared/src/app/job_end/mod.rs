//! A job ended: the one home of what follows a Bedrock batch job's end or an on-demand run,
//! whichever stage meets it (the watcher, the reconciler's poll, the submitter's on-demand jobs,
//! a pool member's on-demand run):
//!
//! - [`records`]: what a job was given, each record with its owner ([`records::JobRecord`]),
//!   and the one map from our record id to the id its manifest line carries;
//! - its results are stored through `app::results::put`, the one function every writer of
//!   results calls (a shared job's go to its members);
//! - [`rerun`]: what becomes of the records a job left unanswered, decided in one place
//!   ([`rerun::decide`]): a re-run batch job, an on-demand re-run, or, at a deadline's cut-off,
//!   a redrive on-demand.

pub mod records;
pub mod rerun;
