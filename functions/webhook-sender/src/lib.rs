//! webhook-sender: consumes `BATCH_COMPLETED` and `BATCH_FAILED` from the webhooks queue and
//! posts each intent's signed completion webhook (see `shared::app::webhooks` for retries and
//! what a replay does).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::sqs_edge::process_batch;
use shared::app::{webhooks::deliver, Deps, StageError};

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    process_batch("webhook-sender", event, |envelope| async move {
        let event = match envelope.domain_event() {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                return Err(StageError::Permanent(format!(
                    "{} detail is malformed: {e}",
                    envelope.detail_type
                )))
            }
            None => {
                return Err(StageError::Permanent(format!(
                    "expected a batch's end, got {} from {}",
                    envelope.detail_type, envelope.source
                )))
            }
        };
        deliver(deps, &event).await
    })
    .await
}
