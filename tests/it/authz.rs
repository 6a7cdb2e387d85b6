//! Authorization and the lifecycle routes behind `statusUrl`: a user can neither read, list,
//! cancel nor include in a batch anything of another user's; cancel works before submission
//! and on running jobs, and is idempotent.

use crate::common::*;
use serde_json::{json, Value};
use shared::domain::status::IntentStatus;
use shared::ports::BatchInference as _;
use shared::topology::Queue;

fn api(method: &str, path: &str, user: &str, query: Value, body: Option<Value>) -> Value {
    let mut ev = event("intake-http-api-v2.json");
    ev["routeKey"] = json!(format!("{method} {path}"));
    ev["rawPath"] = json!(path);
    ev["requestContext"]["http"]["method"] = json!(method);
    ev["requestContext"]["http"]["path"] = json!(path);
    ev["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": user}, "scopes": null}});
    set_query(&mut ev, query);
    ev["body"] = body.map(|b| json!(b.to_string())).unwrap_or(Value::Null);
    ev
}

async fn create(app: &TestApp, user: &str, intent: &str, keys: &[&str]) -> String {
    let answer = app
        .intake(api(
            "POST",
            "/api/batch/jobs",
            user,
            Value::Null,
            Some(json!({"intentId": intent, "images": keys})),
        ))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    body(&answer)["jobId"].as_str().expect("jobId").to_owned()
}

#[tokio::test]
async fn when_another_user_tries_should_not_read_list_cancel_or_include_anything() {
    let app = app().await;
    let theirs = create(&app, SAMPLE_USER, "owner-1", &SAMPLE_KEYS).await;
    let mallory = "mallory";
    let path = format!("/api/batch/jobs/{theirs}");

    let read = app
        .intake(api("GET", &path, mallory, Value::Null, None))
        .await;
    assert_eq!(status(&read), 404, "{read}");
    // Once the list's index caught up (it may lag), the owner's job is there and not mallory's.
    app.manual_clock().expect("clock").advance(INDEX_LAG);
    let own = body(
        &app.intake(api(
            "GET",
            "/api/batch/jobs",
            SAMPLE_USER,
            Value::Null,
            None,
        ))
        .await,
    );
    assert_eq!(own["jobs"][0]["jobId"], json!(theirs), "{own}");
    let list = body(
        &app.intake(api("GET", "/api/batch/jobs", mallory, Value::Null, None))
            .await,
    );
    assert_eq!(
        list["jobs"],
        json!([]),
        "mallory's list holds none of the owner's jobs"
    );
    let cancel = app
        .intake(api("DELETE", &path, mallory, Value::Null, None))
        .await;
    assert_eq!(status(&cancel), 404, "{cancel}");
    let include = app
        .intake(api(
            "POST",
            "/api/batch/jobs",
            mallory,
            Value::Null,
            Some(json!({"intentId": "m-1", "images": [SAMPLE_KEYS[0]]})),
        ))
        .await;
    assert_eq!(status(&include), 403, "another user's key is forbidden");
    assert_eq!(body(&include)["field"], "images[0]");
    // A userId in the body does not help when claims are present.
    let spoof = app
        .intake(api(
            "POST",
            "/api/batch/jobs",
            mallory,
            Value::Null,
            Some(json!({"intentId": "m-2", "userId": SAMPLE_USER, "images": [SAMPLE_KEYS[0]]})),
        ))
        .await;
    assert_eq!(status(&spoof), 403, "{spoof}");

    run(&app).await;
    let owner = intents(&app)
        .into_iter()
        .find(|i| i.client_id().as_str() == "owner-1")
        .expect("owner's");
    assert_eq!(
        owner.status,
        IntentStatus::Completed,
        "mallory's cancel changed nothing"
    );
    assert_eq!(intents(&app).len(), 1, "mallory created nothing");
}

