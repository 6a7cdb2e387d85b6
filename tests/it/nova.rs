//! The second model family: Amazon Nova, whose records reference images in S3 (s3Location)
//! inside the job's own input folder (Bedrock's same-folder rule), built and run end to end.

use crate::common::*;
use serde_json::json;
use shared::domain::bedrock::{client_token, job_name, CreateJobRequest, S3Uri};
use shared::domain::family::s3_locations;
use shared::domain::ids::{IntentId, ModelId};
use shared::domain::results::ResultStatus;
use shared::domain::status::{BedrockJobStatus, IntentStatus};
use shared::ports::{BatchInference as _, ObjectStore as _};

const NOVA: &str = "amazon.nova-lite-v1:0";

async fn nova_app(min: u64) -> TestApp {
    app_with(|o| {
        o.settings
            .allowed_models
            .push(ModelId::parse(NOVA).expect("model"));
        o.settings.quotas.min_records_per_job = min;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await
}

async fn lines(app: &TestApp, uri: &S3Uri) -> Vec<serde_json::Value> {
    let body = app.objects.get(uri).await.expect("part");
    String::from_utf8(body)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[tokio::test]
async fn when_the_model_is_nova_should_reference_images_copied_into_the_job_folder() {
    let app = nova_app(1).await;
    app.upload(
        "uploads/user-123/2026-11-28/notes.png",
        b"not an image".to_vec(),
    )
    .await
    .expect("upload");
    let mut keys: Vec<&str> = SAMPLE_KEYS.to_vec();
    keys.push("uploads/user-123/2026-11-28/notes.png");
    let answer = app
        .intake(
            json!({"intentId": "nova-1", "userId": SAMPLE_USER, "images": keys, "modelId": NOVA}),
        )
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;

    let intent = intents(&app)[0].clone();
    assert_eq!(intent.status, IntentStatus::Completed);
    let job = &intent.jobs[0];
    let records = lines(&app, &job.parts[0].uri).await;
    assert_eq!(
        records.len(),
        3,
        "the non-image is rejected before the manifest"
    );
    for r in &records {
        let input = &r["modelInput"];
        assert_eq!(input["schemaVersion"], "messages-v1");
        let uris = s3_locations(input);
        assert_eq!(uris.len(), 1);
        let uri = S3Uri::parse(&uris[0]).expect("uri");
        assert_eq!(
            uri.bucket, job.input.bucket,
            "same bucket as the job's input"
        );
        assert!(
            uri.key.starts_with(&job.input.key),
            "inside the job's input folder"
        );
        assert!(app.objects.head(&uri, 8).await.is_ok(), "copied there");
        assert!(!r.to_string().contains("base64"), "no inline bytes");
    }
    assert!(
        job.parts[0].bytes < 3 * 1024,
        "small records: {}",
        job.parts[0].bytes
    );

    let rs = results(&app, &intent).await;
    let statuses: Vec<ResultStatus> = rs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            ResultStatus::Succeeded,
            ResultStatus::Succeeded,
            ResultStatus::Succeeded,
            ResultStatus::Skipped
        ]
    );
    let r = &rs[0];
    assert!(r
        .receipt
        .as_ref()
        .and_then(|x| x.merchant.clone())
        .is_some());
    assert!(
        r.input_tokens > 0 && r.output_tokens > 0,
        "Nova's usage is read"
    );
}

/// Writes `line` as the one-line manifest of a hand-made Nova job named after `intent`, creates
/// the job on the emulator and runs it to its end: (the job's ARN, its output folder).
async fn run_hand_made_job(
    app: &TestApp,
    intent: &str,
    line: &serde_json::Value,
) -> (
    shared::domain::ids::BedrockJobArn,
    shared::domain::bedrock::S3Uri,
) {
    let s = &app.deps.settings;
    let job = shared::domain::ids::JobId::for_intent(&IntentId::parse(intent).expect("id"));
    let input = shared::domain::manifest::job_input_prefix(&s.manifests_bucket, &job, 1);
    app.objects
        .put(
            &input.join("part-00001.jsonl"),
            format!("{line}\n").into_bytes(),
        )
        .await
        .expect("put");
    let output = shared::domain::manifest::job_output_prefix(&s.outputs_bucket, &job, 1);
    let arn = app
        .emulator
        .create_job(&CreateJobRequest {
            job_name: job_name(&job, 1, 1),
            client_request_token: client_token(&job, 1, 1),
            role_arn: s.bedrock_role_arn.clone(),
            model_id: ModelId::parse(NOVA).expect("model"),
            input,
            output: output.clone(),
            timeout_hours: 24,
            tags: vec![],
        })
        .await
        .expect("create");
    for _ in 0..10 {
        app.emulator.tick().await.expect("tick");
    }
    (arn, output)
}

#[tokio::test]
async fn when_a_record_references_an_image_outside_the_job_folder_should_fail_it() {
    let app = nova_app(1).await;
    let s = &app.deps.settings;
    let outside = format!("s3://{}/{}", s.uploads_bucket, SAMPLE_KEYS[0]);
    let line = json!({"recordId": "REC00000001", "modelInput": {"schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [
            {"image": {"format": "png", "source": {"s3Location": {"uri": outside}}}},
            {"text": "read"}]}]}});
    let (arn, output) = run_hand_made_job(&app, "hand", &line).await;
    let info = app.emulator.get_job(&arn).await.expect("job");
    // Every record has its line (an error object for this one): Completed, as Bedrock's are.
    assert_eq!(info.status, BedrockJobStatus::Completed);
    let out = output.join(arn.job_suffix()).join("part-00001.jsonl.out");
    let line = &lines(&app, &out).await[0];
    assert_eq!(line["error"]["errorCode"], 400);
    assert!(line["error"]["errorMessage"]
        .as_str()
        .expect("message")
        .contains("not in the job's input folder"));
}

