//! Status watcher: apply a Bedrock job state change to the intent that owns the job, only
//! forward. On a terminal status with outputs it ingests every output line (joined on
//! recordId) and `manifest.json.out` before writing the terminal status.
//!
//! Replay: a duplicate or stale event is refused by the state machine and writes nothing.
//! Results are upserts keyed by (intentId, recordId), so a crash between ingesting and the
//! status write only means the replay ingests the same rows again.

use crate::app::job_end::records::{self, JobRecord, JobRecords};
use crate::app::job_end::rerun;
use crate::app::outbox::{save, take_over, Saved};
use crate::app::{cas_loop, lost_races, Cas, Deps, Outcome, StageError};
use crate::domain::bedrock::S3Uri;
use crate::domain::bedrock::{JobEvent, ManifestSummary, NotAJobEvent, OutputLine, SUMMARY_FILE};
use crate::domain::events::Envelope;
use crate::domain::ids::{BedrockJobArn, JobId};
use crate::domain::intent::{BatchIntent, BatchJob};
use crate::domain::manifest::PAD_PREFIX;
use crate::domain::results::flagged_in;
use crate::domain::results::ImageResult;
use crate::domain::status::{BedrockJobStatus, IntentStatus};
use crate::ports::{ErrorKind, PortError};
use futures::StreamExt as _;
use std::collections::{HashMap, HashSet};

/// The watcher's message: Bedrock's state change, decoded once by [`JobEvent::decode`]. A
/// change it cannot read (a status Bedrock added later) is logged and ignored; anything that
/// is not a state change can never be applied.
pub async fn apply_envelope(deps: &Deps, envelope: Envelope) -> Result<Outcome, StageError> {
    match JobEvent::decode(&envelope.source, &envelope.detail_type, envelope.detail) {
        Ok(event) => apply_job_event(deps, &event).await,
        Err(NotAJobEvent::Unreadable(what)) => {
            tracing::warn!(%what, "state change ignored");
            Ok(Outcome::Unknown(what))
        }
        Err(e) => Err(StageError::Permanent(e.to_string())),
    }
}

/// Applies a job's status, from Bedrock's event or the reconciler's poll (so both agree).
#[tracing::instrument(skip_all, fields(
    bedrock_job_arn = %event.arn,
    status = %event.status,
    intent_id = tracing::field::Empty,
    job_id = tracing::field::Empty,
    trace_id = tracing::field::Empty,
))]
pub async fn apply_job_event(deps: &Deps, event: &JobEvent) -> Result<Outcome, StageError> {
    let (arn, status) = (&event.arn, event.status);
    // Bedrock's own message can name the account, the role and the buckets: it goes to the
    // log, and the client reads a fixed text.
    let failure = event.failure_message.as_ref().map(|raw| {
        tracing::warn!(bedrock_job_arn = %arn, %status, bedrock_message = %raw, "Bedrock's message for a job");
        client_failure(status).to_owned()
    });
    let (failure, owner) = (failure.as_deref(), event.job.as_ref());
    cas_loop((), move |()| apply_once(deps, arn, status, failure, owner))
        .await?
        .ok_or_else(|| lost_races("status write"))
}

fn client_failure(status: BedrockJobStatus) -> &'static str {
    match status {
        BedrockJobStatus::Failed => "Bedrock failed the batch job: it checks the input files, their sizes and the service role's access before running (the operators' log has Bedrock's own message)",
        BedrockJobStatus::Expired => "the batch job timed out before Bedrock ran it all",
        BedrockJobStatus::Stopped => "the batch job was stopped",
        _ => "Bedrock reported a problem with the batch job (the operators' log has its message)",
    }
}

