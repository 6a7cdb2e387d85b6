//! The batch intent aggregate: what the client asked for, what the pipeline built from it
//! (images, manifest parts, Bedrock jobs), where it stands, and the events it still owes
//! (its outbox). Every change goes through a method here that refuses stale transitions;
//! the store then writes it with a version check.

use super::bedrock::{ManifestSummary, S3Uri};
use super::events::{DomainEvent, EventDetail, EventKind};
use super::ids::{BedrockJobArn, IntentId, JobId, ModelId, ObjectKey, RecordId, TraceId, UserId};
use super::status::{aggregate, BedrockJobStatus, IntentStatus};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which images the intent covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageSelection {
    /// Explicit keys in the uploads bucket, in the client's order (which fixes record ids).
    Keys(Vec<ObjectKey>),
    /// Explicit keys, more than [`INLINE_LIST`]: kept one per line in a JSON-lines object in
    /// the manifests bucket, so the intent item stays small (DynamoDB holds 400 KB an item).
    #[serde(rename_all = "camelCase")]
    KeyList { list: S3Uri, count: usize },
    /// Every image the user uploaded that day: `uploads/{userId}/{day}/`, resolved by the
    /// manifest builder.
    Day(NaiveDate),
    /// A shared (pooled) job's intent: the records of small intents, each too small for a
    /// job of its own, sealed together. Its record ids are the members' own, so each output
    /// line maps back to exactly one (member intentId, image).
    #[serde(rename_all = "camelCase")]
    Pool {
        /// The members, when at most [`INLINE_LIST`]; else empty and listed in `member_list`.
        members: Vec<PoolMember>,
        /// When set, the manifest is padded with tiny text records up to this many records
        /// (the `pad` below-minimum policy); their answers are dropped.
        #[serde(default)]
        pad_to: u64,
        /// More than [`INLINE_LIST`] members: a JSON-lines object, one member a line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_list: Option<S3Uri>,
        /// The members' records, whichever way they are listed.
        #[serde(default)]
        records: u64,
        /// How many members, whichever way they are listed.
        #[serde(default)]
        member_count: usize,
    },
}

impl ImageSelection {
    /// A shared job's members, whichever way they are listed (0 for any other selection).
    pub fn member_count(&self) -> usize {
        match self {
            Self::Pool {
                members,
                member_count,
                ..
            } => (*member_count).max(members.len()),
            _ => 0,
        }
    }

    pub fn len_hint(&self) -> usize {
        match self {
            Self::Keys(k) => k.len(),
            Self::KeyList { count, .. } => *count,
            Self::Day(_) => 0,
            Self::Pool {
                members, records, ..
            } => (*records as usize).max(members.iter().map(|m| m.records as usize).sum()),
        }
    }
}

/// Most entries a list keeps inside the intent item (keys, images, members); a longer one
/// lives in a JSON-lines object beside the manifests. 1,000 entries of ~150 bytes stay well
/// inside DynamoDB's 400 KB item.
pub const INLINE_LIST: usize = 1_000;

/// An intent's images kept outside its item: a JSON-lines object of [`ImageEntry`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageList {
    pub uri: S3Uri,
    pub count: usize,
    /// How many of them were rejected (they have a `skipped` result).
    #[serde(default)]
    pub rejected: usize,
}

/// One small intent inside a shared job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolMember {
    pub intent_id: IntentId,
    pub job_id: JobId,
    pub records: u64,
}

/// Where a small intent stands in its model's pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolState {
    /// When it joined the pool; the deadline counts from the oldest member.
    pub since: DateTime<Utc>,
    /// Its accepted records (the rest were rejected images).
    pub records: u64,
    /// The bytes of its manifest lines (0 in items written before it was kept).
    #[serde(default)]
    pub bytes: u64,
    /// The shared job's intent, once sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_into: Option<IntentId>,
    /// Taken by the below-minimum policy `on_demand`: its records run one by one.
    #[serde(default)]
    pub on_demand: bool,
}

