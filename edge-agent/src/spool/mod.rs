//! The durable spool between the event builder and the MQTT publisher: the reason an event survives
//! a lost link, a broker restart or a SIGKILL of the agent.
//!
//! One SQLite database in WAL mode with `synchronous=FULL`: [`Spool::submit`] returns only after
//! the event and its evidence are on disk, the publisher sends rows by [`priority`] (watchlist
//! hits, then violations, plate reads, counts, health), each event before its evidence, oldest
//! first within a class, and deletes a row only after the broker's PUBACK. The spool is bounded in
//! payload bytes; when full, evidence goes first (lowest class, oldest first), then events the same
//! way, and every eviction is counted in the database so the count survives restarts and reaches
//! the `health` message.
//!
//! The disk bounds it too: with [`Spool::set_min_free`], a submission that would leave less than
//! that much free on the spool's filesystem (counting the database's own free pages, which SQLite
//! reuses) evicts the same way first, so a small or shared disk fills up to its reserve and no
//! further; the agent keeps the newest events and says so (`disk_low`). A write that still hits a
//! full disk (another program filled it) evicts and retries once.
//!
//! Retention (`[privacy.retention]`): undelivered evidence and events older than their age limit
//! are deleted by [`Spool::expire`]. Every deletion that is not a delivery — age or a full spool —
//! is logged and, with [`Spool::set_audit`], recorded in the audit log with its class and count.

mod config;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::audit::AuditTrail;
use crate::events::evidence::EvidenceImage;
pub use crate::events::status::SpoolStats;
use crate::events::{Event, EventKind, Topics};
pub use config::StorageConfig;

/// File name of the database inside `[storage].spool_dir`.
pub const DB_FILE: &str = "spool.sqlite3";

const KIND_EVENT: i64 = 0;
const KIND_EVIDENCE: i64 = 1;

/// Delivery class of an event and its evidence, 0 first: what a thin uplink carries first and what
/// a full spool keeps longest. Watchlist hits (someone is looking for that vehicle now), then
/// violations and incidents, plate reads, counts and presence, camera health.
pub fn priority(kind: EventKind) -> i64 {
    use EventKind::*;
    match kind {
        WatchlistHit => 0,
        WrongWay | StoppedVehicle | Loitering | Intrusion | Overcrowding | Congestion
        | Speeding | SuddenStop | RedLight => 1,
        PlateRead => 2,
        LineCrossing | LineCount | ZoneEnter | ZoneExit => 3,
        CameraHealth => 4,
    }
}

/// The class of rows written before classes existed.
const DEFAULT_PRIORITY: i64 = 2;

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
    #[error("signing event: {0}")]
    Sign(#[from] crate::signing::SigningError),
}

/// One MQTT message waiting for its PUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// Row id: the key the PUBACK deletes.
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
    /// An evidence image (not an event).
    pub evidence: bool,
}

/// One event with its evidence, on its way into the spool.
#[derive(Debug, Clone)]
pub struct Submission {
    pub event: Event,
    pub evidence: Vec<EvidenceImage>,
    /// Assigned on commit.
    pub seq: u64,
    /// Row id of the event message, assigned on commit.
    pub row: i64,
}

/// Age limits of undelivered data; `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub evidence: Option<Duration>,
    pub events: Option<Duration>,
}

impl Retention {
    /// From `[privacy.retention]` hours (0 = no limit).
    pub fn from_hours(evidence_hours: u64, event_hours: u64) -> Self {
        let h = |n: u64| (n > 0).then(|| Duration::from_secs(n.saturating_mul(3600)));
        Retention {
            evidence: h(evidence_hours),
            events: h(event_hours),
        }
    }
}

/// What one [`Spool::expire`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub events: u64,
    pub evidence: u64,
    pub bytes: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The spool database. Not `Sync`: share it behind a mutex.
