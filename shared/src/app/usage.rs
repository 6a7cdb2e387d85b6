//! Usage: what a user's batches really cost, per day, from each result's own tokens at the
//! configured prices (`MODEL_PRICES`, the catalog's by default, dated in `domain::catalog`).
//! An intent counts on the UTC day it was created; a shared job's records count for their
//! members (its results are theirs).

use crate::app::{Deps, StageError};
use crate::domain::ids::UserId;
use crate::domain::intent::BatchIntent;
use crate::domain::usage::{DayUsage, Usage};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Most days one usage answer covers.
pub const MAX_DAYS: i64 = 31;

/// Results read per page.
const PAGE: usize = 1_000;

/// Adds every result of `intent` to `usage`.
pub async fn add_intent(
    deps: &Deps,
    intent: &BatchIntent,
    usage: &mut Usage,
) -> Result<(), StageError> {
    add_intent_and(deps, intent, usage, |_| {}).await
}

/// Adds every result of `intent` to `usage`, and shows each to `each` (one read of them).
pub async fn add_intent_and(
    deps: &Deps,
    intent: &BatchIntent,
    usage: &mut Usage,
    mut each: impl FnMut(&crate::domain::results::ImageResult) + Send,
) -> Result<(), StageError> {
    let price = deps.settings.price_for(&intent.model_id);
    let discount = deps.settings.batch_discount;
    let mut after = None;
    loop {
        let page = deps
            .results
            .list_results(&intent.intent_id, after.as_ref(), PAGE)
            .await?;
        for r in &page {
            // A re-ask to a stronger model (`model:<id>`) is paid at that model's price.
            let reask_price = r
                .reask
                .as_ref()
                .and_then(|a| a.policy.strip_prefix("model:"))
                .and_then(|id| crate::domain::ids::ModelId::parse(id).ok())
                .and_then(|m| deps.settings.price_for(&m));
            usage.add(r, (price.as_ref(), reask_price.as_ref()), discount);
            each(r);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.record_id.clone()),
            _ => return Ok(()),
        }
    }
}

/// `user`'s usage on each day from `from` to `to` (both included), days without any too.
pub async fn user_usage(
    deps: &Deps,
    user: &UserId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayUsage>, StageError> {
    let mut days: BTreeMap<NaiveDate, DayUsage> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|d| (d, DayUsage::new(d)))
        .collect();
    let mut after = None;
    'pages: loop {
        // Index read (may lag): an intent created a moment ago may be missed, as in the list.
        let page = deps.store.list_by_user(user, after.clone(), 200).await?;
        for intent in &page {
            let day = intent.created_at.date_naive();
            if day < from {
                break 'pages;
            }
            if let Some(usage) = days.get_mut(&day) {
                add_intent(deps, intent, &mut usage.usage).await?;
            }
        }
        match page.last() {
            Some(last) if page.len() == 200 => {
                after = Some((last.created_at, last.intent_id.clone()))
            }
            _ => break,
        }
    }
    Ok(days.into_values().map(DayUsage::rounded).collect())
}

/// Every user's usage on `day`, from `intents` (the embedded CLI reads them all): one line a
/// user, shared jobs left out (their results are their members').
pub async fn day_report(
    deps: &Deps,
    intents: &[BatchIntent],
    day: NaiveDate,
) -> Result<BTreeMap<UserId, DayUsage>, StageError> {
    let mut users: BTreeMap<UserId, DayUsage> = BTreeMap::new();
    for intent in intents
        .iter()
        .filter(|i| i.created_at.date_naive() == day && !i.is_pool_job())
    {
        let usage = users
            .entry(intent.user_id.clone())
            .or_insert_with(|| DayUsage::new(day));
        add_intent(deps, intent, &mut usage.usage).await?;
    }
    Ok(users.into_iter().map(|(u, d)| (u, d.rounded())).collect())
}

/// The usage answer: each day, their sum, and the prices behind the USD.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DayUsage>,
    pub total: Usage,
    /// Batch's share of the on-demand price.
    pub batch_discount: f64,
    /// When and where the default prices were read (`MODEL_PRICES` overrides them).
    pub prices_as_of: &'static str,
    pub prices_source: &'static str,
}

impl UsageReport {
    pub fn new(deps: &Deps, from: NaiveDate, to: NaiveDate, days: Vec<DayUsage>) -> Self {
        let mut total = Usage::default();
        for d in &days {
            total.merge(&d.usage);
        }
        Self {
            from,
            to,
            days,
            total: total.rounded(),
            batch_discount: deps.settings.batch_discount,
            prices_as_of: crate::domain::catalog::PRICES_AS_OF,
            prices_source: crate::domain::catalog::PRICES_SOURCE,
        }
    }
}