/// One attempt of [`apply_job_status`]: a dry run first (a stale event must not cost an
/// ingest), then the ingest, the members' ends for a shared job, and the version-checked write.
async fn apply_once(
    deps: &Deps,
    arn: &BedrockJobArn,
    status: BedrockJobStatus,
    failure_message: Option<&str>,
    owner: Option<&JobId>,
) -> Result<Cas<Outcome>, StageError> {
    let Some(intent) = deps.store.get_by_bedrock_arn(arn).await? else {
        return not_recorded_yet(deps, arn, owner).await.map(Cas::Done);
    };
    let span = tracing::Span::current();
    span.record("intent_id", intent.intent_id.as_str());
    span.record("job_id", intent.job_id.as_str());
    span.record("trace_id", intent.trace_id.as_str());
    let Some(job) = intent.job_by_arn(arn).cloned() else {
        return Ok(Cas::Done(Outcome::Unknown(arn.to_string())));
    };
    let now = deps.clock.now();
    let failure = failure_message.map(str::to_owned);
    let mut probe = intent.clone();
    if probe
        .apply_job_status(arn, status, failure.clone(), None, now)
        .is_err()
    {
        return stale_change(deps, &intent, &job).await.map(Cas::Done);
    }
    let (summary, rerun) = if status.is_terminal() && status.has_outputs() {
        let Some((summary, rerun)) = ingest(deps, &intent, &job, arn).await? else {
            // Its output is still landing: left open, the reconciler's next poll of the job
            // applies its end again (no receive count spent, nothing re-run).
            return Ok(Cas::Done(Outcome::Waiting));
        };
        (Some(summary), rerun)
    } else {
        (None, None)
    };
    let (expected, since, was_terminal) = (
        intent.version,
        intent.updated_at,
        intent.status.is_terminal(),
    );
    let mut next = intent;
    if let Some(jobs) = rerun {
        // In the same write as the parent's end, so the intent does not end meanwhile.
        next.add_rerun_jobs(jobs, now)?;
    }
    next.apply_job_status(arn, status, failure, summary, now)?;
    if next.is_pool_job() && next.status.is_terminal() {
        // Members end first, so a crash before the shared job's write is redone.
        crate::app::pool::finish_members(deps, &next).await?;
    }
    let Saved::Written(i) = save(deps, next, expected).await? else {
        return Ok(Cas::Again(()));
    };
    if status.is_terminal() {
        release_slot(deps, &i, &job).await?;
        crate::app::deadline::record_sample(deps, &i, arn).await;
    }
    if i.status.is_terminal() && !was_terminal {
        crate::metrics::stage_time(i.status, since, now);
    }
    if let Some(c) = summary {
        crate::metrics::count(crate::metrics::RECORDS_SUCCEEDED, c.success_record_count);
        crate::metrics::count(
            crate::metrics::RECORDS_FAILED,
            c.total_record_count.saturating_sub(c.success_record_count),
        );
    }
    tracing::info!(intent_id = %i.intent_id, job_id = %i.job_id, status = %i.status, "job status applied");
    Ok(Cas::Done(Outcome::Advanced(i.status)))
}

/// A stale or duplicate state change: nothing to apply, but finish what a failed first try
/// may have left (the slot, a shared job's members, the outbox), all idempotent.
async fn stale_change(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
) -> Result<Outcome, StageError> {
    tracing::info!(intent_id = %intent.intent_id, job_id = %intent.job_id, "stale or duplicate state change; no-op");
    if job.status.is_some_and(|s| s.is_terminal()) {
        // A replay after a failed release: free the slot now (idempotent).
        release_slot(deps, intent, job).await?;
    }
    if intent.is_pool_job() && intent.status.is_terminal() {
        // A replay after the shared job's end was written: end any member a dead watcher
        // left behind (idempotent).
        crate::app::pool::finish_members(deps, intent).await?;
    }
    take_over(deps, intent).await?;
    Ok(Outcome::AlreadyDone)
}

/// Frees the concurrency slot a finished job held (its holder is the job's client token).
async fn release_slot(deps: &Deps, intent: &BatchIntent, job: &BatchJob) -> Result<(), StageError> {
    crate::app::slots::release_and_wake(deps, &intent.model_id, &job.client_token).await
}

/// An event can beat the submitter's write of the ARN (Bedrock emits as soon as the job
/// exists). If the job name says it is ours and that intent is still waiting for ARNs, the
/// event is retried later instead of dropped.
async fn not_recorded_yet(
    deps: &Deps,
    arn: &BedrockJobArn,
    owner: Option<&JobId>,
) -> Result<Outcome, StageError> {
    if let Some(job_id) = owner {
        if let Some(intent) = deps.store.get_by_job_id(job_id).await? {
            if intent.status == IntentStatus::Cancelled {
                // A job created for an intent cancelled before its ARN was recorded (a
                // submitter died in between): stop it rather than let it run and bill.
                tracing::warn!(intent_id = %intent.intent_id, bedrock_job_arn = %arn, "stopping a job of a cancelled intent");
                crate::app::stop::stop_job(deps, arn).await?;
                return Ok(Outcome::AlreadyDone);
            }
            if intent.status == IntentStatus::ManifestReady || intent.has_unsubmitted_job() {
                return Err(StageError::Retryable(PortError::new(
                    ErrorKind::Transient,
                    format!(
                        "job {arn} of intent {} is not recorded yet",
                        intent.intent_id
                    ),
                )));
            }
        }
    }
    tracing::warn!(bedrock_job_arn = %arn, "state change for a job no intent owns; ignored");
    Ok(Outcome::Unknown(arn.to_string()))
}

