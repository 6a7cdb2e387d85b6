//! The intent state machine and Bedrock's job statuses. Transitions only move forward: a stale
//! or replayed transition is refused here and becomes a no-op in the stage that asked.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where one batch intent stands.
///
/// ```text
/// REQUESTED -> MANIFEST_READY -> SUBMITTED -> IN_PROGRESS -> COMPLETED | PARTIALLY_COMPLETED
///     |              |              |             |          | FAILED | STOPPED | EXPIRED
///     +--------------+--------------+-------------+--> FAILED (a permanent error at that stage)
///     |
///     +--> POOLED (below the job minimum: its records wait for a shared job or the
///                  below-minimum policy) --> any terminal status
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntentStatus {
    Requested,
    /// Too few records for a job of its own: waiting in the model's pool.
    Pooled,
    ManifestReady,
    Submitted,
    InProgress,
    Completed,
    PartiallyCompleted,
    Failed,
    Stopped,
    Expired,
    /// Cancelled by its owner before any Bedrock job existed.
    Cancelled,
}

impl IntentStatus {
    pub const ALL: [IntentStatus; 11] = [
        Self::Requested,
        Self::Pooled,
        Self::ManifestReady,
        Self::Submitted,
        Self::InProgress,
        Self::Completed,
        Self::PartiallyCompleted,
        Self::Failed,
        Self::Stopped,
        Self::Expired,
        Self::Cancelled,
    ];

    /// Position on the forward path; all terminal statuses share the last rank.
    pub fn rank(self) -> u8 {
        match self {
            Self::Requested => 0,
            // Beside MANIFEST_READY: a pooled intent never gets a job of its own, so it
            // goes from POOLED straight to its end.
            Self::Pooled | Self::ManifestReady => 1,
            Self::Submitted => 2,
            Self::InProgress => 3,
            Self::Completed
            | Self::PartiallyCompleted
            | Self::Failed
            | Self::Stopped
            | Self::Expired
            | Self::Cancelled => 4,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    /// True when `next` is a legal step from `self`: strictly forward, and never out of a
    /// terminal status (a terminal status is final, so two terminal events cannot flip-flop).
    pub fn can_advance_to(self, next: IntentStatus) -> bool {
        !self.is_terminal() && next.rank() > self.rank()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::Pooled => "POOLED",
            Self::ManifestReady => "MANIFEST_READY",
            Self::Submitted => "SUBMITTED",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::PartiallyCompleted => "PARTIALLY_COMPLETED",
            Self::Failed => "FAILED",
            Self::Stopped => "STOPPED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for IntentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IntentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown intent status {s:?}"))
    }
}

/// A Bedrock model invocation job status, spelled as Bedrock spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BedrockJobStatus {
    Submitted,
    Validating,
    Scheduled,
    InProgress,
    Stopping,
    Completed,
    PartiallyCompleted,
    Failed,
    Stopped,
    Expired,
}

impl BedrockJobStatus {
    pub const ALL: [BedrockJobStatus; 10] = [
        Self::Submitted,
        Self::Validating,
        Self::Scheduled,
        Self::InProgress,
        Self::Stopping,
        Self::Completed,
        Self::PartiallyCompleted,
        Self::Failed,
        Self::Stopped,
        Self::Expired,
    ];

    /// Bedrock's own lifecycle order. Scheduled follows Validating (it is not the same
    /// thing: the input passed validation and waits for capacity).
    pub fn rank(self) -> u8 {
        match self {
            Self::Submitted => 0,
            Self::Validating => 1,
            Self::Scheduled => 2,
            Self::InProgress => 3,
            Self::Stopping => 4,
            _ => 5,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 5
    }

    pub fn can_advance_to(self, next: BedrockJobStatus) -> bool {
        !self.is_terminal() && next.rank() > self.rank()
    }

    /// Terminal statuses after which Bedrock has written (some) outputs worth ingesting.
    pub fn has_outputs(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::PartiallyCompleted | Self::Stopped | Self::Expired
        )
    }

