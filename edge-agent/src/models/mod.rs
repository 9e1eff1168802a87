//! Model manifests, the verified weight cache, and fetching weights from a mirror or URL.

mod fetch;
pub mod licence;
mod manifest;
mod registry;
mod store;

use std::path::PathBuf;

pub use fetch::{FetchOutcome, FetchSource, fetch_model};
pub use licence::Shipping;
pub use manifest::*;
pub use registry::ManifestSet;
pub use store::{FileState, FileStatus, ModelStore, sha256_file};

/// Errors about manifests and weight files.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("unknown model `{name}`; known models: {known}")]
    UnknownModel { name: String, known: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing {file} from {origin}: sha256 mismatch (expected {expected}, got {actual}); the copy is corrupt or not the file the manifest names — nothing was written to the cache"
    )]
    HashMismatch {
        file: String,
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
    #[error(
        "no source for {file}: not in any mirror ({tried}) and the manifest has no URL; pass --from DIR or set EDGE_AGENT_MIRROR"
    )]
    NoSource { file: String, tried: String },
}