/// Reads every output file and the summary of one job, stores a result per image, and
/// returns the job's counts and the re-run jobs of its remainder, if it gets some; None, having
/// stored nothing, while its output is still landing (see [`every_line_landed`]). Records with
/// no output line become "no output" failures.
async fn ingest(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
    arn: &BedrockJobArn,
) -> Result<Option<(ManifestSummary, Option<Vec<BatchJob>>)>, StageError> {
    let out_dir = job.output.join(arn.job_suffix());
    // Whose each record of this job is: the intent's own images, or a shared job's map.
    let expected = records::load(deps, intent, job).await?;
    let summary = read_summary(deps, &out_dir).await?;
    let Read {
        mut results,
        seen,
        lines,
    } = read_outputs(deps, &out_dir, &expected, deps.review_of(intent)).await?;
    if !every_line_landed(deps, arn, summary.as_ref(), lines).await? {
        return Ok(None);
    }
    let mut missing: Vec<&JobRecord> = expected
        .iter()
        .filter(|(line_id, _)| !seen.contains(*line_id))
        .map(|(_, r)| r)
        .collect();
    missing.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    for r in missing {
        results.push(ImageResult::missing(
            r.record_id.clone(),
            r.index,
            r.key.clone(),
        ));
    }
    // A re-run job's records are on their next attempt.
    for r in &mut results {
        r.attempts = r.attempts.max(job.attempt);
    }
    if intent.cancel_requested_at.is_none() {
        let until = deps.clock.now() + crate::app::reask::BUDGET;
        crate::app::reask::reask_job(deps, intent, &mut results, (&expected, until)).await?;
    }
    crate::metrics::flagged(&results);
    let decision = rerun::decide(deps, intent, job, &expected, &mut results).await?;
    crate::app::results::put(deps, intent, results.clone()).await?;
    // Without a readable summary, or once records were re-run, the counts come from the
    // results themselves. Bedrock's summary counts pad records too, so a padded job's counts
    // are derived.
    let mut counts = summary
        .filter(|_| !decision.rerun_on_demand && job.pad_records == 0)
        .unwrap_or_else(|| counts_of(job, &results));
    counts.flagged_record_count = flagged_in(&results);
    Ok(Some(match decision.jobs {
        Some(r) => (rerun::without(counts, &r.moved), Some(r.jobs)),
        None => (counts, None),
    }))
}

/// How long after a job's end its output may still be landing: three reconciler passes.
const OUTPUT_GRACE: chrono::Duration = chrono::Duration::minutes(15);

