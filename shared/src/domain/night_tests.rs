//! A night's points and summary, from intents built by hand.

use super::*;
use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{BucketName, IntentId, ModelId, ObjectKey, RecordId, TraceId, UserId};
use crate::domain::intent::{BatchJob, ImageSelection, NewIntent, PoolState};
use crate::domain::status::{BedrockJobStatus, IntentStatus};
use chrono::Duration;

const PRICE: ModelPrice = ModelPrice {
    input_per_mtok: 1.0,
    output_per_mtok: 5.0,
};

fn intent(id: &str, images: usize, at: DateTime<Utc>) -> BatchIntent {
    let keys = (0..images)
        .map(|n| ObjectKey::parse(&format!("uploads/u-1/{n}.png")).expect("key"))
        .collect();
    let req = NewIntent {
        intent_id: IntentId::parse(id).expect("id"),
        client_intent_id: None,
        user_id: UserId::parse("u-1").expect("user"),
        selection: ImageSelection::Keys(keys),
        model_id: ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("model"),
        prompt_version: "receipt-v1".into(),
        trace_id: TraceId::parse("t").expect("trace"),
        deadline: Some(at + Duration::hours(6)),
        webhook: None,
    };
    BatchIntent::new(req, at, 30)
}

fn ended_job(no: u32, on_demand: bool, success: u64, tokens: (u64, u64)) -> BatchJob {
    let bucket = BucketName::parse("bucket").expect("bucket");
    BatchJob {
        job_no: no,
        attempt: 1,
        job_name: format!("job-{no}"),
        client_token: "t".into(),
        input: S3Uri::prefix(&bucket, "in"),
        output: S3Uri::prefix(&bucket, "out"),
        parts: vec![],
        arn: None,
        status: Some(BedrockJobStatus::Completed),
        failure_message: None,
        summary: Some(ManifestSummary {
            total_record_count: success,
            processed_record_count: success,
            success_record_count: success,
            input_token_count: tokens.0,
            output_token_count: tokens.1,
            ..ManifestSummary::default()
        }),
        record_map: None,
        pad_records: 0,
        rerun_of: None,
        progress: None,
        expires_at: None,
        on_demand,
        created_at: None,
        started_at: None,
        deadline_stop_at: None,
    }
}

fn start() -> DateTime<Utc> {
    "2026-12-05T20:00:00Z".parse().expect("time")
}

fn tally_now(i: &BatchIntent) -> Tally {
    Tally::running(i, Some(&PRICE), 0.5)
}

fn result(n: usize, status: ResultStatus, on_demand: bool) -> ImageResult {
    let mut r = ImageResult::skipped(
        RecordId::parse(&format!("r-{n}")).expect("id"),
        n,
        ObjectKey::parse(&format!("uploads/u-1/{n}.png")).expect("key"),
        "",
    );
    (r.status, r.on_demand) = (status, on_demand);
    r
}

#[test]
fn when_a_stopped_job_was_redriven_on_demand_should_count_and_price_each_run_as_it_ran() {
    let mut i = intent("i-1", 3, start());
    // 2 answered in batch before the cut-off, the third on-demand: 1,000,000 in / 200,000 out
    // tokens each run, 2 USD on-demand, 1 USD in batch.
    i.jobs = vec![
        ended_job(1, false, 2, (1_000_000, 200_000)),
        ended_job(2, true, 1, (1_000_000, 200_000)),
    ];
    i.status = IntentStatus::InProgress;
    let open = point(&[tally_now(&i)], start(), BTreeMap::new());
    assert_eq!(
        (open.images, open.answered.batch, open.answered.on_demand),
        (3, 2, 1)
    );
    assert_eq!((open.answered.failed, open.open_intents), (0, 1));
    assert_eq!(
        (open.cost_usd, open.batch_usd, open.on_demand_usd),
        (3.0, 2.0, 4.0)
    );
    assert_eq!(open.deadline, i.deadline);
}

