//! An intent against its deadline: a late job stopped at its cut-off, a job moved to
//! on-demand, an on-demand job's end, and the durations a finished job leaves behind.

use crate::domain::deadline::{ends_after, JobSample};
use crate::domain::intent::*;

impl BatchIntent {
    /// Marks job `arn` as stopped at its deadline's cut-off (the caller then asks Bedrock to
    /// stop it). Refused when the job ended or was marked already: a replay marks nothing.
    pub fn mark_deadline_stop(
        &mut self,
        arn: &BedrockJobArn,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.arn.as_ref() == Some(arn))
            .ok_or_else(|| Refused::UnknownJob(arn.to_string()))?;
        let status = job.status.unwrap_or(BedrockJobStatus::Submitted);
        if status.is_terminal() || job.deadline_stop_at.is_some() {
            return Err(Refused::JobStale {
                from: status,
                to: BedrockJobStatus::Stopping,
            });
        }
        job.deadline_stop_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// Moves job `job_no`, planned but never created (it waits for a slot), to on-demand, and
    /// owes BATCH_MANIFEST_READY so the submitter runs it. Refused once created or moved.
    pub fn move_on_demand(&mut self, job_no: u32, now: DateTime<Utc>) -> Result<(), Refused> {
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.job_no == job_no && j.arn.is_none() && j.status.is_none())
            .ok_or_else(|| Refused::UnknownJob(job_no.to_string()))?;
        if job.on_demand {
            return Err(Refused::UnknownJob(job_no.to_string()));
        }
        job.on_demand = true;
        job.deadline_stop_at = Some(now);
        self.waiting_for_slot_since = None;
        self.updated_at = now;
        self.stage(EventKind::BatchManifestReady, now);
        Ok(())
    }

    /// Ends on-demand job `job_no` with its counts: Completed when every record was answered,
    /// else PartiallyCompleted. The intent moves on as if a Bedrock job had ended.
    pub fn record_on_demand_job(
        &mut self,
        job_no: u32,
        summary: ManifestSummary,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.job_no == job_no && j.on_demand && j.status.is_none())
            .ok_or_else(|| Refused::UnknownJob(job_no.to_string()))?;
        job.status = Some(
            if summary.success_record_count >= summary.total_record_count {
                BedrockJobStatus::Completed
            } else {
                BedrockJobStatus::PartiallyCompleted
            },
        );
        job.summary = Some(summary);
        self.updated_at = now;
        if self.status == IntentStatus::ManifestReady && !self.has_unsubmitted_job() {
            self.advance(IntentStatus::Submitted, now)?;
            self.stage(EventKind::BatchSubmitted, now);
        }
        self.settle(now)
    }

    /// The durations job `arn` leaves behind now that it ended at `now`, if it was created by
    /// Bedrock (an on-demand job tells nothing of batch queues).
    pub fn job_sample(&self, arn: &BedrockJobArn, now: DateTime<Utc>) -> Option<JobSample> {
        let job = self.job_by_arn(arn)?;
        let created = job.created_at?;
        let secs = |d: Duration| d.num_milliseconds().max(0) as f64 / 1000.0;
        let (queue, run) = match job.started_at {
            Some(started) => (secs(started - created), Some(secs(now - started))),
            None if job.deadline_stop_at.is_some() => (secs(now - created), None),
            // Expired without starting: it queued at least this long, and leaving it out would
            // make the queue look short (the p90 optimistic) exactly when it is long.
            None if job.status == Some(BedrockJobStatus::Expired) => (secs(now - created), None),
            // Ended without being seen running (an event missed): the whole is an upper
            // bound of neither part, so it is not kept.
            None => return None,
        };
        // The records it ran, not those it was given: a job stopped or expired part-way ran
        // fewer, and dividing by all of them would make the pace look fast.
        let ran = job
            .summary
            .map_or(job.records(), |s| s.processed_record_count);
        Some(JobSample {
            ended_at: now,
            records: ran,
            queue_secs: queue,
            run_secs: run,
        })
    }

    /// The first job not created (nor ended) yet among the batch jobs, or the on-demand ones.
    pub fn next_unsubmitted(&self, on_demand: bool) -> Option<&BatchJob> {
        self.jobs
            .iter()
            .find(|j| j.arn.is_none() && j.status.is_none() && j.on_demand == on_demand)
    }

    /// True when the plan or a cut-off says this intent may miss its deadline.
    pub fn at_risk(&self, now: DateTime<Utc>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        !self.status.is_terminal()
            && (self
                .estimated_completion
                .is_some_and(|e| ends_after(e, deadline))
                || ends_after(now, deadline)
                || self.jobs.iter().any(|j| j.deadline_stop_at.is_some()))
    }
}
