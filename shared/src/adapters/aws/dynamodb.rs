//! DynamoDB adapter for the intent store and the result store.
//!
//! Intents table: PK `intentId` and no sort key (a varying sort key would let a retry slip past
//! `attribute_not_exists`). The intent is stored whole in `body`; beside it the attributes the
//! indexes and the TTL need:
//!
//! | attribute | use |
//! | --- | --- |
//! | `jobId` | GSI `byJobId` (operators, and intents written before job pointers) |
//! | `userId`, `createdAt` | GSI `byUserCreated` (a user's intents, newest first) |
//! | `outboxPending` = "1", `outboxStagedAt` | sparse GSI `byOutbox`: the sweep finds owed events |
//! | `expiresAt` | TTL (epoch seconds) |
//! | `status`, `updatedAt` | GSI `byStatusUpdated`: the reconciler finds open and stuck intents; a freed job slot finds who waits for it |
//! | `version` | the condition of every update |
//!
//! Bedrock job ARNs: one intent can own several jobs, so each ARN gets a pointer item in the
//! same table, `intentId = "bedrock-job#{arn}"` with `ownerIntentId` (no `#` can appear in a
//! real intentId). It is written in the same transaction as the intent and read with a
//! strongly consistent GetItem, so a Bedrock event that follows the write always finds it;
//! `bedrockJobArn` on the pointer also feeds the GSI `byBedrockJobArn` for operators.
//!
//! Job ids: a GSI is eventually consistent, so right after the 202 a `GET {statusUrl}` through
//! `byJobId` could answer 404 for the caller's own new job. So intake first puts a pointer item
//! `intentId = "job#{jobId}"` with `ownerIntentId` (the jobId is derived from the intentId, so
//! a retry or a racer puts the same item: an unconditional put is idempotent), then creates the
//! intent; the status route reads pointer and intent with strongly consistent GetItems. The
//! pointer carries the intent's first `expiresAt`; once it is gone (or for an intent written
//! before pointers existed) the lookup falls back to `byJobId`, long consistent by then.
//!
//! Concurrency slots live in the intents table too: `intentId = "slot#{pool}#{n}"` with a
//! `holder`, taken with a conditional put and freed with a conditional delete.
//!
//! Results table: PK `intentId`, SK `recordId`, `body` = the result JSON, `expiresAt` (TTL):
//! `intent_ttl_days` after the write. Results are written at a job's end, and the intent's own
//! TTL counts from its end, so results expire with their intent.
//!
//! Uploads table: see [`DynamoUploads`] (`dynamodb/uploads.rs`).

mod allowances;
mod duplicates;
mod history;
mod nights;
mod slots;
mod uploads;
pub use uploads::DynamoUploads;

use super::classify;
use crate::domain::ids::{BedrockJobArn, IntentId, JobId, RecordId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::ImageResult;
use crate::ports::{Created, ErrorKind, IntentStore, PortError, ResultStore, Updated};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

pub const GSI_BY_JOB_ID: &str = "byJobId";
pub const GSI_BY_USER_CREATED: &str = "byUserCreated";
pub const GSI_BY_OUTBOX: &str = "byOutbox";
pub const GSI_BY_BEDROCK_JOB_ARN: &str = "byBedrockJobArn";
pub const GSI_BY_STATUS_UPDATED: &str = "byStatusUpdated";
const ARN_POINTER_PREFIX: &str = "bedrock-job#";
const JOB_POINTER_PREFIX: &str = "job#";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    intents_table: String,
    results_table: String,
    /// Days a result lives after it is written (the results table's TTL).
    results_ttl_days: i64,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn unexpected(msg: impl Into<String>) -> PortError {
    PortError::new(ErrorKind::Unexpected, msg)
}

/// An intent's item: its JSON body, plus the key, index and TTL attributes the table and its
/// GSIs read. Written through `serde_dynamo`; read back by its `body` alone.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IntentRow<'a> {
    intent_id: &'a str,
    job_id: &'a str,
    user_id: &'a str,
    created_at: String,
    updated_at: String,
    status: &'a str,
    version: u64,
    expires_at: i64,
    body: String,
    /// `byOutbox` holds only intents owing events.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox_pending: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox_staged_at: Option<String>,
}