#[tokio::test]
async fn when_listing_should_page_newest_first_with_an_opaque_cursor_and_filter_by_status() {
    let app = app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&app, SAMPLE_USER, &format!("list-{i}"), &SAMPLE_KEYS[..1]).await);
        app.manual_clock()
            .expect("clock")
            .advance(chrono::Duration::seconds(1));
    }
    // The list reads an index, which may lag (documented): list once it caught up.
    app.manual_clock().expect("clock").advance(INDEX_LAG);
    let first = body(
        &app.intake(api(
            "GET",
            "/api/batch/jobs",
            SAMPLE_USER,
            json!({"limit": "2"}),
            None,
        ))
        .await,
    );
    let page1: Vec<&str> = first["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jobId"].as_str().expect("id"))
        .collect();
    assert_eq!(
        page1,
        vec![ids[4].as_str(), ids[3].as_str()],
        "newest first"
    );
    let cursor = first["nextCursor"].as_str().expect("cursor").to_owned();
    let second = body(
        &app.intake(api(
            "GET",
            "/api/batch/jobs",
            SAMPLE_USER,
            json!({"limit": "2", "cursor": cursor}),
            None,
        ))
        .await,
    );
    let page2: Vec<&str> = second["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jobId"].as_str().expect("id"))
        .collect();
    assert_eq!(page2, vec![ids[2].as_str(), ids[1].as_str()]);
    let third = body(
        &app.intake(api(
            "GET",
            "/api/batch/jobs",
            SAMPLE_USER,
            json!({"limit": "2", "cursor": second["nextCursor"]}),
            None,
        ))
        .await,
    );
    assert_eq!(third["jobs"].as_array().expect("jobs").len(), 1);
    assert!(third.get("nextCursor").is_none(), "last page has no cursor");

    // Cancel one, then filter.
    let cancelled = app
        .intake(api(
            "DELETE",
            &format!("/api/batch/jobs/{}", ids[0]),
            SAMPLE_USER,
            Value::Null,
            None,
        ))
        .await;
    assert_eq!(body(&cancelled)["status"], "CANCELLED");
    app.manual_clock().expect("clock").advance(INDEX_LAG);
    let only = body(
        &app.intake(api(
            "GET",
            "/api/batch/jobs",
            SAMPLE_USER,
            json!({"status": "CANCELLED"}),
            None,
        ))
        .await,
    );
    let only: Vec<&str> = only["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jobId"].as_str().expect("id"))
        .collect();
    assert_eq!(only, vec![ids[0].as_str()]);

    for (query, field) in [
        (json!({"limit": "0"}), "limit"),
        (json!({"limit": "many"}), "limit"),
        (json!({"status": "DONE"}), "status"),
        (json!({"cursor": "not-a-cursor"}), "cursor"),
    ] {
        let answer = app
            .intake(api(
                "GET",
                "/api/batch/jobs",
                SAMPLE_USER,
                query.clone(),
                None,
            ))
            .await;
        assert_eq!(status(&answer), 400, "{query}");
        assert_eq!(body(&answer)["field"], field, "{query}");
    }
}

#[tokio::test]
async fn when_cancelled_before_submission_should_submit_nothing_and_be_idempotent() {
    let app = app().await;
    let job = create(&app, SAMPLE_USER, "cancel-early", &SAMPLE_KEYS).await;
    // The manifest is built, the submitter has not run yet.
    app.deliver(Queue::ManifestBuilder).await.expect("manifest");
    let path = format!("/api/batch/jobs/{job}");
    for _ in 0..2 {
        let answer = app
            .intake(api("DELETE", &path, SAMPLE_USER, Value::Null, None))
            .await;
        assert_eq!(status(&answer), 202, "{answer}");
        assert_eq!(body(&answer)["status"], "CANCELLED");
    }
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Cancelled);
    assert_eq!(
        app.emulator.job_count().expect("jobs"),
        0,
        "nothing was submitted"
    );
    assert_eq!(count(&published(&app), "BATCH_FAILED"), 1);
}

