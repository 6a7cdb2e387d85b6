//! The intent's state machine, transition by transition.

use super::*;

fn new_intent() -> BatchIntent {
    let req = NewIntent {
        intent_id: IntentId::parse("i-1").expect("valid"),
        client_intent_id: None,
        user_id: UserId::parse("u-1").expect("valid"),
        selection: ImageSelection::Keys(
            vec![ObjectKey::parse("uploads/u-1/a.jpg").expect("valid")],
        ),
        model_id: ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("valid"),
        prompt_version: "receipt-v1".into(),
        trace_id: TraceId::parse("t").expect("valid"),
        deadline: None,
        webhook: None,
    };
    BatchIntent::new(req, Utc::now(), 30)
}

fn arn() -> BedrockJobArn {
    BedrockJobArn::parse("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234wxyz")
        .expect("valid")
}

fn job() -> BatchJob {
    let bucket = crate::domain::ids::BucketName::parse("bucket").expect("valid");
    BatchJob {
        job_no: 1,
        attempt: 1,
        job_name: "n".into(),
        client_token: "t".into(),
        input: S3Uri::prefix(&bucket, "in"),
        output: S3Uri::prefix(&bucket, "out"),
        parts: vec![],
        arn: None,
        status: None,
        failure_message: None,
        summary: None,
        record_map: None,
        pad_records: 0,
        rerun_of: None,
        progress: None,
        expires_at: None,
        on_demand: false,
        created_at: None,
        started_at: None,
        deadline_stop_at: None,
    }
}

#[test]
fn when_created_should_owe_batch_requested() {
    let intent = new_intent();
    let outbox = intent.outbox.expect("staged");
    assert_eq!(outbox.events.len(), 1);
    assert_eq!(outbox.events[0].kind, EventKind::BatchRequested);
}

#[test]
fn when_payload_differs_should_hash_differently() {
    let mut a = new_intent();
    let b = new_intent();
    assert_eq!(a.payload_hash, b.payload_hash);
    a.model_id = ModelId::parse("other").expect("valid");
    let req = NewIntent {
        intent_id: a.intent_id.clone(),
        client_intent_id: None,
        user_id: a.user_id.clone(),
        selection: a.selection.clone(),
        model_id: a.model_id.clone(),
        prompt_version: a.prompt_version.clone(),
        trace_id: TraceId::parse("other-trace").expect("valid"),
        deadline: None,
        webhook: None,
    };
    assert_ne!(req.payload_hash(), b.payload_hash);
}

#[test]
fn when_lifecycle_runs_should_reach_completed_and_refuse_regression() {
    let now = Utc::now();
    let mut i = new_intent();
    i.outbox = None;
    i.record_manifest(vec![], vec![job()], now)
        .expect("manifest");
    assert!(
        i.record_manifest(vec![], vec![job()], now).is_err(),
        "replayed manifest is stale"
    );
    i.record_submission(1, arn(), now).expect("submit");
    assert_eq!(i.status, IntentStatus::Submitted);
    assert!(
        i.record_submission(1, arn(), now).is_err(),
        "second ARN refused"
    );
    i.apply_job_status(&arn(), BedrockJobStatus::InProgress, None, None, now)
        .expect("in progress");
    assert!(
        i.apply_job_status(&arn(), BedrockJobStatus::Validating, None, None, now)
            .is_err(),
        "stale Validating after InProgress must not regress"
    );
    let summary = ManifestSummary {
        total_record_count: 1,
        processed_record_count: 1,
        success_record_count: 1,
        ..Default::default()
    };
    let st = i
        .apply_job_status(
            &arn(),
            BedrockJobStatus::Completed,
            None,
            Some(summary),
            now,
        )
        .expect("completed");
    assert_eq!(st, IntentStatus::Completed);
    assert_eq!(i.counts, Some(summary));
    let kinds: Vec<_> = i
        .outbox
        .expect("events")
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::BatchManifestReady,
            EventKind::BatchSubmitted,
            EventKind::BatchCompleted
        ]
    );
}

#[test]
fn when_job_fails_should_fail_intent_with_message() {
    let now = Utc::now();
    let mut i = new_intent();
    i.record_manifest(vec![], vec![job()], now)
        .expect("manifest");
    i.record_submission(1, arn(), now).expect("submit");
    let st = i
        .apply_job_status(
            &arn(),
            BedrockJobStatus::Failed,
            Some("bad input".into()),
            None,
            now,
        )
        .expect("failed");
    assert_eq!(st, IntentStatus::Failed);
    assert_eq!(i.failure_message.as_deref(), Some("bad input"));
    assert!(i.fail("again".into(), now).is_err());
}

fn summary(total: u64, processed: u64, success: u64) -> ManifestSummary {
    ManifestSummary {
        total_record_count: total,
        processed_record_count: processed,
        success_record_count: success,
        error_record_count: processed - success,
        ..Default::default()
    }
}

