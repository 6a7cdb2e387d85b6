//! The intake contract: every door (REST v1, HTTP API v2, direct invoke), cached replays,
//! reused keys, bad input, identity, and a failed announcement that must not strand an intent.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::status::IntentStatus;

#[tokio::test]
async fn when_each_sample_door_is_used_should_answer_202_with_the_contract_fields() {
    for file in [
        "intake-http-api-v2.json",
        "intake-rest-v1.json",
        "intake-direct.json",
    ] {
        let app = app().await;
        let answer = app.intake(event(file)).await;
        assert_eq!(status(&answer), 202, "{file}: {answer}");
        let b = body(&answer);
        assert_eq!(b["intentId"], SAMPLE_INTENT, "{file}");
        assert_eq!(b["jobId"], "bj-3ae489935892792f79a38850", "{file}");
        assert_eq!(b["cached"], false, "{file}");
        assert_eq!(
            b["statusUrl"], "http://127.0.0.1:8080/api/batch/jobs/bj-3ae489935892792f79a38850",
            "{file}"
        );
        assert!(
            b["estimatedDuration"].as_u64().expect("seconds") > 0,
            "{file}"
        );
        let stored = intents(&app);
        assert_eq!(stored.len(), 1, "{file}");
        assert_eq!(stored[0].user_id.as_str(), SAMPLE_USER, "{file}");
        assert_eq!(published(&app), vec!["BATCH_REQUESTED"], "{file}");
    }
}

#[tokio::test]
async fn when_api_event_carries_a_trace_header_should_keep_it_on_the_intent_and_event() {
    let app = app().await;
    app.intake(event("intake-http-api-v2.json")).await;
    let intent = &intents(&app)[0];
    assert_eq!(
        intent.trace_id.as_str(),
        "Root=1-67891233-abcdef012345678912345678"
    );
    let (_, _, envelope) = &app.bus.archive().expect("archive")[0];
    assert!(envelope.contains("Root=1-67891233-abcdef012345678912345678"));
}

#[tokio::test]
async fn when_same_intent_is_sent_again_should_return_cached_answer_and_write_nothing() {
    let app = app().await;
    let first = body(&app.intake(event("intake-http-api-v2.json")).await);
    let before = intents(&app);
    let again = app.intake(event("intake-http-api-v2.json")).await;
    assert_eq!(status(&again), 202);
    let again = body(&again);
    assert_eq!(again["cached"], true);
    assert_eq!(again["jobId"], first["jobId"]);
    assert_eq!(again["statusUrl"], first["statusUrl"]);
    assert_eq!(intents(&app), before, "no write on a cached answer");
    assert_eq!(published(&app).len(), 1, "no second BATCH_REQUESTED");
}

#[tokio::test]
async fn when_same_intent_id_has_a_different_payload_should_answer_409_and_change_nothing() {
    let app = app().await;
    app.intake(direct("key-1", &SAMPLE_KEYS[..2])).await;
    let before = intents(&app);
    let answer = app.intake(direct("key-1", &SAMPLE_KEYS)).await;
    assert_eq!(status(&answer), 409, "{answer}");
    assert_eq!(answer["field"], "intentId");
    assert!(answer["message"]
        .as_str()
        .expect("message")
        .contains("already used"));
    assert_eq!(intents(&app), before);
    assert_eq!(published(&app).len(), 1);
}

#[tokio::test]
async fn when_claims_are_present_should_ignore_the_body_user_id() {
    let app = app().await;
    let mut ev = event("intake-http-api-v2.json");
    ev["body"] = json!(json!({
        "intentId": "spoof-1",
        "userId": "someone-else",
        "images": [SAMPLE_KEYS[0]]
    })
    .to_string());
    let answer = app.intake(ev).await;
    assert_eq!(status(&answer), 202, "{answer}");
    assert_eq!(intents(&app)[0].user_id.as_str(), SAMPLE_USER);

    // And a key under the other user's prefix is refused, whatever the body claims.
    let mut ev = event("intake-http-api-v2.json");
    ev["body"] = json!(json!({
        "intentId": "spoof-2",
        "userId": "someone-else",
        "images": ["uploads/someone-else/2026-11-28/x.png"]
    })
    .to_string());
    let answer = app.intake(ev).await;
    assert_eq!(status(&answer), 403, "another user's key is forbidden");
    assert_eq!(body(&answer)["field"], "images[0]");
}

