//! Job durations per model in SQLite (`job_history` in state.db): a row per finished job,
//! the newest [`HISTORY`] kept.

use super::db::{json_err, map_err, Db};
use crate::domain::deadline::{JobSample, HISTORY};
use crate::ports::{JobHistory, PortError};
use async_trait::async_trait;
use rusqlite::params;
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS job_history (
    model TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_history_by_model ON job_history (model, ended_at);
";

#[derive(Debug, Clone)]
pub struct SqliteHistory {
    db: Arc<Db>,
}

impl SqliteHistory {
    pub fn new(db: Arc<Db>) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self { db })
    }
}

#[async_trait]
impl JobHistory for SqliteHistory {
    async fn record(&self, model: &str, sample: &JobSample) -> Result<(), PortError> {
        let body = serde_json::to_string(sample).map_err(json_err)?;
        let ended = sample.ended_at.to_rfc3339();
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO job_history (model, ended_at, body) VALUES (?1, ?2, ?3)",
                params![model, ended, body],
            )
            .map_err(map_err)?;
            tx.execute(
                "DELETE FROM job_history WHERE model = ?1 AND seq NOT IN \
                 (SELECT seq FROM job_history WHERE model = ?1 ORDER BY ended_at DESC, seq DESC LIMIT ?2)",
                params![model, HISTORY as i64],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn recent(&self, model: &str) -> Result<Vec<JobSample>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT body FROM job_history WHERE model = ?1 ORDER BY ended_at DESC, seq DESC LIMIT ?2",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![model, HISTORY as i64], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            rows.map(|r| {
                r.map_err(map_err)
                    .and_then(|b| serde_json::from_str(&b).map_err(json_err))
            })
            .collect()
        })
    }
}
