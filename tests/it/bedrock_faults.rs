//! Bedrock's real failures, played by the emulator's fault plan on the embedded backend: every
//! image ends answered or failed with its reason, statuses tell the truth, no slot stays
//! taken, and nothing reaches a DLQ. (The same scenarios through the SDK: `aws_e2e.rs`.)

use crate::common::*;
use batch_orchestrator::embedded::EmbeddedOptions;
use shared::adapters::embedded::bedrock_emulator::fault_plan::{BedrockFault, ERROR_LINE_EVERY};
use shared::domain::intent::BatchIntent;
use shared::domain::results::ResultStatus;
use shared::domain::status::{BedrockJobStatus, IntentStatus};

const IMAGES: usize = 40;

/// A backend with the fault plan, a job minimum of `min`, and [`IMAGES`] receipts uploaded.
async fn faulty(
    faults: &[BedrockFault],
    min: u64,
    more: impl FnOnce(&mut EmbeddedOptions),
) -> (TestApp, Vec<String>) {
    let faults = faults.to_vec();
    let app = app_with(|o| {
        o.emulator.faults = faults;
        o.settings.quotas.min_records_per_job = min;
        o.emulator.quotas = o.settings.quotas.clone();
        more(o);
    })
    .await;
    let mut keys = Vec::new();
    for i in 0..IMAGES {
        let key = format!("uploads/{SAMPLE_USER}/2026-11-29/r{i:03}.png");
        app.upload(&key, batch_orchestrator::samples::receipt_png(i + 20))
            .await
            .expect("upload");
        keys.push(key);
    }
    (app, keys)
}

