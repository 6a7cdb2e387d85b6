//! Per-user limits counted exactly (issue 32, item 2): each request moves a per-user counter by
//! one conditional write, so cheap requests never push real ones out of the count, and
//! requests sent at the same moment pass a limit exactly as one at a time would.

use crate::common::*;
use futures::future::join_all;
use serde_json::json;

fn keys(user: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("uploads/{user}/2026-12-04/l{i:03}.png"))
        .collect()
}

async fn upload(app: &TestApp, keys: &[String]) {
    for (i, key) in keys.iter().enumerate() {
        app.upload(key, batch_orchestrator::samples::receipt_png(i % 7 + 1))
            .await
            .expect("upload");
    }
}

async fn post(app: &TestApp, id: impl Into<String>, images: Vec<String>) -> u64 {
    let id = id.into();
    status(
        &app.intake(json!({"intentId": id, "userId": SAMPLE_USER, "images": images}))
            .await,
    )
}

#[tokio::test]
async fn when_thousands_of_empty_requests_came_first_should_still_refuse_images_past_the_day() {
    let app = app_with(|o| {
        o.settings.max_images_per_user_per_day = 10;
        o.settings.max_open_intents_per_user = 10_000;
    })
    .await;
    let ks = keys(SAMPLE_USER, 11);
    upload(&app, &ks).await;
    assert_eq!(post(&app, "ten", ks[..10].to_vec()).await, 202);
    assert_eq!(post(&app, "eleventh", ks[10..].to_vec()).await, 429);
    // 2,001 requests for a day with no uploads: each is a request of 0 images.
    for i in 0..2_001 {
        let answer = app
            .intake(json!({"intentId": format!("empty-{i}"), "userId": SAMPLE_USER, "day": "2026-01-02"}))
            .await;
        assert_eq!(status(&answer), 202, "{answer}");
    }
    for (i, key) in ks.iter().enumerate() {
        let code = post(&app, format!("more-{i}"), vec![key.clone()]).await;
        assert_eq!(code, 429, "image {i} is past the day's 10");
    }
    // A replay of the first request is still never refused.
    assert_eq!(post(&app, "ten", ks[..10].to_vec()).await, 202);
}

#[tokio::test]
async fn when_60_requests_arrive_at_once_should_pass_exactly_the_limit() {
    let app = app_with(|o| {
        o.settings.max_images_per_user_per_day = 10;
        o.settings.max_open_intents_per_user = 1_000;
    })
    .await;
    let ks = keys(SAMPLE_USER, 60);
    upload(&app, &ks).await;
    let answers =
        join_all((0..60).map(|i| post(&app, format!("burst-{i}"), vec![ks[i].clone()]))).await;
    assert_eq!(
        answers.iter().filter(|c| **c == 202).count(),
        10,
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|c| **c == 429).count(), 50);
    assert_eq!(intents(&app).len(), 10, "nothing written for the refused");

    // Open batches: 60 at once against a limit of 5.
    let app = app_with(|o| o.settings.max_open_intents_per_user = 5).await;
    let answers = join_all(
        (0..60).map(|i| post(&app, format!("open-{i}"), vec![SAMPLE_KEYS[0].to_string()])),
    )
    .await;
    assert_eq!(
        answers.iter().filter(|c| **c == 202).count(),
        5,
        "{answers:?}"
    );
    // Once they end, their places are free again.
    run(&app).await;
    assert_eq!(
        post(&app, "after", vec![SAMPLE_KEYS[1].to_string()]).await,
        202
    );
}

#[tokio::test]
async fn when_an_ended_intent_kept_its_place_should_heal_it_at_the_next_refusal() {
    use shared::domain::ids::{IntentId, UserId};
    let app = app_with(|o| o.settings.max_open_intents_per_user = 1).await;
    let user = UserId::parse(SAMPLE_USER).expect("user");
    // A place counted for an intent that is not there (a crash after its end, before its
    // freeing, as an ended intent whose item expired would leave).
    let ghost = IntentId::parse("ghost-intent").expect("id");
    assert!(app
        .deps
        .allowances
        .open(&user, &ghost, 1)
        .await
        .expect("open"));
    assert_eq!(
        post(&app, "real", vec![SAMPLE_KEYS[0].to_string()]).await,
        202
    );
    let open = app.deps.allowances.open_intents(&user).await.expect("open");
    assert_eq!(open, vec![stored_key("real")], "the ghost was freed");
}
