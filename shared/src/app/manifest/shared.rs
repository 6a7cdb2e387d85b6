//! A shared job's manifest, read back from its members' parts.

use crate::app::manifest::writer::{relocate, ManifestWriter};
use crate::app::{Deps, StageError};
use crate::domain::family::{ImageSource, RecordFamily};
use crate::domain::intent::{BatchIntent, MappedRecord, PoolMember};
use crate::domain::manifest::{shared_record_id, with_record_id};
use crate::domain::status::IntentStatus;
use futures::StreamExt;

/// A shared job's manifest: every member's records, read back from the parts the member
/// wrote when it was pooled, in member order; then padding, if the policy asked for it.
/// A member cancelled since sealing is left out (its records are marked canceled).
pub(super) async fn build_shared(
    deps: &Deps,
    mut intent: BatchIntent,
    family: &dyn RecordFamily,
    members: &[PoolMember],
) -> Result<BatchIntent, StageError> {
    let now = deps.clock.now();
    let expected = members.iter().map(|m| m.records).sum();
    let mut out = ManifestWriter::new(deps, &intent.job_id, &intent.model_id, expected);
    // (job number, record) of every member record, in manifest order.
    let mut map: Vec<(u32, MappedRecord)> = Vec::new();
    for member in members {
        let Some(m) = deps.store.get(&member.intent_id).await? else {
            continue;
        };
        let ours = m
            .pool
            .as_ref()
            .is_some_and(|p| p.sealed_into.as_ref() == Some(&intent.intent_id));
        if m.status != IntentStatus::Pooled || !ours {
            tracing::info!(member = %m.intent_id, status = %m.status, "member left the shared job before its manifest");
            continue;
        }
        if let Err(e) = copy_member(deps, &mut out, family, &m, &mut map).await {
            out.abort().await;
            return Err(e);
        }
    }
    if map.is_empty() {
        out.abort().await;
        intent.fail("every member of the shared job was cancelled".into(), now)?;
        return Ok(intent);
    }
    // A shared job always pads a short last job: members cancelled since sealing, a byte
    // split, or the policy `pad` (its `pad_to` is the minimum) can leave it under Bedrock's
    // minimum, which Bedrock would refuse.
    let mut jobs = out.finish(Some(family)).await?;
    // Each job's record map, beside (not in) its input folder.
    for job in &mut jobs {
        let uri = record_map_uri(&deps.settings.manifests_bucket, &intent.job_id, job.job_no);
        write_record_map(deps, uri, job, &map).await?;
    }
    // The shared job's intent lists no images: its records are in the maps.
    intent.record_manifest(Vec::new(), jobs, now)?;
    Ok(intent)
}

/// Copies one member's records into the shared job, line by line (a member's part is never
/// in memory whole), each under the shared job's own record id, and maps each back to the
/// member's image.
async fn copy_member(
    deps: &Deps,
    out: &mut ManifestWriter<'_>,
    family: &dyn RecordFamily,
    m: &BatchIntent,
    map: &mut Vec<(u32, MappedRecord)>,
) -> Result<(), StageError> {
    let member_images = crate::app::lists::images(deps, m).await?;
    let mut accepted = member_images.iter().filter(|i| i.rejected.is_none());
    for part in m.jobs.iter().flat_map(|j| j.parts.iter()) {
        let mut lines = deps.objects.lines(&part.uri).await?;
        while let Some(line) = lines.next().await {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let Some(image) = accepted.next() else { break };
            // Record ids are unique within a job, not across members: each record gets the
            // shared job's own id, and the record map says whose it is.
            let shared_id = shared_record_id(map.len() as u64);
            let line = with_record_id(&format!("{line}\n"), &shared_id).map_err(|e| {
                StageError::Permanent(format!("a member's record is not JSON: {e}"))
            })?;
            let line = match family.image_source() {
                ImageSource::Inline => line,
                // The member's images sit in its own job folder; the shared job may only
                // reference its own (the same-folder rule): copy and point there.
                ImageSource::S3Location => relocate(deps, out, &line, &image.record_id).await?,
            };
            out.push(line.as_bytes()).await?;
            map.push((
                out.jobs.len() as u32,
                MappedRecord {
                    bedrock_record_id: Some(shared_id),
                    record_id: image.record_id.clone(),
                    intent_id: m.intent_id.clone(),
                    index: image.index,
                    key: image.key.clone(),
                },
            ));
        }
    }
    Ok(())
}

/// Writes `job`'s lines of `map` (job number, record) to `uri` as its record map and names it
/// on the job.
pub(super) async fn write_record_map(
    deps: &Deps,
    uri: crate::domain::bedrock::S3Uri,
    job: &mut crate::domain::intent::BatchJob,
    map: &[(u32, MappedRecord)],
) -> Result<(), StageError> {
    let mut body = Vec::new();
    for (_, record) in map.iter().filter(|(j, _)| *j == job.job_no) {
        serde_json::to_writer(&mut body, record)
            .map_err(|e| StageError::Permanent(format!("cannot encode a record map line: {e}")))?;
        body.push(b'\n');
    }
    deps.objects.put(&uri, body).await?;
    job.record_map = Some(uri);
    Ok(())
}

/// Where a shared job's record map lives: `manifests/{jobId}/records/j001.jsonl`, outside the
/// job's input folder (Bedrock reads every `.jsonl` there).
pub fn record_map_uri(
    bucket: &crate::domain::ids::BucketName,
    job_id: &crate::domain::ids::JobId,
    job_no: u32,
) -> crate::domain::bedrock::S3Uri {
    crate::domain::bedrock::S3Uri::object(
        bucket,
        &crate::domain::ids::ObjectKey::parse(&format!(
            "manifests/{job_id}/records/j{job_no:03}.jsonl"
        ))
        .unwrap_or_else(|e| unreachable!("a derived key is valid: {e}")),
    )
}
