//! Each receipt paid for once (issue 34): an exact copy of a photo the user sent before (the
//! same file under another key, in the same intent, a later one, or one in flight at the same
//! moment) is never sent to a model and is answered from the first, with 0 tokens; the same
//! receipt photographed again is sent and flagged `possibleDuplicateOf`; a different receipt of
//! the same shop is neither. The photos are 12 MP phone-like JPEGs of the corpus
//! (`benches/support/corpus.rs`).

use crate::common::*;
use crate::legibility::corpus;
use crate::serve_api::serve;
use serde_json::{json, Value};
use shared::domain::results::ImageResult;

/// A receipt of the NORTHSIDE PHARMACY (seed 1), and another of the same shop (seed 14).
const RECEIPT: u64 = 1;
const SAME_SHOP: u64 = 14;

/// The receipt's first photo (flat, nearly straight, on wood).
fn shot(seed: u64) -> corpus::Shot {
    corpus::photographed_twice(seed, 0, false).0
}

/// The same receipt again: turned a few degrees the other way, nearer, on slate, in shadow,
/// the phone held the other way up.
fn again(seed: u64) -> corpus::Shot {
    corpus::photographed_twice(seed, 0, false).1
}

fn key(day: &str, name: &str) -> String {
    format!("uploads/{SAMPLE_USER}/{day}/{name}.jpg")
}

async fn app_finding_duplicates() -> TestApp {
    app_with(|o| o.settings.duplicate_window_days = 30).await
}

async fn results_of(api: &crate::serve_api::Served, auth: &str, job: &str) -> Vec<Value> {
    let page = api
        .get_json(&format!("/api/batch/jobs/{job}/results"), auth)
        .await;
    page["results"].as_array().expect("results").clone()
}

