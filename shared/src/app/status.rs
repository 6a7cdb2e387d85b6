//! The status read behind `statusUrl`: one intent as its owner sees it. Another user's job is
//! reported exactly like a missing one, so no existence leaks.

use super::StageError;
use crate::app::Deps;
use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::{JobId, UserId};
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BedrockJobView {
    pub job_no: u32,
    pub records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
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
    Ok(Some(view(intent)))
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
#[error("cursor is not one this API issued")]
pub struct BadCursor;

fn encode_cursor(created: DateTime<Utc>, intent: &crate::domain::ids::IntentId) -> String {
    use base64::Engine as _;
    let raw = serde_json::json!([created, intent]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, crate::domain::ids::IntentId), BadCursor> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| BadCursor)?;
    serde_json::from_slice(&raw).map_err(|_| BadCursor)
}

fn view(intent: crate::domain::intent::BatchIntent) -> JobView {
    JobView {
        job_id: intent.job_id.to_string(),
        intent_id: intent.intent_id.to_string(),
        status: intent.status,
        created_at: intent.created_at,
        updated_at: intent.updated_at,
        images: intent.images.len().max(intent.selection.len_hint()),
        counts: intent.counts,
        bedrock_jobs: intent
            .jobs
            .iter()
            .map(|j| BedrockJobView {
                job_no: j.job_no,
                records: j.records(),
                status: j.status.map(|s| s.as_str().to_owned()),
            })
            .collect(),
        failure_message: intent.failure_message,
    }
}

/// The caller's own jobs, newest first, optionally only those in `status`. The cursor is
/// opaque to clients (base64 of the last item's creation time and id).
pub async fn list_jobs(
    deps: &Deps,
    caller: &UserId,
    status: Option<IntentStatus>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Result<JobPage, BadCursor>, StageError> {
    let mut after = match cursor.map(decode_cursor).transpose() {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let mut jobs = Vec::new();
    // Filtering by status happens after the query, so keep reading pages until this one is
    // full or the user's intents run out (bounded: each read is one index page).
    for _ in 0..20 {
        let batch = deps
            .store
            .list_by_user(caller, after.clone(), limit)
            .await?;
        let exhausted = batch.len() < limit;
        for intent in batch {
            after = Some((intent.created_at, intent.intent_id.clone()));
            if status.is_none_or(|s| s == intent.status) {
                jobs.push(view(intent));
                if jobs.len() == limit {
                    break;
                }
            }
        }
        if exhausted || jobs.len() == limit {
            let next_cursor = (jobs.len() == limit)
                .then(|| after.as_ref().map(|(t, id)| encode_cursor(*t, id)))
                .flatten();
            return Ok(Ok(JobPage { jobs, next_cursor }));
        }
    }
    Ok(Ok(JobPage {
        jobs,
        next_cursor: after.as_ref().map(|(t, id)| encode_cursor(*t, id)),
    }))
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

/// The caller's job's results after `cursor` (opaque: base64 of the last record id), or
/// `None` for a missing job or another user's.
pub async fn list_results(
    deps: &Deps,
    caller: &UserId,
    job_id: &JobId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Option<Result<ResultPage, BadCursor>>, StageError> {
    use base64::Engine as _;
    let Some(intent) = deps.store.get_by_job_id(job_id).await? else {
        return Ok(None);
    };
    if &intent.user_id != caller {
        return Ok(None);
    }
    let after = match cursor {
        None => None,
        Some(c) => {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| crate::domain::ids::RecordId::parse(&s).ok());
            match decoded {
                Some(r) => Some(r),
                None => return Ok(Some(Err(BadCursor))),
            }
        }
    };
    let results = deps
        .results
        .list_results(&intent.intent_id, after.as_ref(), limit)
        .await?;
    let next_cursor = (results.len() == limit)
        .then(|| results.last())
        .flatten()
        .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.record_id.as_str()));
    Ok(Some(Ok(ResultPage {
        job_id: job_id.to_string(),
        results,
        next_cursor,
    })))
}
