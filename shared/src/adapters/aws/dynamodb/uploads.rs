//! The uploads index on DynamoDB: its own table (see [`DynamoUploads`]).

use super::{s, unexpected, Item};
use crate::adapters::aws::classify;
use crate::domain::ids::UserId;
use crate::domain::uploads::Upload;
use crate::ports::{ErrorKind, PortError, UploadsIndex};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::NaiveDate;

/// The uploads index: its own table, PK `pk`, SK `sk`, two item kinds:
///
/// | pk | sk | use |
/// | --- | --- | --- |
/// | `up#{day}#{userId}` | the object key | a user's uploads of a day, in key order (`body` = the upload) |
/// | `day#{day}` | userId | the users with uploads that day (the nightly run) |
///
/// Each carries `expiresAt` (TTL, epoch seconds): 90 days after its day, with the uploads.
///
/// Both are plain puts of the same values, so recording twice is recording once.
#[derive(Debug, Clone)]
pub struct DynamoUploads {
    client: Client,
    table: String,
}

impl DynamoUploads {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    /// Every item of partition `pk`, in sort-key order.
    async fn partition(&self, pk: &str) -> Result<Vec<Item>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(pk))
                // A base-table query can be consistent (a GSI cannot): the nightly run sees
                // every upload indexed before it.
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
}

#[async_trait]
impl UploadsIndex for DynamoUploads {
    async fn record(&self, upload: &Upload) -> Result<(), PortError> {
        let body = serde_json::to_string(upload)
            .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "encode upload", e))?;
        let day = upload.day.format("%Y-%m-%d").to_string();
        // Both items leave with the uploads themselves (TTL; see UPLOAD_RETENTION_DAYS).
        let expires = aws_sdk_dynamodb::types::AttributeValue::N(
            crate::domain::uploads::upload_expires_at(upload.day).to_string(),
        );
        let items = [
            Item::from([
                ("pk".into(), s(format!("up#{day}#{}", upload.user_id))),
                ("sk".into(), s(upload.key.as_str())),
                ("body".into(), s(body)),
                ("expiresAt".into(), expires.clone()),
            ]),
            Item::from([
                ("pk".into(), s(format!("day#{day}"))),
                ("sk".into(), s(upload.user_id.as_str())),
                ("expiresAt".into(), expires),
            ]),
        ];
        for item in items {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| classify("PutItem", e))?;
        }
        Ok(())
    }

    async fn uploads(&self, user: &UserId, day: NaiveDate) -> Result<Vec<Upload>, PortError> {
        let pk = format!("up#{}#{user}", day.format("%Y-%m-%d"));
        self.partition(&pk)
            .await?
            .iter()
            .map(|item| {
                let body = item
                    .get("body")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| unexpected("upload item has no body"))?;
                serde_json::from_str(body)
                    .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "decode upload", e))
            })
            .collect()
    }

    async fn users(&self, day: NaiveDate) -> Result<Vec<UserId>, PortError> {
        let pk = format!("day#{}", day.format("%Y-%m-%d"));
        self.partition(&pk)
            .await?
            .iter()
            .map(|item| {
                let raw = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| unexpected("day item has no sk"))?;
                UserId::parse(raw).map_err(|e| unexpected(e.rule))
            })
            .collect()
    }
}
