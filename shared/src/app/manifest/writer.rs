//! The streaming writer of a manifest's parts and jobs, and the relocation of a member's
//! S3Location images into a shared job's folder.

use crate::app::{Deps, StageError};
use crate::domain::family::{self, RecordFamily};
use crate::domain::ids::RecordId;
use crate::domain::intent::{BatchJob, ManifestPart};
use crate::domain::manifest::{
    job_input_prefix, pad_record, part_file_name, rerun_prefix, Place, Splitter,
};
use crate::ports::ObjectWriter;

/// Streams records into parts under the intent's job folders, split by [`Splitter`]: each
/// part is one streaming object write (multipart on S3), closed when the next record would
/// pass a quota. Keys are deterministic, so a replay rewrites the same objects.
pub(super) struct ManifestWriter<'d> {
    deps: &'d Deps,
    job_id: crate::domain::ids::JobId,
    pub(super) splitter: Splitter,
    pub(super) jobs: Vec<BatchJob>,
    open: Option<(Box<dyn ObjectWriter>, ManifestPart)>,
    /// The number of its first job (1, or the next free one for a re-run's jobs).
    first_job_no: u32,
    /// For a re-run's jobs: (parent job, attempt), which name their folders.
    rerun: Option<(u32, u32)>,
}

impl<'d> ManifestWriter<'d> {
    /// A writer for about `expected` records, split as [`Splitter::balanced`] says.
    pub(super) fn new(
        deps: &'d Deps,
        job_id: &crate::domain::ids::JobId,
        model: &crate::domain::ids::ModelId,
        expected: u64,
    ) -> Self {
        Self {
            deps,
            job_id: job_id.clone(),
            splitter: Splitter::balanced(&deps.settings.quotas_for(model), expected),
            jobs: Vec::new(),
            open: None,
            first_job_no: 1,
            rerun: None,
        }
    }

    /// The same writer with the deadline planner's cut: the jobs after the first `batch`
    /// records run on-demand.
    pub(super) fn with_cut(mut self, batch: Option<u64>) -> Self {
        if let Some(at) = batch {
            self.splitter = self.splitter.with_cut(at);
        }
        self
    }

    /// The same writer for the re-run of job `parent`'s remainder on `attempt`: its jobs are
    /// numbered from `job_no` (after the intent's) and live in folders named after the parent
    /// ([`crate::domain::manifest::rerun_prefix`]).
    pub(super) fn for_rerun(mut self, job_no: u32, parent: u32, attempt: u32) -> Self {
        self.first_job_no = job_no.max(1);
        self.rerun = Some((parent, attempt));
        self
    }

    /// The input and output folders of the writer's `k`-th job (1-based), numbered `job_no`.
    fn folders(
        &self,
        k: u32,
        job_no: u32,
    ) -> (crate::domain::bedrock::S3Uri, crate::domain::bedrock::S3Uri) {
        let s = &self.deps.settings;
        match self.rerun {
            Some((parent, attempt)) => (
                rerun_prefix(
                    &s.manifests_bucket,
                    "manifests",
                    &self.job_id,
                    (parent, attempt, k),
                ),
                rerun_prefix(
                    &s.outputs_bucket,
                    "outputs",
                    &self.job_id,
                    (parent, attempt, k),
                ),
            ),
            None => (
                job_input_prefix(&s.manifests_bucket, &self.job_id, job_no),
                crate::domain::manifest::job_output_prefix(&s.outputs_bucket, &self.job_id, job_no),
            ),
        }
    }

    pub(super) fn records(&self) -> u64 {
        self.splitter.records
    }

    /// The input folder a record of `len` bytes would land in, without placing it.
    pub(super) fn next_input(&self, len: u64) -> crate::domain::bedrock::S3Uri {
        let new_job = self.jobs.is_empty() || self.splitter.peek(len) == Place::NewJob;
        match self.jobs.last() {
            Some(job) if !new_job => job.input.clone(),
            _ => {
                let k = self.jobs.len() as u32 + 1;
                self.folders(k, self.first_job_no + k - 1).0
            }
        }
    }

    pub(super) async fn push(&mut self, line: &[u8]) -> Result<(), StageError> {
        let result = self.push_inner(line).await;
        if result.is_err() {
            self.abort_open().await;
        }
        result
    }

    pub(super) async fn push_inner(&mut self, line: &[u8]) -> Result<(), StageError> {
        let settings = &self.deps.settings;
        let past_cut = self.splitter.past_cut();
        match self.splitter.place(line.len() as u64) {
            Place::Same => {}
            Place::NewJob => {
                self.close_part().await?;
                let k = self.jobs.len() as u32 + 1;
                let job_no = self.first_job_no + k - 1;
                let mut job = BatchJob::planned(
                    &self.job_id,
                    job_no,
                    &settings.manifests_bucket,
                    &settings.outputs_bucket,
                );
                (job.input, job.output) = self.folders(k, job_no);
                job.on_demand = past_cut;
                self.jobs.push(job);
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

    pub(super) async fn open_part(&mut self) -> Result<(), StageError> {
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

    pub(super) async fn close_part(&mut self) -> Result<(), StageError> {
        if let Some((writer, part)) = self.open.take() {
            writer.finish().await?;
            if let Some(job) = self.jobs.last_mut() {
                job.parts.push(part);
            }
        }
        Ok(())
    }

    pub(super) async fn abort_open(&mut self) {
        if let Some((writer, _)) = self.open.take() {
            writer.abort().await;
        }
    }

    pub(super) async fn abort(mut self) {
        self.abort_open().await;
    }

    /// Closes the last part; with `pad`, first pads the last job up to the minimum with the
    /// family's pad records (see `domain::plan`).
    pub(super) async fn finish(
        mut self,
        pad: Option<&dyn RecordFamily>,
    ) -> Result<Vec<BatchJob>, StageError> {
        // An on-demand job needs no padding: Bedrock's minimum is a batch job's.
        let last_on_demand = self.jobs.last().is_some_and(|j| j.on_demand);
        let padded = match pad {
            Some(family) if !last_on_demand => self.pad_tail(family).await,
            _ => Ok(()),
        };
        if let Err(e) = padded.and(self.close_part().await) {
            self.abort_open().await;
            return Err(e);
        }
        Ok(self.jobs)
    }

    pub(super) async fn pad_tail(&mut self, family: &dyn RecordFamily) -> Result<(), StageError> {
        let needed = self.splitter.pads_needed();
        for n in 0..needed {
            let line = pad_record(family, n);
            if self.splitter.peek(line.len() as u64) == Place::NewJob {
                return Err(StageError::Permanent(
                    crate::domain::plan::NoRoomToPad {
                        records: self.splitter.job_records(),
                        min: self.splitter.min_records_per_job(),
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
pub(super) async fn relocate(
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
