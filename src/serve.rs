//! `batch-orchestrator serve`: the HTTP API on localhost over the embedded backend. It serves
//! intake's own router (the one the Lambda runs), with callers authenticated by a bearer JWT
//! signed with the key in the data dir (`batch-orchestrator token --user U` prints one), as API
//! Gateway's JWT authorizer would. The pipeline runs in the background.

use crate::embedded::{Embedded, EmbeddedOptions};
use crate::progress;
use std::sync::Arc;

/// Serves the HTTP API on 127.0.0.1:`port` over the embedded backend in `opts`, with the
/// pipeline running in the background.
pub async fn serve(opts: EmbeddedOptions, port: u16) -> anyhow::Result<()> {
    let data_dir = opts.data_dir.clone();
    let key = Arc::new(intake::LocalKey::load_or_create(&data_dir)?);
    let app = Arc::new(Embedded::open(opts)?);
    let router = crate::ops::router(app.clone(), key.clone()).merge(intake::router(
        app.deps.clone(),
        intake::Auth::LocalJwt(key),
    ));
    tokio::spawn(run_pipeline(app));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "batch-orchestrator API on http://127.0.0.1:{port}/api/batch/jobs (embedded backend, data in {}; `batch-orchestrator token --user U` prints a bearer token); the operator page: http://127.0.0.1:{port}/ops#token=$(batch-orchestrator token --operator)",
        data_dir.display()
    );
    axum::serve(listener, router).await?;
    Ok(())
}

/// Runs the pipeline until idle, again and again, with a progress line.
async fn run_pipeline(app: Arc<Embedded>) {
    let spinner = progress::spinner();
    let mut totals = progress::PipelineTotals::default();
    loop {
        let run = app.run_until_idle(100_000, |step| {
            totals.add(step);
            spinner.set_message(totals.line());
        });
        if let Err(e) = run.await {
            tracing::warn!(error = %e, "pipeline pass failed");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