/// How an intent's records are (or will be) run; shown in the status view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingPath {
    /// Not decided yet (before the manifest).
    Undecided,
    /// Bedrock batch jobs of its own.
    OwnJob,
    /// Waiting in the pool for enough records (or the deadline).
    Pool,
    /// In a shared batch job with other small intents.
    SharedJob,
    /// On-demand invocations (below the minimum at the deadline, policy `on_demand`).
    OnDemand,
    /// The shared job of a pool (an internal intent).
    PoolJob,
}

/// The owner of shared jobs' intents. Not a valid caller: intake refuses it.
pub const POOL_USER: &str = "system.pool";

/// The upload prefix a user owns; every key of theirs must sit under it.
pub fn user_upload_prefix(user: &UserId) -> String {
    format!("uploads/{}/", user.as_str())
}

/// The validated request, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntent {
    /// The stored key: [`IntentId::scoped`] for a client's request, the service's own id for
    /// shared and nightly intents.
    pub intent_id: IntentId,
    /// The intentId the client sent (None for the service's own intents).
    pub client_intent_id: Option<IntentId>,
    pub user_id: UserId,
    pub selection: ImageSelection,
    pub model_id: ModelId,
    pub prompt_version: String,
    pub trace_id: TraceId,
}

impl NewIntent {
    /// Hash of everything that defines the request (not the trace id), so the same intentId
    /// with a different payload is told apart from a retry.
    pub fn payload_hash(&self) -> String {
        let canonical = serde_json::json!({
            "userId": self.user_id,
            "selection": self.selection,
            "modelId": self.model_id,
            "promptVersion": self.prompt_version,
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// One image of the intent, once resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    pub index: usize,
    pub key: ObjectKey,
    pub record_id: RecordId,
    /// Why the image is not in any manifest (missing, not an image, too large).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// One JSONL file of a job's input folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestPart {
    pub part: u32,
    pub uri: S3Uri,
    pub records: u64,
    pub bytes: u64,
}

/// One Bedrock job the intent owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJob {
    /// 1-based; part of the deterministic job name and token.
    pub job_no: u32,
    pub attempt: u32,
    pub job_name: String,
    pub client_token: String,
    /// The input folder holding this job's parts.
    pub input: S3Uri,
    pub output: S3Uri,
    pub parts: Vec<ManifestPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<BedrockJobArn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BedrockJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ManifestSummary>,
    /// A shared job's records, each with its (member, image): a JSON-lines object in S3, so
    /// the job's intent need not list them (a DynamoDB item holds at most 400 KB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_map: Option<S3Uri>,
    /// Pad records at the end of its last part (counted in the parts' records), which bring
    /// a short last job up to Bedrock's minimum; their answers are dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pad_records: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One line of a shared job's record map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappedRecord {
    /// The record's id in the shared job's manifest (`SHR…`). None in maps written before
    /// record ids were Bedrock's 11 characters (the lines then kept the member's record id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock_record_id: Option<String>,
    pub record_id: RecordId,
    pub intent_id: IntentId,
    pub index: usize,
    pub key: ObjectKey,
}

impl BatchJob {
    /// Job `job_no` of an intent as the planner opens it: first attempt, no parts yet, its
    /// name, token and folders derived from the jobId (so a replay plans the same job).
    pub fn planned(
        job_id: &JobId,
        job_no: u32,
        manifests: &super::ids::BucketName,
        outputs: &super::ids::BucketName,
    ) -> Self {
        Self {
            job_no,
            attempt: 1,
            job_name: super::bedrock::job_name(job_id, job_no, 1),
            client_token: super::bedrock::client_token(job_id, job_no, 1),
            input: super::manifest::job_input_prefix(manifests, job_id, job_no),
            output: super::manifest::job_output_prefix(outputs, job_id, job_no),
            parts: Vec::new(),
            arn: None,
            status: None,
            failure_message: None,
            summary: None,
            record_map: None,
            pad_records: 0,
        }
    }

    pub fn records(&self) -> u64 {
        self.parts.iter().map(|p| p.records).sum()
    }
}

/// Events written with the state change that caused them, published after the write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    pub events: Vec<DomainEvent>,
    pub staged_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchIntent {
    /// The stored key (see [`NewIntent::intent_id`]).
    pub intent_id: IntentId,
    /// The intentId the client sent; absent for the service's own intents and for items
    /// written before keys were scoped per user (their key is the client's intentId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_intent_id: Option<IntentId>,
    pub job_id: JobId,
    pub user_id: UserId,
    pub selection: ImageSelection,
    pub model_id: ModelId,
    pub prompt_version: String,
    pub payload_hash: String,
    pub trace_id: TraceId,
    pub status: IntentStatus,
    /// Bumped by every write; the store's condition.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the store may forget a finished intent (DynamoDB TTL).
    pub expires_at: DateTime<Utc>,
    /// Its images, when at most [`INLINE_LIST`]; else empty and listed in `image_list`.
    #[serde(default)]
    pub images: Vec<ImageEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_list: Option<ImageList>,
    #[serde(default)]
    pub jobs: Vec<BatchJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ManifestSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<Outbox>,
    /// Since when the intent waits for a free job slot (cleared when it is woken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for_slot_since: Option<DateTime<Utc>>,
    /// When the owner asked to cancel a running batch (its jobs are being stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Set while the intent is (or was) below the job minimum and pooled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolState>,
}

/// What cancelling needs done beyond the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// Nothing was submitted: the intent is CANCELLED and nothing will be.
    Cancelled,
    /// These Bedrock jobs must be stopped; the intent ends STOPPED when Bedrock says so,
    /// with the partial results ingested.
    StopJobs(Vec<BedrockJobArn>),
    /// The intent is CANCELLED, but its records sit in this shared job: they are marked
    /// canceled, and the job is stopped only if every member is cancelled.
    LeftSharedJob(IntentId),
}

/// A transition the aggregate refused. Stages treat it as "already done": a no-op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("intent is {current}, not {expected}: transition is stale")]
    Stale {
        current: IntentStatus,
        expected: IntentStatus,
    },
    #[error("job {0} is not one of this intent's")]
    UnknownJob(String),
    #[error("job status {from} cannot move to {to}")]
    JobStale {
        from: BedrockJobStatus,
        to: BedrockJobStatus,
    },
    #[error("intent is not waiting in a pool for this")]
    NotPooled,
}

