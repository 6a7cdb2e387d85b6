//! The four stages end to end on the embedded backend: handler tests on the sample events,
//! replays, stale events, poison messages and the DLQ, per-image errors, and Bedrock faults.

use crate::common::*;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;
use shared::domain::bedrock::{client_token, job_name, CreateJobRequest, S3Uri};
use shared::domain::events::Envelope;
use shared::domain::manifest::image_record_id;
use shared::domain::manifest::{job_input_prefix, job_output_prefix};
use shared::domain::results::ResultStatus;
use shared::domain::status::{BedrockJobStatus, IntentStatus};
use shared::ports::{BatchInference as _, ErrorKind, EventBus as _, ObjectStore as _};
use shared::topology::Queue;

fn sqs(name: &str) -> SqsEvent {
    serde_json::from_value(event(name)).expect("SqsEvent")
}

#[tokio::test]
async fn when_sample_sqs_events_reach_each_handler_should_advance_one_stage_each() {
    let app = app().await;
    assert_eq!(status(&app.intake(event("intake-direct.json")).await), 202);

    let resp = manifest_builder::handle(&app.deps, sqs("sqs-batch-requested.json")).await;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::ManifestReady);
    let part = &intent.jobs[0].parts[0];
    let manifest = app.objects.get(&part.uri).await.expect("manifest written");
    let lines: Vec<serde_json::Value> = String::from_utf8(manifest)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSONL"))
        .collect();
    assert_eq!(lines.len(), 3);
    // Bedrock's record template: "11 character alphanumeric string", the image's index.
    assert_eq!(lines[0]["recordId"], "REC00000000");
    for line in &lines {
        let id = line["recordId"].as_str().expect("recordId");
        assert!(shared::domain::manifest::is_bedrock_record_id(id), "{id}");
    }
    // The uploads were PNGs; records carry their normalized copies (JPEG, no metadata).
    assert_eq!(
        lines[2]["modelInput"]["messages"][0]["content"][0]["source"]["media_type"],
        "image/jpeg"
    );

    // The same message again rewrites nothing and fails nothing.
    let resp = manifest_builder::handle(&app.deps, sqs("sqs-batch-requested.json")).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(&intents(&app)[0], intent);

    for _ in 0..2 {
        let resp = submitter::handle(&app.deps, sqs("sqs-manifest-ready.json")).await;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    }
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Submitted);
    assert_eq!(
        app.emulator.job_count().expect("jobs"),
        1,
        "a replayed submit makes no second job"
    );
    let jobs = app.emulator.list_jobs(None).await.expect("jobs");
    assert_eq!(jobs[0].job_name, "bo-3ae489935892792f79a38850-p1-a1");

    // The sample Bedrock event names a job no intent owns: ignored, not failed.
    let resp = status_watcher::handle(&app.deps, sqs("sqs-bedrock-state-change.json")).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(&intents(&app)[0], intent);
}

