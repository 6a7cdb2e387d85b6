//! The duplicate index in SQLite (state.db): `dup_seen` a row per (user, digest), claimed in
//! one IMMEDIATE transaction (the same all-or-nothing condition as the DynamoDB adapter's
//! conditional put), and `dup_under` a row per (intent, follower or near mark). The first's
//! result is read from the store's `results` table in the same file (`store.rs` creates it;
//! the backend opens the store first).

use super::db::{json_err, map_err, ts, Db};
use crate::domain::duplicates::{takes_over, Claim, FirstCopy, Follower, NearMark, Seen};
use crate::domain::ids::{IntentId, UserId};
use crate::domain::results::ImageResult;
use crate::ports::{DuplicateIndex, PortError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dup_seen (
    user_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (user_id, digest)
);
CREATE INDEX IF NOT EXISTS dup_seen_by_time ON dup_seen (user_id, seen_at);
CREATE TABLE IF NOT EXISTS dup_under (
    intent_id TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (intent_id, sort_key)
);
";

#[derive(Debug, Clone)]
pub struct SqliteDuplicates {
    db: Arc<Db>,
}

impl SqliteDuplicates {
    pub fn new(db: Arc<Db>) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self { db })
    }

    fn put_under(
        &self,
        intent: &IntentId,
        sort_key: &str,
        body: String,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO dup_under (intent_id, sort_key, expires_at, body) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![intent.as_str(), sort_key, ts(expires_at), body],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }
}

#[async_trait]
impl DuplicateIndex for SqliteDuplicates {
    async fn claim(
        &self,
        user: &UserId,
        seen: &Seen,
        now: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        let body = serde_json::to_string(seen).map_err(json_err)?;
        self.db.tx(|tx| {
            let found: Option<String> = tx
                .query_row(
                    "SELECT body FROM dup_seen WHERE user_id = ?1 AND digest = ?2",
                    params![user.as_str(), seen.digest],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if let Some(found) = found {
                let found: Seen = serde_json::from_str(&found).map_err(json_err)?;
                if found.first == seen.first && found.is_live(now) {
                    return Ok(Claim::First);
                }
                if !takes_over(&found, &seen.first, now) {
                    return Ok(Claim::Duplicate(found.first));
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO dup_seen (user_id, digest, expires_at, seen_at, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    user.as_str(),
                    seen.digest,
                    ts(seen.expires_at),
                    ts(seen.seen_at),
                    body
                ],
            )
            .map_err(map_err)?;
            Ok(Claim::First)
        })
    }

    async fn replace(
        &self,
        user: &UserId,
        seen: &Seen,
        stale: &FirstCopy,
        now: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        let body = serde_json::to_string(seen).map_err(json_err)?;
        let replaced = self.db.tx(|tx| {
            let found: Option<String> = tx
                .query_row(
                    "SELECT body FROM dup_seen WHERE user_id = ?1 AND digest = ?2",
                    params![user.as_str(), seen.digest],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let found: Option<Seen> = found
                .map(|b| serde_json::from_str(&b).map_err(json_err))
                .transpose()?;
            if found.is_some_and(|f| f.first == *stale) {
                tx.execute(
                    "INSERT OR REPLACE INTO dup_seen (user_id, digest, expires_at, seen_at, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        user.as_str(),
                        seen.digest,
                        ts(seen.expires_at),
                        ts(seen.seen_at),
                        body
                    ],
                )
                .map_err(map_err)?;
                return Ok(true);
            }
            Ok(false)
        })?;
        if replaced {
            return Ok(Claim::First);
        }
        self.claim(user, seen, now).await
    }

    async fn recent(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Seen>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT body FROM dup_seen WHERE user_id = ?1 AND expires_at > ?2 \
                     ORDER BY seen_at DESC LIMIT ?3",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.as_str(), ts(now), limit as i64], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(map_err)?;
            rows.map(|r| {
                r.map_err(map_err)
                    .and_then(|b| serde_json::from_str(&b).map_err(json_err))
            })
            .collect()
        })
    }

    async fn known(
        &self,
        user: &UserId,
        digests: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT 1 FROM dup_seen WHERE user_id = ?1 AND digest = ?2 AND expires_at > ?3",
                )
                .map_err(map_err)?;
            let mut out = Vec::new();
            for d in digests {
                let live = stmt
                    .exists(params![user.as_str(), d, ts(now)])
                    .map_err(map_err)?;
                if live {
                    out.push(d.clone());
                }
            }
            Ok(out)
        })
    }

    async fn follow(
        &self,
        follower: &Follower,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let body = serde_json::to_string(follower).map_err(json_err)?;
        self.put_under(
            &follower.first.intent_id,
            &follower.sort_key(),
            body,
            expires_at,
        )
    }

    async fn mark_near(
        &self,
        intent: &IntentId,
        mark: &NearMark,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let body = serde_json::to_string(mark).map_err(json_err)?;
        self.put_under(intent, &format!("n#{}", mark.record_id), body, expires_at)
    }

    async fn under(&self, intent: &IntentId) -> Result<(Vec<Follower>, Vec<NearMark>), PortError> {
        let rows: Vec<(String, String)> = self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT sort_key, body FROM dup_under WHERE intent_id = ?1")
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![intent.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(map_err)?;
            rows.map(|r| r.map_err(map_err)).collect()
        })?;
        let (mut followers, mut near) = (Vec::new(), Vec::new());
        for (key, body) in rows {
            if key.starts_with("n#") {
                near.push(serde_json::from_str(&body).map_err(json_err)?);
            } else {
                followers.push(serde_json::from_str(&body).map_err(json_err)?);
            }
        }
        Ok((followers, near))
    }

    async fn first_result(&self, first: &FirstCopy) -> Result<Option<ImageResult>, PortError> {
        let body: Option<String> = self.db.tx(|tx| {
            tx.query_row(
                "SELECT body FROM results WHERE intent_id = ?1 AND record_id = ?2",
                params![first.intent_id.as_str(), first.record_id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)
        })?;
        body.map(|b| serde_json::from_str(&b).map_err(json_err))
            .transpose()
    }
}