#[tokio::test]
async fn when_api_event_has_no_claims_should_answer_401_and_write_nothing() {
    let app = app().await;
    let mut ev = event("intake-http-api-v2.json");
    ev["requestContext"]["authorizer"] = Value::Null;
    let answer = app.intake(ev).await;
    assert_eq!(status(&answer), 401, "{answer}");
    let mut ev = event("intake-rest-v1.json");
    ev["requestContext"]["authorizer"] = json!({});
    assert_eq!(status(&app.intake(ev).await), 401);
    assert!(intents(&app).is_empty());
    assert!(published(&app).is_empty());
}

/// One bad request per class, through the door it is most likely to come through; each must be
/// a 400 naming the field, with nothing stored and nothing emitted.
#[tokio::test]
async fn when_input_is_bad_should_answer_400_naming_the_field_and_write_nothing() {
    let app = app().await;
    let k = SAMPLE_KEYS[0];
    let many: Vec<String> = (0..50_001)
        .map(|i| format!("uploads/user-123/d/{i}.png"))
        .collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "missing intentId",
            json!({"userId": "user-123", "images": [k]}),
            "intentId",
        ),
        (
            "empty intentId",
            json!({"intentId": "", "userId": "user-123", "images": [k]}),
            "intentId",
        ),
        (
            "intentId with slash",
            json!({"intentId": "a/b", "userId": "user-123", "images": [k]}),
            "intentId",
        ),
        (
            "intentId too long",
            json!({"intentId": "x".repeat(129), "userId": "user-123", "images": [k]}),
            "intentId",
        ),
        (
            "intentId wrong type",
            json!({"intentId": 42, "userId": "user-123", "images": [k]}),
            "intentId",
        ),
        (
            "missing userId on direct invoke",
            json!({"intentId": "i", "images": [k]}),
            "userId",
        ),
        (
            "userId with traversal",
            json!({"intentId": "i", "userId": "../x", "images": [k]}),
            "userId",
        ),
        (
            "no images",
            json!({"intentId": "i", "userId": "user-123"}),
            "images",
        ),
        (
            "empty images",
            json!({"intentId": "i", "userId": "user-123", "images": []}),
            "images",
        ),
        (
            "images not an array",
            json!({"intentId": "i", "userId": "user-123", "images": k}),
            "images",
        ),
        (
            "image not a string",
            json!({"intentId": "i", "userId": "user-123", "images": [k, 7]}),
            "images[1]",
        ),
        (
            "too many images",
            json!({"intentId": "i", "userId": "user-123", "images": many}),
            "images",
        ),
        (
            "absolute key",
            json!({"intentId": "i", "userId": "user-123", "images": ["/uploads/user-123/a.png"]}),
            "images[0]",
        ),
        (
            "path traversal",
            json!({"intentId": "i", "userId": "user-123", "images": ["uploads/user-123/../other/a.png"]}),
            "images[0]",
        ),
        (
            "prefix only",
            json!({"intentId": "i", "userId": "user-123", "images": ["uploads/user-123/"]}),
            "images[0]",
        ),
        (
            "duplicate keys",
            json!({"intentId": "i", "userId": "user-123", "images": [k, k]}),
            "images[1]",
        ),
        (
            "images and day",
            json!({"intentId": "i", "userId": "user-123", "images": [k], "day": "2026-11-28"}),
            "images",
        ),
        (
            "bad day",
            json!({"intentId": "i", "userId": "user-123", "day": "28/11/2026"}),
            "day",
        ),
        (
            "unknown model",
            json!({"intentId": "i", "userId": "user-123", "images": [k], "modelId": "openai.gpt-9"}),
            "modelId",
        ),
        (
            "unknown prompt",
            json!({"intentId": "i", "userId": "user-123", "images": [k], "promptVersion": "v99"}),
            "promptVersion",
        ),
        (
            "unknown field",
            json!({"intentId": "i", "userId": "user-123", "images": [k], "priority": "high"}),
            "priority",
        ),
        ("not an object", json!(["intentId"]), "body"),
    ];
    // A well-formed key under another user's prefix is not the caller's: 403, naming it.
    let answer = app
        .intake(
            json!({"intentId": "i", "userId": "user-123", "images": ["uploads/user-999/a.png"]}),
        )
        .await;
    assert_eq!(status(&answer), 403, "{answer}");
    assert_eq!(answer["field"], "images[0]", "{answer}");
    for (name, payload, field) in &cases {
        let answer = app.intake(payload.clone()).await;
        assert_eq!(status(&answer), 400, "{name}: {answer}");
        assert_eq!(answer["field"], *field, "{name}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .expect("message")
                .starts_with(field),
            "{name}: message should name the field: {answer}"
        );
    }

    let http_bodies: Vec<(&str, Value, &str)> = vec![
        ("malformed JSON", json!("{\"intentId\": "), "body"),
        ("empty body", Value::Null, "body"),
        ("not JSON at all", json!("intentId=1&images=a"), "body"),
    ];
    for (name, raw, field) in http_bodies {
        let mut ev = event("intake-http-api-v2.json");
        ev["body"] = raw;
        let answer = app.intake(ev).await;
        assert_eq!(status(&answer), 400, "{name}: {answer}");
        assert_eq!(body(&answer)["field"], field, "{name}");
    }
    let mut ev = event("intake-http-api-v2.json");
    ev["body"] = json!("not base64 at all!!");
    ev["isBase64Encoded"] = json!(true);
    let answer = app.intake(ev).await;
    assert_eq!(status(&answer), 400, "{answer}");
    assert_eq!(body(&answer)["field"], "body");

    assert!(intents(&app).is_empty(), "bad input must write nothing");
    assert!(published(&app).is_empty(), "bad input must emit nothing");
}

