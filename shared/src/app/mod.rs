//! Use cases: what each stage does, in domain terms, over the ports. Handlers in `functions/`
//! decode their event, call one function here and encode the answer; both backends run this
//! same code.

pub mod cancel;
pub mod deadline;
pub mod duplicates;
pub mod intake;
pub mod job_end;
pub mod lease;
pub mod lists;
pub mod manifest;
pub mod nightly;
pub mod nights;
pub mod normalized;
pub mod on_demand;
mod on_demand_job;
pub mod ops;
pub mod outbox;
pub mod pace;
pub mod pool;
pub mod reask;
pub mod reconcile;
pub mod results;
pub mod slots;
pub mod status;
pub mod stop;
pub mod submit;
pub mod uploads;
pub mod usage;
pub mod watch;
pub mod webhooks;

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
    pub allowances: Arc<dyn crate::ports::Allowances>,
    pub rates: Arc<dyn crate::ports::RateBudget>,
    pub leases: Arc<dyn crate::ports::Leases>,
    pub history: Arc<dyn crate::ports::JobHistory>,
    pub duplicates: Arc<dyn crate::ports::DuplicateIndex>,
    pub nights: Arc<dyn crate::ports::NightLog>,
    pub webhooks: Arc<dyn crate::ports::WebhookPoster>,
    pub objects: Arc<dyn ObjectStore>,
    pub bus: Arc<dyn EventBus>,
    pub bedrock: Arc<dyn BatchInference>,
    pub on_demand: Arc<dyn OnDemandInference>,
    pub uploads: Arc<dyn UploadsIndex>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
}

impl Deps {
    /// How `intent`'s answers are reviewed (`domain::receipt`), if its prompt has a schema.
    pub fn review_of(
        &self,
        intent: &crate::domain::intent::BatchIntent,
    ) -> Option<crate::domain::receipt::Review> {
        self.settings
            .review(&intent.prompt_version, self.clock.now())
    }
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
    /// A port error keeps its kind: a request the service refused as invalid can never succeed
    /// (permanent); every other failure is retried: the message goes back to its queue (and,
    /// after the queue's maxReceiveCount, to the DLQ), so nothing is lost.
    fn from(e: PortError) -> Self {
        match e.kind {
            crate::ports::ErrorKind::Validation => Self::Permanent(e.to_string()),
            _ => Self::Retryable(e),
        }
    }
}

impl From<crate::domain::intent::Refused> for StageError {
    /// A transition the state machine refuses after the stage checked it can happen: the
    /// message can never succeed as it is, so it belongs in the DLQ.
    fn from(e: crate::domain::intent::Refused) -> Self {
        Self::Permanent(e.to_string())
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

/// One attempt of a version-conditional update.
pub(crate) enum Cas<T, S = ()> {
    /// Finished (written, or nothing to write): the answer.
    Done(T),
    /// Lost the race to another writer: read again and decide again, from this state.
    Again(S),
    /// Written, and there is more to do (the next of an intent's jobs): go on from this state
    /// without spending a race attempt.
    Next(S),
}

/// Most steps of progress one loop makes ([`Cas::Next`]): an intent's jobs, with room to spare.
const MAX_PROGRESS_STEPS: usize = 10_000;

/// The one version-conditional update loop every stage uses: `attempt` loads the intent,
/// applies its change and saves it against the version it read; on a lost race it answers
/// [`Cas::Again`] with whatever it carries to the next attempt (often nothing), and runs
/// again, at most [`MAX_CAS_ATTEMPTS`] times. None: every attempt lost its race (the caller
/// says what that means, usually [`lost_races`]).
pub(crate) async fn cas_loop<S, T, Fut>(
    mut state: S,
    mut attempt: impl FnMut(S) -> Fut,
) -> Result<Option<T>, StageError>
where
    Fut: std::future::Future<Output = Result<Cas<T, S>, StageError>>,
{
    let (mut races, mut steps) = (0, 0);
    while races < MAX_CAS_ATTEMPTS && steps < MAX_PROGRESS_STEPS {
        match attempt(state).await? {
            Cas::Done(answer) => return Ok(Some(answer)),
            Cas::Again(next) => {
                races += 1;
                state = next;
            }
            Cas::Next(next) => {
                steps += 1;
                state = next;
            }
        }
    }
    Ok(None)
}

/// An update that kept losing its race: retryable, so the message comes back later.
pub(crate) fn lost_races(what: &str) -> StageError {
    StageError::Retryable(PortError::new(
        crate::ports::ErrorKind::Conflict,
        format!("{what} kept losing races"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_port_error_becomes_a_stage_error_should_keep_its_kind() {
        use crate::ports::ErrorKind;
        let of = |kind| StageError::from(PortError::new(kind, "x"));
        assert!(
            !of(ErrorKind::Validation).is_retryable(),
            "a validation error never succeeds"
        );
        for kind in [
            ErrorKind::Conflict,
            ErrorKind::NotFound,
            ErrorKind::Transient,
            ErrorKind::Throttled,
            ErrorKind::QuotaExceeded,
            ErrorKind::Forbidden,
            ErrorKind::Unexpected,
        ] {
            assert!(of(kind).is_retryable(), "{kind:?} goes back to its queue");
        }
    }

    #[tokio::test]
    async fn when_a_loop_makes_progress_should_not_spend_its_race_attempts() {
        // Ten jobs in a row (Next), each after one lost race (Again): done, not "lost races".
        let out = cas_loop(0u32, |n| async move {
            Ok(match n {
                20 => Cas::Done(n),
                n if n % 2 == 0 => Cas::Again(n + 1),
                n => Cas::Next(n + 1),
            })
        })
        .await
        .expect("no error");
        assert_eq!(out, None, "ten lost races are more than the budget");
        let out = cas_loop(0u32, |n| async move {
            Ok(if n == 20 {
                Cas::Done(n)
            } else {
                Cas::Next(n + 1)
            })
        })
        .await
        .expect("no error");
        assert_eq!(out, Some(20), "progress alone never runs out of attempts");
        let out = cas_loop(0u32, |n| async move {
            Ok(if n == MAX_CAS_ATTEMPTS as u32 {
                Cas::Done(n)
            } else {
                Cas::Again::<u32, u32>(n + 1)
            })
        })
        .await
        .expect("no error");
        assert_eq!(out, None, "eight lost races exhaust the budget");
    }
}
