//! The SQS edge every queue consumer shares: decode each message's EventBridge envelope, run
//! the stage, and report only the failed messages (`batchItemFailures`), so one poison
//! message never fails its neighbours and a retryable failure is never swallowed.

use crate::app::{Outcome, StageError};
use crate::domain::events::Envelope;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use std::future::Future;

pub async fn process_batch<F, Fut>(stage: &str, event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<Outcome, StageError>>,
{
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let result = match message
            .body
            .as_deref()
            .map(serde_json::from_str::<Envelope>)
        {
            None => Err(StageError::Permanent("message has no body".into())),
            Some(Err(e)) => Err(StageError::Permanent(format!(
                "body is not an EventBridge envelope: {e}"
            ))),
            Some(Ok(envelope)) => handle(envelope).await,
        };
        match result {
            Ok(outcome) => tracing::info!(stage, message_id = %id, ?outcome, "message handled"),
            Err(e) => {
                // Both kinds go back to the queue: retryable ones succeed later, permanent ones
                // reach the DLQ after maxReceiveCount, where an operator can look and replay.
                tracing::error!(stage, message_id = %id, retryable = e.is_retryable(), error = %e, "message failed");
                failures.push(BatchItemFailure {
                    item_identifier: id,
                });
            }
        }
    }
    SqsBatchResponse {
        batch_item_failures: failures,
    }
}

/// The domain event in an envelope, or a permanent error naming what is wrong with it.
pub fn expect_domain_event(
    envelope: &Envelope,
    kind: crate::domain::events::EventKind,
) -> Result<crate::domain::events::DomainEvent, StageError> {
    match envelope.domain_event() {
        Some(Ok(event)) if event.kind == kind => Ok(event),
        Some(Ok(event)) => Err(StageError::Permanent(format!(
            "expected {kind}, got {}",
            event.kind
        ))),
        Some(Err(e)) => Err(StageError::Permanent(format!(
            "{kind} detail is malformed: {e}"
        ))),
        None => Err(StageError::Permanent(format!(
            "expected {kind}, got {} from {}",
            envelope.detail_type, envelope.source
        ))),
    }
}
