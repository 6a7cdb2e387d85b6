//! The local model reads the pixels (issue 33): receipt photos of the corpus
//! (`benches/support/corpus.rs`: known text in three fonts, on a table, turned, in perspective,
//! stored sideways with EXIF orientation), uploaded and posted through `serve`'s router over
//! HTTP, come back with the totals printed on them, read by Tesseract standing in for the
//! model (at least five of six), and every result carries its checks. Tesseract missing: skipped, unless
//! `BO_REQUIRE_TESSERACT` is set (scripts/test.sh installs it and sets it).

use crate::common::*;
use crate::legibility::{corpus, tesseract};
use crate::serve_api::serve;
use serde_json::json;
use shared::adapters::embedded::local_model::LocalModel;

/// Six photos: each font, portrait and landscape, sideways and upside down, a shadow, a blur.
const SHOTS: [&str; 6] = [
    "short-mono-portrait",
    "short-liberation-landscape",
    "30-mono-shadow",
    "30-narrow-blur",
    "30-narrow-upside-down",
    "30-liberation-far",
];

#[tokio::test]
async fn when_receipt_photos_are_posted_through_serve_should_come_back_with_their_totals_read() {
    if !tesseract() {
        return;
    }
    let app = app_with(|o| o.emulator.local_model = LocalModel::Tesseract).await;
    let shots: Vec<corpus::Shot> = corpus::shots()
        .into_iter()
        .filter(|s| SHOTS.contains(&s.name))
        .collect();
    let mut keys = Vec::new();
    let mut totals = std::collections::BTreeMap::new();
    for shot in &shots {
        let photo = corpus::photograph(shot, 4032);
        let key = format!("uploads/{SAMPLE_USER}/2026-12-01/{}.jpg", shot.name);
        app.upload(&key, photo.bytes).await.expect("upload");
        let drawn = corpus::receipt(shot.items, shot.seed);
        totals.insert(format!("{}.jpg", shot.name), f64::from(drawn.total) / 100.0);
        keys.push(key);
    }
    let api = serve(&app).await;
    let auth = format!("Bearer {}", api.token(SAMPLE_USER));
    let body = json!({"intentId": "read-1", "images": keys}).to_string();
    let (code, answer) = api.post(Some(&auth), body).await;
    assert_eq!(code, 202, "{answer}");
    run(&app).await;
    let job = answer["jobId"].as_str().expect("jobId");
    let page = api
        .get_json(&format!("/api/batch/jobs/{job}/results"), &auth)
        .await;
    let items = page["results"].as_array().expect("results");
    assert_eq!(items.len(), SHOTS.len(), "{page}");
    let mut right = 0;
    for r in items {
        assert!(r["checks"].is_array(), "every result has checks: {r}");
        assert!(r["needsReview"].is_boolean(), "and needsReview: {r}");
        let name = r["imageKey"].as_str().and_then(|k| k.rsplit('/').next());
        let drawn = totals[name.expect("a key")];
        right += usize::from(r["receipt"]["total"].as_f64() == Some(drawn));
    }
    assert!(
        right >= 5,
        "{right} of {} totals read right: {page}",
        SHOTS.len()
    );
}
