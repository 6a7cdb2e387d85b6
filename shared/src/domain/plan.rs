//! The job planner: how records are split into parts (files) and jobs under Bedrock's four
//! quotas (records and bytes per file, records and bytes per job), with no job below the
//! minimum records per job. Pure counting: the manifest builder streams parts by it, and the
//! property test and the night benchmark run the same code over millions of records.
//!
//! Bedrock's rules ("Quotas for Amazon Bedrock", batch inference rows; bedrock-batch-facts.md):
//! a job holds at most 50,000 records and 5 GB, a file at most 50,000 records and 1 GB, and
//! a job with fewer than 100 records is refused at validation. The minimum applies to every
//! job, so a split must never leave a small tail. The choices:
//! - **Balanced by records.** With `n` records expected, the intent needs
//!   `jobs = ceil(n / max_records_per_job)` jobs by the record quota, and each takes at most
//!   `target = clamp(ceil(n / jobs), min, max)`: 50,001 records become 25,001 + 25,000,
//!   never 50,000 + 1.
//! - **Greedy by bytes.** Record sizes are only known as records are encoded, so bytes fill
//!   each job to its quota (the fewest jobs). A job its byte quota closes holds at least
//!   `max_job_bytes / largest record` records: 5 GB / 5 MB = 1,000, far above the minimum.
//! - **The tail is padded.** What can still leave the last job short (a byte split, images
//!   rejected after the plan was made, a record quota below twice the minimum) is padded up to
//!   the minimum with the family's pad record: a tiny text request of one output token whose
//!   answer is dropped. 80 pads cost about 1,600 input tokens at the batch price, against a
//!   refused job. Handing the tail back to the pool would split one request over two jobs'
//!   results and lifecycles; padding keeps an intent's jobs its own.

use crate::domain::settings::Quotas;

/// Where the next record of a manifest goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the part being written.
    Same,
    /// In a new part of the same job.
    NewPart,
    /// In the first part of a new job.
    NewJob,
}

/// Places records, in order, into parts and jobs; see the module's rules.
#[derive(Debug, Clone)]
pub struct Splitter {
    quotas: Quotas,
    /// Records a job takes at most: the balanced target, or the record quota.
    job_cap: u64,
    started: bool,
    part_records: u64,
    part_bytes: u64,
    job_records: u64,
    job_bytes: u64,
    pub jobs: u32,
    pub parts: u32,
    pub records: u64,
    /// Bytes placed in all.
    pub bytes: u64,
    /// A new job starts at this record (the deadline planner's batch share ends there).
    cut_at: Option<u64>,
}

impl Splitter {
    /// A greedy splitter (the record count is not known ahead).
    pub fn new(quotas: &Quotas) -> Self {
        Self::balanced(quotas, 0)
    }

    /// A splitter for about `expected` records (0: unknown), balanced by records.
    pub fn balanced(quotas: &Quotas, expected: u64) -> Self {
        Self {
            quotas: quotas.clone(),
            job_cap: balanced_cap(quotas, expected),
            started: false,
            part_records: 0,
            part_bytes: 0,
            job_records: 0,
            job_bytes: 0,
            jobs: 0,
            parts: 0,
            records: 0,
            bytes: 0,
            cut_at: None,
        }
    }

    /// The same splitter with a job boundary after the first `at` records, which it balances
    /// its jobs for (the records after it run on-demand, see `domain::deadline`).
    pub fn with_cut(mut self, at: u64) -> Self {
        self.job_cap = balanced_cap(&self.quotas, at);
        self.cut_at = Some(at);
        self
    }

    /// True once the records placed reach the cut: every later job runs on-demand.
    pub fn past_cut(&self) -> bool {
        self.cut_at.is_some_and(|c| self.records >= c)
    }

    /// Where a record of `len` bytes (its line, newline included) would go, without placing it.
    pub fn peek(&self, len: u64) -> Place {
        let q = &self.quotas;
        if !self.started
            || self.cut_at == Some(self.records)
            || self.job_records + 1 > self.job_cap
            || self.job_bytes + len > q.job_bytes_budget()
        {
            Place::NewJob
        } else if self.part_records > 0
            && (self.part_records + 1 > q.max_records_per_file
                || self.part_bytes + len > q.file_bytes_budget())
        {
            Place::NewPart
        } else {
            Place::Same
        }
    }

