//! Cancel, for the owner of a batch. Before submission the intent becomes CANCELLED and no
//! stage will submit it; once Bedrock jobs run, each is stopped and the intent ends STOPPED
//! with the partial results ingested. Another user's job is reported as missing.
//!
//! Replay: cancelling twice is the same as once (a finished intent is answered as it is; a
//! second stop of a stopping job is ignored). A submitter that created a job just as the
//! cancel landed stops that job itself (see `submit`).

use crate::app::outbox::{save, Saved};
use crate::app::status::{job_status, JobView};
use crate::app::{cas_loop, lost_races, Cas, Deps, StageError};
use crate::domain::ids::{IntentId, JobId, UserId};
use crate::domain::intent::{BatchIntent, Cancel, ImageSelection};
use crate::domain::results::ImageResult;
use crate::domain::status::IntentStatus;

pub async fn cancel(
    deps: &Deps,
    caller: &UserId,
    job_id: &JobId,
) -> Result<Option<JobView>, StageError> {
    cas_loop((), move |()| async move {
        let Some(intent) = deps.store.get_by_job_id(job_id).await? else {
            return Ok(Cas::Done(None));
        };
        if &intent.user_id != caller {
            return Ok(Cas::Done(None));
        }
        let expected = intent.version;
        let mut next = intent.clone();
        let plan = match next.cancel(deps.clock.now()) {
            Ok(plan) => plan,
            // Already cancelled: finish what a failed first try may have left undone (all
            // of it idempotent), then answer as it stands.
            Err(_) if intent.status == IntentStatus::Cancelled => {
                let plan = match intent.pool.as_ref().and_then(|p| p.sealed_into.clone()) {
                    Some(shared) => Cancel::LeftSharedJob(shared),
                    None => Cancel::Cancelled,
                };
                carry_out(deps, &intent, plan).await?;
                return Ok(Cas::Done(job_status(deps, caller, job_id).await?));
            }
            // Already finished: cancelling is a no-op.
            Err(_) => return Ok(Cas::Done(job_status(deps, caller, job_id).await?)),
        };
        let already_requested = intent.cancel_requested_at.is_some();
        if !(already_requested && matches!(plan, Cancel::StopJobs(_))) {
            if let Saved::Stale(_) = save(deps, next, expected).await? {
                return Ok(Cas::Again(()));
            }
        }
        carry_out(deps, &intent, plan).await?;
        tracing::info!(intent_id = %intent.intent_id, job_id = %job_id, "cancel accepted");
        Ok(Cas::Done(job_status(deps, caller, job_id).await?))
    })
    .await?
    .ok_or_else(|| lost_races("cancel"))
}

/// What a cancel needs beyond its write: free the slots of a job never created, stop
/// running jobs, or leave a shared job.
async fn carry_out(deps: &Deps, intent: &BatchIntent, plan: Cancel) -> Result<(), StageError> {
    match plan {
        Cancel::Cancelled => {
            // A submitter may have taken a slot and died before creating its job.
            for job in &intent.jobs {
                crate::app::slots::release(deps, &intent.model_id, &job.client_token).await?;
            }
        }
        Cancel::StopJobs(arns) => {
            for arn in arns {
                crate::app::stop::stop_job(deps, &arn).await?;
            }
        }
        Cancel::LeftSharedJob(shared) => leave_shared_job(deps, intent, &shared).await?,
    }
    Ok(())
}

/// A cancelled member of a shared job: its records are marked canceled (the job's answers
/// for them will be dropped), and the shared job itself is cancelled, or its Bedrock jobs
/// stopped, only once every member is cancelled. Idempotent.
async fn leave_shared_job(
    deps: &Deps,
    member: &BatchIntent,
    shared: &IntentId,
) -> Result<(), StageError> {
    let canceled: Vec<ImageResult> = crate::app::lists::images(deps, member)
        .await?
        .iter()
        .filter(|i| i.rejected.is_none())
        .map(|i| ImageResult::canceled(i.record_id.clone(), i.index, i.key.clone()))
        .collect();
    crate::app::results::put_own(deps, &member.intent_id, &canceled).await?;
    cas_loop((), move |()| async move {
        let Some(pool) = deps.store.get(shared).await? else {
            // Not created yet (its sealer died): the next pool pass creates it without this
            // member, which is no longer POOLED.
            return Ok(Cas::Done(()));
        };
        if !matches!(pool.selection, ImageSelection::Pool { .. }) {
            return Ok(Cas::Done(()));
        }
        for m in crate::app::lists::members(deps, &pool).await? {
            // A member the shared job holds that still waits for it.
            let still_wanted = deps.store.get(&m.intent_id).await?.is_some_and(|i| {
                i.status == IntentStatus::Pooled
                    && i.pool
                        .as_ref()
                        .is_some_and(|p| p.sealed_into.as_ref() == Some(shared))
            });
            if still_wanted {
                return Ok(Cas::Done(()));
            }
        }
        let expected = pool.version;
        let mut next = pool.clone();
        let Ok(plan) = next.cancel(deps.clock.now()) else {
            return Ok(Cas::Done(())); // already ended
        };
        if !(pool.cancel_requested_at.is_some() && matches!(plan, Cancel::StopJobs(_))) {
            if let Saved::Stale(_) = save(deps, next, expected).await? {
                return Ok(Cas::Again(()));
            }
        }
        tracing::info!(pool_intent = %pool.intent_id, "every member cancelled; cancelling the shared job");
        Box::pin(carry_out(deps, &pool, plan)).await?;
        Ok(Cas::Done(()))
    })
    .await?
    .ok_or_else(|| lost_races("cancelling a shared job"))
}
