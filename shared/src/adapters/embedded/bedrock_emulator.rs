//! A Bedrock batch inference emulator. It takes `CreateModelInvocationJob`-shaped requests,
//! honours clientRequestToken, moves each job through Submitted -> Validating -> Scheduled ->
//! InProgress -> a terminal status (one step per `tick`), validates the JSONL input against
//! the quotas, writes `<part>.jsonl.out` and `manifest.json.out` under
//! `{output}/{12-char job id}/`, and publishes Bedrock's "Batch Inference Job State Change"
//! event. Its model output is deterministic and labelled as emulated.

use super::db::{map_err, Db};
use crate::domain::bedrock::{
    output_file_name, CreateJobRequest, JobInfo, ManifestSummary, S3Uri, BEDROCK_EVENT_SOURCE,
    BEDROCK_STATE_CHANGE, SUMMARY_FILE,
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
    timeout_hours INTEGER NOT NULL DEFAULT 24
);
";

/// What the emulator does besides the happy path; tests set these to exercise error paths.
#[derive(Debug, Clone, Default)]
pub struct EmulatorOptions {
    pub account: String,
    pub region: String,
    pub quotas: Quotas,
    /// Records (by recordId) that fail with (errorCode, errorMessage).
    pub fail_records: HashMap<String, (u16, String)>,
    /// Records that get no output line at all.
    pub drop_records: HashSet<String>,
    /// Jobs expire in Scheduled instead of starting.
    pub expire_scheduled: bool,
    /// Publish state-change events (Bedrock's are best effort; tests may turn them off).
    pub emit_events: bool,
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
}

const COLUMNS: &str =
    "arn, job_name, model_id, input, output, status, failure_message, stop_requested, submitted_at, updated_at";

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
        Ok(JobInfo {
            arn: BedrockJobArn::parse(&self.arn).map_err(unexpected)?,
            job_name: self.job_name.clone(),
            model_id: ModelId::parse(&self.model_id).map_err(unexpected)?,
            status: self.status,
            failure_message: self.failure_message.clone(),
            input: S3Uri::parse(&self.input).map_err(unexpected)?,
            output: S3Uri::parse(&self.output).map_err(unexpected)?,
            submitted_at: parse_time(&self.submitted_at),
            last_modified_at: parse_time(&self.updated_at),
        })
    }
}

/// One input record as read back from a manifest.
struct InputRecord {
    record_id: String,
    model_input: serde_json::Value,
}

