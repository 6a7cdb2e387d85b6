//! Manifest builder: resolve the intent's images, turn each into one JSONL record, split the
//! records into parts and jobs under the quotas, write the parts, and move the intent to
//! MANIFEST_READY.
//!
//! Replay: record ids and part keys are derived from the intent, so a replay rewrites the
//! same objects with the same bytes; once the intent is past REQUESTED a replay writes
//! nothing (it only takes over an orphaned outbox).

use super::outbox::{save, take_over, Saved};
use super::{Deps, Outcome, StageError, MAX_CAS_ATTEMPTS};
use crate::domain::bedrock::{client_token, job_name};
use crate::domain::ids::{IntentId, ObjectKey, RecordId};
use crate::domain::intent::{
    BatchIntent, BatchJob, ImageEntry, ImageSelection, ManifestPart, PoolMember,
};
use crate::domain::manifest::{
    check_image, claude_record, job_input_prefix, job_output_prefix, pad_record, part_file_name,
    prompt,
};
use crate::domain::results::ImageResult;
use crate::domain::settings::{ModelFamily, Quotas};
use crate::domain::status::IntentStatus;
use crate::ports::{ErrorKind, PortError};
use futures::stream::{self, StreamExt};

/// How many images are fetched at once.
const FETCH_CONCURRENCY: usize = 8;

#[tracing::instrument(skip_all, fields(intent_id = %intent_id, job_id = %crate::domain::ids::JobId::for_intent(intent_id)))]
pub async fn build_manifest(deps: &Deps, intent_id: &IntentId) -> Result<Outcome, StageError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some(intent) = deps.store.get(intent_id).await? else {
            return Ok(Outcome::Unknown(format!("no intent {intent_id}")));
        };
        if intent.status != IntentStatus::Requested {
            take_over(deps, &intent).await?;
            return Ok(Outcome::AlreadyDone);
        }
        let expected = intent.version;
        let since = intent.updated_at;
        let next = plan_and_write(deps, intent).await?;
        match save(deps, next, expected).await? {
            Saved::Written(i) => {
                crate::metrics::stage_time(i.status, since, deps.clock.now());
                tracing::info!(job_id = %i.job_id, status = %i.status, jobs = i.jobs.len(), "manifest written");
                return Ok(Outcome::Advanced(i.status));
            }
            Saved::Stale(_) => continue,
        }
    }
    Err(StageError::Retryable(PortError::new(
        ErrorKind::Conflict,
        "manifest save kept losing races",
    )))
}