/// `pool-` and 24 hex digits of sha256(model, the sealing time, member intent ids in order):
/// the same set sealed again later (its first job failed to take its members) is a new job.
pub fn pool_intent_id(
    model: &ModelId,
    members: &[PoolMember],
    sealed_at: DateTime<Utc>,
) -> IntentId {
    let mut h = Sha256::new();
    h.update(model.as_str().as_bytes());
    h.update(sealed_at.timestamp_micros().to_be_bytes());
    for m in members {
        h.update([0]);
        h.update(m.intent_id.as_str().as_bytes());
    }
    let hex = hex::encode(h.finalize());
    IntentId::parse(&format!("pool-{}", &hex[..24]))
        .unwrap_or_else(|e| unreachable!("a hex pool id is valid: {e}"))
}

impl BatchIntent {
    /// The intentId as its client knows it.
    pub fn client_id(&self) -> &IntentId {
        self.client_intent_id.as_ref().unwrap_or(&self.intent_id)
    }

    pub fn new(req: NewIntent, now: DateTime<Utc>, ttl_days: i64) -> Self {
        let payload_hash = req.payload_hash();
        let mut intent = Self {
            job_id: JobId::for_intent(&req.intent_id),
            intent_id: req.intent_id,
            client_intent_id: req.client_intent_id,
            user_id: req.user_id,
            selection: req.selection,
            model_id: req.model_id,
            prompt_version: req.prompt_version,
            payload_hash,
            trace_id: req.trace_id,
            status: IntentStatus::Requested,
            version: 1,
            created_at: now,
            updated_at: now,
            expires_at: now + Duration::days(ttl_days),
            images: Vec::new(),
            image_list: None,
            jobs: Vec::new(),
            counts: None,
            failure_message: None,
            outbox: None,
            waiting_for_slot_since: None,
            cancel_requested_at: None,
            pool: None,
        };
        intent.stage(EventKind::BatchRequested, now);
        intent
    }