    /// Places one record of `len` bytes.
    pub fn place(&mut self, len: u64) -> Place {
        if self.cut_at == Some(self.records) {
            // Past the cut the records run on-demand: as few jobs as the record quota allows.
            self.job_cap = self.quotas.max_records_per_job;
        }
        let place = self.peek(len);
        match place {
            Place::NewJob => {
                self.started = true;
                self.jobs += 1;
                self.parts += 1;
                (self.job_records, self.job_bytes) = (0, 0);
                (self.part_records, self.part_bytes) = (0, 0);
            }
            Place::NewPart => {
                self.parts += 1;
                (self.part_records, self.part_bytes) = (0, 0);
            }
            Place::Same => {}
        }
        self.part_records += 1;
        self.part_bytes += len;
        self.job_records += 1;
        self.job_bytes += len;
        self.records += 1;
        self.bytes += len;
        place
    }

    /// The minimum records per job it plans to.
    pub fn min_records_per_job(&self) -> u64 {
        self.quotas.min_records_per_job
    }

    /// Pad records the open job needs to reach the minimum (0 with no job open).
    pub fn pads_needed(&self) -> u64 {
        if self.started {
            self.quotas
                .min_records_per_job
                .saturating_sub(self.job_records)
        } else {
            0
        }
    }

    /// Records in the open job so far.
    pub fn job_records(&self) -> u64 {
        self.job_records
    }
}

/// Records one job takes at most, for `expected` records: see the module's rules.
pub fn balanced_cap(q: &Quotas, expected: u64) -> u64 {
    let max = q.max_records_per_job.max(1);
    if expected == 0 {
        return max;
    }
    let jobs = expected.div_ceil(max);
    expected
        .div_ceil(jobs)
        .clamp(q.min_records_per_job.min(max), max)
}

/// One job of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlannedJob {
    /// The records placed in it (pads not included).
    pub records: u64,
    pub pads: u64,
    pub bytes: u64,
    /// (records, bytes) of each part, pads included.
    pub parts: Vec<(u64, u64)>,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the last job has {records} records and no room to pad it to the minimum of {min}: raise MAX_JOB_BYTES or lower MIN_RECORDS_PER_JOB")]
pub struct NoRoomToPad {
    pub records: u64,
    pub min: u64,
}

/// Plans records of the given lengths, in order, as the manifest builder writes them, padding
/// the last job with `pad_len`-byte records when `pad_len` is set.
pub fn plan(
    quotas: &Quotas,
    lens: &[u64],
    pad_len: Option<u64>,
) -> Result<Vec<PlannedJob>, NoRoomToPad> {
    let mut s = Splitter::balanced(quotas, lens.len() as u64);
    let mut jobs: Vec<PlannedJob> = Vec::new();
    let put = |s: &mut Splitter, jobs: &mut Vec<PlannedJob>, len: u64, pad: bool| {
        match s.place(len) {
            Place::NewJob => jobs.push(PlannedJob {
                parts: vec![(0, 0)],
                ..PlannedJob::default()
            }),
            Place::NewPart => jobs
                .last_mut()
                .into_iter()
                .for_each(|j| j.parts.push((0, 0))),
            Place::Same => {}
        }
        if let Some(job) = jobs.last_mut() {
            if pad {
                job.pads += 1;
            } else {
                job.records += 1;
            }
            job.bytes += len;
            if let Some(part) = job.parts.last_mut() {
                part.0 += 1;
                part.1 += len;
            }
        }
    };
    for &len in lens {
        put(&mut s, &mut jobs, len, false);
    }
    if let Some(pad_len) = pad_len {
        for _ in 0..s.pads_needed() {
            if s.peek(pad_len) == Place::NewJob {
                return Err(NoRoomToPad {
                    records: s.job_records(),
                    min: quotas.min_records_per_job,
                });
            }
            put(&mut s, &mut jobs, pad_len, true);
        }
    }
    Ok(jobs)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
