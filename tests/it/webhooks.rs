//! Completion webhooks on the embedded backend, to a receiver on this machine that verifies
//! each delivery's Standard Webhooks signature: one verified POST when the batch ends; a
//! receiver that answers 500 twice gets the third try, with the same `webhook-id`; and a
//! deployed stack refuses an address on this machine.

use crate::common::*;
use axum::http::HeaderMap;
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver saw: (webhook-id, signature valid, status answered, body).
type Seen = Arc<Mutex<Vec<(String, bool, u16, serde_json::Value)>>>;

/// A receiver that answers 500 to its first `fail_first` calls, then 204.
async fn receiver(fail_first: usize) -> (String, Seen) {
    receiver_answering(move |n| if n < fail_first { 500 } else { 204 }).await
}

/// A receiver that answers `code(n)` to its `n`-th call (from 0).
async fn receiver_answering(
    code: impl Fn(usize) -> u16 + Clone + Send + Sync + 'static,
) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            let code = code.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let (id, ts) = (header("webhook-id"), header("webhook-timestamp"));
                // The scheme's own check, less its 5-minute window (the test's clock is manual).
                let expected = standardwebhooks::Webhook::new(SECRET)
                    .and_then(|w| w.sign(&id, ts.parse().unwrap_or_default(), &body))
                    .expect("sign");
                let valid = header("webhook-signature")
                    .split(' ')
                    .any(|s| s == expected);
                let mut log = log.lock().expect("log");
                let code = code(log.len());
                let json = serde_json::from_slice(&body).unwrap_or_default();
                log.push((id, valid, code, json));
                axum::http::StatusCode::from_u16(code).expect("code")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn post_with_hook(app: &TestApp, id: &str, url: &str) -> serde_json::Value {
    let mut body = direct(id, &SAMPLE_KEYS);
    body["webhook"] = serde_json::json!(url);
    body["webhookSecret"] = serde_json::json!(SECRET);
    app.intake(body).await
}

#[tokio::test]
async fn when_a_batch_ends_should_post_one_verified_webhook_with_its_job_view() {
    let app = app().await;
    let (url, seen) = receiver(0).await;
    let answer = post_with_hook(&app, "hooked", &url).await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (id, valid, _, body) = &seen[0];
    assert!(valid, "the signature verifies");
    assert!(!id.is_empty());
    assert_eq!(body["type"], "batch.completed");
    assert_eq!(body["data"]["jobId"], body_of(&answer)["jobId"]);
    assert_eq!(body["data"]["status"], "COMPLETED");
    assert!(
        !body.to_string().contains("whsec_"),
        "the secret is never sent"
    );
}

fn body_of(answer: &serde_json::Value) -> serde_json::Value {
    body(answer)
}

#[tokio::test]
async fn when_the_receiver_fails_twice_should_deliver_on_the_third_try_with_the_same_id() {
    let app = app().await;
    let (url, seen) = receiver(2).await;
    assert_eq!(status(&post_with_hook(&app, "retried", &url).await), 202);
    run(&app).await;
    let seen = seen.lock().expect("seen").clone();
    let codes: Vec<u16> = seen.iter().map(|s| s.2).collect();
    assert_eq!(codes, vec![500, 500, 204], "{seen:?}");
    assert!(
        seen.iter().all(|s| s.0 == seen[0].0),
        "one webhook-id for every try"
    );
    assert!(seen.iter().all(|s| s.1), "every try is signed");
    assert!(app.bus.dead_letters(None).expect("dlq").is_empty());
    // The pipeline did not wait for the receiver: the batch ended on its first pass.
    assert_eq!(
        intent_named(&app, "retried").status,
        shared::domain::status::IntentStatus::Completed
    );
}

#[tokio::test]
async fn when_deployed_should_refuse_a_webhook_to_this_machine_or_plain_http() {
    let app = app_with(|o| o.settings.webhook_local = false).await;
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/hook",
        "http://hooks.example.com/batch",
    ] {
        let answer = post_with_hook(&app, "inward", url).await;
        assert_eq!(status(&answer), 400, "{url}: {answer}");
        assert_eq!(body_of(&answer)["field"], "webhook", "{answer}");
    }
    let mut body = direct("no-secret", &SAMPLE_KEYS);
    body["webhook"] = serde_json::json!("https://hooks.example.com/batch");
    let answer = app.intake(body).await;
    assert_eq!(body_of(&answer)["field"], "webhookSecret", "{answer}");
    assert!(intents(&app).is_empty(), "nothing written");
}

#[tokio::test]
async fn when_the_receiver_keeps_failing_should_retry_on_the_spec_schedule_for_over_a_day() {
    let app = app().await;
    let (url, seen) = receiver_answering(|_| 503).await;
    assert_eq!(status(&post_with_hook(&app, "down", &url).await), 202);
    let start = app.deps.clock.now();
    run(&app).await;
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(
        seen.len(),
        10,
        "the first try and the schedule's nine: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.0 == seen[0].0), "one webhook-id");
    let span = app.deps.clock.now() - start;
    assert!(span >= chrono::Duration::hours(75), "tried over {span}");
    let hook = intent_named(&app, "down").webhook.expect("webhook");
    assert_eq!(
        hook.ended,
        Some(shared::domain::webhook::DeliveryEnd::Exhausted)
    );
    assert!(
        app.bus.dead_letters(None).expect("dlq").is_empty(),
        "no DLQ while on schedule"
    );
}

#[tokio::test]
async fn when_the_receiver_answers_410_gone_should_disable_the_endpoint() {
    let app = app().await;
    let (url, seen) = receiver_answering(|_| 410).await;
    assert_eq!(status(&post_with_hook(&app, "gone", &url).await), 202);
    run(&app).await;
    assert_eq!(seen.lock().expect("seen").len(), 1, "no try after 410");
    let hook = intent_named(&app, "gone").webhook.expect("webhook");
    assert_eq!(hook.ended, Some(shared::domain::webhook::DeliveryEnd::Gone));
}

#[tokio::test]
async fn when_deployed_should_refuse_ipv6_forms_of_inward_addresses() {
    let app = app_with(|o| o.settings.webhook_local = false).await;
    for (i, url) in [
        "https://[::169.254.169.254]/",
        "https://[64:ff9b:1::a9fe:a9fe]/",
        "https://[fec0::1]/",
    ]
    .iter()
    .enumerate()
    {
        let answer = post_with_hook(&app, &format!("v6-{i}"), url).await;
        assert_eq!(status(&answer), 400, "{url}: {answer}");
        assert_eq!(body_of(&answer)["field"], "webhook", "{answer}");
    }
}
