//! The AWS edge end to end, through the real SDK over HTTP: DynamoDB, S3, SQS and EventBridge
//! on moto server, Bedrock on the project's control-plane emulator. Intents go in through the
//! HTTP-wrapped intake handler; a local driver plays Lambda's SQS event source mappings.
//!
//! `scripts/test.sh` starts moto and sets `BO_AWS_ENDPOINT`; run alone without it, these tests
//! say so and pass only if `BO_REQUIRE_AWS_TESTS` is unset (CI sets it).

use batch_orchestrator::bedrock_server;
use batch_orchestrator::local_aws::{
    create_resources, local_clients, valid_prefix, Driver, LocalStack,
};
use batch_orchestrator::samples::receipt_png;
use serde_json::{json, Value};
use shared::adapters::aws::sqs::SqsQueues;
use shared::adapters::aws::AwsClients;
use shared::adapters::clock::SystemClock;
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use shared::adapters::embedded::bedrock_emulator::{BedrockEmulator, EmulatorOptions};
use shared::adapters::embedded::db::Db;
use shared::app::Deps;
use shared::domain::bedrock::S3Uri;
use shared::domain::ids::{IntentId, ObjectKey, UserId};
use shared::domain::status::IntentStatus;
use shared::topology::Queue;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Env {
    stack: LocalStack,
    clients: AwsClients,
    deps: Deps,
    api: String,
    bedrock: String,
    http: reqwest::Client,
    key: Arc<intake::LocalKey>,
    _key_dir: tempfile::TempDir,
}

use crate::common::aws_endpoint as endpoint;

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn setup(aws: &str, name: &str, max_receive_count: u32) -> Env {
    setup_with(aws, name, max_receive_count, |_, _| {}).await
}

