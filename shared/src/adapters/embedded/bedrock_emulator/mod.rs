//! A Bedrock batch inference emulator. It takes `CreateModelInvocationJob`-shaped requests,
//! honours clientRequestToken, moves each job through Submitted -> Validating -> Scheduled ->
//! InProgress -> a terminal status (one step per `tick`), validates the JSONL input against
//! the quotas, writes `<part>.jsonl.out` and `manifest.json.out` under
//! `{output}/{12-char job id}/`, and publishes Bedrock's "Batch Inference Job State Change"
//! event. Its model output is deterministic and labelled as emulated.

use super::db::{map_err, Db};
use crate::domain::bedrock::{
    output_file_name, CreateJobRequest, JobInfo, JobProgress, ManifestSummary, S3Uri,
    BEDROCK_EVENT_SOURCE, BEDROCK_STATE_CHANGE, SUMMARY_FILE,
};
use crate::domain::events::Envelope;
use crate::domain::ids::{BedrockJobArn, ModelId};
use crate::domain::settings::Quotas;
use crate::domain::status::BedrockJobStatus;
use crate::ports::{BatchInference, Clock, ErrorKind, EventBus, ObjectStore, PortError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS emulator_jobs (
    arn TEXT PRIMARY KEY,
    client_token TEXT NOT NULL UNIQUE,
    job_name TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_message TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    role_arn TEXT NOT NULL DEFAULT '',
    timeout_hours INTEGER NOT NULL DEFAULT 24,
    counts TEXT
);
";

/// Columns added after the first release, for emulator databases made before them.
const MIGRATIONS: &[&str] = &["ALTER TABLE emulator_jobs ADD COLUMN counts TEXT"];

/// What the emulator does besides the happy path; tests set these to exercise error paths.
#[derive(Debug, Clone, Default)]
pub struct EmulatorOptions {
    pub account: String,
    pub region: String,
    /// Every model's quotas, unless the catalog or `model_quotas` says otherwise.
    pub quotas: Quotas,
    /// Per-model quotas (the settings' `MODEL_QUOTAS`).
    pub model_quotas: std::collections::BTreeMap<String, crate::domain::settings::QuotaOverrides>,
    /// Records (by recordId) that fail with (errorCode, errorMessage).
    pub fail_records: HashMap<String, (u16, String)>,
    /// Records that get no output line at all.
    pub drop_records: HashSet<String>,
    /// Jobs expire in Scheduled instead of starting.
    pub expire_scheduled: bool,
    /// Publish state-change events (Bedrock's are best effort; tests may turn them off).
    pub emit_events: bool,
    /// Bedrock's real failures to play (see [`fault_plan`]).
    pub faults: Vec<BedrockFault>,
    /// Who answers for the model (`BO_LOCAL_MODEL`).
    pub local_model: super::local_model::LocalModel,
}

impl EmulatorOptions {
    pub fn new(quotas: Quotas) -> Self {
        Self {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            quotas,
            emit_events: true,
            ..Default::default()
        }
    }
}

pub struct BedrockEmulator {
    db: Arc<Db>,
    objects: Arc<dyn ObjectStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    options: Mutex<EmulatorOptions>,
    /// Fault injection: the next creates fail with this kind.
    create_faults: Mutex<Vec<ErrorKind>>,
    /// The fault plan of `options.faults`, with what it has spent.
    plan: Mutex<Arc<Faults>>,
}

impl std::fmt::Debug for BedrockEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BedrockEmulator")
    }
}

#[derive(Debug, Clone)]
struct Row {
    arn: String,
    job_name: String,
    model_id: String,
    input: String,
    output: String,
    status: BedrockJobStatus,
    failure_message: Option<String>,
    stop_requested: bool,
    submitted_at: String,
    updated_at: String,
    timeout_hours: u32,
    counts: Option<ManifestSummary>,
}

const COLUMNS: &str =
    "arn, job_name, model_id, input, output, status, failure_message, stop_requested, submitted_at, updated_at, timeout_hours, counts";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let status: String = r.get(5)?;
    Ok(Row {
        arn: r.get(0)?,
        job_name: r.get(1)?,
        model_id: r.get(2)?,
        input: r.get(3)?,
        output: r.get(4)?,
        status: status.parse().unwrap_or(BedrockJobStatus::Failed),
        failure_message: r.get(6)?,
        stop_requested: r.get::<_, i64>(7)? != 0,
        submitted_at: r.get(8)?,
        updated_at: r.get(9)?,
        timeout_hours: r.get(10)?,
        counts: r
            .get::<_, Option<String>>(11)?
            .and_then(|c| serde_json::from_str(&c).ok()),
    })
}

