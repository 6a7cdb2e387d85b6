//! The learned job durations on DynamoDB (moto), through the real SDK: each model keeps its
//! newest 50 samples, newest first, in one item beside the slots, appended with `list_append`
//! and trimmed once it holds 100. The writes here go one at a time: an UpdateItem is atomic
//! in DynamoDB, but moto does not serialize concurrent updates of one item (a concurrent run
//! lost an append there), so a race would test moto, not this code. Skipped (and passing)
//! without `BO_AWS_ENDPOINT`, like `aws_e2e.rs`; CI sets `BO_REQUIRE_AWS_TESTS`.

use shared::domain::deadline::{JobSample, HISTORY};

fn sample(i: i64) -> JobSample {
    JobSample {
        ended_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::hours(i),
        records: 100 + i as u64,
        queue_secs: i as f64,
        run_secs: Some(10.0),
    }
}

#[tokio::test]
async fn when_jobs_end_on_aws_should_keep_each_models_newest_samples_and_trim_the_rest() {
    let Some(deps) = crate::common::moto_deps("history").await else {
        return;
    };
    // 160 jobs end: the list is trimmed to the newest 50 each time it reaches 100.
    for i in 0..160 {
        deps.history
            .record("model-a", &sample(i))
            .await
            .expect("record");
    }
    deps.history
        .record("model-b", &sample(1))
        .await
        .expect("record b");
    let kept = deps.history.recent("model-a").await.expect("recent");
    assert_eq!(kept.len(), HISTORY);
    let newest: Vec<u64> = kept.iter().map(|s| s.records).collect();
    let expected: Vec<u64> = (110..160).rev().map(|i| 100 + i).collect();
    assert_eq!(newest, expected, "the newest 50, newest first");
    assert_eq!(deps.history.recent("model-b").await.expect("b").len(), 1);
    assert!(deps.history.recent("model-c").await.expect("c").is_empty());
}
