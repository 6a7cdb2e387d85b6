//! The SQS edge every queue consumer shares: decode each message's EventBridge envelope, run
//! the stage, and report only the failed messages (`batchItemFailures`), so one poison
//! message never fails its neighbours and a retryable failure is never swallowed.

use crate::app::{Outcome, StageError};
use crate::domain::events::Envelope;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;
use tracing::Instrument as _;

/// A span for one message, with the ids our own events carry (Bedrock's events fill them in
/// once the watcher has found the intent).
fn message_span(stage: &str, message_id: &str, envelope: Option<&Envelope>) -> tracing::Span {
    let detail = envelope.map(|e| &e.detail);
    let field = |name: &str| {
        detail
            .and_then(|d| d.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    tracing::info_span!(
        "message",
        stage,
        message_id,
        intent_id = field("intentId"),
        job_id = field("jobId"),
        trace_id = field("traceId"),
    )
}

/// What a panic said, when it said it as text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs `handle` on every message of the batch, one after the other, and reports the failed
/// ones. Not concurrently, as the runtime's own SQS example does: every queue hands its
/// function one message per invocation (batch size 1, for the timeouts), so concurrency would
/// change nothing deployed, and `join_all` made manifest-builder's binary 279 KB larger
/// (measured, docs/performance.md).
pub async fn process_batch<F, Fut>(stage: &str, event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<Outcome, StageError>>,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let failure = process_one(stage, message, &handle).await;
        response.batch_item_failures.extend(failure);
    }
    response
}

/// One message: its envelope decoded, the stage run in the message's span (a panic is that
/// message's failure, not the batch's nor the process's), and its failure, if any.
async fn process_one<F, Fut>(
    stage: &str,
    message: SqsMessage,
    handle: &F,
) -> Option<BatchItemFailure>
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<Outcome, StageError>>,
{
    let id = message.message_id.clone().unwrap_or_default();
    let parsed = message
        .body
        .as_deref()
        .map(serde_json::from_str::<Envelope>);
    let span = message_span(stage, &id, parsed.as_ref().and_then(|p| p.as_ref().ok()));
    let result = match parsed {
        None => Err(StageError::Permanent("message has no body".into())),
        Some(Err(e)) => Err(StageError::Permanent(format!(
            "body is not an EventBridge envelope: {e}"
        ))),
        // A panicking message goes back to the queue and, if it keeps panicking, to the DLQ.
        Some(Ok(envelope)) => {
            let run = std::panic::AssertUnwindSafe(handle(envelope).instrument(span.clone()));
            match futures::FutureExt::catch_unwind(run).await {
                Ok(result) => result,
                Err(panic) => Err(StageError::Permanent(format!(
                    "the stage panicked: {}",
                    panic_text(panic.as_ref())
                ))),
            }
        }
    };
    let _entered = span.enter();
    match result {
        Ok(outcome) => {
            tracing::info!(stage, message_id = %id, ?outcome, "message handled");
            None
        }
        Err(e) => {
            // Both kinds go back to the queue: retryable ones succeed later, permanent ones
            // reach the DLQ after maxReceiveCount, where an operator can look and replay.
            tracing::error!(stage, message_id = %id, retryable = e.is_retryable(), error = %e, "message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            Some(failure)
        }
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

/// The SQS event Lambda would deliver for these messages: (messageId, receiptHandle, body).
/// The embedded backend and the local AWS driver hand the handlers the same shape.
pub fn sqs_event(
    messages: impl IntoIterator<Item = (Option<String>, Option<String>, Option<String>)>,
) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|(message_id, receipt_handle, body)| {
            let mut m = aws_lambda_events::event::sqs::SqsMessage::default();
            m.message_id = message_id;
            m.receipt_handle = receipt_handle;
            m.body = body;
            m.event_source = Some("aws:sqs".into());
            m
        })
        .collect();
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids of the messages a batch answer reports as failed, in order.
    fn failed_ids(answer: SqsBatchResponse) -> Vec<String> {
        answer
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    /// An EventBridge envelope's body from `source`.
    fn body(source: &str) -> Option<String> {
        Some(serde_json::json!({"detail-type": "t", "source": source, "detail": {}}).to_string())
    }

    #[tokio::test]
    async fn when_one_message_panics_should_fail_that_message_alone() {
        let event = sqs_event([
            (Some("ok".into()), None, body("fine")),
            (Some("boom".into()), None, body("panics")),
        ]);
        let answer = process_batch("test", event, |e: Envelope| async move {
            assert!(e.source != "panics", "a decoder bug reached by this input");
            Ok(Outcome::AlreadyDone)
        })
        .await;
        let failed = failed_ids(answer);
        assert_eq!(failed, vec!["boom".to_owned()]);
    }

    #[tokio::test]
    async fn when_messages_fail_for_any_reason_should_report_each_failed_one_in_order() {
        let event = sqs_event([
            (Some("no-body".into()), None, None),
            (Some("not-json".into()), None, Some("{".into())),
            (Some("busy".into()), None, body("retry")),
            (Some("bad".into()), None, body("permanent")),
            (Some("done".into()), None, body("fine")),
        ]);
        let seen = std::sync::Mutex::new(Vec::new());
        let answer = process_batch("test", event, |e: Envelope| {
            seen.lock().expect("lock").push(e.source.clone());
            async move {
                match e.source.as_str() {
                    "retry" => Err(StageError::Retryable(crate::ports::PortError::new(
                        crate::ports::ErrorKind::Throttled,
                        "the store is busy",
                    ))),
                    "permanent" => Err(StageError::Permanent("never valid".into())),
                    _ => Ok(Outcome::AlreadyDone),
                }
            }
        })
        .await;
        let failed = failed_ids(answer);
        // Both kinds go back to the queue (a permanent one reaches the DLQ after its receive
        // count); the stage never saw the two messages that are not envelopes.
        assert_eq!(failed, ["no-body", "not-json", "busy", "bad"]);
        assert_eq!(*seen.lock().expect("lock"), ["retry", "permanent", "fine"]);
    }

    #[test]
    fn when_an_envelope_holds_another_event_should_name_what_was_expected() {
        use crate::domain::events::EventKind;
        let foreign: Envelope = serde_json::from_value(serde_json::json!({
            "detail-type": "Batch Inference Job State Change",
            "source": "aws.bedrock",
            "detail": {}
        }))
        .expect("an envelope");
        let err = expect_domain_event(&foreign, EventKind::BatchRequested).expect_err("foreign");
        assert!(!err.is_retryable(), "a wrong event never succeeds later");
        assert!(err.to_string().contains("aws.bedrock"), "{err}");
    }
}
