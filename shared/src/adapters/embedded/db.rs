//! One SQLite connection shared by the embedded adapters that live in the same file.
//! SQLite through `rusqlite` (bundled): a real embedded database whose transactions give the
//! same all-or-nothing conditional writes DynamoDB gives.

use crate::ports::{ErrorKind, PortError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct Db {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    pub fn open(path: &Path) -> Result<Arc<Self>, PortError> {
        let conn = Connection::open(path).map_err(map_err)?;
        // WAL lets another process (the CLI's `status`) read while a run writes; the busy
        // timeout turns a brief lock into a wait instead of an error.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(map_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(map_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(map_err)?;
        Ok(Arc::new(Self {
            conn: Mutex::new(conn),
        }))
    }

    pub fn in_memory() -> Result<Arc<Self>, PortError> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        Ok(Arc::new(Self {
            conn: Mutex::new(conn),
        }))
    }

    /// Runs `f` inside one IMMEDIATE transaction, so a read-check-write is atomic even against
    /// another process on the same file.
    pub fn tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(map_err)?;
        Ok(out)
    }

    pub fn execute_batch(&self, sql: &str) -> Result<(), PortError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute_batch(sql).map_err(map_err)
    }
}

/// Busy/locked is transient (another writer holds the file); everything else is unexpected.
pub fn map_err(e: rusqlite::Error) -> PortError {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            ErrorKind::Transient
        }
        _ => ErrorKind::Unexpected,
    };
    PortError::with_source(kind, "sqlite", e)
}

pub fn json_err(e: serde_json::Error) -> PortError {
    PortError::with_source(ErrorKind::Unexpected, "stored JSON is unreadable", e)
}

/// A time as the embedded tables store it: RFC 3339 in microseconds, UTC, so text order is time
/// order.
pub(super) fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
