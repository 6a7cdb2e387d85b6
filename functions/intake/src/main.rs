//! The intake Lambda: wiring only.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = shared::adapters::aws::cold_start().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(intake::handle(deps, event.payload).await)
    }))
    .await
}
