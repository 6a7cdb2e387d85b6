//! Local AWS: the resources the CDK stack creates, made through the real SDK against a local
//! emulator (moto server), plus the two pieces of Lambda's runtime a local run needs: an
//! event-source driver that polls each SQS queue and invokes the handler with a real
//! `SqsEvent`, and an HTTP front that turns requests into HTTP API v2 events for intake.

use anyhow::Context as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;
use shared::adapters::aws::dynamodb::{
    GSI_BY_BEDROCK_JOB_ARN, GSI_BY_JOB_ID, GSI_BY_OUTBOX, GSI_BY_STATUS_UPDATED,
    GSI_BY_USER_CREATED,
};
use shared::adapters::aws::sqs::SqsQueues;
use shared::adapters::aws::AwsClients;
use shared::app::Deps;
use shared::config::FunctionConfig;
use shared::domain::ids::BucketName;
use shared::domain::settings::Settings;
use shared::topology::{Queue, RULES};
use std::collections::HashSet;

/// Names of one local deployment; `prefix` keeps parallel runs apart on one moto server.
#[derive(Debug, Clone)]
pub struct LocalStack {
    pub prefix: String,
    pub intents_table: String,
    pub results_table: String,
    pub uploads_table: String,
    pub bus: String,
    pub queues: Vec<(Queue, String, String)>,
    pub settings: Settings,
}

impl LocalStack {
    pub fn named(prefix: &str) -> Self {
        let mut settings = Settings::local(prefix);
        settings.bedrock_role_arn =
            "arn:aws:iam::123456789012:role/batch-orchestrator-bedrock".into();
        Self {
            prefix: prefix.to_owned(),
            intents_table: format!("{prefix}-intents"),
            results_table: format!("{prefix}-results"),
            uploads_table: format!("{prefix}-uploads"),
            bus: format!("{prefix}-events"),
            queues: Queue::ALL
                .into_iter()
                .map(|q| {
                    (
                        q,
                        format!("{prefix}-{}", q.name()),
                        format!("{prefix}-{}-dlq", q.name()),
                    )
                })
                .collect(),
            settings,
        }
    }

    pub fn config(&self) -> FunctionConfig {
        FunctionConfig {
            intents_table: self.intents_table.clone(),
            results_table: self.results_table.clone(),
            uploads_table: self.uploads_table.clone(),
            event_bus_name: self.bus.clone(),
            settings: self.settings.clone(),
        }
    }

    pub fn queue_name(&self, q: Queue) -> &str {
        self.queues
            .iter()
            .find(|(x, _, _)| *x == q)
            .map(|(_, n, _)| n.as_str())
            .unwrap_or_default()
    }

    pub fn dlq_name(&self, q: Queue) -> &str {
        self.queues
            .iter()
            .find(|(x, _, _)| *x == q)
            .map(|(_, _, d)| d.as_str())
            .unwrap_or_default()
    }
}

fn key(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn attr(name: &str) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

fn gsi(name: &str, hash: &str, range: Option<&str>) -> anyhow::Result<GlobalSecondaryIndex> {
    let mut keys = vec![key(hash, KeyType::Hash)?];
    if let Some(r) = range {
        keys.push(key(r, KeyType::Range)?);
    }
    Ok(GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(keys))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?)
}

/// Creates the tables (with GSIs and TTL), buckets, queues with DLQs and redrive, the bus and
/// the rules with SQS targets: what the CDK stack holds, minus IAM and the API.
pub async fn create_resources(
    c: &AwsClients,
    stack: &LocalStack,
    max_receive_count: u32,
    visibility_secs: u32,
) -> anyhow::Result<()> {
    create_tables(c, stack).await?;
    for bucket in [
        &stack.settings.uploads_bucket,
        &stack.settings.manifests_bucket,
        &stack.settings.outputs_bucket,
    ] {
        c.s3.create_bucket()
            .bucket(bucket.as_str())
            .send()
            .await
            .with_context(|| format!("create bucket {bucket}"))?;
    }
    c.eventbridge
        .create_event_bus()
        .name(&stack.bus)
        .send()
        .await
        .context("create bus")?;
    for (queue, name, dlq) in &stack.queues {
        let dlq_url = c
            .sqs
            .create_queue()
            .queue_name(dlq)
            .send()
            .await?
            .queue_url
            .context("dlq url")?;
        let dlq_arn = queue_arn(c, &dlq_url).await?;
        let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()}).to_string();
        let url = c
            .sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .send()
            .await?
            .queue_url
            .context("queue url")?;
        let arn = queue_arn(c, &url).await?;
        route_rules(c, stack, *queue, &arn).await?;
    }
    Ok(())
}

/// The intents (with its GSIs and TTL), results and uploads tables.
async fn create_tables(c: &AwsClients, stack: &LocalStack) -> anyhow::Result<()> {
    c.dynamodb
        .create_table()
        .table_name(&stack.intents_table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("intentId", KeyType::Hash)?)
        .set_attribute_definitions(Some(vec![
            attr("intentId")?,
            attr("jobId")?,
            attr("userId")?,
            attr("createdAt")?,
            attr("outboxPending")?,
            attr("outboxStagedAt")?,
            attr("bedrockJobArn")?,
            attr("status")?,
            attr("updatedAt")?,
        ]))
        .global_secondary_indexes(gsi(GSI_BY_JOB_ID, "jobId", None)?)
        .global_secondary_indexes(gsi(GSI_BY_USER_CREATED, "userId", Some("createdAt"))?)
        .global_secondary_indexes(gsi(GSI_BY_OUTBOX, "outboxPending", Some("outboxStagedAt"))?)
        .global_secondary_indexes(gsi(GSI_BY_BEDROCK_JOB_ARN, "bedrockJobArn", None)?)
        .global_secondary_indexes(gsi(GSI_BY_STATUS_UPDATED, "status", Some("updatedAt"))?)
        .send()
        .await
        .context("create intents table")?;
    c.dynamodb
        .create_table()
        .table_name(&stack.results_table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("intentId", KeyType::Hash)?)
        .key_schema(key("recordId", KeyType::Range)?)
        .attribute_definitions(attr("intentId")?)
        .attribute_definitions(attr("recordId")?)
        .send()
        .await
        .context("create results table")?;
    c.dynamodb
        .create_table()
        .table_name(&stack.uploads_table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .send()
        .await
        .context("create uploads table")?;
    // Every table expires its items (TTL `expiresAt`), as the stack's do.
    for table in [
        &stack.intents_table,
        &stack.results_table,
        &stack.uploads_table,
    ] {
        c.dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expiresAt")
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("enable TTL on {table}"))?;
    }
    Ok(())
}

