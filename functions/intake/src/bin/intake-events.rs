//! The `intake-events` Lambda (direct invoke, S3 uploads index, nightly run): wiring only (see
//! `shared::adapters::aws::lambda::serve` and `intake::events`).

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::lambda::serve(
        "intake-events",
        |deps, event: serde_json::Value| async move {
            intake::events::invoke(&deps, event)
                .await
                .map_err(Error::from)
        },
    )
    .await
}
