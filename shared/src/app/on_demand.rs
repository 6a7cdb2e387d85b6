//! The on-demand path: records run one by one through `InvokeModel`, a few at a time. Used
//! for pooled intents still below the minimum at their deadline (policy `on_demand`), for jobs
//! moved or redriven at a deadline's cut-off, and to re-run records whose batch attempt failed
//! with a retryable error.
//!
//! Every call first takes its turn from the model's shared budget (`app::pace`), so no number
//! of runners calls a model faster than its quota. A "slow down" from Bedrock (throttling,
//! unavailable, model not ready, model error: `ErrorKind::Throttled`) backs off over a
//! minute-scale window and does not use up the record's attempts (`domain::rate`): such a
//! record ends failed only when its deadline leaves no room for another try, and a record still
//! waiting when this call's [`BUDGET`] runs out gets no result (the caller's next run takes it
//! again). Another retryable fault (a 5xx, a timeout) is retried with the same backoff within
//! the record's `max_record_attempts`; anything else ends the record at once, a validation
//! error included.

use crate::app::Deps;
use crate::domain::bedrock::OutputLine;
use crate::domain::ids::{ModelId, ObjectKey, RecordId};
use crate::domain::receipt::Review;
use crate::domain::results::ImageResult;
use crate::ports::ErrorKind;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

/// Records run, and stored, at a time by the callers that read inputs from parts.
pub const CHUNK: usize = 50;

/// Time one call may spend retrying a record Bedrock keeps refusing (the functions' Lambdas
/// run 15 minutes).
pub const BUDGET: chrono::Duration = chrono::Duration::minutes(10);

/// What bounds one call's on-demand runs: the intent's deadline (a "slow down" past it ends the
/// record failed), the call's end (past it a record is left for the next call, and no turn
/// is waited for), and how answers are reviewed. Computed once per call, shared by its chunks.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub review: Option<Review>,
}

impl Limits {
    /// The limits of a call starting now on `intent`: [`BUDGET`] from now.
    pub fn for_call(deps: &Deps, intent: &crate::domain::intent::BatchIntent) -> Self {
        Self {
            deadline: intent.deadline,
            until: deps.clock.now() + BUDGET,
            review: deps.review_of(intent),
        }
    }
}

/// One record to run.
#[derive(Debug, Clone)]
pub struct Pending {
    pub record_id: RecordId,
    pub index: usize,
    pub key: ObjectKey,
    pub model_input: serde_json::Value,
    /// Attempts already made (0 for a record never run).
    pub attempts: u32,
}

/// Runs every record with bounded concurrency, each by `deadline` if it has one; returns the
/// result of each record that ended, in order (fewer than asked when Bedrock kept refusing
/// some past this call's [`BUDGET`]: see the module doc).
pub async fn run(
    deps: &Deps,
    model: &ModelId,
    records: Vec<Pending>,
    limits: &Limits,
) -> Vec<ImageResult> {
    let results: Vec<ImageResult> = stream::iter(records)
        .map(|r| run_one(deps, model, r, limits))
        .buffered(deps.settings.on_demand_concurrency.max(1))
        .filter_map(|r| async move { r })
        .collect()
        .await;
    crate::metrics::count(crate::metrics::RECORDS_ON_DEMAND, results.len() as u64);
    crate::metrics::flagged(&results);
    // What on-demand cost over batch for these records, from their real tokens.
    let (input, output) = results.iter().fold((0, 0), |(i, o), r: &ImageResult| {
        (i + r.input_tokens, o + r.output_tokens)
    });
    if let Some(usd) = deps.settings.token_cost_usd(model, input, output) {
        crate::metrics::usd(
            crate::metrics::ON_DEMAND_EXTRA_USD,
            usd * (1.0 - deps.settings.batch_discount),
        );
    }
    results
}

/// Runs one record: its result, or None when Bedrock still refused it at the call's budget.
async fn run_one(
    deps: &Deps,
    model: &ModelId,
    rec: Pending,
    limits: &Limits,
) -> Option<ImageResult> {
    let (deadline, budget_end, review) = (limits.deadline, limits.until, limits.review.as_ref());
    let max = deps.settings.max_record_attempts;
    let tokens = deps.settings.quota_tokens_per_record(model);
    let (mut attempts, mut refusals) = (rec.attempts, 0u32);
    let error = loop {
        let answer = match crate::app::pace::take_turn(deps, model, tokens, budget_end).await {
            // No turn before the call ends: the next call takes the record.
            Ok(None) => return None,
            Ok(Some(turn)) => {
                attempts += 1;
                let answer = deps.on_demand.invoke(model, &rec.model_input).await;
                if let Ok(output) = &answer {
                    if let Some(a) = crate::domain::family::read_any(output) {
                        crate::app::pace::settle(
                            deps,
                            model,
                            turn,
                            a.input_tokens,
                            a.output_tokens,
                        )
                        .await;
                    }
                }
                answer
            }
            Err(e) => {
                // The budget's store failed: an attempt spent, so this cannot loop forever.
                attempts += 1;
                Err(e)
            }
        };
        let e = match answer {
            Ok(output) => return Some(finish(rec, attempts, Ok(output), review)),
            Err(e) => e,
        };
        let slow_down = matches!(e.kind, ErrorKind::Throttled | ErrorKind::QuotaExceeded);
        if !slow_down {
            // Another fault (a 5xx, a timeout): retried with backoff while attempts remain.
            if !e.is_retryable() || attempts >= max {
                break e;
            }
            deps.clock
                .sleep_until(crate::app::pace::retry_at(deps, attempts))
                .await;
            continue;
        }
        // A "slow down" is not the record's fault: it costs no attempt.
        attempts = attempts.saturating_sub(1).max(rec.attempts);
        refusals += 1;
        crate::metrics::count(crate::metrics::ON_DEMAND_THROTTLED, 1);
        let next = crate::app::pace::retry_at(deps, refusals);
        if deadline.is_some_and(|d| next > d) {
            tracing::warn!(record_id = %rec.record_id, refusals, error = %e, "Bedrock refused until the deadline");
            break e;
        }
        if next > budget_end {
            tracing::info!(record_id = %rec.record_id, refusals, "still refused at this call's budget; the next run takes it again");
            return None;
        }
        deps.clock.sleep_until(next).await;
    };
    tracing::warn!(record_id = %rec.record_id, attempts, max, error = %error, "on-demand call failed");
    Some(finish(rec, attempts.max(1), Err(error), review))
}

