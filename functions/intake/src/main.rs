//! The `intake` Lambda (HTTP API): wiring only (see `shared::adapters::aws::lambda::serve` and
//! `intake::http`).

use lambda_http::request::LambdaRequest;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The router is built once, on the first request (the Deps arrive with it), then shared.
    let app = std::sync::OnceLock::new();
    shared::adapters::aws::lambda::serve("intake", move |deps, request: LambdaRequest| {
        let app: axum::Router = app
            .get_or_init(|| intake::router((*deps).clone(), intake::Auth::Authorizer))
            .clone();
        async move { Ok::<_, Error>(intake::http::answer(&app, request).await) }
    })
    .await
}
