//! What becomes of the records a job left unanswered (no output line: a PartiallyCompleted,
//! Stopped or Expired job) or answered with a retryable error, decided in one place,
//! [`decide`]: they go into a new batch job of the same intent when they reach the model's
//! minimum records per job, at the batch price; below it they are re-run on-demand
//! ([`rerun_retryable`]); and a job stopped at its deadline's cut-off (or whose re-run would end
//! past the deadline) has them redriven as an on-demand job ([`plan_redrive`]), whatever their
//! number. AWS's advice for an Expired job is to
//! "Submit a new job request" (the `Expired` status, botocore's `bedrock` service model).
//!
//! Bounded: a record is re-run while it has attempts left (`MAX_RECORD_ATTEMPTS`, the first
//! batch job included), and a re-run job is attempt `parent + 1`. A job its owner asked to stop
//! leaves no remainder. Replay: the re-run jobs are added in the same version-conditional write
//! as the parent's end, and their manifests sit at deterministic keys, so a replay before that
//! write rewrites the same objects and one after it is refused as stale.

use crate::app::job_end::records::JobRecords;
use crate::app::results as store;
use crate::app::{Deps, StageError};
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::RecordId;
use crate::domain::intent::{BatchIntent, BatchJob, MappedRecord};
use crate::domain::results::{ImageResult, ResultStatus};
use crate::domain::settings::RemainderPolicy;
use std::collections::HashMap;

/// The re-run jobs planned for a job's remainder, and the counts of the records they took
/// from it (to take out of the parent's counts, so no record counts twice).
#[derive(Debug)]
pub struct Rerun {
    pub jobs: Vec<BatchJob>,
    pub moved: ManifestSummary,
}

/// Plans (and writes the manifests of) re-run jobs for `job`'s retryable failures, when there
/// are at least the model's minimum of them with attempts left; None otherwise.
async fn plan_rerun(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    records: &JobRecords,
    results: &[ImageResult],
) -> Result<Option<Rerun>, StageError> {
    let max = deps.settings.max_record_attempts;
    let policy = deps.settings.remainder_policy;
    if intent.cancel_requested_at.is_some()
        || job.attempt >= max
        || policy == RemainderPolicy::OnDemand
    {
        return Ok(None);
    }
    let min = deps
        .settings
        .quotas_for(&intent.model_id)
        .min_records_per_job;
    let failed: HashMap<&RecordId, &ImageResult> = results
        .iter()
        .filter(|r| r.is_retryable_failure() && r.attempts < max)
        .map(|r| (&r.record_id, r))
        .collect();
    if (failed.len() as u64) < min.max(1) {
        return Ok(None);
    }
    let wanted = wanted_records(deps, intent, records, &failed).await?;
    if (wanted.len() as u64) < min.max(1) {
        return Ok(None);
    }
    let jobs = crate::app::manifest::rerun::write_rerun(deps, intent, job, &wanted, false).await?;
    crate::metrics::count(crate::metrics::JOBS_RERUN, jobs.len() as u64);
    crate::metrics::count(crate::metrics::RECORDS_RETRIED, wanted.len() as u64);
    tracing::info!(intent_id = %intent.intent_id, job_no = job.job_no, records = wanted.len(), jobs = jobs.len(), "remainder goes into a new batch job");
    Ok(Some(Rerun {
        moved: moved(&wanted, &failed),
        jobs,
    }))
}

/// The records of `records` that `failed` names, each with its (owner, image), by the id it has
/// in the job's lines; a shared job's member that left (cancelled) keeps its records canceled,
/// so they are not re-run.
async fn wanted_records(
    deps: &Deps,
    intent: &BatchIntent,
    records: &JobRecords,
    failed: &HashMap<&RecordId, &ImageResult>,
) -> Result<HashMap<String, MappedRecord>, StageError> {
    let stored = store::stored_results(deps, intent, failed.values().copied()).await?;
    Ok(records
        .iter()
        .filter(|(_, r)| failed.contains_key(&r.record_id))
        .filter(|(_, r)| {
            stored
                .get(&r.record_id)
                .is_none_or(|s| s.status != ResultStatus::Canceled)
        })
        .map(|(line_id, r)| {
            let mapped = MappedRecord {
                bedrock_record_id: Some(line_id.clone()),
                record_id: r.record_id.clone(),
                intent_id: r.owner.clone(),
                index: r.index,
                key: r.key.clone(),
            };
            (line_id.clone(), mapped)
        })
        .collect())
}

