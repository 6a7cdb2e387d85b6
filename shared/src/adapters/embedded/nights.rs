//! The nights (`domain::night`) in SQLite: `night_points` (a row per night and pass time) and
//! `night_tallies` (a row per night and ended intent), both pruned once expired, and
//! `night_summaries` (a row per night). Every write replaces its row: a replay writes the same
//! row again.

use super::db::{json_err, map_err, ts, Db};
use crate::domain::night::{NightPoint, NightSummary, Tally};
use crate::ports::{NightLog, PortError};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS night_points (
    night TEXT NOT NULL,
    at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (night, at)
);
CREATE TABLE IF NOT EXISTS night_tallies (
    night TEXT NOT NULL,
    intent_id TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (night, intent_id)
);
CREATE TABLE IF NOT EXISTS night_summaries (
    night TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
";

#[derive(Debug, Clone)]
pub struct SqliteNights {
    db: Arc<Db>,
}

impl SqliteNights {
    pub fn new(db: Arc<Db>) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self { db })
    }
}

impl SqliteNights {
    /// The JSON bodies `sql` selects for `night`, decoded.
    fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        night: NaiveDate,
    ) -> Result<Vec<T>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx.prepare(sql).map_err(map_err)?;
            let rows = stmt
                .query_map(params![night.to_string()], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            rows.map(|r| {
                r.map_err(map_err)
                    .and_then(|b| serde_json::from_str(&b).map_err(json_err))
            })
            .collect()
        })
    }
}

#[async_trait]
impl NightLog for SqliteNights {
    async fn put_point(
        &self,
        night: NaiveDate,
        point: &NightPoint,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let body = serde_json::to_string(point).map_err(json_err)?;
        self.db.tx(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO night_points (night, at, expires_at, body) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![night.to_string(), ts(point.at), ts(expires_at), body],
            )
            .map_err(map_err)?;
            // What DynamoDB's TTL does to the points and tallies of a month ago.
            for table in ["night_points", "night_tallies"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE expires_at < ?1"),
                    params![ts(point.at)],
                )
                .map_err(map_err)?;
            }
            Ok(())
        })
    }

    async fn points(&self, night: NaiveDate) -> Result<Vec<NightPoint>, PortError> {
        self.bodies(
            "SELECT body FROM night_points WHERE night = ?1 ORDER BY at",
            night,
        )
    }

    async fn put_tally(
        &self,
        night: NaiveDate,
        tally: &Tally,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let body = serde_json::to_string(tally).map_err(json_err)?;
        self.db.tx(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO night_tallies (night, intent_id, expires_at, body) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    night.to_string(),
                    tally.intent_id.as_str(),
                    ts(expires_at),
                    body
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn tallies(&self, night: NaiveDate) -> Result<Vec<Tally>, PortError> {
        self.bodies(
            "SELECT body FROM night_tallies WHERE night = ?1 ORDER BY intent_id",
            night,
        )
    }

    async fn put_summary(&self, summary: &NightSummary) -> Result<(), PortError> {
        let body = serde_json::to_string(summary).map_err(json_err)?;
        self.db.tx(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO night_summaries (night, body) VALUES (?1, ?2)",
                params![summary.night.to_string(), body],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn summaries(&self, nights: &[NaiveDate]) -> Result<Vec<NightSummary>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT body FROM night_summaries WHERE night = ?1")
                .map_err(map_err)?;
            let mut out = Vec::new();
            for night in nights {
                let mut rows = stmt
                    .query_map(params![night.to_string()], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                if let Some(body) = rows.next() {
                    let body = body.map_err(map_err)?;
                    out.push(serde_json::from_str(&body).map_err(json_err)?);
                }
            }
            Ok(out)
        })
    }
}