/// A pointer to an intent (by Bedrock job ARN or by jobId), so a lookup is one consistent
/// read instead of a lagging GSI query.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PointerRow<'a> {
    intent_id: String,
    owner_intent_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bedrock_job_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

fn to_item(row: impl serde::Serialize, what: &'static str) -> Result<Item, PortError> {
    serde_dynamo::to_item(row).map_err(|e| PortError::with_source(ErrorKind::Unexpected, what, e))
}

/// The item for an intent: its JSON body plus the key, index and TTL attributes.
pub fn intent_item(intent: &BatchIntent) -> Result<Item, PortError> {
    let body = serde_json::to_string(intent)
        .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "encode intent", e))?;
    let row = IntentRow {
        intent_id: intent.intent_id.as_str(),
        job_id: intent.job_id.as_str(),
        user_id: intent.user_id.as_str(),
        created_at: ts(intent.created_at),
        updated_at: ts(intent.updated_at),
        status: intent.status.as_str(),
        version: intent.version,
        expires_at: intent.expires_at.timestamp(),
        body,
        outbox_pending: intent.outbox.as_ref().map(|_| "1"),
        outbox_staged_at: intent.outbox.as_ref().map(|o| ts(o.staged_at)),
    };
    to_item(row, "encode intent item")
}

fn intent_from_item(item: &Item) -> Result<BatchIntent, PortError> {
    let body = item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unexpected("intent item has no body"))?;
    serde_json::from_str(body)
        .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "decode intent", e))
}

fn pointer_item(arn: &BedrockJobArn, owner: &IntentId) -> Result<Item, PortError> {
    let row = PointerRow {
        intent_id: format!("{ARN_POINTER_PREFIX}{arn}"),
        owner_intent_id: owner.as_str(),
        bedrock_job_arn: Some(arn.as_str()),
        expires_at: None,
    };
    to_item(row, "encode ARN pointer")
}

/// The jobId pointer: no `jobId` attribute of its own, so it stays out of `byJobId`.
fn job_pointer_item(intent: &BatchIntent) -> Result<Item, PortError> {
    let row = PointerRow {
        intent_id: format!("{JOB_POINTER_PREFIX}{}", intent.job_id),
        owner_intent_id: intent.intent_id.as_str(),
        bedrock_job_arn: None,
        expires_at: Some(intent.expires_at.timestamp()),
    };
    to_item(row, "encode jobId pointer")
}

fn owner_of(pointer: &Item) -> Result<IntentId, PortError> {
    let owner = pointer
        .get("ownerIntentId")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unexpected("pointer has no ownerIntentId"))?;
    IntentId::parse(owner).map_err(|e| unexpected(e.rule))
}

impl DynamoStore {
    pub fn new(
        client: Client,
        intents_table: impl Into<String>,
        results_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            intents_table: intents_table.into(),
            results_table: results_table.into(),
            results_ttl_days: 30,
        }
    }

    /// Results expire this many days after they are written (the intents' TTL, `INTENT_TTL_DAYS`).
    pub fn with_results_ttl_days(mut self, days: i64) -> Self {
        self.results_ttl_days = days;
        self
    }

    async fn get_item(&self, key: &str) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.intents_table)
            .key("intentId", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        Ok(out.item)
    }

    async fn query_one(
        &self,
        index: &str,
        attr: &str,
        value: &str,
    ) -> Result<Option<BatchIntent>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.intents_table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":v", s(value))
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        out.items().first().map(intent_from_item).transpose()
    }

    /// GSIs are eventually consistent: re-read each intent an index named and keep those that
    /// still match.
    async fn reread(
        &self,
        items: &[Item],
        keep: impl Fn(&BatchIntent) -> bool,
    ) -> Result<Vec<BatchIntent>, PortError> {
        let mut intents = Vec::with_capacity(items.len());
        for item in items {
            let seen = intent_from_item(item)?;
            if let Some(current) = self.get(&seen.intent_id).await? {
                if keep(&current) {
                    intents.push(current);
                }
            }
        }
        Ok(intents)
    }

    async fn current(&self, id: &IntentId) -> Result<BatchIntent, PortError> {
        self.get(id)
            .await?
            .ok_or_else(|| PortError::new(ErrorKind::NotFound, format!("no intent {id}")))
    }
}

