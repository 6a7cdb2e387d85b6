//! Submitter: create one Bedrock job per planned job with a deterministic name and
//! clientRequestToken, and record each ARN with a conditional write.
//!
//! Replay: Bedrock answers a repeated token with the job it already made, so a replay (or a
//! crash between create and record) never starts a second job; a job whose ARN is recorded is
//! not created again, and once the intent is SUBMITTED a replay writes nothing.

use crate::app::outbox::{save, take_over, Saved};
use crate::app::{cas_loop, lost_races, Cas, Deps, Outcome, StageError};
use crate::domain::bedrock::CreateJobRequest;
use crate::domain::ids::{BedrockJobArn, IntentId};
use crate::domain::intent::{BatchIntent, BatchJob, CreateBackoff};
use crate::domain::status::IntentStatus;
use crate::ports::{ErrorKind, PortError};

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
    let Some(intent) = deps.store.get(intent_id).await? else {
        return Ok(Cas::Done(Outcome::Unknown(format!(
            "no intent {intent_id}"
        ))));
    };
    if intent.status == IntentStatus::Cancelled || intent.cancel_requested_at.is_some() {
        // The owner cancelled while this call was creating a job: stop it, or it would
        // run (and bill) for an intent nobody wants.
        if let Some(arn) = created.take() {
            tracing::warn!(bedrock_job_arn = %arn, "cancelled during submission; stopping the job just created");
            crate::app::stop::stop_job(deps, &arn).await?;
        }
        if intent.status != IntentStatus::ManifestReady && intent.has_unsubmitted_job() {
            return drop_unsubmitted(deps, intent).await;
        }
    }
    let open = intent.status == IntentStatus::ManifestReady
        || (!intent.status.is_terminal() && intent.has_unsubmitted_job());
    if !open {
        take_over(deps, &intent).await?;
        return Ok(Cas::Done(Outcome::AlreadyDone));
    }
    // Batch jobs first (they take slots and queue); then any on-demand job, run here.
    let on_demand_job = intent.next_unsubmitted(true).cloned();
    let Some(job) = intent
        .next_unsubmitted(false)
        .cloned()
        .or(on_demand_job.clone())
    else {
        // Every ARN is recorded but the status did not move: cannot happen through
        // `record_submission`; treat as done rather than loop.
        return Ok(Cas::Done(Outcome::AlreadyDone));
    };
    if job.on_demand {
        return run_on_demand(deps, intent, &job).await;
    }
    // A batch job that must wait does not hold up an on-demand one.
    if !intent.may_create_at(deps.clock.now()) {
        if let Some(od) = on_demand_job {
            return run_on_demand(deps, intent, &od).await;
        }
        // Woken before its "not now" wait ran out: the reconciler wakes it again later.
        return Ok(Cas::Done(Outcome::Waiting));
    }
    // A slot first: never more submitted + in-progress jobs per model than the quota. The
    // slot's holder is the job's client token, so a retry finds the slot it already took.
    if !crate::app::slots::take(deps, &intent.model_id, &job.client_token).await? {
        if let Some(od) = on_demand_job {
            return run_on_demand(deps, intent, &od).await;
        }
        crate::metrics::count(crate::metrics::JOBS_WAITING_FOR_SLOT, 1);
        tracing::info!(job_id = %intent.job_id, model = %intent.model_id, "all job slots taken; waiting");
        return wait(deps, intent, false, created).await;
    }
    let req = create_request(deps, &intent, &job);
    match deps.bedrock.create_job(&req).await {
        Ok(arn) => {
            crate::metrics::count(crate::metrics::JOBS_SUBMITTED, 1);
            tracing::info!(job_id = %intent.job_id, bedrock_job_arn = %arn, job_no = job.job_no, "Bedrock job created");
            record_created(deps, intent, &job, arn).await
        }
        Err(e) => create_refused(deps, intent, &job, &req, e, created).await,
    }
}

