//! The reconciler: Bedrock's events are best effort, so a scheduled pass asks Bedrock about
//! every job of every open intent (SUBMITTED or IN_PROGRESS) and applies what it finds through
//! the same forward-only path as the status watcher, so an event and a poll that race agree.
//! It also re-announces intents stuck before submission (REQUESTED or MANIFEST_READY for
//! longer than `stuck_after_secs`, their message lost or parked in a DLQ) and publishes owed
//! events whose writer died (the outbox sweep). Last, it seals pools (see `pool.rs`): a
//! schedule with one reconciler at a time is the pools' single sealer. And it keeps a point of
//! the night and, once a night has ended, its summary (see `nights.rs`).
//!
//! Replay: a status the intent already has is refused by the state machine, so a second pass
//! writes nothing; a re-announcement only repeats an idempotent stage.

use crate::app::outbox::sweep_outboxes;
use crate::app::outbox::{save, Saved};
use crate::app::watch::apply_job_event;
use crate::app::{Deps, Outcome, StageError};
use crate::domain::bedrock::JobEvent;
use crate::domain::status::IntentStatus;
use chrono::Duration;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    pub jobs_checked: usize,
    pub applied: usize,
    pub reannounced: usize,
    pub failed: usize,
    pub swept: usize,
    pub pools: crate::app::pool::PoolReport,
    pub deadline: crate::app::deadline::CutoffReport,
    pub nights: crate::app::nights::NightsReport,
}

/// Pooled intents read per pool round (a night of 100,000 users pools most of them; a round
/// that sees the whole pool may seal its part-full rest on an idle slot).
const POOL_WINDOW: usize = 10_000;
/// Pool rounds per reconciler pass, at most.
const POOL_ROUNDS: usize = 50;
/// Wall-clock time a pass spends starting new pool rounds (the function has 10 minutes).
const POOL_BUDGET: std::time::Duration = std::time::Duration::from_secs(240);

pub async fn reconcile(deps: &Deps, limit: usize) -> Result<ReconcileReport, StageError> {
    let mut report = ReconcileReport::default();
    let now = deps.clock.now();
    poll_open_jobs(deps, now, limit, &mut report).await?;
    // After the poll (progress is fresh); a failure must not keep the rest from running.
    match crate::app::deadline::enforce(deps, limit).await {
        Ok(d) => {
            report.failed += d.failed;
            report.deadline = d;
        }
        Err(e) => {
            report.failed += 1;
            tracing::warn!(error = %e, "deadline cut-off pass failed; the next pass tries again");
        }
    }
    reannounce_stuck(deps, now, limit, &mut report).await?;
    // Like the pool pass below: a failure here must not keep the sweep from running.
    match wake_waiting(deps, now).await {
        Ok(woken) => report.reannounced += woken,
        Err(e) => {
            report.failed += 1;
            tracing::warn!(error = %e, "waking intents waiting for a slot failed; the next pass tries again");
        }
    }
    pool_rounds(deps, &mut report).await;
    report.swept = sweep_outboxes(deps, limit).await?;
    // Last, so the point sees what this pass did; a failure leaves one point out, no more.
    match crate::app::nights::record_pass(deps).await {
        Ok(n) => report.nights = n,
        Err(e) => {
            tracing::warn!(error = %e, "keeping the night's point failed; the next pass tries again")
        }
    }
    Ok(report)
}

/// Asks Bedrock about every open job and applies what it says through the watcher's path.
async fn poll_open_jobs(
    deps: &Deps,
    now: chrono::DateTime<chrono::Utc>,
    limit: usize,
    report: &mut ReconcileReport,
) -> Result<(), StageError> {
    // MANIFEST_READY too: an intent whose first jobs run while its last ones wait for a slot.
    for status in [
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ] {
        // Index read (byStatusUpdated, may lag). Safe: what is applied comes from Bedrock
        // (GetModelInvocationJob) through the watcher's forward-only, version-conditional
        // path, so a stale or missing entry costs at most one pass.
        for intent in deps.store.list_by_status(status, now, limit).await? {
            let open = intent
                .jobs
                .iter()
                .filter(|j| !j.status.is_some_and(|s| s.is_terminal()));
            for arn in open.filter_map(|j| j.arn.as_ref()) {
                report.jobs_checked += 1;
                let outcome = match deps.bedrock.get_job(arn).await {
                    Ok(info) => {
                        let (progress, expires) = (info.progress, info.expires_at);
                        let terminal = info.status.is_terminal();
                        let applied = apply_job_event(deps, &JobEvent::polled(info)).await;
                        if !terminal {
                            record_progress(deps, arn, progress, expires).await;
                        }
                        applied
                    }
                    Err(e) => Err(e.into()),
                };
                match outcome {
                    Ok(Outcome::Advanced(to)) => {
                        report.applied += 1;
                        tracing::info!(intent_id = %intent.intent_id, bedrock_job_arn = %arn, status = %to, "reconciler applied a missed status");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // One job's trouble must not stop the pass; the next pass tries again.
                        report.failed += 1;
                        tracing::warn!(intent_id = %intent.intent_id, bedrock_job_arn = %arn, error = %e, "reconciler could not apply a status");
                    }
                }
            }
        }
    }
    Ok(())
}