#[async_trait]
impl IntentStore for DynamoStore {
    async fn create(&self, intent: &BatchIntent) -> Result<Created, PortError> {
        // The pointer first: once the intent exists (and so once a 202 names its statusUrl),
        // its jobId resolves with consistent reads. A crash in between leaves a pointer to
        // nothing, which reads as 404 until a retry creates the intent.
        self.client
            .put_item()
            .table_name(&self.intents_table)
            .set_item(Some(job_pointer_item(intent)?))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.intents_table)
            .set_item(Some(intent_item(intent)?))
            .condition_expression("attribute_not_exists(intentId)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::New),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(cf)) => {
                    // ALL_OLD hands back the winner's item: no second read.
                    let old = match cf.item() {
                        Some(item) => intent_from_item(item)?,
                        None => self.current(&intent.intent_id).await?,
                    };
                    Ok(Created::Existing(Box::new(old)))
                }
                _ => Err(classify("PutItem", e)),
            },
        }
    }

    async fn update(
        &self,
        intent: &BatchIntent,
        expected_version: u64,
    ) -> Result<Updated, PortError> {
        let put = Put::builder()
            .table_name(&self.intents_table)
            .set_item(Some(intent_item(intent)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "build Put", e))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for arn in intent.jobs.iter().filter_map(|j| j.arn.as_ref()) {
            let pointer = Put::builder()
                .table_name(&self.intents_table)
                .set_item(Some(pointer_item(arn, &intent.intent_id)?))
                .build()
                .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "build Put", e))?;
            items.push(TransactWriteItem::builder().put(pointer).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Updated::Written),
            Err(e) => {
                let lost_condition = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(tc)) => tc
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed"),
                    _ => false,
                };
                if lost_condition {
                    Ok(Updated::Stale(Box::new(
                        self.current(&intent.intent_id).await?,
                    )))
                } else {
                    Err(classify("TransactWriteItems", e))
                }
            }
        }
    }

    async fn get(&self, id: &IntentId) -> Result<Option<BatchIntent>, PortError> {
        self.get_item(id.as_str())
            .await?
            .as_ref()
            .map(intent_from_item)
            .transpose()
    }

    async fn get_by_job_id(&self, id: &JobId) -> Result<Option<BatchIntent>, PortError> {
        if let Some(pointer) = self.get_item(&format!("{JOB_POINTER_PREFIX}{id}")).await? {
            return self.get(&owner_of(&pointer)?).await;
        }
        // No pointer: an intent from before pointers, or one whose pointer's TTL passed. The
        // GSI has long caught up with either; re-read the item it names for the current version.
        match self.query_one(GSI_BY_JOB_ID, "jobId", id.as_str()).await? {
            Some(found) => self.get(&found.intent_id).await,
            None => Ok(None),
        }
    }

    async fn get_by_bedrock_arn(
        &self,
        arn: &BedrockJobArn,
    ) -> Result<Option<BatchIntent>, PortError> {
        let Some(pointer) = self.get_item(&format!("{ARN_POINTER_PREFIX}{arn}")).await? else {
            return Ok(None);
        };
        self.get(&owner_of(&pointer)?).await
    }

    async fn list_by_user(
        &self,
        user: &crate::domain::ids::UserId,
        after: Option<(DateTime<Utc>, IntentId)>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        let start = after.map(|(created, id)| {
            Item::from([
                ("intentId".into(), s(id.as_str())),
                ("userId".into(), s(user.as_str())),
                ("createdAt".into(), s(ts(created))),
            ])
        });
        let query = self
            .client
            .query()
            .table_name(&self.intents_table)
            .index_name(GSI_BY_USER_CREATED)
            .key_condition_expression("userId = :u")
            .expression_attribute_values(":u", s(user.as_str()))
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .limit(limit.min(1000) as i32);
        first_items(query, limit)
            .await?
            .iter()
            .map(intent_from_item)
            .collect()
    }

    async fn list_by_status(
        &self,
        status: crate::domain::status::IntentStatus,
        updated_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        // Page by page up to `limit` (a page is at most 1 MB): a caller that gets fewer than
        // it asked for has seen every such intent (the pool pass relies on it).
        let query = self
            .client
            .query()
            .table_name(&self.intents_table)
            .index_name(GSI_BY_STATUS_UPDATED)
            .key_condition_expression("#s = :s AND updatedAt <= :before")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":before", s(ts(updated_before)))
            .limit(limit.min(1000) as i32);
        let items = first_items(query, limit).await?;
        self.reread(&items, |i| i.status == status).await
    }

    async fn list_changed_since(
        &self,
        status: crate::domain::status::IntentStatus,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        nights::changed_since(self, status, since, limit).await
    }

    async fn list_pending_outbox(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        // Page by page up to `limit`, as `list_by_status` (a page stops at 1 MB).
        let query = self
            .client
            .query()
            .table_name(&self.intents_table)
            .index_name(GSI_BY_OUTBOX)
            .key_condition_expression("outboxPending = :p AND outboxStagedAt <= :before")
            .expression_attribute_values(":p", s("1"))
            .expression_attribute_values(":before", s(ts(before)))
            .limit(limit.min(1000) as i32);
        let items = first_items(query, limit).await?;
        self.reread(&items, |i| i.outbox.is_some()).await
    }
}