#[tokio::test]
async fn when_body_is_base64_encoded_json_should_be_accepted() {
    use base64::Engine as _;
    let app = app().await;
    let mut ev = event("intake-http-api-v2.json");
    let raw = ev["body"].as_str().expect("body").to_owned();
    ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(raw));
    ev["isBase64Encoded"] = json!(true);
    let answer = app.intake(ev).await;
    assert_eq!(status(&answer), 202, "{answer}");
}

#[tokio::test]
async fn when_announcing_fails_should_answer_503_and_a_retry_re_emits_once() {
    let app = app().await;
    app.bus.fail_next_publishes(1);
    let answer = app.intake(event("intake-direct.json")).await;
    assert_eq!(status(&answer), 503, "{answer}");
    assert!(published(&app).is_empty());
    let stored = intents(&app);
    assert_eq!(
        stored.len(),
        1,
        "the intent is recorded even though the emit failed"
    );
    assert!(stored[0].outbox.is_some(), "the event is owed");

    let retry = app.intake(event("intake-direct.json")).await;
    assert_eq!(status(&retry), 202, "{retry}");
    assert_eq!(retry["cached"], true);
    assert_eq!(published(&app), vec!["BATCH_REQUESTED"]);
    assert!(intents(&app)[0].outbox.is_none());

    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Completed);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test]
async fn when_announcing_fails_and_client_never_retries_should_be_re_announced_by_the_sweep() {
    let app = app().await;
    app.bus.fail_next_publishes(1);
    assert_eq!(status(&app.intake(event("intake-direct.json")).await), 503);
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "the sweep announced the stranded intent"
    );
    assert_eq!(count(&published(&app), "BATCH_REQUESTED"), 1);
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