/// The result of a record's last try.
fn finish(
    rec: Pending,
    attempts: u32,
    answer: Result<serde_json::Value, crate::ports::PortError>,
    review: Option<&Review>,
) -> ImageResult {
    let line = match answer {
        Ok(output) => OutputLine {
            record_id: rec.record_id.to_string(),
            model_input: None,
            model_output: Some(output),
            error: None,
        },
        Err(e) => {
            let code = match e.kind {
                ErrorKind::Transient | ErrorKind::Throttled | ErrorKind::QuotaExceeded => "429",
                ErrorKind::Validation => "400",
                _ => "500",
            };
            OutputLine {
                record_id: rec.record_id.to_string(),
                model_input: None,
                model_output: None,
                error: Some(crate::domain::bedrock::RecordError {
                    error_code: serde_json::Value::String(code.into()),
                    error_message: e.message.clone(),
                }),
            }
        }
    };
    let mut result =
        ImageResult::from_output(&line, rec.record_id.clone(), rec.index, rec.key, review);
    result.attempts = attempts;
    result.on_demand = true;
    result
}

/// The record id and `modelInput` of one manifest line, if `wanted` accepts its record id.
/// The id is read first, without building the (possibly megabytes of) input.
pub fn input_of(
    line: &str,
    wanted: impl FnOnce(&str) -> bool,
) -> Option<(String, serde_json::Value)> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "recordId", borrow)]
        record_id: std::borrow::Cow<'a, str>,
    }
    let head: Head<'_> = serde_json::from_str(line).ok()?;
    if !wanted(&head.record_id) {
        return None;
    }
    let full: OutputLine = serde_json::from_str(line).ok()?;
    full.model_input.map(|m| (full.record_id, m))
}

/// Manifest parts read line by line, [`CHUNK`] wanted records at a time: memory holds one
/// chunk's inputs, a crash or timeout loses at most one chunk's calls, and a replay starts
/// after what was stored. The re-run, on-demand job and pooled member paths share it.
pub(crate) struct PartInputs {
    parts: std::collections::VecDeque<crate::domain::bedrock::S3Uri>,
    lines: Option<crate::ports::LineStream>,
}

impl PartInputs {
    pub(crate) fn new(parts: Vec<crate::domain::bedrock::S3Uri>) -> Self {
        Self {
            parts: parts.into(),
            lines: None,
        }
    }

    /// The next chunk: `wanted` says from a line's record id alone whether to parse its
    /// input, `take` makes the chunk's item of a wanted `(record id, modelInput)`. A chunk
    /// shorter than [`CHUNK`] (possibly empty) is the last.
    pub(crate) async fn next_chunk<T>(
        &mut self,
        deps: &Deps,
        wanted: impl Fn(&str) -> bool,
        mut take: impl FnMut(String, serde_json::Value) -> Option<T>,
    ) -> Result<Vec<T>, crate::ports::PortError> {
        let mut chunk = Vec::new();
        while chunk.len() < CHUNK {
            let lines = match &mut self.lines {
                Some(lines) => lines,
                None => match self.parts.pop_front() {
                    Some(part) => self.lines.insert(deps.objects.lines(&part).await?),
                    None => break,
                },
            };
            match lines.next().await {
                Some(line) => {
                    if let Some((rid, input)) = input_of(&line?, &wanted) {
                        chunk.extend(take(rid, input));
                    }
                }
                None => self.lines = None,
            }
        }
        Ok(chunk)
    }
}

/// Every `(record id, modelInput)` of a manifest part that `wanted` accepts, read line by line.
pub async fn inputs_of(
    deps: &Deps,
    part: &crate::domain::bedrock::S3Uri,
    mut wanted: impl FnMut(&str) -> bool,
) -> Result<Vec<(String, serde_json::Value)>, crate::ports::PortError> {
    use futures::StreamExt as _;
    let mut lines = deps.objects.lines(part).await?;
    let mut out = Vec::new();
    while let Some(line) = lines.next().await {
        if let Some(found) = input_of(&line?, &mut wanted) {
            out.push(found);
        }
    }
    Ok(out)
}
