//! Results by a deadline, on the embedded backend with a manual clock: a batch job that sticks
//! in Scheduled is stopped at its cut-off and its records redriven on-demand before the
//! deadline; without the fault the same request is answered by batch alone; and a crash
//! between the stop and the redrive, or between two redrive chunks, answers every image
//! exactly once.

use crate::common::*;
use batch_orchestrator::embedded::EmbeddedOptions;
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use shared::adapters::embedded::faults::FaultPlan;
use shared::domain::intent::BatchIntent;
use shared::domain::results::ResultStatus;
use shared::domain::settings::BelowMinimum;
use shared::domain::status::{BedrockJobStatus, IntentStatus};
use std::sync::Arc;

/// Images of the request: more than Bedrock's minimum of 100 and more than one redrive chunk.
pub(crate) const IMAGES: usize = 150;

/// The acceptance's setting: the job minimum of 100, pooled below 10,000, the pool sealed at
/// once and padded, deadlines from a minute ahead.
async fn night_app(faults: &[BedrockFault], plan: Option<Arc<FaultPlan>>) -> TestApp {
    let faults = faults.to_vec();
    app_with(move |o: &mut EmbeddedOptions| {
        night_options(o);
        o.emulator.faults = faults;
        o.faults = plan;
    })
    .await
}

/// The acceptance's settings (see [`night_app`]).
pub(crate) fn night_options(o: &mut EmbeddedOptions) {
    o.settings.quotas.min_records_per_job = 100;
    o.settings.pool_below_records = 10_000;
    o.settings.pool_deadline_secs = 0;
    o.settings.below_minimum = BelowMinimum::Pad;
    o.settings.min_deadline_secs = 60;
    o.emulator.quotas = o.settings.quotas.clone();
}

/// Uploads [`IMAGES`] receipts and posts them with a deadline two minutes ahead; returns the
/// deadline.
async fn post(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    post_named(app, "by-morning").await
}

/// [`post`] as intent `name`.
pub(crate) async fn post_named(app: &TestApp, name: &str) -> chrono::DateTime<chrono::Utc> {
    let mut keys = Vec::new();
    for i in 0..IMAGES {
        let key = format!("uploads/{SAMPLE_USER}/2026-12-03/d{i:03}.png");
        app.upload(&key, batch_orchestrator::samples::receipt_png(i % 7 + 1))
            .await
            .expect("upload");
        keys.push(key);
    }
    let deadline = app.deps.clock.now() + chrono::Duration::seconds(120);
    let mut body = direct(name, &keys.iter().map(String::as_str).collect::<Vec<_>>());
    body["deadline"] = serde_json::json!(deadline.to_rfc3339());
    let answer = app.intake(body).await;
    assert_eq!(status(&answer), 202, "{answer}");
    let b = body_of(&answer);
    assert_eq!(b["deadline"], serde_json::json!(deadline), "{b}");
    let estimated: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(b["estimatedCompletion"].clone()).expect("estimatedCompletion");
    assert!(estimated <= deadline, "the plan fits: {b}");
    deadline
}

fn body_of(answer: &serde_json::Value) -> serde_json::Value {
    body(answer)
}

/// The shared job the request's records went into.
fn shared_job(app: &TestApp) -> BatchIntent {
    intents(app)
        .into_iter()
        .find(BatchIntent::is_pool_job)
        .expect("a shared job")
}

/// Every image answered exactly once, before the deadline; returns how many by on-demand.
async fn assert_all_answered(app: &TestApp, deadline: chrono::DateTime<chrono::Utc>) -> usize {
    let member = intent_named(app, "by-morning");
    assert_eq!(member.status, IntentStatus::Completed, "{member:?}");
    let rs = results(app, &member).await;
    assert_eq!(rs.len(), IMAGES, "one result per image");
    assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
    assert!(
        app.deps.clock.now() <= deadline,
        "answered before the deadline"
    );
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
    rs.iter().filter(|r| r.on_demand).count()
}