#[tokio::test]
async fn when_the_pipeline_runs_should_complete_with_counts_results_and_events() {
    let app = app().await;
    app.intake(event("intake-http-api-v2.json")).await;
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Completed);
    let counts = intent.counts.expect("counts from manifest.json.out");
    assert_eq!(
        (
            counts.total_record_count,
            counts.success_record_count,
            counts.error_record_count
        ),
        (3, 3, 0)
    );
    assert!(counts.input_token_count > 0 && counts.output_token_count > 0);
    let results = results(&app, intent).await;
    assert_eq!(results.len(), 3);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.status, ResultStatus::Succeeded);
        assert_eq!(r.image_key.as_str(), SAMPLE_KEYS[i]);
        let receipt = r.receipt.as_ref().expect("parsed receipt fields");
        assert!(receipt
            .merchant
            .as_deref()
            .expect("merchant")
            .starts_with("Emulated"));
        assert!(receipt.total.expect("total") > 0.0);
    }
    let events = published(&app);
    for kind in [
        "BATCH_REQUESTED",
        "BATCH_MANIFEST_READY",
        "BATCH_SUBMITTED",
        "BATCH_COMPLETED",
    ] {
        assert_eq!(count(&events, kind), 1, "{kind} in {events:?}");
    }
    assert_eq!(count(&events, "BATCH_FAILED"), 0);
    assert!(intent.outbox.is_none(), "every owed event was published");
    // Every domain event carries intentId, jobId and traceId.
    for (source, _, body) in app.bus.archive().expect("archive") {
        if source == "batch-orchestrator" {
            let env: Envelope = serde_json::from_str(&body).expect("envelope");
            let detail = env.domain_event().expect("ours").expect("valid").detail;
            assert_eq!(detail.intent_id, stored_key(SAMPLE_INTENT));
            assert_eq!(detail.job_id, intent.job_id);
            assert_eq!(detail.trace_id, intent.trace_id);
        }
    }
    // Bedrock's output layout: {output}/{12-char job id}/part-00001.jsonl.out
    let job = &intent.jobs[0];
    let arn = job.arn.as_ref().expect("arn");
    let out = job
        .output
        .join(arn.job_suffix())
        .join("part-00001.jsonl.out");
    assert!(app.objects.get(&out).await.is_ok(), "{out}");
}

#[tokio::test]
async fn when_every_event_is_delivered_twice_should_end_as_a_single_delivery_run_does() {
    let single = app().await;
    single.intake(event("intake-direct.json")).await;
    run(&single).await;

    let doubled = app_with(|o| o.bus.duplicate_deliveries = true).await;
    doubled.intake(event("intake-direct.json")).await;
    run(&doubled).await;

    let (a, b) = (&intents(&single)[0], &intents(&doubled)[0]);
    assert_eq!(b.status, IntentStatus::Completed);
    assert_eq!(a.status, b.status);
    assert_eq!(a.counts, b.counts);
    assert_eq!(doubled.emulator.job_count().expect("jobs"), 1);
    assert_eq!(results(&doubled, b).await.len(), 3);
    let events = published(&doubled);
    for kind in [
        "BATCH_REQUESTED",
        "BATCH_MANIFEST_READY",
        "BATCH_SUBMITTED",
        "BATCH_COMPLETED",
    ] {
        assert_eq!(
            count(&events, kind),
            1,
            "{kind} emitted once despite duplicates"
        );
    }
}

#[tokio::test]
async fn when_every_published_event_is_replayed_twice_should_change_nothing() {
    let app = app().await;
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    let before = intents(&app);
    let results_before = results(&app, &before[0]).await;
    let archive = app.bus.archive().expect("archive");
    for _ in 0..2 {
        for (_, _, body) in &archive {
            let env: Envelope = serde_json::from_str(body).expect("envelope");
            app.bus.publish(&[env]).await.expect("republish");
        }
    }
    run(&app).await;
    assert_eq!(
        intents(&app),
        before,
        "no state changed, not even the version"
    );
    assert_eq!(results(&app, &before[0]).await, results_before);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    assert_eq!(
        published(&app).len(),
        archive.len() * 3,
        "only the replays themselves were published"
    );
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
}

fn bedrock_event(arn: &str, status: &str) -> Envelope {
    let mut env: Envelope =
        serde_json::from_value(event("eventbridge-bedrock-state-change.json")).expect("envelope");
    env.detail["batchJobArn"] = json!(arn);
    env.detail["status"] = json!(status);
    env.resources = vec![arn.to_owned()];
    env
}

#[tokio::test]
async fn when_a_stale_status_event_arrives_should_not_regress_the_state() {
    let app = app().await;
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    let before = intents(&app);
    let arn = before[0].jobs[0].arn.clone().expect("arn");
    for stale in [
        "InProgress",
        "Scheduled",
        "Validating",
        "Submitted",
        "Failed",
        "Completed",
        "Bogus",
    ] {
        app.bus
            .publish(&[bedrock_event(arn.as_str(), stale)])
            .await
            .expect("publish");
    }
    run(&app).await;
    assert_eq!(intents(&app), before);
    assert_eq!(count(&published(&app), "BATCH_FAILED"), 0);
}

