//! The local weight cache: a directory of files, each checked against its manifest's sha256.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ModelError, ModelManifest};

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
    pub fn verified_path(&self, manifest: &ModelManifest) -> Result<PathBuf, ModelError> {
        let status = self.check_file(&manifest.file, &manifest.sha256)?;
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
}
