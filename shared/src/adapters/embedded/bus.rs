//! The embedded event bus: EventBridge rules feeding SQS-like queues, in SQLite. Delivery is
//! at least once: a received message is hidden for a visibility timeout, deleted only when its
//! handler succeeds, made visible again with backoff when it fails, and moved to the queue's
//! dead-letter list after `max_receive_count` receives. Every published event is archived.

use super::db::{map_err, Db};
use crate::domain::events::Envelope;
use crate::ports::{ErrorKind, EventBus, PortError};
use crate::topology::{targets, Queue};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::params;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bus_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at INTEGER NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS bus_by_queue ON bus_messages(queue, dead, visible_at);
CREATE TABLE IF NOT EXISTS bus_archive (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    body TEXT NOT NULL
);
";

#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Receives before a message moves to the DLQ (SQS maxReceiveCount).
    pub max_receive_count: u32,
    /// How long a received message stays hidden (SQS visibility timeout).
    pub visibility_ms: i64,
    /// First retry delay after a failure; doubles with each receive, capped at 15 minutes.
    pub backoff_base_ms: i64,
    /// Deliver every event twice, as at-least-once delivery may.
    pub duplicate_deliveries: bool,
    /// Wall-clock latency of each publish, to widen race windows in tests.
    pub publish_delay_ms: u64,
}

impl Default for BusOptions {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
            visibility_ms: 60_000,
            backoff_base_ms: 1_000,
            duplicate_deliveries: false,
            publish_delay_ms: 0,
        }
    }
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub seq: i64,
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub seq: i64,
    pub queue: Queue,
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub last_error: Option<String>,
}

pub struct SqliteBus {
    db: Arc<Db>,
    clock: Arc<dyn crate::ports::Clock>,
    options: BusOptions,
    /// Fault injection: fail this many publishes from now on.
    fail_publishes: AtomicU32,
}

