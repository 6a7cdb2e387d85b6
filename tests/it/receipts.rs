//! Answers held to receipt-v2 (issue 33, first part): every answer of a receipt-v2 request is
//! validated against `schemas/receipt-v2.schema.json` and checked for arithmetic and sense,
//! and the emulator's answer faults (`wrong-total`, `malformed-json`, `future-date`, each
//! spoiling every 10th record's batch answer) are caught exactly, with no false flag.

use crate::common::*;
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use shared::domain::results::{Kept, ResultStatus};
use shared::domain::settings::ReaskPolicy;

const IMAGES: usize = 40;

/// The request field that asks for receipt-v2.
static V2: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"promptVersion": "receipt-v2"}));

/// Posts [`IMAGES`] receipts as a receipt-v2 request under `faults`, runs it, and returns
/// the names of the failed checks of each result, by image index.
async fn flagged(faults: &[BedrockFault]) -> Vec<(usize, Vec<String>)> {
    let faults = faults.to_vec();
    let app = app_with(|o| {
        o.emulator.faults = faults;
        o.settings.reask = ReaskPolicy::Off;
    })
    .await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-01/v2-{i:03}.png");
    crate::scale::store_many(&app, IMAGES, key).await;
    let keys: Vec<String> = (0..IMAGES).map(key).collect();
    post_and_run(&app, "v2", &keys, V2.clone()).await;
    let (_, rs) = completed(&app, "v2").await;
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

#[tokio::test]
async fn when_a_client_asks_for_the_flagged_should_list_them_and_count_them_in_the_job_view() {
    use batch_orchestrator::http_api::http_api_event;
    let app = app_with(|o| {
        o.emulator.faults = vec![BedrockFault::WrongTotal];
        o.settings.reask = ReaskPolicy::Off;
    })
    .await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-01/f-{i:03}.png");
    crate::scale::store_many(&app, 25, key).await;
    let keys: Vec<String> = (0..25).map(key).collect();
    let request =
        serde_json::json!({"intentId": "flags", "images": keys, "promptVersion": "receipt-v2"});
    let post = http_api_event(
        "POST",
        "/api/batch/jobs",
        Some(SAMPLE_USER),
        &request.to_string(),
    );
    let job_id = body(&app.intake(post).await)["jobId"]
        .as_str()
        .expect("jobId")
        .to_owned();
    run(&app).await;
    let get = |path: String| http_api_event("GET", &path, Some(SAMPLE_USER), "");
    let view = body(&app.intake(get(format!("/api/batch/jobs/{job_id}"))).await);
    assert_eq!(
        view["progress"]["flagged"], 3,
        "images 0, 10 and 20: {view}"
    );
    assert_eq!(view["counts"]["flaggedRecordCount"], 3, "{view}");
    // Two at a time: the filter reads on past pages with none, and pages on by its cursor.
    let results_path = format!("/api/batch/jobs/{job_id}/results");
    let page = |query: serde_json::Value| {
        let mut event = get(results_path.clone());
        set_query(&mut event, query);
        event
    };
    let first = body(
        &app.intake(page(
            serde_json::json!({"needsReview": "true", "limit": "2"}),
        ))
        .await,
    );
    let mut flagged: Vec<u64> = first["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["imageIndex"].as_u64().expect("index"))
        .collect();
    let cursor = first["nextCursor"].as_str().expect("more").to_owned();
    let second = body(
        &app.intake(page(
            serde_json::json!({"needsReview": "true", "limit": "2", "cursor": cursor}),
        ))
        .await,
    );
    flagged.extend(
        second["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["imageIndex"].as_u64().expect("index")),
    );
    assert_eq!(flagged, vec![0, 10, 20], "{first} {second}");
    assert!(second["results"]
        .as_array()
        .expect("results")
        .iter()
        .all(|r| r["needsReview"] == true));
    let bad = app
        .intake(page(serde_json::json!({"needsReview": "maybe"})))
        .await;
    assert_eq!(status(&bad), 400, "{bad}");
    assert_eq!(body(&bad)["field"], "needsReview");
    // The usage API counts them on the day, and so does the operators' report.
    let usage = body(&app.intake(get("/api/batch/usage".into())).await);
    assert_eq!(usage["total"]["flagged"], 3, "{usage}");
    let all = app.store.all().expect("intents");
    let day = app.deps.clock.now().date_naive();
    let users = shared::app::usage::day_report(&app.deps, &all, day)
        .await
        .expect("report");
    assert_eq!(users.values().map(|u| u.usage.flagged).sum::<u64>(), 3);
}

/// Issue 33, item 4: with `REASK_POLICY=whole` (the default), every flagged answer is asked
/// again once, on-demand, with the whole photo; the better answer is kept, the other held
/// beside it, and both attempts are paid for. The emulator spoils batch answers only, so each
/// re-ask fixes its record.
#[tokio::test]
async fn when_answers_are_flagged_should_reask_each_once_and_keep_the_better() {
    for fault in [
        BedrockFault::WrongTotal,
        BedrockFault::MalformedJson,
        BedrockFault::FutureDate,
    ] {
        let app = app_with(|o| o.emulator.faults = vec![fault]).await;
        let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-01/r-{i:03}.png");
        crate::scale::store_many(&app, IMAGES, key).await;
        let keys: Vec<String> = (0..IMAGES).map(key).collect();
        post_and_run(&app, "reask", &keys, V2.clone()).await;
        let (intent, rs) = completed(&app, "reask").await;
        let reasked: Vec<_> = rs.iter().filter(|r| r.reask.is_some()).collect();
        let indexes: Vec<usize> = reasked.iter().map(|r| r.image_index).collect();
        assert_eq!(
            indexes,
            vec![0, 10, 20, 30],
            "{fault}: re-asked exactly the flagged"
        );
        for r in &reasked {
            let reask = r.reask.as_ref().expect("reask");
            assert_eq!(reask.kept, Kept::Reask, "{fault}: the re-ask fixed it");
            assert_eq!(reask.policy, "whole");
            assert!(r.on_demand && r.needs_review == Some(false));
            assert!(
                reask.other.checks.iter().any(|c| !c.passed),
                "the first answer kept beside"
            );
            assert!(reask.other.input_tokens > 0 || fault == BedrockFault::MalformedJson);
            assert_eq!(r.attempts, 2);
        }
        assert!(
            rs.iter().all(|r| r.needs_review == Some(false)),
            "{fault}: none left flagged"
        );
        assert_eq!(app.runtime.calls(), 4, "{fault}: one re-ask each");
        assert_eq!(intent.counts.expect("counts").flagged_record_count, 0);
    }
}

/// The answer faults spoil a shared (pooled) job's records too, by their number in the job:
/// a pooled member's flagged answers are re-asked and fixed like an intent's own, and no
/// padding record or right answer is flagged.
#[tokio::test]
async fn when_a_pooled_job_is_spoiled_should_flag_reask_and_fix_every_10th_record() {
    let app = app_with(|o| {
        o.emulator.faults = vec![BedrockFault::WrongTotal];
        o.settings.quotas.min_records_per_job = 100;
        o.settings.pool_deadline_secs = 0;
        o.settings.below_minimum = shared::domain::settings::BelowMinimum::Pad;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-01/p-{i:03}.png");
    crate::scale::store_many(&app, 30, key).await;
    let keys: Vec<String> = (0..30).map(key).collect();
    post_and_run(&app, "pooled", &keys, serde_json::json!({})).await;
    let (intent, rs) = completed(&app, "pooled").await;
    assert!(intent.pool.is_some(), "pooled into a shared job");
    let reasked: Vec<_> = rs.iter().filter(|r| r.reask.is_some()).collect();
    assert_eq!(reasked.len(), 3, "records 0, 10 and 20 of the shared job");
    for r in &reasked {
        let reask = r.reask.as_ref().expect("reask");
        assert_eq!(reask.kept, Kept::Reask);
        let first = reask.other.checks.iter().filter(|c| !c.passed);
        assert_eq!(
            first.map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["total"]
        );
    }
    assert!(rs.iter().all(|r| r.needs_review == Some(false)));
    assert_eq!(app.runtime.calls(), 3, "one re-ask each, none for padding");
}