/// Keeps what Bedrock says of a running job's progress (record counts, expiry) on the job, for
/// the job view. Best effort: a lost race or a store error only leaves the last progress shown
/// until the next pass.
async fn record_progress(
    deps: &Deps,
    arn: &crate::domain::ids::BedrockJobArn,
    progress: Option<crate::domain::bedrock::JobProgress>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    let Ok(Some(intent)) = deps.store.get_by_bedrock_arn(arn).await else {
        return;
    };
    let expected = intent.version;
    let mut next = intent;
    if next.record_progress(arn, progress, expires_at) {
        if let Err(e) = save(deps, next, expected).await {
            tracing::warn!(bedrock_job_arn = %arn, error = %e, "could not record a job's progress");
        }
    }
}

/// Re-announces intents stuck before submission (their event was lost).
async fn reannounce_stuck(
    deps: &Deps,
    now: chrono::DateTime<chrono::Utc>,
    limit: usize,
    report: &mut ReconcileReport,
) -> Result<(), StageError> {
    let stuck_before = now - Duration::seconds(deps.settings.stuck_after_secs);
    // Running intents too: a re-run job whose announcement was lost.
    for status in [
        IntentStatus::Requested,
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ] {
        // Index read (may lag). Safe: the store re-reads each intent (its current status and
        // outbox decide), reannounce is version-conditional and repeats an idempotent stage.
        for intent in deps
            .store
            .list_by_status(status, stuck_before, limit)
            .await?
        {
            if intent.outbox.is_some() || intent.waiting_for_slot_since.is_some() {
                continue; // the sweep owns it; a freed slot or the wake below wakes it
            }
            let expected = intent.version;
            let mut next = intent;
            if let Ok(kind) = next.reannounce(now) {
                if let Saved::Written(i) = save(deps, next, expected).await? {
                    report.reannounced += 1;
                    tracing::warn!(intent_id = %i.intent_id, event = %kind, "re-announced an intent stuck before submission");
                }
            }
        }
    }
    Ok(())
}

/// Pools: a busy night pools tens of thousands of intents, so a pass reads them in large
/// windows and goes round again while it is still sealing, within a time budget. A pool pass
/// that fails must not keep the outbox sweep from running.
async fn pool_rounds(deps: &Deps, report: &mut ReconcileReport) {
    let started = std::time::Instant::now();
    for round in 0..POOL_ROUNDS {
        match crate::app::pool::pool_pass(deps, POOL_WINDOW, round == 0).await {
            Ok(p) => {
                let progressed =
                    p.sealed_by_size + p.sealed_by_deadline + p.sealed_idle + p.on_demand_intents;
                report.pools.add(&p);
                // A member whose on-demand run left work (refused past its call's time) is a
                // failure of this pass: the next one resumes it.
                report.failed += p.failed;
                if progressed == 0 || started.elapsed() > POOL_BUDGET {
                    break;
                }
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(error = %e, "pool pass failed; the next pass tries again");
                break;
            }
        }
    }
}

/// Intents waiting for a job slot while their model has a free one: the wake of the job that
/// freed it read a lagging index (or died). Wakes as many as there are free slots.
async fn wake_waiting(
    deps: &Deps,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StageError> {
    // Index read (may lag). Safe: each intent is re-read; one not shown yet waits a pass more.
    let models: std::collections::BTreeSet<_> = crate::app::slots::waiting_intents(deps, now, None)
        .await?
        .into_iter()
        .map(|i| i.model_id)
        .collect();
    let mut woken = 0;
    for model in &models {
        woken += crate::app::slots::wake_while_free(deps, model).await?;
    }
    Ok(woken)
}
