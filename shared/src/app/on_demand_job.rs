//! On-demand jobs: a planned job whose records run through `InvokeModel` instead of a Bedrock
//! batch job, because the deadline planner found they could not make it in batch, or because
//! the job still waited for a slot at its cut-off. The submitter runs it: its manifest parts
//! are read line by line and run [`CHUNK`] at a time, each chunk stored before the next.
//!
//! Replay: records with a stored result are not run again, so a crash between two chunks
//! costs at most one chunk's calls and answers no image twice; the job's end is a
//! version-conditional write that a second run finds done.

use crate::app::job_end::records::{self, JobRecord, JobRecords};
use crate::app::on_demand::{PartInputs, Pending, CHUNK};
use crate::app::results as store;
use crate::app::{Deps, StageError};
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::{IntentId, RecordId};
use crate::domain::intent::{BatchIntent, BatchJob};
use crate::domain::results::{ImageResult, ResultStatus};
use std::collections::{HashMap, HashSet};

/// Wall-clock time one call runs chunks before it hands the rest on (the submitter's Lambda has
/// 15 minutes; a chunk of 50 calls takes seconds).
pub const BUDGET: std::time::Duration = std::time::Duration::from_secs(600);

/// What one call did with an on-demand job.
#[derive(Debug)]
pub(super) enum Ran {
    /// Every record has its result: the job's counts over all its records.
    Done(ManifestSummary),
    /// Time ran out first (or Bedrock kept refusing some records): the caller announces the
    /// intent again, and the next call resumes after what was stored.
    Unfinished,
    /// Another runner holds the job's lease (a duplicate announcement): it runs the job.
    Held,
}

/// Runs every record of on-demand job `job` that has no result yet, for at most [`BUDGET`],
/// holding the job's lease (`app::lease`) so that no two runners call the model for it at once.
pub(super) async fn run_job(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
) -> Result<Ran, StageError> {
    let key = format!("on-demand#{}#{}", intent.intent_id, job.job_no);
    let Some(lease) = crate::app::lease::Lease::take(deps, key).await? else {
        tracing::info!(intent_id = %intent.intent_id, job_no = job.job_no, "another runner holds this on-demand job");
        return Ok(Ran::Held);
    };
    let ran = run_held(deps, intent, job, &lease).await;
    lease.release(deps).await;
    ran
}

/// [`run_job`] under its lease, renewed before each chunk.
async fn run_held(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    lease: &crate::app::lease::Lease,
) -> Result<Ran, StageError> {
    let started = std::time::Instant::now();
    let limits = crate::app::on_demand::Limits::for_call(deps, intent);
    let records = records::load(deps, intent, job).await?;
    let done = stored(deps, &records).await?;
    let wanted: HashMap<&str, &JobRecord> = records
        .iter()
        .filter(|(_, r)| !done.contains_key(&r.record_id))
        .map(|(line_id, r)| (line_id.as_str(), r))
        .collect();
    tracing::info!(intent_id = %intent.intent_id, job_no = job.job_no, records = records.len(), left = wanted.len(), "running a job on-demand");
    let parts = if wanted.is_empty() {
        Vec::new()
    } else {
        job.part_uris()
    };
    let mut inputs = PartInputs::new(parts);
    let take = |line_id: String, input| {
        let r = wanted.get(line_id.as_str())?;
        Some(Pending {
            record_id: r.record_id.clone(),
            index: r.index,
            key: r.key.clone(),
            model_input: input,
            attempts: 0,
        })
    };
    loop {
        let chunk = inputs
            .next_chunk(deps, |id| wanted.contains_key(id), take)
            .await?;
        let last = chunk.len() < CHUNK;
        if !lease.renew(deps).await? {
            return Ok(Ran::Held);
        }
        run_chunk(deps, intent, chunk, (&records, &limits)).await?;
        if last {
            break;
        }
        if started.elapsed() > BUDGET {
            tracing::info!(intent_id = %intent.intent_id, job_no = job.job_no, "on-demand job out of time for this call; the next resumes it");
            return Ok(Ran::Unfinished);
        }
    }
    let results = stored(deps, &records).await?;
    if results.len() < records.len() {
        // Bedrock refused some past this call's budget: the next call takes them again.
        tracing::info!(intent_id = %intent.intent_id, job_no = job.job_no, left = records.len() - results.len(), "records still refused; the next call resumes them");
        return Ok(Ran::Unfinished);
    }
    Ok(Ran::Done(counts(records.len() as u64, results.values())))
}

/// Runs one chunk and stores its results (a shared job's go to its members).
async fn run_chunk(
    deps: &Deps,
    intent: &BatchIntent,
    chunk: Vec<Pending>,
    (records, limits): (&JobRecords, &crate::app::on_demand::Limits),
) -> Result<(), StageError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let mut results = crate::app::on_demand::run(deps, &intent.model_id, chunk, limits).await;
    crate::app::reask::reask_job(deps, intent, &mut results, (records, limits.until)).await?;
    store::put(deps, intent, results).await
}

/// The stored results of the job's records that need no further run, by record id (a shared
/// job's are its members'): answered or failed for good, or run by this job already. A re-run
/// job moved here at its cut-off holds records whose batch attempt failed retryably: those
/// are not done.
async fn stored(
    deps: &Deps,
    records: &JobRecords,
) -> Result<HashMap<RecordId, ImageResult>, StageError> {
    let owners: HashSet<&IntentId> = records.records().map(|r| &r.owner).collect();
    let ours: HashSet<&RecordId> = records.records().map(|r| &r.record_id).collect();
    let mut out = HashMap::new();
    for owner in owners {
        for r in store::all_results(deps, owner).await? {
            let done = r.on_demand || !r.is_retryable_failure();
            if ours.contains(&r.record_id) && r.status != ResultStatus::Skipped && done {
                out.insert(r.record_id.clone(), r);
            }
        }
    }
    Ok(out)
}

/// A job's counts from its records' results.
fn counts<'r>(total: u64, results: impl Iterator<Item = &'r ImageResult>) -> ManifestSummary {
    let mut c = ManifestSummary {
        total_record_count: total,
        ..ManifestSummary::default()
    };
    for r in results {
        c.processed_record_count += 1;
        c.flagged_record_count += u64::from(r.needs_review == Some(true));
        match r.status {
            ResultStatus::Succeeded => c.success_record_count += 1,
            _ => c.error_record_count += 1,
        }
        c.input_token_count += r.input_tokens;
        c.output_token_count += r.output_tokens;
    }
    c
}
