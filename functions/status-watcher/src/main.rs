//! The status-watcher Lambda: wiring only. Its SQS event source reports batch item failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = shared::adapters::aws::cold_start().await?;
    let deps = &deps;
    let metrics = shared::metrics::install_emf("status-watcher");
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let answer = status_watcher::handle(deps, event.payload).await;
        if let Some(m) = metrics {
            // One EMF document per invocation, on stdout where CloudWatch Logs picks it up.
            let _ = m.flush(std::io::stdout());
        }
        Ok::<SqsBatchResponse, Error>(answer)
    }))
    .await
}