/// Builds every part and writes it; returns the intent as it should be stored next.
async fn plan_and_write(deps: &Deps, mut intent: BatchIntent) -> Result<BatchIntent, StageError> {
    let now = deps.clock.now();
    let settings = &deps.settings;
    let Some(family) = ModelFamily::of(&intent.model_id) else {
        intent
            .fail(
                format!("model {} has no record builder", intent.model_id),
                now,
            )
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    };
    let Some(prompt_text) = prompt(&intent.prompt_version) else {
        intent
            .fail(
                format!("unknown prompt version {}", intent.prompt_version),
                now,
            )
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    };

    if let ImageSelection::Pool { members, pad_to } = &intent.selection {
        let (members, pad_to) = (members.clone(), *pad_to);
        return build_shared(deps, intent, &members, pad_to).await;
    }
    let keys = match &intent.selection {
        ImageSelection::Keys(keys) => keys.clone(),
        ImageSelection::Day(day) => {
            super::uploads::resolve_day(deps, &intent.user_id, *day).await?
        }
        ImageSelection::Pool { .. } => unreachable!("handled above"),
    };
    if keys.is_empty() {
        intent
            .fail("no images found for this request".into(), now)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }
    // A day's uploads are not bounded at intake. The intent item holds every image, and a
    // DynamoDB item is at most 400 KB, so an oversized day fails with a clear reason instead
    // of failing its write again and again into the DLQ.
    if keys.len() > settings.max_images_per_intent {
        intent
            .fail(
                format!(
                    "{} images found; one intent takes at most {} (send explicit keys in several intents)",
                    keys.len(),
                    settings.max_images_per_intent
                ),
                now,
            )
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }

    // Fetch with bounded concurrency, keeping the client's order (it fixes the record ids).
    let fetched: Vec<(usize, ObjectKey, Result<Vec<u8>, PortError>)> =
        stream::iter(keys.into_iter().enumerate())
            .map(|(i, key)| async move {
                let uri = crate::domain::bedrock::S3Uri::object(&settings.uploads_bucket, &key);
                let bytes = deps.objects.get(&uri).await;
                (i, key, bytes)
            })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;

    let mut images = Vec::with_capacity(fetched.len());
    let mut skipped = Vec::new();
    let mut planner = Planner::new(&settings.quotas);
    for (index, key, bytes) in fetched {
        let record_id = RecordId::for_image(&intent.job_id, index);
        let checked = match bytes {
            Ok(bytes) => check_image(&bytes).map(|media| (media, bytes)),
            Err(e) if e.kind == ErrorKind::NotFound => {
                Err("not found in the uploads bucket".to_string())
            }
            Err(e) => return Err(e.into()),
        };
        let rejected = match checked {
            Ok((media, bytes)) => {
                let line = match family {
                    ModelFamily::AnthropicClaude => claude_record(
                        &record_id,
                        media,
                        &bytes,
                        prompt_text,
                        settings.max_output_tokens,
                    ),
                };
                planner.push(line);
                None
            }
            Err(reason) => {
                skipped.push(ImageResult::skipped(
                    record_id.clone(),
                    index,
                    key.clone(),
                    &reason,
                ));
                Some(reason)
            }
        };
        images.push(ImageEntry {
            index,
            key,
            record_id,
            rejected,
        });
    }
    if !skipped.is_empty() {
        deps.results
            .put_results(&intent.intent_id, &skipped)
            .await?;
    }

    let accepted = planner.records();
    let planned = planner.finish();
    if planned.is_empty() {
        intent.images = images;
        intent
            .fail(
                "every image was rejected; see the per-image results".into(),
                now,
            )
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }
    let jobs = write_jobs(deps, &intent.job_id, planned).await?;
    if accepted < settings.quotas.min_records_per_job {
        // Too small for a job of its own: the parts just written wait in the model's pool
        // (the reconciler seals pools, see `pool.rs`).
        crate::metrics::count(crate::metrics::INTENTS_POOLED, 1);
        intent
            .record_pooled(images, jobs, now)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }
    intent
        .record_manifest(images, jobs, now)
        .map_err(|e| StageError::Permanent(e.to_string()))?;
    Ok(intent)
}

/// Writes every planned part under the intent's job folders; deterministic keys, so a replay
/// rewrites the same objects.
async fn write_jobs(
    deps: &Deps,
    job_id: &crate::domain::ids::JobId,
    planned: Vec<Vec<PlannedPart>>,
) -> Result<Vec<BatchJob>, StageError> {
    let settings = &deps.settings;
    let mut jobs = Vec::with_capacity(planned.len());
    for (j, parts) in planned.into_iter().enumerate() {
        let job_no = j as u32 + 1;
        let input = job_input_prefix(&settings.manifests_bucket, job_id, job_no);
        let mut written = Vec::with_capacity(parts.len());
        for (p, part) in parts.into_iter().enumerate() {
            let part_no = p as u32 + 1;
            let uri = input.join(&part_file_name(part_no));
            let records = part.records;
            let bytes = part.body.len() as u64;
            deps.objects.put(&uri, part.body.into_bytes()).await?;
            written.push(ManifestPart {
                part: part_no,
                uri,
                records,
                bytes,
            });
        }
        jobs.push(BatchJob {
            job_no,
            attempt: 1,
            job_name: job_name(job_id, job_no, 1),
            client_token: client_token(job_id, job_no, 1),
            input,
            output: job_output_prefix(&settings.outputs_bucket, job_id, job_no),
            parts: written,
            arn: None,
            status: None,
            failure_message: None,
            summary: None,
        });
    }
    Ok(jobs)
}

