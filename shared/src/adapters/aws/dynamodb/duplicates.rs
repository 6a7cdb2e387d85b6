//! The duplicate index in the results table (PK `intentId`, SK `recordId`, TTL `expiresAt`):
//!
//! | item | `intentId` | `recordId` | other attributes |
//! |---|---|---|---|
//! | an image seen | `dup#{userId}` | its digest | `firstIntent`, `firstRecord`, `body` (the `Seen`) |
//! | a copy waiting on a first | `dupf#{firstIntentId}` | `f#{firstRecord}#{intent}#{record}` | `body` |
//! | a near-copy mark | `dupf#{intentId}` | `n#{recordId}` | `body` |
//!
//! A claim is one conditional PutItem: it writes when no item of the digest exists, when the
//! one there has passed its window (TTL deletes lazily, so the condition reads `expiresAt`),
//! when it names the same first (a replay), or a later image of the same intent
//! (`domain::duplicates::takes_over`). Reads are strongly consistent Queries. `#` cannot
//! appear in an intent id, so these partitions never meet an intent's results.

use super::{s, unexpected, DynamoStore, Item};
use crate::adapters::aws::classify;
use crate::domain::duplicates::{Claim, FirstCopy, Follower, NearMark, Seen};
use crate::domain::ids::{IntentId, UserId};
use crate::domain::results::ImageResult;
use crate::ports::{DuplicateIndex, ErrorKind, PortError};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

fn n(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(t.timestamp().to_string())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, PortError> {
    serde_json::to_string(v)
        .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "encode duplicate item", e))
}

fn body_of<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, PortError> {
    let body = item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unexpected("duplicate item has no body"))?;
    serde_json::from_str(body)
        .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "decode duplicate item", e))
}

impl DynamoStore {
    /// Every item of a results-table partition (strongly consistent), page by page.
    async fn partition(&self, pk: &str) -> Result<Vec<Item>, PortError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.results_table)
                .key_condition_expression("intentId = :p")
                .expression_attribute_values(":p", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn put_under(
        &self,
        pk: String,
        sk: String,
        body: String,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.results_table)
            .item("intentId", s(pk))
            .item("recordId", s(sk))
            .item("body", s(body))
            .item("expiresAt", n(expires_at))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    /// The live item of `digest`, read after a claim lost (None if it expired meanwhile).
    async fn seen_item(
        &self,
        user: &UserId,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Seen>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.results_table)
            .key("intentId", s(format!("dup#{user}")))
            .key("recordId", s(digest))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        let seen = out.item.as_ref().map(body_of::<Seen>).transpose()?;
        Ok(seen.filter(|s| s.is_live(now)))
    }
}

#[async_trait]
impl DuplicateIndex for DynamoStore {
    async fn claim(
        &self,
        user: &UserId,
        seen: &Seen,
        now: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        // Twice at most: a lost claim whose winner expired before it was read is tried again.
        for _ in 0..2 {
            let put = self
                .client
                .put_item()
                .table_name(&self.results_table)
                .item("intentId", s(format!("dup#{user}")))
                .item("recordId", s(&seen.digest))
                .item("firstIntent", s(seen.first.intent_id.as_str()))
                .item("firstRecord", s(seen.first.record_id.as_str()))
                .item(
                    "firstIndex",
                    AttributeValue::N(seen.first.index.to_string()),
                )
                .item("body", s(json(seen)?))
                .item("expiresAt", n(seen.expires_at))
                // `domain::duplicates::takes_over`, as a condition.
                .condition_expression(
                    "attribute_not_exists(recordId) OR expiresAt <= :now \
                     OR (firstIntent = :i AND (firstRecord = :r OR firstIndex > :x))",
                )
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":x", AttributeValue::N(seen.first.index.to_string()))
                .expression_attribute_values(":i", s(seen.first.intent_id.as_str()))
                .expression_attribute_values(":r", s(seen.first.record_id.as_str()))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(Claim::First),
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(PutItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(e) => return Err(classify("PutItem", e)),
            }
            if let Some(winner) = self.seen_item(user, &seen.digest, now).await? {
                return Ok(Claim::Duplicate(winner.first));
            }
        }
        Err(PortError::new(
            ErrorKind::Conflict,
            "the digest's item changed twice while it was claimed",
        ))
    }

    async fn seen(&self, user: &UserId, now: DateTime<Utc>) -> Result<Vec<Seen>, PortError> {
        let items = self.partition(&format!("dup#{user}")).await?;
        let seen: Result<Vec<Seen>, PortError> = items.iter().map(body_of).collect();
        Ok(seen?.into_iter().filter(|s| s.is_live(now)).collect())
    }

    async fn follow(
        &self,
        follower: &Follower,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let pk = format!("dupf#{}", follower.first.intent_id);
        self.put_under(pk, follower.sort_key(), json(follower)?, expires_at)
            .await
    }

    async fn mark_near(
        &self,
        intent: &IntentId,
        mark: &NearMark,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let (pk, sk) = (format!("dupf#{intent}"), format!("n#{}", mark.record_id));
        self.put_under(pk, sk, json(mark)?, expires_at).await
    }

    async fn under(&self, intent: &IntentId) -> Result<(Vec<Follower>, Vec<NearMark>), PortError> {
        let (mut followers, mut near) = (Vec::new(), Vec::new());
        for item in self.partition(&format!("dupf#{intent}")).await? {
            let sk = item.get("recordId").and_then(|v| v.as_s().ok());
            if sk.is_some_and(|k| k.starts_with("n#")) {
                near.push(body_of(&item)?);
            } else {
                followers.push(body_of(&item)?);
            }
        }
        Ok((followers, near))
    }

    async fn first_result(&self, first: &FirstCopy) -> Result<Option<ImageResult>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.results_table)
            .key("intentId", s(first.intent_id.as_str()))
            .key("recordId", s(first.record_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        out.item.as_ref().map(body_of).transpose()
    }
}
