//! Helpers shared by the cross-stage tests: a fresh embedded backend per test, sample events
//! from `events/`, and short queries over what the backend holds.
#![allow(dead_code)]

use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use batch_orchestrator::samples::receipt_png;
use serde_json::Value;
use shared::domain::intent::BatchIntent;
use shared::domain::results::ImageResult;
use std::path::PathBuf;

pub const SAMPLE_INTENT: &str = "7f9c2ba4-e88f-4d2a-9a3b-3c2d1e0f4a5b";
pub const SAMPLE_USER: &str = "user-123";
pub const SAMPLE_KEYS: [&str; 3] = [
    "uploads/user-123/2026-11-28/receipt-001.png",
    "uploads/user-123/2026-11-28/receipt-002.png",
    "uploads/user-123/2026-11-28/receipt-003.png",
];

pub struct TestApp {
    pub app: std::sync::Arc<Embedded>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = Embedded;
    fn deref(&self) -> &Embedded {
        &self.app
    }
}

/// How late the store's secondary indexes see a write in every cross-stage test: DynamoDB's
/// GSIs are eventually consistent, so the pipeline must be right while they lag.
pub const INDEX_LAG: chrono::Duration = chrono::Duration::seconds(2);

/// A fresh backend with a manual clock, a job minimum of 1 (and pooling only below it), indexes that lag by
/// [`INDEX_LAG`], and the sample images uploaded.
pub async fn app_with(configure: impl FnOnce(&mut EmbeddedOptions)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = EmbeddedOptions::new(dir.path());
    opts.manual_clock = true;
    opts.index_lag = Some(INDEX_LAG);
    opts.settings.quotas.min_records_per_job = 1;
    opts.settings.pool_below_records = 0;
    // The scale tests hard-link one image under thousands of keys; duplicates are found only
    // where a test asks (tests/it/duplicates.rs turns the window back on).
    opts.settings.duplicate_window_days = 0;
    opts.emulator.quotas = opts.settings.quotas.clone();
    configure(&mut opts);
    let app = Embedded::open(opts).expect("embedded backend");
    for (i, key) in SAMPLE_KEYS.iter().enumerate() {
        // Lambda retries an async invoke (the S3 event) twice when it fails, as a crash
        // injected while normalizing the upload makes it.
        let mut tries = 0;
        while let Err(e) = app.upload(key, receipt_png(i + 1)).await {
            tries += 1;
            assert!(tries < 3, "upload {key}: {e}");
        }
    }
    TestApp {
        app: std::sync::Arc::new(app),
        _dir: dir,
    }
}

