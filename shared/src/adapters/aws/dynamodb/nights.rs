//! The nights (`domain::night`) in the store's tables:
//!
//! | item | table | key | other attributes |
//! |---|---|---|---|
//! | a night's summary | intents | `intentId = night#{date}` | `body` (the `NightSummary`); no `status` or `userId`, so no index holds it |
//! | a point of a night | results | `intentId = night#{date}`, `recordId = p#{at}` | `body` (the `NightPoint`), `expiresAt` (TTL) |
//! | an ended intent's tally | results | `intentId = night#{date}`, `recordId = i#{intentId}` | `body` (the `Tally`), `expiresAt` (TTL) |
//!
//! Both are plain puts of one key: a replay writes the same item again. `#` cannot appear in
//! an intent id, so neither meets an intent or its results. Also here: the status index read
//! that finds a night's intents ([`changed_since`]).

use super::{s, ts, unexpected, DynamoStore, Item, GSI_BY_STATUS_UPDATED};
use crate::adapters::aws::classify;
use crate::domain::intent::BatchIntent;
use crate::domain::night::{NightPoint, NightSummary, Tally};
use crate::domain::status::IntentStatus;
use crate::ports::{ErrorKind, NightLog, PortError};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

fn night_key(night: NaiveDate) -> String {
    format!("night#{night}")
}

fn body_of<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, PortError> {
    let body = item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unexpected("night item has no body"))?;
    serde_json::from_str(body)
        .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "decode night item", e))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, PortError> {
    serde_json::to_string(v)
        .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "encode night item", e))
}

/// Intents in `status` changed at or after `since`, oldest first, read from `byStatusUpdated`
/// as it stands (it projects every attribute, so no re-read): page by page up to `limit`.
pub(super) async fn changed_since(
    store: &DynamoStore,
    status: IntentStatus,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<BatchIntent>, PortError> {
    let query = store
        .client
        .query()
        .table_name(&store.intents_table)
        .index_name(GSI_BY_STATUS_UPDATED)
        .key_condition_expression("#s = :s AND updatedAt >= :since")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", s(status.as_str()))
        .expression_attribute_values(":since", s(ts(since)))
        .limit(limit.min(1000) as i32);
    super::first_items(query, limit)
        .await?
        .iter()
        .map(super::intent_from_item)
        .collect()
}

impl DynamoStore {
    /// The bodies of a night's items whose sort key starts with `kind`, in key order.
    async fn night_items<T: serde::de::DeserializeOwned>(
        &self,
        night: NaiveDate,
        kind: &str,
    ) -> Result<Vec<T>, PortError> {
        self.partition(&night_key(night), Some(kind))
            .await?
            .iter()
            .map(body_of)
            .collect()
    }
}

#[async_trait]
impl NightLog for DynamoStore {
    async fn put_point(
        &self,
        night: NaiveDate,
        point: &NightPoint,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let sk = format!("p#{}", ts(point.at));
        self.put_under(night_key(night), sk, json(point)?, expires_at)
            .await
    }

    async fn points(&self, night: NaiveDate) -> Result<Vec<NightPoint>, PortError> {
        // In sort-key (time) order.
        self.night_items(night, "p#").await
    }

    async fn put_tally(
        &self,
        night: NaiveDate,
        tally: &Tally,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let sk = format!("i#{}", tally.intent_id);
        self.put_under(night_key(night), sk, json(tally)?, expires_at)
            .await
    }

    async fn tallies(&self, night: NaiveDate) -> Result<Vec<Tally>, PortError> {
        self.night_items(night, "i#").await
    }

    async fn put_summary(&self, summary: &NightSummary) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.intents_table)
            .item("intentId", s(night_key(summary.night)))
            .item("body", s(json(summary)?))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    async fn summaries(&self, nights: &[NaiveDate]) -> Result<Vec<NightSummary>, PortError> {
        let mut out = Vec::new();
        for night in nights {
            if let Some(item) = self.get_item(&night_key(*night)).await? {
                out.push(body_of(&item)?);
            }
        }
        Ok(out)
    }
}
