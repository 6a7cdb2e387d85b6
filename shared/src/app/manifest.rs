//! Manifest builder: resolve the intent's images, turn each into one JSONL record, split the
//! records into parts and jobs under the quotas, write the parts, and move the intent to
//! MANIFEST_READY.
//!
//! Replay: record ids and part keys are derived from the intent, so a replay rewrites the
//! same objects with the same bytes; once the intent is past REQUESTED a replay writes
//! nothing (it only takes over an orphaned outbox).

use super::normalized::Got;
use super::outbox::{save, take_over, Saved};
use super::{Deps, Outcome, StageError, MAX_CAS_ATTEMPTS};
use crate::domain::family::{self, ImageRef, ImageSource, RecordFamily};
use crate::domain::ids::{IntentId, RecordId};
use crate::domain::intent::{
    BatchIntent, BatchJob, ImageEntry, ImageSelection, ManifestPart, MappedRecord, PoolMember,
};
use crate::domain::manifest::{
    check_image, image_record_id, job_input_prefix, pad_record, part_file_name, prompt,
    shared_record_id, with_record_id, Place, Splitter,
};
use crate::domain::results::ImageResult;
use crate::domain::status::IntentStatus;
use crate::ports::{ErrorKind, ObjectWriter, PortError};
use futures::stream::{self, StreamExt};

