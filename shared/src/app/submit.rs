//! Submitter: create one Bedrock job per planned job with a deterministic name and
//! clientRequestToken, and record each ARN with a conditional write.
//!
//! Replay: Bedrock answers a repeated token with the job it already made, so a replay (or a
//! crash between create and record) never starts a second job; a job whose ARN is recorded is
//! not created again, and once the intent is SUBMITTED a replay writes nothing.

use super::outbox::{save, take_over, Saved};
use super::{cas_loop, lost_races, Cas, Deps, Outcome, StageError};
use crate::domain::bedrock::CreateJobRequest;
use crate::domain::ids::{BedrockJobArn, IntentId};
use crate::domain::intent::{BatchIntent, BatchJob};
use crate::domain::status::IntentStatus;
use crate::ports::ErrorKind;

/// The tag every job this stack creates carries, valued with the stack's manifests bucket.
pub const STACK_TAG: &str = "batch-orchestrator-stack";

#[tracing::instrument(skip_all, fields(intent_id = %intent_id, job_id = %crate::domain::ids::JobId::for_intent(intent_id)))]
pub async fn submit_jobs(deps: &Deps, intent_id: &IntentId) -> Result<Outcome, StageError> {
    // A job this call created whose ARN it could not record yet.
    let created: Option<BedrockJobArn> = None;
    cas_loop(created, move |created| {
        submit_next(deps, intent_id, created)
    })
    .await?
    .ok_or_else(|| lost_races("submission"))
}

/// One attempt: the intent's next job without an ARN is created (after taking a slot) and its
/// ARN recorded; a cancel that came meanwhile stops the job this call created.
async fn submit_next(
    deps: &Deps,
    intent_id: &IntentId,
    mut created: Option<BedrockJobArn>,
) -> Result<Cas<Outcome, Option<BedrockJobArn>>, StageError> {
    let Some(mut intent) = deps.store.get(intent_id).await? else {
        return Ok(Cas::Done(Outcome::Unknown(format!(
            "no intent {intent_id}"
        ))));
    };
    if intent.status == IntentStatus::Cancelled {
        // The owner cancelled while this call was creating a job: stop it, or it would
        // run (and bill) for an intent nobody wants.
        if let Some(arn) = created.take() {
            tracing::warn!(bedrock_job_arn = %arn, "cancelled during submission; stopping the job just created");
            super::cancel::stop_job(deps, &arn).await?;
        }
    }
    if intent.status != IntentStatus::ManifestReady {
        take_over(deps, &intent).await?;
        return Ok(Cas::Done(Outcome::AlreadyDone));
    }
    let Some(job) = intent.jobs.iter().find(|j| j.arn.is_none()).cloned() else {
        // Every ARN is recorded but the status did not move: cannot happen through
        // `record_submission`; treat as done rather than loop.
        return Ok(Cas::Done(Outcome::AlreadyDone));
    };
    let req = create_request(deps, &intent, &job);
    let now = deps.clock.now();
    let expected = intent.version;
    let since = intent.updated_at;
    // A slot first: never more submitted + in-progress jobs per model than the quota. The
    // slot's holder is the job's client token, so a retry finds the slot it already took.
    let cap = deps
        .settings
        .quotas_for(&intent.model_id)
        .max_concurrent_jobs;
    if !deps
        .slots
        .acquire(intent.model_id.as_str(), &job.client_token, cap)
        .await?
    {
        // Wait without failing the message: join the queue of waiting intents; a freed
        // slot wakes the longest-waiting one.
        crate::metrics::count(crate::metrics::JOBS_WAITING_FOR_SLOT, 1);
        tracing::info!(job_id = %intent.job_id, model = %intent.model_id, cap, "all job slots taken; waiting");
        if intent.waiting_for_slot_since.is_none() {
            intent.waiting_for_slot_since = Some(now);
            if let Saved::Stale(_) = save(deps, intent, expected).await? {
                return Ok(Cas::Again(created));
            }
        }
        return Ok(Cas::Done(Outcome::Waiting));
    }
    match deps.bedrock.create_job(&req).await {
        Ok(arn) => {
            created = Some(arn.clone());
            crate::metrics::count(crate::metrics::JOBS_SUBMITTED, 1);
            tracing::info!(job_id = %intent.job_id, bedrock_job_arn = %arn, job_no = job.job_no, "Bedrock job created");
            if intent.record_submission(job.job_no, arn, now).is_err() {
                return Ok(Cas::Again(created));
            }
        }
        Err(e) if e.kind == ErrorKind::Validation => {
            super::slots::release_and_wake(deps, &intent.model_id, &job.client_token).await?;
            tracing::error!(job_id = %intent.job_id, error = %e, "Bedrock refused the job");
            if intent
                .fail(
                    format!("Bedrock refused job {}: {}", job.job_no, e.message),
                    now,
                )
                .is_err()
            {
                return Ok(Cas::Again(created));
            }
        }
        // Throttling and ServiceQuotaExceeded mean "later", never "failed".
        Err(e) => {
            if e.is_retryable() {
                crate::metrics::count(crate::metrics::JOBS_WAITING_FOR_SLOT, 1);
            }
            return Err(e.into());
        }
    }
    match save(deps, intent, expected).await? {
        Saved::Written(i) if i.status == IntentStatus::ManifestReady => Ok(Cas::Again(None)),
        Saved::Written(i) => {
            crate::metrics::stage_time(i.status, since, now);
            Ok(Cas::Done(Outcome::Advanced(i.status)))
        }
        Saved::Stale(_) => Ok(Cas::Again(created)),
    }
}

/// The CreateModelInvocationJob request for one planned job.
fn create_request(deps: &Deps, intent: &BatchIntent, job: &BatchJob) -> CreateJobRequest {
    CreateJobRequest {
        job_name: job.job_name.clone(),
        client_request_token: job.client_token.clone(),
        role_arn: deps.settings.bedrock_role_arn.clone(),
        model_id: intent.model_id.clone(),
        input: job.input.clone(),
        output: job.output.clone(),
        timeout_hours: deps.settings.job_timeout_hours,
        tags: vec![
            ("intentId".into(), intent.intent_id.to_string()),
            ("jobId".into(), intent.job_id.to_string()),
            // The stack's functions may get, stop and tag only jobs carrying this tag
            // (IAM `aws:ResourceTag/batch-orchestrator-stack` = the manifests bucket).
            (STACK_TAG.into(), deps.settings.manifests_bucket.to_string()),
        ],
    }
}
