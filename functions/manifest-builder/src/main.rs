//! The manifest-builder Lambda: wiring only (see `shared::adapters::aws::lambda::serve`).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::lambda::serve("manifest-builder", |deps, event: SqsEvent| async move {
        Ok(manifest_builder::handle(&deps, event).await)
    })
    .await
}