#[tokio::test]
async fn when_a_running_job_is_cancelled_should_stop_it_and_keep_partial_results() {
    let app = app_with(|o| o.reconcile_when_idle = false).await;
    let job = create(&app, SAMPLE_USER, "cancel-running", &SAMPLE_KEYS).await;
    // Up to IN_PROGRESS: manifest, submit, then Bedrock's Validating, Scheduled, InProgress.
    for _ in 0..3 {
        app.step().await.expect("step");
    }
    app.deliver(Queue::StatusWatcher).await.expect("watcher");
    let intent = intents(&app)[0].clone();
    assert_eq!(intent.status, IntentStatus::InProgress, "{intent:?}");
    let path = format!("/api/batch/jobs/{job}");
    for _ in 0..2 {
        let answer = app
            .intake(api("DELETE", &path, SAMPLE_USER, Value::Null, None))
            .await;
        assert_eq!(status(&answer), 202, "{answer}");
    }
    run(&app).await;
    let end = &intents(&app)[0];
    assert_eq!(end.status, IntentStatus::Stopped);
    assert!(end.cancel_requested_at.is_some());
    let arn = end.jobs[0].arn.clone().expect("arn");
    assert_eq!(
        app.emulator.get_job(&arn).await.expect("job").status,
        shared::domain::status::BedrockJobStatus::Stopped
    );
    let results = results(&app, end).await;
    assert_eq!(results.len(), 3, "every image accounted for");
    assert!(
        results
            .iter()
            .any(|r| r.error_code.as_deref() == Some("no_output")),
        "unprocessed records say so"
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
}

#[tokio::test]
async fn when_cancel_lands_while_the_submitter_creates_should_stop_the_new_job() {
    let app = app().await;
    let job = create(&app, SAMPLE_USER, "cancel-race", &SAMPLE_KEYS).await;
    app.deliver(Queue::ManifestBuilder).await.expect("manifest");
    // A submitter created the job and died before recording its ARN; then the owner cancels.
    // Bedrock's first event about the orphan leads the status watcher to stop it.
    let intent = intents(&app)[0].clone();
    let j = &intent.jobs[0];
    let s = &app.deps.settings;
    let arn = app
        .emulator
        .create_job(&shared::domain::bedrock::CreateJobRequest {
            job_name: j.job_name.clone(),
            client_request_token: j.client_token.clone(),
            role_arn: s.bedrock_role_arn.clone(),
            model_id: intent.model_id.clone(),
            input: j.input.clone(),
            output: j.output.clone(),
            timeout_hours: 24,
            tags: vec![],
        })
        .await
        .expect("create");
    let answer = app
        .intake(api(
            "DELETE",
            &format!("/api/batch/jobs/{job}"),
            SAMPLE_USER,
            Value::Null,
            None,
        ))
        .await;
    assert_eq!(body(&answer)["status"], "CANCELLED");
    run(&app).await;
    assert_eq!(intents(&app)[0].status, IntentStatus::Cancelled);
    let status = app.emulator.get_job(&arn).await.expect("job").status;
    assert!(
        matches!(status, shared::domain::status::BedrockJobStatus::Stopped),
        "the orphan job must be stopped, is {status}"
    );
}

/// Another user's keys: the same file names under their own upload prefix.
fn keys_of(user: &str) -> Vec<String> {
    SAMPLE_KEYS
        .iter()
        .map(|k| k.replacen(SAMPLE_USER, user, 1))
        .collect()
}

#[tokio::test]
async fn when_two_users_send_the_same_intent_id_should_make_two_independent_intents() {
    let app = app().await;
    let other = "user-456";
    let other_keys = keys_of(other);
    let other_keys: Vec<&str> = other_keys.iter().map(String::as_str).collect();
    let mine = create(&app, SAMPLE_USER, "photos-1", &SAMPLE_KEYS).await;
    // The other user's request with the same intentId and a different payload is not a 409:
    // it is their own intent, and the answer says nothing about the first user's.
    let request = api(
        "POST",
        "/api/batch/jobs",
        other,
        Value::Null,
        Some(json!({"intentId": "photos-1", "images": other_keys})),
    );
    let answer = app.intake(request.clone()).await;
    assert_eq!(status(&answer), 202, "{answer}");
    let theirs = body(&answer);
    assert_ne!(theirs["jobId"], json!(mine), "{theirs}");
    assert_eq!(theirs["intentId"], json!("photos-1"));
    assert_eq!(
        theirs["cached"],
        json!(false),
        "not a replay of another user's"
    );
    assert_eq!(intents(&app).len(), 2, "two intents");

    // A replay is recognised for its own user only.
    let replay = app.intake(request).await;
    assert_eq!(body(&replay)["jobId"], theirs["jobId"]);
    assert_eq!(body(&replay)["cached"], json!(true));
    assert_eq!(intents(&app).len(), 2, "the replay made nothing");
    // Each user sees only their own job under that intentId.
    let view = body(
        &app.intake(api(
            "GET",
            &format!("/api/batch/jobs/{mine}"),
            SAMPLE_USER,
            Value::Null,
            None,
        ))
        .await,
    );
    assert_eq!(view["intentId"], json!("photos-1"), "{view}");
    assert_eq!(view["images"], json!(3), "{view}");
}

#[tokio::test]
async fn when_an_item_predates_scoped_keys_should_replay_it_for_its_owner_only() {
    use shared::app::intake::{parse_request, Caller};
    use shared::domain::ids::{IntentId, UserId};
    use shared::domain::intent::BatchIntent;
    let app = app().await;
    // An item as written before keys were scoped: stored under the bare intentId.
    let user = UserId::parse(SAMPLE_USER).expect("user");
    let request = json!({"intentId": "legacy-1", "images": SAMPLE_KEYS}).to_string();
    let mut old = parse_request(
        &app.deps.settings,
        &Caller::User(user),
        request.as_bytes(),
        None,
    )
    .expect("valid");
    old.intent_id = IntentId::parse("legacy-1").expect("id");
    old.client_intent_id = None;
    let old = BatchIntent::new(old, app.deps.clock.now(), 30);
    app.deps.store.create(&old).await.expect("stored");

    let replay = body(
        &app.intake(api(
            "POST",
            "/api/batch/jobs",
            SAMPLE_USER,
            Value::Null,
            Some(json!({"intentId": "legacy-1", "images": SAMPLE_KEYS})),
        ))
        .await,
    );
    assert_eq!(replay["jobId"], json!(old.job_id.to_string()), "{replay}");
    assert_eq!(replay["cached"], json!(true));
    assert_eq!(intents(&app).len(), 1, "no second intent, so no second job");

    let other_keys = keys_of("user-456");
    let answer = app
        .intake(api(
            "POST",
            "/api/batch/jobs",
            "user-456",
            Value::Null,
            Some(json!({"intentId": "legacy-1", "images": other_keys})),
        ))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    assert_ne!(body(&answer)["jobId"], json!(old.job_id.to_string()));
    assert_eq!(intents(&app).len(), 2, "another user's intent of its own");
}
