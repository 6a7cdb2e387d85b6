//! An intent's lifecycle: forward-only transitions, each staging the event it owes in the
//! outbox.

use crate::domain::intent::*;
use chrono::{DateTime, Utc};

impl BatchIntent {
    /// Adds an event to the outbox; the caller's write persists it with the change.
    pub(super) fn stage(&mut self, kind: EventKind, now: DateTime<Utc>) {
        let event = DomainEvent {
            kind,
            detail: EventDetail {
                event_id: format!("{}:{}:{}", self.job_id, kind.detail_type(), self.version),
                intent_id: self.intent_id.clone(),
                job_id: self.job_id.clone(),
                trace_id: self.trace_id.clone(),
                user_id: self.user_id.clone(),
                status: self.status,
                occurred_at: now,
                counts: self.counts,
                bedrock_job_arns: self
                    .jobs
                    .iter()
                    .filter_map(|j| j.arn.as_ref().map(|a| a.to_string()))
                    .collect(),
                failure_message: self.failure_message.clone(),
            },
        };
        match &mut self.outbox {
            Some(outbox) => {
                outbox.events.push(event);
                outbox.staged_at = now;
            }
            None => {
                self.outbox = Some(Outbox {
                    events: vec![event],
                    staged_at: now,
                })
            }
        }
    }

    pub(super) fn advance(&mut self, to: IntentStatus, now: DateTime<Utc>) -> Result<(), Refused> {
        if !self.status.can_advance_to(to) {
            return Err(Refused::Stale {
                current: self.status,
                expected: to,
            });
        }
        if to.is_terminal() {
            // The store forgets an intent its TTL after it ended, not after it began (a
            // pooled intent can wait long before it ends).
            self.expires_at = now + (self.expires_at - self.created_at);
        }
        self.status = to;
        self.updated_at = now;
        Ok(())
    }

    pub(super) fn require(&self, status: IntentStatus) -> Result<(), Refused> {
        if self.status == status {
            Ok(())
        } else {
            Err(Refused::Stale {
                current: self.status,
                expected: status,
            })
        }
    }

    /// REQUESTED -> MANIFEST_READY with the resolved images and the planned jobs.
    pub fn record_manifest(
        &mut self,
        images: Vec<ImageEntry>,
        jobs: Vec<BatchJob>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        self.require(IntentStatus::Requested)?;
        self.images = images;
        self.jobs = jobs;
        self.advance(IntentStatus::ManifestReady, now)?;
        self.stage(EventKind::BatchManifestReady, now);
        Ok(())
    }