/// An intent whose one job (of `records` records) runs.
fn running(records: u64) -> BatchIntent {
    let now = Utc::now();
    let mut i = new_intent();
    let mut j = job();
    j.parts.push(ManifestPart {
        part: 1,
        uri: j.input.join("part-00001.jsonl"),
        records,
        bytes: 10,
    });
    i.record_manifest(vec![], vec![j], now).expect("manifest");
    i.record_submission(1, arn(), now).expect("submit");
    i.apply_job_status(&arn(), BedrockJobStatus::InProgress, None, None, now)
        .expect("running");
    i
}

#[test]
fn when_a_completed_job_holds_error_lines_should_end_partially_completed() {
    // "An error object replaces the modelOutput field in any line where there was an error"
    // (user guide): a Completed job does not mean every record was answered.
    let mut i = running(20);
    let st = i
        .apply_job_status(
            &arn(),
            BedrockJobStatus::Completed,
            None,
            Some(summary(20, 20, 19)),
            Utc::now(),
        )
        .expect("completed");
    assert_eq!(st, IntentStatus::PartiallyCompleted);
    assert_eq!(i.counts.map(|c| c.error_record_count), Some(1));
}

#[test]
fn when_a_remainder_is_rerun_should_stay_open_and_count_each_record_once() {
    let now = Utc::now();
    let mut i = running(10);
    let mut rerun = job();
    rerun.job_no = 2;
    rerun.attempt = 2;
    rerun.rerun_of = Some(1);
    rerun.parts.push(ManifestPart {
        part: 1,
        uri: rerun.input.join("part-00001.jsonl"),
        records: 4,
        bytes: 10,
    });
    i.add_rerun_jobs(vec![rerun], now).expect("added");
    // The parent expired with 6 of 10 answered; the 4 it never reached moved to job 2.
    let st = i
        .apply_job_status(
            &arn(),
            BedrockJobStatus::Expired,
            None,
            Some(summary(6, 6, 6)),
            now,
        )
        .expect("expired");
    assert_eq!(
        st,
        IntentStatus::InProgress,
        "open while its re-run job runs"
    );
    assert!(i.has_unsubmitted_job());
    let second_arn = BedrockJobArn::parse(
        "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/zzzz1234wxyz",
    )
    .expect("valid");
    i.record_submission(2, second_arn.clone(), now)
        .expect("re-run created");
    assert_eq!(
        i.status,
        IntentStatus::InProgress,
        "a re-run's ARN moves nothing back"
    );
    let st = i
        .apply_job_status(
            &second_arn,
            BedrockJobStatus::Completed,
            None,
            Some(summary(4, 4, 4)),
            now,
        )
        .expect("completed");
    assert_eq!(
        st,
        IntentStatus::Completed,
        "every record answered in the end"
    );
    assert_eq!(i.counts, Some(summary(10, 10, 10)));
}

#[test]
fn when_a_cancel_overtakes_a_rerun_job_should_end_without_creating_it() {
    let now = Utc::now();
    let mut i = running(10);
    let mut rerun = job();
    rerun.job_no = 2;
    rerun.rerun_of = Some(1);
    rerun.parts.push(ManifestPart {
        part: 1,
        uri: rerun.input.join("part-00001.jsonl"),
        records: 5,
        bytes: 10,
    });
    i.add_rerun_jobs(vec![rerun], now).expect("added");
    i.apply_job_status(
        &arn(),
        BedrockJobStatus::Stopped,
        None,
        Some(summary(5, 5, 5)),
        now,
    )
    .expect("stopped");
    // The owner cancels before the re-run job exists: it is never created.
    i.cancel(now).expect("cancel recorded");
    i.drop_unsubmitted_jobs(now).expect("dropped");
    assert_eq!(i.status, IntentStatus::Stopped);
    assert!(!i.has_unsubmitted_job());
    let counts = i
        .counts
        .map(|c| (c.total_record_count, c.success_record_count));
    assert_eq!(counts, Some((10, 5)));
}

#[test]
fn when_a_rerun_job_was_refused_should_never_record_an_arn_for_it() {
    let now = Utc::now();
    let mut i = running(10);
    let mut rerun = job();
    rerun.job_no = 2;
    rerun.rerun_of = Some(1);
    i.add_rerun_jobs(vec![rerun], now).expect("added");
    i.fail_unsubmitted_job(2, "refused".into(), now)
        .expect("failed alone");
    assert!(!i.has_unsubmitted_job());
    let arn2 = BedrockJobArn::parse(
        "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/zzzz1234wxyz",
    )
    .expect("valid");
    assert!(
        i.record_submission(2, arn2, now).is_err(),
        "a job that ended uncreated stays so"
    );
    assert_eq!(i.status, IntentStatus::InProgress, "its parent still runs");
}

#[test]
fn when_progress_moves_by_less_than_5_percent_should_not_write() {
    use crate::domain::bedrock::JobProgress;
    let mut i = running(100);
    let at = |processed| {
        Some(JobProgress {
            total_record_count: 100,
            processed_record_count: processed,
            success_record_count: processed,
            error_record_count: 0,
        })
    };
    let expires = Some(Utc::now());
    assert!(i.record_progress(&arn(), at(0), expires), "the first");
    assert!(!i.record_progress(&arn(), at(4), expires), "4% moved");
    assert!(i.record_progress(&arn(), at(5), expires), "5% moved");
    assert!(!i.record_progress(&arn(), at(5), expires), "nothing moved");
}