/// How many images are fetched (and normalized, if not yet) at once.
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
    let Some(family) = family::for_model_in(&intent.model_id, &deps.settings.model_families) else {
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

    if let ImageSelection::Pool { .. } = &intent.selection {
        let members = super::lists::members(deps, &intent).await?;
        return build_shared(deps, intent, family, &members).await;
    }
    // A day's uploads have no cap of ours: the images list moves out of the intent item
    // past INLINE_LIST, and the records split into as many jobs as Bedrock's quotas need.
    let (keys, expected) = match &intent.selection {
        ImageSelection::Day(day) => {
            let keys = super::uploads::resolve_day(deps, &intent.user_id, *day).await?;
            let n = keys.len();
            (stream::iter(keys.into_iter().map(Ok)).boxed(), n)
        }
        other => (super::lists::keys(deps, other).await?, other.len_hint()),
    };
    if expected == 0 {
        intent
            .fail("no images found for this request".into(), now)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }

    // Fetch with bounded concurrency, keeping the client's order (it fixes the record ids),
    // and write each record as it comes: at most FETCH_CONCURRENCY images and one part's
    // upload buffer are in memory, whatever the intent's size.
    let job_id = intent.job_id.clone();
    let job_id = &job_id;
    // Fetch, check and (inline) encode run FETCH_CONCURRENCY at a time, ahead of the writer,
    // keeping the client's order (it fixes the record ids).
    let mut fetched = keys
        .enumerate()
        .map(|(index, key)| async move {
            let key = key?;
            let record_id = RecordId::for_image(job_id, index);
            let (src, prepared) = prepare(deps, family, &key, index, prompt_text).await?;
            Ok::<_, StageError>((index, key, src, record_id, prepared))
        })
        .buffered(FETCH_CONCURRENCY);

    let mut images = ImageSink::open(deps, &intent.job_id, expected).await?;
    let mut skipped = Vec::new();
    let mut out = ManifestWriter::new(deps, &intent.job_id, expected as u64);
    while let Some(item) = fetched.next().await {
        let (index, key, src, record_id, prepared) = match item {
            Ok(p) => p,
            Err(e) => {
                out.abort().await;
                images.abort().await;
                return Err(e);
            }
        };
        let rejected = match prepared {
            Prepared::Line(line) => {
                out.push(line.as_bytes()).await?;
                None
            }
            Prepared::Failed(why) => {
                out.abort().await;
                return Err(StageError::Retryable(PortError::new(
                    ErrorKind::Unexpected,
                    format!("encoding record {record_id} failed: {why}"),
                )));
            }
            Prepared::Located(media) => {
                // Bedrock's same-folder rule: the image must sit in the folder the job reads.
                // Job folders have fixed-width names, so the record's length (and so its
                // place) does not depend on which job it lands in.
                let build = |dest: &crate::domain::bedrock::S3Uri| {
                    family.record(
                        &image_record_id(index),
                        media,
                        ImageRef::S3(dest),
                        prompt_text,
                        settings.max_output_tokens,
                    )
                };
                let name = format!("images/{index:06}.{}", media.ext());
                let probe = build(&out.next_input(0).join(&name));
                let dest = out.next_input(probe.len() as u64).join(&name);
                if let Err(e) = deps.objects.copy(&src, &dest).await {
                    out.abort().await;
                    return Err(e.into());
                }
                out.push(build(&dest).as_bytes()).await?;
                None
            }
            Prepared::Rejected(reason) => {
                skipped.push(ImageResult::skipped(
                    record_id.clone(),
                    index,
                    key.clone(),
                    &reason,
                ));
                Some(reason)
            }
        };
        let entry = ImageEntry {
            index,
            key,
            record_id,
            rejected,
        };
        if let Err(e) = images.push(entry).await {
            out.abort().await;
            return Err(e);
        }
    }
    let accepted = out.records();
    // An intent with jobs of its own pads a short last job; a pooled one's records are
    // re-read into a shared job, which pads its own.
    let own = settings.runs_alone(accepted, out.splitter.bytes);
    let jobs = out.finish(own.then_some(family)).await?;
    let images = images.finish(&mut intent).await?;
    if !skipped.is_empty() {
        deps.results
            .put_results(&intent.intent_id, &skipped)
            .await?;
    }
    if jobs.is_empty() {
        intent.images = images;
        intent
            .fail(
                "every image was rejected; see the per-image results".into(),
                now,
            )
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }
    if !own {
        // Too small for a job of its own (below the job minimum, or below the configured
        // pooling threshold): the parts just written wait in the model's pool (the
        // reconciler seals pools, see `pool.rs`).
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

/// Where the manifest builder keeps the intent's images: in the intent up to
/// [`INLINE_LIST`](crate::domain::intent::INLINE_LIST), else streamed to its list.
enum ImageSink {
    Inline(Vec<ImageEntry>),
    Listed {
        writer: super::lists::ListWriter,
        uri: crate::domain::bedrock::S3Uri,
        rejected: usize,
    },
}

impl ImageSink {
    async fn open(
        deps: &Deps,
        job_id: &crate::domain::ids::JobId,
        expected: usize,
    ) -> Result<Self, StageError> {
        if expected <= crate::domain::intent::INLINE_LIST {
            return Ok(Self::Inline(Vec::with_capacity(expected)));
        }
        let uri = super::lists::list_uri(deps, job_id, "images");
        Ok(Self::Listed {
            writer: super::lists::ListWriter::open(deps, &uri).await?,
            uri,
            rejected: 0,
        })
    }

    async fn push(&mut self, entry: ImageEntry) -> Result<(), StageError> {
        match self {
            Self::Inline(v) => {
                v.push(entry);
                Ok(())
            }
            Self::Listed {
                writer, rejected, ..
            } => {
                *rejected += usize::from(entry.rejected.is_some());
                writer.push(&entry).await
            }
        }
    }

    async fn abort(self) {
        if let Self::Listed { writer, .. } = self {
            writer.abort().await;
        }
    }

    /// The images to keep in the intent (none when listed; the intent then names the list).
    async fn finish(self, intent: &mut BatchIntent) -> Result<Vec<ImageEntry>, StageError> {
        match self {
            Self::Inline(v) => Ok(v),
            Self::Listed {
                writer,
                uri,
                rejected,
            } => {
                let count = writer.count;
                writer.finish().await?;
                intent.image_list = Some(crate::domain::intent::ImageList {
                    uri,
                    count,
                    rejected,
                });
                Ok(Vec::new())
            }
        }
    }
}

/// One image, normalized (see `app::normalized`) and checked, and for an inline family
/// encoded into its record: where its normalized copy is, and what the writer does with it.
async fn prepare(
    deps: &Deps,
    family: &'static dyn RecordFamily,
    key: &crate::domain::ids::ObjectKey,
    index: usize,
    prompt_text: &'static str,
) -> Result<(crate::domain::bedrock::S3Uri, Prepared), StageError> {
    let original = crate::domain::bedrock::S3Uri::object(&deps.settings.uploads_bucket, key);
    let (jpeg, uri) =
        match super::normalized::get_or_make(deps, key, family.image_long_edge()).await? {
            Got::Ready { jpeg, uri } => (jpeg, uri),
            Got::Skipped(reason) => return Ok((original, Prepared::Rejected(reason))),
            Got::Missing => {
                let why = "not found in the uploads bucket".to_string();
                return Ok((original, Prepared::Rejected(why)));
            }
        };
    // Bedrock's limits apply to what it is sent: the normalized copy.
    let media = match check_image(&jpeg) {
        Ok(m) => m,
        Err(reason) => return Ok((uri, Prepared::Rejected(reason))),
    };
    if family.image_source() == ImageSource::S3Location {
        return Ok((uri, Prepared::Located(media)));
    }
    // Encoding is CPU work: on the blocking pool it runs beside the writer (and other
    // encodes) instead of between its writes.
    let rid = image_record_id(index);
    let max_tokens = deps.settings.max_output_tokens;
    let encoded = tokio::task::spawn_blocking(move || {
        family.record(&rid, media, ImageRef::Bytes(&jpeg), prompt_text, max_tokens)
    })
    .await;
    Ok((
        uri,
        match encoded {
            Ok(line) => Prepared::Line(line),
            Err(e) => Prepared::Failed(e.to_string()),
        },
    ))
}

/// One image, ready for the writer.
enum Prepared {
    /// Its record line (inline families).
    Line(String),
    /// Checked; its record is built once its job folder is known (S3Location families).
    Located(crate::domain::manifest::MediaType),
    /// Why it is not in the manifest.
    Rejected(String),
    /// The encoding task died (a panic): retry the message.
    Failed(String),
}

/// Streams records into parts under the intent's job folders, split by [`Splitter`]: each
/// part is one streaming object write (multipart on S3), closed when the next record would
/// pass a quota. Keys are deterministic, so a replay rewrites the same objects.
struct ManifestWriter<'d> {
    deps: &'d Deps,
    job_id: crate::domain::ids::JobId,
    splitter: Splitter,
    jobs: Vec<BatchJob>,
    open: Option<(Box<dyn ObjectWriter>, ManifestPart)>,
}

impl<'d> ManifestWriter<'d> {
    /// A writer for about `expected` records, split as [`Splitter::balanced`] says.
    fn new(deps: &'d Deps, job_id: &crate::domain::ids::JobId, expected: u64) -> Self {
        Self {
            deps,
            job_id: job_id.clone(),
            splitter: Splitter::balanced(&deps.settings.quotas, expected),
            jobs: Vec::new(),
            open: None,
        }
    }

    fn records(&self) -> u64 {
        self.splitter.records
    }

    /// The input folder a record of `len` bytes would land in, without placing it.
    fn next_input(&self, len: u64) -> crate::domain::bedrock::S3Uri {
        let new_job = self.jobs.is_empty() || self.splitter.peek(len) == Place::NewJob;
        match self.jobs.last() {
            Some(job) if !new_job => job.input.clone(),
            _ => job_input_prefix(
                &self.deps.settings.manifests_bucket,
                &self.job_id,
                self.jobs.len() as u32 + 1,
            ),
        }
    }

    async fn push(&mut self, line: &[u8]) -> Result<(), StageError> {
        let result = self.push_inner(line).await;
        if result.is_err() {
            self.abort_open().await;
        }
        result
    }

    async fn push_inner(&mut self, line: &[u8]) -> Result<(), StageError> {
        let settings = &self.deps.settings;
        match self.splitter.place(line.len() as u64) {
            Place::Same => {}
            Place::NewJob => {
                self.close_part().await?;
                let job_no = self.jobs.len() as u32 + 1;
                self.jobs.push(BatchJob::planned(
                    &self.job_id,
                    job_no,
                    &settings.manifests_bucket,
                    &settings.outputs_bucket,
                ));
                self.open_part().await?;
            }
            Place::NewPart => {
                self.close_part().await?;
                self.open_part().await?;
            }
        }
        let (writer, part) = self
            .open
            .as_mut()
            .ok_or_else(|| StageError::Permanent("no part is open".into()))?;
        writer.write(line).await?;
        part.records += 1;
        part.bytes += line.len() as u64;
        Ok(())
    }

    async fn open_part(&mut self) -> Result<(), StageError> {
        let job = self
            .jobs
            .last()
            .ok_or_else(|| StageError::Permanent("no job is open".into()))?;
        let part_no = job.parts.len() as u32 + 1;
        let uri = job.input.join(&part_file_name(part_no));
        let writer = self.deps.objects.writer(&uri).await?;
        self.open = Some((
            writer,
            ManifestPart {
                part: part_no,
                uri,
                records: 0,
                bytes: 0,
            },
        ));
        Ok(())
    }

    async fn close_part(&mut self) -> Result<(), StageError> {
        if let Some((writer, part)) = self.open.take() {
            writer.finish().await?;
            if let Some(job) = self.jobs.last_mut() {
                job.parts.push(part);
            }
        }
        Ok(())
    }

    async fn abort_open(&mut self) {
        if let Some((writer, _)) = self.open.take() {
            writer.abort().await;
        }
    }

    async fn abort(mut self) {
        self.abort_open().await;
    }

    /// Closes the last part; with `pad`, first pads the last job up to the minimum with the
    /// family's pad records (see `domain::plan`).
    async fn finish(mut self, pad: Option<&dyn RecordFamily>) -> Result<Vec<BatchJob>, StageError> {
        let padded = match pad {
            Some(family) => self.pad_tail(family).await,
            None => Ok(()),
        };
        if let Err(e) = padded.and(self.close_part().await) {
            self.abort_open().await;
            return Err(e);
        }
        Ok(self.jobs)
    }

    async fn pad_tail(&mut self, family: &dyn RecordFamily) -> Result<(), StageError> {
        let needed = self.splitter.pads_needed();
        for n in 0..needed {
            let line = pad_record(family, n);
            if self.splitter.peek(line.len() as u64) == Place::NewJob {
                return Err(StageError::Permanent(
                    crate::domain::plan::NoRoomToPad {
                        records: self.splitter.job_records(),
                        min: self.deps.settings.quotas.min_records_per_job,
                    }
                    .to_string(),
                ));
            }
            self.push_inner(line.as_bytes()).await?;
        }
        if let Some(job) = self.jobs.last_mut() {
            job.pad_records += needed;
        }
        if needed > 0 {
            tracing::info!(job_id = %self.job_id, pads = needed, "last job padded up to the minimum");
        }
        Ok(())
    }
}

/// A member's S3Location record, its images copied into the shared job's input folder (the
/// one the record will land in) and its URIs pointed there.
async fn relocate(
    deps: &Deps,
    out: &ManifestWriter<'_>,
    line: &str,
    record: &RecordId,
) -> Result<String, StageError> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| StageError::Permanent(format!("a member's record is not JSON: {e}")))?;
    let sources = family::s3_locations(&value["modelInput"]);
    type Moves = Vec<(String, crate::domain::bedrock::S3Uri)>;
    let rewrite = |input: &crate::domain::bedrock::S3Uri| -> Result<(String, Moves), StageError> {
        let moves: Moves = sources
            .iter()
            .enumerate()
            .map(|(n, raw)| {
                let ext = raw.rsplit('.').next().unwrap_or("img");
                (
                    raw.clone(),
                    input.join(&format!("images/{record}-{n}.{ext}")),
                )
            })
            .collect();
        let line = family::rewrite_s3_locations(line, |u| {
            moves
                .iter()
                .find(|(raw, _)| *raw == u.to_string())
                .map(|(_, to)| to.clone())
        })
        .map_err(|e| StageError::Permanent(format!("a member's record is not JSON: {e}")))?;
        Ok((line, moves))
    };
    // The rewritten line's length decides its job; job folders have fixed-width names, so a
    // second rewrite for that job's folder has the same length.
    let (probe, _) = rewrite(&out.next_input(0))?;
    let (line, moves) = rewrite(&out.next_input(probe.len() as u64))?;
    for (raw, to) in moves {
        let from = crate::domain::bedrock::S3Uri::parse(&raw)
            .map_err(|e| StageError::Permanent(format!("bad s3Location {raw}: {e}")))?;
        deps.objects.copy(&from, &to).await?;
    }
    Ok(line)
}

