//! Ports: small traits in domain terms. Each backend implements them in one adapter file per
//! service (`adapters::embedded::*` now, `adapters::aws::*` for the SDK).

use crate::domain::bedrock::{CreateJobRequest, JobInfo, S3Uri};
use crate::domain::duplicates::{Claim, FirstCopy, Follower, NearMark, Seen};
use crate::domain::events::Envelope;
use crate::domain::ids::{BedrockJobArn, BucketName, IntentId, JobId, ObjectKey, RecordId, UserId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::ImageResult;
use crate::domain::status::BedrockJobStatus;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How an adapter failure should be handled. Adapters classify once, at their edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A condition failed: someone else wrote first.
    Conflict,
    NotFound,
    /// 5xx, timeouts, a dropped connection: try again later.
    Transient,
    /// The service asked us to slow down (ThrottlingException and kin): try again later.
    Throttled,
    /// A service quota (e.g. concurrent Bedrock jobs) is full: try again later.
    QuotaExceeded,
    /// The request itself is wrong; retrying cannot help.
    Validation,
    /// The caller may not do this (AccessDeniedException: a missing permission, a model whose
    /// access is not enabled); retrying cannot help until someone changes a setting.
    Forbidden,
    /// Anything else; not retried automatically.
    Unexpected,
}

#[derive(Debug, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct PortError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub source: Option<BoxError>,
}

impl PortError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Transient
                | ErrorKind::Throttled
                | ErrorKind::QuotaExceeded
                | ErrorKind::Conflict
        )
    }
}

/// What a conditional create found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// This call wrote the intent.
    New,
    /// An intent with that id was already there (the old item, as DynamoDB's ALL_OLD gives it).
    Existing(Box<BatchIntent>),
}

/// What a conditional update found.
#[derive(Debug, Clone, PartialEq)]
pub enum Updated {
    Written,
    /// The stored version was not the expected one; here is what is stored now.
    Stale(Box<BatchIntent>),
}