/// The EventBridge rules that feed `queue`, each with the queue as its target.
async fn route_rules(
    c: &AwsClients,
    stack: &LocalStack,
    queue: Queue,
    arn: &str,
) -> anyhow::Result<()> {
    for rule in RULES.iter().filter(|r| r.target == queue) {
        let bus = if rule.default_bus {
            "default"
        } else {
            stack.bus.as_str()
        };
        let rule_name = format!("{}-{}", stack.prefix, rule.name);
        let pattern = rule.pattern();
        c.eventbridge
            .put_rule()
            .name(&rule_name)
            .event_bus_name(bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .with_context(|| format!("put rule {rule_name}"))?;
        c.eventbridge
            .put_targets()
            .rule(&rule_name)
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("put target of {rule_name}"))?;
    }
    Ok(())
}

async fn queue_arn(c: &AwsClients, url: &str) -> anyhow::Result<String> {
    let out = c
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    out.attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("queue has no ARN")
}

/// Plays Lambda's SQS event source mapping: receive a batch, invoke the handler with a real
/// `SqsEvent`, delete only the messages not reported in `batchItemFailures`.
pub struct Driver {
    pub deps: Deps,
    pub sqs: SqsQueues,
    pub urls: Vec<(Queue, String)>,
    /// Invoke the handler twice with each batch before deleting, as at-least-once may.
    pub duplicate: bool,
}

impl Driver {
    pub async fn new(
        deps: Deps,
        clients: &AwsClients,
        stack: &LocalStack,
        duplicate: bool,
    ) -> anyhow::Result<Self> {
        let sqs = SqsQueues::new(clients.sqs.clone());
        let mut urls = Vec::new();
        for q in Queue::ALL {
            urls.push((q, sqs.queue_url(stack.queue_name(q)).await?));
        }
        Ok(Self {
            deps,
            sqs,
            urls,
            duplicate,
        })
    }

    /// One receive per queue. Returns (messages handled, messages failed).
    pub async fn poll_once(&self) -> anyhow::Result<(usize, usize)> {
        let (mut handled, mut failed_total) = (0, 0);
        for (queue, url) in &self.urls {
            let messages = self.sqs.receive(url, 10, 0, 1).await?;
            if messages.is_empty() {
                continue;
            }
            let event = shared::adapters::sqs_edge::sqs_event(messages.iter().map(|m| {
                (
                    m.message_id.clone(),
                    m.receipt_handle.clone(),
                    m.body.clone(),
                )
            }));
            let mut failed: HashSet<String> = HashSet::new();
            for _ in 0..if self.duplicate { 2 } else { 1 } {
                let resp = match queue {
                    Queue::ManifestBuilder => {
                        manifest_builder::handle(&self.deps, event.clone()).await
                    }
                    Queue::Submitter => submitter::handle(&self.deps, event.clone()).await,
                    Queue::StatusWatcher => status_watcher::handle(&self.deps, event.clone()).await,
                    Queue::Webhooks => webhook_sender::handle(&self.deps, event.clone()).await,
                };
                failed.extend(
                    resp.batch_item_failures
                        .into_iter()
                        .map(|f| f.item_identifier),
                );
            }
            let done: Vec<String> = messages
                .iter()
                .filter(|m| !m.message_id.as_ref().is_some_and(|id| failed.contains(id)))
                .filter_map(|m| m.receipt_handle.clone())
                .collect();
            self.sqs.delete(url, &done).await?;
            handled += messages.len();
            failed_total += failed.len();
        }
        Ok((handled, failed_total))
    }
}

/// Clients for a local endpoint: fixed test credentials and region, path-style S3, and
/// Bedrock at its own endpoint.
pub async fn local_clients(aws_endpoint: &str, bedrock_endpoint: &str) -> AwsClients {
    let creds =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "local");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(aws_endpoint)
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    let bedrock = aws_sdk_bedrock::config::Builder::from(&sdk)
        .endpoint_url(bedrock_endpoint)
        .build();
    let bedrock_runtime = aws_sdk_bedrockruntime::config::Builder::from(&sdk)
        .endpoint_url(bedrock_endpoint)
        .build();
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        s3: aws_sdk_s3::Client::from_conf(s3),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        eventbridge: aws_sdk_eventbridge::Client::new(&sdk),
        bedrock: aws_sdk_bedrock::Client::from_conf(bedrock),
        bedrock_runtime: aws_sdk_bedrockruntime::Client::from_conf(bedrock_runtime),
    }
}

/// The bucket names must be valid for S3; a prefix makes them so.
pub fn valid_prefix(raw: &str) -> String {
    let p: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(20)
        .collect();
    if BucketName::parse(&format!("{p}-uploads")).is_ok() {
        p
    } else {
        "bo-local".into()
    }
}
