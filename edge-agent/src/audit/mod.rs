//! The audit log: an append-only file of JSON lines, each record holding the hash of the one before,
//! so an edited, removed or reordered record breaks the chain (`edge-agent audit verify`).
//!
//! Records config and watchlist changes, evidence exports, deletions and local API access by token
//! id — who did what and when (Circular 67/2024/TT-BCA: camera data is not deleted without a record).
//! Truncating the newest records cannot be seen from the file alone; the current head hash is what
//! a remote party should keep: it goes out with the device's health and in every event, and
//! [`verify_with_anchor`] checks a log against it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 0.
    pub index: u64,
    /// Wall clock, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// Who: `token:<id>` for the local API, `mqtt` for remote config, `local` for the CLI.
    pub actor: String,
    /// What, e.g. `config.apply`, `config.rollback`, `watchlist.set`, `evidence.export`,
    /// `evidence.delete`, `privacy.blur_disabled`, `api.access`.
    pub action: String,
    /// Action-specific facts (versions, hashes, counts, reasons).
    pub details: serde_json::Value,
    /// `hash` of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// sha256 over `prev` and this record's other fields.
    pub hash: String,
    /// The device key's signature of `hash` (hex), when the log is kept by a running agent:
    /// someone who can rewrite the file but not use the key cannot make records that verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// Audit log failures; verification errors name the line.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log {path}, line {line}: {reason}")]
    Broken {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

fn record_hash(r: &AuditRecord) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        index: u64,
        time_ms: u64,
        actor: &'a str,
        action: &'a str,
        details: &'a serde_json::Value,
        prev: &'a str,
    }
    let body = Body {
        index: r.index,
        time_ms: r.time_ms,
        actor: &r.actor,
        action: &r.action,
        details: &r.details,
        prev: &r.prev,
    };
    // serde_json's maps are sorted by key, so the bytes are canonical.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// An open audit log, positioned after its last record.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    head: String,
    next: u64,
    signer: Option<Arc<crate::signing::DeviceKey>>,
    /// Size at which the file is rotated ([`AuditLog::set_max_bytes`]); `None`: never.
    max_bytes: Option<u64>,
    /// Bytes in the current file.
    bytes: u64,
    /// The marker as found at open ([`Marker`]), until [`AuditLog::record_reset`] looked at it.
    found_marker: Option<Marker>,
}

/// Where the log stood at its last write, kept beside it (`<log>.head`): a log found missing or
/// shorter than that at start was reset, and says so in its first new record
/// ([`RESET_ACTION`]) instead of silently starting again at record 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    next: u64,
    head: String,
}

/// The action of the record that says the log was found deleted, cut or replaced at start.
pub const RESET_ACTION: &str = "audit.reset";

fn marker_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".head");
    PathBuf::from(name)
}

/// The action of the record that opens a rotated log: its `prev` is the head of the file kept as
/// `<log>.1`, so the chain runs on across files.
pub const ROTATE_ACTION: &str = "audit.rotate";

/// The previous file of a rotated log: `audit.jsonl` → `audit.jsonl.1`.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

