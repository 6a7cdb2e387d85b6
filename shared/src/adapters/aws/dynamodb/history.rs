//! Job durations per model in the intents table, beside the slots: one item a model,
//! `intentId = "history#{model}"`, holding its newest samples as JSON and a version; a new
//! sample is written with a version-conditional put (a lost race reads and tries again).

use super::{s, DynamoStore};
use crate::adapters::aws::classify;
use crate::domain::deadline::{JobSample, HISTORY};
use crate::ports::{ErrorKind, JobHistory, PortError};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

fn history_key(model: &str) -> String {
    format!("history#{model}")
}

impl DynamoStore {
    /// The model's samples and the item's version (0: no item yet).
    async fn history(&self, model: &str) -> Result<(Vec<JobSample>, u64), PortError> {
        let Some(item) = self.get_item(&history_key(model)).await? else {
            return Ok((Vec::new(), 0));
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let samples = item
            .get("samples")
            .and_then(|v| v.as_s().ok())
            .map(|b| serde_json::from_str(b))
            .transpose()
            .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "job history", e))?
            .unwrap_or_default();
        Ok((samples, version))
    }
}

#[async_trait]
impl JobHistory for DynamoStore {
    async fn record(&self, model: &str, sample: &JobSample) -> Result<(), PortError> {
        for _ in 0..5 {
            let (mut samples, version) = self.history(model).await?;
            samples.insert(0, sample.clone());
            samples.sort_by_key(|s| std::cmp::Reverse(s.ended_at));
            samples.truncate(HISTORY);
            let body = serde_json::to_string(&samples)
                .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "job history", e))?;
            let put = self
                .client
                .put_item()
                .table_name(&self.intents_table)
                .item("intentId", s(history_key(model)))
                .item("samples", s(body))
                .item("version", AttributeValue::N((version + 1).to_string()));
            let put = if version == 0 {
                put.condition_expression("attribute_not_exists(intentId)")
            } else {
                put.condition_expression("version = :v")
                    .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            };
            match put.send().await {
                Ok(_) => return Ok(()),
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(PutItemError::ConditionalCheckFailedException(_))
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(classify("PutItem", e)),
            }
        }
        Err(PortError::new(
            ErrorKind::Transient,
            format!("job history of {model}: lost five races in a row"),
        ))
    }

    async fn recent(&self, model: &str) -> Result<Vec<JobSample>, PortError> {
        Ok(self.history(model).await?.0)
    }
}
