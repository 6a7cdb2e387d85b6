//! The embedded intent store and result store, in SQLite. The conditions match the DynamoDB
//! adapter's: create only if absent (returning the old item), update only at the expected
//! version, and lookups by jobId and Bedrock job ARN through pointer tables written in the
//! same transaction (consistent, like the DynamoDB pointer items).
//!
//! The secondary-index reads (a user's list, intents by status, owed outboxes) can be made to
//! lag like a DynamoDB GSI ([`SqliteStore::with_index_lag`]): each write is then seen by them
//! only `delay` later, until then they see the previous version (or nothing, for a new intent).

use super::db::{json_err, map_err, ts, Db};
use super::index_lag::IndexLag;
use crate::domain::ids::{BedrockJobArn, IntentId, JobId, RecordId, UserId};
use crate::domain::intent::BatchIntent;
use crate::domain::results::ImageResult;
use crate::domain::uploads::Upload;
use crate::ports::{
    Clock, Created, IntentStore, PortError, ResultStore, SlotStore, Updated, UploadsIndex,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS intents (
    intent_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    outbox_staged_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_by_user ON intents(user_id, created_at);
CREATE INDEX IF NOT EXISTS intents_by_status ON intents(status, updated_at);
CREATE INDEX IF NOT EXISTS intents_by_outbox ON intents(outbox_staged_at) WHERE outbox_staged_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS job_pointers (
    job_id TEXT PRIMARY KEY,
    intent_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intent_jobs (
    bedrock_job_arn TEXT PRIMARY KEY,
    intent_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
    pool TEXT NOT NULL,
    idx INTEGER NOT NULL,
    holder TEXT NOT NULL,
    PRIMARY KEY (pool, idx)
);
CREATE TABLE IF NOT EXISTS uploads (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (day, user_id, key)
);
CREATE TABLE IF NOT EXISTS open_intents (
    user_id TEXT NOT NULL,
    intent_id TEXT NOT NULL,
    PRIMARY KEY (user_id, intent_id)
);
CREATE TABLE IF NOT EXISTS images_by_day (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    images INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE TABLE IF NOT EXISTS rate_windows (
    model TEXT NOT NULL,
    win INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (model, win)
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    intent_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (intent_id, record_id)
);
";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) db: Arc<Db>,
    lag: Option<IndexLag>,
}

impl SqliteStore {
    pub fn new(db: Arc<Db>) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self { db, lag: None })
    }

    /// A store whose index reads see each write only `delay` after it (on `clock`), as a
    /// DynamoDB GSI may: tests and `--index-lag-ms` run the pipeline against it.
    pub fn with_index_lag(
        db: Arc<Db>,
        delay: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PortError> {
        let store = Self::new(db)?;
        Ok(Self {
            lag: Some(IndexLag::start(&store.db, delay, clock)?),
            ..store
        })
    }

    /// The rows the secondary indexes see now, as an SQL source named `idx`.
    fn index_source(&self, tx: &Transaction<'_>) -> Result<&'static str, PortError> {
        match &self.lag {
            None => Ok("intents AS idx"),
            Some(lag) => lag.source(tx),
        }
    }

    /// Logs a write for the lagging indexes (nothing without a lag).
    fn log_for_index(
        &self,
        tx: &Transaction<'_>,
        intent: &BatchIntent,
        body: &str,
    ) -> Result<(), PortError> {
        match &self.lag {
            None => Ok(()),
            Some(lag) => lag.log(tx, intent, body),
        }
    }

    /// When the lagging indexes next catch up with a write they do not see yet (the embedded
    /// runner wakes then, as a later scheduled pass would).
    pub fn index_catches_up_at(&self) -> Result<Option<DateTime<Utc>>, PortError> {
        match &self.lag {
            None => Ok(None),
            Some(lag) => self.db.tx(|tx| lag.catches_up_at(tx)),
        }
    }

    /// Index queries name intents; like the DynamoDB adapter, re-read each one (the index row
    /// may be an old version) and keep those that still match.
    fn query_index(
        &self,
        tx: &Transaction<'_>,
        sql_after_from: &str,
        args: &[&dyn rusqlite::ToSql],
        keep: impl Fn(&BatchIntent) -> bool,
    ) -> Result<Vec<BatchIntent>, PortError> {
        let sql = format!(
            "SELECT idx.intent_id FROM {} {sql_after_from}",
            self.index_source(tx)?
        );
        let mut stmt = tx.prepare(&sql).map_err(map_err)?;
        let ids = stmt
            .query_map(args, |r| r.get::<_, String>(0))
            .map_err(map_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(current) =
                read_one(tx, "SELECT body FROM intents WHERE intent_id = ?1", &id)?
            {
                if keep(&current) {
                    out.push(current);
                }
            }
        }
        Ok(out)
    }

    /// Every intent, newest first (for the CLI and tests).
    pub fn all(&self) -> Result<Vec<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT body FROM intents ORDER BY created_at DESC, intent_id")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            rows.map(|r| {
                r.map_err(map_err)
                    .and_then(|b| serde_json::from_str(&b).map_err(json_err))
            })
            .collect()
        })
    }
}

