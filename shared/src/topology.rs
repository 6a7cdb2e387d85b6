//! The routing every backend shares: which events each stage's queue receives. The embedded
//! bus reads it directly; the CDK stack and the local-AWS setup mirror it (and a test compares).

use crate::domain::bedrock::{BEDROCK_EVENT_SOURCE, BEDROCK_STATE_CHANGE};
use crate::domain::events::EVENT_SOURCE;

/// A queue a stage consumes. Each has a dead-letter queue named `{name}-dlq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    ManifestBuilder,
    Submitter,
    StatusWatcher,
}

impl Queue {
    pub const ALL: [Queue; 3] = [
        Queue::ManifestBuilder,
        Queue::Submitter,
        Queue::StatusWatcher,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ManifestBuilder => "manifest-builder",
            Self::Submitter => "submitter",
            Self::StatusWatcher => "status-watcher",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name() == s)
    }
}

/// An EventBridge rule: events of `source` whose detail-type is one of `detail_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub source: &'static str,
    pub detail_types: &'static [&'static str],
    pub target: Queue,
    /// True for the account's default bus (Bedrock's events), false for our custom bus.
    pub default_bus: bool,
}

pub const RULES: [Rule; 3] = [
    Rule {
        name: "batch-requested-to-manifest-builder",
        source: EVENT_SOURCE,
        detail_types: &["BATCH_REQUESTED"],
        target: Queue::ManifestBuilder,
        default_bus: false,
    },
    Rule {
        name: "manifest-ready-to-submitter",
        source: EVENT_SOURCE,
        detail_types: &["BATCH_MANIFEST_READY"],
        target: Queue::Submitter,
        default_bus: false,
    },
    Rule {
        name: "bedrock-job-state-to-status-watcher",
        source: BEDROCK_EVENT_SOURCE,
        detail_types: &[BEDROCK_STATE_CHANGE],
        target: Queue::StatusWatcher,
        default_bus: true,
    },
];

/// The queues an event with this source and detail-type is delivered to.
pub fn targets<'a>(source: &'a str, detail_type: &'a str) -> impl Iterator<Item = Queue> + 'a {
    RULES
        .iter()
        .filter(move |r| r.source == source && r.detail_types.contains(&detail_type))
        .map(|r| r.target)
}