#[tokio::test]
async fn when_events_arrive_out_of_order_should_only_move_forward() {
    let app = app_with(|o| {
        o.emulator.emit_events = false;
        o.reconcile_when_idle = false;
    })
    .await;
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(
        intent.status,
        IntentStatus::Submitted,
        "no Bedrock events yet"
    );
    let arn = intent.jobs[0].arn.clone().expect("arn");
    // Let the emulator finish the job silently, then deliver its events newest first.
    for _ in 0..6 {
        app.emulator.tick().await.expect("tick");
    }
    for st in ["InProgress", "Validating", "Scheduled"] {
        app.bus
            .publish(&[bedrock_event(arn.as_str(), st)])
            .await
            .expect("publish");
    }
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::InProgress);
    assert_eq!(intent.jobs[0].status, Some(BedrockJobStatus::InProgress));
    app.bus
        .publish(&[bedrock_event(arn.as_str(), "Completed")])
        .await
        .expect("publish");
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Completed);
    assert_eq!(results(&app, &intents(&app)[0]).await.len(), 3);
}

#[tokio::test]
async fn when_a_batch_holds_a_poison_message_should_fail_only_that_message_into_the_dlq() {
    let app = app_with(|o| o.bus.max_receive_count = 3).await;
    app.intake(event("intake-direct.json")).await;
    app.bus
        .send(Queue::ManifestBuilder, "this is not an envelope")
        .expect("send");
    app.bus
        .send(Queue::ManifestBuilder, &json!({"detail-type": "BATCH_REQUESTED", "source": "batch-orchestrator", "detail": {"intentId": 5}}).to_string())
        .expect("send");
    run(&app).await;
    assert_eq!(
        intents(&app)[0].status,
        IntentStatus::Completed,
        "the neighbour succeeded"
    );
    let dead = app
        .bus
        .dead_letters(Some(Queue::ManifestBuilder))
        .expect("dlq");
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d.receive_count == 3));
}

#[tokio::test]
async fn when_bedrock_keeps_failing_should_dead_letter_then_succeed_once_replayed() {
    let app = app_with(|o| o.bus.max_receive_count = 3).await;
    app.emulator
        .inject_create_faults(vec![ErrorKind::Transient; 3]);
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    assert_eq!(
        intents(&app)[0].status,
        IntentStatus::ManifestReady,
        "not failed: waiting in the DLQ"
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 0);
    let dead = app.bus.dead_letters(Some(Queue::Submitter)).expect("dlq");
    assert_eq!(dead.len(), 1);

    assert_eq!(
        app.bus
            .replay_dead_letters(Queue::Submitter, 10)
            .expect("replay"),
        1
    );
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Completed);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
}

