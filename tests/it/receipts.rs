//! Answers held to receipt-v2 (issue 33, first part): every answer of a receipt-v2 request is
//! validated against `schemas/receipt-v2.schema.json` and checked for arithmetic and sense,
//! and the emulator's answer faults (`wrong-total`, `malformed-json`, `future-date`, each
//! spoiling every 10th record's batch answer) are caught exactly, with no false flag.

use crate::common::*;
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use shared::domain::results::ResultStatus;
use shared::domain::status::IntentStatus;

const IMAGES: usize = 40;

/// Posts [`IMAGES`] receipts as a receipt-v2 request under `faults`, runs it, and returns
/// the names of the failed checks of each result, by image index.
async fn flagged(faults: &[BedrockFault]) -> Vec<(usize, Vec<String>)> {
    let faults = faults.to_vec();
    let app = app_with(|o| o.emulator.faults = faults).await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-01/v2-{i:03}.png");
    crate::scale::store_many(&app, IMAGES, key).await;
    let keys: Vec<String> = (0..IMAGES).map(key).collect();
    let mut body = direct("v2", &keys.iter().map(String::as_str).collect::<Vec<_>>());
    body["promptVersion"] = serde_json::json!("receipt-v2");
    assert_eq!(status(&app.intake(body).await), 202);
    run(&app).await;
    let intent = intent_named(&app, "v2");
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    let rs = results(&app, &intent).await;
    assert_eq!(rs.len(), IMAGES);
    let mut out = Vec::new();
    for r in &rs {
        assert_eq!(r.status, ResultStatus::Succeeded);
        assert!(r.needs_review.is_some(), "every answer is reviewed: {r:?}");
        let failed: Vec<String> = r
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(r.needs_review, Some(!failed.is_empty()));
        if !failed.is_empty() {
            out.push((r.image_index, failed));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn when_answers_are_right_should_pass_every_check() {
    assert!(flagged(&[]).await.is_empty());
}

#[tokio::test]
async fn when_every_10th_answer_is_spoiled_should_flag_exactly_those_by_the_rule_they_break() {
    let every_10th: Vec<usize> = (0..IMAGES).step_by(10).collect();
    for (fault, rule) in [
        (BedrockFault::WrongTotal, "total"),
        (BedrockFault::MalformedJson, "schema"),
        (BedrockFault::FutureDate, "date"),
    ] {
        let got = flagged(&[fault]).await;
        let indexes: Vec<usize> = got.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            indexes, every_10th,
            "{fault}: flagged exactly every 10th, no false flag"
        );
        assert!(
            got.iter()
                .all(|(_, failed)| failed == &vec![rule.to_string()]),
            "{fault}: {got:?}"
        );
    }
}
