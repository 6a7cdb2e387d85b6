//! The fourth part: a redrive under Bedrock's on-demand rate, for real on the embedded
//! backend (its manual clock, so minutes of emulated time take seconds). Bedrock (the
//! emulator's fault `on-demand-throttle`) takes 100 InvokeModel calls in any 60 seconds;
//! every batch job sticks in Scheduled (`stuck-scheduled`), so a request of 1,000 images due
//! in 40 minutes is cut off and redriven on-demand. Ends with one line:
//! `throttle: records=N answered=A failed=F rate_per_min=R busiest_minute=B throttled=T emulated_minutes=M`.

use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use shared::domain::deadline::OnDemandRate;
use shared::domain::results::ResultStatus;

const RATE: f64 = 100.0;

/// Runs the redrive of `images` records and prints its line.
pub fn report(images: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(images))
}

async fn run(images: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut opts = EmbeddedOptions::new(dir.path().join("data"));
    opts.manual_clock = true;
    opts.emulator.faults = vec![BedrockFault::StuckScheduled, BedrockFault::OnDemandThrottle];
    opts.settings.min_deadline_secs = 60;
    // Seven sample images under every key: the bench measures pacing, not duplicate finding.
    opts.settings.duplicate_window_days = 0;
    opts.settings.on_demand_rate = OnDemandRate {
        requests_per_minute: RATE,
        tokens_per_minute: 100_000_000.0,
    };
    let app = Embedded::open(opts)?;
    let keys: Vec<String> = (0..images)
        .map(|i| format!("uploads/bench-user/2026-12-06/t{i:04}.png"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        app.upload(key, batch_orchestrator::samples::receipt_png(i % 7 + 1))
            .await?;
    }
    let start = app.deps.clock.now();
    let deadline = start + chrono::Duration::minutes(40);
    let answer = app
        .intake(
            serde_json::json!({"intentId": "throttled", "userId": "bench-user",
            "images": keys, "deadline": deadline.to_rfc3339()}),
        )
        .await;
    anyhow::ensure!(answer["statusCode"] == 202, "intake: {answer}");
    app.run_until_idle(100_000, |_| {}).await?;
    let intent = app
        .store
        .all()?
        .into_iter()
        .find(|i| i.client_id().as_str() == "throttled")
        .ok_or_else(|| anyhow::anyhow!("no intent"))?;
    let results = shared::ports::ResultStore::list_results(
        &*app.deps.results,
        &intent.intent_id,
        None,
        1_000_000,
    )
    .await?;
    let answered = results
        .iter()
        .filter(|r| r.status == ResultStatus::Succeeded)
        .count();
    println!(
        "throttle: records={images} answered={answered} failed={} rate_per_min={RATE} busiest_minute={} throttled={} emulated_minutes={:.1}",
        results.len() - answered,
        app.runtime.busiest_minute(),
        app.runtime.throttled_calls(),
        (app.deps.clock.now() - start).num_seconds() as f64 / 60.0
    );
    Ok(())
}