/// The first `limit` items of a query, page by page on `LastEvaluatedKey` (a page stops at
/// 1 MB, so a short page is not the end).
async fn first_items(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    limit: usize,
) -> Result<Vec<Item>, PortError> {
    let mut pages = query.into_paginator().send();
    let mut items = Vec::new();
    while items.len() < limit {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| classify("Query", e))?;
        items.extend(page.items().iter().cloned());
    }
    items.truncate(limit);
    Ok(items)
}

/// The wait before retrying a batch call's unprocessed items, try `attempt` (from 0).
fn unprocessed_backoff(attempt: u32) -> std::time::Duration {
    let base = chrono::Duration::milliseconds(50);
    crate::domain::backoff::exponential(attempt + 1, base, chrono::Duration::seconds(10), 0.0)
        .to_std()
        .unwrap_or_default()
}

/// BatchWriteItem takes at most 25 items a call.
const BATCH_WRITE_MAX: usize = 25;

#[async_trait]
impl ResultStore for DynamoStore {
    async fn put_results(
        &self,
        intent: &IntentId,
        results: &[ImageResult],
    ) -> Result<(), PortError> {
        let expires_at = (Utc::now() + chrono::Duration::days(self.results_ttl_days))
            .timestamp()
            .to_string();
        for chunk in results.chunks(BATCH_WRITE_MAX) {
            let mut requests = Vec::with_capacity(chunk.len());
            for r in chunk {
                let body = serde_json::to_string(r).map_err(|e| {
                    PortError::with_source(ErrorKind::Unexpected, "encode result", e)
                })?;
                let put = PutRequest::builder()
                    .item("intentId", s(intent.as_str()))
                    .item("recordId", s(r.record_id.as_str()))
                    .item("body", s(body))
                    .item("expiresAt", AttributeValue::N(expires_at.clone()))
                    .build()
                    .map_err(|e| {
                        PortError::with_source(ErrorKind::Unexpected, "build PutRequest", e)
                    })?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            // Unprocessed items (throttling) are retried with backoff, a bounded number of times.
            let mut pending = requests;
            for attempt in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.results_table, pending)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.results_table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(PortError::new(
                        ErrorKind::Transient,
                        "BatchWriteItem left items unprocessed",
                    ));
                }
                tokio::time::sleep(unprocessed_backoff(attempt)).await;
            }
        }
        Ok(())
    }

    async fn list_results(
        &self,
        intent: &IntentId,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<ImageResult>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = after.map(|a| {
            Item::from([
                ("intentId".into(), s(intent.as_str())),
                ("recordId".into(), s(a.as_str())),
            ])
        });
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.results_table)
                .key_condition_expression("intentId = :i")
                .expression_attribute_values(":i", s(intent.as_str()))
                .set_exclusive_start_key(start.take())
                .limit((limit - out.len()).min(1000) as i32)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            for item in page.items() {
                let body = item
                    .get("body")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| unexpected("result item has no body"))?;
                out.push(serde_json::from_str(body).map_err(|e| {
                    PortError::with_source(ErrorKind::Unexpected, "decode result", e)
                })?);
            }
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                return Ok(out);
            }
        }
    }
}