impl AuditLog {
    /// Opens (or creates) the log, verifying the whole chain first: a broken log is reported,
    /// never silently extended.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let (next, head) = if path.exists() {
            let n = verify(path)?;
            (n.first_index + n.records, n.head)
        } else {
            (0, GENESIS.to_string())
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        let found_marker = std::fs::read(marker_path(path))
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok());
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            head,
            next,
            signer: None,
            max_bytes: None,
            bytes,
            found_marker,
        })
    }

    /// Writes an [`RESET_ACTION`] record when the log is behind where its marker says it was
    /// (deleted, cut short, or replaced by another chain). Call once after open, with the signer
    /// set, so the record is signed.
    pub fn record_reset(&mut self) -> Result<(), AuditError> {
        let Some(m) = self.found_marker.take() else {
            return Ok(());
        };
        let behind = self.next < m.next;
        let replaced = self.next == m.next && self.head != m.head;
        if behind || replaced {
            tracing::warn!(path = %self.path.display(), records_before = m.next, records_now = self.next, "the audit log was deleted, cut short or replaced since the agent last wrote it; recorded");
            self.write(
                "agent",
                RESET_ACTION,
                serde_json::json!({
                    "previous_records": m.next,
                    "previous_head": m.head,
                    "records_found": self.next,
                    "head_found": self.head,
                }),
            )?;
        }
        Ok(())
    }

    /// Bounds the log: past `bytes` the file becomes `<log>.1` (replacing the one before) and a
    /// new file opens with an [`ROTATE_ACTION`] record chained to the old head, so at most about
    /// twice `bytes` is kept and the deletion itself is on record.
    pub fn set_max_bytes(&mut self, bytes: u64) {
        self.max_bytes = Some(bytes);
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let old = rotated_path(&self.path);
        // The records of the file about to be replaced are gone after this: say which.
        let dropped = verify(&old).ok().map(|v| (v.first_index, v.records));
        std::fs::rename(&self.path, &old).map_err(io)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        self.bytes = 0;
        let kept = old
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.write(
            "agent",
            ROTATE_ACTION,
            serde_json::json!({
                "previous_file": kept,
                "deleted_records": dropped.map(|(first, n)| serde_json::json!({"first_index": first, "count": n})),
            }),
        )?;
        Ok(())
    }

    /// Appends a record and syncs it to disk before returning; rotates the file first when it
    /// is over its bound.
    pub fn append(
        &mut self,
        actor: &str,
        action: &str,
        details: serde_json::Value,
    ) -> Result<AuditRecord, AuditError> {
        if self.max_bytes.is_some_and(|max| self.bytes >= max) {
            self.rotate()?;
        }
        self.write(actor, action, details)
    }

    fn write(
        &mut self,
        actor: &str,
        action: &str,
        details: serde_json::Value,
    ) -> Result<AuditRecord, AuditError> {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut r = AuditRecord {
            index: self.next,
            time_ms,
            actor: actor.into(),
            action: action.into(),
            details,
            prev: self.head.clone(),
            hash: String::new(),
            sig: None,
        };
        r.hash = record_hash(&r);
        r.sig = self.signer.as_ref().map(|k| k.sign_audit(&r.hash));
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&r).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.bytes += line.len() as u64;
        self.head = r.hash.clone();
        self.next += 1;
        let marker = Marker {
            next: self.next,
            head: self.head.clone(),
        };
        let written = serde_json::to_vec(&marker)
            .map_err(std::io::Error::other)
            .and_then(|raw| std::fs::write(marker_path(&self.path), raw));
        if let Err(e) = written {
            // The record itself is written; only a later reset would go unnoticed.
            tracing::warn!(path = %self.path.display(), error = %e, "cannot update the audit log's head marker");
        }
        Ok(r)
    }

    /// Hash of the newest record ([`GENESIS`] when empty).
    pub fn head(&self) -> &str {
        &self.head
    }
}

/// The agent's shared handle on its audit log: cloneable, usable from any thread, and never fatal.
/// A record that cannot be written is logged as an error through `tracing` (the agent keeps
/// running: stopping the cameras because the audit disk is full would lose more than it protects).
#[derive(Debug, Clone, Default)]
pub struct AuditTrail {
    log: Option<Arc<Mutex<AuditLog>>>,
}

impl AuditTrail {
    /// Opens (or creates) the log at `path`; a broken chain is an error, so it is seen at start-up.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let mut log = AuditLog::open(path)?;
        log.record_reset()?;
        Ok(AuditTrail {
            log: Some(Arc::new(Mutex::new(log))),
        })
    }

    /// [`AuditTrail::open`], every record from now on signed with the device key, and the file
    /// rotated past `max_bytes` ([`AuditLog::set_max_bytes`]) when given.
    pub fn open_signed(
        path: &Path,
        key: Arc<crate::signing::DeviceKey>,
        max_bytes: Option<u64>,
    ) -> Result<Self, AuditError> {
        let mut log = AuditLog::open(path)?;
        log.signer = Some(key);
        log.max_bytes = max_bytes;
        log.record_reset()?;
        Ok(AuditTrail {
            log: Some(Arc::new(Mutex::new(log))),
        })
    }

    /// A trail that records nothing (tools and tests that keep no audit log).
    pub fn disabled() -> Self {
        AuditTrail { log: None }
    }

    /// Appends `action` by `actor` (`local`, `mqtt`, `token:<id>`, `agent`) with `details`.
    /// Returns the stored record, or `None` when disabled or the write failed (already logged).
    pub fn record(
        &self,
        action: &str,
        actor: &str,
        details: serde_json::Value,
    ) -> Option<AuditRecord> {
        let log = self.log.as_ref()?;
        let mut log = match log.lock() {
            Ok(g) => g,
            // A panic mid-append leaves at worst a torn last line, which `verify` reports.
            Err(p) => p.into_inner(),
        };
        match log.append(actor, action, details) {
            Ok(r) => {
                tracing::debug!(action, actor, index = r.index, "audit record");
                Some(r)
            }
            Err(e) => {
                tracing::error!(action, actor, error = %e, "cannot write the audit record");
                None
            }
        }
    }

    /// Hash of the newest record, `None` when disabled.
    pub fn head(&self) -> Option<String> {
        let log = self.log.as_ref()?;
        let g = match log.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Some(g.head().to_string())
    }

    /// The log file, `None` when disabled.
    pub fn path(&self) -> Option<PathBuf> {
        let log = self.log.as_ref()?;
        let g = match log.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Some(g.path.clone())
    }
}

