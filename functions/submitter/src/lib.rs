//! submitter: consumes `BATCH_MANIFEST_READY` and creates the Bedrock jobs with deterministic
//! names and client tokens (see `shared::app::submit` for what a replay does).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::sqs_edge::{expect_domain_event, process_batch};
use shared::app::{submit::submit_jobs, Deps};
use shared::domain::events::EventKind;

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    process_batch("submitter", event, |envelope| async move {
        let event = expect_domain_event(&envelope, EventKind::BatchManifestReady)?;
        submit_jobs(deps, &event.detail.intent_id).await
    })
    .await
}
