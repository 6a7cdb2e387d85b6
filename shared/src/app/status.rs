//! The status read behind `statusUrl`: one intent as its owner sees it. Another user's job is
//! reported exactly like a missing one, so no existence leaks.

use crate::app::Deps;
use crate::app::StageError;
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::{JobId, UserId};
use crate::domain::intent::{BatchIntent, ProcessingPath};
use crate::domain::results::ImageResult;
use crate::domain::settings::{BelowMinimum, CostEstimate};
use crate::domain::status::IntentStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: String,
    pub intent_id: String,
    pub status: IntentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub images: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<ManifestSummary>,
    pub bedrock_jobs: Vec<BedrockJobView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// How the records run: undecided, own_job, pool, shared_job or on_demand.
    pub path: ProcessingPath,
    pub progress: Progress,
    /// Batch against on-demand cost of the accepted images (configured prices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<CostEstimate>,
    /// Attempts a failed record may get in all (each result shows its own `attempts`).
    pub max_record_attempts: u32,
    /// Present while (or after) the intent waited in its model's pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolView>,
    /// When the client wants every result, if it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When the plan says the results are ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<DateTime<Utc>>,
    /// Present when some of its images were copies of earlier ones: what answering them from
    /// those saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated: Option<Deduplicated>,
}

/// Exact copies answered from earlier images, and the tokens and USD their answers did not
/// cost again (from the copies answered so far).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deduplicated {
    pub images: u64,
    /// Of those, copies whose first image (in another request still running) has no answer
    /// yet: each is answered when its first is, even after this request ended.
    pub waiting: u64,
    pub tokens_saved: u64,
    pub usd_saved: f64,
}

/// Where a pooled intent waits, and its shared job once sealed (None for any other intent).
async fn pool_view(deps: &Deps, intent: &BatchIntent) -> Result<Option<PoolView>, StageError> {
    let settings = &deps.settings;
    Ok(match &intent.pool {
        None => None,
        Some(p) => {
            let shared_job = match &p.sealed_into {
                None => None,
                Some(id) => deps.store.get(id).await?.map(|s| SharedJobView {
                    status: s.status,
                    bedrock_jobs: s
                        .jobs
                        .iter()
                        .map(|j| SharedBedrockJobView {
                            job_no: j.job_no,
                            status: j.status.map(|st| st.as_str().to_owned()),
                            on_demand: j.on_demand,
                            stopped_at_cutoff: j.deadline_stop_at,
                        })
                        .collect(),
                }),
            };
            Some(PoolView {
                waiting_since: p.since,
                records: p.records,
                min_records_per_job: settings.quotas_for(&intent.model_id).min_records_per_job,
                deadline: p.since + chrono::Duration::seconds(settings.pool_deadline_secs),
                below_minimum_policy: settings.below_minimum,
                shared_job,
            })
        }
    })
}

/// What an intent's copies saved, read from their results (only for an intent with copies).
async fn deduplicated(
    deps: &Deps,
    intent: &BatchIntent,
) -> Result<Option<Deduplicated>, StageError> {
    if intent.duplicates == 0 {
        return Ok(None);
    }
    let mut usage = crate::domain::usage::Usage::default();
    crate::app::usage::add_intent(deps, intent, &mut usage).await?;
    let usage = usage.rounded();
    Ok(Some(Deduplicated {
        images: intent.duplicates,
        waiting: intent.duplicates.saturating_sub(usage.deduplicated),
        tokens_saved: usage.tokens_saved,
        usd_saved: usage.usd_saved,
    }))
}

