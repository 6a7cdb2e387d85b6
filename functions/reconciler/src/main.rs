//! The reconciler Lambda: wiring only. Invoked by an EventBridge schedule.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = shared::adapters::aws::cold_start().await?;
    let deps = &deps;
    let metrics = shared::metrics::install_emf("reconciler");
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = reconciler::handle(deps, event.payload).await;
        if let Some(m) = metrics {
            let _ = m.flush(std::io::stdout());
        }
        answer.map_err(Error::from)
    }))
    .await
}
