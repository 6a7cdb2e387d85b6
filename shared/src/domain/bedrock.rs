//! Bedrock batch inference formats in domain terms: the create request, a job's description,
//! the state-change event, output lines and `manifest.json.out`. Shapes follow
//! `shared/docs/bedrock-batch-facts.md`; nothing here talks to AWS.

use crate::domain::ids::{BedrockJobArn, BucketName, IdError, JobId, ModelId, ObjectKey, RecordId};
use crate::domain::status::BedrockJobStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `s3://bucket/key-or-prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct S3Uri {
    pub bucket: BucketName,
    /// Empty for the bucket root; a prefix ends with `/`.
    pub key: String,
}

impl S3Uri {
    pub fn object(bucket: &BucketName, key: &ObjectKey) -> Self {
        Self {
            bucket: bucket.clone(),
            key: key.as_str().to_owned(),
        }
    }

    pub fn prefix(bucket: &BucketName, prefix: &str) -> Self {
        let mut key = prefix.trim_matches('/').to_owned();
        if !key.is_empty() {
            key.push('/');
        }
        Self {
            bucket: bucket.clone(),
            key,
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let rest = s.strip_prefix("s3://").ok_or(IdError {
            rule: "S3 URI must start with s3://".into(),
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(Self {
            bucket: BucketName::parse(bucket)?,
            key: key.to_owned(),
        })
    }

    /// The object key, when this URI names one object rather than a prefix.
    pub fn object_key(&self) -> Result<ObjectKey, IdError> {
        ObjectKey::parse(&self.key)
    }

    pub fn join(&self, name: &str) -> Self {
        let mut key = self.key.clone();
        if !key.is_empty() && !key.ends_with('/') {
            key.push('/');
        }
        key.push_str(name);
        Self {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Every job this service names starts with this: the Bedrock rule matches only these
/// (`detail.batchJobName` prefix), so other applications' jobs never reach the watcher.
pub const JOB_NAME_PREFIX: &str = "bo-";

/// The deterministic job name for part `part` of an intent, attempt `attempt`:
/// `bo-{24 hex}-p{part}-a{attempt}`, inside Bedrock's 63-character job name grammar.
pub fn job_name(job: &JobId, part: u32, attempt: u32) -> String {
    format!("{JOB_NAME_PREFIX}{}-p{part}-a{attempt}", job.hex())
}

/// The job id a name made by [`job_name`] carries (None for a name that is not ours): how a
/// state-change event that beats the ARN's write finds its intent.
pub fn job_id_of_name(name: &str) -> Option<JobId> {
    let hex = name.strip_prefix(JOB_NAME_PREFIX)?.get(..24)?;
    JobId::parse(&format!("bj-{hex}")).ok()
}

/// The deterministic `clientRequestToken`: `bo{24 hex}p{part}a{attempt}` matches
/// `[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}`. Bedrock creates no second job for a repeated
/// token, which is what carries idempotency across a crash between create and record.
pub fn client_token(job: &JobId, part: u32, attempt: u32) -> String {
    format!("bo{}p{part}a{attempt}", job.hex())
}

/// `CreateModelInvocationJob`, in the fields this project sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateJobRequest {
    pub job_name: String,
    pub client_request_token: String,
    pub role_arn: String,
    pub model_id: ModelId,
    pub input: S3Uri,
    pub output: S3Uri,
    pub timeout_hours: u32,
    pub tags: Vec<(String, String)>,
}

/// What `GetModelInvocationJob` tells about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    pub arn: BedrockJobArn,
    pub job_name: String,
    pub model_id: ModelId,
    pub status: BedrockJobStatus,
    pub failure_message: Option<String>,
    pub input: S3Uri,
    pub output: S3Uri,
    pub submitted_at: DateTime<Utc>,
    pub last_modified_at: DateTime<Utc>,
    /// Bedrock's record counts so far (`totalRecordCount`, `processedRecordCount`, …), when it
    /// reports them: progress while the job runs.
    #[serde(default)]
    pub progress: Option<JobProgress>,
    /// `jobExpirationTime`: when the job times out if it has not ended.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// `endTime`, once the job has ended.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
}

/// A running job's record counts, as `GetModelInvocationJob` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub total_record_count: u64,
    pub processed_record_count: u64,
    pub success_record_count: u64,
    pub error_record_count: u64,
}

impl From<&ManifestSummary> for JobProgress {
    fn from(s: &ManifestSummary) -> Self {
        Self {
            total_record_count: s.total_record_count,
            processed_record_count: s.processed_record_count,
            success_record_count: s.success_record_count,
            error_record_count: s.error_record_count,
        }
    }
}

/// The `detail` of Bedrock's "Batch Inference Job State Change" event. Parsed leniently:
/// unknown fields are ignored and `detail.version` may be "0.0" or "1.0".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStateChange {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub batch_job_name: Option<String>,
    pub batch_job_arn: String,
    #[serde(default)]
    pub batch_model_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub failure_message: Option<String>,
    #[serde(default)]
    pub creation_time: Option<String>,
}

pub const BEDROCK_EVENT_SOURCE: &str = "aws.bedrock";
pub const BEDROCK_STATE_CHANGE: &str = "Batch Inference Job State Change";

/// A state change as the watcher acts on it: decoded once, here, from the event's envelope
/// fields and its `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub arn: BedrockJobArn,
    pub status: BedrockJobStatus,
    /// Bedrock's own message, when it gave one (it may name accounts and buckets: log only).
    pub failure_message: Option<String>,
    /// Our job id, when the job's name is one [`job_name`] made: how an event that beats the
    /// ARN's write finds its intent.
    pub job: Option<JobId>,
}