#[tokio::test]
async fn when_a_batch_job_sticks_past_its_cutoff_should_stop_it_and_redrive_before_the_deadline() {
    let app = night_app(&[BedrockFault::StuckScheduled], None).await;
    let deadline = post(&app).await;
    run(&app).await;
    let on_demand = assert_all_answered(&app, deadline).await;
    assert_eq!(on_demand, IMAGES, "the stuck job answered none");
    assert_eq!(app.runtime.calls(), IMAGES, "each redriven once");
    let shared = shared_job(&app);
    assert_eq!(shared.deadline, Some(deadline), "the member's deadline");
    let job = &shared.jobs[0];
    assert!(!job.on_demand, "planned to batch");
    assert_eq!(job.status, Some(BedrockJobStatus::Stopped));
    assert!(job.deadline_stop_at.is_some_and(|t| t < deadline));
    // The redrive: an on-demand job of the stopped job's records, no second batch job.
    let redrive = &shared.jobs[1..];
    assert!(!redrive.is_empty());
    assert!(
        redrive
            .iter()
            .all(|j| j.on_demand && j.rerun_of == Some(1) && j.arn.is_none()),
        "{redrive:?}"
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    // The member's job view shows the stopped batch job.
    let member = intent_named(&app, "by-morning");
    let user = shared::domain::ids::UserId::parse(SAMPLE_USER).expect("user");
    let view = shared::app::status::job_status(&app.deps, &user, &member.job_id)
        .await
        .expect("view")
        .expect("found");
    let v = serde_json::to_value(&view).expect("json");
    assert_eq!(v["deadline"], serde_json::json!(deadline));
    let jobs = &v["pool"]["sharedJob"]["bedrockJobs"];
    assert_eq!(jobs[0]["status"], "Stopped", "{v}");
    assert!(jobs[0]["stoppedAtCutoff"].is_string(), "{v}");
    assert_eq!(jobs[1]["onDemand"], true, "the redrive: {v}");
    assert_eq!(jobs[1]["status"], "Completed", "{v}");
}

#[tokio::test]
async fn when_batch_runs_normally_should_answer_everything_by_batch() {
    let app = night_app(&[], None).await;
    let deadline = post(&app).await;
    run(&app).await;
    assert_eq!(
        assert_all_answered(&app, deadline).await,
        0,
        "no on-demand record"
    );
    assert_eq!(app.runtime.calls(), 0);
    let shared = shared_job(&app);
    assert!(shared.jobs.iter().all(|j| j.deadline_stop_at.is_none()));
    // The finished job's durations are kept for the next plan.
    let kept = app
        .deps
        .history
        .recent(shared.model_id.as_str())
        .await
        .expect("history");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].run_secs.is_some());
}

/// Runs the stuck scenario with a crash at the `nth` pass of `point`; every image must still
/// be answered exactly once.
async fn crash_run(point: &str, nth: usize) {
    let plan = FaultPlan::crash_at(point, nth);
    let app = night_app(&[BedrockFault::StuckScheduled], Some(plan.clone())).await;
    let deadline = post(&app).await;
    run(&app).await;
    // The crash left work for the next passes (a redelivery, the reconciler's schedule).
    for _ in 0..3 {
        scheduled_pass(&app).await;
        run(&app).await;
    }
    assert!(plan.fired(), "the crash at {point} #{nth} happened");
    assert_eq!(assert_all_answered(&app, deadline).await, IMAGES);
    assert_eq!(app.runtime.calls(), IMAGES, "no image answered twice");
}

#[tokio::test]
async fn when_the_process_dies_between_the_stop_and_the_redrive_should_answer_each_image_once() {
    crash_run("bedrock.stop_job:after", 1).await;
}

#[tokio::test]
async fn when_the_process_dies_between_two_redrive_chunks_should_answer_each_image_once() {
    // The member's results are written once when the stopped job is ingested (every record
    // without an answer), then a chunk at a time by the redrive's on-demand job: the second
    // write is the first chunk's, so the crash comes after one chunk was stored and before
    // the next.
    crash_run("results.put:after", 2).await;
}

/// Three recent jobs of the default model that each queued an hour.
async fn slow_history(app: &TestApp) {
    let model = app.deps.settings.default_model().expect("model").clone();
    for _ in 0..3 {
        let sample = shared::domain::deadline::JobSample {
            ended_at: app.deps.clock.now(),
            records: 100,
            queue_secs: 3_600.0,
            run_secs: Some(60.0),
        };
        app.deps
            .history
            .record(model.as_str(), &sample)
            .await
            .expect("record");
    }
}

