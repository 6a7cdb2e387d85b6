//! The router `serve` runs, over real HTTP with its local JWT auth: the same router the Lambda
//! runs under lambda_http, so what a client sees locally is what it sees deployed.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::ids::UserId;
use std::sync::Arc;

pub(crate) struct Served {
    pub(crate) url: String,
    key: Arc<intake::LocalKey>,
    _key_dir: tempfile::TempDir,
}

pub(crate) async fn serve(app: &TestApp) -> Served {
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
    pub(crate) fn token(&self, user: &str) -> String {
        self.key
            .sign(&UserId::parse(user).expect("user"), 600)
            .expect("token")
    }

    pub(crate) async fn post(&self, auth: Option<&str>, body: String) -> (u16, Value) {
        let mut req = crate::common::http()
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

    /// GETs `path` (from `/api/...`) with `auth`; its JSON answer.
    pub(crate) async fn get_json(&self, path: &str, auth: &str) -> Value {
        crate::common::http()
            .get(format!("{}{path}", self.url))
            .header("authorization", auth)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("a JSON answer")
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
    let resp = crate::common::http()
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

/// A token `sign` would refuse (a reserved identity), signed with the served key itself, as an
/// attacker holding the key file (or a misconfigured authorizer) would make it.
fn forged(key_dir: &std::path::Path, sub: &str) -> String {
    let secret = std::fs::read(key_dir.join("jwt.key")).expect("key");
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({"sub": sub, "iss": "batch-orchestrator-local", "iat": now, "exp": now + 600});
    intake::hs256::install();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret).expect("a key"),
    )
    .expect("encode")
}

#[tokio::test]
async fn when_the_pool_identity_calls_should_be_refused_on_every_route() {
    let app = app().await;
    let api = serve(&app).await;
    // A real user's job, which the pool's identity must not read, list or stop.
    let good = format!("Bearer {}", api.token(SAMPLE_USER));
    let body = json!({"intentId": "p-1", "images": SAMPLE_KEYS}).to_string();
    let (code, answer) = api.post(Some(&good), body).await;
    assert_eq!(code, 202, "{answer}");
    let job = answer["jobId"].as_str().expect("jobId").to_owned();
    let pool = format!("Bearer {}", forged(api._key_dir.path(), "system.pool"));
    let http = crate::common::http();
    let base = &api.url;
    let requests = [
        http.get(format!("{base}/api/batch/jobs")),
        http.post(format!("{base}/api/batch/jobs"))
            .header("content-type", "application/json")
            .body(json!({"intentId": "p-2", "images": SAMPLE_KEYS}).to_string()),
        http.get(format!("{base}/api/batch/jobs/{job}")),
        http.delete(format!("{base}/api/batch/jobs/{job}")),
        http.get(format!("{base}/api/batch/jobs/{job}/results")),
    ];
    for req in requests {
        let resp = req
            .header("authorization", &pool)
            .send()
            .await
            .expect("send");
        let code = resp.status().as_u16();
        let answer: Value = resp.json().await.expect("JSON");
        assert_eq!(
            (code, answer["error"].as_str()),
            (401, Some("unauthorized")),
            "{answer}"
        );
    }
    assert_eq!(intents(&app).len(), 1, "nothing written");
    assert!(!intents(&app)[0].status.is_terminal(), "nothing cancelled");
}

#[tokio::test]
async fn when_a_key_is_too_long_for_its_copy_should_name_the_field_and_the_next_request_complete() {
    let app = app().await;
    let api = serve(&app).await;
    let auth = format!("Bearer {}", api.token(SAMPLE_USER));
    let prefix = format!("uploads/{SAMPLE_USER}/2026-11-28/");
    let long = format!("{prefix}{}", "r".repeat(1015 - prefix.len()));
    let body = json!({"intentId": "k-1", "images": [long]}).to_string();
    let (code, answer) = api.post(Some(&auth), body).await;
    assert_eq!(
        (code, answer["field"].as_str()),
        (400, Some("images[0]")),
        "{answer}"
    );
    assert!(
        answer["message"].as_str().unwrap_or("").contains("1003"),
        "{answer}"
    );
    let body = json!({"intentId": "k-2", "images": SAMPLE_KEYS}).to_string();
    let (code, _) = api.post(Some(&auth), body).await;
    assert_eq!(code, 202);
    run(&app).await;
    assert_eq!(
        intent_named(&app, "k-2").status,
        shared::domain::status::IntentStatus::Completed
    );
}

#[tokio::test]
async fn when_a_user_is_over_a_limit_should_answer_429_with_retry_after_and_write_nothing() {
    let app = app_with(|o| {
        o.settings.max_open_intents_per_user = 1;
        o.settings.max_images_per_user_per_day = 4;
    })
    .await;
    let api = serve(&app).await;
    let auth = format!("Bearer {}", api.token(SAMPLE_USER));
    let post = |id: &str, keys: &[&str]| json!({"intentId": id, "images": keys}).to_string();
    let (code, _) = api.post(Some(&auth), post("l-1", &SAMPLE_KEYS[..2])).await;
    assert_eq!(code, 202);
    // A replay of the same request is never refused.
    let (code, answer) = api.post(Some(&auth), post("l-1", &SAMPLE_KEYS[..2])).await;
    assert_eq!((code, answer["cached"].as_bool()), (202, Some(true)));
    // A second batch while the first runs: over MAX_OPEN_INTENTS_PER_USER (once the user's
    // list shows the first: the test's index lags 2 s, as a GSI may).
    app.manual_clock()
        .expect("manual")
        .advance(chrono::Duration::seconds(3));
    let resp = crate::common::http()
        .post(format!("{}/api/batch/jobs", api.url))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(post("l-2", &SAMPLE_KEYS[2..]))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    let answer: Value = resp.json().await.expect("JSON");
    assert_eq!(
        (
            answer["error"].as_str(),
            answer["field"].as_str(),
            answer["retryAfter"].as_u64()
        ),
        (Some("too_many_requests"), Some("intentId"), Some(retry))
    );
    run(&app).await;
    app.manual_clock()
        .expect("manual")
        .advance(chrono::Duration::seconds(3));
    // The first ended; 2 + 3 images would pass the day's 4.
    let (code, answer) = api.post(Some(&auth), post("l-3", &SAMPLE_KEYS)).await;
    assert_eq!(
        (code, answer["field"].as_str()),
        (429, Some("images")),
        "{answer}"
    );
    assert_eq!(intents(&app).len(), 1, "nothing written");
}