/// The counts the re-run records take out of their parent's (so none counts twice): all of
/// them, and those answered with an error (the others had no output line).
fn moved(
    wanted: &HashMap<String, MappedRecord>,
    failed: &HashMap<&RecordId, &ImageResult>,
) -> ManifestSummary {
    let answered_with_error = wanted
        .values()
        .filter(|m| {
            failed
                .get(&m.record_id)
                .is_some_and(|r| r.error_code.as_deref() != Some("no_output"))
        })
        .count() as u64;
    ManifestSummary {
        total_record_count: wanted.len() as u64,
        processed_record_count: answered_with_error,
        error_record_count: answered_with_error,
        ..ManifestSummary::default()
    }
}

/// A deadline's redrive: every record `job` left unanswered or failed retryably becomes an
/// on-demand job of the intent (the submitter runs it, a chunk at a time, resumable), whatever
/// their number; records a stopped job never answered go even on their last attempt (the
/// stop, not the record, cut them short). None when there is nothing to redrive.
async fn plan_redrive(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    records: &JobRecords,
    results: &[ImageResult],
) -> Result<Option<Rerun>, StageError> {
    if intent.cancel_requested_at.is_some() {
        return Ok(None);
    }
    let max = deps.settings.max_record_attempts;
    let redriven: HashMap<&RecordId, &ImageResult> = results
        .iter()
        .filter(|r| {
            r.is_retryable_failure()
                && (r.attempts < max || r.error_code.as_deref() == Some("no_output"))
        })
        .map(|r| (&r.record_id, r))
        .collect();
    let wanted = wanted_records(deps, intent, records, &redriven).await?;
    if wanted.is_empty() {
        return Ok(None);
    }
    let jobs = crate::app::manifest::rerun::write_rerun(deps, intent, job, &wanted, true).await?;
    crate::metrics::count(crate::metrics::RECORDS_REDRIVEN, wanted.len() as u64);
    tracing::warn!(intent_id = %intent.intent_id, job_no = job.job_no, records = wanted.len(), "deadline: the job's unanswered records are redriven on-demand");
    Ok(Some(Rerun {
        moved: moved(&wanted, &redriven),
        jobs,
    }))
}

/// What becomes of a job's unanswered records.
#[derive(Debug)]
pub struct Decision {
    /// The re-run batch jobs (or a redrive's on-demand jobs) to add in the write of the
    /// parent's end, and the counts they take from it.
    pub jobs: Option<Rerun>,
    /// Records were re-run on-demand here, and `results` holds their new answers.
    pub rerun_on_demand: bool,
}

/// Decides, for `job` that just ended with `results`, what becomes of its unanswered records,
/// and re-runs them on-demand when that is the answer.
pub async fn decide(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    records: &JobRecords,
    results: &mut [ImageResult],
) -> Result<Decision, StageError> {
    let redrive = crate::app::deadline::redrive_now(deps, intent, job).await;
    let jobs = if redrive {
        plan_redrive(deps, intent, job, records, results).await?
    } else {
        plan_rerun(deps, intent, job, records, results).await?
    };
    let rerun_on_demand = jobs.is_none()
        && intent.cancel_requested_at.is_none()
        && !redrive
        && rerun_retryable(deps, intent, job, records, results).await?;
    Ok(Decision {
        jobs,
        rerun_on_demand,
    })
}

/// Most records re-run on-demand after one job. A remainder of the model's minimum or more
/// goes into a re-run batch job instead ([`plan_rerun`]), so this binds only where the minimum is
/// set above it.
pub const ON_DEMAND_RERUN_LIMIT: usize = 1_000;

/// Re-runs, on-demand, every record that failed with a retryable error (throttling, 5xx,
/// timeout, or no output from a job that stopped short) and has attempts left. Validation
/// failures are never re-run.
async fn rerun_retryable(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    records: &JobRecords,
    results: &mut [ImageResult],
) -> Result<bool, StageError> {
    let (candidates, replayed) = still_to_rerun(deps, intent, results).await?;
    if candidates.is_empty() {
        return Ok(replayed);
    }
    if candidates.len() > ON_DEMAND_RERUN_LIMIT {
        tracing::warn!(intent_id = %intent.intent_id, failed = candidates.len(), limit = ON_DEMAND_RERUN_LIMIT, "too many retryable failures to re-run on-demand; left failed");
        return Ok(replayed);
    }
    // By the id the record has in the job's input lines, and by our own record id, which a
    // manifest written before record ids were Bedrock's 11 characters carries instead.
    let line_ids = records.line_ids();
    let wanted: HashMap<String, usize> = candidates
        .iter()
        .filter_map(|&i| {
            line_ids
                .get(&results[i].record_id)
                .map(|id| ((*id).to_owned(), i))
        })
        .chain(
            candidates
                .iter()
                .map(|&i| (results[i].record_id.to_string(), i)),
        )
        .collect();
    crate::metrics::count(crate::metrics::RECORDS_RETRIED, candidates.len() as u64);
    tracing::info!(intent_id = %intent.intent_id, records = candidates.len(), "re-running retryable failures on-demand");
    for (i, r) in run_wanted(deps, (intent, job), &wanted, results).await? {
        results[i] = r;
    }
    Ok(true)
}

