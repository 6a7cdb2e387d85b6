//! What operators see: counters and timings through the `metrics` facade, named once here.
//! In Lambda they are written as CloudWatch Embedded Metric Format documents on stdout after
//! each invocation (no agent needed); elsewhere no recorder is installed and they cost nothing.

use crate::domain::status::IntentStatus;
use chrono::{DateTime, Utc};

pub const NAMESPACE: &str = "BatchOrchestrator";

pub const INTENTS_ACCEPTED: &str = "intents_accepted";
pub const INTENTS_DUPLICATE: &str = "intents_duplicate";
pub const INTENTS_REJECTED: &str = "intents_rejected";
pub const JOBS_SUBMITTED: &str = "jobs_submitted";
pub const JOBS_WAITING_FOR_SLOT: &str = "jobs_waiting_for_slot";
pub const RECORDS_SUCCEEDED: &str = "records_succeeded";
pub const RECORDS_FAILED: &str = "records_failed";
pub const STAGE_SECONDS: &str = "stage_seconds";
pub const INTENTS_POOLED: &str = "intents_pooled";
pub const IMAGES_NORMALIZED: &str = "images_normalized";
pub const POOLS_SEALED: &str = "pools_sealed";
pub const RECORDS_ON_DEMAND: &str = "records_on_demand";
pub const RECORDS_RETRIED: &str = "records_retried";
pub const JOBS_REFUSED: &str = "jobs_refused";
pub const JOBS_RERUN: &str = "jobs_rerun";
pub const INTENTS_AT_RISK: &str = "intents_at_risk";
pub const RECORDS_REDRIVEN: &str = "records_redriven";
pub const ON_DEMAND_EXTRA_USD: &str = "on_demand_extra_usd";
pub const ON_DEMAND_PACED: &str = "on_demand_paced";
pub const ON_DEMAND_THROTTLED: &str = "on_demand_throttled";
pub const OUTPUT_INGEST_SHORT: &str = "output_ingest_short";
pub const RECEIPTS_FLAGGED: &str = "receipts_flagged";
pub const IMAGES_DEDUPLICATED: &str = "images_deduplicated";
pub const RECEIPTS_REASKED: &str = "receipts_reasked";
pub const WEBHOOKS_DELIVERED: &str = "webhooks_delivered";
pub const WEBHOOKS_FAILED: &str = "webhooks_failed";

/// (name, unit, meaning) of every metric, for docs/operations.md.
pub const METRICS: &[(&str, &str, &str)] = &[
    (INTENTS_ACCEPTED, "Count", "new intents recorded by intake"),
    (INTENTS_DUPLICATE, "Count", "requests answered from an existing intent (cached: true)"),
    (INTENTS_REJECTED, "Count", "requests refused (4xx), with dimension `reason`"),
    (JOBS_SUBMITTED, "Count", "Bedrock jobs created"),
    (JOBS_WAITING_FOR_SLOT, "Count", "jobs that must wait: every slot of their model taken, or Bedrock said later (quota, throttling)"),
    (RECORDS_SUCCEEDED, "Count", "records with a model output, at a job's end"),
    (RECORDS_FAILED, "Count", "records with an error or no output, at a job's end"),
    (INTENTS_POOLED, "Count", "intents below the job minimum that joined their model's pool"),
    (POOLS_SEALED, "Count", "shared jobs sealed from pooled intents, with dimension `by` (size, deadline)"),
    (RECORDS_ON_DEMAND, "Count", "records run through on-demand InvokeModel (below-minimum policy or re-runs)"),
    (RECORDS_RETRIED, "Count", "failed records re-run after a retryable error"),
    (JOBS_REFUSED, "Count", "Bedrock jobs refused for good at creation (access denied, not found, validation: the log line says which); the stack alarms on it (`JobsRefusedAlarm`)"),
    (JOBS_RERUN, "Count", "batch jobs created to re-run the unanswered records of a partial, stopped or expired job"),
    (INTENTS_AT_RISK, "Count", "open intents with a deadline that their plan or a cut-off says may be missed, per reconciler pass; the stack alarms on it (`DeadlineAtRiskAlarm`)"),
    (RECORDS_REDRIVEN, "Count", "records of a job stopped at its deadline's cut-off (or whose re-run would end too late) redriven on-demand"),
    (ON_DEMAND_EXTRA_USD, "None", "USD that records re-run on-demand cost over the batch price, from their real tokens"),
    (ON_DEMAND_PACED, "Count", "waits of an on-demand runner for the next window of its model's shared budget (`domain::rate`)"),
    (ON_DEMAND_THROTTLED, "Count", "InvokeModel calls Bedrock answered with a retryable \"slow down\" (throttling, unavailable, model not ready, model error), retried with backoff"),
    (OUTPUT_INGEST_SHORT, "Count", "ingests of a Completed or PartiallyCompleted job whose output held fewer lines than its processed records; retried before anything is re-run"),
    (RECEIPTS_FLAGGED, "Count", "answers that failed a receipt check (`needsReview`: the schema, the arithmetic, the date, the currency or the total; `domain::receipt`)"),
    (IMAGES_DEDUPLICATED, "Count", "images found to be exact copies of one their user sent within `DUPLICATE_WINDOW_DAYS`: answered from it, never sent (`app::duplicates`)"),
    (RECEIPTS_REASKED, "Count", "flagged answers asked again, once, on-demand (`REASK_POLICY`, `app::reask`)"),
    (WEBHOOKS_DELIVERED, "Count", "completion webhooks a receiver took (2xx)"),
    (WEBHOOKS_FAILED, "Count", "completion webhook tries that failed (no answer, not 2xx, or an address refused); retried through the webhooks queue, then its DLQ"),
    (STAGE_SECONDS, "Seconds", "time an intent spent before a stage moved it on, with dimension `stage` (the status reached)"),
];

pub fn count(name: &'static str, n: u64) {
    metrics::counter!(name).increment(n);
}

/// A level seen by one pass (the last value of a period is what it was).
pub fn gauge(name: &'static str, value: f64) {
    metrics::gauge!(name).set(value);
}

/// An amount of US dollars (summed per period on the dashboard).
pub fn usd(name: &'static str, amount: f64) {
    metrics::histogram!(name).record(amount);
}

/// Counts the answers among `results` that failed a receipt check.
pub fn flagged(results: &[crate::domain::results::ImageResult]) {
    let n = results
        .iter()
        .filter(|r| r.needs_review == Some(true))
        .count();
    if n > 0 {
        count(RECEIPTS_FLAGGED, n as u64);
    }
}

pub fn sealed(by: &'static str) {
    metrics::counter!(POOLS_SEALED, "by" => by).increment(1);
}

/// A job Bedrock refused for good. Counted with the function's dimension only, so the
/// stack's alarm names one metric; the reason is in the log line beside it.
pub fn refused(reason: &'static str) {
    tracing::info!(reason, "counting a refused job");
    metrics::counter!(JOBS_REFUSED).increment(1);
}

pub fn rejected(reason: &'static str) {
    metrics::counter!(INTENTS_REJECTED, "reason" => reason).increment(1);
}

/// Time from `since` until now, recorded against the status the stage reached.
pub fn stage_time(reached: IntentStatus, since: DateTime<Utc>, now: DateTime<Utc>) {
    let secs = (now - since).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!(STAGE_SECONDS, "stage" => reached.as_str()).record(secs);
}

/// Installs the EMF recorder (Lambda); returns the collector to flush after each invocation.
pub fn install_emf(
    function: &'static str,
) -> Option<&'static metrics_cloudwatch_embedded::Collector> {
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("function", function)
        .init()
        .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
        .ok()
}
