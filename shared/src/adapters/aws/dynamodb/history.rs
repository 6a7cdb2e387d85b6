//! Job durations per model in the intents table, beside the slots: one item a model,
//! `intentId = "history#{model}"`, whose `samples` list holds one JSON sample per finished job.
//! A sample is prepended with one atomic `list_append` (writers never race); once the list
//! holds twice [`HISTORY`], the writer trims it to the newest [`HISTORY`] with a write
//! conditioned on the length it saw (a trim that loses to a new sample is left to the next).

use super::{s, DynamoStore};
use crate::adapters::aws::classify;
use crate::domain::deadline::{JobSample, HISTORY};
use crate::ports::{ErrorKind, JobHistory, PortError};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

fn history_key(model: &str) -> String {
    format!("history#{model}")
}

fn unreadable(e: serde_json::Error) -> PortError {
    PortError::with_source(ErrorKind::Unexpected, "job history", e)
}

/// The samples of a `samples` list, newest first (unreadable entries skipped).
fn samples_of(list: Option<&AttributeValue>) -> Vec<JobSample> {
    let mut out: Vec<JobSample> = list
        .and_then(|v| v.as_l().ok())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_s().ok())
        .filter_map(|body| serde_json::from_str(body).ok())
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.ended_at));
    out
}

impl DynamoStore {
    /// Rewrites the list as its newest [`HISTORY`], if it still holds `seen` entries.
    async fn trim_history(
        &self,
        model: &str,
        seen: usize,
        samples: &[JobSample],
    ) -> Result<(), PortError> {
        let kept = samples
            .iter()
            .take(HISTORY)
            .map(|s| serde_json::to_string(s).map(AttributeValue::S))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        let trimmed = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(history_key(model)))
            .update_expression("SET samples = :kept")
            .condition_expression("size(samples) = :seen")
            .expression_attribute_values(":kept", AttributeValue::L(kept))
            .expression_attribute_values(":seen", AttributeValue::N(seen.to_string()))
            .send()
            .await;
        match trimmed {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }
}

#[async_trait]
impl JobHistory for DynamoStore {
    async fn record(&self, model: &str, sample: &JobSample) -> Result<(), PortError> {
        let body = serde_json::to_string(sample).map_err(unreadable)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(history_key(model)))
            .update_expression("SET samples = list_append(:new, if_not_exists(samples, :empty))")
            .expression_attribute_values(":new", AttributeValue::L(vec![AttributeValue::S(body)]))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        let list = out.attributes().and_then(|a| a.get("samples"));
        let seen = list.and_then(|v| v.as_l().ok()).map_or(0, Vec::len);
        if seen >= 2 * HISTORY {
            self.trim_history(model, seen, &samples_of(list)).await?;
        }
        Ok(())
    }

    async fn recent(&self, model: &str) -> Result<Vec<JobSample>, PortError> {
        let item = self.get_item(&history_key(model)).await?;
        let mut samples = samples_of(item.as_ref().and_then(|i| i.get("samples")));
        samples.truncate(HISTORY);
        Ok(samples)
    }
}