/// A shared job's manifest: every member's records, read back from the parts the member
/// wrote when it was pooled, in member order; then padding, if the policy asked for it.
/// A member cancelled since sealing is left out (its records are marked canceled).
async fn build_shared(
    deps: &Deps,
    mut intent: BatchIntent,
    members: &[PoolMember],
    pad_to: u64,
) -> Result<BatchIntent, StageError> {
    let now = deps.clock.now();
    let mut planner = Planner::new(&deps.settings.quotas);
    let mut images = Vec::new();
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
        let mut accepted = m.images.iter().filter(|i| i.rejected.is_none());
        for part in m.jobs.iter().flat_map(|j| j.parts.iter()) {
            let body = deps.objects.get(&part.uri).await?;
            for line in String::from_utf8_lossy(&body).lines() {
                if line.trim().is_empty() {
                    continue;
                }
                let Some(image) = accepted.next() else { break };
                planner.push(format!("{line}\n"));
                images.push(ImageEntry {
                    index: images.len(),
                    key: image.key.clone(),
                    record_id: image.record_id.clone(),
                    rejected: None,
                });
            }
        }
    }
    if images.is_empty() {
        intent
            .fail("every member of the shared job was cancelled".into(), now)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }
    for n in planner.records()..pad_to {
        planner.push(pad_record(&intent.job_id, n));
    }
    let jobs = write_jobs(deps, &intent.job_id, planner.finish()).await?;
    intent
        .record_manifest(images, jobs, now)
        .map_err(|e| StageError::Permanent(e.to_string()))?;
    Ok(intent)
}

#[derive(Debug, Default)]
struct PlannedPart {
    body: String,
    records: u64,
}

/// Greedy split of records into parts (files) and jobs, never passing a quota: records and
/// bytes per file, records and bytes per job.
struct Planner<'q> {
    quotas: &'q Quotas,
    jobs: Vec<Vec<PlannedPart>>,
    job_records: u64,
    job_bytes: u64,
}

impl<'q> Planner<'q> {
    fn new(quotas: &'q Quotas) -> Self {
        Self {
            quotas,
            jobs: Vec::new(),
            job_records: 0,
            job_bytes: 0,
        }
    }

    fn push(&mut self, line: String) {
        let len = line.len() as u64;
        let q = self.quotas;
        let new_job = self.jobs.is_empty()
            || self.job_records + 1 > q.max_records_per_job
            || self.job_bytes + len > q.max_job_bytes;
        if new_job {
            self.jobs.push(vec![PlannedPart::default()]);
            self.job_records = 0;
            self.job_bytes = 0;
        }
        let parts = self.jobs.last_mut().expect("a job was just ensured");
        let part = parts.last().expect("every job starts with a part");
        if part.records > 0
            && (part.records + 1 > q.max_records_per_file
                || part.body.len() as u64 + len > q.max_file_bytes)
        {
            parts.push(PlannedPart::default());
        }
        let part = parts.last_mut().expect("a part was just ensured");
        part.body.push_str(&line);
        part.records += 1;
        self.job_records += 1;
        self.job_bytes += len;
    }

    /// Records pushed so far.
    fn records(&self) -> u64 {
        self.jobs.iter().flatten().map(|p| p.records).sum()
    }

    fn finish(self) -> Vec<Vec<PlannedPart>> {
        self.jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(quotas: &Quotas, lines: usize, line_len: usize) -> Vec<Vec<(u64, usize)>> {
        let mut p = Planner::new(quotas);
        for _ in 0..lines {
            p.push(format!("{}\n", "x".repeat(line_len - 1)));
        }
        p.finish()
            .into_iter()
            .map(|parts| {
                parts
                    .into_iter()
                    .map(|pp| (pp.records, pp.body.len()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn when_records_exceed_job_quota_should_split_into_jobs() {
        let q = Quotas {
            max_records_per_job: 3,
            max_records_per_file: 2,
            ..Quotas::default()
        };
        let jobs = plan(&q, 7, 10);
        let shape: Vec<Vec<u64>> = jobs
            .iter()
            .map(|p| p.iter().map(|x| x.0).collect())
            .collect();
        assert_eq!(shape, vec![vec![2, 1], vec![2, 1], vec![1]]);
    }

    #[test]
    fn when_bytes_exceed_file_quota_should_start_a_new_part() {
        let q = Quotas {
            max_file_bytes: 25,
            ..Quotas::default()
        };
        let jobs = plan(&q, 5, 10);
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].iter().all(|(_, bytes)| *bytes <= 25));
        assert_eq!(jobs[0].iter().map(|x| x.0).sum::<u64>(), 5);
    }
}