#[test]
fn when_an_intent_ended_should_count_its_results_and_its_unanswered_images_as_failed() {
    let mut i = intent("i-1", 6, start());
    i.status = IntentStatus::PartiallyCompleted;
    let mut answered = Answered::default();
    let mut copy = result(4, ResultStatus::Succeeded, false);
    copy.duplicate_of = Some(Box::new(crate::domain::duplicates::DuplicateOf {
        job_id: crate::domain::ids::JobId::parse("bj-0123456789abcdef01234567").expect("job"),
        image_key: ObjectKey::parse("uploads/u-1/0.png").expect("key"),
        saved_input_tokens: 0,
        saved_output_tokens: 0,
        saved_on_demand: false,
    }));
    for r in [
        result(0, ResultStatus::Succeeded, false),
        result(1, ResultStatus::Succeeded, true),
        result(2, ResultStatus::Failed, false),
        result(3, ResultStatus::Skipped, false),
        copy,
    ] {
        answered.count(&r);
    }
    // The sixth image has no result: it failed with its intent.
    let t = Tally::ended(&i, answered, Usage::default());
    let a = t.answered;
    assert_eq!((a.batch, a.on_demand, a.copied), (1, 1, 1));
    assert_eq!((a.failed, a.skipped, a.canceled), (2, 1, 0));
    assert_eq!(t.ended_at, Some(i.updated_at));
    let p = point(&[t], start(), BTreeMap::new());
    assert_eq!((p.images, p.answered.answered(), p.open_intents), (6, 3, 0));
}

#[test]
fn when_a_pool_member_is_open_should_count_nothing_of_its_planned_job() {
    let mut m = intent("i-1", 2, start());
    m.pool = Some(PoolState {
        since: start(),
        records: 2,
        bytes: 0,
        sealed_into: None,
        on_demand: false,
    });
    m.jobs = vec![ended_job(1, false, 2, (10, 10))];
    m.status = IntentStatus::Pooled;
    let t = tally_now(&m);
    assert_eq!((t.answered.answered(), t.usage.input_tokens), (0, 0));
}

fn ended(id: &str, created: DateTime<Utc>, ended: DateTime<Utc>, on_demand: bool) -> Tally {
    let mut i = intent(id, 1, created);
    i.status = IntentStatus::Completed;
    i.updated_at = ended;
    let mut answered = Answered::default();
    answered.count(&result(0, ResultStatus::Succeeded, on_demand));
    Tally::ended(&i, answered, Usage::default())
}

#[test]
fn when_every_intent_ended_should_summarize_deadline_peaks_and_misses() {
    let night = start().date_naive();
    let early = ended("i-1", start(), start() + Duration::hours(2), false);
    let late_start = start() + Duration::hours(1);
    let mut open = intent("i-2", 1, late_start);
    open.status = IntentStatus::InProgress;
    let both = [early.clone(), tally_now(&open)];
    assert!(summarize(night, &both, &[]).is_none(), "one is open");

    // The second ends a second after its deadline.
    let late_end = late_start + Duration::hours(6) + Duration::seconds(1);
    let late = ended("i-2", late_start, late_end, true);
    let slots = |n: u32| BTreeMap::from([("m".to_owned(), n)]);
    let points = [
        point(&both, start(), slots(2)),
        point(&both, start(), slots(5)),
        point(&both, start(), slots(1)),
    ];
    let s = summarize(night, &[early, late.clone()], &points).expect("ended");
    assert_eq!((s.intents, s.images, s.answered.answered()), (2, 2, 2));
    assert_eq!((s.answered.batch, s.answered.on_demand), (1, 1));
    assert_eq!((s.missed, s.met), (1, Some(false)));
    assert_eq!(s.deadline, late.deadline, "the night's latest deadline");
    assert_eq!((s.first_accepted, s.last_answer), (start(), late_end));
    assert_eq!(s.peak_slots, slots(5));
    let last = s.final_point();
    assert_eq!((last.at, last.answered), (late_end, s.answered));
}

#[test]
fn when_ended_exactly_at_the_deadline_should_have_met_it() {
    let t = ended("i-1", start(), start() + Duration::hours(6), false);
    let s = summarize(start().date_naive(), &[t], &[]).expect("ended");
    assert_eq!((s.missed, s.met), (0, Some(true)));
}