fn read_one(tx: &Transaction<'_>, sql: &str, key: &str) -> Result<Option<BatchIntent>, PortError> {
    let body: Option<String> = tx
        .query_row(sql, [key], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    body.map(|b| serde_json::from_str(&b).map_err(json_err))
        .transpose()
}

fn index_jobs(tx: &Transaction<'_>, intent: &BatchIntent) -> Result<(), PortError> {
    for arn in intent.jobs.iter().filter_map(|j| j.arn.as_ref()) {
        tx.execute(
            "INSERT OR IGNORE INTO intent_jobs (bedrock_job_arn, intent_id) VALUES (?1, ?2)",
            params![arn.as_str(), intent.intent_id.as_str()],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl IntentStore for SqliteStore {
    async fn create(&self, intent: &BatchIntent) -> Result<Created, PortError> {
        let body = serde_json::to_string(intent).map_err(json_err)?;
        self.db.tx(|tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO intents (intent_id, job_id, user_id, status, version, created_at, outbox_staged_at, body, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(intent_id) DO NOTHING",
                    params![
                        intent.intent_id.as_str(),
                        intent.job_id.as_str(),
                        intent.user_id.as_str(),
                        intent.status.as_str(),
                        intent.version as i64,
                        ts(intent.created_at),
                        intent.outbox.as_ref().map(|o| ts(o.staged_at)),
                        body,
                        ts(intent.updated_at)
                    ],
                )
                .map_err(map_err)?;
            if inserted == 1 {
                // The jobId pointer, in the same transaction: the statusUrl answers at once.
                tx.execute(
                    "INSERT OR IGNORE INTO job_pointers (job_id, intent_id) VALUES (?1, ?2)",
                    params![intent.job_id.as_str(), intent.intent_id.as_str()],
                )
                .map_err(map_err)?;
                index_jobs(tx, intent)?;
                self.log_for_index(tx, intent, &body)?;
                return Ok(Created::New);
            }
            let old = read_one(tx, "SELECT body FROM intents WHERE intent_id = ?1", intent.intent_id.as_str())?
                .ok_or_else(|| PortError::new(crate::ports::ErrorKind::Unexpected, "conflicting row vanished"))?;
            Ok(Created::Existing(Box::new(old)))
        })
    }

    async fn update(
        &self,
        intent: &BatchIntent,
        expected_version: u64,
    ) -> Result<Updated, PortError> {
        let body = serde_json::to_string(intent).map_err(json_err)?;
        self.db.tx(|tx| {
            let changed = tx
                .execute(
                    "UPDATE intents SET status = ?1, version = ?2, outbox_staged_at = ?3, body = ?4, updated_at = ?7
                     WHERE intent_id = ?5 AND version = ?6",
                    params![
                        intent.status.as_str(),
                        intent.version as i64,
                        intent.outbox.as_ref().map(|o| ts(o.staged_at)),
                        body,
                        intent.intent_id.as_str(),
                        expected_version as i64,
                        ts(intent.updated_at)
                    ],
                )
                .map_err(map_err)?;
            if changed == 1 {
                index_jobs(tx, intent)?;
                self.log_for_index(tx, intent, &body)?;
                return Ok(Updated::Written);
            }
            let current = read_one(
                tx,
                "SELECT body FROM intents WHERE intent_id = ?1",
                intent.intent_id.as_str(),
            )?
            .ok_or_else(|| {
                PortError::new(
                    crate::ports::ErrorKind::NotFound,
                    format!("no intent {}", intent.intent_id),
                )
            })?;
            Ok(Updated::Stale(Box::new(current)))
        })
    }

    async fn get(&self, id: &IntentId) -> Result<Option<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            read_one(
                tx,
                "SELECT body FROM intents WHERE intent_id = ?1",
                id.as_str(),
            )
        })
    }

    async fn get_by_job_id(&self, id: &JobId) -> Result<Option<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            let owner: Option<String> = tx
                .query_row(
                    "SELECT intent_id FROM job_pointers WHERE job_id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if let Some(owner) = owner {
                return read_one(tx, "SELECT body FROM intents WHERE intent_id = ?1", &owner);
            }
            // No pointer (a data dir from before pointers): the jobId index, which may lag.
            let found = self.query_index(tx, "WHERE idx.job_id = ?1", &[&id.as_str()], |_| true)?;
            Ok(found.into_iter().next())
        })
    }

    async fn get_by_bedrock_arn(
        &self,
        arn: &BedrockJobArn,
    ) -> Result<Option<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            read_one(
                tx,
                "SELECT i.body FROM intent_jobs j JOIN intents i ON i.intent_id = j.intent_id WHERE j.bedrock_job_arn = ?1",
                arn.as_str(),
            )
        })
    }

    async fn list_by_user(
        &self,
        user: &crate::domain::ids::UserId,
        after: Option<(DateTime<Utc>, IntentId)>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        let (after_ts, after_id) = match after {
            Some((t, id)) => (ts(t), id.to_string()),
            // Past any timestamp this store writes.
            None => ("9999".to_owned(), String::new()),
        };
        // Like the GSI's projection, the list answers with the indexed (maybe older) bodies.
        self.db.tx(|tx| {
            let sql = format!(
                "SELECT idx.body FROM {} WHERE idx.user_id = ?1 AND (idx.created_at, idx.intent_id) < (?2, ?3)
                 ORDER BY idx.created_at DESC, idx.intent_id DESC LIMIT ?4",
                self.index_source(tx)?
            );
            let mut stmt = tx.prepare(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(params![user.as_str(), after_ts, after_id, limit as i64], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            rows.map(|r| r.map_err(map_err).and_then(|b| serde_json::from_str(&b).map_err(json_err)))
                .collect()
        })
    }

    async fn list_by_status(
        &self,
        status: crate::domain::status::IntentStatus,
        updated_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            self.query_index(
                tx,
                "WHERE idx.status = ?1 AND idx.updated_at <= ?2 ORDER BY idx.updated_at LIMIT ?3",
                &[&status.as_str(), &ts(updated_before), &(limit as i64)],
                |i| i.status == status,
            )
        })
    }

    async fn list_changed_since(
        &self,
        status: crate::domain::status::IntentStatus,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            self.query_index(
                tx,
                "WHERE idx.status = ?1 AND idx.updated_at >= ?2 ORDER BY idx.updated_at LIMIT ?3",
                &[&status.as_str(), &ts(since), &(limit as i64)],
                |i| i.status == status,
            )
        })
    }

    async fn list_pending_outbox(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<BatchIntent>, PortError> {
        self.db.tx(|tx| {
            self.query_index(
                tx,
                "WHERE idx.outbox_staged_at IS NOT NULL AND idx.outbox_staged_at <= ?1
                 ORDER BY idx.outbox_staged_at LIMIT ?2",
                &[&ts(before), &(limit as i64)],
                |i| i.outbox.is_some(),
            )
        })
    }
}

