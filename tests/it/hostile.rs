//! The hostile-input corpus in `tests/hostile/` (regenerate with `generate.py`): every case is
//! answered 4xx with a message naming the field, never panics, and writes and emits nothing.

use crate::common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

fn corpus() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/hostile")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let case: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
                .expect("case JSON");
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                case,
            )
        })
        .collect()
}

fn to_event(case: &Value) -> Value {
    let door = case["door"].as_str().expect("door");
    if door == "direct" {
        return case["payload"].clone();
    }
    let mut ev = event(if door == "rest-v1" {
        "intake-rest-v1.json"
    } else {
        "intake-http-api-v2.json"
    });
    ev["body"] = case["payload"].clone();
    ev["isBase64Encoded"] = json!(case["base64"].as_bool().unwrap_or(false));
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_hostile_requests_arrive_should_refuse_each_naming_the_field_and_write_nothing() {
    let cases = corpus();
    assert!(
        cases.len() >= 100,
        "the corpus holds at least 100 cases, has {}",
        cases.len()
    );
    let app = Arc::new(app().await);
    let mut wrong = Vec::new();
    for (file, case) in &cases {
        let name = case["name"].as_str().expect("name").to_owned();
        let ev = to_event(case);
        let app2 = app.clone();
        // A panic would surface here as a JoinError naming the case.
        let answer = tokio::spawn(async move { app2.intake(ev).await })
            .await
            .unwrap_or_else(|e| panic!("{file} ({name}) panicked: {e}"));
        let code = status(&answer);
        let b = body(&answer);
        let field = case["field"].as_str().expect("field");
        let message = b["message"].as_str().unwrap_or_default();
        if code != case["status"].as_u64().expect("status")
            || !(400..500).contains(&code)
            || b["field"] != field
            || !message.contains(field)
        {
            wrong.push(format!(
                "{file} ({name}): expected {} naming {field}, got {code} {b}",
                case["status"]
            ));
        }
        assert!(intents(&app).is_empty(), "{file} ({name}) wrote an intent");
        assert!(
            published(&app).is_empty(),
            "{file} ({name}) emitted an event"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} case(s) answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    println!("hostile corpus: {} cases refused", cases.len());
}