impl BedrockEmulator {
    pub fn new(
        db: Arc<Db>,
        objects: Arc<dyn ObjectStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        options: EmulatorOptions,
    ) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self {
            db,
            objects,
            bus,
            clock,
            options: Mutex::new(options),
            create_faults: Mutex::new(Vec::new()),
        })
    }

    pub fn set_options(&self, f: impl FnOnce(&mut EmulatorOptions)) {
        f(&mut self.options.lock().unwrap_or_else(|p| p.into_inner()));
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

    /// Moves every unfinished job one step. Returns how many moved.
    pub async fn tick(&self) -> Result<usize, PortError> {
        let jobs = self.rows(
            "WHERE status NOT IN ('Completed','PartiallyCompleted','Failed','Stopped','Expired')",
        )?;
        let opts = self.opts();
        for job in &jobs {
            use BedrockJobStatus as S;
            match (job.status, job.stop_requested) {
                (S::Submitted | S::Validating | S::Scheduled, true) => {
                    self.transition(job, S::Stopped, None).await?
                }
                (S::InProgress, true) => self.transition(job, S::Stopping, None).await?,
                (S::Stopping, _) => {
                    self.process(job, &opts, true).await?;
                    self.transition(job, S::Stopped, None).await?
                }
                (S::Submitted, false) => self.transition(job, S::Validating, None).await?,
                (S::Validating, false) => match self.validate(job, &opts.quotas).await {
                    Ok(_) => self.transition(job, S::Scheduled, None).await?,
                    Err(msg) => self.transition(job, S::Failed, Some(&msg)).await?,
                },
                (S::Scheduled, false) if opts.expire_scheduled => {
                    self.transition(job, S::Expired, None).await?
                }
                (S::Scheduled, false) => self.transition(job, S::InProgress, None).await?,
                (S::InProgress, false) => {
                    let summary = self.process(job, &opts, false).await?;
                    let status = if summary.error_record_count > 0
                        || summary.processed_record_count < summary.total_record_count
                    {
                        S::PartiallyCompleted
                    } else {
                        S::Completed
                    };
                    self.transition(job, status, None).await?
                }
                _ => {}
            }
        }
        Ok(jobs.len())
    }

    /// Reads every `.jsonl` file of the job's input folder (or the one file it names).
    async fn read_input(&self, job: &Row) -> Result<Vec<(String, u64, Vec<InputRecord>)>, String> {
        let input = S3Uri::parse(&job.input).map_err(|e| e.rule)?;
        let keys = if input.key.ends_with(".jsonl") {
            vec![input.object_key().map_err(|e| e.rule)?]
        } else {
            self.objects
                .list(&input.bucket, &input.key)
                .await
                .map_err(|e| format!("cannot list input: {e}"))?
                .into_iter()
                .filter(|k| k.as_str().ends_with(".jsonl"))
                .collect()
        };
        if keys.is_empty() {
            return Err(format!("no .jsonl input files found at {input}"));
        }
        let mut files = Vec::with_capacity(keys.len());
        for key in keys {
            let bytes = self
                .objects
                .get(&S3Uri::object(&input.bucket, &key))
                .await
                .map_err(|e| format!("cannot read {key}: {e}"))?;
            let text =
                String::from_utf8(bytes.clone()).map_err(|_| format!("{key} is not UTF-8"))?;
            let mut records = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let value: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| format!("{key} line {}: not JSON ({e})", n + 1))?;
                let model_input = value
                    .get("modelInput")
                    .filter(|m| m.is_object())
                    .cloned()
                    .ok_or_else(|| format!("{key} line {}: modelInput must be an object", n + 1))?;
                // Bedrock fills a missing recordId in. A present one follows the user guide's
                // record template: "11 character alphanumeric string".
                let record_id = match value.get("recordId") {
                    None => format!("AUTO{:07}", records.len() + 1),
                    Some(r) => r
                        .as_str()
                        .filter(|id| crate::domain::manifest::is_bedrock_record_id(id))
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            format!(
                                "{key} line {}: recordId {r} is not an 11 character alphanumeric string",
                                n + 1
                            )
                        })?,
                };
                records.push(InputRecord {
                    record_id,
                    model_input,
                });
            }
            files.push((key.file_name().to_owned(), bytes.len() as u64, records));
        }
        Ok(files)
    }

    /// Bedrock's same-folder rule for records that reference images in S3: each must sit in
    /// the folder the job reads, and exist. The reason a record is refused, if it is.
    async fn check_locations(&self, job: &Row, model_input: &serde_json::Value) -> Option<String> {
        let input = S3Uri::parse(&job.input).ok()?;
        let folder = input.key.trim_end_matches('/').to_owned() + "/";
        for raw in crate::domain::family::s3_locations(model_input) {
            let inside = S3Uri::parse(&raw)
                .ok()
                .filter(|u| u.bucket == input.bucket && u.key.starts_with(&folder));
            let Some(uri) = inside else {
                return Some(format!(
                    "ValidationException: s3Location {raw} is not in the job's input folder {input}"
                ));
            };
            if self.objects.head(&uri, 0).await.is_err() {
                return Some(format!(
                    "ValidationException: s3Location {raw} does not exist"
                ));
            }
        }
        None
    }

    /// A record's image tokens, as Bedrock would count them from the pixels it is sent, or why
    /// it refuses the record (an image over its limits, an s3Location outside the job's folder).
    async fn image_tokens(
        &self,
        job: &Row,
        model_input: &serde_json::Value,
    ) -> Result<u64, String> {
        if let Some(msg) = self.check_locations(job, model_input).await {
            return Err(msg);
        }
        let mut images = super::vision::inline_images(model_input);
        for raw in crate::domain::family::s3_locations(model_input) {
            let uri = S3Uri::parse(&raw).map_err(|e| e.rule)?;
            images.push(self.objects.get(&uri).await.map_err(|e| e.to_string())?);
        }
        images.iter().map(|b| super::vision::image_tokens(b)).sum()
    }

    async fn validate(&self, job: &Row, q: &Quotas) -> Result<(), String> {
        let files = self.read_input(job).await?;
        let mut total = 0u64;
        let mut bytes = 0u64;
        for (name, size, records) in &files {
            if *size > q.max_file_bytes {
                return Err(format!(
                    "input file {name} is {size} bytes; the limit is {}",
                    q.max_file_bytes
                ));
            }
            if records.len() as u64 > q.max_records_per_file {
                return Err(format!(
                    "input file {name} has {} records; the limit is {}",
                    records.len(),
                    q.max_records_per_file
                ));
            }
            total += records.len() as u64;
            bytes += size;
        }
        if total < q.min_records_per_job {
            return Err(format!(
                "the job has {total} records; the minimum per batch inference job is {}",
                q.min_records_per_job
            ));
        }
        if total > q.max_records_per_job {
            return Err(format!(
                "the job has {total} records; the limit is {}",
                q.max_records_per_job
            ));
        }
        if bytes > q.max_job_bytes {
            return Err(format!(
                "the job input is {bytes} bytes; the limit is {}",
                q.max_job_bytes
            ));
        }
        Ok(())
    }

    /// Runs the records and writes the outputs. A stopped job gets the first half of each file.
    async fn process(
        &self,
        job: &Row,
        opts: &EmulatorOptions,
        stopped: bool,
    ) -> Result<ManifestSummary, PortError> {
        let files = self.read_input(job).await.map_err(bad)?;
        let arn = BedrockJobArn::parse(&job.arn).map_err(|e| bad(e.rule))?;
        let out_dir = S3Uri::parse(&job.output)
            .map_err(|e| bad(e.rule))?
            .join(arn.job_suffix());
        let mut summary = ManifestSummary::default();
        for (name, _, records) in files {
            summary.total_record_count += records.len() as u64;
            let take = if stopped {
                records.len() / 2
            } else {
                records.len()
            };
            let mut out = String::new();
            for rec in records.into_iter().take(take) {
                if opts.drop_records.contains(&rec.record_id) {
                    continue;
                }
                summary.processed_record_count += 1;
                let tokens = self.image_tokens(job, &rec.model_input).await;
                let line = if let Err(msg) = tokens {
                    summary.error_record_count += 1;
                    serde_json::json!({"recordId": rec.record_id, "modelInput": rec.model_input,
                        "error": {"errorCode": 400, "errorMessage": msg}})
                } else if let Some((code, msg)) = opts.fail_records.get(&rec.record_id) {
                    summary.error_record_count += 1;
                    serde_json::json!({"recordId": rec.record_id, "modelInput": rec.model_input,
                        "error": {"errorCode": code, "errorMessage": msg}})
                } else {
                    let input_tokens = tokens.unwrap_or_default()
                        + super::vision::text_chars(&rec.model_input) as u64 / 4;
                    let output =
                        emulated_output_with(&job.model_id, &rec.model_input, input_tokens);
                    summary.success_record_count += 1;
                    summary.input_token_count +=
                        output["usage"]["input_tokens"].as_u64().unwrap_or(0);
                    summary.output_token_count +=
                        output["usage"]["output_tokens"].as_u64().unwrap_or(0);
                    serde_json::json!({"recordId": rec.record_id, "modelInput": rec.model_input, "modelOutput": output})
                };
                out.push_str(&line.to_string());
                out.push('\n');
            }
            self.objects
                .put(&out_dir.join(&output_file_name(&name)), out.into_bytes())
                .await?;
        }
        let body = serde_json::to_vec(&summary)
            .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "summary", e))?;
        self.objects.put(&out_dir.join(SUMMARY_FILE), body).await?;
        Ok(summary)
    }
}

