//! Secondary indexes that lag like DynamoDB's GSIs, for the embedded store. Each write is
//! logged with the time it becomes visible (`delay` later on `clock`); an index read first
//! brings the index's own copy (`index_rows`) up to every logged write whose time has come,
//! newer versions winning, as a GSI converges on an item's last write. Until then index reads
//! see the previous version, or nothing for a new intent.

use super::db::{map_err, ts, Db};
use crate::domain::intent::BatchIntent;
use crate::ports::{Clock, PortError};
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Transaction};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS index_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    intent_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    outbox_staged_at TEXT,
    body TEXT NOT NULL,
    visible_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS index_log_by_visible ON index_log(visible_at);
CREATE TABLE IF NOT EXISTS index_rows (
    intent_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    outbox_staged_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS index_rows_by_job ON index_rows(job_id);
CREATE INDEX IF NOT EXISTS index_rows_by_user ON index_rows(user_id, created_at);
CREATE INDEX IF NOT EXISTS index_rows_by_status ON index_rows(status, updated_at);
CREATE INDEX IF NOT EXISTS index_rows_by_outbox ON index_rows(outbox_staged_at) WHERE outbox_staged_at IS NOT NULL;
";

/// Copies intents' index columns from `source` (a table and its clause) into the index's copy;
/// an older version never replaces a newer one. (The clause needs a WHERE: SQLite would read a
/// bare `ON` as a join constraint.)
fn upsert_rows(source: &str) -> String {
    format!(
        "INSERT INTO index_rows (intent_id, job_id, user_id, status, version, created_at, updated_at, outbox_staged_at, body)
         SELECT intent_id, job_id, user_id, status, version, created_at, updated_at, outbox_staged_at, body
         FROM {source}
         ON CONFLICT(intent_id) DO UPDATE SET job_id = excluded.job_id, user_id = excluded.user_id,
           status = excluded.status, version = excluded.version, created_at = excluded.created_at,
           updated_at = excluded.updated_at, outbox_staged_at = excluded.outbox_staged_at, body = excluded.body
         WHERE excluded.version > index_rows.version"
    )
}

/// How late the secondary indexes see a write, on `clock`.
#[derive(Debug, Clone)]
pub(super) struct IndexLag {
    delay: Duration,
    clock: Arc<dyn Clock>,
}

impl IndexLag {
    /// Creates the index tables; intents written while the lag was off (before, or in an
    /// earlier run of the same data dir) are indexed already, at their current version.
    pub(super) fn start(
        db: &Db,
        delay: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        db.execute_batch(&upsert_rows("intents WHERE true"))?;
        Ok(Self { delay, clock })
    }

    /// The index's copy, as `idx`, first brought up to every write whose time has come.
    pub(super) fn source(&self, tx: &Transaction<'_>) -> Result<&'static str, PortError> {
        let now = ts(self.clock.now());
        tx.execute(
            &upsert_rows("index_log WHERE visible_at <= ?1 ORDER BY seq"),
            [&now],
        )
        .map_err(map_err)?;
        tx.execute("DELETE FROM index_log WHERE visible_at <= ?1", [&now])
            .map_err(map_err)?;
        Ok("index_rows AS idx")
    }

    /// Logs a write, visible to the indexes `delay` from now.
    pub(super) fn log(
        &self,
        tx: &Transaction<'_>,
        intent: &BatchIntent,
        body: &str,
    ) -> Result<(), PortError> {
        tx.execute(
            "INSERT INTO index_log (intent_id, job_id, user_id, status, version, created_at, updated_at, outbox_staged_at, body, visible_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                intent.intent_id.as_str(),
                intent.job_id.as_str(),
                intent.user_id.as_str(),
                intent.status.as_str(),
                intent.version as i64,
                ts(intent.created_at),
                ts(intent.updated_at),
                intent.outbox.as_ref().map(|o| ts(o.staged_at)),
                body,
                ts(self.clock.now() + self.delay)
            ],
        )
        .map_err(map_err)?;
        Ok(())
    }

    /// When the indexes next see a write they do not see yet.
    pub(super) fn catches_up_at(
        &self,
        tx: &Transaction<'_>,
    ) -> Result<Option<DateTime<Utc>>, PortError> {
        let next: Option<String> = tx
            .query_row(
                "SELECT MIN(visible_at) FROM index_log WHERE visible_at > ?1",
                [ts(self.clock.now())],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        Ok(next
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }
}
