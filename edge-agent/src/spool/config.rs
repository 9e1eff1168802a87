//! `[storage]`: the spool's config section and its own checks (the loader pins what
//! [`StorageConfig::check`] finds to `file:line:col`; whether the disk can hold it is the loader's
//! look at the filesystem).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checks::SectionProblem;

/// `[storage]`: the durable event spool (this stage owns the section and its checks).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the SQLite spool. Default `/var/lib/edge-agent/spool`.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Upper bound of the spool in MiB; evidence is evicted first, then the oldest events, each
    /// eviction counted. Default 1024.
    #[serde(default = "default_spool_mb")]
    pub max_size_mb: u64,
    /// Free space the spool leaves on its filesystem, in MiB: below it the spool evicts as when
    /// full (counted, `disk_low` in `health` and `/readyz`), so the disk itself never fills.
    /// Default 64.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// The hash-chained audit log (config changes, watchlist loads, evidence exports, deletions,
    /// local API access). Default `<spool_dir>/audit.jsonl`.
    #[serde(default)]
    pub audit_file: Option<PathBuf>,
    /// Size in MiB at which the audit log becomes `<audit_file>.1` (replacing the one before,
    /// which a rotation record notes): at most about twice this is kept. Default 16.
    #[serde(default = "default_audit_max_mb")]
    pub audit_max_mb: u64,
    /// The device's Ed25519 signing key (PKCS#8, made `0600` at first start): every event is
    /// signed with it. Default `<spool_dir>/device.key`.
    #[serde(default)]
    pub device_key_file: Option<PathBuf>,
}

impl StorageConfig {
    /// The device key's path as written (relative paths resolve against the config's folder).
    pub fn device_key_path(&self) -> PathBuf {
        self.device_key_file
            .clone()
            .unwrap_or_else(|| self.spool_dir.join("device.key"))
    }

    /// The directory of event clips (`[clips]`), `<spool_dir>/clips`.
    pub fn clips_dir(&self) -> PathBuf {
        self.spool_dir.join("clips")
    }

    /// The audit log's path as written (relative paths are resolved against the config's folder).
    pub fn audit_path(&self) -> PathBuf {
        self.audit_file
            .clone()
            .unwrap_or_else(|| self.spool_dir.join("audit.jsonl"))
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            spool_dir: default_spool_dir(),
            max_size_mb: default_spool_mb(),
            min_free_mb: default_min_free_mb(),
            audit_file: None,
            audit_max_mb: default_audit_max_mb(),
            device_key_file: None,
        }
    }
}

fn default_spool_dir() -> PathBuf {
    "/var/lib/edge-agent/spool".into()
}
fn default_spool_mb() -> u64 {
    1024
}
fn default_min_free_mb() -> u64 {
    64
}
fn default_audit_max_mb() -> u64 {
    16
}

impl StorageConfig {
    /// Bounds too small to work.
    pub fn check(&self) -> Vec<SectionProblem> {
        let mut out = Vec::new();
        if self.max_size_mb < 16 {
            out.push(SectionProblem::error(
                "max_size_mb",
                format!(
                    "max_size_mb = {} is too small for even one evidence image set",
                    self.max_size_mb
                ),
                "use at least 64; 1024 holds days of events on a 4G outage",
            ));
        }
        if self.min_free_mb < 8 {
            out.push(SectionProblem::error(
                "min_free_mb",
                format!(
                    "min_free_mb = {} leaves no room for SQLite's write-ahead log (a few MiB) and the audit log",
                    self.min_free_mb
                ),
                "use at least 8; the default 64 suits a shared SD card",
            ));
        }
        if self.audit_max_mb == 0 {
            out.push(SectionProblem::error(
                "audit_max_mb",
                "audit_max_mb = 0 would rotate the audit log at every record",
                "use at least 1; the default 16 holds months of records",
            ));
        }
        out
    }
}
