//! The duplicate index in the results table (PK `intentId`, SK `recordId`, TTL `expiresAt`):
//!
//! | item | `intentId` | `recordId` | other attributes |
//! |---|---|---|---|
//! | an image seen | `dup#{userId}` | its digest | `firstIntent`, `firstIndex`, `body` (the `Seen`) |
//! | a first image, by when it was seen | `dupr#{userId}` | `{seenAt}#{digest}` | `body` (the `Seen`): the newest are what near copies are compared with |
//! | a copy waiting on a first | `dupf#{firstIntentId}` | `f#{firstRecord}#{intent}#{record}` | `body` |
//! | a near-copy mark | `dupf#{intentId}` | `n#{recordId}` | `body` |
//!
//! A claim is one conditional PutItem: it writes when no item of the digest exists, when the
//! one there has passed its window (TTL deletes lazily: "items that have expired and not been
//! deleted will still show up in reads, queries, and scans", typically within two days,
//! Developer Guide, "Working with expired items"; so the condition and every read check
//! `expiresAt` themselves), or when it names a later image of the same intent
//! (`domain::duplicates::takes_over`); the same first again is a replay, answered from a read
//! without a write. Reads are strongly consistent Queries. `#` cannot
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

/// BatchGetItem takes at most 100 keys a call, and may return some as `UnprocessedKeys`
/// (API Reference, "BatchGetItem").
const BATCH_GET_MAX: usize = 100;

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
    /// Every item of a results-table partition (strongly consistent), page by page, in sort
    /// key order; with `prefix`, only those whose sort key starts with it.
    pub(super) async fn partition(
        &self,
        pk: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, PortError> {
        let condition = match prefix {
            Some(_) => "intentId = :p AND begins_with(recordId, :k)",
            None => "intentId = :p",
        };
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.results_table)
                .key_condition_expression(condition)
                .expression_attribute_values(":p", s(pk))
                .consistent_read(true);
            if let Some(k) = prefix {
                query = query.expression_attribute_values(":k", s(k));
            }
            let page = query
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

    pub(super) async fn put_under(
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
    /// The digest's conditional put (`domain::duplicates::takes_over` as a condition): true if
    /// written, false if the condition failed.
    async fn put_claim(
        &self,
        user: &UserId,
        seen: &Seen,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let index = || AttributeValue::N(seen.first.index.to_string());
        let put = self
            .client
            .put_item()
            .table_name(&self.results_table)
            .item("intentId", s(format!("dup#{user}")))
            .item("recordId", s(&seen.digest))
            .item("firstIntent", s(seen.first.intent_id.as_str()))
            .item("firstIndex", index())
            .item("body", s(json(seen)?))
            .item("expiresAt", n(seen.expires_at))
            .condition_expression(
                "attribute_not_exists(recordId) OR expiresAt <= :now \
                 OR (firstIntent = :i AND firstIndex > :x)",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":x", index())
            .expression_attribute_values(":i", s(seen.first.intent_id.as_str()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    /// The first image's item in `dupr#{userId}`, by the time it was first seen (what
    /// [`DuplicateIndex::recent`] reads newest first); the same item again on a replay.
    async fn put_recent(&self, user: &UserId, seen: &Seen) -> Result<(), PortError> {
        let sk = format!(
            "{}#{}",
            seen.seen_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            seen.digest
        );
        self.put_under(format!("dupr#{user}"), sk, json(seen)?, seen.expires_at)
            .await
    }

    /// Which of at most [`BATCH_GET_MAX`] digests are live (one BatchGetItem, consistent; the
    /// keys DynamoDB leaves unprocessed are asked again, a bounded number of times).
    async fn known_chunk(
        &self,
        user: &UserId,
        digests: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, PortError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let keys: Vec<Item> = digests
            .iter()
            .map(|d| {
                Item::from([
                    ("intentId".into(), s(format!("dup#{user}"))),
                    ("recordId".into(), s(d)),
                ])
            })
            .collect();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "build keys", e))?,
        );
        let mut out = Vec::new();
        for attempt in 0..8u32 {
            let Some(request) = pending.take() else {
                break;
            };
            let got = self
                .client
                .batch_get_item()
                .request_items(&self.results_table, request)
                .send()
                .await
                .map_err(|e| classify("BatchGetItem", e))?;
            for item in got
                .responses()
                .and_then(|r| r.get(&self.results_table))
                .into_iter()
                .flatten()
            {
                let seen: Seen = body_of(item)?;
                if seen.is_live(now) {
                    out.push(seen.digest);
                }
            }
            pending = got
                .unprocessed_keys
                .and_then(|mut m| m.remove(&self.results_table))
                .filter(|k| !k.keys().is_empty());
            if pending.is_some() {
                tokio::time::sleep(super::unprocessed_backoff(attempt)).await;
            }
        }
        match pending {
            None => Ok(out),
            Some(_) => Err(PortError::new(
                ErrorKind::Transient,
                "BatchGetItem left keys unprocessed",
            )),
        }
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
            if self.put_claim(user, seen, now).await? {
                self.put_recent(user, seen).await?;
                return Ok(Claim::First);
            }
            match self.seen_item(user, &seen.digest, now).await? {
                // A replay: first still, and its item as it was (its time in `dupr#`).
                Some(stored) if stored.first == seen.first => {
                    self.put_recent(user, &stored).await?;
                    return Ok(Claim::First);
                }
                Some(winner) => return Ok(Claim::Duplicate(winner.first)),
                None => {}
            }
        }
        Err(PortError::new(
            ErrorKind::Conflict,
            "the digest's item changed twice while it was claimed",
        ))
    }

    async fn replace(
        &self,
        user: &UserId,
        seen: &Seen,
        stale: &FirstCopy,
        now: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        let index = |f: &FirstCopy| AttributeValue::N(f.index.to_string());
        let put = self
            .client
            .put_item()
            .table_name(&self.results_table)
            .item("intentId", s(format!("dup#{user}")))
            .item("recordId", s(&seen.digest))
            .item("firstIntent", s(seen.first.intent_id.as_str()))
            .item("firstIndex", index(&seen.first))
            .item("body", s(json(seen)?))
            .item("expiresAt", n(seen.expires_at))
            .condition_expression("firstIntent = :i AND firstIndex = :x")
            .expression_attribute_values(":i", s(stale.intent_id.as_str()))
            .expression_attribute_values(":x", index(stale))
            .send()
            .await;
        match put {
            Ok(_) => {
                self.put_recent(user, seen).await?;
                Ok(Claim::First)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.claim(user, seen, now).await
            }
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    async fn recent(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Seen>, PortError> {
        let mut out: Vec<Seen> = Vec::new();
        let mut start = None;
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.results_table)
                .key_condition_expression("intentId = :p")
                .expression_attribute_values(":p", s(format!("dupr#{user}")))
                .scan_index_forward(false)
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            for item in page.items() {
                let seen: Seen = body_of(item)?;
                if seen.is_live(now) {
                    out.push(seen);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn known(
        &self,
        user: &UserId,
        digests: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, PortError> {
        let mut out = Vec::new();
        for chunk in digests.chunks(BATCH_GET_MAX) {
            out.extend(self.known_chunk(user, chunk, now).await?);
        }
        Ok(out)
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
        for item in self.partition(&format!("dupf#{intent}"), None).await? {
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
