//! Results by the deadline (see `domain::deadline` for the rules): the pace a model's jobs
//! have shown, the outlook an intent is planned on, and the reconciler's cut-off pass, which
//! stops a job that would end too late (its answered records are ingested and the rest
//! redriven on-demand when it ends, `watch`) or moves a job still waiting for a slot to
//! on-demand.
//!
//! Replay: the stop is marked on the job (a version-conditional write) before Bedrock is asked,
//! and a marked job that is still open is asked again on the next pass; Bedrock's answer for a
//! job already ending is taken as done. A moved job is refused a second move.

use crate::app::outbox::{save, Saved};
use crate::app::{Deps, StageError};
use crate::domain::deadline::{cutoff, learned_pace, Outlook, Pace, Split};
use crate::domain::ids::{BedrockJobArn, ModelId};
use crate::domain::intent::{BatchIntent, BatchJob};
use crate::domain::status::IntentStatus;
use chrono::{DateTime, Utc};

/// The pace `model`'s jobs have shown lately, or the default until they have. A history that
/// cannot be read leaves the default: an estimate must not fail a request.
pub async fn pace(deps: &Deps, model: &ModelId) -> Pace {
    let default = deps.settings.default_pace();
    match deps.history.recent(model.as_str()).await {
        Ok(samples) => learned_pace(&samples, default),
        Err(e) => {
            tracing::warn!(model = %model, error = %e, "job history unreadable; planning on the default pace");
            default
        }
    }
}

/// Seconds before a slot of `model` frees for a new job: none while one is free, else the
/// waves of waiting intents ahead, each a typical job (half the records a job may hold).
async fn wait_secs(deps: &Deps, model: &ModelId, pace: &Pace) -> Result<f64, StageError> {
    let q = deps.settings.quotas_for(model);
    let (taken, cap) = crate::app::slots::held(deps, model).await?;
    let cap = cap.max(1);
    if taken < cap {
        return Ok(0.0);
    }
    let now = deps.clock.now();
    let waiting = crate::app::slots::waiting_intents(deps, now, Some(model))
        .await?
        .len() as u32;
    let waves = waiting / cap + 1;
    Ok(f64::from(waves) * pace.job_secs(q.max_records_per_job / 2))
}

/// What planning `records` of `model` by `deadline` looks like now.
pub async fn outlook(
    deps: &Deps,
    model: &ModelId,
    deadline: Option<DateTime<Utc>>,
) -> Result<Outlook, StageError> {
    let pace = pace(deps, model).await;
    let s = &deps.settings;
    // The slots are read only for a deadline: an estimate without one is a job's own length
    // (a request costs one history read, not a read of every slot).
    let wait_secs = match deadline {
        Some(_) => wait_secs(deps, model, &pace).await?,
        None => 0.0,
    };
    Ok(Outlook {
        now: deps.clock.now(),
        deadline,
        wait_secs,
        pace,
        rate: s.paced_rate(model),
        tokens_per_record: s.quota_tokens_per_record(model),
        min_records: s.quotas_for(model).min_records_per_job,
        margin_secs: s.deadline_margin_secs as f64,
    })
}

/// The plan for `records` of `intent`.
pub async fn plan(deps: &Deps, intent: &BatchIntent, records: u64) -> Result<Split, StageError> {
    let o = outlook(deps, &intent.model_id, intent.deadline).await?;
    Ok(crate::domain::deadline::split(records, &o))
}

/// True when a member of a waiting pool must be sealed now to be answered by its deadline: a
/// batch job of the group's `records` started now ends only just in time.
pub(super) async fn pool_due(
    deps: &Deps,
    model: &ModelId,
    group: &[BatchIntent],
    records: u64,
) -> bool {
    let Some(deadline) = group.iter().filter_map(|m| m.deadline).min() else {
        return false;
    };
    let needs =
        pace(deps, model).await.job_secs(records) + deps.settings.deadline_margin_secs as f64;
    crate::domain::deadline::started_now_ends_after(deps.clock.now(), needs, deadline)
}

/// Keeps the durations of a job that just ended (best effort: see `ports::JobHistory`).
pub async fn record_sample(deps: &Deps, intent: &BatchIntent, arn: &BedrockJobArn) {
    let Some(sample) = intent.job_sample(arn, deps.clock.now()) else {
        return;
    };
    if let Err(e) = deps.history.record(intent.model_id.as_str(), &sample).await {
        tracing::warn!(bedrock_job_arn = %arn, error = %e, "could not keep a job's durations");
    }
}

/// True when the unanswered records of `job`, which just ended, go on-demand whatever their
/// number: it was stopped at its deadline's cut-off, or a batch re-run would end too late.
pub(super) async fn redrive_now(deps: &Deps, intent: &BatchIntent, job: &BatchJob) -> bool {
    if job.deadline_stop_at.is_some() {
        return true;
    }
    let Some(deadline) = intent.deadline else {
        return false;
    };
    let pace = pace(deps, &intent.model_id).await;
    let needs = pace.job_secs(job.records()) + deps.settings.deadline_margin_secs as f64;
    crate::domain::deadline::started_now_ends_after(deps.clock.now(), needs, deadline)
}

/// What one cut-off pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutoffReport {
    pub at_risk: usize,
    pub stopped: usize,
    pub moved_on_demand: usize,
    pub failed: usize,
}