    /// The intent of a shared job sealed from `members` (at least one). Its id comes from
    /// [`pool_intent_id`] over the members the sealer chose, so two sealers of the same set
    /// make one intent; `members` are the ones it could claim.
    pub fn new_pool(
        id: IntentId,
        model_id: ModelId,
        prompt_version: String,
        selection: ImageSelection,
        now: DateTime<Utc>,
        ttl_days: i64,
    ) -> Self {
        let trace_id = TraceId::parse(&format!("pool-{}", &id.as_str()[5..]))
            .unwrap_or_else(|e| unreachable!("a hex trace id is valid: {e}"));
        let user_id = UserId::parse(POOL_USER)
            .unwrap_or_else(|e| unreachable!("the pool user is a valid user id: {e}"));
        Self::new(
            NewIntent {
                intent_id: id,
                client_intent_id: None,
                user_id,
                selection,
                model_id,
                prompt_version,
                trace_id,
            },
            now,
            ttl_days,
        )
    }

    pub fn is_pool_job(&self) -> bool {
        matches!(self.selection, ImageSelection::Pool { .. })
    }

    /// How this intent's records run.
    pub fn path(&self) -> ProcessingPath {
        match (&self.pool, self.is_pool_job()) {
            (_, true) => ProcessingPath::PoolJob,
            (Some(p), _) if p.on_demand => ProcessingPath::OnDemand,
            (Some(p), _) if p.sealed_into.is_some() => ProcessingPath::SharedJob,
            (Some(_), _) => ProcessingPath::Pool,
            (None, _) if self.jobs.is_empty() => ProcessingPath::Undecided,
            (None, _) => ProcessingPath::OwnJob,
        }
    }

    /// REQUESTED -> POOLED: too few records for a job of its own. `jobs` holds the planned
    /// (never submitted) job whose parts the shared job or the on-demand path reads.
    pub fn record_pooled(
        &mut self,
        images: Vec<ImageEntry>,
        jobs: Vec<BatchJob>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        self.require(IntentStatus::Requested)?;
        let records = jobs.iter().map(BatchJob::records).sum();
        let bytes = jobs
            .iter()
            .flat_map(|j| j.parts.iter())
            .map(|p| p.bytes)
            .sum();
        self.images = images;
        self.jobs = jobs;
        self.pool = Some(PoolState {
            since: now,
            records,
            bytes,
            sealed_into: None,
            on_demand: false,
        });
        self.advance(IntentStatus::Pooled, now)
    }

    /// Claims a waiting member for shared job `pool`. Claiming it again for the same pool
    /// is a no-op; a member claimed elsewhere (or taken on-demand) is refused.
    pub fn seal_into(&mut self, pool: &IntentId, now: DateTime<Utc>) -> Result<bool, Refused> {
        self.require(IntentStatus::Pooled)?;
        let state = self.pool.as_mut().ok_or(Refused::NotPooled)?;
        match &state.sealed_into {
            Some(p) if p == pool => Ok(false),
            Some(_) => Err(Refused::NotPooled),
            None if state.on_demand => Err(Refused::NotPooled),
            None => {
                state.sealed_into = Some(pool.clone());
                self.updated_at = now;
                Ok(true)
            }
        }
    }

    /// Claims a waiting member for the on-demand path (below-minimum policy).
    pub fn take_on_demand(&mut self, now: DateTime<Utc>) -> Result<bool, Refused> {
        self.require(IntentStatus::Pooled)?;
        let state = self.pool.as_mut().ok_or(Refused::NotPooled)?;
        match (&state.sealed_into, state.on_demand) {
            (None, true) => Ok(false),
            (None, false) => {
                state.on_demand = true;
                self.updated_at = now;
                Ok(true)
            }
            (Some(_), _) => Err(Refused::NotPooled),
        }
    }

    /// POOLED -> its end, once its shared job ended or its on-demand run finished: the counts
    /// are its own records' (plus its rejected images as errors are not counted here).
    pub fn finish_pooled(
        &mut self,
        status: IntentStatus,
        counts: ManifestSummary,
        failure_message: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        self.require(IntentStatus::Pooled)?;
        self.counts = Some(counts);
        self.failure_message = failure_message;
        self.advance(status, now)?;
        match status {
            IntentStatus::Completed | IntentStatus::PartiallyCompleted => {
                self.stage(EventKind::BatchCompleted, now)
            }
            _ => self.stage(EventKind::BatchFailed, now),
        }
        Ok(())
    }

