//! Per-user allowances in the embedded store's SQLite file (see `app::limits`): the same
//! all-or-nothing conditional changes the DynamoDB adapter makes with a conditional `ADD`, each
//! inside one IMMEDIATE transaction.

use super::db::map_err;
use super::store::SqliteStore;
use crate::domain::ids::{IntentId, UserId};
use crate::ports::{Allowances, PortError};
use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl Allowances for SqliteStore {
    async fn open(&self, user: &UserId, intent: &IntentId, max: usize) -> Result<bool, PortError> {
        let (user, intent) = (user.to_string(), intent.to_string());
        self.db.tx(|tx| {
            let open: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM open_intents WHERE user_id = ?1",
                    params![user],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            let held: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM open_intents WHERE user_id = ?1 AND intent_id = ?2",
                    params![user, intent],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if held.is_some() {
                return Ok(true);
            }
            if open as usize >= max {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO open_intents (user_id, intent_id) VALUES (?1, ?2)",
                params![user, intent],
            )
            .map_err(map_err)?;
            Ok(true)
        })
    }

    async fn close(&self, user: &UserId, intent: &IntentId) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute(
                "DELETE FROM open_intents WHERE user_id = ?1 AND intent_id = ?2",
                params![user.to_string(), intent.to_string()],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn open_intents(&self, user: &UserId) -> Result<Vec<IntentId>, PortError> {
        let ids: Vec<String> = self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT intent_id FROM open_intents WHERE user_id = ?1")
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.to_string()], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            rows.map(|r| r.map_err(map_err)).collect()
        })?;
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
        let (user, day) = (user.to_string(), day.to_string());
        self.db.tx(|tx| {
            let counted: i64 = tx
                .query_row(
                    "SELECT images FROM images_by_day WHERE user_id = ?1 AND day = ?2",
                    params![user, day],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?
                .unwrap_or(0);
            let total = (counted.max(0) as u64).saturating_add(images);
            if total > max {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO images_by_day (user_id, day, images) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user_id, day) DO UPDATE SET images = excluded.images",
                params![user, day, total as i64],
            )
            .map_err(map_err)?;
            Ok(true)
        })
    }

    async fn give_back_images(
        &self,
        user: &UserId,
        day: NaiveDate,
        images: u64,
    ) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE images_by_day SET images = MAX(images - ?3, 0) WHERE user_id = ?1 AND day = ?2",
                params![user.to_string(), day.to_string(), images as i64],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }
}
