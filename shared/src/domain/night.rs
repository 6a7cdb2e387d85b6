//! A night: the intents created on one UTC day (the day their 202 was given, as usage counts
//! them), followed from the first 202 to the last answer. The reconciler keeps a point of it per
//! pass ([`NightPoint`], kept [`POINTS_KEPT_DAYS`]) and, once every intent of it has ended, one
//! summary ([`NightSummary`], `night#{date}`), which the operator page and `report --since` read.
//!
//! Both add up one [`Tally`] per intent. An intent that has ended is tallied once from its
//! results (each answer as it ran: batch, on-demand, a copy's; its tokens at its own model's
//! price) and the tally is kept; an open one is tallied on each pass from its own jobs that
//! have ended (answers land when their job ends; a pool member's when its shared job or its
//! on-demand run does). So a pass reads no results but those of the intents that ended since.

use crate::domain::bedrock::ManifestSummary;
use crate::domain::deadline::ends_after;
use crate::domain::ids::IntentId;
use crate::domain::intent::BatchIntent;
use crate::domain::results::{ImageResult, ResultStatus};
use crate::domain::settings::ModelPrice;
use crate::domain::usage::Usage;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long the points and tallies of a night are kept (its summary stays).
pub const POINTS_KEPT_DAYS: i64 = 30;
/// Nights the operator page lists.
pub const NIGHTS_SHOWN: usize = 14;

/// A night's images by how they ended so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    /// Answered by a Bedrock batch job (own or shared).
    pub batch: u64,
    /// Answered on-demand (a pool member's run, a job moved or re-run on-demand).
    pub on_demand: u64,
    /// Exact copies answered from their first image.
    pub copied: u64,
    /// Sent and not answered, once their intent ended.
    pub failed: u64,
    /// Never sent (refused at the manifest: too large, not an image).
    pub skipped: u64,
    /// Cancelled by their owner.
    #[serde(default)]
    pub canceled: u64,
}

impl Answered {
    /// Every image with an answer (batch, on-demand or a copy's).
    pub fn answered(&self) -> u64 {
        self.batch + self.on_demand + self.copied
    }

    /// Counts one stored result.
    pub fn count(&mut self, r: &ImageResult) {
        match r.status {
            ResultStatus::Succeeded if r.duplicate_of.is_some() => self.copied += 1,
            ResultStatus::Succeeded if r.on_demand => self.on_demand += 1,
            ResultStatus::Succeeded => self.batch += 1,
            ResultStatus::Failed => self.failed += 1,
            ResultStatus::Skipped => self.skipped += 1,
            ResultStatus::Canceled => self.canceled += 1,
        }
    }

    fn merge(&mut self, o: &Answered) {
        self.batch += o.batch;
        self.on_demand += o.on_demand;
        self.copied += o.copied;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.canceled += o.canceled;
    }
}

/// One intent's part of its night.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub intent_id: IntentId,
    pub images: u64,
    pub answered: Answered,
    /// Tokens and USD so far; an ended intent's also its flagged answers and copies.
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
    /// When it ended (None while open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
}

impl Tally {
    /// An ended intent's tally from its results, counted into `answered` and `usage`. Images
    /// without a result (an intent that failed before any was written) count as failed.
    pub fn ended(intent: &BatchIntent, mut answered: Answered, usage: Usage) -> Self {
        let images = intent.image_total();
        let counted = answered.answered() + answered.failed + answered.skipped + answered.canceled;
        answered.failed += images.saturating_sub(counted);
        Self {
            intent_id: intent.intent_id.clone(),
            images,
            answered,
            usage: usage.rounded(),
            created_at: intent.created_at,
            ended_at: Some(intent.updated_at),
            deadline: intent.deadline,
        }
    }

    /// An open intent's tally from its jobs that have ended, priced at `price`.
    pub fn running(intent: &BatchIntent, price: Option<&ModelPrice>, batch_discount: f64) -> Self {
        let mut answered = Answered::default();
        let mut usage = Usage::default();
        // A pool member's answers are in its shared job (or its on-demand run) until it ends.
        let jobs = intent.jobs.iter().filter(|_| intent.pool.is_none());
        for job in jobs.filter(|j| j.status.is_some_and(|s| s.is_terminal())) {
            let Some(s) = job.summary.as_ref() else {
                continue;
            };
            if job.on_demand {
                answered.on_demand += s.success_record_count;
            } else {
                answered.batch += s.success_record_count;
            }
            let ManifestSummary {
                input_token_count: i,
                output_token_count: o,
                ..
            } = *s;
            usage.add_tokens(i, o, job.on_demand, price, batch_discount);
        }
        Self {
            intent_id: intent.intent_id.clone(),
            images: intent.image_total(),
            answered,
            usage: usage.rounded(),
            created_at: intent.created_at,
            ended_at: None,
            deadline: intent.deadline,
        }
    }
}

