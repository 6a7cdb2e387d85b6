//! Event chaos: a seeded property test over random schedules of Bedrock state-change events,
//! duplicated, reordered and dropped, with the reconciler running at the end. The intent's
//! status never regresses while events arrive, and the final status and counts always equal
//! the truth (what the emulator's job really did). The seed of a failing schedule is printed;
//! `BO_CHAOS_SEED` replays from it and `BO_CHAOS_SCHEDULES` sets how many to explore.

use crate::common::*;
use aws_lambda_events::event::sqs::SqsEvent;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use shared::app::reconcile::reconcile;
use shared::domain::bedrock::ManifestSummary;
use shared::domain::events::Envelope;
use shared::domain::status::{BedrockJobStatus, IntentStatus};
use shared::ports::BatchInference as _;
use shared::topology::Queue;

fn envelope(arn: &str, name: &str, status: BedrockJobStatus) -> Envelope {
    let mut env: Envelope =
        serde_json::from_value(event("eventbridge-bedrock-state-change.json")).expect("envelope");
    env.detail["batchJobArn"] = json!(arn);
    env.detail["batchJobName"] = json!(name);
    env.detail["status"] = json!(status.as_str());
    env.resources = vec![arn.to_owned()];
    env
}

fn sqs(env: &Envelope, n: usize) -> SqsEvent {
    shared::adapters::sqs_edge::sqs_event([(
        Some(format!("chaos-{n}")),
        None,
        Some(serde_json::to_string(env).expect("json")),
    )])
}

/// What the job really does.
#[derive(Debug, Clone, Copy)]
enum Truth {
    Completed,
    PartiallyCompleted,
    Stopped,
    Failed,
}