/// Result of a successful verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Index of the file's first record: 0, or where a rotated log goes on.
    pub first_index: u64,
    pub records: u64,
    pub head: String,
    /// Index of the record whose hash is the anchor asked for ([`verify_with_anchor`]); `None`
    /// when it is not in the log.
    pub anchor_at: Option<u64>,
    /// With a key ([`verify_signed`]): records before the first signed one.
    pub unsigned_before_signed: u64,
}

/// Checks every record: valid JSON, consecutive indexes, `prev` equal to the previous `hash`,
/// and `hash` recomputed from the content.
pub fn verify(path: &Path) -> Result<Verified, AuditError> {
    verify_with_anchor(path, None)
}

/// [`verify`], also looking for the record whose hash is `anchor` (a head the centre received in
/// an event or a `health` message). A chain that verifies but lacks the anchor was cut short or
/// replaced since.
pub fn verify_with_anchor(path: &Path, anchor: Option<&str>) -> Result<Verified, AuditError> {
    verify_signed(path, anchor, None)
}

/// [`verify_with_anchor`], also requiring every record from the first signed one on to carry a
/// valid signature by `key` (the device's public key, hex). Records written before the device
/// signed its log come first and stay unsigned; an unsigned or badly signed record after a
/// signed one is an error.
pub fn verify_signed(
    path: &Path,
    anchor: Option<&str>,
    key: Option<&str>,
) -> Result<Verified, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let broken = |line: usize, reason: String| AuditError::Broken {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut head = GENESIS.to_string();
    let mut first_index = 0u64;
    let mut count = 0u64;
    let mut anchor_at = None;
    let mut signed_seen = false;
    let mut unsigned_before_signed = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            return Err(broken(n, "empty line".into()));
        }
        let r: AuditRecord = serde_json::from_str(&line)
            .map_err(|e| broken(n, format!("not an audit record: {e}")))?;
        // A rotated log opens with the rotation record, chained to the previous file's head
        // (checked with the key below, like every record: cutting a log's head off cannot forge one).
        if n == 1 && r.index > 0 {
            if r.action != ROTATE_ACTION {
                return Err(broken(
                    n,
                    format!(
                        "the log starts at record {} without a rotation record (its head was cut off)",
                        r.index
                    ),
                ));
            }
            first_index = r.index;
            head = r.prev.clone();
        }
        if r.index != first_index + count {
            return Err(broken(
                n,
                format!(
                    "record index {} where {} was expected (a record was removed or moved)",
                    r.index,
                    first_index + count
                ),
            ));
        }
        if r.prev != head {
            return Err(broken(
                n,
                "prev does not match the previous record's hash (a record was removed, moved or edited)".into(),
            ));
        }
        if record_hash(&r) != r.hash {
            return Err(broken(
                n,
                "hash does not match the record's content (edited)".into(),
            ));
        }
        if let Some(key) = key {
            match &r.sig {
                Some(sig) if crate::signing::verify_audit(key, &r.hash, sig) => signed_seen = true,
                Some(_) => {
                    return Err(broken(
                        n,
                        "signature does not verify with the device key (rewritten, or another key)"
                            .into(),
                    ));
                }
                None if signed_seen => {
                    return Err(broken(
                        n,
                        "unsigned record after signed ones (written without the device key)".into(),
                    ));
                }
                None => unsigned_before_signed += 1,
            }
        }
        if anchor.is_some_and(|a| a.eq_ignore_ascii_case(&r.hash)) {
            anchor_at = Some(r.index);
        }
        head = r.hash;
        count += 1;
    }
    Ok(Verified {
        first_index,
        records: count,
        head,
        anchor_at,
        unsigned_before_signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit/audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        for i in 0..n {
            log.append(
                "token:ops-1",
                "config.apply",
                json!({"version": i, "hash": "ab12"}),
            )
            .expect("append");
        }
        (dir, path)
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .expect("read")
            .lines()
            .map(String::from)
            .collect()
    }

    fn write(p: &Path, lines: &[String]) {
        std::fs::write(p, lines.join("\n") + "\n").expect("write");
    }

    #[test]
    fn an_anchor_the_centre_holds_shows_a_log_cut_short() {
        let (_d, path) = log_with(5);
        let full = verify(&path).expect("valid");
        let anchor = full.head.clone();
        let v = verify_with_anchor(&path, Some(&anchor)).expect("valid");
        assert_eq!(v.anchor_at, Some(4));
        // the newest two records cut: the chain alone still verifies, the anchor does not
        let all = lines(&path);
        write(&path, &all[..3]);
        let cut = verify_with_anchor(&path, Some(&anchor)).expect("still a valid chain");
        assert_eq!((cut.records, cut.anchor_at), (3, None));
        // an older anchor is still there
        let older: AuditRecord = serde_json::from_str(&all[1]).unwrap();
        assert_eq!(
            verify_with_anchor(&path, Some(&older.hash))
                .unwrap()
                .anchor_at,
            Some(1)
        );
    }

    #[test]
    fn a_bounded_log_rotates_chained_and_a_cut_head_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            Arc::new(crate::signing::DeviceKey::load_or_create(&dir.path().join("k")).unwrap());
        let public = key.public_hex();
        let path = dir.path().join("audit.jsonl");
        let trail = AuditTrail::open_signed(&path, key.clone(), Some(2_000)).unwrap();
        for i in 0..60 {
            trail.record(
                "api.access",
                "local",
                json!({ "i": i, "pad": "x".repeat(40) }),
            );
        }
        let head = trail.head().unwrap();
        drop(trail);
        let old = rotated_path(&path);
        let bound = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(bound(&path) < 2_600 && bound(&old) < 2_600);
        // Both files verify with the key; the current one goes on from the kept one's head.
        let cur = verify_signed(&path, None, Some(&public)).unwrap();
        let prev = verify_signed(&old, None, Some(&public)).unwrap();
        assert!(cur.first_index > 0 && cur.head == head);
        assert_eq!(prev.first_index + prev.records, cur.first_index);
        let first: AuditRecord = serde_json::from_str(&lines(&path)[0]).unwrap();
        assert_eq!(first.action, ROTATE_ACTION);
        assert_eq!(first.prev, prev.head);
        assert!(first.details["deleted_records"]["count"].as_u64().unwrap() > 0);
        // Reopened, the index runs on.
        let trail = AuditTrail::open_signed(&path, key, Some(2_000)).unwrap();
        let r = trail.record("config.apply", "local", json!({})).unwrap();
        assert_eq!(r.index, cur.first_index + cur.records);
        drop(trail);
        // A log whose first records were cut off (no rotation record first) does not verify.
        let ls = lines(&path);
        write(&path, &ls[2..]);
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("without a rotation record"), "{e}");
    }

    #[test]
    fn a_rewritten_log_does_not_verify_with_the_device_key() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            Arc::new(crate::signing::DeviceKey::load_or_create(&dir.path().join("k")).unwrap());
        let public = key.public_hex();
        let path = dir.path().join("audit.jsonl");
        {
            let trail = AuditTrail::open_signed(&path, key, None).unwrap();
            for i in 0..4 {
                trail.record("config.apply", "mqtt", json!({ "i": i }));
            }
        }
        let v = verify_signed(&path, None, Some(&public)).expect("signed log");
        assert_eq!((v.records, v.unsigned_before_signed), (4, 0));
        // someone who can write the file but not sign: edit a record and recompute the chain
        let rewrite = |keep_sig: bool| {
            let mut prev = GENESIS.to_string();
            let out: Vec<String> = lines(&path)
                .iter()
                .map(|l| {
                    let mut r: AuditRecord = serde_json::from_str(l).unwrap();
                    if r.index == 2 {
                        r.details = json!({ "i": 99 });
                    }
                    r.prev = prev.clone();
                    r.hash = record_hash(&r);
                    if !keep_sig {
                        r.sig = None;
                    }
                    prev = r.hash.clone();
                    serde_json::to_string(&r).unwrap()
                })
                .collect();
            let p = dir.path().join(format!("rewritten-{keep_sig}.jsonl"));
            write(&p, &out);
            p
        };
        let kept = rewrite(true);
        assert!(verify(&kept).is_ok(), "the plain chain cannot tell");
        let e = verify_signed(&kept, None, Some(&public))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("signature"), "{e}");
        let stripped = rewrite(false);
        let v = verify_signed(&stripped, None, Some(&public)).expect("chain intact");
        assert_eq!(
            v.unsigned_before_signed, v.records,
            "nothing signed: the CLI fails this"
        );
    }

    #[test]
    fn a_deleted_or_cut_log_is_a_recorded_reset_not_a_silent_restart() {
        let (_d, path) = log_with(5);
        let head = verify(&path).expect("valid").head;
        // a plain reopen: nothing to record
        drop(AuditTrail::open(&path).expect("reopen"));
        assert_eq!(verify(&path).expect("valid").records, 5);

        // cut to its first two records: the next record says what was lost
        let all = lines(&path);
        write(&path, &all[..2]);
        drop(AuditTrail::open(&path).expect("reopen"));
        let l = lines(&path);
        let reset: AuditRecord = serde_json::from_str(&l[2]).unwrap();
        assert_eq!((reset.index, reset.action.as_str()), (2, RESET_ACTION));
        assert_eq!(reset.details["previous_records"], 5);
        assert_eq!(reset.details["previous_head"], head.as_str());
        assert_eq!(reset.details["records_found"], 2);
        assert_eq!(verify(&path).expect("still a chain").records, 3);

        // deleted: the new log opens with the reset, signed
        std::fs::remove_file(&path).unwrap();
        let key =
            Arc::new(crate::signing::DeviceKey::load_or_create(&path.with_file_name("k")).unwrap());
        drop(AuditTrail::open_signed(&path, key.clone(), None).expect("new log"));
        let l = lines(&path);
        let reset: AuditRecord = serde_json::from_str(&l[0]).unwrap();
        assert_eq!((reset.index, reset.action.as_str()), (0, RESET_ACTION));
        assert_eq!(reset.details["previous_records"], 3);
        assert!(reset.sig.is_some(), "signed");
        verify_signed(&path, None, Some(&key.public_hex())).expect("verifies");
    }

    #[test]
    fn chain_verifies_and_survives_reopen() {
        let (_d, path) = log_with(3);
        let v = verify(&path).expect("valid");
        assert_eq!(v.records, 3);
        let mut log = AuditLog::open(&path).expect("reopen");
        assert_eq!(log.head(), v.head);
        let r = log
            .append("local", "evidence.export", json!({"sha256": "ff"}))
            .expect("append");
        assert_eq!(r.index, 3);
        assert_eq!(r.prev, v.head);
        assert_eq!(verify(&path).expect("valid").records, 4);
    }

    #[test]
    fn edited_record_is_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l[1] = l[1].replace("token:ops-1", "token:ops-2");
        write(&path, &l);
        let e = verify(&path).expect_err("edited").to_string();
        assert!(e.contains("line 2") && e.contains("edited"), "{e}");
    }

    #[test]
    fn removed_record_is_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l.remove(1);
        write(&path, &l);
        let e = verify(&path).expect_err("removed").to_string();
        assert!(e.contains("line 2") && e.contains("removed"), "{e}");
    }

    #[test]
    fn reordered_records_are_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l.swap(1, 2);
        write(&path, &l);
        let e = verify(&path).expect_err("reordered").to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_broken_log_is_not_extended() {
        let (_d, path) = log_with(2);
        let mut l = lines(&path);
        l[0] = l[0].replace("\"version\":0", "\"version\":9");
        write(&path, &l);
        assert!(AuditLog::open(&path).is_err());
    }

    #[test]
    fn trail_is_shared_across_threads_and_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let trail = AuditTrail::open(&path).expect("open");
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let trail = trail.clone();
                std::thread::spawn(move || {
                    for i in 0..5 {
                        trail.record("api.access", &format!("token:t{t}"), json!({"i": i}));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let v = verify(&path).expect("valid");
        assert_eq!(v.records, 20);
        assert_eq!(trail.head(), Some(v.head));
        assert_eq!(trail.path(), Some(path));
        let r = trail
            .record("config.apply", "local", json!({"hash": "ab"}))
            .expect("recorded");
        assert_eq!((r.index, r.action.as_str()), (20, "config.apply"));
    }

    #[test]
    fn disabled_trail_records_nothing() {
        let t = AuditTrail::disabled();
        assert!(t.record("x", "local", json!({})).is_none());
        assert!(t.head().is_none());
    }
}