/// Posts one intent over `keys` and runs until idle; returns it and the deliveries that failed
/// (each a receive count spent).
async fn post_and_run(app: &TestApp, keys: &[String]) -> (BatchIntent, usize) {
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let answer = app.intake(direct("faulty", &refs)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    let mut failed = 0;
    app.run_until_idle(10_000, |s| failed += s.failed)
        .await
        .expect("idle");
    (intent_named(app, "faulty"), failed)
}

/// Nothing is left behind: no dead letter, no slot held.
async fn assert_clean(app: &TestApp, intent: &BatchIntent) {
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
    let cap = app
        .deps
        .settings
        .quotas_for(&intent.model_id)
        .max_concurrent_jobs;
    let held = app
        .deps
        .slots
        .held(intent.model_id.as_str(), cap)
        .await
        .expect("held");
    assert_eq!(held, 0, "every job slot is free");
}

#[tokio::test]
async fn when_a_completed_job_holds_error_lines_should_end_partially_completed_with_matching_counts(
) {
    let (app, keys) = faulty(&[BedrockFault::CompletedWithErrors], 1, |_| {}).await;
    let (intent, failed) = post_and_run(&app, &keys).await;
    assert_eq!(intent.jobs.len(), 1);
    assert_eq!(intent.jobs[0].status, Some(BedrockJobStatus::Completed));
    assert_eq!(intent.status, IntentStatus::PartiallyCompleted);
    let errors = (IMAGES / ERROR_LINE_EVERY) as u64;
    let c = intent.counts.expect("counts");
    assert_eq!(
        (
            c.total_record_count,
            c.processed_record_count,
            c.success_record_count,
            c.error_record_count
        ),
        (IMAGES as u64, IMAGES as u64, IMAGES as u64 - errors, errors)
    );
    let rs = results(&app, &intent).await;
    let bad: Vec<_> = rs
        .iter()
        .filter(|r| r.status == ResultStatus::Failed)
        .collect();
    assert_eq!(bad.len() as u64, errors);
    assert!(bad.iter().all(|r| r.error_code.as_deref() == Some("400")
        && r.error_message
            .as_deref()
            .is_some_and(|m| m.contains("completed-with-errors"))));
    assert_eq!(failed, 0);
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_job_expires_half_done_should_rerun_the_rest_in_a_second_batch_job_not_on_demand() {
    let min = (IMAGES / 2) as u64;
    let (app, keys) = faulty(&[BedrockFault::ExpireHalf], min, |_| {}).await;
    let (intent, _) = post_and_run(&app, &keys).await;
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    assert_eq!(intent.jobs.len(), 2);
    assert_eq!(intent.jobs[0].status, Some(BedrockJobStatus::Expired));
    let rerun = &intent.jobs[1];
    assert_eq!(rerun.rerun_of, Some(intent.jobs[0].job_no));
    assert_eq!(rerun.attempt, 2);
    assert_eq!(rerun.status, Some(BedrockJobStatus::Completed));
    assert!(
        rerun.records() >= min,
        "the re-run job holds at least the minimum"
    );
    assert_eq!(
        rerun.records() - rerun.pad_records,
        min,
        "the half that expired"
    );
    // Its folder is named after its parent and attempt: two jobs ending at once never plan
    // into one folder.
    assert!(rerun.input.key.ends_with("/r001a2j01/"), "{}", rerun.input);
    assert_eq!(app.emulator.job_count().expect("jobs"), 2);
    assert_eq!(app.runtime.calls(), 0, "nothing went on-demand");
    let rs = results(&app, &intent).await;
    assert_eq!(rs.len(), IMAGES);
    assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
    assert_eq!(rs.iter().filter(|r| r.attempts == 2).count() as u64, min);
    let c = intent.counts.expect("counts");
    assert_eq!(
        (
            c.total_record_count,
            c.success_record_count,
            c.error_record_count
        ),
        (IMAGES as u64, IMAGES as u64, 0),
        "no record counted twice"
    );
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_remainder_is_below_the_minimum_should_go_on_demand() {
    let (app, keys) = faulty(&[BedrockFault::ExpireHalf], (IMAGES / 2 + 1) as u64, |_| {}).await;
    let (intent, _) = post_and_run(&app, &keys).await;
    assert_eq!(intent.status, IntentStatus::Completed);
    assert_eq!(intent.jobs.len(), 1);
    assert_eq!(app.runtime.calls(), IMAGES / 2);
}

#[tokio::test]
async fn when_bedrock_denies_access_should_fail_in_one_pass_naming_the_permission_and_free_the_slot(
) {
    let (app, keys) = faulty(&[BedrockFault::CreateAccessDenied], 1, |_| {}).await;
    let (intent, failed) = post_and_run(&app, &keys).await;
    assert_eq!(intent.status, IntentStatus::Failed);
    let why = intent.failure_message.clone().unwrap_or_default();
    assert!(
        why.contains("iam:PassRole") && why.contains("BEDROCK_ROLE_ARN"),
        "{why}"
    );
    assert!(
        !why.contains("arn:aws:iam"),
        "Bedrock's own text stays in the log: {why}"
    );
    assert_eq!(failed, 0, "refused once, never redelivered");
    assert_eq!(app.emulator.job_count().expect("jobs"), 0);
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_bedrock_quota_is_full_of_other_jobs_should_wait_without_spending_receive_counts() {
    let (app, keys) = faulty(&[BedrockFault::CreateQuotaExceeded], 1, |_| {}).await;
    let (intent, failed) = post_and_run(&app, &keys).await;
    assert_eq!(intent.status, IntentStatus::Completed);
    assert_eq!(failed, 0, "waiting spends no receive count");
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    assert!(intent.create_backoff.is_none(), "cleared once created");
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_job_is_stuck_in_scheduled_should_report_progress_and_stop_on_cancel() {
    let (app, keys) = faulty(&[BedrockFault::StuckScheduled], 1, |_| {}).await;
    let (intent, _) = post_and_run(&app, &keys).await;
    assert_eq!(intent.status, IntentStatus::Submitted, "stuck, not failed");
    assert_eq!(intent.jobs[0].status, Some(BedrockJobStatus::Scheduled));
    // The reconciler's poll keeps Bedrock's counts and expiry on the job.
    scheduled_pass(&app).await;
    let intent = intent_named(&app, "faulty");
    let job = &intent.jobs[0];
    assert_eq!(
        job.progress.map(|p| p.total_record_count),
        Some(IMAGES as u64)
    );
    assert!(job.expires_at.is_some_and(|t| t > intent.created_at));
    let user = shared::domain::ids::UserId::parse(SAMPLE_USER).expect("user");
    shared::app::cancel::cancel(&app.deps, &user, &intent.job_id)
        .await
        .expect("cancel");
    run(&app).await;
    let intent = intent_named(&app, "faulty");
    assert_eq!(intent.status, IntentStatus::Stopped);
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_finished_jobs_event_is_lost_should_find_it_by_polling() {
    let (app, keys) = faulty(&[], 1, |o| o.emulator.emit_events = false).await;
    let (intent, _) = post_and_run(&app, &keys).await;
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "the reconciler's poll ended it"
    );
    assert_eq!(results(&app, &intent).await.len(), IMAGES);
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_job_ends_short_while_its_sibling_waits_for_a_slot_should_still_rerun_and_end() {
    // Two jobs of 20, one slot: job 1 runs (and expires half done) while job 2 waits, so the
    // intent is still MANIFEST_READY when job 1's remainder is planned.
    let (app, keys) = faulty(&[BedrockFault::ExpireHalf], 10, |o| {
        o.settings.quotas.max_records_per_job = 20;
        o.settings.quotas.max_records_per_file = 20;
        o.settings.quotas.max_concurrent_jobs = 1;
    })
    .await;
    let (intent, failed) = post_and_run(&app, &keys).await;
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    assert_eq!(intent.jobs.len(), 3, "two planned jobs and one re-run");
    assert_eq!(intent.jobs[2].rerun_of, Some(1));
    assert_eq!(app.emulator.job_count().expect("jobs"), 3);
    assert_eq!(failed, 0);
    let rs = results(&app, &intent).await;
    assert_eq!(rs.len(), IMAGES);
    assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_outputs_have_other_names_should_find_them_by_listing_and_run_nothing_twice() {
    let (app, keys) = faulty(&[BedrockFault::OutputRenamed], 1, |_| {}).await;
    let (intent, _) = post_and_run(&app, &keys).await;
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 1, "no re-run job");
    assert_eq!(app.runtime.calls(), 0, "nothing went on-demand");
    let rs = results(&app, &intent).await;
    assert_eq!(rs.len(), IMAGES);
    assert!(rs
        .iter()
        .all(|r| r.status == ResultStatus::Succeeded && r.attempts == 1));
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_an_ended_jobs_output_lands_late_should_wait_for_it_and_rerun_only_the_rest() {
    let min = (IMAGES / 2) as u64;
    let faults = [BedrockFault::ExpireHalf, BedrockFault::LateOutput];
    let (app, keys) = faulty(&faults, min, |_| {}).await;
    let (intent, _) = post_and_run(&app, &keys).await;
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    assert_eq!(intent.jobs.len(), 2);
    assert_eq!(intent.jobs[0].status, Some(BedrockJobStatus::Expired));
    let rerun = &intent.jobs[1];
    assert_eq!(
        rerun.records() - rerun.pad_records,
        min,
        "only the half the expired job did not process is sent again"
    );
    let rs = results(&app, &intent).await;
    assert_eq!(rs.len(), IMAGES);
    assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
    assert_eq!(rs.iter().filter(|r| r.attempts == 1).count() as u64, min);
    assert_eq!(app.runtime.calls(), 0, "nothing went on-demand");
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_create_answers_conflict_should_adopt_the_job_of_that_name() {
    let (app, keys) = faulty(&[BedrockFault::CreateConflict], 1, |_| {}).await;
    let (intent, failed) = post_and_run(&app, &keys).await;
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    assert_eq!(
        failed, 0,
        "adopted in the same delivery, no receive count spent"
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 1, "one billed job");
    assert!(intent.jobs[0].arn.is_some());
    assert_clean(&app, &intent).await;
}

#[tokio::test]
async fn when_a_job_expires_without_starting_should_keep_its_queue_time_for_the_estimate() {
    let (app, keys) = faulty(&[], 1, |o| o.emulator.expire_scheduled = true).await;
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let answer = app.intake(direct("faulty", &refs)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    // The job is created, then expires in Scheduled a while later.
    app.deliver(shared::topology::Queue::ManifestBuilder)
        .await
        .expect("manifest");
    app.deliver(shared::topology::Queue::Submitter)
        .await
        .expect("submit");
    app.manual_clock()
        .expect("manual clock")
        .advance(chrono::Duration::minutes(30));
    for _ in 0..4 {
        app.emulator.tick().await.expect("tick");
    }
    // The re-run job starts normally.
    app.emulator.set_options(|o| o.expire_scheduled = false);
    run(&app).await;
    let intent = intent_named(&app, "faulty");
    let samples = app
        .deps
        .history
        .recent(intent.model_id.as_str())
        .await
        .expect("history");
    let expired = samples
        .iter()
        .find(|s| s.run_secs.is_none())
        .expect("a sample of the expired job");
    assert!(
        expired.queue_secs >= 1_800.0,
        "queued 30 minutes: {expired:?}"
    );
}
