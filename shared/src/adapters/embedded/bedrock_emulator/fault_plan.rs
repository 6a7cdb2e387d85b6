//! Bedrock's real failures, on demand: a fault plan the emulator follows, so a local run or a
//! test sees what a deploy would (`--bedrock-fault KIND`, repeatable, on every command that runs
//! the pipeline, and `BO_BEDROCK_FAULTS`, comma-separated). Each kind is one way Bedrock is
//! documented to fail (see docs/architecture.md, "Bedrock's statuses and errors"):
//!
//! | kind | what the emulator does |
//! | --- | --- |
//! | `completed-with-errors` | every job ends Completed with 5% of its lines as error objects |
//! | `expire-half` | the first job answers half its records, then ends Expired |
//! | `create-access-denied` | the first create answers AccessDeniedException |
//! | `create-quota-exceeded` | the first 3 creates answer ServiceQuotaExceededException |
//! | `stuck-scheduled` | every job stays Scheduled until stopped or its timeout passes |
//! | `on-demand-throttle` | InvokeModel takes at most the configured requests a minute (any 60 s) and answers ThrottlingException above it |
//! | `output-renamed` | each job's output files get other names than `{input}.out` (AWS documents one output file per input file, but no name) |
//! | `create-conflict` | the first create makes its job, then answers ConflictException (as a retried create racing its first may) |
//! | `wrong-total` | the answer of every 10th record (record index 0 mod 10) in a batch job has its total off by 10 |
//! | `malformed-json` | the same records' answers are cut in half: no JSON object |
//! | `future-date` | the same records' answers are dated 2099-01-01 |
//! | `late-output` | a stopped or expired job's output for its processed records lands 20 s after the job's event |
//!
//! "First" counts within one emulator (one process): a plan is for one run.

use crate::ports::{ErrorKind, PortError};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Mutex;

/// The environment variable that holds a comma-separated fault plan.
pub const BEDROCK_FAULTS_ENV: &str = "BO_BEDROCK_FAULTS";

/// One way Bedrock fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BedrockFault {
    CompletedWithErrors,
    ExpireHalf,
    CreateAccessDenied,
    CreateQuotaExceeded,
    StuckScheduled,
    OnDemandThrottle,
    OutputRenamed,
    LateOutput,
    CreateConflict,
    WrongTotal,
    MalformedJson,
    FutureDate,
}

impl BedrockFault {
    pub const ALL: [BedrockFault; 12] = [
        Self::CompletedWithErrors,
        Self::ExpireHalf,
        Self::CreateAccessDenied,
        Self::CreateQuotaExceeded,
        Self::StuckScheduled,
        Self::OnDemandThrottle,
        Self::OutputRenamed,
        Self::LateOutput,
        Self::CreateConflict,
        Self::WrongTotal,
        Self::MalformedJson,
        Self::FutureDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CompletedWithErrors => "completed-with-errors",
            Self::ExpireHalf => "expire-half",
            Self::CreateAccessDenied => "create-access-denied",
            Self::CreateQuotaExceeded => "create-quota-exceeded",
            Self::StuckScheduled => "stuck-scheduled",
            Self::OnDemandThrottle => "on-demand-throttle",
            Self::OutputRenamed => "output-renamed",
            Self::LateOutput => "late-output",
            Self::CreateConflict => "create-conflict",
            Self::WrongTotal => "wrong-total",
            Self::MalformedJson => "malformed-json",
            Self::FutureDate => "future-date",
        }
    }
}

impl std::fmt::Display for BedrockFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BedrockFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                let kinds: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown Bedrock fault {s:?}: must be one of {}",
                    kinds.join(", ")
                )
            })
    }
}

/// A comma-separated list of kinds (`BO_BEDROCK_FAULTS`); blanks are skipped.
pub fn parse_faults(list: &str) -> Result<Vec<BedrockFault>, String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// One in this many of a job's lines is an error object under `completed-with-errors` (5%).
pub const ERROR_LINE_EVERY: usize = 20;

/// Creates refused by `create-quota-exceeded`.
const QUOTA_REFUSALS: usize = 3;

/// What the plan has spent, within this emulator.
#[derive(Debug, Default)]
struct Spent {
    creates_refused: usize,
    access_denied: bool,
    conflicted: bool,
    /// The job `expire-half` chose (the first to run).
    expiring: Option<String>,
    /// Output held back by `late-output`: when it lands, where, and its bytes.
    late: Vec<(
        chrono::DateTime<chrono::Utc>,
        crate::domain::bedrock::S3Uri,
        Vec<u8>,
    )>,
}

/// How long `late-output` holds a stopped job's output back after its Stopped event.
pub const LATE_OUTPUT_SECS: i64 = 20;

/// The fault plan and what it has spent.
#[derive(Debug, Default)]
pub struct Faults {
    kinds: HashSet<BedrockFault>,
    spent: Mutex<Spent>,
}

