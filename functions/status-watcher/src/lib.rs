//! status-watcher: consumes Bedrock's "Batch Inference Job State Change" events and applies
//! them forward-only, ingesting results on a terminal status (see `shared::app::watch`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::sqs_edge::process_batch;
use shared::app::{watch::apply_state_change, Deps, StageError};
use shared::domain::bedrock::{JobStateChange, BEDROCK_EVENT_SOURCE, BEDROCK_STATE_CHANGE};

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    process_batch("status-watcher", event, |envelope| async move {
        if envelope.source != BEDROCK_EVENT_SOURCE || envelope.detail_type != BEDROCK_STATE_CHANGE {
            return Err(StageError::Permanent(format!(
                "expected a Bedrock job state change, got {} from {}",
                envelope.detail_type, envelope.source
            )));
        }
        let change: JobStateChange = serde_json::from_value(envelope.detail)
            .map_err(|e| StageError::Permanent(format!("state change detail is malformed: {e}")))?;
        apply_state_change(deps, &change).await
    })
    .await
}
