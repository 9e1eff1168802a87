//! The last good remote config and watchlist, kept in `{storage.spool_dir}/remote/` so a restart
//! runs what the centre last set. Files are replaced by write-to-temp, fsync, rename: a crash leaves
//! the old version or the new one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What is stored next to a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    pub version: String,
    pub hash: String,
    pub applied_at: DateTime<Utc>,
    /// For a config: the hash of the file on disk it replaced. When the file on disk changes later
    /// (an installer edited it), the file wins over the remote copy.
    #[serde(default)]
    pub base_hash: Option<String>,
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("remote config store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("remote config store {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// The directory of stored remote documents.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    dir: PathBuf,
}

const CONFIG: &str = "config.toml";
const WATCHLIST: &str = "watchlist.txt";

impl RemoteStore {
    /// The store under a spool directory (`{spool_dir}/remote`).
    pub fn in_spool_dir(spool_dir: &Path) -> Self {
        RemoteStore {
            dir: spool_dir.join("remote"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores the config that was just applied.
    pub fn save_config(&self, text: &str, meta: &Persisted) -> Result<(), StoreError> {
        self.save(CONFIG, text, meta)
    }

    /// The last stored config, if any.
    pub fn load_config(&self) -> Result<Option<(String, Persisted)>, StoreError> {
        self.load(CONFIG)
    }

    /// Stores the watchlist that was just applied.
    pub fn save_watchlist(&self, text: &str, meta: &Persisted) -> Result<(), StoreError> {
        self.save(WATCHLIST, text, meta)
    }

    /// The last stored watchlist, if any.
    pub fn load_watchlist(&self) -> Result<Option<(String, Persisted)>, StoreError> {
        self.load(WATCHLIST)
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            path: path.clone(),
            source,
        }
    }

    fn save(&self, name: &str, text: &str, meta: &Persisted) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let meta_json = serde_json::to_vec_pretty(meta).map_err(|e| StoreError::Corrupt {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        // The text first, then its meta: a crash in between leaves a meta whose hash does not
        // match, which `load` reports instead of using a mismatched pair.
        write_atomic(&self.dir.join(name), text.as_bytes())
            .map_err(self.io(&self.dir.join(name)))?;
        let meta_path = self.dir.join(format!("{name}.json"));
        write_atomic(&meta_path, &meta_json).map_err(self.io(&meta_path))?;
        Ok(())
    }

    fn load(&self, name: &str) -> Result<Option<(String, Persisted)>, StoreError> {
        let path = self.dir.join(name);
        let meta_path = self.dir.join(format!("{name}.json"));
        if !path.exists() || !meta_path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(self.io(&path))?;
        let raw = std::fs::read(&meta_path).map_err(self.io(&meta_path))?;
        let meta: Persisted = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
            path: meta_path.clone(),
            reason: e.to_string(),
        })?;
        let hash = super::watchlist_hash(&text);
        if hash != meta.hash {
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "content hash {hash} does not match the stored {}",
                    meta.hash
                ),
            });
        }
        Ok(Some((text, meta)))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        // The rename is durable only once the directory is synced.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RemoteStore::in_spool_dir(dir.path());
        assert!(store.load_config().expect("empty").is_none());
        let meta = Persisted {
            version: "v1".into(),
            hash: crate::remote::watchlist_hash("abc"),
            applied_at: Utc::now(),
            base_hash: Some("x".into()),
        };
        store.save_config("abc", &meta).expect("save");
        assert_eq!(
            store.load_config().expect("load"),
            Some(("abc".into(), meta))
        );
        std::fs::write(store.dir().join(CONFIG), "abd").expect("tamper");
        let e = store.load_config().expect_err("mismatch");
        assert!(e.to_string().contains("does not match"), "{e}");
    }
}
