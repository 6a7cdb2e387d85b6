//! A re-run job's manifest: the unanswered records of a job that ended short, read back from
//! that job's own input parts (never whole in memory), into new jobs of the same intent.

use crate::app::manifest::writer::{relocate, ManifestWriter};
use crate::app::{Deps, StageError};
use crate::domain::bedrock::{client_token, job_name};
use crate::domain::family::{self, ImageSource};
use crate::domain::intent::{BatchIntent, BatchJob, MappedRecord};
use futures::StreamExt;
use std::collections::HashMap;

/// Just the record id of a manifest line.
#[derive(serde::Deserialize)]
struct LineId {
    #[serde(rename = "recordId")]
    record_id: String,
}

/// Writes the re-run jobs of `parent`'s records in `wanted` (by the id each has in the
/// parent's lines): the same lines (S3Location images copied into the new job's folder), a
/// short tail padded to the minimum (not for `on_demand` jobs, a deadline's redrive), a
/// record map per job, numbered after the intent's jobs
/// and named with the next attempt. Keys are deterministic, so a replay rewrites the same
/// objects.
pub(crate) async fn write_rerun(
    deps: &Deps,
    intent: &BatchIntent,
    parent: &BatchJob,
    wanted: &HashMap<String, MappedRecord>,
    on_demand: bool,
) -> Result<Vec<BatchJob>, StageError> {
    let family =
        family::for_model_in(&intent.model_id, &deps.settings.model_families).ok_or_else(|| {
            StageError::Permanent(format!("no record family for {}", intent.model_id))
        })?;
    let first = intent.jobs.iter().map(|j| j.job_no).max().unwrap_or(0) + 1;
    let attempt = parent.attempt + 1;
    let mut out = ManifestWriter::new(deps, &intent.job_id, &intent.model_id, wanted.len() as u64)
        .for_rerun(first, parent.job_no, attempt);
    let mut map: Vec<(u32, MappedRecord)> = Vec::new();
    for part in &parent.parts {
        let copied = copy_wanted(deps, &mut out, family, &part.uri, wanted, &mut map).await;
        if let Err(e) = copied {
            out.abort().await;
            return Err(e);
        }
    }
    // An on-demand re-run has no minimum to pad to.
    let mut jobs = out.finish((!on_demand).then_some(family)).await?;
    for (k, job) in (1u32..).zip(jobs.iter_mut()) {
        // Named after the parent, like the job's folders: never another plan's map.
        let uri = crate::domain::bedrock::S3Uri::object(
            &deps.settings.manifests_bucket,
            &crate::domain::ids::ObjectKey::parse(&format!(
                "manifests/{}/records/r{:03}a{attempt}j{k:02}.jsonl",
                intent.job_id, parent.job_no
            ))
            .map_err(|e| StageError::Permanent(format!("a record map key: {e}")))?,
        );
        crate::app::manifest::shared::write_record_map(deps, uri, job, &map).await?;
        job.attempt = attempt;
        job.job_name = job_name(&intent.job_id, job.job_no, attempt);
        job.client_token = client_token(&intent.job_id, job.job_no, attempt);
        job.rerun_of = Some(parent.job_no);
        job.on_demand = on_demand;
    }
    Ok(jobs)
}

/// Copies the lines of one input part whose record is wanted.
async fn copy_wanted(
    deps: &Deps,
    out: &mut ManifestWriter<'_>,
    family: &dyn family::RecordFamily,
    part: &crate::domain::bedrock::S3Uri,
    wanted: &HashMap<String, MappedRecord>,
    map: &mut Vec<(u32, MappedRecord)>,
) -> Result<(), StageError> {
    let mut lines = deps.objects.lines(part).await?;
    while let Some(line) = lines.next().await {
        let line = line?;
        let Ok(id) = serde_json::from_str::<LineId>(&line) else {
            continue;
        };
        let Some(record) = wanted.get(&id.record_id) else {
            continue;
        };
        let line = format!("{line}\n");
        let line = match family.image_source() {
            ImageSource::Inline => line,
            // The same-folder rule: the new job may only reference images in its own folder.
            ImageSource::S3Location => relocate(deps, out, &line, &record.record_id).await?,
        };
        out.push(line.as_bytes()).await?;
        let job_no = out.jobs.last().map_or(0, |j| j.job_no);
        map.push((job_no, record.clone()));
    }
    Ok(())
}
