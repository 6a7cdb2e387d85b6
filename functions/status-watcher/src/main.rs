//! The status-watcher Lambda: wiring only. Its SQS event source reports batch item failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = shared::adapters::aws::cold_start().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(status_watcher::handle(deps, event.payload).await)
    }))
    .await
}
