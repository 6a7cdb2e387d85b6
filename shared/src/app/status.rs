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
    Ok(Some(JobView {
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
    }))
}
