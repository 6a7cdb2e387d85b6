//! Concurrency slots in the intents table: `intentId = "slot#{pool}#{n}"` with a `holder`,
//! taken with a conditional put and freed with a conditional delete (see `app::slots`).

use super::{s, DynamoStore};
use crate::adapters::aws::classify;
use crate::ports::{PortError, SlotStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

fn slot_key(pool: &str, idx: u32) -> String {
    format!("slot#{pool}#{idx}")
}

#[async_trait]
impl SlotStore for DynamoStore {
    async fn acquire(&self, pool: &str, holder: &str, cap: u32) -> Result<bool, PortError> {
        // Already holding one (a retry after a crash)? Strongly consistent reads, so a holder
        // never takes a second slot.
        for idx in 0..cap {
            if let Some(item) = self.get_item(&slot_key(pool, idx)).await? {
                if item
                    .get("holder")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(holder)
                {
                    return Ok(true);
                }
            }
        }
        for idx in 0..cap {
            let result = self
                .client
                .put_item()
                .table_name(&self.intents_table)
                .item("intentId", s(slot_key(pool, idx)))
                .item("holder", s(holder))
                .condition_expression("attribute_not_exists(intentId) OR holder = :h")
                .expression_attribute_values(":h", s(holder))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
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
        Ok(false)
    }

    async fn release(&self, pool: &str, holder: &str, cap: u32) -> Result<(), PortError> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        for idx in 0..cap {
            let result = self
                .client
                .delete_item()
                .table_name(&self.intents_table)
                .key("intentId", s(slot_key(pool, idx)))
                .condition_expression("holder = :h")
                .expression_attribute_values(":h", s(holder))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e)
                    if matches!(
                        e.as_service_error(),
                        Some(DeleteItemError::ConditionalCheckFailedException(_))
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(classify("DeleteItem", e)),
            }
        }
        Ok(())
    }

    async fn held(&self, pool: &str, cap: u32) -> Result<u32, PortError> {
        let mut held = 0;
        for idx in 0..cap {
            held += u32::from(self.get_item(&slot_key(pool, idx)).await?.is_some());
        }
        Ok(held)
    }
}
