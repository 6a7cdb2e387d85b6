//! Logging for the Lambda functions: JSON lines through `tracing`, with the current span's
//! fields and the enclosing spans' (a message's intent_id, job_id, trace_id) on every line. The level comes from
//! `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) or `RUST_LOG`, default `info`.

use tracing_subscriber::EnvFilter;

pub fn init_json_logs() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .flatten_event(true)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .try_init();
}
