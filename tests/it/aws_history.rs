//! The learned job durations on DynamoDB (moto), through the real SDK: each model keeps its
//! newest 50 samples, newest first, in one version-conditional item beside the slots, and
//! writers that race each keep theirs. Skipped (and passing) without `BO_AWS_ENDPOINT`, like
//! `aws_e2e.rs`; CI sets `BO_REQUIRE_AWS_TESTS`, which makes a missing moto a failure.

use batch_orchestrator::local_aws::{create_resources, local_clients, valid_prefix, LocalStack};
use shared::domain::deadline::{JobSample, HISTORY};

use crate::common::aws_endpoint as endpoint;

fn sample(i: i64) -> JobSample {
    JobSample {
        ended_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::hours(i),
        records: 100 + i as u64,
        queue_secs: i as f64,
        run_secs: Some(10.0),
    }
}

#[tokio::test]
async fn when_jobs_end_on_aws_should_keep_each_models_newest_samples_through_races() {
    let Some(aws) = endpoint() else { return };
    let prefix = valid_prefix(&format!(
        "history-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let stack = LocalStack::named(&prefix);
    let clients = local_clients(&aws, "http://127.0.0.1:9").await;
    create_resources(&clients, &stack, 3, 1)
        .await
        .expect("resources");
    let deps = clients.deps(&stack.config());
    // 60 jobs end, 8 writers at a time: every write lands (a lost race reads and retries).
    use futures::StreamExt as _;
    let written: Vec<_> = futures::stream::iter(0..60)
        .map(|i| {
            let history = deps.history.clone();
            async move { history.record("model-a", &sample(i)).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in written {
        r.expect("record");
    }
    deps.history
        .record("model-b", &sample(1))
        .await
        .expect("record b");
    let kept = deps.history.recent("model-a").await.expect("recent");
    assert_eq!(kept.len(), HISTORY);
    let newest: Vec<u64> = kept.iter().map(|s| s.records).collect();
    let expected: Vec<u64> = (10..60).rev().map(|i| 100 + i).collect();
    assert_eq!(newest, expected, "the newest 50, newest first");
    assert_eq!(deps.history.recent("model-b").await.expect("b").len(), 1);
    assert!(deps.history.recent("model-c").await.expect("c").is_empty());
}
