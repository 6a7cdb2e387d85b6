//! The `intake` Lambda (HTTP API): wiring only (see `shared::adapters::aws::lambda::serve` and
//! `intake::http`).

use lambda_http::request::LambdaRequest;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::lambda::serve("intake", |deps, request: LambdaRequest| async move {
        Ok::<_, Error>(intake::http::answer(&deps, request).await)
    })
    .await
}
