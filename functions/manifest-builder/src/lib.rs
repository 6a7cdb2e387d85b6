//! manifest-builder: consumes `BATCH_REQUESTED` from its SQS queue and writes the JSONL
//! manifest parts (see `shared::app::manifest` for what a replay does).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::sqs_edge::{expect_domain_event, process_batch};
use shared::app::{manifest::build_manifest, Deps};
use shared::domain::events::EventKind;

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    process_batch("manifest-builder", event, |envelope| async move {
        let event = expect_domain_event(&envelope, EventKind::BatchRequested)?;
        build_manifest(deps, &event.detail.intent_id).await
    })
    .await
}