/// The cut-off pass: every open intent with a deadline, each of its open jobs past its
/// cut-off stopped (or, never created, moved to on-demand).
pub async fn enforce(deps: &Deps, limit: usize) -> Result<CutoffReport, StageError> {
    let now = deps.clock.now();
    let mut report = CutoffReport::default();
    for status in [
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ] {
        // Index read (may lag). Safe: each intent is re-read before anything is written.
        for intent in deps.store.list_by_status(status, now, limit).await? {
            if intent.deadline.is_none() {
                continue;
            }
            if intent.at_risk(now) {
                report.at_risk += 1;
            }
            for job in late_jobs(deps, &intent, now) {
                // One job's trouble (throttling, a lost race) must not keep the rest waiting.
                let done = match &job.arn {
                    Some(arn) => stop_late_job(deps, &intent, arn).await.map(|()| {
                        report.stopped += 1;
                    }),
                    None => move_job(deps, &intent, &job).await.map(|moved| {
                        report.moved_on_demand += usize::from(moved);
                    }),
                };
                if let Err(e) = done {
                    report.failed += 1;
                    tracing::warn!(intent_id = %intent.intent_id, job_no = job.job_no, error = %e, "cut-off step failed; the next pass tries again");
                }
            }
        }
    }
    crate::metrics::gauge(crate::metrics::INTENTS_AT_RISK, report.at_risk as f64);
    Ok(report)
}

/// The open batch jobs of `intent` past their cut-off. A marked job is asked again while it
/// stays open (a crash may have come between the mark and the stop).
fn late_jobs(deps: &Deps, intent: &BatchIntent, now: DateTime<Utc>) -> Vec<BatchJob> {
    intent
        .jobs
        .iter()
        .filter(|j| j.deadline_stop_at.is_none() || j.arn.is_some())
        .filter(|j| job_cutoff(deps, intent, j).is_some_and(|at| now >= at))
        .cloned()
        .collect()
}

/// When an open batch job of `intent` must be stopped: the time on-demand needs for what it
/// has not answered yet, and the margin, before the deadline. None for a job that ended, runs
/// on-demand, or belongs to an intent without a deadline.
fn job_cutoff(deps: &Deps, intent: &BatchIntent, job: &BatchJob) -> Option<DateTime<Utc>> {
    let deadline = intent.deadline?;
    if job.on_demand || job.status.is_some_and(|st| st.is_terminal()) {
        return None;
    }
    let s = &deps.settings;
    let answered = job.progress.map_or(0, |p| p.processed_record_count);
    let unanswered = job.records().saturating_sub(job.pad_records + answered);
    Some(cutoff(
        deadline,
        unanswered,
        &s.paced_rate(&intent.model_id),
        s.quota_tokens_per_record(&intent.model_id),
        s.deadline_margin_secs as f64,
    ))
}

/// The earliest cut-off still ahead among open intents' jobs (the embedded runner waits for
/// it; deployed, the reconciler's schedule comes round).
pub async fn next_cutoff(deps: &Deps) -> Result<Option<DateTime<Utc>>, StageError> {
    let now = deps.clock.now();
    let mut next: Option<DateTime<Utc>> = None;
    for status in [
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ] {
        for intent in deps.store.list_by_status(status, now, 1_000).await? {
            let ahead = intent
                .jobs
                .iter()
                .filter(|j| j.deadline_stop_at.is_none())
                .filter_map(|j| job_cutoff(deps, &intent, j))
                .filter(|at| *at > now);
            next = next.into_iter().chain(ahead).min();
        }
    }
    Ok(next)
}

/// Marks the job stopped at its cut-off (once), then asks Bedrock to stop it. Bedrock keeps
/// what a stopped job wrote; its end is ingested like any job's, and its unanswered records
/// are redriven on-demand (`watch`).
async fn stop_late_job(
    deps: &Deps,
    intent: &BatchIntent,
    arn: &BedrockJobArn,
) -> Result<(), StageError> {
    let now = deps.clock.now();
    let mut next = intent.clone();
    if next.mark_deadline_stop(arn, now).is_ok() {
        match save(deps, next, intent.version).await? {
            Saved::Written(_) => {
                tracing::warn!(intent_id = %intent.intent_id, bedrock_job_arn = %arn, deadline = ?intent.deadline, "job past its deadline's cut-off; stopping it to redrive the rest on-demand");
            }
            // Someone else wrote first: the next pass sees what they wrote.
            Saved::Stale(_) => return Ok(()),
        }
    }
    // The cancel's stop: a job already ending or ended (a late completion, a replayed stop)
    // answers ConflictException, taken as done; its event or the next poll brings the end.
    crate::app::stop::stop_job(deps, arn).await
}

/// Moves a job that never got a slot to on-demand; true when this call moved it. A slot a
/// submitter took for it meanwhile is freed (a job it creates now is stopped by the submitter,
/// which finds the job moved).
async fn move_job(deps: &Deps, intent: &BatchIntent, job: &BatchJob) -> Result<bool, StageError> {
    let mut next = intent.clone();
    if next.move_on_demand(job.job_no, deps.clock.now()).is_err() {
        return Ok(false);
    }
    let moved = matches!(save(deps, next, intent.version).await?, Saved::Written(_));
    if moved {
        crate::app::slots::release_and_wake(deps, &intent.model_id, &job.client_token).await?;
        tracing::warn!(intent_id = %intent.intent_id, job_no = job.job_no, "job still waiting for a slot at its cut-off; running it on-demand");
    }
    Ok(moved)
}
