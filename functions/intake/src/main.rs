//! The intake Lambda: wiring only.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = shared::adapters::aws::cold_start().await?;
    let deps = &deps;
    let metrics = shared::metrics::install_emf("intake");
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = intake::handle(deps, event.payload).await;
        if let Some(m) = metrics {
            // One EMF document per invocation, on stdout where CloudWatch Logs picks it up.
            let _ = m.flush(std::io::stdout());
        }
        Ok::<Value, Error>(answer)
    }))
    .await
}