    /// Records the ARN Bedrock gave job `job_no`. When every job has one the intent is
    /// SUBMITTED (a re-run job added to a running intent leaves its status as it is).
    /// Recording the same ARN again is refused as stale.
    pub fn record_submission(
        &mut self,
        job_no: u32,
        arn: BedrockJobArn,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        if !(self.status == IntentStatus::ManifestReady || self.has_unsubmitted_job()) {
            self.require(IntentStatus::ManifestReady)?;
        }
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.job_no == job_no)
            .ok_or_else(|| Refused::UnknownJob(job_no.to_string()))?;
        // A job with an ARN, or one that ended without being created (refused, dropped by a
        // cancel), is never recorded again.
        if job.arn.is_some() || job.status.is_some() {
            return Err(Refused::JobStale {
                from: job.status.unwrap_or(BedrockJobStatus::Submitted),
                to: BedrockJobStatus::Submitted,
            });
        }
        job.arn = Some(arn);
        job.status = Some(BedrockJobStatus::Submitted);
        job.created_at = Some(now);
        self.updated_at = now;
        self.create_backoff = None;
        if self.status == IntentStatus::ManifestReady && !self.has_unsubmitted_job() {
            self.advance(IntentStatus::Submitted, now)?;
            self.stage(EventKind::BatchSubmitted, now);
        }
        Ok(())
    }

    /// Applies a Bedrock status to one job, only forward. Returns the intent status after.
    /// On a terminal intent status, `summary` (from `manifest.json.out`) becomes the counts
    /// and the terminal event is staged.
    pub fn apply_job_status(
        &mut self,
        arn: &BedrockJobArn,
        status: BedrockJobStatus,
        failure_message: Option<String>,
        summary: Option<ManifestSummary>,
        now: DateTime<Utc>,
    ) -> Result<IntentStatus, Refused> {
        if self.status.is_terminal() {
            return Err(Refused::Stale {
                current: self.status,
                expected: status.intent_status(),
            });
        }
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.arn.as_ref() == Some(arn))
            .ok_or_else(|| Refused::UnknownJob(arn.to_string()))?;
        let from = job.status.unwrap_or(BedrockJobStatus::Submitted);
        if from == status || !from.can_advance_to(status) {
            return Err(Refused::JobStale { from, to: status });
        }
        job.status = Some(status);
        if status == BedrockJobStatus::InProgress {
            job.started_at.get_or_insert(now);
        }
        if status.is_terminal() {
            job.summary = summary;
            job.failure_message = failure_message.filter(|m| !m.is_empty());
        }
        self.updated_at = now;
        self.settle(now)?;
        Ok(self.status)
    }

    /// Moves the intent to what its jobs add up to, once every job has a status: a terminal
    /// intent gets the summed counts, its failure messages and its terminal event.
    ///
    /// The truth rule: COMPLETED only when every record was answered (a Completed job may
    /// hold error lines, user guide "View the results of a batch inference job"); otherwise
    /// PARTIALLY_COMPLETED when some were, else the jobs' shared failure status. Records
    /// re-run (on-demand or in a re-run job) count as answered once they are.
    pub(super) fn settle(&mut self, now: DateTime<Utc>) -> Result<(), Refused> {
        let statuses: Vec<BedrockJobStatus> = self.jobs.iter().filter_map(|j| j.status).collect();
        let target = if statuses.len() == self.jobs.len() {
            aggregate(&statuses)
        } else {
            None
        };
        let Some(mut target) = target.filter(|t| self.status.can_advance_to(*t)) else {
            return Ok(());
        };
        if target.is_terminal() {
            let total = self.summed_counts();
            let all_answered = total.total_record_count > 0
                && total.success_record_count == total.total_record_count;
            if target == IntentStatus::Completed && !all_answered {
                target = IntentStatus::PartiallyCompleted;
            }
            // Every record ended with an answer (some after re-runs): the intent is complete
            // even if a job was only partially so, stopped by someone other than its owner,
            // or expired.
            if all_answered && self.cancel_requested_at.is_none() {
                target = IntentStatus::Completed;
            }
            self.counts = Some(total);
            self.failure_message = self
                .jobs
                .iter()
                .filter_map(|j| j.failure_message.clone())
                .reduce(|a, b| format!("{a}; {b}"));
        }
        self.advance(target, now)?;
        match target {
            IntentStatus::Completed | IntentStatus::PartiallyCompleted => {
                self.stage(EventKind::BatchCompleted, now)
            }
            IntentStatus::Failed
            | IntentStatus::Stopped
            | IntentStatus::Expired
            | IntentStatus::Cancelled => self.stage(EventKind::BatchFailed, now),
            _ => {}
        }
        Ok(())
    }

    /// The jobs' counts added up. A job that ended with no outputs (Failed) still had its
    /// records; a re-run job's records were taken out of its parent's counts when it was
    /// planned ([`Self::add_rerun_jobs`]), so no record counts twice.
    fn summed_counts(&self) -> ManifestSummary {
        let mut total = ManifestSummary::default();
        for j in &self.jobs {
            match &j.summary {
                Some(s) => total.add(s),
                None => total.add(&ManifestSummary {
                    total_record_count: j.records().saturating_sub(j.pad_records),
                    ..ManifestSummary::default()
                }),
            }
        }
        total
    }

    /// Adds jobs that re-run the unanswered records of a job that just ended, in the same write
    /// as that job's end (so the intent does not end meanwhile), and owes BATCH_MANIFEST_READY
    /// so the submitter creates them.
    pub fn add_rerun_jobs(
        &mut self,
        jobs: Vec<BatchJob>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        // MANIFEST_READY too: a job of an intent whose later jobs still wait for a slot can
        // end first (its intent moves to SUBMITTED once every job has an ARN).
        if !matches!(
            self.status,
            IntentStatus::ManifestReady | IntentStatus::Submitted | IntentStatus::InProgress
        ) {
            return Err(Refused::Stale {
                current: self.status,
                expected: IntentStatus::InProgress,
            });
        }
        self.jobs.extend(jobs);
        self.updated_at = now;
        self.stage(EventKind::BatchManifestReady, now);
        Ok(())
    }

    /// Ends, without creating them, the re-run jobs a cancel overtook: they are Stopped with no
    /// outputs, and the intent settles on what its other jobs did.
    pub fn drop_unsubmitted_jobs(&mut self, now: DateTime<Utc>) -> Result<(), Refused> {
        for job in self
            .jobs
            .iter_mut()
            .filter(|j| j.arn.is_none() && j.status.is_none())
        {
            job.status = Some(BedrockJobStatus::Stopped);
        }
        self.updated_at = now;
        self.settle(now)
    }

    /// Fails one re-run job Bedrock refused for good (the intent keeps what its other jobs
    /// did, and settles once they have ended).
    pub fn fail_unsubmitted_job(
        &mut self,
        job_no: u32,
        message: String,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.job_no == job_no && j.arn.is_none())
            .ok_or_else(|| Refused::UnknownJob(job_no.to_string()))?;
        job.status = Some(BedrockJobStatus::Failed);
        job.failure_message = Some(message);
        self.updated_at = now;
        self.settle(now)
    }

    /// Records Bedrock's progress of a running job (record counts, expiry). False when nothing
    /// changed enough to write: the counts move in steps of 5% of the job's records at least,
    /// so a running job costs its intent some 20 writes, not one per reconciler pass (each
    /// write makes a racing watcher's save of a sibling job's end go round again).
    pub fn record_progress(
        &mut self,
        arn: &BedrockJobArn,
        progress: Option<crate::domain::bedrock::JobProgress>,
        expires_at: Option<DateTime<Utc>>,
    ) -> bool {
        let Some(job) = self.jobs.iter_mut().find(|j| j.arn.as_ref() == Some(arn)) else {
            return false;
        };
        let small_step = match (job.progress, progress) {
            (Some(old), Some(new)) => {
                let step = old
                    .processed_record_count
                    .abs_diff(new.processed_record_count);
                old.total_record_count == new.total_record_count
                    && step * 20 < new.total_record_count
            }
            (old, new) => old == new,
        };
        if job.status.is_some_and(|s| s.is_terminal())
            || (small_step && job.expires_at == expires_at)
        {
            return false;
        }
        job.progress = progress;
        job.expires_at = expires_at;
        true
    }

    /// Stages the announcement of the current stage again, for an intent stuck before
    /// submission (its message lost or parked in a DLQ). Only REQUESTED and MANIFEST_READY
    /// have one; the event id is new (it carries the version), so it is not de-duplicated.
    pub fn reannounce(&mut self, now: DateTime<Utc>) -> Result<EventKind, Refused> {
        let kind = match self.status {
            IntentStatus::Requested => EventKind::BatchRequested,
            IntentStatus::ManifestReady => EventKind::BatchManifestReady,
            // A running intent whose re-run job is not created yet.
            IntentStatus::Submitted | IntentStatus::InProgress if self.has_unsubmitted_job() => {
                EventKind::BatchManifestReady
            }
            other => {
                return Err(Refused::Stale {
                    current: other,
                    expected: IntentStatus::Requested,
                })
            }
        };
        self.updated_at = now;
        self.stage(kind, now);
        Ok(kind)
    }

    /// The owner's cancel. Before submission it is final at once; once jobs run, it records the
    /// request and names the jobs to stop. Refused (stale) when the intent already ended.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<Cancel, Refused> {
        match self.status {
            IntentStatus::Requested | IntentStatus::ManifestReady | IntentStatus::Pooled => {
                self.failure_message = Some("cancelled by its owner".into());
                self.advance(IntentStatus::Cancelled, now)?;
                self.stage(EventKind::BatchFailed, now);
                match self.pool.as_ref().and_then(|p| p.sealed_into.clone()) {
                    Some(shared) => Ok(Cancel::LeftSharedJob(shared)),
                    None => Ok(Cancel::Cancelled),
                }
            }
            IntentStatus::Submitted | IntentStatus::InProgress => {
                self.cancel_requested_at.get_or_insert(now);
                self.updated_at = now;
                Ok(Cancel::StopJobs(
                    self.jobs
                        .iter()
                        .filter(|j| !j.status.is_some_and(|s| s.is_terminal()))
                        .filter_map(|j| j.arn.clone())
                        .collect(),
                ))
            }
            current => Err(Refused::Stale {
                current,
                expected: IntentStatus::Cancelled,
            }),
        }
    }

    /// Any non-terminal status -> FAILED, for a permanent error at some stage.
    /// Ends an intent with no records to run: every image it sends is a copy of an earlier
    /// one (`app::duplicates`), answered from it.
    pub fn complete_without_jobs(&mut self, now: DateTime<Utc>) -> Result<(), Refused> {
        self.counts = Some(ManifestSummary::default());
        self.advance(IntentStatus::Completed, now)?;
        self.stage(EventKind::BatchCompleted, now);
        Ok(())
    }

    pub fn fail(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Refused> {
        self.failure_message = Some(reason);
        self.advance(IntentStatus::Failed, now)?;
        self.stage(EventKind::BatchFailed, now);
        Ok(())
    }
}