/// Real parallelism: each intake is its own task on a multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_200_identical_intakes_race_should_make_one_intent_one_event_one_job() {
    // A slow publish keeps the winner's outbox open while the others arrive.
    let app = std::sync::Arc::new(app_with(|o| o.bus.publish_delay_ms = 50).await);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.intake(event("intake-direct.json")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    assert!(answers.iter().all(|a| status(a) == 202), "all accepted");
    let fresh = answers.iter().filter(|a| a["cached"] == false).count();
    assert_eq!(fresh, 1, "exactly one caller created the intent");
    let job_ids: std::collections::HashSet<_> =
        answers.iter().map(|a| a["jobId"].to_string()).collect();
    assert_eq!(job_ids.len(), 1, "every caller got the same jobId");
    assert_eq!(intents(&app).len(), 1);
    assert_eq!(published(&app), vec!["BATCH_REQUESTED"]);
    run(&app).await;
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    assert_eq!(intents(&app)[0].status, IntentStatus::Completed);
}

#[tokio::test]
async fn when_images_are_given_by_day_should_resolve_them_from_the_uploads_prefix() {
    let app = app().await;
    let answer = app
        .intake(json!({"intentId": "by-day", "userId": SAMPLE_USER, "day": "2026-11-28"}))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Completed);
    let keys: Vec<_> = intent.images.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, SAMPLE_KEYS.to_vec());
}

fn get_status(job_id: &str, user: Option<&str>) -> Value {
    let mut ev = event("intake-http-api-v2.json");
    ev["routeKey"] = json!("GET /api/batch/jobs/{jobId}");
    ev["rawPath"] = json!(format!("/api/batch/jobs/{job_id}"));
    ev["requestContext"]["http"]["method"] = json!("GET");
    ev["requestContext"]["http"]["path"] = json!(format!("/api/batch/jobs/{job_id}"));
    ev["requestContext"]["authorizer"] = match user {
        Some(u) => json!({"jwt": {"claims": {"sub": u}, "scopes": null}}),
        None => Value::Null,
    };
    ev["body"] = Value::Null;
    ev
}

#[tokio::test]
async fn when_the_owner_follows_status_url_should_see_status_and_counts_and_others_see_404() {
    let app = app().await;
    let accepted = body(&app.intake(event("intake-http-api-v2.json")).await);
    let job_id = accepted["jobId"].as_str().expect("jobId").to_owned();
    assert!(accepted["statusUrl"]
        .as_str()
        .expect("url")
        .ends_with(&format!("/api/batch/jobs/{job_id}")));

    let answer = app.intake(get_status(&job_id, Some(SAMPLE_USER))).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(body(&answer)["status"], "REQUESTED");

    run(&app).await;
    let answer = app.intake(get_status(&job_id, Some(SAMPLE_USER))).await;
    let view = body(&answer);
    assert_eq!(view["status"], "COMPLETED");
    assert_eq!(view["counts"]["successRecordCount"], 3);
    assert_eq!(view["bedrockJobs"][0]["status"], "Completed");

    let other = app.intake(get_status(&job_id, Some("someone-else"))).await;
    assert_eq!(status(&other), 404, "another user's job looks missing");
    assert_eq!(
        status(
            &app.intake(get_status("bj-000000000000000000000000", Some(SAMPLE_USER)))
                .await
        ),
        404
    );
    assert_eq!(
        status(&app.intake(get_status("../../etc", Some(SAMPLE_USER))).await),
        404
    );
    assert_eq!(status(&app.intake(get_status(&job_id, None)).await), 401);
    assert_eq!(intents(&app).len(), 1, "reads write nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_1000_identical_intakes_storm_should_make_one_intent_one_event_one_job() {
    let app = std::sync::Arc::new(app_with(|o| o.bus.publish_delay_ms = 20).await);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.intake(event("intake-direct.json")).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        let answer = t.await.expect("task");
        assert_eq!(status(&answer), 202, "{answer}");
        fresh += usize::from(answer["cached"] == false);
    }
    assert_eq!(fresh, 1);
    assert_eq!(intents(&app).len(), 1);
    assert_eq!(published(&app), vec!["BATCH_REQUESTED"]);
    run(&app).await;
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_1000_intakes_carry_100_distinct_ids_should_make_exactly_100_of_each() {
    // 100 batches of one user at once: past the open-batches limit's default of 20.
    let app = std::sync::Arc::new(app_with(|o| o.settings.max_open_intents_per_user = 1_000).await);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.intake(direct(&format!("storm-{}", i % 100), &SAMPLE_KEYS))
                    .await
            })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        let answer = t.await.expect("task");
        assert_eq!(status(&answer), 202, "{answer}");
        fresh += usize::from(answer["cached"] == false);
    }
    assert_eq!(fresh, 100);
    assert_eq!(intents(&app).len(), 100);
    assert_eq!(count(&published(&app), "BATCH_REQUESTED"), 100);
    run(&app).await;
    assert_eq!(app.emulator.job_count().expect("jobs"), 100);
    assert!(intents(&app)
        .iter()
        .all(|i| i.status == IntentStatus::Completed));
}

