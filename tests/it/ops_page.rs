//! The operator page in a real browser: `serve`'s `/ops`, loaded by Debian's headless
//! Chromium while a batch's Bedrock job is stuck in Scheduled, renders the job, its user and
//! status, the slots taken and the intents by status; a user's token is refused its data (403).
//! Chromium missing: skipped, unless `BO_REQUIRE_BROWSER` is set (scripts/test.sh installs it
//! and sets it), which makes a missing browser a failure. The test also leaves a screenshot in
//! `target/ops-page.png` (the one in docs/operations.md).

use crate::common::*;
use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use std::process::Command;
use std::sync::Arc;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser() -> Option<&'static str> {
    if std::path::Path::new(CHROMIUM).exists() {
        return Some(CHROMIUM);
    }
    assert!(
        std::env::var_os("BO_REQUIRE_BROWSER").is_none(),
        "BO_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)"
    );
    eprintln!("skipped: no {CHROMIUM}");
    None
}

/// Chromium, headless, as this machine allows it (no sandbox as root, no background network).
fn chromium(bin: &str, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile");
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            &profile_arg,
        ])
        .args(args)
        .output()
        .expect("chromium runs")
}

#[tokio::test]
async fn when_an_operator_opens_the_page_should_see_the_stuck_job_and_a_user_should_not() {
    let Some(bin) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let mut opts = EmbeddedOptions::new(dir.path());
    opts.settings.quotas.min_records_per_job = 1;
    opts.settings.pool_below_records = 0;
    opts.emulator.quotas = opts.settings.quotas.clone();
    opts.emulator.faults = vec![BedrockFault::StuckScheduled];
    let app = Arc::new(Embedded::open(opts).expect("embedded"));
    for (i, key) in SAMPLE_KEYS.iter().enumerate() {
        app.upload(key, batch_orchestrator::samples::receipt_png(i + 1))
            .await
            .expect("upload");
    }
    let answer = app.intake(direct("night-1", &SAMPLE_KEYS)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    app.run_until_idle(1_000, |_| {}).await.expect("idle");
    let job_id = body(&answer)["jobId"].as_str().expect("jobId").to_owned();

    let key = Arc::new(intake::LocalKey::load_or_create(dir.path()).expect("key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = batch_orchestrator::ops::router(app.clone(), key.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let operator = key
        .sign_operator(&shared::domain::ids::UserId::parse("ops").expect("id"), 600)
        .expect("token");
    let user = key
        .sign(
            &shared::domain::ids::UserId::parse(SAMPLE_USER).expect("id"),
            600,
        )
        .expect("token");

    // The data is the operator's alone.
    let http = reqwest::Client::new();
    let state = format!("{url}/ops/api/state");
    let code = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(code(http.get(&state).send().await.expect("GET")), 401);
    let as_user = http
        .get(&state)
        .bearer_auth(&user)
        .send()
        .await
        .expect("GET");
    assert_eq!(code(as_user), 403);

    // What the browser renders, after the page's script fetched and drew the state.
    let page = format!("{url}/ops#token={operator}");
    let bin = bin.to_owned();
    let dom = tokio::task::spawn_blocking(move || chromium(&bin, &["--dump-dom", &page]))
        .await
        .expect("browser");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let table = |id: &str| {
        let start = dom
            .find(&format!("id=\"{id}-table\""))
            .unwrap_or_else(|| panic!("no {id} table in {dom}"));
        let end = dom[start..]
            .find("</table>")
            .map_or(dom.len(), |e| start + e);
        dom[start..end].to_owned()
    };
    let jobs = table("jobs");
    assert!(jobs.contains(&job_id), "the job id: {jobs}");
    assert!(
        jobs.contains(SAMPLE_USER) && jobs.contains("Scheduled"),
        "{jobs}"
    );
    assert!(jobs.contains("arn:aws:bedrock:"), "the Bedrock job: {jobs}");
    let statuses = table("statuses");
    assert!(
        statuses.contains("SUBMITTED") && statuses.contains(">1<"),
        "{statuses}"
    );
    assert!(table("models").contains("1 / 10"), "a slot taken");
    assert!(table("dlq").contains("status-watcher"));

    // The picture docs/operations.md shows.
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ops-page.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let page = format!("{url}/ops#token={operator}");
    let bin = CHROMIUM.to_owned();
    tokio::task::spawn_blocking(move || {
        chromium(
            &bin,
            &[
                &shot_arg,
                "--window-size=1280,900",
                "--hide-scrollbars",
                &page,
            ],
        )
    })
    .await
    .expect("screenshot");
    assert!(shot.exists(), "a screenshot at {}", shot.display());
}