#[tokio::test]
async fn when_small_nova_intents_pool_should_move_their_images_into_the_shared_job_folder() {
    let app = nova_app(4).await;
    for (id, keys) in [("n-a", &SAMPLE_KEYS[..2]), ("n-b", &SAMPLE_KEYS[1..])] {
        let answer = app
            .intake(json!({"intentId": id, "userId": SAMPLE_USER, "images": keys, "modelId": NOVA}))
            .await;
        assert_eq!(status(&answer), 202, "{answer}");
    }
    run(&app).await;
    let all = intents(&app);
    let pool = all.iter().find(|i| i.is_pool_job()).expect("a shared job");
    assert_eq!(pool.status, IntentStatus::Completed);
    let job = &pool.jobs[0];
    for r in lines(&app, &job.parts[0].uri).await {
        let uri = S3Uri::parse(&s3_locations(&r["modelInput"])[0]).expect("uri");
        assert!(
            uri.key.starts_with(&job.input.key),
            "{uri} not in {}",
            job.input
        );
    }
    for id in ["n-a", "n-b"] {
        let i = all
            .iter()
            .find(|i| i.client_id().as_str() == id)
            .expect("member");
        assert_eq!(i.status, IntentStatus::Completed, "{id}");
        let rs = results(&app, i).await;
        assert_eq!(rs.len(), 2);
        assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
    }
}

#[tokio::test]
async fn when_a_record_id_is_not_alphanumeric_should_fail_the_job_at_validation() {
    // The user guide's record template: "recordId": "alphanumeric string" (older versions: "11
    // character alphanumeric string").
    let app = nova_app(1).await;
    let line = json!({"recordId": "bj-0123-000001", "modelInput": {"schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [{"text": "read"}]}]}});
    let (arn, _) = run_hand_made_job(&app, "hand-2", &line).await;
    let info = app.emulator.get_job(&arn).await.expect("job");
    assert_eq!(info.status, BedrockJobStatus::Failed);
    let why = info.failure_message.unwrap_or_default();
    assert!(why.contains("is not an alphanumeric string"), "{why}");
}

/// A flagged Nova answer is re-asked with the whole photo inline (`source.bytes`, base64, as
/// Nova's InvokeModel body takes it), and fixed.
#[tokio::test]
async fn when_a_nova_answer_is_flagged_should_reask_it_with_the_photo_inline() {
    let app = app_with(|o| {
        o.settings
            .allowed_models
            .push(ModelId::parse(NOVA).expect("model"));
        o.settings.quotas.min_records_per_job = 1;
        o.emulator.quotas = o.settings.quotas.clone();
        o.emulator.faults = vec![
            shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault::WrongTotal,
        ];
    })
    .await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-12-01/n-{i:03}.png");
    crate::scale::store_many(&app, 12, key).await;
    let keys: Vec<String> = (0..12).map(key).collect();
    post_and_run(&app, "nova-reask", &keys, json!({"modelId": NOVA})).await;
    let (_, rs) = completed(&app, "nova-reask").await;
    let reasked: Vec<usize> = rs
        .iter()
        .filter(|r| r.reask.is_some())
        .map(|r| r.image_index)
        .collect();
    assert_eq!(reasked, vec![0, 10]);
    assert!(
        rs.iter().all(|r| r.needs_review == Some(false)),
        "each fixed"
    );
    assert_eq!(app.runtime.calls(), 2);
}
