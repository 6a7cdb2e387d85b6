//! What operators see: the metrics a run emits, read back through a debugging recorder.
// A test reads as one scenario, top to bottom: the function-length limit is for the code.
#![allow(clippy::too_many_lines)]

mod common;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;

/// (name, labels, value) of one metric.
type Row = (String, Vec<(String, String)>, DebugValue);

fn counter(snapshot: &[Row], name: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn when_a_batch_runs_should_count_intents_jobs_records_and_time_each_stage() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this test binary");

    let app = app().await;
    app.intake(event("intake-direct.json")).await;
    app.intake(event("intake-direct.json")).await;
    app.intake(json!({"intentId": "bad/id", "userId": SAMPLE_USER, "images": [SAMPLE_KEYS[0]]}))
        .await;
    run(&app).await;

    let snapshot: Vec<Row> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let k = key.key();
            let labels = k
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (k.name().to_owned(), labels, value)
        })
        .collect();
    assert_eq!(counter(&snapshot, shared::metrics::INTENTS_ACCEPTED), 1);
    assert_eq!(counter(&snapshot, shared::metrics::INTENTS_DUPLICATE), 1);
    assert_eq!(counter(&snapshot, shared::metrics::INTENTS_REJECTED), 1);
    assert_eq!(counter(&snapshot, shared::metrics::JOBS_SUBMITTED), 1);
    assert_eq!(counter(&snapshot, shared::metrics::RECORDS_SUCCEEDED), 3);
    assert_eq!(counter(&snapshot, shared::metrics::RECORDS_FAILED), 0);
    let stages: Vec<String> = snapshot
        .iter()
        .filter(|(n, _, _)| n == shared::metrics::STAGE_SECONDS)
        .flat_map(|(_, labels, _)| labels.iter().map(|(_, v)| v.clone()))
        .collect();
    for stage in ["MANIFEST_READY", "SUBMITTED", "COMPLETED"] {
        assert!(
            stages.iter().any(|s| s == stage),
            "no timing for {stage}: {stages:?}"
        );
    }
    let reasons: Vec<&(String, String)> = snapshot
        .iter()
        .filter(|(n, _, _)| n == shared::metrics::INTENTS_REJECTED)
        .flat_map(|(_, labels, _)| labels.iter())
        .collect();
    assert_eq!(
        reasons,
        vec![&("reason".to_owned(), "validation".to_owned())]
    );
}