impl Faults {
    pub fn new(kinds: &[BedrockFault]) -> Self {
        Self {
            kinds: kinds.iter().copied().collect(),
            spent: Mutex::default(),
        }
    }

    pub fn has(&self, kind: BedrockFault) -> bool {
        self.kinds.contains(&kind)
    }

    fn spent(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error a create answers under the plan, if it answers one. Messages are Bedrock's
    /// own wording where AWS documents it.
    pub fn on_create(&self, role_arn: &str, model: &str) -> Option<PortError> {
        let mut spent = self.spent();
        if self.has(BedrockFault::CreateAccessDenied) && !spent.access_denied {
            spent.access_denied = true;
            return Some(PortError::new(
                ErrorKind::Forbidden,
                format!(
                    "AccessDeniedException: User is not authorized to perform: iam:PassRole on resource: {role_arn} (emulated fault create-access-denied, model {model})"
                ),
            ));
        }
        if self.has(BedrockFault::CreateQuotaExceeded) && spent.creates_refused < QUOTA_REFUSALS {
            spent.creates_refused += 1;
            return Some(PortError::new(
                ErrorKind::QuotaExceeded,
                "ServiceQuotaExceededException: the number of submitted and in-progress batch inference jobs for this model is at its quota (emulated fault create-quota-exceeded)",
            ));
        }
        None
    }

    /// The ConflictException the first create answers after making its job (`create-conflict`).
    pub fn conflict_after_create(&self, job_name: &str) -> Option<PortError> {
        let mut spent = self.spent();
        if !self.has(BedrockFault::CreateConflict) || spent.conflicted {
            return None;
        }
        spent.conflicted = true;
        Some(PortError::new(
            ErrorKind::Conflict,
            format!("ConflictException: a job named {job_name} is being created (emulated fault create-conflict)"),
        ))
    }

    /// The answer fault for the batch record `record_id`, if the plan spoils it: every 10th
    /// record (its number in the job 0 mod 10: an intent's image index, a shared job's n;
    /// padding never). An on-demand answer (a re-ask) is never spoiled.
    pub fn answer_fault(&self, record_id: &str) -> Option<BedrockFault> {
        let index = crate::domain::manifest::record_number(record_id)?;
        if index % 10 != 0 {
            return None;
        }
        [
            BedrockFault::WrongTotal,
            BedrockFault::MalformedJson,
            BedrockFault::FutureDate,
        ]
        .into_iter()
        .find(|f| self.has(*f))
    }

    /// Holds `bytes` for `uri` back until `at` (`late-output`).
    pub fn hold(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        uri: crate::domain::bedrock::S3Uri,
        bytes: Vec<u8>,
    ) {
        self.spent().late.push((at, uri, bytes));
    }

    /// When the earliest held-back output lands, if any is held.
    pub fn next_due(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.spent().late.iter().map(|(at, ..)| *at).min()
    }

    /// The held-back output due by `now`, taken out of the plan.
    pub fn due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(crate::domain::bedrock::S3Uri, Vec<u8>)> {
        let mut spent = self.spent();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut spent.late)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        spent.late = later;
        due.into_iter()
            .map(|(_, uri, bytes)| (uri, bytes))
            .collect()
    }

    /// True when the job `arn`, now running, is the one `expire-half` expires: the first to run.
    pub fn expires_half(&self, arn: &str) -> bool {
        if !self.has(BedrockFault::ExpireHalf) {
            return false;
        }
        let mut spent = self.spent();
        spent.expiring.get_or_insert_with(|| arn.to_owned()) == arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_parsing_a_plan_should_take_every_kind_and_name_a_wrong_one() {
        let all: Vec<&str> = BedrockFault::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            parse_faults(&all.join(",")).expect("valid"),
            BedrockFault::ALL.to_vec()
        );
        assert_eq!(parse_faults(" , ").expect("blank"), vec![]);
        let err = parse_faults("expire-half,melt").expect_err("unknown");
        assert!(
            err.contains("melt") && err.contains("stuck-scheduled"),
            "{err}"
        );
    }

    #[test]
    fn when_creates_are_refused_should_spend_each_fault_as_stated() {
        let f = Faults::new(&[
            BedrockFault::CreateAccessDenied,
            BedrockFault::CreateQuotaExceeded,
        ]);
        let kinds: Vec<Option<ErrorKind>> = (0..6)
            .map(|_| f.on_create("r", "m").map(|e| e.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                Some(ErrorKind::Forbidden),
                Some(ErrorKind::QuotaExceeded),
                Some(ErrorKind::QuotaExceeded),
                Some(ErrorKind::QuotaExceeded),
                None,
                None
            ]
        );
        let f = Faults::new(&[BedrockFault::ExpireHalf]);
        assert!(f.expires_half("a"));
        assert!(f.expires_half("a"), "the same job again");
        assert!(!f.expires_half("b"), "only the first job");
    }
}
