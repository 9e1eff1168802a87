//! The durable spool between the event builder and the MQTT publisher: the reason an event survives
//! a lost link, a broker restart or a SIGKILL of the agent.
//!
//! One SQLite database in WAL mode with `synchronous=FULL`: [`Spool::submit`] returns only after
//! the event and its evidence are on disk, the publisher sends rows in id order and deletes a row
//! only after the broker's PUBACK. The spool is bounded in payload bytes; when full, evidence goes
//! first (oldest first), then the oldest events, and every eviction is counted in the database so
//! the count survives restarts and reaches the `health` message.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::events::evidence::EvidenceImage;
use crate::events::{Event, EvidenceRef, Topics};

/// File name of the database inside `[storage].spool_dir`.
pub const DB_FILE: &str = "spool.sqlite3";

const KIND_EVENT: i64 = 0;
const KIND_EVIDENCE: i64 = 1;

/// Why the spool failed. Any of these means events can no longer be accepted safely.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot create spool directory {path} ([storage].spool_dir): {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open spool database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("spool database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "event of {bytes} bytes with evidence does not fit in a spool of {max} bytes ([storage].max_size_mb)"
    )]
    TooLarge { bytes: u64, max: u64 },
    #[error("serialising event: {0}")]
    Json(#[from] serde_json::Error),
}