    /// Adds an event to the outbox; the caller's write persists it with the change.
    fn stage(&mut self, kind: EventKind, now: DateTime<Utc>) {
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

    fn advance(&mut self, to: IntentStatus, now: DateTime<Utc>) -> Result<(), Refused> {
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

    fn require(&self, status: IntentStatus) -> Result<(), Refused> {
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
    /// SUBMITTED. Recording the same ARN again is refused as stale.
    pub fn record_submission(
        &mut self,
        job_no: u32,
        arn: BedrockJobArn,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        self.require(IntentStatus::ManifestReady)?;
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j.job_no == job_no)
            .ok_or_else(|| Refused::UnknownJob(job_no.to_string()))?;
        if job.arn.is_some() {
            return Err(Refused::JobStale {
                from: job.status.unwrap_or(BedrockJobStatus::Submitted),
                to: BedrockJobStatus::Submitted,
            });
        }
        job.arn = Some(arn);
        job.status = Some(BedrockJobStatus::Submitted);
        self.updated_at = now;
        if self.jobs.iter().all(|j| j.arn.is_some()) {
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
        if status.is_terminal() {
            job.summary = summary;
            job.failure_message = failure_message.filter(|m| !m.is_empty());
        }
        self.updated_at = now;
        let statuses: Vec<BedrockJobStatus> = self.jobs.iter().filter_map(|j| j.status).collect();
        let target = if statuses.len() == self.jobs.len() {
            aggregate(&statuses)
        } else {
            None
        };
        if let Some(mut target) = target.filter(|t| self.status.can_advance_to(*t)) {
            if target.is_terminal() {
                let mut total = ManifestSummary::default();
                for j in &self.jobs {
                    match &j.summary {
                        Some(s) => total.add(s),
                        // A job that ended with no outputs (Failed) still had its records.
                        None => total.add(&ManifestSummary {
                            total_record_count: j.records().saturating_sub(j.pad_records),
                            ..ManifestSummary::default()
                        }),
                    }
                }
                // Every record ended with an answer (some after on-demand re-runs): the
                // intent is complete even if a job was only partially so, stopped by
                // someone other than its owner, or expired.
                if target != IntentStatus::Completed
                    && self.cancel_requested_at.is_none()
                    && total.total_record_count > 0
                    && total.success_record_count == total.total_record_count
                {
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
        }
        Ok(self.status)
    }

    /// Stages the announcement of the current stage again, for an intent stuck before
    /// submission (its message lost or parked in a DLQ). Only REQUESTED and MANIFEST_READY
    /// have one; the event id is new (it carries the version), so it is not de-duplicated.
    pub fn reannounce(&mut self, now: DateTime<Utc>) -> Result<EventKind, Refused> {
        let kind = match self.status {
            IntentStatus::Requested => EventKind::BatchRequested,
            IntentStatus::ManifestReady => EventKind::BatchManifestReady,
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
    pub fn fail(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Refused> {
        self.failure_message = Some(reason);
        self.advance(IntentStatus::Failed, now)?;
        self.stage(EventKind::BatchFailed, now);
        Ok(())
    }

    /// The job a Bedrock ARN belongs to.
    pub fn job_by_arn(&self, arn: &BedrockJobArn) -> Option<&BatchJob> {
        self.jobs.iter().find(|j| j.arn.as_ref() == Some(arn))
    }

    /// How many images it has, and how many of them were rejected, wherever they are listed.
    pub fn image_counts(&self) -> (usize, usize) {
        match &self.image_list {
            Some(list) => (list.count, list.rejected),
            None => (
                self.images.len(),
                self.images.iter().filter(|i| i.rejected.is_some()).count(),
            ),
        }
    }

    /// True when the outbox was staged long enough ago that its writer has crashed or given
    /// up, so someone else may publish it.
    pub fn outbox_is_orphaned(&self, now: DateTime<Utc>, grace_secs: i64) -> bool {
        self.outbox
            .as_ref()
            .is_some_and(|o| now - o.staged_at >= Duration::seconds(grace_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_intent() -> BatchIntent {
        let req = NewIntent {
            intent_id: IntentId::parse("i-1").expect("valid"),
            client_intent_id: None,
            user_id: UserId::parse("u-1").expect("valid"),
            selection: ImageSelection::Keys(vec![
                ObjectKey::parse("uploads/u-1/a.jpg").expect("valid")
            ]),
            model_id: ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("valid"),
            prompt_version: "receipt-v1".into(),
            trace_id: TraceId::parse("t").expect("valid"),
        };
        BatchIntent::new(req, Utc::now(), 30)
    }

    fn arn() -> BedrockJobArn {
        BedrockJobArn::parse(
            "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234wxyz",
        )
        .expect("valid")
    }

    fn job() -> BatchJob {
        let bucket = super::super::ids::BucketName::parse("bucket").expect("valid");
        BatchJob {
            job_no: 1,
            attempt: 1,
            job_name: "n".into(),
            client_token: "t".into(),
            input: S3Uri::prefix(&bucket, "in"),
            output: S3Uri::prefix(&bucket, "out"),
            parts: vec![],
            arn: None,
            status: None,
            failure_message: None,
            summary: None,
            record_map: None,
            pad_records: 0,
        }
    }

    #[test]
    fn when_created_should_owe_batch_requested() {
        let intent = new_intent();
        let outbox = intent.outbox.expect("staged");
        assert_eq!(outbox.events.len(), 1);
        assert_eq!(outbox.events[0].kind, EventKind::BatchRequested);
    }

    #[test]
    fn when_payload_differs_should_hash_differently() {
        let mut a = new_intent();
        let b = new_intent();
        assert_eq!(a.payload_hash, b.payload_hash);
        a.model_id = ModelId::parse("other").expect("valid");
        let req = NewIntent {
            intent_id: a.intent_id.clone(),
            client_intent_id: None,
            user_id: a.user_id.clone(),
            selection: a.selection.clone(),
            model_id: a.model_id.clone(),
            prompt_version: a.prompt_version.clone(),
            trace_id: TraceId::parse("other-trace").expect("valid"),
        };
        assert_ne!(req.payload_hash(), b.payload_hash);
    }

    #[test]
    fn when_lifecycle_runs_should_reach_completed_and_refuse_regression() {
        let now = Utc::now();
        let mut i = new_intent();
        i.outbox = None;
        i.record_manifest(vec![], vec![job()], now)
            .expect("manifest");
        assert!(
            i.record_manifest(vec![], vec![job()], now).is_err(),
            "replayed manifest is stale"
        );
        i.record_submission(1, arn(), now).expect("submit");
        assert_eq!(i.status, IntentStatus::Submitted);
        assert!(
            i.record_submission(1, arn(), now).is_err(),
            "second ARN refused"
        );
        i.apply_job_status(&arn(), BedrockJobStatus::InProgress, None, None, now)
            .expect("in progress");
        assert!(
            i.apply_job_status(&arn(), BedrockJobStatus::Validating, None, None, now)
                .is_err(),
            "stale Validating after InProgress must not regress"
        );
        let summary = ManifestSummary {
            total_record_count: 1,
            processed_record_count: 1,
            success_record_count: 1,
            ..Default::default()
        };
        let st = i
            .apply_job_status(
                &arn(),
                BedrockJobStatus::Completed,
                None,
                Some(summary),
                now,
            )
            .expect("completed");
        assert_eq!(st, IntentStatus::Completed);
        assert_eq!(i.counts, Some(summary));
        let kinds: Vec<_> = i
            .outbox
            .expect("events")
            .events
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::BatchManifestReady,
                EventKind::BatchSubmitted,
                EventKind::BatchCompleted
            ]
        );
    }

    #[test]
    fn when_job_fails_should_fail_intent_with_message() {
        let now = Utc::now();
        let mut i = new_intent();
        i.record_manifest(vec![], vec![job()], now)
            .expect("manifest");
        i.record_submission(1, arn(), now).expect("submit");
        let st = i
            .apply_job_status(
                &arn(),
                BedrockJobStatus::Failed,
                Some("bad input".into()),
                None,
                now,
            )
            .expect("failed");
        assert_eq!(st, IntentStatus::Failed);
        assert_eq!(i.failure_message.as_deref(), Some("bad input"));
        assert!(i.fail("again".into(), now).is_err());
    }
}