#[tokio::test]
async fn when_bedrock_quota_is_full_should_wait_and_retry_not_fail() {
    let app = app().await;
    app.emulator
        .inject_create_faults(vec![ErrorKind::QuotaExceeded, ErrorKind::QuotaExceeded]);
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Completed);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test]
async fn when_submitter_crashed_after_create_should_reuse_the_job_not_start_another() {
    let app = app().await;
    app.intake(event("intake-direct.json")).await;
    // Build the manifest only.
    app.deliver(Queue::ManifestBuilder).await.expect("deliver");
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::ManifestReady);
    // A previous submitter created the job and died before recording the ARN.
    let s = &app.deps.settings;
    let orphan = app
        .emulator
        .create_job(&CreateJobRequest {
            job_name: job_name(&intent.job_id, 1, 1),
            client_request_token: client_token(&intent.job_id, 1, 1),
            role_arn: s.bedrock_role_arn.clone(),
            model_id: intent.model_id.clone(),
            input: job_input_prefix(&s.manifests_bucket, &intent.job_id, 1),
            output: job_output_prefix(&s.outputs_bucket, &intent.job_id, 1),
            timeout_hours: 24,
            tags: vec![],
        })
        .await
        .expect("create");
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Completed);
    assert_eq!(intent.jobs[0].arn.as_ref(), Some(&orphan));
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test]
async fn when_records_fail_or_go_missing_should_account_for_every_image() {
    // On-demand re-runs (a re-run batch job is pipeline_reruns.rs's).
    let app = app_with(|o| {
        o.settings.remainder_policy = shared::domain::settings::RemainderPolicy::OnDemand;
    })
    .await;
    app.intake(event("intake-direct.json")).await;
    app.deliver(Queue::ManifestBuilder).await.expect("deliver");
    let intent = &intents(&app)[0];
    // The emulator fails records by their id in the manifest.
    let (r1, r2) = (
        image_record_id(intent.images[1].index),
        image_record_id(intent.images[2].index),
    );
    app.emulator.set_options(|o| {
        o.fail_records
            .insert(r1, (429, "ThrottlingException: rate exceeded".into()));
        o.drop_records.insert(r2);
    });
    // The re-runs fail too: each retryable record gets exactly max_record_attempts (3).
    app.runtime
        .fail_all(Some(shared::ports::ErrorKind::Transient));
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::PartiallyCompleted);
    let c = intent.counts.expect("counts");
    assert_eq!(
        (
            c.total_record_count,
            c.processed_record_count,
            c.success_record_count,
            c.error_record_count
        ),
        (3, 3, 1, 2)
    );
    let results = results(&app, intent).await;
    let statuses: Vec<_> = results
        .iter()
        .map(|r| (r.status, r.error_code.clone(), r.attempts))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (ResultStatus::Succeeded, None, 1),
            (ResultStatus::Failed, Some("429".into()), 3),
            (ResultStatus::Failed, Some("429".into()), 3),
        ]
    );
    assert_eq!(app.runtime.calls(), 4, "two records, two re-runs each");
    assert_eq!(count(&published(&app), "BATCH_COMPLETED"), 1);
}

#[tokio::test]
async fn when_images_are_missing_or_not_images_should_skip_them_with_reasons() {
    let app = app().await;
    app.upload(
        "uploads/user-123/2026-11-28/notes.png",
        b"just some text".to_vec(),
    )
    .await
    .expect("upload");
    let keys = [
        SAMPLE_KEYS[0],
        "uploads/user-123/2026-11-28/notes.png",
        "uploads/user-123/2026-11-28/gone.png",
    ];
    assert_eq!(status(&app.intake(direct("mixed", &keys)).await), 202);
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Completed);
    assert_eq!(
        intent.jobs[0].records(),
        1,
        "only the real image went to Bedrock"
    );
    let results = results(&app, intent).await;
    assert_eq!(results.len(), 3, "every image has a result");
    assert_eq!(results[0].status, ResultStatus::Succeeded);
    assert_eq!(results[1].status, ResultStatus::Skipped);
    assert!(results[1]
        .error_message
        .as_deref()
        .expect("reason")
        .contains("not a supported image"));
    assert_eq!(results[2].status, ResultStatus::Skipped);
    assert!(results[2]
        .error_message
        .as_deref()
        .expect("reason")
        .contains("not found"));
}

#[tokio::test]
async fn when_every_image_is_rejected_should_fail_the_intent_without_a_job() {
    let app = app().await;
    let answer = app
        .intake(direct(
            "nothing-usable",
            &["uploads/user-123/2026-11-28/gone.png"],
        ))
        .await;
    assert_eq!(status(&answer), 202);
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Failed);
    assert!(intent
        .failure_message
        .as_deref()
        .expect("why")
        .contains("every image was rejected"));
    assert_eq!(app.emulator.job_count().expect("jobs"), 0);
    assert_eq!(count(&published(&app), "BATCH_FAILED"), 1);
}