/// A shared job's manifest: every member's records, read back from the parts the member
/// wrote when it was pooled, in member order; then padding, if the policy asked for it.
/// A member cancelled since sealing is left out (its records are marked canceled).
async fn build_shared(
    deps: &Deps,
    mut intent: BatchIntent,
    family: &dyn RecordFamily,
    members: &[PoolMember],
) -> Result<BatchIntent, StageError> {
    let now = deps.clock.now();
    let expected = members.iter().map(|m| m.records).sum();
    let mut out = ManifestWriter::new(deps, &intent.job_id, expected);
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
        let member_images = super::lists::images(deps, &m).await?;
        let mut accepted = member_images.iter().filter(|i| i.rejected.is_none());
        for part in m.jobs.iter().flat_map(|j| j.parts.iter()) {
            // Line by line: a member's part is never in memory whole.
            let mut lines = match deps.objects.lines(&part.uri).await {
                Ok(l) => l,
                Err(e) => {
                    out.abort().await;
                    return Err(e.into());
                }
            };
            while let Some(line) = lines.next().await {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => {
                        out.abort().await;
                        return Err(e.into());
                    }
                };
                if line.trim().is_empty() {
                    continue;
                }
                let Some(image) = accepted.next() else { break };
                // Record ids are unique within a job, not across members: each record gets
                // the shared job's own id, and the record map says whose it is.
                let shared_id = shared_record_id(map.len() as u64);
                let line = match with_record_id(&format!("{line}\n"), &shared_id) {
                    Ok(l) => l,
                    Err(e) => {
                        out.abort().await;
                        return Err(StageError::Permanent(format!(
                            "a member's record is not JSON: {e}"
                        )));
                    }
                };
                let line = match family.image_source() {
                    ImageSource::Inline => line,
                    // The member's images sit in its own job folder; the shared job may
                    // only reference its own (the same-folder rule): copy and point there.
                    ImageSource::S3Location => {
                        match relocate(deps, &out, &line, &image.record_id).await {
                            Ok(l) => l,
                            Err(e) => {
                                out.abort().await;
                                return Err(e);
                            }
                        }
                    }
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
    }
    if map.is_empty() {
        out.abort().await;
        intent
            .fail("every member of the shared job was cancelled".into(), now)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        return Ok(intent);
    }
    // A shared job always pads a short last job: members cancelled since sealing, a byte
    // split, or the policy `pad` (its `pad_to` is the minimum) can leave it under Bedrock's
    // minimum, which Bedrock would refuse.
    let mut jobs = out.finish(Some(family)).await?;
    // Each job's record map, beside (not in) its input folder.
    for job in &mut jobs {
        let uri = record_map_uri(&deps.settings.manifests_bucket, &intent.job_id, job.job_no);
        let mut body = Vec::new();
        for (_, record) in map.iter().filter(|(j, _)| *j == job.job_no) {
            serde_json::to_writer(&mut body, record).map_err(|e| {
                StageError::Permanent(format!("cannot encode a record map line: {e}"))
            })?;
            body.push(b'\n');
        }
        deps.objects.put(&uri, body).await?;
        job.record_map = Some(uri);
    }
    // The shared job's intent lists no images: its records are in the maps.
    intent
        .record_manifest(Vec::new(), jobs, now)
        .map_err(|e| StageError::Permanent(e.to_string()))?;
    Ok(intent)
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
