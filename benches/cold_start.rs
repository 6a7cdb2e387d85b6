//! Cold start and memory of each Lambda binary, measured against a local Lambda Runtime API of
//! our own: init duration is process start to its first `GET /runtime/invocation/next`; peak
//! RSS comes from `/usr/bin/time -v`. Each binary then serves `INVOCATIONS` invocations of an
//! event that needs no AWS call (a 400 for intake, an empty batch for the SQS consumers), so
//! the figures are start-up plus the runtime loop, without network I/O.
//!
//! Build the binaries first as deployed, without the embedded backend (`cargo build --release
//! -p intake -p manifest-builder -p submitter -p status-watcher -p reconciler -p webhook-sender`), then
//! `cargo bench --bench cold_start`. `BO_BIN_DIR` points elsewhere (e.g. a cargo-lambda build).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INVOCATIONS: usize = 200;
const RUNS: usize = 5;

struct Runtime {
    payload: Value,
    served: AtomicUsize,
    answered: AtomicUsize,
    first_next: Mutex<Option<Instant>>,
    errors: AtomicUsize,
}

async fn next(
    State(rt): State<Arc<Runtime>>,
) -> Result<(HeaderMap, String), axum::http::StatusCode> {
    rt.first_next
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Instant::now);
    let n = rt.served.fetch_add(1, Ordering::SeqCst);
    if n >= INVOCATIONS {
        // No more work: an error on /next makes the runtime loop end and the process exit.
        return Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    }
    let mut h = HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        format!("req-{n}").parse().expect("header"),
    );
    h.insert(
        "lambda-runtime-deadline-ms",
        "99999999999999".parse().expect("header"),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .expect("header"),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000"
            .parse()
            .expect("header"),
    );
    Ok((h, rt.payload.to_string()))
}

async fn response(State(rt): State<Arc<Runtime>>, Path(_id): Path<String>) -> &'static str {
    rt.answered.fetch_add(1, Ordering::SeqCst);
    ""
}

async fn error(State(rt): State<Arc<Runtime>>, body: String) -> &'static str {
    rt.errors.fetch_add(1, Ordering::SeqCst);
    eprintln!("function reported an error: {body}");
    ""
}

struct Sample {
    init: Duration,
    rss_kib: u64,
    answered: usize,
}

async fn run_once(bin: &std::path::Path, payload: Value) -> anyhow::Result<Sample> {
    let rt = Arc::new(Runtime {
        payload,
        served: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        first_next: Mutex::new(None),
        errors: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cmd = tokio::process::Command::new("/usr/bin/time");
    cmd.arg("-v").arg(bin).env_clear().envs(lambda_env(addr));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn()?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await??;
    server.abort();
    let first = rt
        .first_next
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| anyhow::anyhow!("{} never called /next", bin.display()))?;
    let rss_kib = peak_rss_kib(&String::from_utf8_lossy(&out.stderr))?;
    anyhow::ensure!(
        rt.errors.load(Ordering::SeqCst) == 0,
        "{} reported errors",
        bin.display()
    );
    Ok(Sample {
        init: first - started,
        rss_kib,
        answered: rt.answered.load(Ordering::SeqCst),
    })
}

/// What Lambda sets for a function, and the variables our functions require.
fn lambda_env(addr: std::net::SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "ERROR".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("INTENTS_TABLE", "intents".into()),
        ("RESULTS_TABLE", "results".into()),
        ("UPLOADS_TABLE", "uploads".into()),
        ("EVENT_BUS_NAME", "bus".into()),
        ("UPLOADS_BUCKET", "bench-uploads".into()),
        ("MANIFESTS_BUCKET", "bench-manifests".into()),
        ("OUTPUTS_BUCKET", "bench-outputs".into()),
        (
            "BEDROCK_ROLE_ARN",
            "arn:aws:iam::123456789012:role/bedrock".into(),
        ),
        (
            "ALLOWED_MODEL_IDS",
            "us.anthropic.claude-haiku-4-5-20251001-v1:0".into(),
        ),
        ("API_BASE_URL", "https://api.example.com".into()),
    ]
}

/// `/usr/bin/time -v`'s maximum resident set size.
fn peak_rss_kib(stderr: &str) -> anyhow::Result<u64> {
    stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no RSS in /usr/bin/time output: {stderr}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::var("BO_BIN_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/release").into());
    let bad_request = json!({
        "version": "2.0", "routeKey": "POST /api/batch/jobs", "rawPath": "/api/batch/jobs",
        "headers": {}, "isBase64Encoded": false, "body": "{}",
        "requestContext": {"http": {"method": "POST", "path": "/api/batch/jobs"}, "authorizer": {"jwt": {"claims": {"sub": "u1"}}}, "requestId": "r", "timeEpoch": 0}
    });
    let empty_batch = json!({"Records": []});
    println!("cold start and peak RSS, {RUNS} runs each (median), {INVOCATIONS} invocations per run, binaries in {dir}");
    println!(
        "{:<16} {:>12} {:>14} {:>10}",
        "function", "init (ms)", "peak RSS (MiB)", "answered"
    );
    for (name, payload) in [
        ("intake", bad_request),
        // A direct invoke without an intentId: refused before any AWS call.
        ("intake-events", json!({})),
        ("manifest-builder", empty_batch.clone()),
        ("submitter", empty_batch.clone()),
        ("status-watcher", empty_batch),
    ] {
        let bin = std::path::Path::new(&dir).join(name);
        if !bin.exists() {
            println!("{name:<16} missing: build with `cargo build --release --bins`");
            continue;
        }
        let mut inits = Vec::new();
        let mut rss = Vec::new();
        let mut answered = 0;
        for _ in 0..RUNS {
            let s = run_once(&bin, payload.clone()).await?;
            inits.push(s.init.as_secs_f64() * 1000.0);
            rss.push(s.rss_kib as f64 / 1024.0);
            answered = s.answered;
        }
        println!(
            "{name:<16} {:>12.1} {:>14.1} {:>10}",
            median(inits),
            median(rss),
            answered
        );
    }
    Ok(())
}