/// What a refused create leads to (see [`CreateRefusal`]).
async fn create_refused(
    deps: &Deps,
    intent: BatchIntent,
    job: &BatchJob,
    req: &CreateJobRequest,
    e: PortError,
    created: Option<BedrockJobArn>,
) -> Result<Cas<Outcome, Option<BedrockJobArn>>, StageError> {
    match CreateRefusal::of(&e) {
        CreateRefusal::NotNow => {
            // Bedrock's own count is full (other applications share the account's quota) or
            // it throttles: free our slot and wait like an intent with no free slot, backing
            // off, without spending the message's receive count.
            crate::app::slots::release(deps, &intent.model_id, &job.client_token).await?;
            crate::metrics::count(crate::metrics::JOBS_WAITING_FOR_SLOT, 1);
            tracing::info!(job_id = %intent.job_id, model = %intent.model_id, error = %e, "Bedrock said not now; waiting");
            wait(deps, intent, true, created).await
        }
        CreateRefusal::Never(reason) => {
            crate::app::slots::release_and_wake(deps, &intent.model_id, &job.client_token).await?;
            crate::metrics::refused(reason.metric());
            tracing::error!(job_id = %intent.job_id, model = %intent.model_id, error = %e, "Bedrock refused the job for good");
            refuse(deps, intent, job, reason, created).await
        }
        CreateRefusal::Adopt => match adopt(deps, req).await? {
            Some(arn) => record_created(deps, intent, job, arn).await,
            None => Err(e.into()),
        },
        CreateRefusal::Later => Err(e.into()),
    }
}

/// Announces `intent` again now (a version-conditional write, re-read on a lost race).
async fn reannounce_now(deps: &Deps, intent: BatchIntent) -> Result<(), StageError> {
    cas_loop(intent, move |mut next: BatchIntent| async move {
        let expected = next.version;
        if next.reannounce(deps.clock.now()).is_err() {
            return Ok(Cas::Done(())); // ended meanwhile: nothing to resume
        }
        match save(deps, next, expected).await? {
            Saved::Written(_) => Ok(Cas::Done(())),
            Saved::Stale(fresh) => Ok(Cas::Again(*fresh)),
        }
    })
    .await?
    .ok_or_else(|| lost_races("re-announce"))
}

/// Stages the intent's announcement in its outbox for when the on-demand job's lease runs
/// out (`app::lease::TTL`): the outbox sweep publishes it then, and a call that finds the job
/// done by its holder does nothing. Written without publishing (a version-conditional write).
async fn reannounce_after_lease(
    deps: &Deps,
    mut intent: BatchIntent,
) -> Result<Cas<Outcome, Option<BedrockJobArn>>, StageError> {
    let (now, expected) = (deps.clock.now(), intent.version);
    intent.reannounce(now)?;
    let grace = chrono::Duration::seconds(deps.settings.outbox_grace_secs);
    if let Some(outbox) = intent.outbox.as_mut() {
        outbox.staged_at = now + crate::app::lease::TTL - grace;
    }
    intent.version = expected + 1;
    match deps.store.update(&intent, expected).await? {
        crate::ports::Updated::Written => Ok(Cas::Done(Outcome::Waiting)),
        crate::ports::Updated::Stale(_) => Ok(Cas::Again(None)),
    }
}

/// The job a conflicting create (or one answered without an ARN) made earlier, found by its
/// deterministic name; None when Bedrock lists none yet (the message is retried).
async fn adopt(deps: &Deps, req: &CreateJobRequest) -> Result<Option<BedrockJobArn>, StageError> {
    let found = deps.bedrock.find_job(&req.job_name).await?;
    if let Some(job) = &found {
        crate::metrics::count(crate::metrics::JOBS_SUBMITTED, 1);
        tracing::info!(bedrock_job_arn = %job.arn, job_name = %req.job_name, "create conflicted; adopted the job of that name");
    }
    Ok(found.map(|j| j.arn))
}

