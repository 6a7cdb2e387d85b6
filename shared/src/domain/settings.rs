//! Typed settings shared by every stage. Reading them from the environment is the job of each
//! binary's config; this is only the shape and its defaults (from bedrock-batch-facts.md).

use super::ids::{BucketName, ModelId};
use serde::{Deserialize, Serialize};

/// Bedrock batch quotas. All are per model and region and differ between accounts, so every
/// one is a setting; the defaults are the ones `bedrock-batch-facts.md` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quotas {
    /// A job with fewer records is refused by Bedrock (100; older accounts 1,000).
    pub min_records_per_job: u64,
    pub max_records_per_job: u64,
    pub max_records_per_file: u64,
    pub max_file_bytes: u64,
    pub max_job_bytes: u64,
    pub max_concurrent_jobs: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            min_records_per_job: 100,
            max_records_per_job: 50_000,
            max_records_per_file: 50_000,
            max_file_bytes: 1 << 30,
            max_job_bytes: 5 << 30,
            max_concurrent_jobs: 10,
        }
    }
}

/// How a model family wants its records built. Adding a family is a variant and a builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFamily {
    /// Anthropic Claude Messages API: images inline as base64.
    AnthropicClaude,
}

impl ModelFamily {
    /// The family a Bedrock model id (or cross-region inference profile id) belongs to.
    pub fn of(model: &ModelId) -> Option<Self> {
        let id = model.as_str();
        let base = id.split_once('.').map_or(id, |(head, rest)| {
            // Inference profiles prefix a geography: `us.anthropic.claude-...`.
            if head.len() <= 4 && rest.contains('.') {
                rest
            } else {
                id
            }
        });
        base.starts_with("anthropic.claude")
            .then_some(Self::AnthropicClaude)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Base of `statusUrl`: `{api_base_url}/api/batch/jobs/{jobId}`.
    pub api_base_url: String,
    pub uploads_bucket: BucketName,
    pub manifests_bucket: BucketName,
    pub outputs_bucket: BucketName,
    /// The service role Bedrock assumes to read manifests and write outputs.
    pub bedrock_role_arn: String,
    /// Models a client may ask for; the first is the default.
    pub allowed_models: Vec<ModelId>,
    pub max_images_per_intent: usize,
    /// `timeoutDurationInHours`, 24..=168.
    pub job_timeout_hours: u32,
    /// An outbox older than this is taken over by whoever sees it (a replay or the sweep);
    /// younger, it belongs to the writer still publishing it.
    pub outbox_grace_secs: i64,
    /// An intent still REQUESTED or MANIFEST_READY this long after its last change is
    /// re-announced by the reconciler.
    pub stuck_after_secs: i64,
    /// Days after which a finished intent expires from the store (DynamoDB TTL).
    pub intent_ttl_days: i64,
    pub max_output_tokens: u32,
    /// `estimatedDuration` = overhead + images x per-image seconds.
    pub estimate_overhead_secs: u64,
    pub estimate_secs_per_image: f64,
    pub quotas: Quotas,
}

impl Settings {
    pub fn default_model(&self) -> Option<&ModelId> {
        self.allowed_models.first()
    }

    /// Settings for a local run: bucket names as the CDK stack would name them for `stage`.
    pub fn local(stage: &str) -> Self {
        let bucket = |suffix: &str| {
            BucketName::parse(&format!("batch-orchestrator-{stage}-{suffix}"))
                .unwrap_or_else(|e| panic!("stage name {stage:?} makes an invalid bucket: {e}"))
        };
        Self {
            api_base_url: "http://127.0.0.1:8080".into(),
            uploads_bucket: bucket("uploads"),
            manifests_bucket: bucket("manifests"),
            outputs_bucket: bucket("outputs"),
            bedrock_role_arn: "arn:aws:iam::000000000000:role/batch-orchestrator-bedrock".into(),
            allowed_models: vec![
                ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0")
                    .unwrap_or_else(|e| panic!("{e}")),
                ModelId::parse("anthropic.claude-3-5-sonnet-20240620-v1:0")
                    .unwrap_or_else(|e| panic!("{e}")),
            ],
            // The intent item holds every image's key and record id, and a DynamoDB item is at
            // most 400 KB: 1,000 images of ~150 bytes each stay well inside it.
            max_images_per_intent: 1_000,
            job_timeout_hours: 24,
            outbox_grace_secs: 30,
            stuck_after_secs: 900,
            intent_ttl_days: 30,
            max_output_tokens: 1024,
            estimate_overhead_secs: 900,
            estimate_secs_per_image: 0.5,
            quotas: Quotas::default(),
        }
    }

    pub fn estimated_duration_secs(&self, images: usize) -> u64 {
        self.estimate_overhead_secs + (images as f64 * self.estimate_secs_per_image).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_model_is_claude_or_profile_should_be_claude_family() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ] {
            let m = ModelId::parse(id).expect("valid");
            assert_eq!(
                ModelFamily::of(&m),
                Some(ModelFamily::AnthropicClaude),
                "{id}"
            );
        }
        let nova = ModelId::parse("amazon.nova-lite-v1:0").expect("valid");
        assert_eq!(ModelFamily::of(&nova), None);
    }

    #[test]
    fn when_estimating_should_grow_with_images() {
        let s = Settings::local("test");
        assert!(s.estimated_duration_secs(100) > s.estimated_duration_secs(1));
    }
}
