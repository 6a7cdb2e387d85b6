//! Use cases: what each stage does, in domain terms, over the ports. Handlers in `functions/`
//! decode their event, call one function here and encode the answer; both backends run this
//! same code.

pub mod cancel;
pub mod intake;
pub mod lists;
pub mod manifest;
pub mod normalized;
pub mod on_demand;
pub mod outbox;
pub mod pool;
pub mod reconcile;
pub mod slots;
pub mod status;
pub mod submit;
pub mod sweep;
pub mod uploads;
pub mod watch;

use crate::domain::settings::Settings;
use crate::ports::{
    BatchInference, Clock, EventBus, IntentStore, ObjectStore, OnDemandInference, PortError,
    ResultStore, SlotStore, UploadsIndex,
};
use std::sync::Arc;

/// Everything a stage needs, built once per process (per Lambda cold start).
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn IntentStore>,
    pub results: Arc<dyn ResultStore>,
    pub slots: Arc<dyn SlotStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub bus: Arc<dyn EventBus>,
    pub bedrock: Arc<dyn BatchInference>,
    pub on_demand: Arc<dyn OnDemandInference>,
    pub uploads: Arc<dyn UploadsIndex>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// How a stage failed, as the message's edge must treat it.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Try the message again later (throttling, a store or bus outage, a race to redo).
    #[error("retryable: {0}")]
    Retryable(#[source] PortError),
    /// The message itself can never succeed (malformed); it belongs in the DLQ.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl StageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

impl From<PortError> for StageError {
    /// Infrastructure failures are retried: the message goes back to its queue (and, after
    /// the queue's maxReceiveCount, to the DLQ), so nothing is lost.
    fn from(e: PortError) -> Self {
        Self::Retryable(e)
    }
}

/// What a stage did with one message; logged, and asserted on in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The stage moved the intent forward.
    Advanced(crate::domain::status::IntentStatus),
    /// A replay or a stale event: nothing to do (an orphaned outbox may have been flushed).
    AlreadyDone,
    /// Every concurrency slot is taken; a freed slot announces the intent again.
    Waiting,
    /// The message names no intent of ours; logged and dropped.
    Unknown(String),
}

/// How many times a stage re-reads and retries after losing a conditional write to a racer.
pub(crate) const MAX_CAS_ATTEMPTS: usize = 8;