#[tokio::test]
async fn when_bedrock_rejects_the_job_in_validation_should_fail_with_a_fixed_message() {
    let app = app_with(|o| o.emulator.quotas.min_records_per_job = 100).await;
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Failed);
    assert_eq!(intent.jobs[0].status, Some(BedrockJobStatus::Failed));
    // Bedrock's own text (which can name the account, role and buckets) goes to the log; the
    // client reads a fixed one that says what Bedrock checks.
    let why = intent.failure_message.as_deref().expect("why");
    assert!(why.contains("Bedrock failed the batch job"), "{why}");
    assert!(!why.contains("minimum"), "{why}");
    assert_eq!(count(&published(&app), "BATCH_FAILED"), 1);
    assert_eq!(count(&published(&app), "BATCH_COMPLETED"), 0);
}

#[tokio::test]
async fn when_manifest_is_replayed_should_rewrite_identical_objects() {
    let app = app().await;
    app.intake(event("intake-direct.json")).await;
    app.deliver(Queue::ManifestBuilder).await.expect("deliver");
    let intent = &intents(&app)[0];
    let uri: &S3Uri = &intent.jobs[0].parts[0].uri;
    let first = app.objects.get(uri).await.expect("part");
    let listed = app
        .objects
        .list(&app.deps.settings.manifests_bucket, "manifests/")
        .await
        .expect("list");
    // Force the stage to run again from scratch on a copy of the intent's REQUESTED state:
    // the deterministic keys mean the same single object with the same bytes.
    let mut rewind = intent.clone();
    rewind.status = IntentStatus::Requested;
    rewind.jobs.clear();
    rewind.images.clear();
    rewind.outbox = None;
    rewind.version += 1;
    let written = shared::ports::IntentStore::update(&*app.deps.store, &rewind, intent.version)
        .await
        .expect("rewind");
    assert_eq!(written, shared::ports::Updated::Written);
    shared::app::manifest::build_manifest(&app.deps, &intent.intent_id)
        .await
        .expect("rebuild");
    assert_eq!(app.objects.get(uri).await.expect("part"), first);
    let relisted = app
        .objects
        .list(&app.deps.settings.manifests_bucket, "manifests/")
        .await
        .expect("list");
    assert_eq!(listed, relisted, "no new objects");
}

#[tokio::test]
async fn when_bedrock_events_are_lost_should_be_repaired_by_the_reconciler() {
    let app = app_with(|o| o.emulator.emit_events = false).await;
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "the scheduled reconciler applied what no event told"
    );
    assert_eq!(results(&app, intent).await.len(), 3);
    assert_eq!(count(&published(&app), "BATCH_COMPLETED"), 1);
    assert!(published(&app)
        .iter()
        .all(|e| e != "Batch Inference Job State Change"));
}