/// A deterministic Claude Messages response whose text is receipt JSON derived from a hash of
/// the input. Every answer says it is emulated.
pub fn emulated_output(model_id: &str, model_input: &serde_json::Value) -> serde_json::Value {
    emulated_output_with(
        model_id,
        model_input,
        super::vision::input_tokens(model_input),
    )
}

/// [`emulated_output`] with the input tokens already counted (the batch emulator counts an
/// s3Location image's pixels too).
pub fn emulated_output_with(
    model_id: &str,
    model_input: &serde_json::Value,
    input_tokens: u64,
) -> serde_json::Value {
    let input = model_input.to_string();
    let digest = Sha256::digest(input.as_bytes());
    let n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    const MERCHANTS: [&str; 5] = [
        "Emulated Mart",
        "Emulated Cafe",
        "Emulated Books",
        "Emulated Pharmacy",
        "Emulated Grocer",
    ];
    let merchant = MERCHANTS[(n % MERCHANTS.len() as u64) as usize];
    let items: Vec<serde_json::Value> = (0..(1 + (n >> 8) % 3))
        .map(|i| {
            let cents = 100 + ((n >> (16 + i * 8)) % 2000);
            serde_json::json!({"description": format!("emulated item {}", i + 1), "amount": cents as f64 / 100.0})
        })
        .collect();
    let total: f64 = items.iter().filter_map(|i| i["amount"].as_f64()).sum();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
        + Duration::days(((n >> 40) % 28) as i64);
    let text = serde_json::json!({
        "merchant": merchant,
        "date": date.format("%Y-%m-%d").to_string(),
        "total": (total * 100.0).round() / 100.0,
        "currency": "USD",
        "items": items,
        "note": "emulated output from batch-orchestrator's Bedrock emulator, not a real model",
    })
    .to_string();
    let output_tokens = text.len() as u64 / 4;
    // An application inference profile's id names no model: answer in the request's shape.
    let family = ModelId::parse(model_id)
        .ok()
        .and_then(|m| crate::domain::family::for_model(&m))
        .unwrap_or(if model_input.get("schemaVersion").is_some() {
            &crate::domain::family::Nova
        } else {
            &crate::domain::family::Claude
        });
    let mut answer = family.answer(&text, input_tokens, output_tokens);
    if let Some(obj) = answer.as_object_mut() {
        obj.insert(
            "id".into(),
            serde_json::Value::String(format!("msg_emulated_{}", &hex::encode(digest)[..24])),
        );
        obj.insert(
            "model".into(),
            serde_json::Value::String(format!("{model_id} (emulated)")),
        );
    }
    answer
}