#[async_trait]
impl ResultStore for SqliteStore {
    async fn put_results(
        &self,
        intent: &IntentId,
        results: &[ImageResult],
    ) -> Result<(), PortError> {
        let rows: Vec<(String, String)> = results
            .iter()
            .map(|r| serde_json::to_string(r).map(|b| (r.record_id.to_string(), b)))
            .collect::<Result<_, _>>()
            .map_err(json_err)?;
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO results (intent_id, record_id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT(intent_id, record_id) DO UPDATE SET body = excluded.body",
                )
                .map_err(map_err)?;
            for (record, body) in &rows {
                stmt.execute(params![intent.as_str(), record, body])
                    .map_err(map_err)?;
            }
            Ok(())
        })
    }

    async fn list_results(
        &self,
        intent: &IntentId,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<ImageResult>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT body FROM results WHERE intent_id = ?1 AND record_id > ?2 ORDER BY record_id LIMIT ?3",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(
                    params![intent.as_str(), after.map(|a| a.as_str()).unwrap_or(""), limit as i64],
                    |r| r.get::<_, String>(0),
                )
                .map_err(map_err)?;
            rows.map(|r| r.map_err(map_err).and_then(|b| serde_json::from_str(&b).map_err(json_err)))
                .collect()
        })
    }
}

