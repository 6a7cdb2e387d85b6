//! The routing every backend shares: which events each stage's queue receives. The embedded
//! bus reads it directly; the CDK stack and the local-AWS setup mirror it (and a test compares).

use crate::domain::bedrock::{BEDROCK_EVENT_SOURCE, BEDROCK_STATE_CHANGE, JOB_NAME_PREFIX};
use crate::domain::events::EVENT_SOURCE;

/// A queue a stage consumes. Each has a dead-letter queue named `{name}-dlq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    ManifestBuilder,
    Submitter,
    StatusWatcher,
    /// Completion webhooks (`functions/webhook-sender`).
    Webhooks,
}

impl Queue {
    pub const ALL: [Queue; 4] = [
        Queue::ManifestBuilder,
        Queue::Submitter,
        Queue::StatusWatcher,
        Queue::Webhooks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ManifestBuilder => "manifest-builder",
            Self::Submitter => "submitter",
            Self::StatusWatcher => "status-watcher",
            Self::Webhooks => "webhooks",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name() == s)
    }
}

/// An EventBridge rule: events of `source` whose detail-type is one of `detail_types` (and,
/// with `job_name_prefix`, whose `detail.batchJobName` starts with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub source: &'static str,
    pub detail_types: &'static [&'static str],
    /// EventBridge content filter `{"detail": {"batchJobName": [{"prefix": …}]}}`: the default
    /// bus carries every Bedrock job of the account, and only ours are the watcher's.
    pub job_name_prefix: Option<&'static str>,
    pub target: Queue,
    /// True for the account's default bus (Bedrock's events), false for our custom bus.
    pub default_bus: bool,
}

pub const RULES: [Rule; 4] = [
    Rule {
        name: "batch-requested-to-manifest-builder",
        source: EVENT_SOURCE,
        detail_types: &["BATCH_REQUESTED"],
        job_name_prefix: None,
        target: Queue::ManifestBuilder,
        default_bus: false,
    },
    Rule {
        name: "manifest-ready-to-submitter",
        source: EVENT_SOURCE,
        detail_types: &["BATCH_MANIFEST_READY"],
        job_name_prefix: None,
        target: Queue::Submitter,
        default_bus: false,
    },
    Rule {
        name: "bedrock-job-state-to-status-watcher",
        source: BEDROCK_EVENT_SOURCE,
        detail_types: &[BEDROCK_STATE_CHANGE],
        job_name_prefix: Some(JOB_NAME_PREFIX),
        target: Queue::StatusWatcher,
        default_bus: true,
    },
    Rule {
        name: "batch-ended-to-webhooks",
        source: EVENT_SOURCE,
        detail_types: &["BATCH_COMPLETED", "BATCH_FAILED"],
        job_name_prefix: None,
        target: Queue::Webhooks,
        default_bus: false,
    },
];

impl Rule {
    /// True if this rule's pattern matches the event, as EventBridge would match it.
    pub fn matches(&self, source: &str, detail_type: &str, detail: &serde_json::Value) -> bool {
        self.source == source
            && self.detail_types.contains(&detail_type)
            && self.job_name_prefix.is_none_or(|prefix| {
                detail["batchJobName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(prefix))
            })
    }

    /// The rule's EventBridge event pattern.
    pub fn pattern(&self) -> serde_json::Value {
        let mut pattern =
            serde_json::json!({"source": [self.source], "detail-type": self.detail_types});
        if let Some(prefix) = self.job_name_prefix {
            pattern["detail"] = serde_json::json!({"batchJobName": [{"prefix": prefix}]});
        }
        pattern
    }
}

/// The queues an event is delivered to.
pub fn targets<'a>(
    source: &'a str,
    detail_type: &'a str,
    detail: &'a serde_json::Value,
) -> impl Iterator<Item = Queue> + 'a {
    RULES
        .iter()
        .filter(move |r| r.matches(source, detail_type, detail))
        .map(|r| r.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn when_bedrock_reports_a_job_should_route_only_ours_to_the_watcher() {
        let ours =
            json!({"batchJobName": "bo-3ae489935892792f79a38850-p1-a1", "status": "Completed"});
        let theirs = json!({"batchJobName": "nightly-embeddings-7", "status": "Completed"});
        let nameless = json!({"status": "Completed"});
        let route = |detail: &serde_json::Value| {
            targets(BEDROCK_EVENT_SOURCE, BEDROCK_STATE_CHANGE, detail).collect::<Vec<_>>()
        };
        assert_eq!(route(&ours), vec![Queue::StatusWatcher]);
        assert!(route(&theirs).is_empty(), "another application's job");
        assert!(route(&nameless).is_empty());
        assert_eq!(
            targets(EVENT_SOURCE, "BATCH_REQUESTED", &json!({})).collect::<Vec<_>>(),
            vec![Queue::ManifestBuilder]
        );
    }

    #[test]
    fn when_writing_a_pattern_should_filter_bedrock_events_on_the_job_name_prefix() {
        let bedrock = RULES.iter().find(|r| r.default_bus).expect("bedrock rule");
        assert_eq!(
            bedrock.pattern(),
            json!({"source": ["aws.bedrock"], "detail-type": ["Batch Inference Job State Change"],
                   "detail": {"batchJobName": [{"prefix": "bo-"}]}})
        );
    }
}