fn check_request(req: &CreateJobRequest) -> Result<(), PortError> {
    let name_ok = (1..=63).contains(&req.job_name.len())
        && req
            .job_name
            .starts_with(|c: char| c.is_ascii_alphanumeric())
        && req
            .job_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !name_ok {
        return Err(bad(format!(
            "jobName {:?} does not match Bedrock's grammar",
            req.job_name
        )));
    }
    let token_ok = (1..=256).contains(&req.client_request_token.len())
        && req
            .client_request_token
            .starts_with(|c: char| c.is_ascii_alphanumeric())
        && req
            .client_request_token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !token_ok {
        return Err(bad("clientRequestToken does not match Bedrock's grammar"));
    }
    if !(24..=168).contains(&req.timeout_hours) {
        return Err(bad("timeoutDurationInHours must be 24 to 168"));
    }
    if !req.role_arn.starts_with("arn:aws:iam::") {
        return Err(bad("roleArn must be an IAM role ARN"));
    }
    Ok(())
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
        let opts = self.opts();
        let now = self.clock.now().to_rfc3339();
        let arn = format!(
            "arn:aws:bedrock:{}:{}:model-invocation-job/{}",
            opts.region,
            opts.account,
            random_suffix()
        );
        let created = self.db.tx(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT arn FROM emulator_jobs WHERE client_token = ?1",
                    [&req.client_request_token],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if let Some(arn) = existing {
                return Ok((arn, false));
            }
            let name_taken: bool = tx
                .query_row("SELECT 1 FROM emulator_jobs WHERE job_name = ?1", [&req.job_name], |_| Ok(true))
                .optional()
                .map_err(map_err)?
                .unwrap_or(false);
            if name_taken {
                return Err(PortError::new(
                    ErrorKind::Conflict,
                    format!("a job named {} already exists", req.job_name),
                ));
            }
            tx.execute(
                &format!("INSERT INTO emulator_jobs ({COLUMNS}, client_token, role_arn, timeout_hours) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 0, ?7, ?7, ?8, ?9, ?10)"),
                params![
                    arn,
                    req.job_name,
                    req.model_id.as_str(),
                    req.input.to_string(),
                    req.output.to_string(),
                    BedrockJobStatus::Submitted.as_str(),
                    now,
                    req.client_request_token,
                    req.role_arn,
                    req.timeout_hours
                ],
            )
            .map_err(map_err)?;
            Ok((arn.clone(), true))
        })?;
        let (arn, fresh) = created;
        let parsed = BedrockJobArn::parse(&arn)
            .map_err(|e| PortError::new(ErrorKind::Unexpected, e.rule))?;
        if fresh {
            let job = self.one(&parsed)?;
            self.emit(&job, BedrockJobStatus::Submitted, None).await;
        }
        Ok(parsed)
    }

    async fn get_job(&self, arn: &BedrockJobArn) -> Result<JobInfo, PortError> {
        self.one(arn)?.info()
    }

    async fn stop_job(&self, arn: &BedrockJobArn) -> Result<(), PortError> {
        let job = self.one(arn)?;
        if job.status.is_terminal() {
            return Err(bad(format!(
                "job {arn} is {} and cannot be stopped",
                job.status
            )));
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
}
