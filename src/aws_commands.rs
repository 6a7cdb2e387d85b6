//! The commands that talk to AWS, or to moto server and the Bedrock emulator over HTTP. They
//! need the AWS SDK, which the default build leaves out (so the demo builds in a few minutes):
//! they exist in a build with `--features aws`.

use anyhow::bail;
use std::path::Path;

pub async fn replay_dlq(dlq: &str, to: &str, limit: usize, dry_run: bool) -> anyhow::Result<()> {
    let sdk = shared::adapters::aws::sdk_config().await;
    let sqs = shared::adapters::aws::sqs::SqsQueues::new(aws_sdk_sqs::Client::new(&sdk));
    let url = |q: &str| {
        let sqs = sqs.clone();
        let q = q.to_owned();
        async move {
            if q.starts_with("http") {
                Ok::<_, anyhow::Error>(q)
            } else {
                Ok(sqs.queue_url(&q).await?)
            }
        }
    };
    let (dlq_url, to_url) = (url(dlq).await?, url(to).await?);
    let report = sqs.replay_dlq(&dlq_url, &to_url, limit, dry_run).await?;
    for m in &report.moved {
        println!(
            "{} {}\t{}",
            if dry_run { "would move" } else { "moved" },
            m.message_id,
            m.body
        );
    }
    println!(
        "{}{} message(s) {}, {} failed (left in the DLQ)",
        if dry_run { "dry run: " } else { "" },
        report.moved.len(),
        if dry_run { "would move" } else { "moved" },
        report.failed
    );
    if report.failed > 0 {
        bail!("{} message(s) could not be sent back", report.failed);
    }
    Ok(())
}

pub async fn local_aws_setup(
    endpoint: &str,
    prefix: &str,
    max_receive_count: u32,
    visibility_secs: u32,
) -> anyhow::Result<()> {
    use batch_orchestrator::local_aws::{
        create_resources, local_clients, valid_prefix, LocalStack,
    };
    let stack = LocalStack::named(&valid_prefix(prefix));
    let clients = local_clients(endpoint, "http://127.0.0.1:4599").await;
    create_resources(&clients, &stack, max_receive_count, visibility_secs).await?;
    let c = stack.config();
    let s = &c.settings;
    let models: Vec<&str> = s.allowed_models.iter().map(|m| m.as_str()).collect();
    use shared::config as k;
    for (var, value) in [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        (
            "AWS_ENDPOINT_URL_BEDROCK",
            "http://127.0.0.1:4599".to_owned(),
        ),
        (
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            "http://127.0.0.1:4599".to_owned(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        (k::INTENTS_TABLE, c.intents_table.clone()),
        (k::RESULTS_TABLE, c.results_table.clone()),
        (k::UPLOADS_TABLE, c.uploads_table.clone()),
        (k::EVENT_BUS_NAME, c.event_bus_name.clone()),
        (k::UPLOADS_BUCKET, s.uploads_bucket.to_string()),
        (k::MANIFESTS_BUCKET, s.manifests_bucket.to_string()),
        (k::OUTPUTS_BUCKET, s.outputs_bucket.to_string()),
        (k::BEDROCK_ROLE_ARN, s.bedrock_role_arn.clone()),
        (k::ALLOWED_MODEL_IDS, models.join(",")),
        (k::API_BASE_URL, s.api_base_url.clone()),
    ] {
        println!("export {var}='{value}'");
    }
    Ok(())
}

pub async fn bedrock_emulator(
    data_dir: &Path,
    min_records: u64,
    faults: Vec<shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault>,
    endpoint: &str,
    (port, tick_ms): (u16, u64),
) -> anyhow::Result<()> {
    use shared::adapters::embedded::bedrock_emulator::{BedrockEmulator, EmulatorOptions};
    let clients =
        batch_orchestrator::local_aws::local_clients(endpoint, &format!("http://127.0.0.1:{port}"))
            .await;
    std::fs::create_dir_all(data_dir)?;
    let quotas = shared::domain::settings::Quotas {
        min_records_per_job: min_records,
        ..Default::default()
    };
    let emulator = BedrockEmulator::new(
        shared::adapters::embedded::db::Db::open(&data_dir.join("bedrock-emulator-http.db"))?,
        std::sync::Arc::new(shared::adapters::aws::s3::S3ObjectStore::new(
            clients.s3.clone(),
        )),
        std::sync::Arc::new(shared::adapters::aws::eventbridge::EventBridgeBus::new(
            clients.eventbridge.clone(),
            "default",
        )),
        std::sync::Arc::new(shared::adapters::clock::SystemClock),
        EmulatorOptions {
            faults,
            ..EmulatorOptions::new(quotas)
        },
    )?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("Bedrock emulator on http://127.0.0.1:{port} (S3 and EventBridge at {endpoint})");
    batch_orchestrator::bedrock_server::serve(
        listener,
        std::sync::Arc::new(emulator),
        std::time::Duration::from_millis(tick_ms),
    )
    .await?;
    Ok(())
}