impl TestApp {
    /// The app's data dir (the CLI's `--data-dir`).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

pub async fn app() -> TestApp {
    app_with(|_| {}).await
}

pub fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The JSON body of an intake answer, whichever door it came through.
pub fn body(answer: &Value) -> Value {
    match answer.get("body").and_then(Value::as_str) {
        Some(text) => serde_json::from_str(text).expect("JSON body"),
        None => answer.clone(),
    }
}

pub fn status(answer: &Value) -> u64 {
    answer["statusCode"].as_u64().expect("statusCode")
}

/// A direct-invoke payload for `intent` over `keys` of the sample user.
pub fn direct(intent: &str, keys: &[&str]) -> Value {
    serde_json::json!({"intentId": intent, "userId": SAMPLE_USER, "images": keys})
}

pub fn intents(app: &Embedded) -> Vec<BatchIntent> {
    app.store.all().expect("intents")
}

/// Detail-types of every event ever published, oldest first.
pub fn published(app: &Embedded) -> Vec<String> {
    app.bus
        .archive()
        .expect("archive")
        .into_iter()
        .map(|(_, dt, _)| dt)
        .collect()
}

pub fn count(events: &[String], detail_type: &str) -> usize {
    events.iter().filter(|e| e.as_str() == detail_type).count()
}

pub async fn results(app: &Embedded, intent: &BatchIntent) -> Vec<ImageResult> {
    shared::ports::ResultStore::list_results(&*app.deps.results, &intent.intent_id, None, 1_000_000)
        .await
        .expect("results")
}

/// The intent `id`.
pub fn intent_named(app: &Embedded, id: &str) -> BatchIntent {
    intents(app)
        .into_iter()
        .find(|i| i.client_id().as_str() == id)
        .unwrap_or_else(|| panic!("no intent {id}"))
}

/// Requests [`SAMPLE_USER`]'s uploads of `day` as intent `id`, runs the pipeline until idle
/// and returns the intent, which must have completed.
pub async fn run_day(app: &Embedded, id: &str, day: &str) -> BatchIntent {
    let answer = app
        .intake(serde_json::json!({"intentId": id, "userId": SAMPLE_USER, "day": day}))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(app).await;
    completed_intent(app, id)
}

/// The intent `id`, which must have completed.
pub fn completed_intent(app: &Embedded, id: &str) -> BatchIntent {
    let intent = intent_named(app, id);
    assert_eq!(
        intent.status,
        shared::domain::status::IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    intent
}

pub async fn run(app: &Embedded) {
    app.run_until_idle(10_000, |_| {})
        .await
        .expect("pipeline goes idle");
}

/// One scheduled reconciler pass, as its schedule (every 5 minutes) would run it: later than
/// any index lag, so the manual clock moves past [`INDEX_LAG`] first.
pub async fn scheduled_pass(app: &Embedded) -> Value {
    if let Some(clock) = app.manual_clock() {
        clock.advance(INDEX_LAG);
    }
    reconciler::handle(&app.deps, serde_json::json!({}))
        .await
        .expect("reconciler pass")
}

/// Sets an HTTP API v2 event's query as API Gateway does: `rawQueryString` (what the router
/// reads) and the parsed `queryStringParameters`, from a JSON object of strings.
pub fn set_query(event: &mut Value, query: Value) {
    let mut url = reqwest::Url::parse("http://localhost/").expect("url");
    if let Some(pairs) = query.as_object() {
        let mut out = url.query_pairs_mut();
        for (k, v) in pairs {
            out.append_pair(k, v.as_str().unwrap_or_default());
        }
    }
    event["rawQueryString"] = serde_json::json!(url.query().unwrap_or_default());
    event["queryStringParameters"] = query;
}

/// The key [`SAMPLE_USER`]'s intent `id` is stored under (keys are scoped per user).
pub fn stored_key(id: &str) -> shared::domain::ids::IntentId {
    use shared::domain::ids::{IntentId, UserId};
    IntentId::scoped(
        &UserId::parse(SAMPLE_USER).expect("user"),
        &IntentId::parse(id).expect("intent id"),
    )
}

/// moto's endpoint (`BO_AWS_ENDPOINT`, set by scripts/test.sh), for the tests through the real
/// SDK; None (the test is skipped) without it, unless `BO_REQUIRE_AWS_TESTS` says moto must run.
pub fn aws_endpoint() -> Option<String> {
    match std::env::var("BO_AWS_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var_os("BO_REQUIRE_AWS_TESTS").is_none(),
                "BO_REQUIRE_AWS_TESTS is set but BO_AWS_ENDPOINT is not: moto was not started"
            );
            eprintln!(
                "skipped: BO_AWS_ENDPOINT is not set (scripts/test.sh starts moto and sets it)"
            );
            None
        }
    }
}

/// The intent `id`, which must have completed, and its results.
pub async fn completed(app: &Embedded, id: &str) -> (BatchIntent, Vec<ImageResult>) {
    let intent = completed_intent(app, id);
    let rs = results(app, &intent).await;
    (intent, rs)
}

/// Posts `keys` as the sample user's intent `id`, with `extra` fields merged into the body, and
/// runs the pipeline until idle.
pub async fn post_and_run(app: &Embedded, id: &str, keys: &[String], extra: Value) {
    let mut body = direct(id, &keys.iter().map(String::as_str).collect::<Vec<_>>());
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let answer = app.intake(body).await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(app).await;
}

/// The stages' ports on moto: a fresh stack named `{name}-{8 hex}` (tables, buckets, queues),
/// its SDK clients and the `Deps` over them; None (the test is skipped) without moto.
#[cfg(feature = "aws")]
pub async fn moto_deps(name: &str) -> Option<shared::app::Deps> {
    use batch_orchestrator::local_aws::{
        create_resources, local_clients, valid_prefix, LocalStack,
    };
    let aws = aws_endpoint()?;
    let prefix = valid_prefix(&format!(
        "{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let stack = LocalStack::named(&prefix);
    let clients = local_clients(&aws, "http://127.0.0.1:9").await;
    create_resources(&clients, &stack, 3, 1)
        .await
        .expect("resources");
    Some(clients.deps(&stack.config()))
}

/// An HTTP client for the tests' calls (the process's TLS provider installed first, as the
/// webhook adapter does).
pub fn http() -> reqwest::Client {
    shared::adapters::webhook_http::install_tls_provider();
    reqwest::Client::new()
}
