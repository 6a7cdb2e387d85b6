//! Results by a deadline: how long batch jobs of a model really take (learned from the jobs
//! that finished), how fast on-demand can go, and the plan that follows from both: which share
//! of an intent's records can run at batch price and still be answered in time, and when a job
//! that has not finished must be stopped so on-demand can answer the rest before the deadline.
//!
//! Pure: the caller brings the clock, the history and the settings.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long batch jobs of one model take: queueing (Submitted to InProgress) and running.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pace {
    pub queue_secs: f64,
    pub secs_per_record: f64,
}

impl Pace {
    /// Seconds a job of `records` takes from its create to its end.
    pub fn job_secs(&self, records: u64) -> f64 {
        self.queue_secs + records as f64 * self.secs_per_record
    }
}

/// One finished job's durations, kept per model (the newest [`HISTORY`] count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSample {
    pub ended_at: DateTime<Utc>,
    pub records: u64,
    /// Submitted (the create) to InProgress; for a job stopped before it ran, to its stop (a
    /// lower bound, still the best evidence that queues are long).
    pub queue_secs: f64,
    /// InProgress to the end; None when the job never ran or its start was not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_secs: Option<f64>,
}

/// Jobs an estimate looks back on, per model.
pub const HISTORY: usize = 50;
/// Samples needed before they replace the default pace.
pub const MIN_SAMPLES: usize = 3;
/// The percentile an estimate takes: a plan made on the 90th percentile of recent jobs is met
/// nine nights in ten by batch alone, and the cut-off covers the tenth.
pub const PERCENTILE: f64 = 0.9;

/// The `p`-th percentile (nearest rank) of `values`; None for none.
fn percentile(mut values: Vec<f64>, p: f64) -> Option<f64> {
    values.retain(|v| v.is_finite() && *v >= 0.0);
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// The pace recent jobs show: the [`PERCENTILE`] of their queue times and of their run times
/// per record, each from the default until [`MIN_SAMPLES`] jobs have shown it.
pub fn learned_pace(samples: &[JobSample], default: Pace) -> Pace {
    let recent = &samples[..samples.len().min(HISTORY)];
    let queue: Vec<f64> = recent.iter().map(|s| s.queue_secs).collect();
    let per_record: Vec<f64> = recent
        .iter()
        .filter(|s| s.records > 0)
        .filter_map(|s| s.run_secs.map(|r| r / s.records as f64))
        .collect();
    let pick = |values: Vec<f64>, fallback: f64| {
        if values.len() < MIN_SAMPLES {
            fallback
        } else {
            percentile(values, PERCENTILE).unwrap_or(fallback)
        }
    };
    Pace {
        queue_secs: pick(queue, default.queue_secs),
        secs_per_record: pick(per_record, default.secs_per_record),
    }
}

/// How fast on-demand may run for one model: Bedrock's per-model "requests per minute" and
/// "tokens per minute" quotas for InvokeModel (input and output counted together), or the share
/// of them this stack may use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnDemandRate {
    pub requests_per_minute: f64,
    pub tokens_per_minute: f64,
}

impl OnDemandRate {
    /// Seconds on-demand needs for `records` of `tokens_per_record` each, within both rates.
    pub fn secs_for(&self, records: u64, tokens_per_record: u64) -> f64 {
        let n = records as f64;
        let by_requests = n / self.requests_per_minute.max(1e-9);
        let by_tokens = n * tokens_per_record as f64 / self.tokens_per_minute.max(1e-9);
        60.0 * by_requests.max(by_tokens)
    }

    /// Records on-demand answers in `secs`.
    pub fn records_in(&self, secs: f64, tokens_per_record: u64) -> u64 {
        let per_record = self.secs_for(1, tokens_per_record);
        if per_record <= 0.0 || secs <= 0.0 {
            return 0;
        }
        (secs / per_record).floor() as u64
    }
}