#[derive(Debug)]
pub struct Spool {
    conn: Connection,
    path: PathBuf,
    stats: SpoolStats,
    retention: Retention,
    audit: AuditTrail,
    /// Wall-clock ms of the last age check made on submit.
    last_expiry_ms: i64,
    /// Signs each event as it gets its `seq` ([`Spool::set_signer`]).
    signer: Option<std::sync::Arc<crate::signing::DeviceKey>>,
    /// Free space the spool leaves on its filesystem; `None`: the size bound only.
    min_free: Option<u64>,
    /// Free bytes of the spool's filesystem (a field so tests can make a disk full).
    free_space: fn(&Path) -> std::io::Result<u64>,
    /// The wall clock, ms since the Unix epoch (a field so tests can step it).
    wall_ms: fn() -> i64,
    /// The last wall-clock reading and the monotonic instant it was taken at.
    clock_ref: (std::time::Instant, i64),
}

/// A wall-clock jump larger than this against the monotonic clock is a step, not drift.
const CLOCK_STEP_MS: i64 = 2_000;

/// Bytes available to an unprivileged writer on the filesystem that holds `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: an all-zero statvfs is valid; the kernel fills it in.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a valid, exclusively borrowed statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field types differ between targets (u32 on armv7).
    #[allow(clippy::useless_conversion)]
    let free = u64::from(s.f_bavail) * u64::from(s.f_frsize);
    Ok(free)
}