#[tokio::test]
async fn when_a_day_holds_more_images_than_a_request_may_name_should_still_run_them_all() {
    // MAX_IMAGES_PER_INTENT bounds a request's explicit keys; a day has no cap of ours (its
    // records split into as many jobs as Bedrock's quotas need).
    let app = app_with(|o| o.settings.max_images_per_intent = 2).await;
    let answer = app
        .intake(json!({"intentId": "big-day", "userId": SAMPLE_USER, "day": "2026-11-28"}))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let intent = &intents(&app)[0];
    assert_eq!(intent.status, IntentStatus::Completed);
    assert_eq!(intent.images.len(), 3);
    assert_eq!(
        intent.counts.as_ref().expect("counts").success_record_count,
        3
    );
    assert!(
        app.bus.dead_letters(None).expect("dlq").is_empty(),
        "nothing retried into the DLQ"
    );
}

#[tokio::test]
async fn when_the_index_lags_should_answer_the_status_url_at_once_and_list_the_jobs_later() {
    use batch_orchestrator::http_api::http_api_event;
    // An index an hour behind: only a consistent lookup finds a job this early.
    let lag = chrono::Duration::hours(1);
    let app = app_with(|o| {
        o.index_lag = Some(lag);
        o.settings.max_open_intents_per_user = 1_000;
    })
    .await;
    let list = || http_api_event("GET", "/api/batch/jobs", Some(SAMPLE_USER), "");
    for n in 0..100 {
        let request = json!({"intentId": format!("lagging-{n}"), "images": [SAMPLE_KEYS[n % 3]]});
        let post = http_api_event(
            "POST",
            "/api/batch/jobs",
            Some(SAMPLE_USER),
            &request.to_string(),
        );
        let accepted = body(&app.intake(post).await);
        let url = accepted["statusUrl"].as_str().expect("statusUrl");
        let path = &url[url.find("/api/").expect("path")..];
        let answer = app
            .intake(http_api_event("GET", path, Some(SAMPLE_USER), ""))
            .await;
        assert_eq!(
            status(&answer),
            200,
            "GET {path} right after its 202: {answer}"
        );
        assert_eq!(body(&answer)["jobId"], accepted["jobId"]);
        assert_eq!(body(&answer)["status"], "REQUESTED");
    }
    let early = body(&app.intake(list()).await);
    assert_eq!(early["jobs"], json!([]), "the index really lags: {early}");

    app.manual_clock().expect("manual clock").advance(lag);
    let caught_up = body(&app.intake(list()).await);
    assert_eq!(
        caught_up["jobs"].as_array().expect("jobs").len(),
        20,
        "{caught_up}"
    );
}
