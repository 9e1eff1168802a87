//! The local weight cache: a directory of files, each checked against its manifest's sha256.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::registry::builtin_weights;
use super::{ModelError, ModelManifest};

/// Where built-in weights come from, as `models fetch` reports it.
pub(super) const BUILTIN_ORIGIN: &str = "the agent binary";

/// Env var that overrides the default cache directory.
pub(super) const CACHE_ENV: &str = "EDGE_AGENT_MODEL_CACHE";
/// Default cache directory on a device.
pub(super) const DEFAULT_CACHE_DIR: &str = "/var/lib/edge-agent/models";

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// State of one cached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Ok,
    Missing,
    Mismatch { actual: String },
}

/// One file of one model, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub file: String,
    pub path: PathBuf,
    pub expected: String,
    pub state: FileState,
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            FileState::Ok => write!(
                f,
                "ok        {} (sha256 {})",
                self.path.display(),
                &self.expected[..16]
            ),
            FileState::Missing => {
                write!(
                    f,
                    "missing   {} — run `edge-agent models fetch`",
                    self.path.display()
                )
            }
            FileState::Mismatch { actual } => write!(
                f,
                "CORRUPT   {}: sha256 mismatch, expected {}, got {} — delete it and run `edge-agent models fetch`",
                self.path.display(),
                self.expected,
                actual
            ),
        }
    }
}

/// The verified weight cache.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache given explicitly, else `EDGE_AGENT_MODEL_CACHE`, else the device default.
    pub fn default_dir(explicit: Option<&Path>) -> PathBuf {
        explicit
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os(CACHE_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Hashes every file of `manifest` in the cache.
    pub fn verify(&self, manifest: &ModelManifest) -> Result<Vec<FileStatus>, ModelError> {
        manifest
            .all_files()
            .map(|(file, expected)| self.check_file(file, expected))
            .collect()
    }

    /// Hashes one cached file against its expected sha256.
    pub fn check_file(&self, file: &str, expected: &str) -> Result<FileStatus, ModelError> {
        let path = self.path_of(file);
        let state = if !path.exists() {
            FileState::Missing
        } else {
            let actual = sha256_file(&path)?;
            if actual == expected {
                FileState::Ok
            } else {
                FileState::Mismatch { actual }
            }
        };
        Ok(FileStatus {
            file: file.to_string(),
            path,
            expected: expected.to_string(),
            state,
        })
    }

    /// Path of a verified weight file; an error that says what to do otherwise.
    ///
    /// Weights built into the binary (ours) are written from it when the cache lacks them or
    /// holds another version: an agent upgraded with retrained weights finds the previous
    /// release's copy in its cache, and that copy is stale, not corrupt.
    pub fn verified_path(&self, manifest: &ModelManifest) -> Result<PathBuf, ModelError> {
        let status = self.check_file(&manifest.file, &manifest.sha256)?;
        if status.state != FileState::Ok
            && let Some(mut bytes) = builtin_weights(&manifest.file)
        {
            std::fs::create_dir_all(&self.dir).map_err(|source| ModelError::Io {
                path: self.dir.clone(),
                source,
            })?;
            self.write_verified(&manifest.file, &manifest.sha256, BUILTIN_ORIGIN, &mut bytes)?;
            tracing::info!(model = %manifest.name, "wrote the built-in weights into the cache");
            return Ok(status.path);
        }
        match status.state {
            FileState::Ok => Ok(status.path),
            FileState::Missing => Err(ModelError::Io {
                path: status.path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "weights of `{}` are not in the cache; run `edge-agent models fetch {}`",
                        manifest.name, manifest.name
                    ),
                ),
            }),
            FileState::Mismatch { actual } => Err(ModelError::HashMismatch {
                file: manifest.file.clone(),
                origin: status.path.display().to_string(),
                expected: manifest.sha256.clone(),
                actual,
            }),
        }
    }

    /// Streams `reader` into a temp file in the cache while hashing, then renames it into place if the
    /// hash matches.
    pub(super) fn write_verified(
        &self,
        file: &str,
        expected: &str,
        origin: &str,
        reader: &mut dyn Read,
    ) -> Result<u64, ModelError> {
        let dest = self.path_of(file);
        // Not a predictable name, and never through an existing path: `models fetch` may run as root
        // in a directory the service user owns, where a planted `.NAME.partial` symlink would
        // otherwise turn this write into a root write anywhere (issue 19). `create_new` is O_EXCL,
        // which does not follow a symlink.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = self.path_of(&format!(".{file}.{}.{nonce}.partial", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        let result = (|| {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            // O_NOFOLLOW on top of O_EXCL, and a mode that does not depend on the caller's umask:
            // readable by the service user, writable by whoever fetched.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.custom_flags(libc::O_NOFOLLOW).mode(0o644);
            }
            let mut out = opts.open(&tmp).map_err(io(&tmp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                let n = reader.read(&mut buf).map_err(io(Path::new(origin)))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io(&tmp))?;
                total += n as u64;
            }
            out.sync_all().map_err(io(&tmp))?;
            let actual = hex::encode(hasher.finalize());
            if actual != expected {
                return Err(ModelError::HashMismatch {
                    file: file.to_string(),
                    origin: origin.to_string(),
                    expected: expected.to_string(),
                    actual,
                });
            }
            std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
            Ok(total)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}