/// The results (by their slot) that still need a re-run, and whether a replay found earlier
/// re-runs stored: a replay of this job's end (a redelivery, or the reconciler racing the
/// watcher) finds what they stored, and those stand, not paid for again.
async fn still_to_rerun(
    deps: &Deps,
    intent: &BatchIntent,
    results: &mut [ImageResult],
) -> Result<(Vec<usize>, bool), StageError> {
    let max = deps.settings.max_record_attempts;
    let mut candidates: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_retryable_failure() && r.attempts < max)
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Ok((candidates, false));
    }
    let stored =
        store::stored_results(deps, intent, candidates.iter().map(|&i| &results[i])).await?;
    let mut replayed = false;
    candidates.retain(|&i| match stored.get(&results[i].record_id) {
        // Its owner left the shared job: its answer is dropped, so it is not paid for.
        Some(prev) if prev.status == ResultStatus::Canceled => false,
        Some(prev) if prev.attempts > results[i].attempts => {
            results[i] = prev.clone();
            replayed = true;
            results[i].is_retryable_failure() && results[i].attempts < max
        }
        _ => true,
    });
    Ok((candidates, replayed))
}

/// Runs the `wanted` records (by line id, each with its slot in `results`) from the job's
/// input parts, line by line, stored [`crate::app::on_demand::CHUNK`] at a time: memory holds
/// one chunk's inputs, a crash or timeout loses at most one chunk's calls, and the replay
/// starts after what was stored. Returns each re-run by its slot.
async fn run_wanted(
    deps: &Deps,
    (intent, job): (&BatchIntent, &BatchJob),
    wanted: &HashMap<String, usize>,
    results: &[ImageResult],
) -> Result<Vec<(usize, ImageResult)>, StageError> {
    let take = |rid: String, input| {
        let &i = wanted.get(&rid)?;
        let r = &results[i];
        let pending = crate::app::on_demand::Pending {
            record_id: r.record_id.clone(),
            index: r.image_index,
            key: r.image_key.clone(),
            model_input: input,
            attempts: r.attempts.max(1),
        };
        Some((i, pending))
    };
    let mut inputs = crate::app::on_demand::PartInputs::new(job.part_uris());
    let limits = crate::app::on_demand::Limits::for_call(deps, intent);
    let mut done = Vec::new();
    loop {
        let chunk = inputs
            .next_chunk(deps, |r| wanted.contains_key(r), take)
            .await?;
        let last = chunk.len() < crate::app::on_demand::CHUNK;
        done.extend(rerun_chunk(deps, intent, chunk, &limits).await?);
        if last {
            return Ok(done);
        }
    }
}

/// Runs one chunk of re-runs and stores it; returns each re-run by its slot in the results.
async fn rerun_chunk(
    deps: &Deps,
    intent: &BatchIntent,
    chunk: Vec<(usize, crate::app::on_demand::Pending)>,
    limits: &crate::app::on_demand::Limits,
) -> Result<Vec<(usize, ImageResult)>, StageError> {
    if chunk.is_empty() {
        return Ok(Vec::new());
    }
    let (slots, records): (Vec<usize>, Vec<_>) = chunk.into_iter().unzip();
    let asked = records.len();
    let rerun = crate::app::on_demand::run(deps, &intent.model_id, records, limits).await;
    store::put(deps, intent, rerun.clone()).await?;
    if rerun.len() < asked {
        // Bedrock refused some past the call's budget: the message is tried again, and
        // what was answered here is not run twice (its stored result is no failure).
        return Err(StageError::Retryable(crate::ports::PortError::new(
            crate::ports::ErrorKind::Throttled,
            format!("{} re-runs still refused on-demand", asked - rerun.len()),
        )));
    }
    Ok(slots.into_iter().zip(rerun).collect())
}

/// `summary` without the records a re-run took.
pub fn without(summary: ManifestSummary, moved: &ManifestSummary) -> ManifestSummary {
    ManifestSummary {
        total_record_count: summary
            .total_record_count
            .saturating_sub(moved.total_record_count),
        processed_record_count: summary
            .processed_record_count
            .saturating_sub(moved.processed_record_count),
        error_record_count: summary
            .error_record_count
            .saturating_sub(moved.error_record_count),
        ..summary
    }
}
