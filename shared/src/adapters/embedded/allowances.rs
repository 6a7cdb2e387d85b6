//! Per-user allowances and the on-demand rate budget in the embedded store's SQLite file (see
//! `app::intake::limits`, `app::pace`): the same all-or-nothing conditional changes the DynamoDB adapter
//! makes with a conditional `ADD`, each inside one IMMEDIATE transaction.

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

#[async_trait]
impl crate::ports::RateBudget for SqliteStore {
    async fn take(
        &self,
        model: &str,
        window: chrono::DateTime<chrono::Utc>,
        tokens: u64,
        (max_requests, max_tokens): (u64, u64),
    ) -> Result<bool, PortError> {
        let w = window.timestamp();
        self.db.tx(|tx| {
            let row: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT requests, tokens FROM rate_windows WHERE model = ?1 AND win = ?2",
                    params![model, w],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            if let Some((requests, used)) = row {
                let over_tokens = used.max(0) as u64 + tokens > max_tokens;
                if requests.max(0) as u64 >= max_requests || over_tokens {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO rate_windows (model, win, requests, tokens) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT(model, win) DO UPDATE SET requests = requests + 1, tokens = tokens + ?3",
                params![model, w, tokens as i64],
            )
            .map_err(map_err)?;
            Ok(true)
        })
    }

    async fn correct(
        &self,
        model: &str,
        window: chrono::DateTime<chrono::Utc>,
        delta: i64,
    ) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE rate_windows SET tokens = tokens + ?3 WHERE model = ?1 AND win = ?2",
                params![model, window.timestamp(), delta],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }
}

#[async_trait]
impl crate::ports::Leases for SqliteStore {
    async fn take(
        &self,
        key: &str,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PortError> {
        let (now, until) = (super::db::ts(now), super::db::ts(until));
        self.db.tx(|tx| {
            let taken = tx
                .execute(
                    "INSERT INTO leases (key, holder, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE leases.holder = excluded.holder OR leases.until < ?4",
                    params![key, holder, until, now],
                )
                .map_err(map_err)?;
            Ok(taken == 1)
        })
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE key = ?1 AND holder = ?2",
                params![key, holder],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }
}