/// Where the images stand. Succeeded and failed are known once the job (or on-demand run)
/// ended; until then the accepted images are pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Rejected before any model saw them (see the per-image results).
    pub skipped: u64,
    /// Exact copies of images the user sent before, answered from them (`duplicateOf`).
    #[serde(default)]
    pub duplicates: u64,
    pub pending: u64,
    /// Answered, but an answer failed a receipt check (`needsReview`): among `succeeded`.
    #[serde(default)]
    pub flagged: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolView {
    pub waiting_since: DateTime<Utc>,
    pub records: u64,
    pub min_records_per_job: u64,
    /// When the below-minimum policy applies if the pool has not filled.
    pub deadline: DateTime<Utc>,
    pub below_minimum_policy: BelowMinimum,
    /// The shared job, once sealed: its status and Bedrock jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_job: Option<SharedJobView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// A pooled intent's view of its shared job: its status only. How many members it has and
/// what its Bedrock jobs hold are other users' activity, not this caller's business.
pub struct SharedJobView {
    pub status: IntentStatus,
    /// Its Bedrock jobs' status only, and how each ran (a deadline's stop, on-demand).
    pub bedrock_jobs: Vec<SharedBedrockJobView>,
}

/// One job of a shared job, as a member sees it: no records, no counts (other users').
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedBedrockJobView {
    pub job_no: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at_cutoff: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BedrockJobView {
    pub job_no: u32,
    /// Records Bedrock runs, pad records included.
    pub records: u64,
    /// Pad records bringing a short last job up to Bedrock's minimum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pad_records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Each input file of the job (Bedrock reports progress per job, not per file).
    pub parts: Vec<PartView>,
    /// The job's own counts from `manifest.json.out`, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<ManifestSummary>,
    /// Bedrock's record counts while the job runs (GetModelInvocationJob).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::domain::bedrock::JobProgress>,
    /// When the job times out if it has not ended (`jobExpirationTime`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The job whose unanswered records this job re-runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<u32>,
    /// Its records run on-demand, not in a Bedrock batch job (the deadline planner sent them,
    /// or the job still waited for a slot at its cut-off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    /// When it was stopped at its deadline's cut-off; its unanswered records were redriven
    /// on-demand (each result says `onDemand`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at_cutoff: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartView {
    pub part: u32,
    pub records: u64,
    pub bytes: u64,
}

pub async fn job_status(
    deps: &Deps,
    caller: &UserId,
    job_id: &JobId,
) -> Result<Option<JobView>, StageError> {
    let Some(intent) = deps.store.get_by_job_id(job_id).await? else {
        return Ok(None);
    };
    if &intent.user_id != caller {
        return Ok(None);
    }
    Ok(Some(view(deps, intent).await?))
}

/// One page of a user's jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A malformed cursor: the client must start again without one.
#[derive(Debug, thiserror::Error)]
#[error("must be the nextCursor of a previous page")]
pub struct BadCursor;

/// Why a list has no page to show.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The `cursor` given is not one a page handed out.
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    /// No such job, or another user's (the same answer, so nothing about existence leaks).
    #[error("no job {0}")]
    NoJob(JobId),
    #[error(transparent)]
    Stage(#[from] StageError),
}

impl From<crate::ports::PortError> for ListError {
    fn from(e: crate::ports::PortError) -> Self {
        Self::Stage(e.into())
    }
}

/// The list's cursor: a keyset position, `{createdAt as Unix microseconds}.{intent key}`. Any
/// string of that shape is a position (the jobs created before it), so the API takes exactly
/// what its OpenAPI pattern describes.
fn encode_cursor(created: DateTime<Utc>, intent: &crate::domain::ids::IntentId) -> String {
    format!("{}.{}", created.timestamp_micros().max(0), intent)
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, crate::domain::ids::IntentId), BadCursor> {
    let (micros, key) = cursor.split_once('.').ok_or(BadCursor)?;
    if micros.is_empty() || micros.len() > 16 || !micros.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadCursor);
    }
    let micros: i64 = micros.parse().map_err(|_| BadCursor)?;
    let created = DateTime::<Utc>::from_timestamp_micros(micros).ok_or(BadCursor)?;
    let key = crate::domain::ids::IntentId::parse(key).map_err(|_| BadCursor)?;
    Ok((created, key))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn job_views(jobs: &[crate::domain::intent::BatchJob]) -> Vec<BedrockJobView> {
    jobs.iter()
        .map(|j| BedrockJobView {
            job_no: j.job_no,
            records: j.records(),
            pad_records: j.pad_records,
            status: j.status.map(|s| s.as_str().to_owned()),
            parts: j
                .parts
                .iter()
                .map(|p| PartView {
                    part: p.part,
                    records: p.records,
                    bytes: p.bytes,
                })
                .collect(),
            counts: j.summary,
            progress: j.progress,
            expires_at: j.expires_at,
            rerun_of: j.rerun_of,
            on_demand: j.on_demand,
            stopped_at_cutoff: j.deadline_stop_at,
        })
        .collect()
}

async fn view(deps: &Deps, intent: BatchIntent) -> Result<JobView, StageError> {
    let settings = &deps.settings;
    let (_, not_sent) = intent.image_counts();
    let total = intent.image_total();
    let duplicates = intent.duplicates;
    let skipped = (not_sent as u64).saturating_sub(duplicates);
    let (succeeded, failed) = match &intent.counts {
        Some(c) => (
            c.success_record_count,
            c.total_record_count.saturating_sub(c.success_record_count),
        ),
        None => (0, 0),
    };
    let pending = if intent.status.is_terminal() {
        0
    } else {
        total.saturating_sub(skipped + duplicates + succeeded + failed)
    };
    let pool = pool_view(deps, &intent).await?;
    Ok(JobView {
        job_id: intent.job_id.to_string(),
        intent_id: intent.client_id().to_string(),
        status: intent.status,
        created_at: intent.created_at,
        updated_at: intent.updated_at,
        images: total as usize,
        counts: intent.counts,
        // A pooled intent's planned job is only where its records wait; it never runs.
        bedrock_jobs: if intent.pool.is_some() {
            Vec::new()
        } else {
            job_views(&intent.jobs)
        },
        failure_message: intent.failure_message.clone(),
        path: intent.path(),
        progress: Progress {
            total,
            succeeded,
            failed,
            skipped,
            duplicates,
            pending,
            flagged: intent.counts.map_or(0, |c| c.flagged_record_count),
        },
        // Copies of earlier images are left out: no model is sent them.
        estimated_cost: settings.estimate_cost(
            &intent.model_id,
            total.saturating_sub(skipped + duplicates) as usize,
        ),
        deduplicated: deduplicated(deps, &intent).await?,
        max_record_attempts: settings.max_record_attempts,
        pool,
        deadline: intent.deadline,
        estimated_completion: intent.estimated_completion,
    })
}

/// The caller's own jobs, newest first, optionally only those in `status`. The cursor is the
/// last item's keyset position, `{createdAt µs}.{key}` (see [`encode_cursor`]).
pub async fn list_jobs(
    deps: &Deps,
    caller: &UserId,
    status: Option<IntentStatus>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<JobPage, ListError> {
    let mut after = cursor.map(decode_cursor).transpose()?;
    let mut jobs = Vec::new();
    // Filtering by status happens after the query, so keep reading pages until this one is
    // full or the user's intents run out (bounded: each read is one index page).
    for _ in 0..20 {
        // Index read (byUserCreated, may lag): the list may miss an intent for a moment after
        // its 202, or show an older status; it only reads, and the API documents it. A job's
        // own route (`statusUrl`) is the consistent read.
        let batch = deps
            .store
            .list_by_user(caller, after.clone(), limit)
            .await?;
        let exhausted = batch.len() < limit;
        for intent in batch {
            after = Some((intent.created_at, intent.intent_id.clone()));
            if status.is_none_or(|s| s == intent.status) {
                jobs.push(view(deps, intent).await?);
                if jobs.len() == limit {
                    break;
                }
            }
        }
        if exhausted || jobs.len() == limit {
            let next_cursor = (jobs.len() == limit)
                .then(|| after.as_ref().map(|(t, id)| encode_cursor(*t, id)))
                .flatten();
            return Ok(JobPage { jobs, next_cursor });
        }
    }
    Ok(JobPage {
        jobs,
        next_cursor: after.as_ref().map(|(t, id)| encode_cursor(*t, id)),
    })
}

/// One page of a job's per-image results, in record order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultPage {
    pub job_id: String,
    pub results: Vec<crate::domain::results::ImageResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of the results of the caller's job `job_id`, after `cursor` (the last recordId of
/// the page before); with `needs_review`, only results whose `needsReview` is that. A filtered
/// read takes store pages until this one is full or 20 pages were read, so a page may come
/// back short with a `nextCursor` to go on from.
pub async fn list_results(
    deps: &Deps,
    caller: &UserId,
    job_id: &JobId,
    (limit, cursor): (usize, Option<&str>),
    needs_review: Option<bool>,
) -> Result<ResultPage, ListError> {
    let intent = deps.store.get_by_job_id(job_id).await?;
    let Some(intent) = intent.filter(|i| &i.user_id == caller) else {
        return Err(ListError::NoJob(job_id.clone()));
    };
    // The results' cursor is the last recordId of the page before: any recordId is a position.
    let mut after = cursor
        .map(crate::domain::ids::RecordId::parse)
        .transpose()
        .map_err(|_| BadCursor)?;
    let mut results = Vec::new();
    let mut more = false;
    for _ in 0..20 {
        let page = deps
            .results
            .list_results(&intent.intent_id, after.as_ref(), limit)
            .await?;
        more = page.len() == limit;
        after = page.last().map(|r| r.record_id.clone()).or(after);
        let wanted = |r: &ImageResult| {
            needs_review.is_none_or(|want| r.needs_review.unwrap_or(false) == want)
        };
        results.extend(page.into_iter().filter(wanted));
        if !more || results.len() >= limit {
            break;
        }
    }
    results.truncate(limit);
    let next_cursor = if results.len() == limit {
        results.last().map(|r| r.record_id.to_string())
    } else {
        more.then(|| after.map(|a| a.to_string())).flatten()
    };
    Ok(ResultPage {
        job_id: job_id.to_string(),
        results,
        next_cursor,
    })
}