/// Runs an on-demand job's records (see `on_demand_job`) and records its end; on to the next
/// job, if the intent has one.
async fn run_on_demand(
    deps: &Deps,
    intent: BatchIntent,
    job: &BatchJob,
) -> Result<Cas<Outcome, Option<BedrockJobArn>>, StageError> {
    use crate::app::on_demand_job::Ran;
    let summary = match crate::app::on_demand_job::run_job(deps, &intent, job).await? {
        Ran::Done(summary) => summary,
        // Another runner holds it: this message is answered (no receive count spent), and the
        // intent is announced again once the lease would have run out, should its holder die.
        Ran::Held => return reannounce_after_lease(deps, intent).await,
        Ran::Unfinished => {
            // Announced again, the next call resumes after the stored records; never run again
            // in this call (its time is spent), even when the write races another.
            reannounce_now(deps, intent).await?;
            return Ok(Cas::Done(Outcome::Waiting));
        }
    };
    let (now, expected, was_terminal) = (
        deps.clock.now(),
        intent.version,
        intent.status.is_terminal(),
    );
    let mut next = intent;
    if next.record_on_demand_job(job.job_no, summary, now).is_err() {
        return Ok(Cas::Done(Outcome::AlreadyDone));
    }
    if next.is_pool_job() && next.status.is_terminal() && !was_terminal {
        // Members end first, as when a shared batch job ends.
        crate::app::pool::finish_members(deps, &next).await?;
    }
    match save(deps, next, expected).await? {
        Saved::Written(i) if i.has_unsubmitted_job() => Ok(Cas::Next(None)),
        Saved::Written(i) => Ok(Cas::Done(Outcome::Advanced(i.status))),
        Saved::Stale(_) => Ok(Cas::Again(None)),
    }
}

/// Records a created job's ARN; on to the next job, if the intent has one.
async fn record_created(
    deps: &Deps,
    mut intent: BatchIntent,
    job: &BatchJob,
    arn: BedrockJobArn,
) -> Result<Cas<Outcome, Option<BedrockJobArn>>, StageError> {
    let (now, expected, since) = (deps.clock.now(), intent.version, intent.updated_at);
    if intent
        .record_submission(job.job_no, arn.clone(), now)
        .is_err()
    {
        return Ok(Cas::Again(Some(arn)));
    }
    match save(deps, intent, expected).await? {
        Saved::Written(i) if i.has_unsubmitted_job() => Ok(Cas::Next(None)),
        Saved::Written(i) => {
            crate::metrics::stage_time(i.status, since, now);
            Ok(Cas::Done(Outcome::Advanced(i.status)))
        }
        Saved::Stale(current) if moved_on_demand(&current, job.job_no) => {
            // Its deadline's cut-off moved the job to on-demand while it was being created:
            // stop what was created, or it would run and bill for records run elsewhere (the
            // cut-off pass freed its slot).
            tracing::warn!(bedrock_job_arn = %arn, job_no = job.job_no, "job moved to on-demand while created; stopping it");
            crate::app::stop::stop_job(deps, &arn).await?;
            Ok(Cas::Again(None))
        }
        Saved::Stale(_) => Ok(Cas::Again(Some(arn))),
    }
}

/// True when job `job_no` of `intent` now runs on-demand (moved at its cut-off).
fn moved_on_demand(intent: &BatchIntent, job_no: u32) -> bool {
    intent
        .jobs
        .iter()
        .any(|j| j.job_no == job_no && j.on_demand && j.arn.is_none())
}