/// The intent store: one item per intentId, written only with conditions.
#[async_trait]
pub trait IntentStore: Send + Sync {
    /// Writes `intent` only if no intent has its id.
    async fn create(&self, intent: &BatchIntent) -> Result<Created, PortError>;
    /// Writes `intent` only if the stored version is `expected_version`.
    async fn update(
        &self,
        intent: &BatchIntent,
        expected_version: u64,
    ) -> Result<Updated, PortError>;
    /// Strongly consistent.
    async fn get(&self, id: &IntentId) -> Result<Option<BatchIntent>, PortError>;
    /// Strongly consistent (a pointer item written before the intent): the `statusUrl` of a
    /// 202 answers at once.
    async fn get_by_job_id(&self, id: &JobId) -> Result<Option<BatchIntent>, PortError>;
    /// Strongly consistent (a pointer item written with the ARN).
    async fn get_by_bedrock_arn(
        &self,
        arn: &BedrockJobArn,
    ) -> Result<Option<BatchIntent>, PortError>;
    /// A user's intents, newest first, strictly after `after` = (createdAt, intentId) of the
    /// last one of the previous page. An index read: it may lag behind writes (miss a new
    /// intent, or show an older version of one).
    async fn list_by_user(
        &self,
        user: &crate::domain::ids::UserId,
        after: Option<(DateTime<Utc>, IntentId)>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError>;
    /// Intents in `status` last changed at or before `updated_before`, oldest first. An index
    /// read that may miss recent writes; each intent returned is re-read and still matches.
    async fn list_by_status(
        &self,
        status: crate::domain::status::IntentStatus,
        updated_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError>;
    /// Intents in `status` last changed at or after `since`, oldest first, at most `limit`
    /// (the nights' points: every intent of tonight and of last night). An index read that may
    /// lag and show an older version of an intent; it is not re-read.
    async fn list_changed_since(
        &self,
        status: crate::domain::status::IntentStatus,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError>;
    /// Intents whose outbox was staged before `before`, oldest first. An index read that may
    /// miss recent writes; each intent returned is re-read and still owes its outbox.
    async fn list_pending_outbox(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError>;
}

/// Per-image results, keyed by (intentId, recordId); a rewrite of the same key replaces it.
#[async_trait]
pub trait ResultStore: Send + Sync {
    async fn put_results(
        &self,
        intent: &IntentId,
        results: &[ImageResult],
    ) -> Result<(), PortError>;
    /// Results in record order, after `after`, at most `limit`.
    async fn list_results(
        &self,
        intent: &IntentId,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<ImageResult>, PortError>;
}

/// Concurrency slots: at most `cap` holders per pool (a model's submitted + in-progress
/// Bedrock jobs). Both calls are idempotent for one holder.
#[async_trait]
pub trait SlotStore: Send + Sync {
    /// True if `holder` holds (or now took) one of the pool's `cap` slots; false if all are taken.
    async fn acquire(&self, pool: &str, holder: &str, cap: u32) -> Result<bool, PortError>;
    /// Frees `holder`'s slot, if it has one.
    async fn release(&self, pool: &str, holder: &str, cap: u32) -> Result<(), PortError>;
    /// How many of the pool's `cap` slots are taken (strongly consistent).
    async fn held(&self, pool: &str, cap: u32) -> Result<u32, PortError>;
}

/// Per-user allowances, each moved by one conditional write, so that N requests at once pass a
/// limit exactly as one at a time would (`app::intake::limits`): the intents a user has open, and the
/// images a user requested on a UTC day.
#[async_trait]
pub trait Allowances: Send + Sync {
    /// Counts `intent` among `user`'s open intents unless `max` are counted already. True if
    /// it is counted (now, or before: a retry takes no second place).
    async fn open(&self, user: &UserId, intent: &IntentId, max: usize) -> Result<bool, PortError>;
    /// Stops counting `intent` as open (idempotent).
    async fn close(&self, user: &UserId, intent: &IntentId) -> Result<(), PortError>;
    /// The intents counted open for `user` (strongly consistent).
    async fn open_intents(&self, user: &UserId) -> Result<Vec<IntentId>, PortError>;
    /// Adds `images` to `user`'s count for `day` unless the sum would pass `max`; true if
    /// added, false if refused (the count is left as it was).
    async fn take_images(
        &self,
        user: &UserId,
        day: NaiveDate,
        images: u64,
        max: u64,
    ) -> Result<bool, PortError>;
    /// Gives back `images` taken for a request that was not recorded after all.
    async fn give_back_images(
        &self,
        user: &UserId,
        day: NaiveDate,
        images: u64,
    ) -> Result<(), PortError>;
}

/// The shared per-model budget of on-demand calls, in windows (see `domain::rate`): every
/// runner of every function takes its turn here, each take one conditional write.
#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Takes one request and `tokens` from `model`'s `window` unless that would pass `max`
    /// (requests, tokens); a window's first request passes whatever its tokens. True if taken.
    async fn take(
        &self,
        model: &str,
        window: DateTime<Utc>,
        tokens: u64,
        max: (u64, u64),
    ) -> Result<bool, PortError>;
    /// Corrects a window's tokens by `delta` once a call's real tokens are known.
    async fn correct(
        &self,
        model: &str,
        window: DateTime<Utc>,
        delta: i64,
    ) -> Result<(), PortError>;
}

/// Short leases, so one runner at a time works on a thing (an on-demand job): taken and renewed
/// by a conditional write that only an expired lease, or the holder's own, lets through.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes or renews `key` for `holder` until `until`, unless another holder's lease runs past
    /// `now`. True if `holder` holds it.
    async fn take(
        &self,
        key: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError>;
    /// Ends `holder`'s lease on `key`, if it still holds it.
    async fn release(&self, key: &str, holder: &str) -> Result<(), PortError>;
}

/// Durations of finished batch jobs, per model: what deadlines are planned on (see
/// `domain::deadline`). Best effort: a sample lost to a crash only leaves the estimate as it was.
#[async_trait]
pub trait JobHistory: Send + Sync {
    /// Keeps `sample` among the newest [`crate::domain::deadline::HISTORY`] of `model`.
    async fn record(
        &self,
        model: &str,
        sample: &crate::domain::deadline::JobSample,
    ) -> Result<(), PortError>;
    /// The newest samples of `model`, newest first.
    async fn recent(
        &self,
        model: &str,
    ) -> Result<Vec<crate::domain::deadline::JobSample>, PortError>;
}

/// The duplicate index (see `domain::duplicates`): per user, the images sent in the window by
/// digest, each claimed by one conditional write; per intent, the copies waiting on its records
/// and its records' near-copy marks. Every write is idempotent.
#[async_trait]
pub trait DuplicateIndex: Send + Sync {
    /// Writes `seen` unless a live item of its digest names another first image (see
    /// `domain::duplicates::takes_over`); what it found. The same first again is
    /// [`Claim::First`] (a replay) and keeps the item as it was.
    async fn claim(
        &self,
        user: &UserId,
        seen: &Seen,
        now: DateTime<Utc>,
    ) -> Result<Claim, PortError>;
    /// Writes `seen` over the digest's item only while it still names `stale` (a first whose
    /// owner cancelled it); else what is there now, as [`Self::claim`] says it.
    async fn replace(
        &self,
        user: &UserId,
        seen: &Seen,
        stale: &FirstCopy,
        now: DateTime<Utc>,
    ) -> Result<Claim, PortError>;
    /// `user`'s newest `limit` first images still in their window, newest first.
    async fn recent(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Seen>, PortError>;
    /// Which of `digests` are live in `user`'s index (strongly consistent).
    async fn known(
        &self,
        user: &UserId,
        digests: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, PortError>;
    /// Keeps `follower` under its first's intent until `expires_at`.
    async fn follow(&self, follower: &Follower, expires_at: DateTime<Utc>)
        -> Result<(), PortError>;
    /// Keeps a record's near-copy mark under `intent` until `expires_at`.
    async fn mark_near(
        &self,
        intent: &IntentId,
        mark: &NearMark,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError>;
    /// What waits on `intent`'s records: the copies to answer from them, and their near marks
    /// (strongly consistent).
    async fn under(&self, intent: &IntentId) -> Result<(Vec<Follower>, Vec<NearMark>), PortError>;
    /// The first image's stored result, if it has one yet.
    async fn first_result(&self, first: &FirstCopy) -> Result<Option<ImageResult>, PortError>;
}

/// The nights (see `domain::night`): a point per reconciler pass and a tally per ended intent,
/// kept [`crate::domain::night::POINTS_KEPT_DAYS`], and one summary per night. Every write is a
/// same-key put: a replay writes the same item again.
#[async_trait]
pub trait NightLog: Send + Sync {
    /// Keeps `point` of `night` until `expires_at` (one per `point.at`).
    async fn put_point(
        &self,
        night: NaiveDate,
        point: &crate::domain::night::NightPoint,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError>;
    /// The points of `night`, oldest first.
    async fn points(
        &self,
        night: NaiveDate,
    ) -> Result<Vec<crate::domain::night::NightPoint>, PortError>;
    /// Keeps an ended intent's `tally` under `night` until `expires_at` (one per intent).
    async fn put_tally(
        &self,
        night: NaiveDate,
        tally: &crate::domain::night::Tally,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError>;
    /// The tallies kept under `night`.
    async fn tallies(
        &self,
        night: NaiveDate,
    ) -> Result<Vec<crate::domain::night::Tally>, PortError>;
    /// Writes (or rewrites) the summary of its night.
    async fn put_summary(
        &self,
        summary: &crate::domain::night::NightSummary,
    ) -> Result<(), PortError>;
    /// The summaries of those of `nights` that have one, in the order asked.
    async fn summaries(
        &self,
        nights: &[NaiveDate],
    ) -> Result<Vec<crate::domain::night::NightSummary>, PortError>;
}

/// Completion webhooks: one POST to a receiver (see `app::webhooks`).
#[async_trait]
pub trait WebhookPoster: Send + Sync {
    /// POSTs `body` (JSON) with `headers` to `url`; the receiver's status code. A URL that
    /// is not allowed (see `domain::webhook`) is a `Validation` error; `allow_local` lets
    /// `http` and this machine's addresses through (the embedded backend's receivers).
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        allow_local: bool,
    ) -> Result<u16, PortError>;
}

/// S3, in the operations the stages use.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>) -> Result<(), PortError>;
    /// `ErrorKind::NotFound` when there is no such object.
    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, PortError>;
    /// Every key under `prefix`, in lexical order.
    /// An object's lines as they arrive, never the whole object in memory (manifest and
    /// output parts run to a gigabyte). Lines come without their newline.
    async fn lines(&self, uri: &S3Uri) -> Result<LineStream, PortError>;
    /// The first `n` bytes of an object (fewer if it is shorter) and its whole size: enough
    /// to sniff an image's type and dimensions without reading it.
    async fn head(&self, uri: &S3Uri, n: usize) -> Result<(Vec<u8>, u64), PortError>;
    /// A server-side copy (S3 CopyObject): the bytes never pass through the caller.
    async fn copy(&self, from: &S3Uri, to: &S3Uri) -> Result<(), PortError>;
    /// A streaming write: bytes go up as they come (S3 multipart in parts), and the object
    /// appears whole on `finish`, or not at all.
    async fn writer(&self, uri: &S3Uri) -> Result<Box<dyn ObjectWriter>, PortError>;
    async fn list(&self, bucket: &BucketName, prefix: &str) -> Result<Vec<ObjectKey>, PortError>;
    /// Keys under `prefix` that sort after `after` and no later than `through` (both
    /// optional), in key order: one shard of a parallel listing.
    async fn list_range(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<Vec<ObjectKey>, PortError>;
}

/// EventBridge PutEvents. All or nothing from the caller's view: a partial failure is an error.
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PortError>;
}

/// Bedrock's model invocation job API.
#[async_trait]
pub trait BatchInference: Send + Sync {
    /// Idempotent on `client_request_token`: a repeat returns the first job's ARN.
    async fn create_job(&self, req: &CreateJobRequest) -> Result<BedrockJobArn, PortError>;
    async fn get_job(&self, arn: &BedrockJobArn) -> Result<JobInfo, PortError>;
    async fn stop_job(&self, arn: &BedrockJobArn) -> Result<(), PortError>;
    async fn list_jobs(&self, status: Option<BedrockJobStatus>) -> Result<Vec<JobInfo>, PortError>;
    /// The job named exactly `name` (`ListModelInvocationJobs` with `nameContains`), if any.
    async fn find_job(&self, name: &str) -> Result<Option<JobInfo>, PortError>;
}

/// The lines of an object, read as they arrive.
pub type LineStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<String, PortError>> + Send>>;

/// Lines from any async reader (a file, an S3 body); the first error ends the stream.
pub fn line_stream<R>(reader: R, what: String) -> LineStream
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    use tokio::io::AsyncBufReadExt as _;
    let lines = tokio::io::BufReader::with_capacity(256 * 1024, reader).lines();
    Box::pin(futures::stream::unfold(Some(lines), move |state| {
        let what = what.clone();
        async move {
            let mut lines = state?;
            match lines.next_line().await {
                Ok(Some(line)) => Some((Ok(line), Some(lines))),
                Ok(None) => None,
                Err(e) => Some((
                    Err(PortError::with_source(
                        ErrorKind::Transient,
                        format!("reading {what}"),
                        e,
                    )),
                    None,
                )),
            }
        }
    }))
}

/// One object being written by [`ObjectStore::writer`].
#[async_trait]
pub trait ObjectWriter: Send + Sync {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), PortError>;
    /// Makes the object visible; returns its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64, PortError>;
    /// Gives up: nothing becomes visible and nothing is left billed.
    async fn abort(self: Box<Self>);
}

/// The uploads index (see `domain::uploads`). Recording is idempotent: the same key again
/// overwrites itself with the same values.
#[async_trait]
pub trait UploadsIndex: Send + Sync {
    async fn record(&self, upload: &crate::domain::uploads::Upload) -> Result<(), PortError>;
    /// Every upload of `user` on `day`, in key order.
    async fn uploads(
        &self,
        user: &crate::domain::ids::UserId,
        day: chrono::NaiveDate,
    ) -> Result<Vec<crate::domain::uploads::Upload>, PortError>;
    /// Every user with at least one upload on `day`, in id order.
    async fn users(
        &self,
        day: chrono::NaiveDate,
    ) -> Result<Vec<crate::domain::ids::UserId>, PortError>;
}

/// On-demand model invocation (Bedrock Runtime `InvokeModel`). The body is a manifest record's
/// `modelInput`; the answer is what a batch output line's `modelOutput` holds. Throttling and
/// server errors are retryable kinds; a refused body is `Validation`.
#[async_trait]
pub trait OnDemandInference: Send + Sync {
    async fn invoke(
        &self,
        model: &crate::domain::ids::ModelId,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, PortError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Waits until `t`: the system clock sleeps; a manual clock moves there at once (tests and
    /// the embedded runner never wait for real).
    fn sleep_until(&self, t: DateTime<Utc>) -> futures::future::BoxFuture<'static, ()> {
        let wait = (t - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

impl fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
