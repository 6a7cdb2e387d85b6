//! The nights on DynamoDB (moto), through the real SDK: points come back in time order, a
//! replayed tally or summary leaves one item, a night without a summary has none, the status
//! index finds the intents changed since a time, and a reconciler pass keeps a point of an
//! open night. Skipped (and passing) without `BO_AWS_ENDPOINT`, like `aws_e2e.rs`; CI sets
//! `BO_REQUIRE_AWS_TESTS`.

use chrono::{DateTime, Duration, Utc};
use shared::domain::ids::{IntentId, ModelId, ObjectKey, TraceId, UserId};
use shared::domain::intent::{BatchIntent, ImageSelection, NewIntent};
use shared::domain::night::{self, Answered, Tally};
use shared::domain::status::IntentStatus;
use shared::domain::usage::Usage;
use std::collections::BTreeMap;

fn intent(id: &str, at: DateTime<Utc>) -> BatchIntent {
    let req = NewIntent {
        intent_id: IntentId::parse(id).expect("id"),
        client_intent_id: None,
        user_id: UserId::parse("u-1").expect("user"),
        selection: ImageSelection::Keys(vec![ObjectKey::parse("uploads/u-1/a.png").expect("key")]),
        model_id: ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("model"),
        prompt_version: "receipt-v1".into(),
        trace_id: TraceId::parse("t").expect("trace"),
        deadline: Some(at + Duration::hours(8)),
        webhook: None,
    };
    BatchIntent::new(req, at, 30)
}

#[tokio::test]
async fn when_a_night_is_kept_on_aws_should_read_back_in_order_and_replay_to_one_item() {
    let Some(deps) = crate::common::moto_deps("nights").await else {
        return;
    };
    let at: DateTime<Utc> = "2026-12-04T20:00:00Z".parse().expect("time");
    let day = at.date_naive();
    let keep = at + Duration::days(30);
    let mut ended = intent("i-1", at);
    ended.status = IntentStatus::Completed;
    let answered = Answered {
        batch: 1,
        ..Answered::default()
    };
    let tally = Tally::ended(&ended, answered, Usage::default());
    // Points out of order, a tally and a summary each written twice.
    for minutes in [30, 10, 20] {
        let p = night::point(
            std::slice::from_ref(&tally),
            at + Duration::minutes(minutes),
            BTreeMap::new(),
        );
        deps.nights.put_point(day, &p, keep).await.expect("point");
    }
    deps.nights
        .put_tally(day, &tally, keep)
        .await
        .expect("tally");
    deps.nights
        .put_tally(day, &tally, keep)
        .await
        .expect("replay");
    let summary = night::summarize(day, std::slice::from_ref(&tally), &[]).expect("ended");
    deps.nights.put_summary(&summary).await.expect("summary");
    deps.nights.put_summary(&summary).await.expect("replay");

    let points = deps.nights.points(day).await.expect("points");
    let times: Vec<i64> = points.iter().map(|p| (p.at - at).num_minutes()).collect();
    assert_eq!(times, [10, 20, 30], "oldest first");
    assert_eq!(deps.nights.tallies(day).await.expect("tallies"), [tally]);
    let other = day - Duration::days(1);
    let found = deps
        .nights
        .summaries(&[other, day])
        .await
        .expect("summaries");
    assert_eq!(found, [summary], "one summary, none for the night without");
    assert!(deps.nights.points(other).await.expect("none").is_empty());
}

#[tokio::test]
async fn when_a_pass_runs_on_aws_should_find_tonights_intents_and_keep_a_point() {
    let Some(deps) = crate::common::moto_deps("nightpass").await else {
        return;
    };
    // The moto deps run on the system clock: tonight's intent, and one changed long ago.
    let now = deps.clock.now();
    let old = intent("i-old", now - Duration::days(3));
    let open = intent("i-new", now - Duration::minutes(5));
    for i in [&old, &open] {
        deps.store.create(i).await.expect("create");
    }
    let since = now - Duration::hours(1);
    let changed = deps
        .store
        .list_changed_since(IntentStatus::Requested, since, 100)
        .await
        .expect("index");
    let ids: Vec<&str> = changed.iter().map(|i| i.intent_id.as_str()).collect();
    assert_eq!(ids, ["i-new"], "changed since, not before");

    let report = shared::app::nights::record_pass(&deps).await.expect("pass");
    assert_eq!((report.points, report.summaries), (1, 0));
    let view = shared::app::nights::view(&deps, open.created_at.date_naive())
        .await
        .expect("view");
    let p = view.points.last().expect("a point");
    assert_eq!((p.images, p.open_intents), (1, 1));
    assert!(view.summary.is_none(), "the night is open");
}
