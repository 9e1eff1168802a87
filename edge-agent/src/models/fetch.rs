//! Filling the cache: from a mirror directory, a mirror URL, or the manifest's official URL.
//!
//! Every file is written to a temporary name, hashed, and renamed into place only when its sha256
//! matches the manifest, so a corrupt source never leaves a file in the cache.

use std::path::{Path, PathBuf};

use super::registry::builtin_weights;
use super::store::BUILTIN_ORIGIN;
use super::{FileState, ModelError, ModelManifest, ModelStore};

/// Where a file may come from, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchSource {
    /// A directory holding files under their manifest names.
    Dir(PathBuf),
    /// An `http(s)://` base URL holding files under their manifest names.
    Url(String),
}

impl FetchSource {
    /// A directory path or an `http(s)://` URL.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            Self::Url(s.trim_end_matches('/').to_string())
        } else {
            Self::Dir(PathBuf::from(s))
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Dir(d) => d.display().to_string(),
            Self::Url(u) => u.clone(),
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyCached {
        file: String,
    },
    Fetched {
        file: String,
        from: String,
        bytes: u64,
    },
}

/// Makes every file of `manifest` present and verified in `store`.
///
/// Weights built into the binary come first; then sources are tried in order, then the manifest's
/// URL. A source that lacks the file is skipped; a source whose copy has the wrong hash is an error
/// (a corrupt mirror must be noticed, not hidden).
pub fn fetch_model(
    store: &ModelStore,
    manifest: &ModelManifest,
    sources: &[FetchSource],
) -> Result<Vec<FetchOutcome>, ModelError> {
    std::fs::create_dir_all(store.dir()).map_err(|source| ModelError::Io {
        path: store.dir().to_path_buf(),
        source,
    })?;
    let mut outcomes = Vec::new();
    for (file, expected) in manifest.all_files() {
        if store.check_file(file, expected)?.state == FileState::Ok {
            outcomes.push(FetchOutcome::AlreadyCached {
                file: file.to_string(),
            });
            continue;
        }
        if let Some(mut bytes) = builtin_weights(file) {
            let n = store.write_verified(file, expected, BUILTIN_ORIGIN, &mut bytes)?;
            outcomes.push(FetchOutcome::Fetched {
                file: file.to_string(),
                from: BUILTIN_ORIGIN.to_string(),
                bytes: n,
            });
            continue;
        }
        let official = manifest
            .url_of(file)
            .map(|u| FetchSource::Url(u.to_string()));
        let mut fetched = None;
        for source in sources {
            let (origin, result) = match source {
                FetchSource::Dir(d) => {
                    let p = d.join(file);
                    let result = p
                        .exists()
                        .then(|| copy_verified(store, file, expected, &p))
                        .transpose();
                    (p.display().to_string(), result)
                }
                FetchSource::Url(base) => {
                    let url = format!("{base}/{file}");
                    let result = download_verified(store, file, expected, &url);
                    (url, result)
                }
            };
            if let Some(bytes) = result? {
                fetched = Some((bytes, origin));
                break;
            }
        }
        if fetched.is_none()
            && let Some(FetchSource::Url(url)) = &official
        {
            let bytes = download_verified(store, file, expected, url)?.ok_or_else(|| {
                ModelError::Download {
                    url: url.clone(),
                    message: "404 not found".into(),
                }
            })?;
            fetched = Some((bytes, url.clone()));
        }
        match fetched {
            Some((bytes, from)) => {
                tracing::info!(file, %from, bytes, "fetched and verified");
                outcomes.push(FetchOutcome::Fetched {
                    file: file.to_string(),
                    from,
                    bytes,
                });
            }
            None => {
                return Err(ModelError::NoSource {
                    file: file.to_string(),
                    tried: sources
                        .iter()
                        .map(FetchSource::describe)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Ok(outcomes)
}

fn copy_verified(
    store: &ModelStore,
    file: &str,
    expected: &str,
    src: &Path,
) -> Result<u64, ModelError> {
    let mut reader = std::fs::File::open(src).map_err(|source| ModelError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    store.write_verified(file, expected, &src.display().to_string(), &mut reader)
}

/// Downloads and verifies one file; `Ok(None)` when the server has no such file (404).
fn download_verified(
    store: &ModelStore,
    file: &str,
    expected: &str,
    url: &str,
) -> Result<Option<u64>, ModelError> {
    let response = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(404)) => return Ok(None),
        Err(e) => {
            return Err(ModelError::Download {
                url: url.to_string(),
                message: e.to_string(),
            });
        }
    };
    let mut reader = response.into_body().into_reader();
    store
        .write_verified(file, expected, url, &mut reader)
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ManifestSet;

    #[test]
    fn weights_we_trained_are_fetched_from_the_binary_with_no_mirror() {
        let set = ManifestSet::builtin().unwrap();
        let ours: Vec<_> = set
            .iter()
            .filter(|m| builtin_weights(&m.file).is_some())
            .collect();
        assert!(
            !ours.is_empty(),
            "no built-in weights: models/*.onnx are ours and built in"
        );
        for m in &ours {
            assert_eq!(
                m.licence, "Apache-2.0",
                "{}: built-in weights must be ours",
                m.name
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path());
        let outcomes = fetch_model(&store, ours[0], &[]).unwrap();
        assert!(
            matches!(&outcomes[0], FetchOutcome::Fetched { from, .. } if from == BUILTIN_ORIGIN),
            "{outcomes:?}"
        );
        assert_eq!(store.verify(ours[0]).unwrap()[0].state, FileState::Ok);
        // a third-party model is never built in: it comes from a mirror
        let theirs = set.require("vn_plate_ocr_9x37_64x128").unwrap();
        assert!(builtin_weights(&theirs.file).is_none());
    }

    /// An agent upgraded with retrained weights finds the previous release's copy in its cache:
    /// loading replaces it from the binary. Another model's mismatching copy stays an error.
    #[test]
    fn a_stale_cached_copy_of_our_weights_is_replaced_on_load() {
        let set = ManifestSet::builtin().unwrap();
        let ours = set
            .iter()
            .find(|m| builtin_weights(&m.file).is_some())
            .unwrap();
        let theirs = set.require("vn_plate_ocr_9x37_64x128").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // a device that never ran `models fetch` has no cache directory yet
        let fresh = ModelStore::new(dir.path().join("never-fetched"));
        assert_eq!(fresh.verify(ours).unwrap()[0].state, FileState::Missing);
        assert!(fresh.verified_path(ours).is_ok());
        let store = ModelStore::new(dir.path());
        for m in [ours, theirs] {
            std::fs::write(store.path_of(&m.file), b"the previous release").unwrap();
        }
        let path = store.verified_path(ours).unwrap();
        assert_eq!(path, store.path_of(&ours.file));
        assert_eq!(store.verify(ours).unwrap()[0].state, FileState::Ok);
        assert!(matches!(
            store.verified_path(theirs),
            Err(ModelError::HashMismatch { .. })
        ));
        // and a missing copy of ours is written too, with no `models fetch`
        std::fs::remove_file(&path).unwrap();
        assert_eq!(store.verified_path(ours).unwrap(), path);
    }
}
