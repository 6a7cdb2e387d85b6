//! Remainders: the records a job left unanswered (no output line: a PartiallyCompleted, Stopped
//! or Expired job) or answered with a retryable error go into a new batch job of the same
//! intent when they reach the model's minimum records per job, at the batch price; below it
//! they are re-run on-demand (`watch::rerun_retryable`). AWS's advice for an Expired job is to
//! "Submit a new job request" (the `Expired` status, botocore's `bedrock` service model).
//!
//! Bounded: a record is re-run while it has attempts left (`MAX_RECORD_ATTEMPTS`, the first
//! batch job included), and a re-run job is attempt `parent + 1`. A job its owner asked to stop
//! leaves no remainder. Replay: the re-run jobs are added in the same version-conditional write
//! as the parent's end, and their manifests sit at deterministic keys, so a replay before that
//! write rewrites the same objects and one after it is refused as stale.

use super::{Deps, StageError};
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::{IntentId, ObjectKey, RecordId};
use crate::domain::intent::{BatchIntent, BatchJob, MappedRecord};
use crate::domain::results::{ImageResult, ResultStatus};
use std::collections::HashMap;

/// A job's records by the id its lines carry: (record id, image index, key, owning intent).
pub(super) type JobRecords = HashMap<String, (RecordId, usize, ObjectKey, IntentId)>;

/// The re-run jobs planned for a job's remainder, and the counts of the records they took
/// from it (to take out of the parent's counts, so no record counts twice).
#[derive(Debug)]
pub(super) struct Rerun {
    pub jobs: Vec<BatchJob>,
    pub moved: ManifestSummary,
}

/// Plans (and writes the manifests of) re-run jobs for `job`'s retryable failures, when there
/// are at least the model's minimum of them with attempts left; None otherwise.
pub(super) async fn plan_rerun(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    records: &JobRecords,
    results: &[ImageResult],
) -> Result<Option<Rerun>, StageError> {
    let max = deps.settings.max_record_attempts;
    if intent.cancel_requested_at.is_some() || job.attempt >= max {
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
    // A shared job's member that left (cancelled) keeps its records canceled: not re-run.
    let stored = super::watch::stored_results(deps, intent, failed.values().copied()).await?;
    let wanted: HashMap<String, MappedRecord> = records
        .iter()
        .filter(|(_, (rid, ..))| failed.contains_key(rid))
        .filter(|(_, (rid, ..))| {
            stored
                .get(rid)
                .is_none_or(|s| s.status != ResultStatus::Canceled)
        })
        .map(|(line_id, (rid, index, key, owner))| {
            let mapped = MappedRecord {
                bedrock_record_id: Some(line_id.clone()),
                record_id: rid.clone(),
                intent_id: owner.clone(),
                index: *index,
                key: key.clone(),
            };
            (line_id.clone(), mapped)
        })
        .collect();
    if (wanted.len() as u64) < min.max(1) {
        return Ok(None);
    }
    let jobs = super::manifest::rerun::write_rerun(deps, intent, job, &wanted).await?;
    let answered_with_error = wanted
        .values()
        .filter(|m| {
            failed
                .get(&m.record_id)
                .is_some_and(|r| r.error_code.as_deref() != Some("no_output"))
        })
        .count() as u64;
    crate::metrics::count(crate::metrics::JOBS_RERUN, jobs.len() as u64);
    crate::metrics::count(crate::metrics::RECORDS_RETRIED, wanted.len() as u64);
    tracing::info!(intent_id = %intent.intent_id, job_no = job.job_no, records = wanted.len(), jobs = jobs.len(), "remainder goes into a new batch job");
    Ok(Some(Rerun {
        jobs,
        moved: ManifestSummary {
            total_record_count: wanted.len() as u64,
            processed_record_count: answered_with_error,
            error_record_count: answered_with_error,
            ..ManifestSummary::default()
        },
    }))
}

/// `summary` without the records a re-run took.
pub(super) fn without(summary: ManifestSummary, moved: &ManifestSummary) -> ManifestSummary {
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
