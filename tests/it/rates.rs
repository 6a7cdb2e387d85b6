//! On-demand at Bedrock's pace (issue 32, items 3 and 4): every runner takes its turn from the
//! model's shared budget, and a "slow down" from Bedrock backs off without failing a record.
//! The emulator's fault `on-demand-throttle` keeps the configured requests a minute over any
//! 60 seconds and answers ThrottlingException above it.

use crate::common::*;
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use shared::domain::deadline::OnDemandRate;
use shared::domain::results::ResultStatus;

const IMAGES: usize = 1_000;

/// A backend whose Bedrock sticks every job in Scheduled and takes 100 InvokeModel calls a
/// minute; the runners' budget is `budget_rpm` a minute.
async fn throttled_app(budget_rpm: f64) -> TestApp {
    let app = app_with(|o| {
        o.emulator.faults = vec![BedrockFault::StuckScheduled, BedrockFault::OnDemandThrottle];
        o.settings.quotas.min_records_per_job = 1_000;
        o.settings.below_minimum = shared::domain::settings::BelowMinimum::OnDemand;
        o.settings.min_deadline_secs = 60;
        o.settings.on_demand_rate = OnDemandRate {
            requests_per_minute: 100.0,
            tokens_per_minute: 100_000_000.0,
        };
        let model = o
            .settings
            .default_model()
            .expect("a default model")
            .to_string();
        o.settings.on_demand_rates.insert(
            model,
            OnDemandRate {
                requests_per_minute: budget_rpm,
                tokens_per_minute: 100_000_000.0,
            },
        );
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    crate::scale::store_many(&app, IMAGES, |i| {
        format!("uploads/{SAMPLE_USER}/2026-12-05/t{i:04}.png")
    })
    .await;
    app
}

/// Posts the [`IMAGES`] with a deadline `minutes` ahead, runs the night out, and checks every
/// record was answered by the deadline; returns the deadline.
async fn redrive_night(app: &TestApp, minutes: i64) {
    let keys: Vec<String> = (0..IMAGES)
        .map(|i| format!("uploads/{SAMPLE_USER}/2026-12-05/t{i:04}.png"))
        .collect();
    let deadline = app.deps.clock.now() + chrono::Duration::minutes(minutes);
    let extra = serde_json::json!({"deadline": deadline.to_rfc3339()});
    post_and_run(app, "paced", &keys, extra).await;
    let (_, rs) = completed(app, "paced").await;
    assert_eq!(rs.len(), IMAGES);
    let failed = rs
        .iter()
        .filter(|r| r.status != ResultStatus::Succeeded)
        .count();
    assert_eq!(failed, 0, "no record failed");
    assert!(
        rs.iter().all(|r| r.on_demand),
        "the stuck job answered none"
    );
    assert!(app.deps.clock.now() <= deadline, "answered by the deadline");
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
}

#[tokio::test]
async fn when_1000_records_are_redriven_under_100_a_minute_should_answer_all_within_the_rate() {
    let app = throttled_app(100.0).await;
    redrive_night(&app, 40).await;
    let busiest = app.runtime.busiest_minute();
    assert!(
        busiest <= 100,
        "the emulator saw {busiest} calls in one minute"
    );
    assert!(busiest >= 80, "the budget is used, not wasted: {busiest}");
    assert_eq!(
        app.runtime.throttled_calls(),
        0,
        "the budget kept under the quota"
    );
}

#[tokio::test]
async fn when_bedrock_throttles_past_the_budget_should_back_off_and_fail_no_record() {
    // The runners believe in 300 a minute; Bedrock takes 100 (the rest of the account's quota
    // is someone else's) and throttles the rest. A pooled request below the minimum runs
    // on-demand at its pool's deadline, with no deadline of its own to stop the retries.
    let app = throttled_app(300.0).await;
    let n = 999;
    let keys: Vec<String> = (0..n)
        .map(|i| format!("uploads/{SAMPLE_USER}/2026-12-05/t{i:04}.png"))
        .collect();
    let answer = app
        .intake(direct(
            "pooled",
            &keys.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let clock = app.manual_clock().expect("manual clock");
    clock.advance(chrono::Duration::seconds(
        app.deps.settings.pool_deadline_secs + 1,
    ));
    run(&app).await;
    let (_, rs) = completed(&app, "pooled").await;
    assert_eq!(rs.len(), n);
    assert!(rs
        .iter()
        .all(|r| r.status == ResultStatus::Succeeded && r.on_demand));
    assert!(app.runtime.throttled_calls() > 0, "Bedrock said slow down");
    assert!(app.runtime.busiest_minute() <= 100);
}

/// The acceptance's night: a 300-image request due in 2 minutes, every batch job stuck and
/// InvokeModel throttled at the backend's own rate: 300 of 300 answered by the deadline.
#[tokio::test]
async fn when_300_images_are_due_in_2_minutes_under_a_stuck_throttled_bedrock_should_answer_all() {
    let app = app_with(|o| {
        o.emulator.faults = vec![BedrockFault::StuckScheduled, BedrockFault::OnDemandThrottle];
        o.settings.quotas.min_records_per_job = 100;
        o.settings.min_deadline_secs = 60;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-05/s{i:04}.png");
    crate::scale::store_many(&app, 300, key).await;
    let keys: Vec<String> = (0..300).map(key).collect();
    let deadline = app.deps.clock.now() + chrono::Duration::minutes(2);
    let extra = serde_json::json!({"deadline": deadline.to_rfc3339()});
    post_and_run(&app, "due", &keys, extra).await;
    let (_, rs) = completed(&app, "due").await;
    assert_eq!(
        rs.iter()
            .filter(|r| r.status == ResultStatus::Succeeded)
            .count(),
        300
    );
    assert!(app.deps.clock.now() <= deadline);
}
