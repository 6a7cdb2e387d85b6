//! What a job was given: every record by the id its manifest line carries (`REC{index}` for an
//! intent's own job, the record map's for a shared job), each with our record id, its image and
//! the intent it belongs to.

use crate::app::{Deps, StageError};
use crate::domain::ids::{IntentId, ObjectKey, RecordId};
use crate::domain::intent::{BatchIntent, BatchJob, MappedRecord};
use crate::domain::manifest::image_record_id;
use futures::StreamExt as _;
use std::collections::HashMap;

/// One record of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub record_id: RecordId,
    /// The image's index in its owner's request.
    pub index: usize,
    pub key: ObjectKey,
    /// The intent whose image it is (a shared job's member, else the job's own intent).
    pub owner: IntentId,
}

/// A job's records by the id their lines carry.
#[derive(Debug, Clone, Default)]
pub struct JobRecords {
    by_line: HashMap<String, JobRecord>,
}

impl JobRecords {
    /// The record whose line carries `line_id`.
    pub fn get(&self, line_id: &str) -> Option<&JobRecord> {
        self.by_line.get(line_id)
    }

    /// Every record with its line id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &JobRecord)> {
        self.by_line.iter()
    }

    /// Every record.
    pub fn records(&self) -> impl Iterator<Item = &JobRecord> {
        self.by_line.values()
    }

    pub fn len(&self) -> usize {
        self.by_line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_line.is_empty()
    }

    /// The line id of each record, by our record id (the one map from one to the other).
    pub fn line_ids(&self) -> HashMap<&RecordId, &str> {
        self.by_line
            .iter()
            .map(|(line, r)| (&r.record_id, line.as_str()))
            .collect()
    }

    /// The owner of each record, by our record id.
    pub fn owners(&self) -> HashMap<&RecordId, &IntentId> {
        self.records().map(|r| (&r.record_id, &r.owner)).collect()
    }
}

impl FromIterator<(String, JobRecord)> for JobRecords {
    fn from_iter<I: IntoIterator<Item = (String, JobRecord)>>(iter: I) -> Self {
        Self {
            by_line: iter.into_iter().collect(),
        }
    }
}

/// Every record `job` was given. An intent's own job takes its accepted images in order, each
/// as `REC{index}`; a shared job's come from its record map (the index is the member's).
pub async fn load(
    deps: &Deps,
    intent: &BatchIntent,
    job: &BatchJob,
) -> Result<JobRecords, StageError> {
    let Some(map) = &job.record_map else {
        let (before, taken) = record_range(intent, job);
        let images = crate::app::lists::images(deps, intent).await?;
        return Ok(images
            .into_iter()
            .filter(|i| i.rejected.is_none())
            .skip(before)
            .take(taken)
            .map(|i| {
                let record = JobRecord {
                    record_id: i.record_id,
                    index: i.index,
                    key: i.key,
                    owner: intent.intent_id.clone(),
                };
                (image_record_id(i.index), record)
            })
            .collect());
    };
    let mut out = HashMap::new();
    // Line by line: a shared job's map has a line for each of its (up to 50,000) records.
    let mut mapped = crate::app::lists::read::<MappedRecord>(deps, map).await?;
    while let Some(r) = mapped.next().await {
        let r = r?;
        // Maps from before Bedrock-format record ids kept the member's own id in the line.
        let line_id = r
            .bedrock_record_id
            .unwrap_or_else(|| r.record_id.to_string());
        let record = JobRecord {
            record_id: r.record_id,
            index: r.index,
            key: r.key,
            owner: r.intent_id,
        };
        out.insert(line_id, record);
    }
    Ok(JobRecords { by_line: out })
}

/// Which of the intent's accepted images, in order, went into `job`: (how many went into the
/// jobs before it, how many into it), as the planner split them (pads not counted).
fn record_range(intent: &BatchIntent, job: &BatchJob) -> (usize, usize) {
    let before: u64 = intent
        .jobs
        .iter()
        .filter(|j| j.job_no < job.job_no)
        .map(|j| j.records().saturating_sub(j.pad_records))
        .sum();
    (
        before as usize,
        job.records().saturating_sub(job.pad_records) as usize,
    )
}
