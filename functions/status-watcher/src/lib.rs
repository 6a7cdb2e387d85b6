//! status-watcher: consumes Bedrock's "Batch Inference Job State Change" events and applies
//! them forward-only, ingesting results on a terminal status (`shared::app::watch`, which
//! decodes the event once with `shared::domain::bedrock::JobEvent`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::sqs_edge::process_batch;
use shared::app::{watch::apply_envelope, Deps};

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    process_batch("status-watcher", event, |envelope| {
        apply_envelope(deps, envelope)
    })
    .await
}