#[tokio::test]
async fn when_a_message_is_parked_in_a_dlq_should_be_re_announced_once_stuck() {
    let app = app_with(|o| o.bus.max_receive_count = 2).await;
    app.emulator
        .inject_create_faults(vec![ErrorKind::Transient; 2]);
    app.intake(event("intake-direct.json")).await;
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::ManifestReady);
    assert_eq!(
        app.bus
            .dead_letters(Some(Queue::Submitter))
            .expect("dlq")
            .len(),
        1
    );
    // Past the stuck threshold the reconciler announces it again; Bedrock works by now.
    app.manual_clock()
        .expect("manual clock")
        .advance(chrono::Duration::seconds(
            app.deps.settings.stuck_after_secs + 1,
        ));
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Completed);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test]
async fn when_jobs_exceed_the_concurrency_cap_should_wait_and_start_as_others_finish() {
    let app = app_with(|o| o.settings.quotas.max_concurrent_jobs = 1).await;
    for i in 0..3 {
        assert_eq!(
            status(&app.intake(direct(&format!("cap-{i}"), &SAMPLE_KEYS)).await),
            202
        );
    }
    let mut most_running = 0;
    for _ in 0..200 {
        let step = app.step().await.expect("step");
        let running = app
            .emulator
            .list_jobs(None)
            .await
            .expect("jobs")
            .iter()
            .filter(|j| !j.status.is_terminal())
            .count();
        most_running = most_running.max(running);
        if step.delivered == 0 && step.jobs_ticked == 0 {
            if let Some(at) = app.bus.next_visible_at().expect("next") {
                app.manual_clock().expect("clock").advance_to(at);
            } else if scheduled_pass(&app).await["reannounced"] == 0 {
                // A wake read a lagging index and missed its intent: the scheduled pass
                // wakes waiting intents while their model has a free slot.
                break;
            }
        }
    }
    assert_eq!(most_running, 1, "never more than the cap at once");
    assert_eq!(app.emulator.job_count().expect("jobs"), 3);
    assert!(intents(&app)
        .iter()
        .all(|i| i.status == IntentStatus::Completed));
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_two_submitters_race_for_the_last_slot_should_start_one_job() {
    let app = app_with(|o| o.settings.quotas.max_concurrent_jobs = 1).await;
    for id in ["race-a", "race-b"] {
        app.intake(direct(id, &SAMPLE_KEYS)).await;
    }
    app.deliver(Queue::ManifestBuilder)
        .await
        .expect("manifests");
    let (a, b) = (stored_key("race-a"), stored_key("race-b"));
    let (ra, rb) = tokio::join!(
        shared::app::submit::submit_jobs(&app.deps, &a),
        shared::app::submit::submit_jobs(&app.deps, &b)
    );
    let outcomes = [ra.expect("a"), rb.expect("b")];
    let submitted = outcomes
        .iter()
        .filter(|o| **o == shared::app::Outcome::Advanced(IntentStatus::Submitted))
        .count();
    let waiting = outcomes
        .iter()
        .filter(|o| **o == shared::app::Outcome::Waiting)
        .count();
    assert_eq!(
        (submitted, waiting),
        (1, 1),
        "one got the slot, one waits: {outcomes:?}"
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test]
async fn when_a_job_from_before_bedrock_record_ids_ends_should_still_join_every_line() {
    // A job submitted before record ids were Bedrock's 11 characters answers with our own
    // record ids (`bj-…-000001`) in its output lines: each must still join its image.
    let app = app_with(|o| o.emulator.emit_events = false).await;
    app.intake(event("intake-direct.json")).await;
    app.deliver(Queue::ManifestBuilder).await.expect("manifest");
    app.deliver(Queue::Submitter).await.expect("submit");
    let intent = intents(&app).remove(0);
    let job = &intent.jobs[0];
    let arn = job.arn.clone().expect("arn");
    for _ in 0..10 {
        app.emulator.tick().await.expect("tick");
    }
    assert_eq!(
        app.emulator.get_job(&arn).await.expect("job").status,
        BedrockJobStatus::Completed
    );
    let out = job
        .output
        .join(arn.job_suffix())
        .join("part-00001.jsonl.out");
    let mut text = String::from_utf8(app.objects.get(&out).await.expect("output")).expect("utf8");
    for image in &intent.images {
        text = text.replace(&image_record_id(image.index), image.record_id.as_str());
    }
    app.objects
        .put(&out, text.into_bytes())
        .await
        .expect("rewrite");

    let mut envelope: Envelope =
        serde_json::from_value(event("eventbridge-bedrock-state-change.json")).expect("envelope");
    envelope.detail["batchJobArn"] = json!(arn.as_str());
    envelope.detail["batchJobName"] = json!(job.job_name);
    envelope.detail["status"] = json!("Completed");
    envelope.resources = vec![arn.to_string()];
    app.bus.publish(&[envelope]).await.expect("publish");
    run(&app).await;

    let done = intents(&app).remove(0);
    assert_eq!(done.status, IntentStatus::Completed);
    let rows = results(&app, &done).await;
    assert_eq!(rows.len(), 3);
    // Answered by the batch job itself: none went missing and was re-run on-demand.
    assert!(
        rows.iter()
            .all(|r| r.status == ResultStatus::Succeeded && r.attempts == 1),
        "{rows:?}"
    );
}