#[async_trait]
impl SlotStore for SqliteStore {
    async fn acquire(&self, pool: &str, holder: &str, cap: u32) -> Result<bool, PortError> {
        self.db.tx(|tx| {
            let held: Option<i64> = tx
                .query_row(
                    "SELECT idx FROM slots WHERE pool = ?1 AND holder = ?2",
                    params![pool, holder],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if held.is_some() {
                return Ok(true);
            }
            for idx in 0..cap {
                let taken = tx
                    .execute(
                        "INSERT INTO slots (pool, idx, holder) VALUES (?1, ?2, ?3) ON CONFLICT(pool, idx) DO NOTHING",
                        params![pool, idx, holder],
                    )
                    .map_err(map_err)?;
                if taken == 1 {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    async fn release(&self, pool: &str, holder: &str, _cap: u32) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute(
                "DELETE FROM slots WHERE pool = ?1 AND holder = ?2",
                params![pool, holder],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn held(&self, pool: &str, cap: u32) -> Result<u32, PortError> {
        self.db.tx(|tx| {
            tx.query_row(
                "SELECT COUNT(*) FROM slots WHERE pool = ?1 AND idx < ?2",
                params![pool, cap],
                |r| r.get(0),
            )
            .map_err(map_err)
        })
    }
}

#[async_trait]
impl UploadsIndex for SqliteStore {
    async fn record(&self, upload: &Upload) -> Result<(), PortError> {
        let body = serde_json::to_string(upload).map_err(json_err)?;
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO uploads (user_id, day, key, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(day, user_id, key) DO UPDATE SET body = excluded.body",
                params![
                    upload.user_id.as_str(),
                    upload.day.to_string(),
                    upload.key.as_str(),
                    body
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn uploads(&self, user: &UserId, day: NaiveDate) -> Result<Vec<Upload>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT body FROM uploads WHERE day = ?1 AND user_id = ?2 ORDER BY key")
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![day.to_string(), user.as_str()], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(map_err)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(serde_json::from_str(&row.map_err(map_err)?).map_err(json_err)?);
            }
            Ok(out)
        })
    }

    async fn users(&self, day: NaiveDate) -> Result<Vec<UserId>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT DISTINCT user_id FROM uploads WHERE day = ?1 ORDER BY user_id")
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![day.to_string()], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            let mut out = Vec::new();
            for row in rows {
                let raw = row.map_err(map_err)?;
                out.push(
                    UserId::parse(&raw)
                        .map_err(|e| PortError::new(crate::ports::ErrorKind::Unexpected, e.rule))?,
                );
            }
            Ok(out)
        })
    }
}
