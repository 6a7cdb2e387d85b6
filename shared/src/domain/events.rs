//! Our domain events and the EventBridge envelope they travel in. The envelope is plain JSON,
//! the same on the embedded bus and on EventBridge -> SQS, so handlers parse one shape.

use crate::domain::bedrock::ManifestSummary;
use crate::domain::ids::{IntentId, JobId, TraceId, UserId};
use crate::domain::status::IntentStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `source` of every event this project emits.
pub const EVENT_SOURCE: &str = "batch-orchestrator";

/// The semantic name of a domain event; it is the EventBridge `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    /// An intent was recorded; the manifest builder takes it from here.
    BatchRequested,
    /// The manifest parts are in S3; the submitter takes it from here.
    BatchManifestReady,
    /// Every Bedrock job of the intent was created.
    BatchSubmitted,
    /// Terminal with results: COMPLETED or PARTIALLY_COMPLETED.
    BatchCompleted,
    /// Terminal without a full result: FAILED, STOPPED or EXPIRED.
    BatchFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        Self::BatchRequested,
        Self::BatchManifestReady,
        Self::BatchSubmitted,
        Self::BatchCompleted,
        Self::BatchFailed,
    ];

    pub fn detail_type(self) -> &'static str {
        match self {
            Self::BatchRequested => "BATCH_REQUESTED",
            Self::BatchManifestReady => "BATCH_MANIFEST_READY",
            Self::BatchSubmitted => "BATCH_SUBMITTED",
            Self::BatchCompleted => "BATCH_COMPLETED",
            Self::BatchFailed => "BATCH_FAILED",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail_type())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.detail_type() == s)
            .ok_or_else(|| format!("unknown event {s:?}"))
    }
}

/// The `detail` of every `BATCH_*` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// Deterministic: `{jobId}:{DETAIL_TYPE}:{version}`, so consumers can de-duplicate.
    pub event_id: String,
    pub intent_id: IntentId,
    pub job_id: JobId,
    pub trace_id: TraceId,
    pub user_id: UserId,
    pub status: IntentStatus,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ManifestSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bedrock_job_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub kind: EventKind,
    pub detail: EventDetail,
}

impl DomainEvent {
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            version: "0".into(),
            id: self.detail.event_id.clone(),
            detail_type: self.kind.detail_type().into(),
            source: EVENT_SOURCE.into(),
            account: None,
            time: Some(self.detail.occurred_at),
            region: None,
            resources: Vec::new(),
            detail: serde_json::to_value(&self.detail).unwrap_or_default(),
        }
    }
}

/// The EventBridge event envelope, as an SQS target receives it in the message body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl Envelope {
    /// Our own event, if this envelope carries one.
    pub fn domain_event(&self) -> Option<Result<DomainEvent, serde_json::Error>> {
        if self.source != EVENT_SOURCE {
            return None;
        }
        let kind = self.detail_type.parse::<EventKind>().ok()?;
        Some(serde_json::from_value(self.detail.clone()).map(|detail| DomainEvent { kind, detail }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_event_goes_through_envelope_should_come_back_equal() {
        let intent = IntentId::parse("i-1").expect("valid");
        let event = DomainEvent {
            kind: EventKind::BatchRequested,
            detail: EventDetail {
                event_id: "x".into(),
                job_id: JobId::for_intent(&intent),
                intent_id: intent,
                trace_id: TraceId::parse("t-1").expect("valid"),
                user_id: UserId::parse("u-1").expect("valid"),
                status: IntentStatus::Requested,
                occurred_at: Utc::now(),
                counts: None,
                bedrock_job_arns: vec![],
                failure_message: None,
            },
        };
        let json = serde_json::to_string(&event.to_envelope()).expect("serializes");
        assert!(json.contains("\"detail-type\":\"BATCH_REQUESTED\""));
        let back: Envelope = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.domain_event().expect("ours").expect("valid"), event);
    }
}