#[tokio::test]
async fn when_bedrock_events_are_duplicated_reordered_and_dropped_should_never_regress_and_end_true(
) {
    let schedules: u64 = std::env::var("BO_CHAOS_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let base: u64 = std::env::var("BO_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_128);
    let app = app_with(|o| {
        o.emulator.emit_events = false;
        o.reconcile_when_idle = false;
        // The true end of a stopped job is its re-run on-demand (a re-run batch job would be
        // a second job this test does not drive).
        o.settings.remainder_policy = shared::domain::settings::RemainderPolicy::OnDemand;
    })
    .await;
    let mut delivered_total = 0;
    for seed in base..base + schedules {
        let mut rng = StdRng::seed_from_u64(seed);
        let ctx =
            |what: &str| format!("seed {seed} (BO_CHAOS_SEED={seed} BO_CHAOS_SCHEDULES=1): {what}");
        let images = rng.random_range(1..=SAMPLE_KEYS.len());
        let truth = [
            Truth::Completed,
            Truth::PartiallyCompleted,
            Truth::Stopped,
            Truth::Failed,
        ][rng.random_range(0..4)];
        let intent_id = format!("chaos-{seed}");
        let answer = app.intake(direct(&intent_id, &SAMPLE_KEYS[..images])).await;
        assert_eq!(status(&answer), 202, "{}", ctx("intake"));
        app.deliver(Queue::ManifestBuilder).await.expect("manifest");
        app.deliver(Queue::Submitter).await.expect("submit");
        let id = stored_key(&intent_id);
        let intent = app.deps.store.get(&id).await.expect("get").expect("stored");
        assert_eq!(
            intent.status,
            IntentStatus::Submitted,
            "{}",
            ctx("submitted")
        );
        let arn = intent.jobs[0].arn.clone().expect("arn");

        // Run the real job to its end, recording each status it passes through.
        app.emulator.set_options(|o| {
            o.fail_records.clear();
            o.quotas.min_records_per_job = 1;
            match truth {
                Truth::PartiallyCompleted => {
                    o.fail_records.insert(
                        shared::domain::manifest::image_record_id(intent.images[0].index),
                        (500, "ModelErrorException".into()),
                    );
                }
                Truth::Failed => o.quotas.min_records_per_job = 100,
                _ => {}
            }
        });
        let mut real = vec![BedrockJobStatus::Submitted];
        for _ in 0..10 {
            let now = app.emulator.get_job(&arn).await.expect("job").status;
            if now.is_terminal() {
                break;
            }
            if matches!(truth, Truth::Stopped) && now == BedrockJobStatus::InProgress {
                app.emulator.stop_job(&arn).await.expect("stop");
            }
            app.emulator.tick().await.expect("tick");
            let after = app.emulator.get_job(&arn).await.expect("job").status;
            if after != *real.last().expect("first") {
                real.push(after);
            }
        }
        let last = *real.last().expect("statuses");
        assert!(
            last.is_terminal(),
            "{}",
            ctx("the emulator finished the job")
        );

        // The chaos: drop some, duplicate some, shuffle all.
        let mut schedule = Vec::new();
        for st in &real {
            if rng.random_bool(0.25) {
                continue;
            }
            let copies = if rng.random_bool(0.3) {
                rng.random_range(2..=3)
            } else {
                1
            };
            schedule.extend(std::iter::repeat_n(*st, copies));
        }
        schedule.shuffle(&mut rng);
        let mut rank = IntentStatus::Submitted.rank();
        let mut job_rank = BedrockJobStatus::Submitted.rank();
        for (n, st) in schedule.iter().enumerate() {
            let resp = status_watcher::handle(
                &app.deps,
                sqs(&envelope(arn.as_str(), &intent.jobs[0].job_name, *st), n),
            )
            .await;
            assert!(
                resp.batch_item_failures.is_empty(),
                "{}",
                ctx(&format!("event {st} failed"))
            );
            let now = app.deps.store.get(&id).await.expect("get").expect("stored");
            assert!(
                now.status.rank() >= rank,
                "{}",
                ctx(&format!("status regressed to {} after {st}", now.status))
            );
            let jr = now.jobs[0].status.map(|s| s.rank()).unwrap_or(0);
            assert!(
                jr >= job_rank,
                "{}",
                ctx(&format!("job status regressed after {st}"))
            );
            rank = now.status.rank();
            job_rank = jr;
            delivered_total += 1;
        }

        // The reconciler runs on a schedule (every 5 minutes), long after a GSI caught up.
        if let Some(clock) = app.manual_clock() {
            clock.advance(INDEX_LAG);
        }
        reconcile(&app.deps, 100).await.expect("reconcile");
        let end = app.deps.store.get(&id).await.expect("get").expect("stored");
        let results = results(&app, &end).await;
        let expected_results = if last.has_outputs() { images } else { 0 };
        assert_eq!(
            results.len(),
            expected_results,
            "{}",
            ctx("a result per image")
        );
        // Retryable failures and records a stopped job never reached are re-run on-demand,
        // so a partially completed job can end with every record answered.
        let ok = results
            .iter()
            .filter(|r| r.status == shared::domain::results::ResultStatus::Succeeded)
            .count();
        // ... and so can a job stopped by someone other than its owner.
        let expected_status = if last.has_outputs() && ok == images {
            IntentStatus::Completed
        } else {
            last.intent_status()
        };
        assert_eq!(
            end.status,
            expected_status,
            "{}",
            ctx(&format!("schedule {schedule:?} of {real:?}"))
        );
        assert_eq!(end.jobs[0].status, Some(last), "{}", ctx("job status"));
        if last.has_outputs() {
            let c = end.counts.expect("counts");
            assert_eq!(c.total_record_count, images as u64, "{}", ctx("counts"));
            assert_eq!(c.success_record_count, ok as u64, "{}", ctx("counts"));
        } else {
            // No outputs (Failed): the job's records are all counted, none processed.
            let want = ManifestSummary {
                total_record_count: images as u64,
                ..ManifestSummary::default()
            };
            assert_eq!(end.counts, Some(want), "{}", ctx("counts"));
        }
        assert!(end.outbox.is_none(), "{}", ctx("owed events"));
    }
    println!(
        "event chaos: {schedules} schedules from seed {base}, {delivered_total} events delivered"
    );
}
