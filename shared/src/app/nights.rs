//! The nights over time (see `domain::night`). Each reconciler pass keeps a point of tonight
//! and of last night while an intent of theirs is open, and writes a night's summary once its
//! last intent has ended; the nightly run's start writes any summary still owed. The operator
//! page and `report --since` read them back.
//!
//! What a pass reads: the night's intents, from the status index (every intent changed since
//! last night began: [`SCAN`] at most per status), the night's kept tallies, the job slots of
//! each model, and the results of each intent that ended since the last pass, once, for its
//! tally (`domain::night::Tally`).
//!
//! Replay: a point is keyed by its pass's time, a tally by its intent and a summary by its
//! night, each computed from what is stored, so a replayed pass writes the same items again.
//! A summary is rewritten only when the night changed (another intent of the day ended later).

use crate::app::{Deps, StageError};
use crate::domain::ids::IntentId;
use crate::domain::intent::BatchIntent;
use crate::domain::night::{self, Answered, NightPoint, NightSummary, Tally};
use crate::domain::night::{NIGHTS_SHOWN, POINTS_KEPT_DAYS};
use crate::domain::results::ImageResult;
use crate::domain::status::IntentStatus;
use crate::domain::usage::Usage;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::{BTreeMap, HashMap};

/// Intents read per status per pass: a night of more is followed on its first this many.
pub const SCAN: usize = 20_000;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NightsReport {
    pub points: usize,
    pub summaries: usize,
}

/// One night as the operator page draws it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NightView {
    pub night: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<NightSummary>,
    /// Oldest first; an ended night's last point is its summary's figures.
    pub points: Vec<NightPoint>,
}

/// The reconciler's part: a point of each followed night still open, a summary of each that
/// has ended and has none yet (or an outdated one).
pub async fn record_pass(deps: &Deps) -> Result<NightsReport, StageError> {
    let now = deps.clock.now();
    let mut report = NightsReport::default();
    for (day, intents) in &followed(deps, now).await? {
        let tallies = tallies(deps, *day, intents).await?;
        if tallies.iter().all(|t| t.ended_at.is_some()) {
            report.summaries += usize::from(summarize(deps, *day, &tallies).await?);
            continue;
        }
        let p = night::point(&tallies, now, slots(deps).await?);
        let keep_until = now + Duration::days(POINTS_KEPT_DAYS);
        deps.nights.put_point(*day, &p, keep_until).await?;
        report.points += 1;
    }
    Ok(report)
}

/// The nightly run's start: the summaries owed for nights before today.
pub async fn close_ended(deps: &Deps) -> Result<usize, StageError> {
    let now = deps.clock.now();
    let mut written = 0;
    for (day, intents) in followed(deps, now).await? {
        if day < now.date_naive() && intents.iter().all(|i| i.status.is_terminal()) {
            let tallies = tallies(deps, day, &intents).await?;
            written += usize::from(summarize(deps, day, &tallies).await?);
        }
    }
    Ok(written)
}

/// The intents of last night and tonight, by night (shared jobs left out: their records are
/// their members').
async fn followed(
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<BTreeMap<NaiveDate, Vec<BatchIntent>>, StageError> {
    let first = now.date_naive() - Duration::days(1);
    let since = first.and_time(chrono::NaiveTime::MIN).and_utc();
    let mut by_night: BTreeMap<NaiveDate, Vec<BatchIntent>> = BTreeMap::new();
    for status in IntentStatus::ALL {
        for intent in deps.store.list_changed_since(status, since, SCAN).await? {
            if night::counts_in_night(&intent) && night::night_of(&intent) >= first {
                by_night
                    .entry(night::night_of(&intent))
                    .or_default()
                    .push(intent);
            }
        }
    }
    Ok(by_night)
}

/// Each intent's tally: an ended one's as kept (tallied from its results and kept the first
/// time it is seen ended), an open one's from its jobs.
async fn tallies(
    deps: &Deps,
    day: NaiveDate,
    intents: &[BatchIntent],
) -> Result<Vec<Tally>, StageError> {
    let mut kept: HashMap<IntentId, Tally> = deps
        .nights
        .tallies(day)
        .await?
        .into_iter()
        .map(|t| (t.intent_id.clone(), t))
        .collect();
    let settings = &deps.settings;
    let mut out = Vec::with_capacity(intents.len());
    for intent in intents {
        if !intent.status.is_terminal() {
            let price = settings.price_for(&intent.model_id);
            out.push(Tally::running(
                intent,
                price.as_ref(),
                settings.batch_discount,
            ));
            continue;
        }
        match kept.remove(&intent.intent_id) {
            Some(t) if t.ended_at == Some(intent.updated_at) => out.push(t),
            _ => {
                let mut usage = Usage::default();
                let mut answered = Answered::default();
                let count = |r: &ImageResult| answered.count(r);
                crate::app::usage::add_intent_and(deps, intent, &mut usage, count).await?;
                let t = Tally::ended(intent, answered, usage);
                let keep_until = deps.clock.now() + Duration::days(POINTS_KEPT_DAYS);
                deps.nights.put_tally(day, &t, keep_until).await?;
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Job slots in use per model.
async fn slots(deps: &Deps) -> Result<BTreeMap<String, u32>, StageError> {
    Ok(crate::app::slots::held_per_model(deps)
        .await?
        .into_iter()
        .map(|(model, taken, _)| (model.to_string(), taken))
        .collect())
}

/// Writes the ended night's summary, and its last point, unless the one written already says
/// the same. True if written.
async fn summarize(deps: &Deps, day: NaiveDate, tallies: &[Tally]) -> Result<bool, StageError> {
    let points = deps.nights.points(day).await?;
    let Some(summary) = night::summarize(day, tallies, &points) else {
        return Ok(false);
    };
    if deps.nights.summaries(&[day]).await?.first() == Some(&summary) {
        return Ok(false);
    }
    let keep_until = deps.clock.now() + Duration::days(POINTS_KEPT_DAYS);
    deps.nights
        .put_point(day, &summary.final_point(), keep_until)
        .await?;
    deps.nights.put_summary(&summary).await?;
    tracing::info!(night = %day, images = summary.images, met = ?summary.met, "night summarized");
    Ok(true)
}

/// The summaries of the nights from `since` to `until` (both included), newest first.
pub async fn summaries(
    deps: &Deps,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<NightSummary>, StageError> {
    let mut days: Vec<NaiveDate> = since.iter_days().take_while(|d| *d <= until).collect();
    days.reverse();
    Ok(deps.nights.summaries(&days).await?)
}

/// The last [`NIGHTS_SHOWN`] nights' summaries up to today, newest first.
pub async fn last_nights(deps: &Deps) -> Result<Vec<NightSummary>, StageError> {
    let today = deps.clock.now().date_naive();
    summaries(deps, today - Duration::days(NIGHTS_SHOWN as i64 - 1), today).await
}

/// One night: its summary, if it has ended, and its points.
pub async fn view(deps: &Deps, day: NaiveDate) -> Result<NightView, StageError> {
    let summary = deps.nights.summaries(&[day]).await?.pop();
    let points = deps.nights.points(day).await?;
    Ok(NightView {
        night: day,
        summary,
        points,
    })
}