/// The night at one reconciler pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NightPoint {
    pub at: DateTime<Utc>,
    /// Images asked for so far (every intent of the night).
    pub images: u64,
    pub answered: Answered,
    /// Intents not yet ended.
    pub open_intents: u64,
    /// The latest deadline of the night's intents so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// USD so far, as the answers ran, and had every one run in batch or on-demand.
    pub cost_usd: f64,
    pub batch_usd: f64,
    pub on_demand_usd: f64,
    /// Job slots in use per model (0 each on an ended night's last point).
    #[serde(default)]
    pub slots: BTreeMap<String, u32>,
}

/// What one night came to, written once its last intent ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NightSummary {
    pub night: NaiveDate,
    pub intents: u64,
    pub images: u64,
    pub answered: Answered,
    /// Flagged answers, copies and tokens saved, tokens and USD (re-asks at their own model's
    /// price), from the results.
    pub usage: Usage,
    pub first_accepted: DateTime<Utc>,
    pub last_answer: DateTime<Utc>,
    /// The latest deadline of the night's intents (None: no intent had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// Intents that ended after their own deadline.
    pub missed: u64,
    /// True when no intent ended after its deadline (None: no intent had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// The most job slots in use at once per model, over the night's points.
    #[serde(default)]
    pub peak_slots: BTreeMap<String, u32>,
}

/// The night (UTC day) an intent belongs to.
pub fn night_of(intent: &BatchIntent) -> NaiveDate {
    intent.created_at.date_naive()
}

/// Whether an intent counts in its night: a shared job's records are its members'.
pub fn counts_in_night(intent: &BatchIntent) -> bool {
    !intent.is_pool_job()
}

/// The night's point at `at` from its intents' tallies.
pub fn point(tallies: &[Tally], at: DateTime<Utc>, slots: BTreeMap<String, u32>) -> NightPoint {
    let (images, answered, usage) = sum(tallies);
    NightPoint {
        at,
        images,
        answered,
        open_intents: tallies.iter().filter(|t| t.ended_at.is_none()).count() as u64,
        deadline: tallies.iter().filter_map(|t| t.deadline).max(),
        cost_usd: usage.cost_usd,
        batch_usd: usage.batch_usd,
        on_demand_usd: usage.on_demand_usd,
        slots,
    }
}

fn sum(tallies: &[Tally]) -> (u64, Answered, Usage) {
    let mut total = (0, Answered::default(), Usage::default());
    for t in tallies {
        total.0 += t.images;
        total.1.merge(&t.answered);
        total.2.merge(&t.usage);
    }
    (total.0, total.1, total.2.rounded())
}

/// The summary of `night` from its intents' `tallies` and its `points`; None while one of
/// them is open (or it has none).
pub fn summarize(
    night: NaiveDate,
    tallies: &[Tally],
    points: &[NightPoint],
) -> Option<NightSummary> {
    let ends: Vec<DateTime<Utc>> = tallies.iter().filter_map(|t| t.ended_at).collect();
    if tallies.is_empty() || ends.len() < tallies.len() {
        return None;
    }
    let (images, answered, usage) = sum(tallies);
    let missed = tallies
        .iter()
        .filter(|t| match (t.ended_at, t.deadline) {
            (Some(end), Some(deadline)) => ends_after(end, deadline),
            _ => false,
        })
        .count() as u64;
    let deadline = tallies.iter().filter_map(|t| t.deadline).max();
    let mut peak_slots: BTreeMap<String, u32> = BTreeMap::new();
    for (model, n) in points.iter().flat_map(|p| &p.slots) {
        let peak = peak_slots.entry(model.clone()).or_default();
        *peak = (*peak).max(*n);
    }
    Some(NightSummary {
        night,
        intents: tallies.len() as u64,
        images,
        answered,
        usage,
        first_accepted: tallies.iter().map(|t| t.created_at).min()?,
        last_answer: ends.into_iter().max()?,
        deadline,
        missed,
        met: deadline.map(|_| missed == 0),
        peak_slots,
    })
}

impl NightSummary {
    /// The night's last point: what the summary says, at its last answer.
    pub fn final_point(&self) -> NightPoint {
        NightPoint {
            at: self.last_answer,
            images: self.images,
            answered: self.answered,
            open_intents: 0,
            deadline: self.deadline,
            cost_usd: self.usage.cost_usd,
            batch_usd: self.usage.batch_usd,
            on_demand_usd: self.usage.on_demand_usd,
            // The night's jobs have all ended: none of its slots is in use.
            slots: self.peak_slots.keys().map(|m| (m.clone(), 0)).collect(),
        }
    }
}

#[cfg(test)]
#[path = "night_tests.rs"]
mod tests;
