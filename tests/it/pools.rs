//! Intents below Bedrock's minimum records per job (the real default, 100): pooled, sealed
//! into shared jobs by size or by deadline (wait, pad, on-demand), cancelled out of a shared
//! job, and re-runs of failed records, on the embedded backend.

use crate::common::*;
use chrono::Duration;
use shared::domain::intent::{ImageSelection, ProcessingPath};
use shared::domain::results::ResultStatus;
use shared::domain::settings::BelowMinimum;
use shared::domain::settings::RemainderPolicy;
use shared::domain::status::IntentStatus;
use shared::ports::IntentStore as _;
use std::collections::HashSet;

/// A backend with the real job minimum (100) and `n` distinct images uploaded.
async fn pool_app(n: usize, policy: BelowMinimum) -> TestApp {
    let app = app_with(|o| {
        o.settings.quotas.min_records_per_job = 100;
        o.settings.below_minimum = policy;
        // One user sends hundreds of small requests here: pooling, not the open-batches limit.
        o.settings.max_open_intents_per_user = 1_000;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    for i in 0..n {
        app.upload(&key(i), batch_orchestrator::samples::receipt_png(i + 10))
            .await
            .expect("upload");
    }
    app
}

fn key(i: usize) -> String {
    format!("uploads/{SAMPLE_USER}/2026-11-28/r-{i:04}.png")
}

/// Intake of images `range` under intent `id`; answers the 202 body.
async fn send(app: &TestApp, id: &str, range: std::ops::Range<usize>) -> serde_json::Value {
    let keys: Vec<String> = range.map(key).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let answer = app.intake(direct(id, &refs)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    body(&answer)
}

fn intent(app: &TestApp, id: &str) -> shared::domain::intent::BatchIntent {
    intents(app)
        .into_iter()
        .find(|i| i.client_id().as_str() == id)
        .unwrap_or_else(|| panic!("no intent {id}"))
}

fn shared_jobs(app: &TestApp) -> Vec<shared::domain::intent::BatchIntent> {
    intents(app)
        .into_iter()
        .filter(|i| i.is_pool_job())
        .collect()
}

/// Lines of a shared job's record maps (one per record it carries for a member).
async fn map_lines(app: &TestApp, pool: &shared::domain::intent::BatchIntent) -> usize {
    use shared::ports::ObjectStore as _;
    let mut n = 0;
    for job in &pool.jobs {
        let uri = job
            .record_map
            .as_ref()
            .expect("a shared job has a record map");
        let body = app.objects.get(uri).await.expect("record map");
        n += String::from_utf8(body).expect("utf8").lines().count();
    }
    n
}

fn pass_deadline(app: &TestApp) {
    let clock = app.manual_clock().expect("manual clock");
    clock.advance(Duration::seconds(app.deps.settings.pool_deadline_secs + 1));
}

#[tokio::test]
async fn when_an_intent_has_99_records_should_pool_and_with_100_should_get_its_own_job() {
    let app = pool_app(199, BelowMinimum::Wait).await;
    let small = send(&app, "small-99", 0..99).await;
    assert_eq!(small["estimatedPath"], "pool");
    let big = send(&app, "big-100", 99..199).await;
    assert_eq!(big["estimatedPath"], "batch");
    assert!(big["estimatedCost"]["batchUsd"].as_f64().expect("cost") > 0.0);
    run(&app).await;

    let big = intent(&app, "big-100");
    assert_eq!(big.status, IntentStatus::Completed);
    assert_eq!(big.path(), ProcessingPath::OwnJob);
    assert_eq!(big.jobs.len(), 1);
    assert_eq!(big.jobs[0].records(), 100);

    let small = intent(&app, "small-99");
    assert_eq!(small.status, IntentStatus::Pooled);
    assert_eq!(small.path(), ProcessingPath::Pool);
    assert!(shared_jobs(&app).is_empty());
    assert_eq!(app.emulator.job_count().expect("jobs"), 1, "only the 100");
}

#[tokio::test]
async fn when_small_intents_reach_the_minimum_should_seal_one_shared_job_mapping_back() {
    let app = pool_app(120, BelowMinimum::Wait).await;
    send(&app, "a", 0..40).await;
    send(&app, "b", 40..80).await;
    run(&app).await;
    assert!(shared_jobs(&app).is_empty(), "80 records wait");
    send(&app, "c", 80..120).await;
    run(&app).await;

    let pools = shared_jobs(&app);
    assert_eq!(pools.len(), 1, "sealed by size, once");
    let pool = &pools[0];
    assert_eq!(pool.status, IntentStatus::Completed);
    assert_eq!(pool.jobs.iter().map(|j| j.records()).sum::<u64>(), 120);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    let ImageSelection::Pool { members, .. } = &pool.selection else {
        panic!("a pool's selection")
    };
    assert_eq!(members.len(), 3);
    assert!(
        pool.images.is_empty(),
        "a shared job's records live in its record map"
    );
    assert_eq!(map_lines(&app, pool).await, 120);

    // Every record of the shared job maps back to exactly one (intent, image).
    let mut seen = HashSet::new();
    for (id, range) in [("a", 0..40), ("b", 40..80), ("c", 80..120)] {
        let i = intent(&app, id);
        assert_eq!(i.status, IntentStatus::Completed, "{id}");
        assert_eq!(i.path(), ProcessingPath::SharedJob);
        assert_eq!(i.counts.expect("counts").success_record_count, 40);
        let rs = results(&app, &i).await;
        assert_eq!(rs.len(), 40, "{id}");
        for r in &rs {
            assert_eq!(r.status, ResultStatus::Succeeded);
            assert!(r.receipt.is_some());
            assert_eq!(r.image_key.as_str(), key(range.start + r.image_index));
            assert!(
                seen.insert(r.record_id.clone()),
                "record {} twice",
                r.record_id
            );
        }
    }
    assert_eq!(seen.len(), 120);
    assert!(
        results(&app, pool).await.is_empty(),
        "results live with the members"
    );
    assert_eq!(
        count(&published(&app), "BATCH_COMPLETED"),
        4,
        "3 members + the pool"
    );
}

#[tokio::test]
async fn when_pooling_below_a_higher_threshold_should_share_a_job_above_the_minimum() {
    let app = app_with(|o| {
        o.settings.quotas.min_records_per_job = 100;
        o.settings.pool_below_records = 200;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    for i in 0..150 {
        app.upload(&key(i), batch_orchestrator::samples::receipt_png(i + 10))
            .await
            .expect("upload");
    }
    let answer = send(&app, "mid", 0..150).await;
    assert_eq!(answer["estimatedPath"], "pool");
    run(&app).await;
    let mid = intent(&app, "mid");
    assert_eq!(mid.path(), ProcessingPath::SharedJob, "150 < 200: pooled");
    assert_eq!(mid.status, IntentStatus::Completed);
    assert_eq!(results(&app, &mid).await.len(), 150);
    assert_eq!(
        shared_jobs(&app).len(),
        1,
        "sealed at once: 150 >= the minimum"
    );
}

#[tokio::test]
async fn when_the_deadline_passes_under_policy_wait_should_keep_waiting() {
    let app = pool_app(30, BelowMinimum::Wait).await;
    send(&app, "w", 0..30).await;
    run(&app).await;
    pass_deadline(&app);
    run(&app).await;
    assert_eq!(intent(&app, "w").status, IntentStatus::Pooled);
    assert_eq!(app.emulator.job_count().expect("jobs"), 0);
    assert_eq!(app.runtime.calls(), 0);
}

#[tokio::test]
async fn when_the_deadline_passes_under_policy_pad_should_pad_a_shared_job_to_the_minimum() {
    let app = pool_app(30, BelowMinimum::Pad).await;
    send(&app, "p", 0..30).await;
    run(&app).await;
    assert_eq!(intent(&app, "p").status, IntentStatus::Pooled);
    pass_deadline(&app);
    run(&app).await;

    let pools = shared_jobs(&app);
    assert_eq!(pools.len(), 1, "sealed by deadline");
    assert_eq!(pools[0].jobs[0].records(), 100, "30 records + 70 padding");
    assert_eq!(
        map_lines(&app, &pools[0]).await,
        30,
        "padding maps to no image"
    );
    let p = intent(&app, "p");
    assert_eq!(p.status, IntentStatus::Completed);
    let rs = results(&app, &p).await;
    assert_eq!(rs.len(), 30);
    assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
}

#[tokio::test]
async fn when_the_deadline_passes_under_policy_on_demand_should_invoke_each_record() {
    let app = pool_app(30, BelowMinimum::OnDemand).await;
    send(&app, "o", 0..30).await;
    run(&app).await;
    assert_eq!(app.runtime.calls(), 0, "not before the deadline");
    pass_deadline(&app);
    run(&app).await;

    let o = intent(&app, "o");
    assert_eq!(o.status, IntentStatus::Completed);
    assert_eq!(o.path(), ProcessingPath::OnDemand);
    assert_eq!(o.counts.expect("counts").success_record_count, 30);
    assert_eq!(app.runtime.calls(), 30);
    assert_eq!(app.emulator.job_count().expect("jobs"), 0, "no batch job");
    let rs = results(&app, &o).await;
    assert_eq!(rs.len(), 30);
    assert!(rs
        .iter()
        .all(|r| r.status == ResultStatus::Succeeded && r.attempts == 1));

    // The status view names the path.
    let view = shared::app::status::job_status(&app.deps, &o.user_id, &o.job_id)
        .await
        .expect("status")
        .expect("own job");
    assert_eq!(view.path, ProcessingPath::OnDemand);
    assert_eq!(view.progress.succeeded, 30);
    assert_eq!(view.progress.pending, 0);
    assert!(view.pool.is_some());
}

#[tokio::test]
async fn when_members_of_a_shared_job_cancel_should_discard_theirs_and_stop_only_when_all_did() {
    let app = pool_app(200, BelowMinimum::Wait).await;
    // The shared job never starts by itself: the emulator is not ticked until asked.
    send(&app, "x", 0..50).await;
    send(&app, "y", 50..100).await;
    seal_and_submit(&app).await;
    let pool = &shared_jobs(&app)[0];
    assert_eq!(pool.status, IntentStatus::Submitted);
    let x = intent(&app, "x");
    let view = cancel(&app, &x).await;
    assert_eq!(view.status, IntentStatus::Cancelled);
    assert_eq!(
        shared_jobs(&app)[0].cancel_requested_at,
        None,
        "y still wants the job"
    );
    run(&app).await;

    let x = intent(&app, "x");
    assert_eq!(x.status, IntentStatus::Cancelled);
    let rs = results(&app, &x).await;
    assert_eq!(rs.len(), 50);
    assert!(
        rs.iter().all(|r| r.status == ResultStatus::Canceled),
        "answers discarded"
    );
    let y = intent(&app, "y");
    assert_eq!(y.status, IntentStatus::Completed);
    assert_eq!(results(&app, &y).await.len(), 50);

    // A second shared job whose members both cancel is stopped.
    send(&app, "v", 100..150).await;
    send(&app, "z", 150..200).await;
    seal_and_submit(&app).await;
    cancel(&app, &intent(&app, "v")).await;
    cancel(&app, &intent(&app, "v")).await; // idempotent
    cancel(&app, &intent(&app, "z")).await;
    run(&app).await;
    let second = shared_jobs(&app)
        .into_iter()
        .find(|p| {
            matches!(&p.selection, ImageSelection::Pool { members, .. }
                if members.iter().any(|m| m.intent_id == stored_key("v")))
        })
        .expect("v's shared job");
    assert_eq!(second.status, IntentStatus::Stopped);
    for id in ["v", "z"] {
        assert_eq!(intent(&app, id).status, IntentStatus::Cancelled);
    }
}

/// Pools what intake sent, seals it by size through the reconciler, then builds and submits
/// the shared job (the emulator is not ticked, so it stays submitted).
async fn seal_and_submit(app: &TestApp) {
    app.deliver(shared::topology::Queue::ManifestBuilder)
        .await
        .expect("deliver");
    scheduled_pass(app).await;
    for queue in [
        shared::topology::Queue::ManifestBuilder,
        shared::topology::Queue::Submitter,
    ] {
        app.deliver(queue).await.expect("deliver");
    }
}

async fn cancel(
    app: &TestApp,
    i: &shared::domain::intent::BatchIntent,
) -> shared::app::status::JobView {
    shared::app::cancel::cancel(&app.deps, &i.user_id, &i.job_id)
        .await
        .expect("cancel")
        .expect("own job")
}

#[tokio::test]
async fn when_records_fail_retryably_should_rerun_them_on_demand_but_never_validation_errors() {
    let app = app_with(|o| o.settings.remainder_policy = RemainderPolicy::OnDemand).await;
    app.intake(event("intake-direct.json")).await;
    app.deliver(shared::topology::Queue::ManifestBuilder)
        .await
        .expect("deliver");
    let i = &intents(&app)[0];
    // The emulator fails records by their id in the manifest.
    let ids: Vec<String> = i
        .images
        .iter()
        .map(|im| shared::domain::manifest::image_record_id(im.index))
        .collect();
    app.emulator.set_options(|o| {
        o.fail_records
            .insert(ids[0].clone(), (500, "InternalServerException".into()));
        o.fail_records.insert(
            ids[1].clone(),
            (400, "ValidationException: bad image".into()),
        );
        o.drop_records.insert(ids[2].clone());
    });
    run(&app).await;
    let i = app
        .store
        .get(&i.intent_id)
        .await
        .expect("get")
        .expect("intent");
    let rs = results(&app, &i).await;
    let got: Vec<_> = rs
        .iter()
        .map(|r| (r.status, r.error_code.clone(), r.attempts))
        .collect();
    assert_eq!(
        got,
        vec![
            (ResultStatus::Succeeded, None, 2),
            (ResultStatus::Failed, Some("400".into()), 1),
            (ResultStatus::Succeeded, None, 2),
        ]
    );
    assert_eq!(app.runtime.calls(), 2, "the 400 is never re-run");
    assert_eq!(i.status, IntentStatus::PartiallyCompleted);
    let c = i.counts.expect("counts");
    assert_eq!((c.success_record_count, c.error_record_count), (2, 1));
}

#[tokio::test]
async fn when_a_member_cancels_before_the_manifest_should_pad_the_shared_job_to_the_minimum() {
    let app = pool_app(100, BelowMinimum::Wait).await;
    send(&app, "a", 0..60).await;
    send(&app, "b", 60..100).await;
    app.deliver(shared::topology::Queue::ManifestBuilder)
        .await
        .expect("deliver");
    scheduled_pass(&app).await;
    // b leaves before the shared job's manifest: 60 records, under Bedrock's minimum.
    let view = cancel(&app, &intent(&app, "b")).await;
    assert_eq!(view.status, IntentStatus::Cancelled);
    run(&app).await;
    let pool = &shared_jobs(&app)[0];
    assert_eq!(pool.status, IntentStatus::Completed);
    assert_eq!(pool.jobs[0].records(), 100, "60 records + 40 padding");
    assert_eq!(map_lines(&app, pool).await, 60);
    assert_eq!(intent(&app, "a").status, IntentStatus::Completed);
    let b = results(&app, &intent(&app, "b")).await;
    assert!(b.iter().all(|r| r.status == ResultStatus::Canceled));
}

#[tokio::test]
async fn when_a_client_takes_a_reserved_intent_id_should_refuse_it() {
    let app = app().await;
    for id in ["pool-0123", "nightly-2026-11-28-abc"] {
        let answer = app.intake(direct(id, &SAMPLE_KEYS[..1])).await;
        assert_eq!(status(&answer), 400, "{answer}");
        assert_eq!(body(&answer)["field"], "intentId");
    }
    assert!(intents(&app).is_empty(), "nothing written");
}

#[tokio::test]
async fn when_a_job_expires_and_every_record_is_rerun_should_end_completed() {
    // Re-run on-demand: the emulator expires every job, a re-run batch job included.
    let app = app_with(|o| {
        o.emulator.expire_scheduled = true;
        o.settings.remainder_policy = RemainderPolicy::OnDemand;
    })
    .await;
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    let i = &intents(&app)[0];
    assert_eq!(
        i.jobs[0].status,
        Some(shared::domain::status::BedrockJobStatus::Expired)
    );
    let rs = results(&app, i).await;
    assert!(
        rs.iter()
            .all(|r| r.status == ResultStatus::Succeeded && r.attempts == 2),
        "{rs:?}"
    );
    assert_eq!(i.status, IntentStatus::Completed, "every record answered");
    assert_eq!(app.runtime.calls(), 3);
}

#[tokio::test]
async fn when_a_busy_night_pools_many_intents_should_seal_them_all_in_one_pass() {
    let app = pool_app(260, BelowMinimum::Wait).await;
    for i in 0..260 {
        send(&app, &format!("small-{i}"), i..i + 1).await;
    }
    // Drain the manifest builder: 260 intents of one record each, all POOLED.
    while app
        .deliver(shared::topology::Queue::ManifestBuilder)
        .await
        .expect("deliver")
        .0
        > 0
    {}
    let pooled = intents(&app)
        .iter()
        .filter(|i| i.status == IntentStatus::Pooled)
        .count();
    assert_eq!(pooled, 260);
    // One scheduled pass reads past the 200-intent window of the other checks.
    scheduled_pass(&app).await;
    let unclaimed = intents(&app)
        .iter()
        .filter(|i| i.pool.as_ref().is_some_and(|p| p.sealed_into.is_none()))
        .count();
    assert_eq!(unclaimed, 0, "every waiting intent was sealed");
    let pools = shared_jobs(&app);
    assert_eq!(pools.len(), 1, "260 records, one shared job");
    run(&app).await;
    assert_eq!(shared_jobs(&app)[0].status, IntentStatus::Completed);
    let done = intents(&app)
        .iter()
        .filter(|i| !i.is_pool_job() && i.status == IntentStatus::Completed)
        .count();
    assert_eq!(done, 260);
}