#[tokio::test]
async fn when_history_says_batch_cannot_make_it_should_plan_on_demand_from_the_start() {
    let app = app_with(|o| o.settings.min_deadline_secs = 60).await;
    // Three recent jobs each queued an hour: a 2-minute deadline leaves batch no room.
    slow_history(&app).await;
    let deadline = app.deps.clock.now() + chrono::Duration::seconds(120);
    let mut body = direct("urgent", &SAMPLE_KEYS);
    body["deadline"] = serde_json::json!(deadline.to_rfc3339());
    let answer = app.intake(body).await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let intent = intent_named(&app, "urgent");
    assert_eq!(intent.status, IntentStatus::Completed, "{intent:?}");
    assert!(intent.jobs.iter().all(|j| j.on_demand), "{:?}", intent.jobs);
    assert_eq!(app.emulator.job_count().expect("jobs"), 0, "no batch job");
    let rs = results(&app, &intent).await;
    assert_eq!(rs.len(), SAMPLE_KEYS.len());
    assert!(rs
        .iter()
        .all(|r| r.on_demand && r.status == ResultStatus::Succeeded));
}

#[tokio::test]
async fn when_a_deadline_is_too_close_or_too_far_should_refuse_it_naming_the_field() {
    let app = app().await;
    let now = app.deps.clock.now();
    for (id, deadline) in [
        ("soon", (now + chrono::Duration::seconds(30)).to_rfc3339()),
        ("late", (now + chrono::Duration::days(30)).to_rfc3339()),
        ("bad", "tomorrow morning".to_owned()),
    ] {
        let mut body = direct(id, &SAMPLE_KEYS);
        body["deadline"] = serde_json::json!(deadline);
        let answer = app.intake(body).await;
        assert_eq!(status(&answer), 400, "{answer}");
        assert_eq!(body_of(&answer)["field"], "deadline", "{answer}");
    }
    assert!(intents(&app).is_empty(), "nothing written");
}