    /// The intent status one job in this status implies.
    pub fn intent_status(self) -> IntentStatus {
        match self {
            Self::Submitted | Self::Validating | Self::Scheduled => IntentStatus::Submitted,
            Self::InProgress | Self::Stopping => IntentStatus::InProgress,
            Self::Completed => IntentStatus::Completed,
            Self::PartiallyCompleted => IntentStatus::PartiallyCompleted,
            Self::Failed => IntentStatus::Failed,
            Self::Stopped => IntentStatus::Stopped,
            Self::Expired => IntentStatus::Expired,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "Submitted",
            Self::Validating => "Validating",
            Self::Scheduled => "Scheduled",
            Self::InProgress => "InProgress",
            Self::Stopping => "Stopping",
            Self::Completed => "Completed",
            Self::PartiallyCompleted => "PartiallyCompleted",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
            Self::Expired => "Expired",
        }
    }
}

impl fmt::Display for BedrockJobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BedrockJobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown Bedrock job status {s:?}"))
    }
}

/// The intent status that a set of jobs adds up to: the least advanced job while any runs;
/// once all are terminal, COMPLETED if all completed, PARTIALLY_COMPLETED if any produced
/// results, otherwise the shared failure status (FAILED when they differ).
pub fn aggregate(jobs: &[BedrockJobStatus]) -> Option<IntentStatus> {
    let first = *jobs.first()?;
    if let Some(slowest) = jobs
        .iter()
        .filter(|s| !s.is_terminal())
        .map(|s| s.intent_status())
        .min_by_key(|s| s.rank())
    {
        return Some(slowest);
    }
    if jobs.iter().all(|s| *s == BedrockJobStatus::Completed) {
        return Some(IntentStatus::Completed);
    }
    if jobs.iter().any(|s| {
        matches!(
            s,
            BedrockJobStatus::Completed | BedrockJobStatus::PartiallyCompleted
        )
    }) {
        return Some(IntentStatus::PartiallyCompleted);
    }
    if jobs.iter().all(|s| *s == first) {
        return Some(first.intent_status());
    }
    Some(IntentStatus::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_status_is_terminal_should_refuse_every_transition() {
        for from in IntentStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in IntentStatus::ALL {
                assert!(!from.can_advance_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn when_transition_goes_backwards_or_stays_should_be_refused() {
        use IntentStatus::*;
        assert!(Requested.can_advance_to(ManifestReady));
        assert!(Requested.can_advance_to(Failed));
        assert!(InProgress.can_advance_to(Completed));
        assert!(!InProgress.can_advance_to(Submitted));
        assert!(!Submitted.can_advance_to(Submitted));
    }

    #[test]
    fn when_bedrock_status_round_trips_should_match_bedrock_spelling() {
        for s in BedrockJobStatus::ALL {
            assert_eq!(s.as_str().parse::<BedrockJobStatus>(), Ok(s));
            let json = serde_json::to_string(&s).expect("serializes");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert!("Running".parse::<BedrockJobStatus>().is_err());
    }

    #[test]
    fn when_scheduled_should_map_to_submitted_not_in_progress() {
        assert_eq!(
            BedrockJobStatus::Scheduled.intent_status(),
            IntentStatus::Submitted
        );
        assert!(BedrockJobStatus::Validating.can_advance_to(BedrockJobStatus::Scheduled));
        assert!(!BedrockJobStatus::Scheduled.can_advance_to(BedrockJobStatus::Validating));
    }

    #[test]
    fn when_jobs_mix_should_aggregate_to_slowest_or_partial() {
        use BedrockJobStatus as B;
        assert_eq!(aggregate(&[]), None);
        assert_eq!(
            aggregate(&[B::Completed, B::InProgress]),
            Some(IntentStatus::InProgress)
        );
        assert_eq!(
            aggregate(&[B::Completed, B::Completed]),
            Some(IntentStatus::Completed)
        );
        assert_eq!(
            aggregate(&[B::Completed, B::Failed]),
            Some(IntentStatus::PartiallyCompleted)
        );
        assert_eq!(
            aggregate(&[B::Expired, B::Expired]),
            Some(IntentStatus::Expired)
        );
        assert_eq!(
            aggregate(&[B::Expired, B::Stopped]),
            Some(IntentStatus::Failed)
        );
    }
}