/// Why an event is not a [`JobEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAJobEvent {
    /// Another source or detail type, or a detail that is not a state change: it can never
    /// be applied (permanent).
    #[error("{0}")]
    Malformed(String),
    /// A state change whose ARN or status this service cannot read (a status Bedrock added
    /// later): nothing to apply, so it is ignored and logged.
    #[error("unreadable {0}")]
    Unreadable(String),
}

impl JobEvent {
    /// What the reconciler's poll (`GetModelInvocationJob`) says of a job.
    pub fn polled(info: JobInfo) -> Self {
        Self {
            arn: info.arn,
            status: info.status,
            failure_message: info.failure_message.filter(|m| !m.trim().is_empty()),
            job: job_id_of_name(&info.job_name),
        }
    }

    /// Decodes Bedrock's "Batch Inference Job State Change" from its envelope's `source`,
    /// `detail-type` and `detail`.
    pub fn decode(
        source: &str,
        detail_type: &str,
        detail: serde_json::Value,
    ) -> Result<Self, NotAJobEvent> {
        if source != BEDROCK_EVENT_SOURCE || detail_type != BEDROCK_STATE_CHANGE {
            return Err(NotAJobEvent::Malformed(format!(
                "expected a Bedrock job state change, got {detail_type} from {source}"
            )));
        }
        let change: JobStateChange = serde_json::from_value(detail).map_err(|e| {
            NotAJobEvent::Malformed(format!("state change detail is malformed: {e}"))
        })?;
        let arn = BedrockJobArn::parse(&change.batch_job_arn)
            .map_err(|_| NotAJobEvent::Unreadable(format!("ARN {}", change.batch_job_arn)))?;
        let status = change
            .status
            .parse::<BedrockJobStatus>()
            .map_err(|_| NotAJobEvent::Unreadable(format!("status {}", change.status)))?;
        Ok(Self {
            arn,
            status,
            failure_message: change.failure_message.filter(|m| !m.trim().is_empty()),
            job: change.batch_job_name.as_deref().and_then(job_id_of_name),
        })
    }
}

/// One line of a `<part>.jsonl.out` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLine {
    pub record_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_input: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    pub error_code: serde_json::Value,
    pub error_message: String,
}

impl OutputLine {
    /// An output line as ingestion needs it. The echoed `modelInput` (the whole request, base64
    /// image included: most of the line's bytes) is skipped, never built, so ingestion scans
    /// each byte once and holds no copy of it.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            record_id: String,
            #[serde(default, rename = "modelInput")]
            _model_input: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            model_output: Option<serde_json::Value>,
            #[serde(default)]
            error: Option<RecordError>,
        }
        let a: Answer = serde_json::from_str(line)?;
        Ok(Self {
            record_id: a.record_id,
            model_input: None,
            model_output: a.model_output,
            error: a.error,
        })
    }

    pub fn record_id(&self) -> Option<RecordId> {
        RecordId::parse(&self.record_id).ok()
    }
}

/// `manifest.json.out`: the job's own record and token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    pub total_record_count: u64,
    pub processed_record_count: u64,
    pub success_record_count: u64,
    pub error_record_count: u64,
    #[serde(default)]
    pub input_token_count: u64,
    #[serde(default)]
    pub output_token_count: u64,
    /// Ours, not Bedrock's: answers that failed a receipt check (`needsReview`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flagged_record_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ManifestSummary {
    pub fn add(&mut self, other: &ManifestSummary) {
        self.flagged_record_count += other.flagged_record_count;
        self.total_record_count += other.total_record_count;
        self.processed_record_count += other.processed_record_count;
        self.success_record_count += other.success_record_count;
        self.error_record_count += other.error_record_count;
        self.input_token_count += other.input_token_count;
        self.output_token_count += other.output_token_count;
    }
}

pub const SUMMARY_FILE: &str = "manifest.json.out";

/// The output file Bedrock writes for an input file: `part-00001.jsonl` -> `part-00001.jsonl.out`.
pub fn output_file_name(input_file: &str) -> String {
    format!("{input_file}.out")
}

