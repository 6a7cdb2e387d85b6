//! The one Lambda main every function shares: cold start (logs, config, SDK clients, metrics
//! recorder), then the runtime loop, flushing one EMF metrics document after each invocation.

use crate::app::Deps;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;

pub async fn serve<E, R, F, Fut>(function: &'static str, handler: F) -> Result<(), Error>
where
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(Arc<Deps>, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
{
    let deps = Arc::new(super::cold_start().await?);
    let metrics = crate::metrics::install_emf(function);
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| {
        let answer = handler(deps.clone(), event.payload);
        async move {
            let answer = answer.await;
            if let Some(m) = metrics {
                // One EMF document per invocation, on stdout where CloudWatch Logs picks it up.
                let _ = m.flush(std::io::stdout());
            }
            answer
        }
    }))
    .await
}