fn bad(msg: impl Into<String>) -> PortError {
    PortError::new(ErrorKind::Validation, msg)
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl Row {
    fn info(&self) -> Result<JobInfo, PortError> {
        let unexpected =
            |e: crate::domain::ids::IdError| PortError::new(ErrorKind::Unexpected, e.rule);
        let submitted_at = parse_time(&self.submitted_at);
        Ok(JobInfo {
            arn: BedrockJobArn::parse(&self.arn).map_err(unexpected)?,
            job_name: self.job_name.clone(),
            model_id: ModelId::parse(&self.model_id).map_err(unexpected)?,
            status: self.status,
            failure_message: self.failure_message.clone(),
            input: S3Uri::parse(&self.input).map_err(unexpected)?,
            output: S3Uri::parse(&self.output).map_err(unexpected)?,
            submitted_at,
            last_modified_at: parse_time(&self.updated_at),
            progress: self.counts.map(|c| JobProgress::from(&c)),
            expires_at: Some(self.deadline()),
            ended_at: self
                .status
                .is_terminal()
                .then(|| parse_time(&self.updated_at)),
        })
    }

    /// When the job's timeout (`timeoutDurationInHours` from submission) runs out.
    fn deadline(&self) -> DateTime<Utc> {
        parse_time(&self.submitted_at) + Duration::hours(i64::from(self.timeout_hours))
    }
}

/// One input record as read back from a manifest.
struct InputRecord {
    record_id: String,
    model_input: serde_json::Value,
}

mod checks;
pub mod fault_plan;
mod output;

use fault_plan::{BedrockFault, Faults};

use checks::check_request;
pub use output::{emulated_output, emulated_output_with};

impl BedrockEmulator {
    pub fn new(
        db: Arc<Db>,
        objects: Arc<dyn ObjectStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        options: EmulatorOptions,
    ) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        for m in MIGRATIONS {
            // A column already there (a database made by this version) is the expected error.
            let _ = db.execute_batch(m);
        }
        let plan = Arc::new(Faults::new(&options.faults));
        Ok(Self {
            db,
            objects,
            bus,
            clock,
            options: Mutex::new(options),
            create_faults: Mutex::new(Vec::new()),
            plan: Mutex::new(plan),
        })
    }

    pub fn set_options(&self, f: impl FnOnce(&mut EmulatorOptions)) {
        let mut opts = self.options.lock().unwrap_or_else(|p| p.into_inner());
        let before = opts.faults.clone();
        f(&mut opts);
        if opts.faults != before {
            *self.plan.lock().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(Faults::new(&opts.faults));
        }
    }

    /// The fault plan it plays.
    pub fn faults(&self) -> Vec<BedrockFault> {
        self.opts().faults
    }

    /// Who answers for the model.
    pub fn local_model(&self) -> super::local_model::LocalModel {
        self.opts().local_model
    }

    fn plan(&self) -> Arc<Faults> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn opts(&self) -> EmulatorOptions {
        self.options
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes the next creates fail, one per entry (e.g. `QuotaExceeded`, `Transient`).
    pub fn inject_create_faults(&self, faults: Vec<ErrorKind>) {
        *self.create_faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// What Get/ListModelInvocationJob report beyond [`JobInfo`]: (role ARN, client token,
    /// timeout hours).
    pub fn job_extras(&self, arn: &BedrockJobArn) -> Result<(String, String, u32), PortError> {
        self.db
            .tx(|tx| {
                tx.query_row(
                    "SELECT role_arn, client_token, timeout_hours FROM emulator_jobs WHERE arn = ?1",
                    [arn.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(map_err)
            })?
            .ok_or_else(|| PortError::new(ErrorKind::NotFound, format!("no job {arn}")))
    }

    /// How many jobs exist: what Bedrock would bill.
    pub fn job_count(&self) -> Result<usize, PortError> {
        self.db.tx(|tx| {
            tx.query_row("SELECT COUNT(*) FROM emulator_jobs", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(map_err)
        })
    }

    fn rows(&self, where_sql: &str) -> Result<Vec<Row>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM emulator_jobs {where_sql} ORDER BY submitted_at, arn"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([], row).map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
    }

    fn one(&self, arn: &BedrockJobArn) -> Result<Row, PortError> {
        self.db
            .tx(|tx| {
                tx.query_row(
                    &format!("SELECT {COLUMNS} FROM emulator_jobs WHERE arn = ?1"),
                    [arn.as_str()],
                    row,
                )
                .optional()
                .map_err(map_err)
            })?
            .ok_or_else(|| PortError::new(ErrorKind::NotFound, format!("no job {arn}")))
    }

    fn set_status(
        &self,
        job: &Row,
        status: BedrockJobStatus,
        failure: Option<&str>,
    ) -> Result<(), PortError> {
        let now = self.clock.now().to_rfc3339();
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE emulator_jobs SET status = ?1, failure_message = ?2, updated_at = ?3 WHERE arn = ?4",
                params![status.as_str(), failure, now, job.arn],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn emit(&self, job: &Row, status: BedrockJobStatus, failure: Option<&str>) {
        let opts = self.opts();
        if !opts.emit_events {
            return;
        }
        let envelope = Envelope {
            version: "0".into(),
            id: uuid::Uuid::new_v4().to_string(),
            detail_type: BEDROCK_STATE_CHANGE.into(),
            source: BEDROCK_EVENT_SOURCE.into(),
            account: Some(opts.account.clone()),
            time: Some(self.clock.now()),
            region: Some(opts.region.clone()),
            resources: vec![job.arn.clone()],
            detail: serde_json::json!({
                "version": "1.0",
                "accountId": opts.account,
                "batchJobName": job.job_name,
                "batchJobArn": job.arn,
                "batchModelId": job.model_id,
                "status": status.as_str(),
                "failureMessage": failure.unwrap_or(""),
                "creationTime": job.submitted_at,
            }),
        };
        // Bedrock's events are best effort: a lost one is for the reconciler to repair.
        if let Err(e) = self.bus.publish(&[envelope]).await {
            tracing::warn!(error = %e, "emulator could not publish a state change");
        }
    }

    async fn transition(
        &self,
        job: &Row,
        status: BedrockJobStatus,
        failure: Option<&str>,
    ) -> Result<(), PortError> {
        self.set_status(job, status, failure)?;
        self.emit(job, status, failure).await;
        Ok(())
    }

    /// Moves every unfinished job one step. Returns how many moved (a job stuck in Scheduled
    /// under the fault plan does not).
    pub async fn tick(&self) -> Result<usize, PortError> {
        let jobs = self.rows(
            "WHERE status NOT IN ('Completed','PartiallyCompleted','Failed','Stopped','Expired')",
        )?;
        let opts = self.opts();
        let mut moved = self.land_late_output().await?;
        for job in &jobs {
            if let Some((status, failure)) = self.next_step(job, &opts).await? {
                self.transition(job, status, failure.as_deref()).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// A job's next status, after doing what reaching it takes (validating, running). Bedrock's
    /// lifecycle (user guide, "Monitor batch inference jobs"): Submitted, Validating, Scheduled,
    /// InProgress, then Completed (every record has a line, some may be error objects),
    /// PartiallyCompleted (not every record could be processed), Stopped, or Expired (the
    /// timeout ran out).
    async fn next_step(
        &self,
        job: &Row,
        opts: &EmulatorOptions,
    ) -> Result<Option<(BedrockJobStatus, Option<String>)>, PortError> {
        use BedrockJobStatus as S;
        let plan = self.plan();
        let timed_out = self.clock.now() >= job.deadline();
        let next = match (job.status, job.stop_requested) {
            (S::Submitted | S::Validating | S::Scheduled, true) => S::Stopped,
            (S::InProgress, true) => S::Stopping,
            (S::Stopping, _) => {
                self.process(job, opts, Take::Half).await?;
                S::Stopped
            }
            (S::Submitted, false) => S::Validating,
            (S::Validating, false) => match self.validate(job, &job_quotas(job, opts)).await {
                Ok(total) => {
                    self.set_counts(
                        job,
                        &ManifestSummary {
                            total_record_count: total,
                            ..ManifestSummary::default()
                        },
                    )?;
                    S::Scheduled
                }
                Err(msg) => return Ok(Some((S::Failed, Some(msg)))),
            },
            (S::Scheduled, false) if timed_out || opts.expire_scheduled => S::Expired,
            (S::Scheduled, false) if plan.has(BedrockFault::StuckScheduled) => return Ok(None),
            (S::Scheduled, false) => S::InProgress,
            (S::InProgress, false) if timed_out || plan.expires_half(&job.arn) => {
                self.process(job, opts, Take::Half).await?;
                S::Expired
            }
            (S::InProgress, false) => {
                let summary = self.process(job, opts, Take::All).await?;
                if summary.processed_record_count < summary.total_record_count {
                    S::PartiallyCompleted
                } else {
                    S::Completed
                }
            }
            _ => return Ok(None),
        };
        Ok(Some((next, None)))
    }

    fn set_counts(&self, job: &Row, counts: &ManifestSummary) -> Result<(), PortError> {
        let json = serde_json::to_string(counts)
            .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "counts", e))?;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE emulator_jobs SET counts = ?1 WHERE arn = ?2",
                params![json, job.arn],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }
}

/// The quotas Bedrock holds a job to: its model's.
fn job_quotas(job: &Row, opts: &EmulatorOptions) -> Quotas {
    match ModelId::parse(&job.model_id) {
        Ok(model) => {
            crate::domain::settings::quotas_for_model(&opts.quotas, &opts.model_quotas, &model)
        }
        Err(_) => opts.quotas.clone(),
    }
}

/// How much of its input a job runs before it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    All,
    /// The first half of each file (a stopped or expired job).
    Half,
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(12)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

#[async_trait]
impl BatchInference for BedrockEmulator {
    async fn create_job(&self, req: &CreateJobRequest) -> Result<BedrockJobArn, PortError> {
        if let Some(kind) = {
            let mut faults = self.create_faults.lock().unwrap_or_else(|p| p.into_inner());
            (!faults.is_empty()).then(|| faults.remove(0))
        } {
            return Err(PortError::new(
                kind,
                "injected CreateModelInvocationJob failure",
            ));
        }
        check_request(req)?;
        if let Some(e) = self.plan().on_create(&req.role_arn, req.model_id.as_str()) {
            return Err(e);
        }
        let opts = self.opts();
        let now = self.clock.now().to_rfc3339();
        let arn = format!(
            "arn:aws:bedrock:{}:{}:model-invocation-job/{}",
            opts.region,
            opts.account,
            random_suffix()
        );
        let created = self.insert_job(req, &arn, &now)?;
        let (arn, fresh) = created;
        let parsed = BedrockJobArn::parse(&arn)
            .map_err(|e| PortError::new(ErrorKind::Unexpected, e.rule))?;
        if fresh {
            let job = self.one(&parsed)?;
            self.emit(&job, BedrockJobStatus::Submitted, None).await;
            if let Some(e) = self.plan().conflict_after_create(&req.job_name) {
                return Err(e);
            }
        }
        Ok(parsed)
    }

    async fn get_job(&self, arn: &BedrockJobArn) -> Result<JobInfo, PortError> {
        self.one(arn)?.info()
    }

    async fn stop_job(&self, arn: &BedrockJobArn) -> Result<(), PortError> {
        let job = self.one(arn)?;
        if job.status.is_terminal() {
            // StopModelInvocationJob's API reference lists ConflictException (400) for a job
            // that cannot be stopped in its state.
            return Err(PortError::new(
                ErrorKind::Conflict,
                format!("job {arn} is {} and cannot be stopped", job.status),
            ));
        }
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE emulator_jobs SET stop_requested = 1 WHERE arn = ?1",
                [arn.as_str()],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn list_jobs(&self, status: Option<BedrockJobStatus>) -> Result<Vec<JobInfo>, PortError> {
        self.rows("")?
            .into_iter()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .map(|r| r.info())
            .collect()
    }

    async fn find_job(&self, name: &str) -> Result<Option<JobInfo>, PortError> {
        let jobs = self.list_jobs(None).await?;
        Ok(jobs.into_iter().find(|j| j.job_name == name))
    }
}