#[cfg(test)]
mod tests {

    fn state_change(status: &str, name: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "0.0",
            "batchJobName": name,
            "batchJobArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234wxyz",
            "status": status,
            "failureMessage": "",
        })
    }

    #[test]
    fn when_a_state_change_is_decoded_should_yield_arn_status_and_our_job_id_once() {
        let ours = job_name(
            &JobId::parse("bj-3ae489935892792f79a38850").expect("id"),
            1,
            1,
        );
        let e = JobEvent::decode(
            BEDROCK_EVENT_SOURCE,
            BEDROCK_STATE_CHANGE,
            state_change("Completed", &ours),
        )
        .expect("a state change");
        assert_eq!(e.status, BedrockJobStatus::Completed);
        assert!(e.arn.as_str().ends_with("/abcd1234wxyz"));
        assert_eq!(
            e.job.map(|j| j.to_string()).as_deref(),
            Some("bj-3ae489935892792f79a38850")
        );
        assert_eq!(e.failure_message, None, "an empty message is no message");
        // Another application's job: decoded, but no job id of ours.
        let theirs = JobEvent::decode(
            BEDROCK_EVENT_SOURCE,
            BEDROCK_STATE_CHANGE,
            state_change("InProgress", "nightly-etl"),
        )
        .expect("a state change");
        assert_eq!(theirs.job, None);
    }

    #[test]
    fn when_an_event_is_not_a_readable_state_change_should_say_whether_it_can_ever_apply() {
        let detail = state_change("Completed", "bo-x");
        assert!(matches!(
            JobEvent::decode("aws.s3", "Object Created", detail.clone()),
            Err(NotAJobEvent::Malformed(_))
        ));
        assert!(matches!(
            JobEvent::decode(
                BEDROCK_EVENT_SOURCE,
                BEDROCK_STATE_CHANGE,
                serde_json::json!({"status": 1})
            ),
            Err(NotAJobEvent::Malformed(_))
        ));
        assert_eq!(
            JobEvent::decode(
                BEDROCK_EVENT_SOURCE,
                BEDROCK_STATE_CHANGE,
                state_change("Hibernating", "bo-x")
            ),
            Err(NotAJobEvent::Unreadable("status Hibernating".into()))
        );
        let mut bad_arn = detail;
        bad_arn["batchJobArn"] = serde_json::json!("not-an-arn");
        assert!(matches!(
            JobEvent::decode(BEDROCK_EVENT_SOURCE, BEDROCK_STATE_CHANGE, bad_arn),
            Err(NotAJobEvent::Unreadable(_))
        ));
    }

    use super::*;

    fn job() -> JobId {
        JobId::for_intent(&crate::domain::ids::IntentId::parse("i-1").expect("valid"))
    }

    #[test]
    fn when_names_are_derived_should_fit_bedrock_grammar() {
        let name = job_name(&job(), 12, 3);
        assert!(name.len() <= 63);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let token = client_token(&job(), 12, 3);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(client_token(&job(), 1, 1), client_token(&job(), 1, 2));
        assert_eq!(
            job_id_of_name(&name),
            Some(job()),
            "read back from the name"
        );
        assert_eq!(job_id_of_name("someone-elses-job"), None);
        assert_eq!(job_id_of_name("bo-short"), None);
    }

    #[test]
    fn when_state_change_has_unknown_fields_should_still_parse() {
        let detail = serde_json::json!({
            "version": "1.0", "accountId": "123456789012",
            "batchJobArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234wxyz",
            "status": "Completed", "somethingNew": {"x": 1}
        });
        let parsed: JobStateChange = serde_json::from_value(detail).expect("lenient");
        assert_eq!(parsed.status, "Completed");
        assert_eq!(parsed.failure_message, None);
    }

    #[test]
    fn when_output_line_is_error_should_keep_code_and_message() {
        let line =
            r#"{"recordId":"r1","modelInput":{},"error":{"errorCode":400,"errorMessage":"bad"}}"#;
        let parsed = OutputLine::parse(line).expect("parses");
        assert_eq!(parsed.error.expect("error").error_message, "bad");
        assert!(parsed.model_output.is_none());
    }

    #[test]
    fn when_s3_uri_round_trips_should_keep_bucket_and_key() {
        let uri = S3Uri::parse("s3://my-bucket/a/b.jsonl").expect("valid");
        assert_eq!(uri.bucket.as_str(), "my-bucket");
        assert_eq!(uri.to_string(), "s3://my-bucket/a/b.jsonl");
        let bucket = BucketName::parse("out-bucket").expect("valid");
        assert_eq!(S3Uri::prefix(&bucket, "/x/y/").join("z").key, "x/y/z");
        assert!(S3Uri::parse("http://x").is_err());
    }
}