impl std::fmt::Debug for SqliteBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBus")
            .field("options", &self.options)
            .finish()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl SqliteBus {
    pub fn new(
        db: Arc<Db>,
        clock: Arc<dyn crate::ports::Clock>,
        options: BusOptions,
    ) -> Result<Self, PortError> {
        db.execute_batch(SCHEMA)?;
        Ok(Self {
            db,
            clock,
            options,
            fail_publishes: AtomicU32::new(0),
        })
    }

    pub fn options(&self) -> &BusOptions {
        &self.options
    }

    /// Makes the next `n` publishes fail with a transient error.
    pub fn fail_next_publishes(&self, n: u32) {
        self.fail_publishes.store(n, Ordering::SeqCst);
    }

    /// Sends a raw message body to a queue, as SendMessage would (used by DLQ replay and tests).
    pub fn send(&self, queue: Queue, body: &str) -> Result<(), PortError> {
        let now = ms(self.clock.now());
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO bus_messages (message_id, queue, body, visible_at) VALUES (?1, ?2, ?3, ?4)",
                params![uuid::Uuid::new_v4().to_string(), queue.name(), body, now],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    /// Receives up to `max` visible messages. Messages already received `max_receive_count`
    /// times move to the dead-letter list instead, as SQS's redrive policy does.
    pub fn receive(&self, queue: Queue, max: usize) -> Result<Vec<Delivery>, PortError> {
        let now = ms(self.clock.now());
        let opts = &self.options;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE bus_messages SET dead = 1 WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 AND receive_count >= ?3",
                params![queue.name(), now, opts.max_receive_count],
            )
            .map_err(map_err)?;
            let mut stmt = tx
                .prepare(
                    "SELECT seq, message_id, body, receive_count FROM bus_messages
                     WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
                )
                .map_err(map_err)?;
            let rows: Vec<Delivery> = stmt
                .query_map(params![queue.name(), now, max as i64], |r| {
                    Ok(Delivery {
                        seq: r.get(0)?,
                        message_id: r.get(1)?,
                        body: r.get(2)?,
                        receive_count: r.get::<_, u32>(3)? + 1,
                    })
                })
                .map_err(map_err)?
                .collect::<Result<_, _>>()
                .map_err(map_err)?;
            for d in &rows {
                tx.execute(
                    "UPDATE bus_messages SET receive_count = receive_count + 1, visible_at = ?1 WHERE seq = ?2",
                    params![now + opts.visibility_ms, d.seq],
                )
                .map_err(map_err)?;
            }
            Ok(rows)
        })
    }

    /// Deletes a handled message.
    pub fn ack(&self, seq: i64) -> Result<(), PortError> {
        self.db.tx(|tx| {
            tx.execute("DELETE FROM bus_messages WHERE seq = ?1", [seq])
                .map_err(map_err)?;
            Ok(())
        })
    }

    /// Makes a failed message visible again after an exponential backoff.
    pub fn nack(&self, seq: i64, receive_count: u32, error: &str) -> Result<(), PortError> {
        let base = chrono::Duration::milliseconds(self.options.backoff_base_ms);
        let max = chrono::Duration::minutes(15);
        let delay =
            crate::domain::backoff::exponential(receive_count, base, max, 0.0).num_milliseconds();
        let at = ms(self.clock.now()) + delay;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE bus_messages SET visible_at = ?1, last_error = ?2 WHERE seq = ?3",
                params![at, error, seq],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    /// When the next hidden message becomes visible, if any is waiting.
    pub fn next_visible_at(&self) -> Result<Option<DateTime<Utc>>, PortError> {
        self.db.tx(|tx| {
            let at: Option<i64> = tx
                .query_row(
                    "SELECT MIN(visible_at) FROM bus_messages WHERE dead = 0",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(at.and_then(|m| Utc.timestamp_millis_opt(m).single()))
        })
    }

    pub fn dead_letters(&self, queue: Option<Queue>) -> Result<Vec<DeadLetter>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, queue, message_id, body, receive_count, last_error FROM bus_messages
                     WHERE dead = 1 AND (?1 IS NULL OR queue = ?1) ORDER BY seq",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![queue.map(|q| q.name())], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .map_err(map_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, q, message_id, body, receive_count, last_error) = row.map_err(map_err)?;
                let Some(queue) = Queue::parse(&q) else { continue };
                out.push(DeadLetter {
                    seq,
                    queue,
                    message_id,
                    body,
                    receive_count,
                    last_error,
                });
            }
            Ok(out)
        })
    }

    /// Moves up to `limit` dead letters of `queue` back to it, visible now with a fresh
    /// receive count. Returns how many moved.
    pub fn replay_dead_letters(&self, queue: Queue, limit: usize) -> Result<usize, PortError> {
        let now = ms(self.clock.now());
        self.db.tx(|tx| {
            let moved = tx
                .execute(
                    "UPDATE bus_messages SET dead = 0, receive_count = 0, visible_at = ?1
                     WHERE seq IN (SELECT seq FROM bus_messages WHERE dead = 1 AND queue = ?2 ORDER BY seq LIMIT ?3)",
                    params![now, queue.name(), limit as i64],
                )
                .map_err(map_err)?;
            Ok(moved)
        })
    }

    /// Every event ever published, oldest first: (source, detail-type, envelope JSON).
    pub fn archive(&self) -> Result<Vec<(String, String, String)>, PortError> {
        self.db.tx(|tx| {
            let mut stmt = tx
                .prepare("SELECT source, detail_type, body FROM bus_archive ORDER BY seq")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
    }

    /// Live (not dead) messages in `queue`, visible or not.
    pub fn depth(&self, queue: Queue) -> Result<usize, PortError> {
        self.db.tx(|tx| {
            tx.query_row(
                "SELECT COUNT(*) FROM bus_messages WHERE dead = 0 AND queue = ?1",
                [queue.name()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(map_err)
        })
    }
}

#[async_trait]
impl EventBus for SqliteBus {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PortError> {
        if self
            .fail_publishes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::new(
                ErrorKind::Transient,
                "injected publish failure",
            ));
        }
        if self.options.publish_delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                self.options.publish_delay_ms,
            ))
            .await;
        }
        let now = ms(self.clock.now());
        let copies = if self.options.duplicate_deliveries {
            2
        } else {
            1
        };
        let bodies: Vec<(&Envelope, String)> = events
            .iter()
            .map(|e| {
                serde_json::to_string(e)
                    .map(|b| (e, b))
                    .map_err(super::db::json_err)
            })
            .collect::<Result<_, _>>()?;
        self.db.tx(|tx| {
            for (e, body) in &bodies {
                let (source, detail_type) = (&e.source, &e.detail_type);
                tx.execute(
                    "INSERT INTO bus_archive (source, detail_type, body) VALUES (?1, ?2, ?3)",
                    params![source, detail_type, body],
                )
                .map_err(map_err)?;
                for queue in targets(source, detail_type, &e.detail) {
                    for _ in 0..copies {
                        tx.execute(
                            "INSERT INTO bus_messages (message_id, queue, body, visible_at) VALUES (?1, ?2, ?3, ?4)",
                            params![uuid::Uuid::new_v4().to_string(), queue.name(), body, now],
                        )
                        .map_err(map_err)?;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::clock::ManualClock;
    use crate::domain::events::EVENT_SOURCE;

    fn envelope(detail_type: &str) -> Envelope {
        Envelope {
            version: "0".into(),
            id: "e1".into(),
            detail_type: detail_type.into(),
            source: EVENT_SOURCE.into(),
            account: None,
            time: None,
            region: None,
            resources: vec![],
            detail: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn when_handler_keeps_failing_should_move_to_dlq_and_replay_back() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let bus = SqliteBus::new(
            Db::in_memory().expect("db"),
            clock.clone(),
            BusOptions {
                max_receive_count: 3,
                ..Default::default()
            },
        )
        .expect("bus");
        bus.publish(&[envelope("BATCH_REQUESTED"), envelope("BATCH_COMPLETED")])
            .await
            .expect("publish");
        assert_eq!(bus.archive().expect("archive").len(), 2);
        assert_eq!(
            bus.depth(Queue::ManifestBuilder).expect("depth"),
            1,
            "only routed events are queued"
        );
        for attempt in 1..=3 {
            let got = bus.receive(Queue::ManifestBuilder, 10).expect("receive");
            assert_eq!(got.len(), 1, "attempt {attempt}");
            assert!(
                bus.receive(Queue::ManifestBuilder, 10)
                    .expect("again")
                    .is_empty(),
                "hidden while in flight"
            );
            bus.nack(got[0].seq, got[0].receive_count, "boom")
                .expect("nack");
            clock.advance(chrono::Duration::minutes(20));
        }
        assert!(bus
            .receive(Queue::ManifestBuilder, 10)
            .expect("receive")
            .is_empty());
        let dead = bus.dead_letters(Some(Queue::ManifestBuilder)).expect("dlq");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("boom"));
        assert_eq!(
            bus.replay_dead_letters(Queue::ManifestBuilder, 10)
                .expect("replay"),
            1
        );
        let got = bus.receive(Queue::ManifestBuilder, 10).expect("receive");
        assert_eq!(got.len(), 1);
        bus.ack(got[0].seq).expect("ack");
        assert_eq!(bus.depth(Queue::ManifestBuilder).expect("depth"), 0);
    }
}
