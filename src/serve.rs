//! `batch-orchestrator serve`: the HTTP API on localhost over the embedded backend. Each
//! request becomes the HTTP API v2 event API Gateway would send (the `x-user` header standing
//! in for the JWT's `sub`) and goes to the intake handler; the pipeline runs in the background.

use crate::embedded::{Embedded, EmbeddedOptions};
use crate::progress;

/// Serves the HTTP API on 127.0.0.1:`port` over the embedded backend in `opts`, with the
/// pipeline running in the background.
pub async fn serve(opts: EmbeddedOptions, port: u16) -> anyhow::Result<()> {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::routing::any;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let data_dir = opts.data_dir.clone();
    let app = Arc::new(Embedded::open(opts)?);
    let runner = app.clone();
    tokio::spawn(async move {
        let spinner = progress::spinner();
        let mut totals = progress::PipelineTotals::default();
        loop {
            let run = runner.run_until_idle(100_000, |step| {
                totals.add(step);
                spinner.set_message(totals.line());
            });
            if let Err(e) = run.await {
                tracing::warn!(error = %e, "pipeline pass failed");
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    async fn handle(
        State(app): State<Arc<Embedded>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        Query(query): Query<BTreeMap<String, String>>,
        body: String,
    ) -> (StatusCode, [(&'static str, &'static str); 1], String) {
        let user = headers.get("x-user").and_then(|v| v.to_str().ok());
        let event = crate::http_api::http_api_event_with_query(
            method.as_str(),
            uri.path(),
            user,
            &query,
            &body,
        );
        let answer = app.intake(event).await;
        let status = answer["statusCode"]
            .as_u64()
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = answer["body"].as_str().unwrap_or_default().to_owned();
        (status, [("content-type", "application/json")], body)
    }
    let router = axum::Router::new()
        .route("/api/batch/jobs", any(handle))
        .route("/api/batch/jobs/{*rest}", any(handle))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("batch-orchestrator API on http://127.0.0.1:{port}/api/batch/jobs (embedded backend, data in {})", data_dir.display());
    axum::serve(listener, router).await?;
    Ok(())
}