/// Leaves the intent waiting for a slot (woken when one frees, or by the reconciler); after a
/// "not now" from Bedrock (`backoff`), not before its backoff has run out. `state` goes on to
/// the next attempt if the write loses its race.
async fn wait<S>(
    deps: &Deps,
    mut intent: BatchIntent,
    backoff: bool,
    state: S,
) -> Result<Cas<Outcome, S>, StageError> {
    let now = deps.clock.now();
    let expected = intent.version;
    let mut changed = intent.waiting_for_slot_since.is_none();
    intent.waiting_for_slot_since.get_or_insert(now);
    if backoff {
        let refusals = intent.create_backoff.map_or(0, |b| b.refusals) + 1;
        intent.create_backoff = Some(CreateBackoff {
            refusals,
            not_before: now + deps.settings.create_backoff(refusals),
        });
        changed = true;
    }
    if changed {
        if let Saved::Stale(_) = save(deps, intent, expected).await? {
            return Ok(Cas::Again(state));
        }
    }
    Ok(Cas::Done(Outcome::Waiting))
}

/// A create Bedrock refused for good: the intent fails (or, for a re-run job of a running
/// intent, that job does), with a message naming what to fix.
async fn refuse<S>(
    deps: &Deps,
    mut intent: BatchIntent,
    job: &BatchJob,
    reason: Never,
    state: S,
) -> Result<Cas<Outcome, S>, StageError> {
    let now = deps.clock.now();
    let expected = intent.version;
    let message = reason.message(&intent.model_id);
    // A re-run job fails alone (its intent keeps what its other jobs did); a planned job fails
    // its intent.
    let refused = if job.rerun_of.is_some() {
        intent.fail_unsubmitted_job(job.job_no, message, now)
    } else {
        intent.fail(message, now)
    };
    if refused.is_err() {
        return Ok(Cas::Again(state));
    }
    match save(deps, intent, expected).await? {
        Saved::Written(i) if i.status.is_terminal() => {
            stop_created(deps, &i).await;
            Ok(Cas::Done(Outcome::Advanced(i.status)))
        }
        // On to the intent's next job waiting to be created.
        Saved::Written(i) if i.has_unsubmitted_job() => Ok(Cas::Next(state)),
        Saved::Written(i) => Ok(Cas::Done(Outcome::Advanced(i.status))),
        Saved::Stale(_) => Ok(Cas::Again(state)),
    }
}

/// An intent that failed while some of its jobs run: stop them (nobody will read their
/// outputs) and free their slots, best effort (the reconciler's pass no longer sees a
/// terminal intent, so this is where they are freed).
async fn stop_created(deps: &Deps, intent: &BatchIntent) {
    let running = intent
        .jobs
        .iter()
        .filter(|j| !j.status.is_some_and(|s| s.is_terminal()));
    for job in running {
        if let Some(arn) = &job.arn {
            if let Err(e) = crate::app::stop::stop_job(deps, arn).await {
                tracing::warn!(bedrock_job_arn = %arn, error = %e, "could not stop a job of a failed intent");
            }
        }
        if let Err(e) =
            crate::app::slots::release_and_wake(deps, &intent.model_id, &job.client_token).await
        {
            tracing::warn!(error = %e, "could not free a slot of a failed intent");
        }
    }
}

/// A cancel overtook re-run jobs not created yet: they end Stopped, never created.
async fn drop_unsubmitted(
    deps: &Deps,
    mut intent: BatchIntent,
) -> Result<Cas<Outcome, Option<BedrockJobArn>>, StageError> {
    let expected = intent.version;
    let dropped: Vec<String> = intent
        .jobs
        .iter()
        .filter(|j| j.arn.is_none() && j.status.is_none())
        .map(|j| j.client_token.clone())
        .collect();
    intent.drop_unsubmitted_jobs(deps.clock.now())?;
    match save(deps, intent, expected).await? {
        Saved::Written(i) => {
            // A submitter that took a slot for one of them and died left it taken.
            for holder in &dropped {
                crate::app::slots::release_and_wake(deps, &i.model_id, holder).await?;
            }
            Ok(Cas::Done(Outcome::Advanced(i.status)))
        }
        Saved::Stale(_) => Ok(Cas::Again(None)),
    }
}

