//! The router `serve` runs, over real HTTP with its local JWT auth: the same router the Lambda
//! runs under lambda_http, so what a client sees locally is what it sees deployed.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::ids::UserId;
use std::sync::Arc;

struct Served {
    url: String,
    key: Arc<intake::LocalKey>,
    _key_dir: tempfile::TempDir,
}

async fn serve(app: &TestApp) -> Served {
    let key_dir = tempfile::tempdir().expect("dir");
    let key = Arc::new(intake::LocalKey::load_or_create(key_dir.path()).expect("key"));
    let router = intake::router(app.deps.clone(), intake::Auth::LocalJwt(key.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Served {
        url,
        key,
        _key_dir: key_dir,
    }
}

impl Served {
    fn token(&self, user: &str) -> String {
        self.key
            .sign(&UserId::parse(user).expect("user"), 600)
            .expect("token")
    }

    async fn post(&self, auth: Option<&str>, body: String) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/batch/jobs", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.expect("POST");
        let code = resp.status().as_u16();
        (code, resp.json().await.expect("a JSON answer"))
    }
}

#[tokio::test]
async fn when_a_token_is_missing_or_tampered_should_answer_401_json_and_write_nothing() {
    let app = app().await;
    let api = serve(&app).await;
    let body = json!({"intentId": "t-1", "images": SAMPLE_KEYS}).to_string();

    let (code, answer) = api.post(None, body.clone()).await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (401, Some("unauthorized")),
        "{answer}"
    );

    // The payload names another user; the signature no longer matches.
    let token = api.token(SAMPLE_USER);
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"mallory","iss":"batch-orchestrator-local","iat":0,"exp":99999999999}"#,
    );
    parts[1] = &forged;
    let (code, answer) = api
        .post(Some(&format!("Bearer {}", parts.join("."))), body.clone())
        .await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (401, Some("unauthorized")),
        "{answer}"
    );
    let (code, answer) = api.post(Some("Basic dXNlcjpwYXNz"), body.clone()).await;
    assert_eq!(code, 401, "{answer}");
    assert!(
        intents(&app).is_empty(),
        "nothing written without a valid token"
    );

    let (code, answer) = api.post(Some(&format!("Bearer {token}")), body).await;
    assert_eq!(code, 202, "{answer}");
    assert_eq!(intents(&app)[0].user_id.as_str(), SAMPLE_USER);
}

#[tokio::test]
async fn when_a_body_is_over_10_mb_should_answer_a_json_413_and_take_one_just_under() {
    let app = app().await;
    let api = serve(&app).await;
    let auth = format!("Bearer {}", api.token(SAMPLE_USER));
    let limit = shared::app::intake::MAX_BODY_BYTES;

    let over = format!(
        r#"{{"intentId": "big", "images": ["{}"]}}"#,
        "k".repeat(limit)
    );
    let (code, answer) = api.post(Some(&auth), over).await;
    assert_eq!(code, 413, "{answer}");
    assert_eq!(answer["error"], json!("payload_too_large"));
    assert_eq!(answer["field"], json!("body"));

    // Just under the limit the body is read and judged on its content (a 4.9 MB body used to
    // get a plain-text 413 from `serve`).
    let keys: Vec<String> = (0..40_000)
        .map(|i| format!("uploads/{SAMPLE_USER}/2026-11-28/{i:0>100}.png"))
        .collect();
    let under = json!({"intentId": "big", "images": keys}).to_string();
    assert!(
        under.len() > 4_900_000 && under.len() < limit,
        "{}",
        under.len()
    );
    let (code, answer) = api.post(Some(&auth), under).await;
    assert_eq!(code, 202, "{answer}");
}

#[tokio::test]
async fn when_a_method_is_not_listed_should_answer_405_json_with_allow() {
    let app = app().await;
    let api = serve(&app).await;
    let resp = reqwest::Client::new()
        .put(format!("{}/api/batch/jobs", api.url))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET,HEAD,POST")
    );
    let answer: Value = resp.json().await.expect("JSON");
    assert_eq!(answer["error"], json!("method_not_allowed"));
}