/// [`setup`], with the stack's settings and the Bedrock emulator's options changed first.
async fn setup_with(
    aws: &str,
    name: &str,
    max_receive_count: u32,
    configure: impl FnOnce(&mut shared::domain::settings::Settings, &mut EmulatorOptions),
) -> Env {
    let prefix = valid_prefix(&format!(
        "{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let mut stack = LocalStack::named(&prefix);
    stack.settings.quotas.min_records_per_job = 1;
    // Jobs of their own from the minimum (the tests' few images), as tests/common sets it.
    stack.settings.pool_below_records = 0;
    // The Bedrock emulator: its own state, reading and writing S3 and publishing to the
    // default bus on moto, through the same adapters the functions use.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bedrock = format!("http://{}", listener.local_addr().expect("addr"));
    let clients = local_clients(aws, &bedrock).await;
    create_resources(&clients, &stack, max_receive_count, 1)
        .await
        .expect("resources");
    let mut opts = EmulatorOptions::new(stack.settings.quotas.clone());
    opts.account = "123456789012".into();
    configure(&mut stack.settings, &mut opts);
    opts.quotas = stack.settings.quotas.clone();
    let deps = clients.deps(&stack.config());
    let emulator = Arc::new(
        BedrockEmulator::new(
            Db::in_memory().expect("db"),
            deps.objects.clone(),
            Arc::new(shared::adapters::aws::eventbridge::EventBridgeBus::new(
                clients.eventbridge.clone(),
                "default",
            )),
            Arc::new(SystemClock),
            opts,
        )
        .expect("emulator"),
    );
    tokio::spawn(bedrock_server::serve(
        listener,
        emulator,
        Duration::from_millis(100),
    ));
    let key_dir = tempfile::tempdir().expect("key dir");
    let key = Arc::new(intake::LocalKey::load_or_create(key_dir.path()).expect("key"));
    let api = serve(intake::router(
        deps.clone(),
        intake::Auth::LocalJwt(key.clone()),
    ))
    .await;
    Env {
        stack,
        clients,
        deps,
        api,
        bedrock,
        http: crate::common::http(),
        key,
        _key_dir: key_dir,
    }
}

impl Env {
    async fn upload(&self, user: &str, n: usize) -> Vec<String> {
        let mut keys = Vec::new();
        for i in 0..n {
            let key = format!("uploads/{user}/2026-11-28/r{i}.png");
            let uri = S3Uri::object(
                &self.stack.settings.uploads_bucket,
                &ObjectKey::parse(&key).expect("key"),
            );
            self.deps
                .objects
                .put(&uri, receipt_png(i))
                .await
                .expect("upload");
            keys.push(key);
        }
        keys
    }

    async fn post(&self, user: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/batch/jobs", self.api))
            .bearer_auth(
                self.key
                    .sign(&UserId::parse(user).expect("user"), 600)
                    .expect("token"),
            )
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON answer"))
    }

    async fn status(&self, intent: &str) -> IntentStatus {
        let id = stored_key(intent);
        self.deps
            .store
            .get(&id)
            .await
            .expect("get")
            .expect("stored")
            .status
    }

    async fn bedrock_jobs(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/_emulator/jobs", self.bedrock))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        v["jobs"].as_u64().expect("count")
    }

    /// Polls every queue until `done` holds or the deadline passes.
    async fn drive(&self, driver: &Driver, deadline: Duration, done: impl AsyncFnCheck) {
        let start = Instant::now();
        while start.elapsed() < deadline {
            driver.poll_once().await.expect("poll");
            if done.check(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pipeline did not finish within {deadline:?}");
    }
}

/// A condition the driver loop waits for.
trait AsyncFnCheck {
    async fn check(&self, env: &Env) -> bool;
}

/// The key user-1's intent `id` is stored under (keys are scoped per user).
fn stored_key(id: &str) -> IntentId {
    IntentId::scoped(
        &UserId::parse("user-1").expect("user"),
        &IntentId::parse(id).expect("id"),
    )
}

struct AllTerminal(Vec<String>);

impl AsyncFnCheck for AllTerminal {
    async fn check(&self, env: &Env) -> bool {
        for id in &self.0 {
            if !env.status(id).await.is_terminal() {
                return false;
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_intents_flow_through_aws_services_should_complete_once_each_despite_duplicate_delivery(
) {
    let Some(aws) = endpoint() else { return };
    let env = setup(&aws, "e2e", 3).await;
    // Three photos of its own for each intent: the same photo in two intents is answered
    // once, with no job of the second's (tests/it/duplicates.rs).
    let all = env.upload("user-1", 9).await;
    let keys_of = |i: usize| all[3 * i..3 * i + 3].to_vec();
    let keys = keys_of(0);
    let intents: Vec<String> = (0..3).map(|i| format!("aws-intent-{i}")).collect();
    for (i, id) in intents.iter().enumerate() {
        let (status, body) = env
            .post("user-1", json!({"intentId": id, "images": keys_of(i)}))
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["cached"], false, "{body}");
    }
    let (status, body) = env
        .post("user-1", json!({"intentId": intents[0], "images": keys}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["cached"], true, "a retry is answered from DynamoDB");
    let (status, body) = env
        .post(
            "user-1",
            json!({"intentId": intents[0], "images": [keys[0]]}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = env
        .post(
            "user-1",
            json!({"intentId": "x", "images": ["uploads/user-2/a.png"]}),
        )
        .await;
    assert_eq!(status, 403, "another user's key: {body}");
    assert_eq!(body["field"], "images[0]");

    let driver = Driver::new(env.deps.clone(), &env.clients, &env.stack, true)
        .await
        .expect("driver");
    env.drive(
        &driver,
        Duration::from_secs(90),
        AllTerminal(intents.clone()),
    )
    .await;

    for id in &intents {
        let intent = env
            .deps
            .store
            .get(&stored_key(id))
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(intent.status, IntentStatus::Completed, "{id}");
        let counts = intent.counts.expect("counts");
        assert_eq!(
            (counts.total_record_count, counts.success_record_count),
            (3, 3),
            "{id}"
        );
        let results = env
            .deps
            .results
            .list_results(&intent.intent_id, None, 100)
            .await
            .expect("results");
        assert_eq!(results.len(), 3, "{id}: a result per image in DynamoDB");
        assert!(results.iter().all(|r| r.receipt.is_some()));
        // The lookups the watcher and status API use work against DynamoDB.
        let arn = intent.jobs[0].arn.clone().expect("arn");
        let by_arn = env
            .deps
            .store
            .get_by_bedrock_arn(&arn)
            .await
            .expect("by arn")
            .expect("found");
        assert_eq!(by_arn.intent_id, intent.intent_id);
        let by_job = env
            .deps
            .store
            .get_by_job_id(&intent.job_id)
            .await
            .expect("by job")
            .expect("found");
        assert_eq!(by_job.intent_id, intent.intent_id);
        assert!(intent.outbox.is_none(), "every owed event published");
    }
    assert_eq!(
        env.bedrock_jobs().await,
        3,
        "exactly one Bedrock job per intent though every message ran twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_a_poison_message_shares_a_batch_should_dead_letter_alone_and_replay_once_fixed() {
    let Some(aws) = endpoint() else { return };
    let env = setup(&aws, "dlq", 2).await;
    let sqs = SqsQueues::new(env.clients.sqs.clone());
    let manifest_url = sqs
        .queue_url(env.stack.queue_name(Queue::ManifestBuilder))
        .await
        .expect("url");
    let manifest_dlq = sqs
        .queue_url(env.stack.dlq_name(Queue::ManifestBuilder))
        .await
        .expect("url");
    let submitter_url = sqs
        .queue_url(env.stack.queue_name(Queue::Submitter))
        .await
        .expect("url");
    let submitter_dlq = sqs
        .queue_url(env.stack.dlq_name(Queue::Submitter))
        .await
        .expect("url");

    // Bedrock refuses every create until "fixed": the submit message dead-letters.
    let faults: Vec<&str> = vec!["Transient"; 50];
    env.http
        .post(format!("{}/_emulator/create-faults", env.bedrock))
        .json(&faults)
        .send()
        .await
        .expect("faults");
    let keys = env.upload("user-1", 2).await;
    sqs.send(&manifest_url, "poison: not an EventBridge envelope")
        .await
        .expect("send");
    let (status, _) = env
        .post("user-1", json!({"intentId": "neighbour", "images": keys}))
        .await;
    assert_eq!(status, 202);

    let driver = Driver::new(env.deps.clone(), &env.clients, &env.stack, false)
        .await
        .expect("driver");
    let start = Instant::now();
    loop {
        driver.poll_once().await.expect("poll");
        let parked = sqs.depth(&manifest_dlq).await.expect("depth") == 1
            && sqs.depth(&submitter_dlq).await.expect("depth") == 1;
        if parked {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "messages did not reach the DLQs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        env.status("neighbour").await,
        IntentStatus::ManifestReady,
        "the neighbour got past the poison"
    );
    assert_eq!(env.bedrock_jobs().await, 0);

    // Fix Bedrock, replay: a dry run first moves nothing.
    env.http
        .post(format!("{}/_emulator/create-faults", env.bedrock))
        .json(&Vec::<String>::new())
        .send()
        .await
        .expect("clear faults");
    let dry = sqs
        .replay_dlq(&submitter_dlq, &submitter_url, 10, true)
        .await
        .expect("dry run");
    assert_eq!(dry.moved.len(), 1);
    assert_eq!(
        sqs.depth(&submitter_dlq).await.expect("depth"),
        1,
        "a dry run moves nothing"
    );
    let moved = sqs
        .replay_dlq(&submitter_dlq, &submitter_url, 10, false)
        .await
        .expect("replay");
    assert_eq!((moved.moved.len(), moved.failed), (1, 0));
    assert_eq!(sqs.depth(&submitter_dlq).await.expect("depth"), 0);

    env.drive(
        &driver,
        Duration::from_secs(60),
        AllTerminal(vec!["neighbour".into()]),
    )
    .await;
    assert_eq!(env.status("neighbour").await, IntentStatus::Completed);
    assert_eq!(env.bedrock_jobs().await, 1);
    // The poison is still poison: it stays parked.
    assert_eq!(sqs.depth(&manifest_dlq).await.expect("depth"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_1000_identical_intakes_storm_dynamodb_should_make_one_intent_one_event_one_job() {
    let Some(aws) = endpoint() else { return };
    let env = Arc::new(setup(&aws, "storm", 3).await);
    let keys = env.upload("user-1", 1).await;
    let body = json!({"intentId": "storm-1", "images": keys}).to_string();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let env = env.clone();
            let body = body.clone();
            tokio::spawn(async move {
                // The client contract: a 503 (the store briefly unavailable, which moto can be
                // under 1,000 concurrent callers) is retried with the same intentId.
                let mut answer = Value::Null;
                for attempt in 0..5u64 {
                    let ev = batch_orchestrator::http_api::http_api_event(
                        "POST",
                        "/api/batch/jobs",
                        Some("user-1"),
                        &body,
                    );
                    let request = serde_json::from_value(ev).expect("an HTTP API event");
                    let response = intake::http::answer(
                        &intake::router(env.deps.clone(), intake::Auth::Authorizer),
                        request,
                    )
                    .await;
                    answer = serde_json::to_value(response).expect("a proxy response");
                    if answer["statusCode"] != 503 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                }
                answer
            })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        let answer = t.await.expect("task");
        assert_eq!(answer["statusCode"], 202, "{answer}");
        let b: Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("json");
        fresh += usize::from(b["cached"] == false);
    }
    assert_eq!(fresh, 1, "one conditional create won");
    let sqs = SqsQueues::new(env.clients.sqs.clone());
    let url = sqs
        .queue_url(env.stack.queue_name(Queue::ManifestBuilder))
        .await
        .expect("url");
    assert_eq!(
        sqs.depth(&url).await.expect("depth"),
        1,
        "one BATCH_REQUESTED reached the queue"
    );
    let scan = env
        .clients
        .dynamodb
        .scan()
        .table_name(&env.stack.intents_table)
        .send()
        .await
        .expect("scan");
    let intent_items = scan
        .items()
        .iter()
        .filter(|i| {
            i.get("intentId")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|k| !k.contains('#'))
        })
        .count();
    assert_eq!(
        intent_items, 1,
        "one intent item (beside its jobId pointer)"
    );
    let (limits, rest): (Vec<_>, Vec<_>) = scan.items().iter().partition(|i| {
        i.get("intentId")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|k| k.starts_with("limit#"))
    });
    assert_eq!(rest.len(), 2, "the intent and its jobId pointer");
    assert_eq!(
        limits.len(),
        2,
        "the user's open-intents and images-of-the-day counters"
    );
    let open = limits
        .iter()
        .find_map(|i| i.get("open").and_then(|v| v.as_ss().ok()))
        .expect("the open set");
    assert_eq!(open.len(), 1, "one open place for the one intent: {open:?}");
    let driver = Driver::new(env.deps.clone(), &env.clients, &env.stack, false)
        .await
        .expect("driver");
    env.drive(
        &driver,
        Duration::from_secs(60),
        AllTerminal(vec!["storm-1".into()]),
    )
    .await;
    assert_eq!(env.bedrock_jobs().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_records_run_on_demand_should_invoke_the_model_through_bedrock_runtime() {
    let Some(aws) = endpoint() else { return };
    let env = setup(&aws, "ondemand", 3).await;
    let model = env.stack.settings.allowed_models[0].clone();
    let body = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a receipt"}]}]
    });
    // The adapter the functions use, over HTTP to the emulator's InvokeModel route.
    let out = env
        .deps
        .on_demand
        .invoke(&model, &body)
        .await
        .expect("InvokeModel");
    let text = out["content"][0]["text"].as_str().expect("text");
    assert!(
        shared::domain::results::parse_receipt(text).is_some(),
        "{out}"
    );
    assert!(out["usage"]["input_tokens"].as_u64().expect("tokens") > 0);
    // A refused body is a validation error, never retried.
    let err = env
        .deps
        .on_demand
        .invoke(&model, &json!({"prompt": "no messages"}))
        .await
        .expect_err("refused");
    assert_eq!(err.kind, shared::ports::ErrorKind::Validation, "{err}");
    let _ = (&env.bedrock, &env.clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_objects_stream_copy_and_index_on_aws_should_round_trip_through_the_sdk() {
    let Some(aws) = endpoint() else { return };
    let env = setup(&aws, "objects", 3).await;
    let bucket = env.stack.settings.manifests_bucket.clone();
    let uri = |k: &str| S3Uri::object(&bucket, &ObjectKey::parse(k).expect("key"));

    // 20 MiB through the streaming writer: three multipart parts, in uneven writes.
    let body: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut w = env
        .deps
        .objects
        .writer(&uri("big/part.jsonl"))
        .await
        .expect("writer");
    for chunk in body.chunks(3 * 1024 * 1024 + 17) {
        w.write(chunk).await.expect("write");
    }
    assert_eq!(w.finish().await.expect("finish"), body.len() as u64);
    assert_eq!(
        env.deps
            .objects
            .get(&uri("big/part.jsonl"))
            .await
            .expect("get"),
        body
    );
    // A small one is a single put; an aborted one never appears.
    let mut w = env
        .deps
        .objects
        .writer(&uri("small.jsonl"))
        .await
        .expect("writer");
    w.write(b"{}\n").await.expect("write");
    w.finish().await.expect("finish");
    let mut w = env
        .deps
        .objects
        .writer(&uri("gone.jsonl"))
        .await
        .expect("writer");
    w.write(&body[..9 * 1024 * 1024]).await.expect("write");
    w.abort().await;
    assert!(env.deps.objects.get(&uri("gone.jsonl")).await.is_err());

    // Lines stream from the S3 body.
    env.deps
        .objects
        .put(&uri("lines.jsonl"), b"{\"a\":1}\n{\"b\":2}".to_vec())
        .await
        .expect("put");
    let lines: Vec<String> = futures::StreamExt::collect::<Vec<_>>(
        env.deps
            .objects
            .lines(&uri("lines.jsonl"))
            .await
            .expect("lines"),
    )
    .await
    .into_iter()
    .map(|l| l.expect("line"))
    .collect();
    assert_eq!(lines, vec!["{\"a\":1}", "{\"b\":2}"]);

    // Head: the first bytes and the whole size; copy: a key that needs encoding.
    let (head, size) = env
        .deps
        .objects
        .head(&uri("big/part.jsonl"), 16)
        .await
        .expect("head");
    assert_eq!((head.as_slice(), size), (&body[..16], body.len() as u64));
    env.deps
        .objects
        .copy(&uri("small.jsonl"), &uri("copies/a b+c%.jsonl"))
        .await
        .expect("copy");
    assert_eq!(
        env.deps
            .objects
            .get(&uri("copies/a b+c%.jsonl"))
            .await
            .expect("get"),
        b"{}\n"
    );

    // The uploads index on DynamoDB: recording twice is recording once.
    let up = shared::domain::uploads::Upload::from_key("uploads/u-1/2026-11-28/a.png", 5, "e")
        .expect("upload");
    env.deps.uploads.record(&up).await.expect("record");
    env.deps.uploads.record(&up).await.expect("record again");
    let day = up.day;
    assert_eq!(
        env.deps
            .uploads
            .uploads(&up.user_id, day)
            .await
            .expect("query"),
        vec![up.clone()]
    );
    assert_eq!(
        env.deps.uploads.users(day).await.expect("users"),
        vec![up.user_id.clone()]
    );

    // The sharded listing over S3 finds every key once.
    for name in ["0", "4", "4a", "Zz", "a", "~x"] {
        env.deps
            .objects
            .put(&uri(&format!("shards/{name}")), b"x".to_vec())
            .await
            .expect("put");
    }
    let listed = shared::app::uploads::list_sharded(&env.deps, &bucket, "shards/")
        .await
        .expect("list");
    let names: Vec<&str> = listed
        .iter()
        .map(|k| k.as_str().trim_start_matches("shards/"))
        .collect();
    assert_eq!(names, vec!["0", "4", "4a", "Zz", "a", "~x"]);
}

/// One run of a Bedrock fault through the SDK: `images` receipts, one intent, driven (with a
/// reconciler pass each round, as its schedule would) until it ends. Returns the intent, the
/// Bedrock jobs made, and every DLQ's depth.
async fn run_fault(
    aws: &str,
    fault: Option<BedrockFault>,
    images: usize,
    min: u64,
) -> (shared::domain::intent::BatchIntent, u64, u64) {
    let name = fault.map_or("lost-event".to_owned(), |f| f.to_string());
    let env = setup_with(aws, &name[..name.len().min(12)], 3, |s, o| {
        s.quotas.min_records_per_job = min;
        s.create_backoff_secs = 1;
        match fault {
            Some(f) => o.faults = vec![f],
            // No fault: Bedrock's events are lost instead, so only a poll finds the end.
            None => o.emit_events = false,
        }
    })
    .await;
    let keys = env.upload("user-1", images).await;
    let (status, body) = env
        .post("user-1", json!({"intentId": "faulty", "images": keys}))
        .await;
    assert_eq!(status, 202, "{body}");
    let driver = Driver::new(env.deps.clone(), &env.clients, &env.stack, false)
        .await
        .expect("driver");
    let start = Instant::now();
    while !env.status("faulty").await.is_terminal() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{name}: did not end"
        );
        driver.poll_once().await.expect("poll");
        reconciler::handle(&env.deps, json!({}))
            .await
            .expect("reconcile");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let sqs = SqsQueues::new(env.clients.sqs.clone());
    let mut dead = 0;
    for q in Queue::ALL {
        let url = sqs.queue_url(env.stack.dlq_name(q)).await.expect("url");
        dead += sqs.depth(&url).await.expect("depth");
    }
    let intent = env
        .deps
        .store
        .get(&stored_key("faulty"))
        .await
        .expect("get")
        .expect("stored");
    let cap = env
        .stack
        .settings
        .quotas_for(&intent.model_id)
        .max_concurrent_jobs;
    let held = env
        .deps
        .slots
        .held(intent.model_id.as_str(), cap)
        .await
        .expect("held");
    assert_eq!(held, 0, "{name}: every slot free");
    (intent, env.bedrock_jobs().await, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_bedrock_fails_as_it_really_does_through_the_sdk_should_close_every_loop() {
    let Some(aws) = endpoint() else { return };
    // Completed with 5% error lines: 20 records, 1 error line, PARTIALLY_COMPLETED.
    let (i, jobs, dead) = run_fault(&aws, Some(BedrockFault::CompletedWithErrors), 20, 1).await;
    assert_eq!(
        (i.status, jobs, dead),
        (IntentStatus::PartiallyCompleted, 1, 0)
    );
    let c = i.counts.expect("counts");
    assert_eq!((c.success_record_count, c.error_record_count), (19, 1));
    // Half expired: the other half in a second batch job of at least the minimum.
    let (i, jobs, dead) = run_fault(&aws, Some(BedrockFault::ExpireHalf), 4, 2).await;
    assert_eq!((i.status, jobs, dead), (IntentStatus::Completed, 2, 0));
    assert_eq!(i.jobs[1].rerun_of, Some(1));
    assert!(i.jobs[1].records() >= 2);
    // Access denied: FAILED at once, naming the permission; nothing created.
    let (i, jobs, dead) = run_fault(&aws, Some(BedrockFault::CreateAccessDenied), 2, 1).await;
    assert_eq!((i.status, jobs, dead), (IntentStatus::Failed, 0, 0));
    assert!(i
        .failure_message
        .unwrap_or_default()
        .contains("iam:PassRole"));
    // Quota full of other jobs three times: waits it out, no DLQ.
    let (i, jobs, dead) = run_fault(&aws, Some(BedrockFault::CreateQuotaExceeded), 2, 1).await;
    assert_eq!((i.status, jobs, dead), (IntentStatus::Completed, 1, 0));
    // Every event lost: the reconciler's GetModelInvocationJob finds the finished job.
    let (i, jobs, dead) = run_fault(&aws, None, 2, 1).await;
    assert_eq!((i.status, jobs, dead), (IntentStatus::Completed, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_a_users_jobs_pass_one_dynamodb_page_should_list_every_one() {
    use shared::domain::ids::{ModelId, TraceId};
    use shared::domain::intent::{BatchIntent, ImageEntry, ImageSelection, NewIntent};
    let Some(aws) = endpoint() else { return };
    let env = setup(&aws, "paging", 3).await;
    let user = UserId::parse("user-1").expect("user");
    // 12 intents of about 250 KB each: 3 MB, three times DynamoDB's 1 MB page.
    let long = "x".repeat(800);
    let n = 12;
    for i in 0..n {
        let id = IntentId::parse(&format!("big-{i:02}")).expect("id");
        let mut intent = BatchIntent::new(
            NewIntent {
                intent_id: IntentId::scoped(&user, &id),
                client_intent_id: Some(id),
                user_id: user.clone(),
                selection: ImageSelection::Keys(vec![]),
                model_id: ModelId::parse("us.amazon.nova-lite-v1:0").expect("model"),
                prompt_version: "v".into(),
                trace_id: TraceId::parse("t").expect("trace"),
                deadline: None,
                webhook: None,
            },
            chrono::Utc::now() + chrono::Duration::milliseconds(i),
            30,
        );
        intent.images = (0..300)
            .map(|k| ImageEntry {
                index: k,
                key: ObjectKey::parse(&format!("uploads/user-1/2026-11-28/{long}-{k}.png"))
                    .expect("key"),
                record_id: shared::domain::ids::RecordId::for_image(&intent.job_id, k),
                rejected: None,
                duplicate_of: None,
            })
            .collect();
        env.deps.store.create(&intent).await.expect("create");
    }
    let listed = env
        .deps
        .store
        .list_by_user(&user, None, 100)
        .await
        .expect("list");
    assert_eq!(listed.len(), n as usize, "every job, across pages");
    // And through the API's own pages: every job exactly once.
    let mut seen = std::collections::BTreeSet::new();
    let mut after = None;
    loop {
        let page = env
            .deps
            .store
            .list_by_user(&user, after.clone(), 5)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.intent_id.clone()));
        for i in &page {
            assert!(seen.insert(i.intent_id.clone()), "listed twice");
        }
    }
    assert_eq!(seen.len(), n as usize);
}