/// What the planner knows when it plans an intent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub now: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    /// Seconds before a slot of the model frees for this intent's jobs (waves ahead of it).
    pub wait_secs: f64,
    pub pace: Pace,
    pub rate: OnDemandRate,
    pub tokens_per_record: u64,
    /// Bedrock's minimum records per job: a batch share below it is no batch share.
    pub min_records: u64,
    /// Seconds kept in hand before the deadline (the cut-off's passes, a redrive's start).
    pub margin_secs: f64,
}

/// How an intent's records split between batch and on-demand, and when it should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub batch_records: u64,
    pub on_demand_records: u64,
    pub estimated_completion: DateTime<Utc>,
    /// The plan ends after the deadline: even on-demand cannot answer the rest in time.
    pub at_risk: bool,
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s.max(0.0) * 1000.0).min(1e15) as i64)
}

/// Plans `records` against the deadline. Without one, or when batch ends in time, everything
/// is batch. Otherwise batch takes the most records that still end by the deadline (cost is
/// the tie-breaker: batch is half the price), if that is at least the job minimum, and
/// on-demand runs the rest from the start.
pub fn split(records: u64, o: &Outlook) -> Split {
    let batch_secs = |k: u64| o.wait_secs + o.pace.job_secs(k);
    let all_batch = Split {
        batch_records: records,
        on_demand_records: 0,
        estimated_completion: o.now + secs(batch_secs(records)),
        at_risk: false,
    };
    let Some(deadline) = o.deadline else {
        return all_batch;
    };
    let available = (deadline - o.now).num_milliseconds() as f64 / 1000.0 - o.margin_secs;
    if batch_secs(records) <= available {
        return all_batch;
    }
    let room = available - o.wait_secs - o.pace.queue_secs;
    let mut batch = if room <= 0.0 || o.pace.secs_per_record <= 0.0 {
        0
    } else {
        ((room / o.pace.secs_per_record).floor() as u64).min(records)
    };
    if batch < o.min_records.max(1) {
        batch = 0;
    }
    let on_demand = records - batch;
    let end = o
        .rate
        .secs_for(on_demand, o.tokens_per_record)
        .max(if batch > 0 { batch_secs(batch) } else { 0.0 });
    let estimated_completion = o.now + secs(end);
    Split {
        batch_records: batch,
        on_demand_records: on_demand,
        estimated_completion,
        at_risk: ends_after(estimated_completion, deadline),
    }
}

/// When a job with `unanswered` records must be stopped so on-demand can still answer them
/// before `deadline` (with `margin_secs` in hand).
pub fn cutoff(
    deadline: DateTime<Utc>,
    unanswered: u64,
    rate: &OnDemandRate,
    tokens_per_record: u64,
    margin_secs: f64,
) -> DateTime<Utc> {
    deadline - secs(rate.secs_for(unanswered, tokens_per_record) + margin_secs)
}

/// USD that on-demand adds over batch for `records` re-run at `on_demand_usd_per_record`, batch
/// costing `batch_discount` of it.
pub fn redrive_extra_usd(records: u64, on_demand_usd_per_record: f64, batch_discount: f64) -> f64 {
    records as f64 * on_demand_usd_per_record * (1.0 - batch_discount)
}

#[cfg(test)]
#[path = "deadline_tests.rs"]
mod tests;

/// Whether something that ends at `end` ends after `deadline`: ending at the deadline itself
/// meets it. The one rule: a plan, a job started now, an intent's end and the clock itself are
/// held to a deadline by it.
pub fn ends_after(end: DateTime<Utc>, deadline: DateTime<Utc>) -> bool {
    end > deadline
}

/// Whether work of `secs` started at `now` ends after `deadline` ([`ends_after`]).
pub fn started_now_ends_after(now: DateTime<Utc>, secs: f64, deadline: DateTime<Utc>) -> bool {
    ends_after(now + self::secs(secs), deadline)
}