/// One MQTT message waiting for its PUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// Row id: publish order, and the key the PUBACK deletes.
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Depth and eviction counters, for `health` and `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct SpoolStats {
    /// Event messages not yet acknowledged by the broker.
    pub events: u64,
    /// Evidence images not yet acknowledged.
    pub evidence: u64,
    /// Payload bytes held.
    pub bytes: u64,
    /// Bound from `[storage].max_size_mb`.
    pub max_bytes: u64,
    /// Events dropped because the spool was full (their seq numbers are the gaps consumers see).
    pub evicted_events: u64,
    /// Evidence images dropped because the spool was full.
    pub evicted_evidence: u64,
}

/// The spool database. Not `Sync`: share it behind a mutex.
#[derive(Debug)]
pub struct Spool {
    conn: Connection,
    path: PathBuf,
    stats: SpoolStats,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering whatever a crash left in the WAL.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|source| SpoolError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let open_err = |source| SpoolError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             -- Small columns first, so counting bytes at start-up reads no blob overflow pages.
             CREATE TABLE IF NOT EXISTS outbox(
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 topic TEXT NOT NULL,
                 payload BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, id);
             CREATE TABLE IF NOT EXISTS seqs(device_id TEXT PRIMARY KEY, last INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(open_err)?;
        let mut stats = SpoolStats {
            max_bytes,
            ..Default::default()
        };
        {
            let mut q = conn
                .prepare("SELECT kind, COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox GROUP BY kind")
                .map_err(open_err)?;
            let rows = q
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(open_err)?;
            for row in rows {
                let (kind, n, bytes) = row.map_err(open_err)?;
                if kind == KIND_EVENT {
                    stats.events = n as u64;
                } else {
                    stats.evidence = n as u64;
                }
                stats.bytes += bytes as u64;
            }
            stats.evicted_events = counter(&conn, "evicted_events").map_err(open_err)?;
            stats.evicted_evidence = counter(&conn, "evicted_evidence").map_err(open_err)?;
        }
        tracing::info!(
            path = %path.display(),
            events = stats.events,
            evidence = stats.evidence,
            bytes = stats.bytes,
            "spool opened"
        );
        Ok(Self { conn, path, stats })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Assigns the device's next `seq`, fills `event.evidence` from `evidence`, and commits the
    /// evidence and then the event (so they are published in that order). Returns the seq once the
    /// commit is on disk.
    pub fn submit(
        &mut self,
        event: &mut Event,
        evidence: &[EvidenceImage],
        topics: &Topics,
    ) -> Result<u64, SpoolError> {
        event.evidence = evidence
            .iter()
            .map(|img| EvidenceRef {
                role: img.role,
                sha256: img.sha256.clone(),
                topic: topics.evidence(&img.sha256),
                width: img.width,
                height: img.height,
                bytes: img.jpeg.len() as u64,
            })
            .collect();
        let tx = self.conn.transaction()?;
        let last: Option<i64> = tx
            .prepare_cached("SELECT last FROM seqs WHERE device_id = ?1")?
            .query_row([&event.device_id], |r| r.get(0))
            .optional()?;
        let seq = last.unwrap_or(0) as u64 + 1;
        tx.prepare_cached(
            "INSERT INTO seqs(device_id, last) VALUES (?1, ?2)
             ON CONFLICT(device_id) DO UPDATE SET last = excluded.last",
        )?
        .execute(params![event.device_id, seq as i64])?;
        event.seq = seq;
        let payload = serde_json::to_vec(&event)?;
        let new_bytes =
            payload.len() as u64 + evidence.iter().map(|e| e.jpeg.len() as u64).sum::<u64>();
        if new_bytes > self.stats.max_bytes {
            return Err(SpoolError::TooLarge {
                bytes: new_bytes,
                max: self.stats.max_bytes,
            });
        }
        let over = (self.stats.bytes + new_bytes).saturating_sub(self.stats.max_bytes);
        let evicted = if over > 0 {
            evict(&tx, over)?
        } else {
            Evicted::default()
        };
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO outbox(kind, bytes, topic, payload) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for img in evidence {
                ins.execute(params![
                    KIND_EVIDENCE,
                    img.jpeg.len() as i64,
                    topics.evidence(&img.sha256),
                    img.jpeg
                ])?;
            }
            ins.execute(params![
                KIND_EVENT,
                payload.len() as i64,
                topics.event(event.kind),
                payload
            ])?;
        }
        tx.commit()?;
        let s = &mut self.stats;
        s.bytes = s.bytes - evicted.bytes + new_bytes;
        s.events = s.events - evicted.events + 1;
        s.evidence = s.evidence - evicted.evidence + evidence.len() as u64;
        s.evicted_events += evicted.events;
        s.evicted_evidence += evicted.evidence;
        if evicted.events + evicted.evidence > 0 {
            tracing::warn!(
                evicted_events = evicted.events,
                evicted_evidence = evicted.evidence,
                total_evicted_events = s.evicted_events,
                "spool full: evicted the oldest messages"
            );
        }
        Ok(seq)
    }

    /// Up to `limit` unacknowledged messages with an id above `after`, in id order.
    pub fn next_batch(&self, after: i64, limit: usize) -> Result<Vec<OutMessage>, SpoolError> {
        let mut q = self.conn.prepare_cached(
            "SELECT id, topic, payload FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = q.query_map(params![after, limit as i64], |r| {
            Ok(OutMessage {
                id: r.get(0)?,
                topic: r.get(1)?,
                payload: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes acknowledged messages. Not fsynced: losing an ack in a crash only means a duplicate.
    pub fn ack(&mut self, ids: &[i64]) -> Result<(), SpoolError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = (|| -> Result<Evicted, SpoolError> {
            let tx = self.conn.transaction()?;
            let mut gone = Evicted::default();
            {
                let mut del =
                    tx.prepare_cached("DELETE FROM outbox WHERE id = ?1 RETURNING kind, bytes")?;
                for id in ids {
                    if let Some((kind, bytes)) = del
                        .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                        .optional()?
                    {
                        gone.add(kind, bytes);
                    }
                }
            }
            tx.commit()?;
            Ok(gone)
        })();
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let gone = result?;
        let s = &mut self.stats;
        s.bytes -= gone.bytes;
        s.events -= gone.events;
        s.evidence -= gone.evidence;
        Ok(())
    }

    /// Row id of the last event submitted on this connection (latency bookkeeping).
    pub fn last_row(&self) -> i64 {
        self.conn.last_insert_rowid()
    }

    /// Current depth and counters.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Evicted {
    events: u64,
    evidence: u64,
    bytes: u64,
}

impl Evicted {
    fn add(&mut self, kind: i64, bytes: i64) {
        if kind == KIND_EVENT {
            self.events += 1;
        } else {
            self.evidence += 1;
        }
        self.bytes += bytes as u64;
    }
}

fn counter(conn: &Connection, name: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .unwrap_or(0) as u64)
}

/// Frees at least `need` bytes: evidence oldest first, then events oldest first.
fn evict(tx: &rusqlite::Transaction<'_>, need: u64) -> Result<Evicted, SpoolError> {
    let mut out = Evicted::default();
    let mut page =
        tx.prepare_cached("SELECT id, bytes FROM outbox WHERE kind = ?1 ORDER BY id LIMIT 256")?;
    let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
    'kinds: for kind in [KIND_EVIDENCE, KIND_EVENT] {
        loop {
            let rows: Vec<(i64, i64)> = page
                .query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if rows.is_empty() {
                break;
            }
            for (id, bytes) in rows {
                if out.bytes >= need {
                    break 'kinds;
                }
                del.execute([id])?;
                out.add(kind, bytes);
            }
        }
    }
    let mut up = tx.prepare_cached(
        "INSERT INTO counters(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    )?;
    up.execute(params!["evicted_events", out.events as i64])?;
    up.execute(params!["evicted_evidence", out.evidence as i64])?;
    Ok(out)
}

#[cfg(test)]
mod tests;
