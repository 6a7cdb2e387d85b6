//! Per-user allowances and the on-demand rate budget in the intents table (see `app::intake::limits`,
//! `app::pace`), each moved by one conditional UpdateItem:
//! - `intentId = "limit#open#{user}"`: `open`, a string set of the user's open intent ids.
//!   `ADD` one id on the condition that the set has fewer than the limit or holds it already;
//!   `DELETE` it when the intent ends (DynamoDB drops a set that becomes empty).
//! - `intentId = "limit#day#{user}#{YYYY-MM-DD}"`: `images`, a number. `ADD` the request's
//!   images on the condition that the sum stays within the limit; `expiresAt` (the table's TTL)
//!   two days after that UTC day.
//!
//! DynamoDB's `ADD` and its condition are one atomic write ("UpdateItem ... ADD", "Condition
//! expressions", Amazon DynamoDB Developer Guide), so concurrent requests pass a limit exactly.

use super::{s, DynamoStore};
use crate::adapters::aws::classify;
use crate::domain::ids::{IntentId, UserId};
use crate::ports::{Allowances, PortError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;

fn open_key(user: &UserId) -> String {
    format!("limit#open#{user}")
}

fn day_key(user: &UserId, day: NaiveDate) -> String {
    format!("limit#day#{user}#{day}")
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Ok(true) when written, Ok(false) when the condition refused it.
fn conditional<O, R>(result: Result<O, SdkError<UpdateItemError, R>>) -> Result<bool, PortError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(UpdateItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(classify("UpdateItem", e)),
    }
}

#[async_trait]
impl Allowances for DynamoStore {
    async fn open(&self, user: &UserId, intent: &IntentId, max: usize) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(open_key(user)))
            .update_expression("ADD #o :ids")
            .condition_expression(
                "attribute_not_exists(#o) OR size(#o) < :max OR contains(#o, :id)",
            )
            .expression_attribute_names("#o", "open")
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![intent.to_string()]))
            .expression_attribute_values(":id", s(intent.to_string()))
            .expression_attribute_values(":max", n(max))
            .send()
            .await;
        conditional(result)
    }

    async fn close(&self, user: &UserId, intent: &IntentId) -> Result<(), PortError> {
        // Only on an existing item: an UpdateItem on a missing key would create it.
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(open_key(user)))
            .update_expression("DELETE #o :ids")
            .condition_expression("attribute_exists(intentId)")
            .expression_attribute_names("#o", "open")
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![intent.to_string()]))
            .send()
            .await;
        conditional(result).map(|_| ())
    }

    async fn open_intents(&self, user: &UserId) -> Result<Vec<IntentId>, PortError> {
        let item = self.get_item(&open_key(user)).await?;
        let ids = item
            .as_ref()
            .and_then(|i| i.get("open"))
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| IntentId::parse(id).ok())
            .collect())
    }

    async fn take_images(
        &self,
        user: &UserId,
        day: NaiveDate,
        images: u64,
        max: u64,
    ) -> Result<bool, PortError> {
        let Some(room) = max.checked_sub(images) else {
            return Ok(false);
        };
        let expires = day
            .succ_opt()
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(0, |t| t.and_utc().timestamp());
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(day_key(user, day)))
            .update_expression("ADD #i :n SET expiresAt = :exp")
            .condition_expression("attribute_not_exists(#i) OR #i <= :room")
            .expression_attribute_names("#i", "images")
            .expression_attribute_values(":n", n(images))
            .expression_attribute_values(":room", n(room))
            .expression_attribute_values(":exp", n(expires))
            .send()
            .await;
        conditional(result)
    }

    async fn give_back_images(
        &self,
        user: &UserId,
        day: NaiveDate,
        images: u64,
    ) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(day_key(user, day)))
            .update_expression("ADD #i :n")
            .condition_expression("attribute_exists(intentId)")
            .expression_attribute_names("#i", "images")
            .expression_attribute_values(":n", n(format!("-{images}")))
            .send()
            .await;
        conditional(result).map(|_| ())
    }
}

/// A window of `model`'s on-demand budget: `intentId = "rate#{model}#{window start, epoch s}"`
/// with `requests` and `tokens`, expiring an hour after the window.
fn rate_key(model: &str, window: chrono::DateTime<chrono::Utc>) -> String {
    format!("rate#{model}#{}", window.timestamp())
}

#[async_trait]
impl crate::ports::RateBudget for DynamoStore {
    async fn take(
        &self,
        model: &str,
        window: chrono::DateTime<chrono::Utc>,
        tokens: u64,
        (max_requests, max_tokens): (u64, u64),
    ) -> Result<bool, PortError> {
        let room = i128::from(max_tokens) - i128::from(tokens);
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(rate_key(model, window)))
            .update_expression("ADD #r :one, #t :tok SET expiresAt = :exp")
            .condition_expression("attribute_not_exists(#r) OR (#r < :maxr AND #t <= :room)")
            .expression_attribute_names("#r", "requests")
            .expression_attribute_names("#t", "tokens")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":tok", n(tokens))
            .expression_attribute_values(":maxr", n(max_requests))
            .expression_attribute_values(":room", n(room))
            .expression_attribute_values(":exp", n(window.timestamp() + 3600))
            .send()
            .await;
        conditional(result)
    }

    async fn correct(
        &self,
        model: &str,
        window: chrono::DateTime<chrono::Utc>,
        delta: i64,
    ) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(rate_key(model, window)))
            .update_expression("ADD #t :d")
            .condition_expression("attribute_exists(intentId)")
            .expression_attribute_names("#t", "tokens")
            .expression_attribute_values(":d", n(delta))
            .send()
            .await;
        conditional(result).map(|_| ())
    }
}

/// A lease: `intentId = "lease#{key}"` with its `holder` and `until` (epoch milliseconds),
/// expiring a day after it was last taken.
#[async_trait]
impl crate::ports::Leases for DynamoStore {
    async fn take(
        &self,
        key: &str,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.intents_table)
            .key("intentId", s(format!("lease#{key}")))
            .update_expression("SET holder = :h, #u = :until, expiresAt = :exp")
            .condition_expression("attribute_not_exists(intentId) OR holder = :h OR #u < :now")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":exp", n(until.timestamp() + 86_400))
            .send()
            .await;
        conditional(result)
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), PortError> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        let result = self
            .client
            .delete_item()
            .table_name(&self.intents_table)
            .key("intentId", s(format!("lease#{key}")))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("DeleteItem", e)),
        }
    }
}
