//! Crash at every step: a clean run records every fault point the stages pass (each port call,
//! before and after), then one run per (point, occurrence) crashes there and lets redelivery,
//! client retries and the scheduled passes do their work. Each run must end as the clean run
//! did: the same status and counts, one Bedrock job per manifest part, no stranded intent, and
//! every result exactly once.

use crate::common::*;
use shared::adapters::embedded::faults::FaultPlan;
use shared::domain::results::ResultStatus;
use shared::domain::status::IntentStatus;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn run_with(plan: Arc<FaultPlan>) -> (TestApp, Vec<String>) {
    let app = app_with(|o| o.faults = Some(plan.clone())).await;
    // The client retries with the same intentId until it gets its 202.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let answer = app.intake(event("intake-direct.json")).await;
        let code = status(&answer);
        answers.push(code.to_string());
        if code == 202 {
            break;
        }
        assert_eq!(code, 503, "a crash is answered 503 (retry), got {answer}");
    }
    run(&app).await;
    (app, answers)
}

#[tokio::test]
async fn when_a_crash_hits_any_step_should_end_as_the_clean_run_does() {
    let clean_plan = FaultPlan::record();
    let (clean, _) = run_with(clean_plan.clone()).await;
    // Snapshot before the test's own reads, which pass through the same ports.
    let trace = clean_plan.trace();
    let truth = &intents(&clean)[0];
    assert_eq!(truth.status, IntentStatus::Completed);
    let truth_results = results(&clean, truth).await;

    // Enumerate from the code: every (point, n-th pass) the clean run reached.
    let mut occurrences: BTreeMap<String, usize> = BTreeMap::new();
    for point in trace {
        *occurrences.entry(point).or_default() += 1;
    }
    let mut exercised = 0;
    for (point, passes) in &occurrences {
        for nth in 1..=*passes {
            let plan = FaultPlan::crash_at(point, nth);
            let (app, answers) = run_with(plan.clone()).await;
            let ctx = format!("crash at {point} #{nth} (intake answers {answers:?})");
            assert!(plan.fired(), "{ctx}: the point was not reached again");
            let all = intents(&app);
            assert_eq!(all.len(), 1, "{ctx}");
            let intent = &all[0];
            assert_eq!(intent.status, truth.status, "{ctx}");
            assert_eq!(intent.counts, truth.counts, "{ctx}");
            assert!(intent.outbox.is_none(), "{ctx}: an owed event was stranded");
            assert_eq!(
                app.emulator.job_count().expect("jobs"),
                intent.jobs.iter().map(|j| j.parts.len()).sum::<usize>(),
                "{ctx}: one Bedrock job per manifest part"
            );
            let got = results(&app, intent).await;
            assert_eq!(
                got.len(),
                truth_results.len(),
                "{ctx}: results lost or duplicated"
            );
            assert!(
                got.iter().all(|r| r.status == ResultStatus::Succeeded),
                "{ctx}"
            );
            let events = published(&app);
            for kind in [
                "BATCH_REQUESTED",
                "BATCH_MANIFEST_READY",
                "BATCH_SUBMITTED",
                "BATCH_COMPLETED",
            ] {
                assert!(count(&events, kind) >= 1, "{ctx}: {kind} never published");
            }
            assert!(
                app.bus.dead_letters(None).expect("dlq").is_empty(),
                "{ctx}: a message dead-lettered"
            );
            exercised += 1;
        }
    }
    println!(
        "fault injection: {} distinct points, {exercised} crash runs",
        occurrences.len()
    );
    assert!(
        occurrences.len() >= 20,
        "too few points reached: {occurrences:?}"
    );
}

/// A crash at any store write, the watcher's terminal write among them, after records were
/// re-run on-demand: the replay finds the stored re-runs and pays for none of them again.
#[tokio::test]
async fn when_a_crash_follows_on_demand_reruns_should_not_run_them_again() {
    async fn run_rerun(plan: Arc<FaultPlan>) -> TestApp {
        let app = app_with(|o| {
            o.faults = Some(plan.clone());
            o.settings.remainder_policy = shared::domain::settings::RemainderPolicy::OnDemand;
        })
        .await;
        // Two of three records fail retryably in the batch job; their re-runs succeed.
        app.emulator.set_options(|o| {
            for i in [1, 2] {
                let rid = shared::domain::manifest::image_record_id(i);
                o.fail_records
                    .insert(rid, (503, "ServiceUnavailable".into()));
            }
        });
        for _ in 0..5 {
            if status(&app.intake(event("intake-direct.json")).await) == 202 {
                break;
            }
        }
        run(&app).await;
        app
    }
    let clean_plan = FaultPlan::record();
    let clean = run_rerun(clean_plan.clone()).await;
    let updates = clean_plan
        .trace()
        .iter()
        .filter(|p| p.as_str() == "store.update:before")
        .count();
    let truth = &intents(&clean)[0];
    assert_eq!(
        truth.status,
        IntentStatus::Completed,
        "re-runs answered both"
    );
    assert_eq!(clean.runtime.calls(), 2);
    for nth in 1..=updates {
        let plan = FaultPlan::crash_at("store.update:before", nth);
        let app = run_rerun(plan.clone()).await;
        let ctx = format!("crash at store.update #{nth}");
        assert!(plan.fired(), "{ctx}");
        let intent = &intents(&app)[0];
        assert_eq!(intent.status, truth.status, "{ctx}");
        assert_eq!(intent.counts, truth.counts, "{ctx}");
        assert_eq!(app.runtime.calls(), 2, "{ctx}: re-runs paid for twice");
        let rs = results(&app, intent).await;
        assert!(
            rs.iter().all(|r| r.status == ResultStatus::Succeeded),
            "{ctx}"
        );
    }
}