#[tokio::test]
async fn when_a_photo_comes_twice_and_again_rephotographed_should_answer_it_once_and_flag_the_rephoto(
) {
    let app = app_finding_duplicates().await;
    let first = corpus::photograph(&shot(RECEIPT), 4032).bytes;
    let uploads = [
        ("a", first.clone()),
        ("b", first),
        ("c", corpus::photograph(&again(RECEIPT), 4032).bytes),
        ("d", corpus::photograph(&shot(SAME_SHOP), 4032).bytes),
    ];
    let mut keys = Vec::new();
    for (name, bytes) in uploads {
        keys.push(key("2026-12-01", name));
        app.upload(keys.last().expect("key"), bytes)
            .await
            .expect("upload");
    }
    let api = serve(&app).await;
    let auth = format!("Bearer {}", api.token(SAMPLE_USER));
    let body = json!({"intentId": "dup-1", "images": keys}).to_string();
    let (code, answer) = api.post(Some(&auth), body).await;
    assert_eq!(code, 202, "{answer}");
    run(&app).await;
    let job = answer["jobId"].as_str().expect("jobId");
    let results = results_of(&api, &auth, job).await;
    let by_name = |n: &str| {
        results
            .iter()
            .find(|r| r["imageKey"] == key("2026-12-01", n))
            .unwrap_or_else(|| panic!("no result for {n}: {results:?}"))
    };
    let (a, b, c, d) = (by_name("a"), by_name("b"), by_name("c"), by_name("d"));
    assert_eq!(b["duplicateOf"]["imageKey"], key("2026-12-01", "a"), "{b}");
    assert_eq!(b["duplicateOf"]["jobId"], job);
    assert_eq!(
        (b["inputTokens"].as_u64(), b["outputTokens"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(b["text"], a["text"], "the first's answer");
    assert_eq!(b["duplicateOf"]["savedInputTokens"], a["inputTokens"]);
    assert!(a["inputTokens"].as_u64() > Some(0));
    assert_eq!(
        c["possibleDuplicateOf"]["imageKey"],
        key("2026-12-01", "a"),
        "{c}"
    );
    assert!(
        c["inputTokens"].as_u64() > Some(0),
        "a re-photo is sent: {c}"
    );
    for r in [a, d] {
        assert!(
            r.get("duplicateOf").is_none() && r.get("possibleDuplicateOf").is_none(),
            "{r}"
        );
    }
    // Three records went to the model, not four; the view and the usage say what was saved.
    let intent = completed_intent(&app, "dup-1");
    let records: u64 = intent.jobs.iter().map(|j| j.records()).sum();
    assert_eq!(records, 3);
    let view = api.get_json(&format!("/api/batch/jobs/{job}"), &auth).await;
    assert_eq!(view["progress"]["duplicates"], 1, "{view}");
    assert_eq!(view["deduplicated"]["images"], 1, "{view}");
    assert_eq!(view["deduplicated"]["waiting"], 0, "answered: {view}");
    assert_eq!(
        view["deduplicated"]["tokensSaved"].as_u64(),
        Some(a["inputTokens"].as_u64().expect("n") + a["outputTokens"].as_u64().expect("n"))
    );
    assert!(
        view["deduplicated"]["usdSaved"].as_f64() > Some(0.0),
        "{view}"
    );
}

/// `names`: keys of one photo of the receipt, each a file of its own.
async fn upload_copies(app: &TestApp, day: &str, names: &[&str]) {
    upload_copies_of(app, day, names, RECEIPT).await;
}

async fn upload_copies_of(app: &TestApp, day: &str, names: &[&str], seed: u64) {
    let photo = corpus::photograph(&shot(seed), 1344).bytes;
    for n in names {
        app.upload(&key(day, n), photo.clone())
            .await
            .expect("upload");
    }
}

#[tokio::test]
async fn when_the_same_photo_is_sent_on_two_days_should_answer_it_once() {
    let app = app_finding_duplicates().await;
    upload_copies(&app, "2026-12-01", &["monday"]).await;
    post_and_run(&app, "day-1", &[key("2026-12-01", "monday")], json!({})).await;
    app.manual_clock()
        .expect("clock")
        .advance(chrono::Duration::days(1));
    upload_copies(&app, "2026-12-02", &["tuesday", "also-tuesday"]).await;
    upload_copies_of(&app, "2026-12-02", &["other"], SAME_SHOP).await;
    let keys = ["tuesday", "also-tuesday", "other"].map(|n| key("2026-12-02", n));
    let answer = app
        .intake(direct("day-2", &keys.each_ref().map(String::as_str)))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    // The 202 prices only what will be sent: one image of three (its upload's digest is new).
    let cost = |n: usize| {
        app.deps
            .settings
            .estimate_cost(&app.deps.settings.allowed_models[0], n)
    };
    let estimated: shared::domain::settings::CostEstimate =
        serde_json::from_value(body(&answer)["estimatedCost"].clone()).expect("estimatedCost");
    assert_eq!(Some(estimated), cost(1), "{answer}");
    run(&app).await;
    let (second, results) = completed(&app, "day-2").await;
    assert_eq!(second.status.as_str(), "COMPLETED");
    assert_eq!(
        second.jobs.iter().map(|j| j.records()).sum::<u64>(),
        1,
        "only the other receipt"
    );
    let copy: &ImageResult = &results[0];
    let of = copy.duplicate_of.as_ref().expect("duplicateOf");
    assert_eq!(of.image_key.as_str(), key("2026-12-01", "monday"));
    assert_eq!((copy.input_tokens, copy.output_tokens), (0, 0));
    let (first, first_results) = completed(&app, "day-1").await;
    assert_eq!(of.job_id, first.job_id);
    assert_eq!(copy.text, first_results[0].text);
    // A request of nothing but copies runs nothing and completes, answered.
    post_and_run(&app, "day-3", &[key("2026-12-02", "tuesday")], json!({})).await;
    let (third, results) = completed(&app, "day-3").await;
    assert!(third.jobs.is_empty(), "nothing to run: {:?}", third.jobs);
    assert_eq!(results[0].text, first_results[0].text);
    use shared::ports::BatchInference as _;
    let jobs = app.emulator.list_jobs(None).await.expect("jobs");
    assert_eq!(jobs.len(), 2, "one Bedrock job a day with a new receipt");
}

#[tokio::test]
async fn when_a_hundred_identical_images_come_in_one_intent_should_make_one_record() {
    let app = app_finding_duplicates().await;
    let names: Vec<String> = (0..100).map(|i| format!("copy-{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    upload_copies(&app, "2026-12-01", &refs).await;
    let keys: Vec<String> = names.iter().map(|n| key("2026-12-01", n)).collect();
    post_and_run(&app, "hundred", &keys, json!({})).await;
    let (intent, results) = completed(&app, "hundred").await;
    let records: u64 = intent.jobs.iter().map(|j| j.records()).sum();
    assert_eq!(records, 1, "one record, not 100");
    assert_eq!(intent.duplicates, 99);
    assert_eq!(results.len(), 100, "every image answered");
    let copies = results.iter().filter(|r| r.duplicate_of.is_some()).count();
    assert_eq!(copies, 99);
    assert!(results
        .iter()
        .all(|r| r.status == results[0].status && r.text == results[0].text));
}

#[tokio::test]
async fn when_two_intents_send_the_same_photo_at_once_should_make_one_record_and_answer_both() {
    let app = app_finding_duplicates().await;
    upload_copies(&app, "2026-12-01", &["phone", "tablet"]).await;
    // Both are accepted before either is built: the builds race for the one claim.
    for (id, name) in [("tap-1", "phone"), ("tap-2", "tablet")] {
        let answer = app.intake(direct(id, &[&key("2026-12-01", name)])).await;
        assert_eq!(status(&answer), 202, "{answer}");
    }
    run(&app).await;
    let (one, one_results) = completed(&app, "tap-1").await;
    let (two, two_results) = completed(&app, "tap-2").await;
    let records: u64 = [&one, &two]
        .iter()
        .flat_map(|i| i.jobs.iter())
        .map(|j| j.records())
        .sum();
    assert_eq!(records, 1, "one record between them");
    let all: Vec<&ImageResult> = one_results.iter().chain(&two_results).collect();
    assert_eq!(all.len(), 2, "both answered");
    assert_eq!(all.iter().filter(|r| r.duplicate_of.is_some()).count(), 1);
    assert_eq!(all[0].text, all[1].text);
}

#[tokio::test]
async fn when_the_first_was_cancelled_by_its_owner_should_send_its_copy() {
    use shared::domain::duplicates::{digest, FirstCopy, Seen};
    use shared::domain::family::RecordFamily as _;
    use shared::domain::ids::{IntentId, JobId, ObjectKey, RecordId, UserId};
    let app = app_finding_duplicates().await;
    upload_copies(&app, "2026-12-01", &["resent"]).await;
    let key = ObjectKey::parse(&key("2026-12-01", "resent")).expect("key");
    // The same photo was the first of another request, whose owner cancelled it.
    let long_edge = shared::domain::family::Claude.image_long_edge();
    let copy = shared::app::normalized::normalized_uri(&app.deps, &key, long_edge).expect("uri");
    let jpeg = app
        .deps
        .objects
        .get(&copy)
        .await
        .expect("normalized at upload");
    let model = app.deps.settings.default_model().expect("model").clone();
    let gone = IntentId::parse("gone-request").expect("id");
    let job = JobId::for_intent(&gone);
    let first = FirstCopy {
        record_id: RecordId::for_image(&job, 0),
        intent_id: gone.clone(),
        job_id: job,
        index: 0,
        image_key: key.clone(),
    };
    let now = app.deps.clock.now();
    let seen = Seen {
        digest: digest(&model, "receipt-v2", &jpeg),
        perceptual: None,
        first: first.clone(),
        seen_at: now,
        expires_at: now + chrono::Duration::days(30),
    };
    let user = UserId::parse(SAMPLE_USER).expect("user");
    app.deps
        .duplicates
        .claim(&user, &seen, now)
        .await
        .expect("claim");
    let canceled = ImageResult::canceled(first.record_id.clone(), 0, key.clone());
    app.deps
        .results
        .put_results(&gone, &[canceled])
        .await
        .expect("put");
    post_and_run(&app, "resent", &[key.to_string()], json!({})).await;
    let (intent, results) = completed(&app, "resent").await;
    assert_eq!(
        intent.jobs.iter().map(|j| j.records()).sum::<u64>(),
        1,
        "sent"
    );
    assert!(results[0].duplicate_of.is_none() && results[0].input_tokens > 0);
    let recent = app
        .deps
        .duplicates
        .recent(&user, app.deps.clock.now(), 10)
        .await
        .expect("recent");
    assert!(
        recent.iter().any(|s| s.first.intent_id == intent.intent_id),
        "it is the digest's first now"
    );
}