#[tokio::test]
async fn when_a_job_still_waits_for_a_slot_at_its_cutoff_should_run_it_on_demand_instead() {
    let app = app_with(|o| {
        o.emulator.faults = vec![BedrockFault::StuckScheduled];
        o.settings.quotas.max_concurrent_jobs = 1;
        o.settings.quotas.max_records_per_job = 100;
        o.settings.min_deadline_secs = 60;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    // Without a deadline, one job takes the only slot and sticks in Scheduled.
    let first = app.intake(direct("slot-holder", &SAMPLE_KEYS[..1])).await;
    assert_eq!(status(&first), 202, "{first}");
    run(&app).await;
    // Planned to batch (a slot frees within the plan's wave), it waits; at its cut-off it runs
    // on-demand instead, never created in Bedrock.
    let deadline = app.deps.clock.now() + chrono::Duration::seconds(120);
    let mut body = direct("waiting", &SAMPLE_KEYS[1..]);
    body["deadline"] = serde_json::json!(deadline.to_rfc3339());
    let answer = app.intake(body).await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let waiting = intent_named(&app, "waiting");
    assert_eq!(waiting.status, IntentStatus::Completed, "{waiting:?}");
    assert!(
        waiting
            .jobs
            .iter()
            .all(|j| j.on_demand && j.arn.is_none() && j.deadline_stop_at.is_some()),
        "{:?}",
        waiting.jobs
    );
    let rs = results(&app, &waiting).await;
    assert_eq!(rs.len(), SAMPLE_KEYS.len() - 1);
    assert!(rs
        .iter()
        .all(|r| r.on_demand && r.status == ResultStatus::Succeeded));
    assert!(app.deps.clock.now() <= deadline);
    assert_eq!(
        app.emulator.job_count().expect("jobs"),
        1,
        "only the slot holder's"
    );
    let held = app
        .deps
        .slots
        .held(waiting.model_id.as_str(), 1)
        .await
        .expect("held");
    assert_eq!(
        held, 1,
        "the slot holder keeps its slot, the moved job holds none"
    );
}

/// Issue 32, item 1: one member's deadline never moves another member's records. User A posts
/// 50 images with no deadline, user B 1 image due in 90 s, both below the job minimum, under a
/// stuck Bedrock and the on-demand policy: B is answered by its deadline, on-demand, alone;
/// A keeps waiting for a batch job (none of its records is run on-demand).
#[tokio::test]
async fn when_a_pooled_member_has_a_near_deadline_should_move_only_its_own_records() {
    let app = app_with(|o| {
        o.emulator.faults = vec![BedrockFault::StuckScheduled];
        o.settings.quotas.min_records_per_job = 100;
        o.settings.pool_below_records = 10_000;
        o.settings.below_minimum = BelowMinimum::OnDemand;
        o.settings.min_deadline_secs = 60;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    let mut a_keys = Vec::new();
    for i in 0..50 {
        let key = format!("uploads/{SAMPLE_USER}/2026-12-03/a{i:03}.png");
        app.upload(&key, batch_orchestrator::samples::receipt_png(i % 7 + 1))
            .await
            .expect("upload");
        a_keys.push(key);
    }
    let b_key = "uploads/user-b/2026-12-03/b000.png";
    app.upload(b_key, batch_orchestrator::samples::receipt_png(3))
        .await
        .expect("upload");
    let a = direct(
        "a-night",
        &a_keys.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(status(&app.intake(a).await), 202);
    run(&app).await;
    let deadline = app.deps.clock.now() + chrono::Duration::seconds(90);
    let b = serde_json::json!({"intentId": "b-soon", "userId": "user-b", "images": [b_key],
        "deadline": deadline.to_rfc3339()});
    assert_eq!(status(&app.intake(b).await), 202);
    // The reconciler's passes, 10 s apart, until B's deadline.
    let clock = app.manual_clock().expect("manual clock");
    while app.deps.clock.now() + chrono::Duration::seconds(10) < deadline {
        run(&app).await;
        clock.advance(chrono::Duration::seconds(8));
        scheduled_pass(&app).await;
    }
    run(&app).await;

    let b = intents(&app)
        .into_iter()
        .find(|i| i.client_id().as_str() == "b-soon")
        .expect("B");
    assert_eq!(b.status, IntentStatus::Completed, "{b:?}");
    let rs = results(&app, &b).await;
    assert_eq!(rs.len(), 1);
    assert!(rs[0].status == ResultStatus::Succeeded && rs[0].on_demand);
    assert!(app.deps.clock.now() <= deadline, "B by its deadline");
    let a = intent_named(&app, "a-night");
    assert_eq!(a.status, IntentStatus::Pooled, "A still waits for batch");
    assert!(
        results(&app, &a).await.iter().all(|r| !r.on_demand),
        "none of A's records ran on-demand"
    );
    assert_eq!(app.runtime.calls(), 1, "one model call: B's");
}

/// Issue 32, item 11: two announcements of one on-demand job delivered at once make exactly one
/// model call per record (the job's lease lets one runner through; the other answers its
/// message without spending a receive count).
#[tokio::test]
async fn when_an_on_demand_job_is_announced_twice_at_once_should_call_the_model_once_per_record() {
    let app = app_with(|o| o.settings.min_deadline_secs = 60).await;
    slow_history(&app).await;
    let deadline = app.deps.clock.now() + chrono::Duration::seconds(120);
    let mut body = direct("twice", &SAMPLE_KEYS);
    body["deadline"] = serde_json::json!(deadline.to_rfc3339());
    assert_eq!(status(&app.intake(body).await), 202);
    app.deliver(shared::topology::Queue::ManifestBuilder)
        .await
        .expect("manifest");
    let intent = intent_named(&app, "twice");
    assert!(intent.jobs.iter().all(|j| j.on_demand), "{:?}", intent.jobs);
    let (a, b) = tokio::join!(
        shared::app::submit::submit_jobs(&app.deps, &intent.intent_id),
        shared::app::submit::submit_jobs(&app.deps, &intent.intent_id)
    );
    a.expect("first");
    b.expect("second");
    run(&app).await;
    assert_eq!(intent_named(&app, "twice").status, IntentStatus::Completed);
    assert_eq!(
        app.runtime.calls(),
        SAMPLE_KEYS.len(),
        "one call per record"
    );
}