/// How a failed CreateModelInvocationJob is handled. The errors botocore's `bedrock` service
/// model (2023-04-20) lists for it: ResourceNotFoundException, AccessDeniedException,
/// ValidationException, ConflictException, InternalServerException,
/// ServiceQuotaExceededException, ThrottlingException.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateRefusal {
    /// ServiceQuotaExceededException ("Resubmit your request later", the service model) and
    /// ThrottlingException: wait, with backoff, holding no slot.
    NotNow,
    /// AccessDeniedException, ResourceNotFoundException, ValidationException: a setting or a
    /// permission is wrong, and no retry heals it.
    Never(Never),
    /// ConflictException, or a create answered without an ARN: the job may exist (a retried
    /// create racing its first); it is looked up by its deterministic name and adopted,
    /// never dead-lettered for that.
    Adopt,
    /// Anything else (InternalServerException, a timeout): retried through the queue with
    /// backoff, then the DLQ.
    Later,
}

/// Why Bedrock refused a job for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Never {
    AccessDenied,
    NotFound,
    Validation,
}

impl CreateRefusal {
    pub fn of(e: &PortError) -> Self {
        match e.kind {
            ErrorKind::QuotaExceeded | ErrorKind::Throttled => Self::NotNow,
            ErrorKind::Forbidden => Self::Never(Never::AccessDenied),
            ErrorKind::NotFound => Self::Never(Never::NotFound),
            ErrorKind::Validation => Self::Never(Never::Validation),
            ErrorKind::Conflict => Self::Adopt,
            _ => Self::Later,
        }
    }
}

impl Never {
    fn metric(self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::NotFound => "not_found",
            Self::Validation => "validation",
        }
    }

    /// What the client is told: a fixed text naming the cause and what to fix (Bedrock's own
    /// message, which can name the account, role and buckets, goes to the log only).
    pub fn message(self, model: &crate::domain::ids::ModelId) -> String {
        match self {
            Self::AccessDenied => format!(
                "Bedrock refused to create the batch job (AccessDeniedException): the submitter's role needs bedrock:CreateModelInvocationJob and iam:PassRole on the service role in BEDROCK_ROLE_ARN, and access to model {model} must be enabled in this Region"
            ),
            Self::NotFound => format!(
                "Bedrock refused to create the batch job (ResourceNotFoundException): model {model} (ALLOWED_MODEL_IDS) or the service role in BEDROCK_ROLE_ARN does not exist in this Region"
            ),
            Self::Validation => format!(
                "Bedrock refused the batch job (ValidationException): check that model {model} (ALLOWED_MODEL_IDS) runs batch inference in this Region, and BEDROCK_ROLE_ARN and JOB_TIMEOUT_HOURS"
            ),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_bedrock_refuses_a_create_should_tell_not_now_from_never_from_later() {
        let of = |kind| CreateRefusal::of(&PortError::new(kind, "x"));
        assert_eq!(of(ErrorKind::QuotaExceeded), CreateRefusal::NotNow);
        assert_eq!(of(ErrorKind::Throttled), CreateRefusal::NotNow);
        assert_eq!(
            of(ErrorKind::Forbidden),
            CreateRefusal::Never(Never::AccessDenied)
        );
        assert_eq!(
            of(ErrorKind::NotFound),
            CreateRefusal::Never(Never::NotFound)
        );
        assert_eq!(
            of(ErrorKind::Validation),
            CreateRefusal::Never(Never::Validation)
        );
        assert_eq!(of(ErrorKind::Conflict), CreateRefusal::Adopt);
        for later in [ErrorKind::Transient, ErrorKind::Unexpected] {
            assert_eq!(of(later), CreateRefusal::Later, "{later:?}");
        }
        let model = crate::domain::ids::ModelId::parse("amazon.nova-lite-v1:0").expect("model");
        let why = Never::AccessDenied.message(&model);
        assert!(
            why.contains("iam:PassRole") && why.contains("amazon.nova-lite-v1:0"),
            "{why}"
        );
        assert!(Never::NotFound
            .message(&model)
            .contains("ALLOWED_MODEL_IDS"));
    }
}
