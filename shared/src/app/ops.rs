//! What an operator sees of the night (`serve`'s `/ops` page): pools filling against the job
//! minimum, Bedrock jobs per model against the slots, intents by status and those at risk of
//! their deadline, and tonight's cost. Read through the same ports as the API (index reads,
//! so a write of the last seconds may show on the next refresh).

use crate::app::{Deps, StageError};
use crate::domain::intent::BatchIntent;
use crate::domain::status::IntentStatus;
use crate::domain::usage::DayUsage;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Intents read per status: a page's worth, not a night's census.
pub const PER_STATUS: usize = 1_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpsView {
    pub now: DateTime<Utc>,
    pub pools: Vec<PoolRow>,
    pub models: Vec<ModelRow>,
    pub jobs: Vec<JobRow>,
    /// How many intents are in each status (at most [`PER_STATUS`] read each).
    pub intents_by_status: BTreeMap<String, usize>,
    pub at_risk: Vec<IntentRow>,
    /// Today's (UTC) batches, priced from their results' real tokens.
    pub tonight: DayUsage,
}

/// One model's pool: small intents waiting for a shared job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRow {
    pub model: String,
    pub members: usize,
    pub records: u64,
    pub min_records_per_job: u64,
    /// When the below-minimum policy applies if the pool has not filled.
    pub seal_deadline: DateTime<Utc>,
}

/// One model's job slots.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRow {
    pub model: String,
    pub slots_used: u32,
    pub slots: u32,
}

/// One Bedrock (or on-demand) job of an open intent, or of one of tonight's that ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRow {
    pub job_id: String,
    pub user: String,
    pub model: String,
    pub job_no: u32,
    pub status: String,
    pub records: u64,
    pub processed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrock_job_arn: Option<String>,
    pub on_demand: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at_cutoff: Option<DateTime<Utc>>,
}

/// An intent that may miss its deadline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentRow {
    pub job_id: String,
    pub user: String,
    pub status: IntentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<DateTime<Utc>>,
}

/// The night as it stands.
pub async fn snapshot(deps: &Deps) -> Result<OpsView, StageError> {
    let now = deps.clock.now();
    let mut by_status: std::collections::HashMap<IntentStatus, Vec<BatchIntent>> =
        std::collections::HashMap::new();
    for status in IntentStatus::ALL {
        let intents = deps.store.list_by_status(status, now, PER_STATUS).await?;
        by_status.insert(status, intents);
    }
    let open: Vec<&BatchIntent> = [
        IntentStatus::ManifestReady,
        IntentStatus::Submitted,
        IntentStatus::InProgress,
    ]
    .iter()
    .filter_map(|s| by_status.get(s))
    .flatten()
    .collect();
    let mut tonight = DayUsage::new(now.date_naive());
    for intent in by_status.values().flatten() {
        if intent.created_at.date_naive() == tonight.day && !intent.is_pool_job() {
            crate::app::usage::add_intent(deps, intent, &mut tonight.usage).await?;
        }
    }
    Ok(OpsView {
        now,
        pools: pools(
            deps,
            by_status
                .get(&IntentStatus::Pooled)
                .map_or(&[], Vec::as_slice),
        ),
        models: models(deps).await?,
        jobs: open
            .iter()
            .copied()
            .chain(ended_today(&by_status, tonight.day))
            .flat_map(job_rows)
            .collect(),
        intents_by_status: by_status
            .iter()
            .map(|(s, v)| (s.as_str().to_owned(), v.len()))
            .collect(),
        at_risk: open
            .iter()
            .filter(|i| i.at_risk(now))
            .map(|i| IntentRow {
                job_id: i.job_id.to_string(),
                user: i.user_id.to_string(),
                status: i.status,
                deadline: i.deadline,
                estimated_completion: i.estimated_completion,
            })
            .collect(),
        tonight: tonight.rounded(),
    })
}

/// Intents of `day` that have ended and ran jobs of their own or shared ones (a pool member's
/// planned job never runs): tonight's finished jobs stay listed.
fn ended_today(
    by_status: &std::collections::HashMap<IntentStatus, Vec<BatchIntent>>,
    day: chrono::NaiveDate,
) -> impl Iterator<Item = &BatchIntent> {
    by_status
        .iter()
        .filter(|(s, _)| s.is_terminal())
        .flat_map(|(_, v)| v)
        .filter(move |i| i.pool.is_none() && i.created_at.date_naive() == day)
}

/// Waiting (not yet sealed) pooled intents, per model.
fn pools(deps: &Deps, pooled: &[BatchIntent]) -> Vec<PoolRow> {
    let mut rows: BTreeMap<String, PoolRow> = BTreeMap::new();
    let wait = chrono::Duration::seconds(deps.settings.pool_deadline_secs);
    for m in pooled {
        let Some(p) = m.pool.as_ref().filter(|p| p.sealed_into.is_none()) else {
            continue;
        };
        let row = rows
            .entry(m.model_id.to_string())
            .or_insert_with(|| PoolRow {
                model: m.model_id.to_string(),
                members: 0,
                records: 0,
                min_records_per_job: deps.settings.quotas_for(&m.model_id).min_records_per_job,
                seal_deadline: p.since + wait,
            });
        row.members += 1;
        row.records += p.records;
        row.seal_deadline = row.seal_deadline.min(p.since + wait);
    }
    rows.into_values().collect()
}

/// Slots used per allowed model.
async fn models(deps: &Deps) -> Result<Vec<ModelRow>, StageError> {
    Ok(crate::app::slots::held_per_model(deps)
        .await?
        .into_iter()
        .map(|(model, slots_used, slots)| ModelRow {
            model: model.to_string(),
            slots_used,
            slots,
        })
        .collect())
}

/// An open intent's jobs.
fn job_rows(i: &BatchIntent) -> Vec<JobRow> {
    i.jobs
        .iter()
        .map(|j| JobRow {
            job_id: i.job_id.to_string(),
            user: i.user_id.to_string(),
            model: i.model_id.to_string(),
            job_no: j.job_no,
            status: j.status.map_or("waiting", |s| s.as_str()).to_owned(),
            records: j.records(),
            processed: j.summary.map_or_else(
                || j.progress.map_or(0, |p| p.processed_record_count),
                |s| s.processed_record_count,
            ),
            bedrock_job_arn: j.arn.as_ref().map(ToString::to_string),
            on_demand: j.on_demand,
            stopped_at_cutoff: j.deadline_stop_at,
        })
        .collect()
}