/// `manifest.json.out`, if it is there and readable.
async fn read_summary(deps: &Deps, out_dir: &S3Uri) -> Result<Option<ManifestSummary>, StageError> {
    match deps.objects.get(&out_dir.join(SUMMARY_FILE)).await {
        Ok(bytes) => Ok(serde_json::from_slice::<ManifestSummary>(&bytes).ok()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// False while a job's output files hold fewer lines than it processed (by its summary, else
/// by `GetModelInvocationJob`'s counts) and it ended less than [`OUTPUT_GRACE`] ago: its output
/// is still landing (a stopped job's can follow its event), and a record read as "no output"
/// now would be run and billed twice. Past the grace, the missing records count as unanswered.
async fn every_line_landed(
    deps: &Deps,
    arn: &BedrockJobArn,
    summary: Option<&ManifestSummary>,
    lines: u64,
) -> Result<bool, StageError> {
    if summary.is_some_and(|s| lines >= s.processed_record_count) {
        return Ok(true);
    }
    let info = match deps.bedrock.get_job(arn).await {
        Ok(info) => Some(info),
        Err(e) if e.kind == ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let processed = summary
        .map(|s| s.processed_record_count)
        .or_else(|| {
            info.as_ref()
                .and_then(|i| i.progress)
                .map(|p| p.processed_record_count)
        })
        .unwrap_or(0);
    if lines >= processed {
        return Ok(true);
    }
    let ended = info
        .and_then(|i| i.ended_at)
        .unwrap_or_else(|| deps.clock.now());
    if deps.clock.now() - ended >= OUTPUT_GRACE {
        tracing::warn!(bedrock_job_arn = %arn, lines, processed, "output still short after the grace period; the missing records count as not answered");
        return Ok(true);
    }
    crate::metrics::count(crate::metrics::OUTPUT_INGEST_SHORT, 1);
    tracing::info!(bedrock_job_arn = %arn, lines, processed, "output not all written yet; the job's end is applied again at the next poll");
    Ok(false)
}

/// What a job's output files held: one result per known record, the line ids seen, and every
/// non-blank line read (padding and unknown lines included, as Bedrock counts them).
struct Read {
    results: Vec<ImageResult>,
    seen: HashSet<String>,
    lines: u64,
}

/// Every output line of a job, line by line (an output file echoes every input, so it is as
/// large as the manifest): one result per known record, first line wins; padding and unknown
/// lines are dropped.
async fn read_outputs(
    deps: &Deps,
    out_dir: &S3Uri,
    expected: &JobRecords,
    review: Option<crate::domain::receipt::Review>,
) -> Result<Read, StageError> {
    // Manifests written before record ids were Bedrock's 11 characters carry our own record
    // id in each line: map those to the line id the record has now.
    let legacy: HashMap<String, &str> = expected
        .line_ids()
        .into_iter()
        .map(|(rid, line_id)| (rid.to_string(), line_id))
        .collect();
    let mut results = Vec::new();
    let mut seen = HashSet::new();
    // Distinct record ids of every line (pads and unknown ones included, as Bedrock counts
    // them): a file listed twice mid-rename, or an unparseable line, never adds up to a line.
    let mut ids_read: HashSet<String> = HashSet::new();
    for uri in output_files(deps, out_dir).await? {
        let mut lines = match deps.objects.lines(&uri).await {
            Ok(l) => l,
            // Listed, then gone (a lifecycle rule): its records count as not answered.
            Err(e) if e.kind == ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let mut n = 0usize;
        while let Some(line) = lines.next().await {
            let line = line?;
            n += 1;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(parsed) = OutputLine::parse(&line) else {
                tracing::warn!(file = %uri, line = n, "unparseable output line skipped");
                continue;
            };
            ids_read.insert(parsed.record_id.clone());
            let line_id = legacy
                .get(&parsed.record_id)
                .map_or_else(|| parsed.record_id.clone(), |id| (*id).to_owned());
            let Some(record) = expected.get(&line_id) else {
                if !parsed.record_id.starts_with(PAD_PREFIX)
                    && !parsed.record_id.starts_with("pad-")
                {
                    tracing::warn!(file = %uri, record_id = %parsed.record_id, "output line for an unknown record");
                }
                continue; // padding: its answer is dropped
            };
            if seen.insert(line_id) {
                results.push(ImageResult::from_output(
                    &parsed,
                    record.record_id.clone(),
                    record.index,
                    record.key.clone(),
                    review.as_ref(),
                ));
            }
        }
    }
    Ok(Read {
        results,
        seen,
        lines: ids_read.len() as u64,
    })
}

/// The output files of a job, found by listing its output folder: every `*.jsonl.out`
/// (AWS documents "an output JSONL file for each input JSONL file", and no name; its own
/// samples read `{outputS3Uri}/{jobId}/*.jsonl.out`), in key order. `manifest.json.out` is
/// read apart.
async fn output_files(deps: &Deps, out_dir: &S3Uri) -> Result<Vec<S3Uri>, StageError> {
    let prefix = format!("{}/", out_dir.key.trim_end_matches('/'));
    let mut keys = deps.objects.list(&out_dir.bucket, &prefix).await?;
    keys.sort();
    Ok(keys
        .iter()
        .filter(|k| k.as_str().ends_with(".jsonl.out"))
        .map(|k| S3Uri::object(&out_dir.bucket, k))
        .collect())
}

/// A job's counts from its results (pad records left out).
fn counts_of(job: &BatchJob, results: &[ImageResult]) -> ManifestSummary {
    let ok = results
        .iter()
        .filter(|r| r.status == crate::domain::results::ResultStatus::Succeeded)
        .count() as u64;
    let processed = results
        .iter()
        .filter(|r| r.error_code.as_deref() != Some("no_output"))
        .count() as u64;
    ManifestSummary {
        total_record_count: job.records().saturating_sub(job.pad_records),
        processed_record_count: processed,
        success_record_count: ok,
        error_record_count: processed.saturating_sub(ok),
        input_token_count: results.iter().map(|r| r.input_tokens).sum(),
        output_token_count: results.iter().map(|r| r.output_tokens).sum(),
        flagged_record_count: flagged_in(results),
    }
}
