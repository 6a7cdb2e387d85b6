//! The intake Lambda: wiring only (see `shared::adapters::aws::lambda::serve`).

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::lambda::serve("intake", |deps, event: serde_json::Value| async move {
        intake::invoke(&deps, event).await.map_err(Error::from)
    })
    .await
}