/// How often [`Spool::submit_many`] checks ages on its own (a periodic caller may check more often).
const EXPIRY_INTERVAL_MS: i64 = 60_000;

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
                 payload BLOB NOT NULL,
                 created_ms INTEGER NOT NULL DEFAULT 0,
                 priority INTEGER NOT NULL DEFAULT 2);
             CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, id);
             CREATE TABLE IF NOT EXISTS seqs(device_id TEXT PRIMARY KEY, last INTEGER NOT NULL);
             -- the link of each device's newest signed event, committed with its seq
             CREATE TABLE IF NOT EXISTS chain(device_id TEXT PRIMARY KEY, link TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(open_err)?;
        // Spools made before retention existed have no creation time: add it, and count their
        // rows as created now (the age limit then runs from this upgrade).
        let has_created: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('outbox') WHERE name = 'created_ms'")
            .and_then(|mut q| q.exists([]))
            .map_err(open_err)?;
        if !has_created {
            conn.execute_batch(
                "ALTER TABLE outbox ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;",
            )
            .map_err(open_err)?;
        }
        conn.execute(
            "UPDATE outbox SET created_ms = ?1 WHERE created_ms = 0",
            [now_ms()],
        )
        .map_err(open_err)?;
        // Spools made before delivery classes: their rows keep their order in the middle class.
        let has_priority: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('outbox') WHERE name = 'priority'")
            .and_then(|mut q| q.exists([]))
            .map_err(open_err)?;
        if !has_priority {
            conn.execute_batch(&format!(
                "ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT {DEFAULT_PRIORITY};"
            ))
            .map_err(open_err)?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS outbox_order ON outbox(priority, kind, id);
             CREATE INDEX IF NOT EXISTS outbox_evict ON outbox(kind, priority DESC, id);",
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
            stats.expired_events = counter(&conn, "expired_events").map_err(open_err)?;
            stats.expired_evidence = counter(&conn, "expired_evidence").map_err(open_err)?;
            stats.disk_evictions = counter(&conn, "disk_evictions").map_err(open_err)?;
            stats.clock_steps = counter(&conn, "clock_steps").map_err(open_err)?;
        }
        tracing::info!(
            path = %path.display(),
            events = stats.events,
            evidence = stats.evidence,
            bytes = stats.bytes,
            "spool opened"
        );
        Ok(Self {
            conn,
            path,
            stats,
            retention: Retention::default(),
            audit: AuditTrail::disabled(),
            last_expiry_ms: 0,
            signer: None,
            min_free: None,
            free_space: free_bytes,
            wall_ms: now_ms,
            clock_ref: (std::time::Instant::now(), now_ms()),
        })
    }

    /// The wall clock now, after moving every row's creation time by any step the clock took
    /// since the last reading (measured against the monotonic clock), so a clock set forward by
    /// NTP or from 1970 at boot does not make undelivered data look old and expire it.
    fn follow_clock(&mut self) -> i64 {
        let now = (self.wall_ms)();
        let mono = std::time::Instant::now();
        let (mono0, wall0) = self.clock_ref;
        self.clock_ref = (mono, now);
        let step = (now - wall0) - mono.duration_since(mono0).as_millis() as i64;
        if step.abs() < CLOCK_STEP_MS {
            return now;
        }
        let moved = (|| -> rusqlite::Result<usize> {
            let tx = self.conn.transaction()?;
            let n = tx.execute("UPDATE outbox SET created_ms = created_ms + ?1", [step])?;
            tx.execute(
                "INSERT INTO counters(name, value) VALUES ('clock_steps', 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1",
                [],
            )?;
            tx.commit()?;
            Ok(n)
        })();
        match moved {
            Ok(rows) => {
                self.stats.clock_steps += 1;
                self.last_expiry_ms += step;
                tracing::warn!(
                    step_s = step as f64 / 1000.0,
                    rows,
                    "the wall clock stepped; spooled data keeps its age"
                );
                self.audit.record(
                    "clock.step",
                    "agent",
                    serde_json::json!({"step_s": step as f64 / 1000.0, "spooled_rows": rows}),
                );
            }
            Err(e) => tracing::error!(error = %e, "spool: cannot follow a wall-clock step"),
        }
        now
    }

    /// Keeps at least `bytes` free on the spool's filesystem (`[storage].min_free_mb`).
    pub fn set_min_free(&mut self, bytes: u64) {
        self.min_free = Some(bytes);
    }

    /// What the spool may still add before the disk reserve: free space above `min_free` plus
    /// the database's free pages. `None` without a reserve or when the filesystem cannot be read.
    fn disk_room(&self) -> Option<u64> {
        let min_free = self.min_free?;
        let dir = self.path.parent()?;
        let free = match (self.free_space)(dir) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "spool: cannot read free space");
                return None;
            }
        };
        let pages: i64 = self
            .conn
            .query_row(
                "SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        Some((free + pages.max(0) as u64).saturating_sub(min_free))
    }

    /// Sets the age limits; they are enforced at once and then on every [`Spool::expire`] (and
    /// at most once a minute on submit).
    pub fn set_retention(&mut self, retention: Retention) -> Result<Expired, SpoolError> {
        self.retention = retention;
        self.expire()
    }

    /// Signs every event submitted from now on with `key`, chained per device (the chain's head
    /// is committed with each event's `seq`, so it survives crashes with it).
    pub fn set_signer(&mut self, key: std::sync::Arc<crate::signing::DeviceKey>) {
        self.signer = Some(key);
    }

    /// Records evictions and expiries in this audit trail (besides the log).
    pub fn set_audit(&mut self, trail: AuditTrail) {
        self.audit = trail;
    }

    /// Deletes undelivered data older than the retention limits, now.
    pub fn expire(&mut self) -> Result<Expired, SpoolError> {
        let now = self.follow_clock();
        self.expire_at(now)
    }

    /// [`Spool::expire`] as if the wall clock read `now_ms` (ms since the Unix epoch).
    pub fn expire_at(&mut self, now_ms: i64) -> Result<Expired, SpoolError> {
        self.last_expiry_ms = now_ms;
        let mut out = Expired::default();
        let limits = [
            (KIND_EVIDENCE, self.retention.evidence),
            (KIND_EVENT, self.retention.events),
        ];
        if limits.iter().all(|(_, l)| l.is_none()) {
            return Ok(out);
        }
        let tx = self.conn.transaction()?;
        for (kind, limit) in limits {
            let Some(limit) = limit else { continue };
            let cutoff = now_ms - limit.as_millis() as i64;
            let (n, bytes): (i64, i64) = tx.query_row(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox WHERE kind = ?1 AND created_ms < ?2",
                params![kind, cutoff],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if n == 0 {
                continue;
            }
            tx.execute(
                "DELETE FROM outbox WHERE kind = ?1 AND created_ms < ?2",
                params![kind, cutoff],
            )?;
            let name = if kind == KIND_EVENT {
                out.events += n as u64;
                "expired_events"
            } else {
                out.evidence += n as u64;
                "expired_evidence"
            };
            out.bytes += bytes as u64;
            tx.execute(
                "INSERT INTO counters(name, value) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                params![name, n],
            )?;
        }
        tx.commit()?;
        if out.events + out.evidence > 0 {
            let st = &mut self.stats;
            st.bytes -= out.bytes.min(st.bytes);
            st.events -= out.events.min(st.events);
            st.evidence -= out.evidence.min(st.evidence);
            st.expired_events += out.events;
            st.expired_evidence += out.evidence;
            self.report_deletion("retention.delete", out.events, out.evidence, || {
                serde_json::json!({
                    "evidence_max_age_h": self.retention.evidence.map(|d| d.as_secs() / 3600),
                    "event_max_age_h": self.retention.events.map(|d| d.as_secs() / 3600),
                })
            });
        }
        Ok(out)
    }

    /// Logs a deletion of undelivered data and records it in the audit trail, one record per data
    /// class with its count.
    fn report_deletion(
        &self,
        action: &str,
        events: u64,
        evidence: u64,
        extra: impl Fn() -> serde_json::Value,
    ) {
        for (class, count) in [("event", events), ("evidence", evidence)] {
            if count == 0 {
                continue;
            }
            tracing::warn!(action, class, count, "spool: deleted undelivered data");
            let mut details = serde_json::json!({"class": class, "count": count, "spool": self.path.display().to_string()});
            if let (Some(d), serde_json::Value::Object(more)) = (details.as_object_mut(), extra()) {
                d.extend(more);
            }
            self.audit.record(action, "agent", details);
        }
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Assigns the device's next `seq`, fills `event.evidence` from `evidence`, and commits the
    /// event and its evidence in the event's delivery class (the event is sent first). Returns the
    /// seq once the commit is on disk.
    pub fn submit(
        &mut self,
        event: &mut Event,
        evidence: &[EvidenceImage],
        topics: &Topics,
    ) -> Result<u64, SpoolError> {
        let mut one = [Submission {
            event: event.clone(),
            evidence: evidence.to_vec(),
            seq: 0,
            row: 0,
        }];
        let result = self.submit_many(&mut one, topics);
        let [done] = one;
        *event = done.event;
        result.map(|()| done.seq)
    }

    /// Commits several submissions in one transaction and one fsync (group commit: concurrent
    /// cameras share the cost of the disk flush). Fills `seq` and `row` of each.
    pub fn submit_many(
        &mut self,
        items: &mut [Submission],
        topics: &Topics,
    ) -> Result<(), SpoolError> {
        match self.submit_once(items, topics, 0) {
            Err(SpoolError::Sql(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
            {
                // Someone else filled the disk: make room for twice the batch and try once more.
                let batch: u64 = items
                    .iter()
                    .map(|i| 4096 + i.evidence.iter().map(|e| e.jpeg.len() as u64).sum::<u64>())
                    .sum();
                tracing::warn!(error = %e, batch, "spool: disk full, evicting and retrying");
                for item in items.iter_mut() {
                    item.event.signature = None;
                }
                self.submit_once(items, topics, 2 * batch)
            }
            other => other,
        }
    }

    /// One try of [`Spool::submit_many`]; `force` bytes are evicted first (a disk found full).
    fn submit_once(
        &mut self,
        items: &mut [Submission],
        topics: &Topics,
        force: u64,
    ) -> Result<(), SpoolError> {
        let now = self.follow_clock();
        if now - self.last_expiry_ms >= EXPIRY_INTERVAL_MS {
            // Retention must not stop events being stored: a failure here is logged only.
            if let Err(e) = self.expire_at(now) {
                tracing::error!(error = %e, "spool: retention check failed");
            }
        }
        let mut st = self.stats;
        let mut room = self.disk_room();
        st.disk_room_bytes = room;
        st.disk_low = force > 0;
        let mut force = force;
        let mut evicted_now = Evicted::default();
        let tx = self.conn.transaction()?;
        for item in items.iter_mut() {
            let event = &mut item.event;
            let evidence = &item.evidence;
            event.evidence =
                crate::events::evidence::evidence_refs(&event.evidence, evidence, topics);
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
            let mut payload = serde_json::to_vec(&event)?;
            if let Some(key) = &self.signer {
                let prev: Option<String> = tx
                    .prepare_cached("SELECT link FROM chain WHERE device_id = ?1")?
                    .query_row([&event.device_id], |r| r.get(0))
                    .optional()?;
                let prev = prev.unwrap_or_else(|| crate::signing::GENESIS.to_string());
                let signature = key.sign(&payload, &prev)?;
                tx.prepare_cached(
                    "INSERT INTO chain(device_id, link) VALUES (?1, ?2)
                     ON CONFLICT(device_id) DO UPDATE SET link = excluded.link",
                )?
                .execute(params![event.device_id, crate::signing::link(&signature)])?;
                event.signature = Some(signature);
                payload = serde_json::to_vec(&event)?;
            }
            let new_bytes =
                payload.len() as u64 + evidence.iter().map(|e| e.jpeg.len() as u64).sum::<u64>();
            if new_bytes > st.max_bytes {
                return Err(SpoolError::TooLarge {
                    bytes: new_bytes,
                    max: st.max_bytes,
                });
            }
            let mut over = (st.bytes + new_bytes).saturating_sub(st.max_bytes);
            let disk_short = room.map_or(0, |r| new_bytes.saturating_sub(r)).max(force);
            if disk_short > over {
                over = disk_short;
                st.disk_low = true;
                st.disk_evictions += 1;
                tx.prepare_cached(
                    "INSERT INTO counters(name, value) VALUES ('disk_evictions', 1)
                     ON CONFLICT(name) DO UPDATE SET value = value + 1",
                )?
                .execute([])?;
            }
            force = 0;
            let class = priority(event.kind);
            let images: u64 = evidence.iter().map(|e| e.jpeg.len() as u64).sum();
            // Room is made from images of this class or lower first; when they are not enough the
            // new images give way before any image of a higher class, and only then older rows of
            // every class (images first, then events) go.
            let mut evicted = Evicted::default();
            let mut keep_images = true;
            if over > 0 {
                evicted = evict(&tx, over, Some(class))?;
                if evicted.bytes < over && images > 0 {
                    keep_images = false;
                    tracing::warn!(
                        kind = event.kind.as_str(),
                        images = evidence.len(),
                        "spool full of higher-class images: this event's images are dropped"
                    );
                }
                let still =
                    over.saturating_sub(evicted.bytes + if keep_images { 0 } else { images });
                if still > 0 {
                    evicted.absorb(evict(&tx, still, None)?);
                }
            }
            let (new_bytes, stored) = if keep_images {
                (new_bytes, evidence.len() as u64)
            } else {
                tx.prepare_cached(
                    "INSERT INTO counters(name, value) VALUES ('evicted_evidence', ?1)
                     ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                )?
                .execute([evidence.len() as i64])?;
                (new_bytes - images, 0)
            };
            let dropped_own = evidence.len() as u64 - stored;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO outbox(kind, bytes, topic, payload, created_ms, priority) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                ins.execute(params![
                    KIND_EVENT,
                    payload.len() as i64,
                    topics.event(event.kind),
                    payload,
                    now,
                    class
                ])?;
                item.row = tx.last_insert_rowid();
                for img in evidence.iter().filter(|_| keep_images) {
                    ins.execute(params![
                        KIND_EVIDENCE,
                        img.jpeg.len() as i64,
                        topics.evidence(&img.sha256),
                        img.jpeg,
                        now,
                        class
                    ])?;
                }
            }
            item.seq = seq;
            room = room.map(|r| (r + evicted.bytes).saturating_sub(new_bytes));
            st.bytes = st.bytes - evicted.bytes + new_bytes;
            st.events = st.events - evicted.events + 1;
            st.evidence = st.evidence - evicted.evidence + stored;
            st.evicted_events += evicted.events;
            st.evicted_evidence += evicted.evidence + dropped_own;
            evicted_now.events += evicted.events;
            evicted_now.evidence += evicted.evidence + dropped_own;
            if evicted.events + evicted.evidence > 0 {
                tracing::warn!(
                    evicted_events = evicted.events,
                    evicted_evidence = evicted.evidence,
                    total_evicted_events = st.evicted_events,
                    disk_low = st.disk_low,
                    "spool full: evicted the oldest messages"
                );
            }
        }
        tx.commit()?;
        st.disk_room_bytes = room;
        self.stats = st;
        if evicted_now.events + evicted_now.evidence > 0 {
            let reason = if st.disk_low {
                "disk full"
            } else {
                "spool full"
            };
            self.report_deletion(
                "spool.evict",
                evicted_now.events,
                evicted_now.evidence,
                || serde_json::json!({"reason": reason, "max_bytes": st.max_bytes}),
            );
        }
        Ok(())
    }

    /// Up to `limit` unacknowledged messages in delivery order (class, each event before its
    /// evidence, oldest first), leaving out `skip` (the ones on their way) and, unless `evidence`,
    /// every image (an exhausted uplink budget).
    pub fn next_batch(
        &self,
        skip: &HashSet<i64>,
        limit: usize,
        evidence: bool,
    ) -> Result<Vec<OutMessage>, SpoolError> {
        // Ids first, from the index alone: the rows on their way (up to a window of images)
        // are skipped without reading their payloads.
        let sql = if evidence {
            "SELECT id, kind FROM outbox ORDER BY priority, kind, id LIMIT ?1"
        } else {
            "SELECT id, kind FROM outbox WHERE kind = 0 ORDER BY priority, kind, id LIMIT ?1"
        };
        let mut q = self.conn.prepare_cached(sql)?;
        let ids: Vec<(i64, i64)> = q
            .query_map(params![(limit + skip.len()) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut row = self
            .conn
            .prepare_cached("SELECT topic, payload FROM outbox WHERE id = ?1")?;
        let mut out = Vec::with_capacity(limit);
        for (id, kind) in ids
            .into_iter()
            .filter(|(id, _)| !skip.contains(id))
            .take(limit)
        {
            let (topic, payload) = row.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            out.push(OutMessage {
                id,
                topic,
                payload,
                evidence: kind == KIND_EVIDENCE,
            });
        }
        Ok(out)
    }

    /// Up to `limit` messages in delivery order (the next [`Spool::next_batch`] of a new
    /// connection).
    pub fn pending(&self, limit: usize) -> Result<Vec<OutMessage>, SpoolError> {
        self.next_batch(&HashSet::new(), limit, true)
    }

    /// Evidence images waiting, and their bytes.
    pub fn evidence_waiting(&self) -> Result<(u64, u64), SpoolError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox WHERE kind = 1",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
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
    fn absorb(&mut self, other: Evicted) {
        self.events += other.events;
        self.evidence += other.evidence;
        self.bytes += other.bytes;
    }

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

/// Frees at least `need` bytes: evidence before events, each lowest class first, oldest first.
/// With `lowest`, only evidence of that class or a lower one (a higher number) may go.
fn evict(
    tx: &rusqlite::Transaction<'_>,
    need: u64,
    lowest: Option<i64>,
) -> Result<Evicted, SpoolError> {
    let mut out = Evicted::default();
    let mut page = tx.prepare_cached(
        "SELECT id, bytes FROM outbox WHERE kind = ?1 AND priority >= ?2 ORDER BY priority DESC, id LIMIT 256",
    )?;
    let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
    let kinds: &[i64] = if lowest.is_some() {
        &[KIND_EVIDENCE]
    } else {
        &[KIND_EVIDENCE, KIND_EVENT]
    };
    'kinds: for &kind in kinds {
        loop {
            let rows: Vec<(i64, i64)> = page
                .query_map(params![kind, lowest.unwrap_or(i64::MIN)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
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
