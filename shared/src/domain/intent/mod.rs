//! The batch intent aggregate: what the client asked for, what the pipeline built from it
//! (images, manifest parts, Bedrock jobs), where it stands, and the events it still owes
//! (its outbox). Every change goes through a method here that refuses stale transitions;
//! the store then writes it with a version check.

use crate::domain::bedrock::{ManifestSummary, S3Uri};
use crate::domain::events::{DomainEvent, EventDetail, EventKind};
use crate::domain::ids::{
    BedrockJobArn, IntentId, JobId, ModelId, ObjectKey, RecordId, TraceId, UserId,
};
use crate::domain::status::{aggregate, BedrockJobStatus, IntentStatus};
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

/// Most bytes of keys a list keeps inside the intent item, whatever its count: a key may be
/// 1 KB, so 1,000 of them would pass DynamoDB's 400 KB item; the keys and the images lists
/// together stay under 200 KB (a shared job's members are ids, a fixed ~120 bytes each).
pub const INLINE_BYTES: usize = 100 * 1024;

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

/// User ids the service keeps for itself (`system.…`, the pool's among them): refused as a
/// caller on every route, as a token's subject, and as an upload's owner.
pub const RESERVED_USER_PREFIX: &str = "system.";

/// True for a user id the service keeps for itself.
pub fn is_reserved_user(user: &UserId) -> bool {
    user.as_str()
        .to_ascii_lowercase()
        .starts_with(RESERVED_USER_PREFIX)
}

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
    /// When the client wants every result (see `domain::deadline`).
    pub deadline: Option<DateTime<Utc>>,
    /// Where a finished batch is told (see `domain::webhook`).
    pub webhook: Option<crate::domain::webhook::Webhook>,
}

impl NewIntent {
    /// Hash of everything that defines the request (not the trace id), so the same intentId
    /// with a different payload is told apart from a retry.
    pub fn payload_hash(&self) -> String {
        // Not the deadline: a retry computes its deadline anew (the nightly run's is the next
        // `RESULTS_BY`), and the first request's stands.
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
    /// Why the image is not in any manifest (missing, not an image, too large, a copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// An exact copy of this earlier image, answered from it (`app::duplicates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<crate::domain::duplicates::FirstCopy>,
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
    /// A job that re-runs the unanswered records of job `rerun_of` (see `app::job_end::rerun`);
    /// its records are listed in its `record_map`. Items written before the one word kept
    /// `retryOf`.
    #[serde(default, alias = "retryOf", skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<u32>,
    /// Bedrock's record counts while the job runs, and when it times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::domain::bedrock::JobProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Run on-demand, not as a Bedrock job: the part of an intent the deadline planner found
    /// could not make it in batch, or a job still waiting for a slot at its cut-off. The
    /// submitter runs its records (see `app::on_demand_job`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    /// When Bedrock took the job (its ARN was recorded), and when it was first seen running:
    /// the learned durations (`domain::deadline`) come from these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it was stopped at its deadline's cut-off: its unanswered records are redriven
    /// on-demand when it ends, and never re-run in batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_stop_at: Option<DateTime<Utc>>,
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
    /// Where its manifest parts are, in order.
    pub fn part_uris(&self) -> Vec<S3Uri> {
        self.parts.iter().map(|p| p.uri.clone()).collect()
    }

    /// Job `job_no` of an intent as the planner opens it: first attempt, no parts yet, its
    /// name, token and folders derived from the jobId (so a replay plans the same job).
    pub fn planned(
        job_id: &JobId,
        job_no: u32,
        manifests: &crate::domain::ids::BucketName,
        outputs: &crate::domain::ids::BucketName,
    ) -> Self {
        Self {
            job_no,
            attempt: 1,
            job_name: crate::domain::bedrock::job_name(job_id, job_no, 1),
            client_token: crate::domain::bedrock::client_token(job_id, job_no, 1),
            input: crate::domain::manifest::job_input_prefix(manifests, job_id, job_no),
            output: crate::domain::manifest::job_output_prefix(outputs, job_id, job_no),
            parts: Vec::new(),
            arn: None,
            status: None,
            failure_message: None,
            summary: None,
            record_map: None,
            pad_records: 0,
            rerun_of: None,
            progress: None,
            expires_at: None,
            on_demand: false,
            created_at: None,
            started_at: None,
            deadline_stop_at: None,
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
    /// Bedrock answered "not now" (ServiceQuotaExceeded, Throttling) to this intent's last
    /// creates: how often in a row, and when it may try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_backoff: Option<CreateBackoff>,
    /// When the client wants every result; None: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When the plan says it ends (intake's estimate, then the manifest builder's plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<DateTime<Utc>>,
    /// Where its end is told; its secret is never shown in a view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::domain::webhook::Webhook>,
    /// Its images that are exact copies of earlier ones: answered from them, never sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Creates Bedrock refused for now, in a row, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBackoff {
    pub refusals: u32,
    pub not_before: DateTime<Utc>,
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

mod deadline;
mod lifecycle;
mod pool;
#[cfg(test)]
mod tests;

pub use pool::pool_intent_id;

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
            create_backoff: None,
            deadline: req.deadline,
            estimated_completion: None,
            webhook: req.webhook,
            duplicates: 0,
        };
        intent.stage(EventKind::BatchRequested, now);
        intent
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

    /// True when a job of the intent is planned but not created yet (a remainder's re-run).
    pub fn has_unsubmitted_job(&self) -> bool {
        self.jobs
            .iter()
            .any(|j| j.arn.is_none() && j.status.is_none())
    }

    /// True when the intent may try a create now: no "not now" backoff runs past `now`.
    pub fn may_create_at(&self, now: DateTime<Utc>) -> bool {
        self.create_backoff.is_none_or(|b| b.not_before <= now)
    }

    /// The job a Bedrock ARN belongs to.
    pub fn job_by_arn(&self, arn: &BedrockJobArn) -> Option<&BatchJob> {
        self.jobs.iter().find(|j| j.arn.as_ref() == Some(arn))
    }

    /// How many images it has, and how many of them were rejected, wherever they are listed.
    /// How many images it asks for: those listed, or (a day not yet resolved) its selection's
    /// count.
    pub fn image_total(&self) -> u64 {
        self.image_counts().0.max(self.selection.len_hint()) as u64
    }

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
