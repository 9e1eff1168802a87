//! Clips on the device: one `<sha256>.mp4` per clip in one directory, bounded in bytes and age.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::ClipError;

/// The device's clip directory.
#[derive(Debug, Clone)]
pub struct ClipStore {
    dir: PathBuf,
    /// The kept files' extension (`mp4`, `jpg`).
    ext: &'static str,
    max_bytes: u64,
    max_age: Option<Duration>,
    /// Free space the spool needs on the same disk (`[storage] min_free_mb`): a clip never eats it.
    min_free: u64,
}

/// What one [`ClipStore::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub expired: u64,
    pub over_budget: u64,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ClipStore {
    /// A store in `dir` (created on first save) of at most `max_bytes`, clips older than `max_age`
    /// deleted (`None`: kept until the byte bound needs the room), leaving `min_free` bytes free
    /// on its disk.
    pub fn new(dir: PathBuf, max_bytes: u64, max_age: Option<Duration>, min_free: u64) -> Self {
        ClipStore {
            dir,
            ext: "mp4",
            max_bytes,
            max_age,
            min_free,
        }
    }

    /// The stored clips, oldest first: (modified, bytes, path).
    fn clips(&self, now: SystemTime) -> Vec<(SystemTime, u64, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut clips: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name();
                let stem = name.to_str()?.strip_suffix(self.ext)?.strip_suffix('.')?;
                let meta = e.metadata().ok()?;
                (is_sha256(stem) && meta.is_file())
                    .then(|| (meta.modified().unwrap_or(now), meta.len(), e.path()))
            })
            .collect();
        clips.sort();
        clips
    }

    /// Deletes the oldest clips until `need` more bytes leave `min_free` on the disk; false when
    /// even an empty store would not.
    fn make_room(&self, need: u64) -> bool {
        let Ok(mut free) = crate::spool::free_bytes(&self.dir) else {
            return true;
        };
        let mut oldest = self.clips(SystemTime::now()).into_iter();
        while free < self.min_free + need {
            let Some((_, len, path)) = oldest.next() else {
                return false;
            };
            if Self::remove(&path) {
                tracing::info!(path = %path.display(), "clip deleted to keep the spool's free space");
                free += len;
            }
        }
        true
    }

    /// The same store for files of another kind (`jpg`).
    pub fn with_extension(mut self, ext: &'static str) -> Self {
        self.ext = ext;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one clip with `meta` beside it (`<sha256>.json`: the clip's event, so a request for
    /// the hash can be answered), through temporary files so a crash leaves no half clip under a
    /// hash name, and prunes; returns its path and sha256.
    pub fn save(&self, mp4: &[u8], meta: &[u8]) -> Result<(PathBuf, String), ClipError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClipError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        if !self.make_room(mp4.len() as u64) {
            return Err(ClipError::NoRoom {
                dir: self.dir.clone(),
                bytes: mp4.len() as u64,
            });
        }
        let sha = crate::events::evidence::sha256_hex(mp4);
        let path = self.dir.join(format!("{sha}.{}", self.ext));
        for (bytes, target) in [
            (meta, self.dir.join(format!("{sha}.json"))),
            (mp4, path.clone()),
        ] {
            let tmp = self.dir.join(format!(".{sha}.tmp"));
            std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &target).map_err(io(&target))?;
        }
        let pruned = self.prune(SystemTime::now());
        if pruned != Pruned::default() {
            tracing::info!(dir = %self.dir.display(), expired = pruned.expired, over_budget = pruned.over_budget, "clips deleted");
        }
        Ok((path, sha))
    }

    /// The stored clip with this hash; `None` for anything that is not a hash of a clip here (a
    /// request never names a path).
    pub fn find(&self, sha256: &str) -> Option<PathBuf> {
        if !is_sha256(sha256) {
            return None;
        }
        let path = self.dir.join(format!("{sha256}.{}", self.ext));
        path.is_file().then_some(path)
    }

    /// The stored clip with this hash and the meta saved with it; `None` when there is none (or
    /// `sha256` is not a hash).
    pub fn load(&self, sha256: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let mp4 = std::fs::read(self.find(sha256)?).ok()?;
        let meta = std::fs::read(self.dir.join(format!("{sha256}.json"))).ok()?;
        Some((mp4, meta))
    }

    fn remove(path: &Path) -> bool {
        let _ = std::fs::remove_file(path.with_extension("json"));
        std::fs::remove_file(path).is_ok()
    }

    /// Deletes clips past their age, then the oldest until the store fits its bytes.
    pub fn prune(&self, now: SystemTime) -> Pruned {
        let mut out = Pruned::default();
        let clips = self.clips(now);
        let mut total: u64 = clips.iter().map(|c| c.1).sum();
        for (modified, len, path) in clips {
            let expired = self
                .max_age
                .is_some_and(|age| now.duration_since(modified).unwrap_or_default() > age);
            if !expired && total <= self.max_bytes {
                continue;
            }
            if Self::remove(&path) {
                total -= len;
                match expired {
                    true => out.expired += 1,
                    false => out.over_budget += 1,
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_its_bytes_and_ages_and_finds_only_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ClipStore::new(
            dir.path().join("clips"),
            2500,
            Some(Duration::from_secs(3600)),
            0,
        );
        let mut saved = Vec::new();
        for i in 0..4u8 {
            let (path, sha) = store.save(&vec![i; 1000], b"{}").unwrap();
            assert!(path.ends_with(format!("{sha}.mp4")));
            saved.push(sha);
            // distinct modification times, oldest first
            std::thread::sleep(Duration::from_millis(20));
        }
        // 4000 bytes into 2500: the two oldest went
        assert!(store.find(&saved[0]).is_none() && store.find(&saved[1]).is_none());
        assert!(store.find(&saved[2]).is_some() && store.find(&saved[3]).is_some());
        assert_eq!(
            store.load(&saved[3]),
            Some((vec![3u8; 1000], b"{}".to_vec()))
        );
        // a deleted clip takes its meta with it
        assert!(
            !dir.path()
                .join("clips")
                .join(format!("{}.json", saved[0]))
                .exists()
        );
        for hostile in [
            "../etc/passwd",
            "",
            &saved[3][..10],
            &saved[3].to_uppercase(),
        ] {
            assert!(store.find(hostile).is_none(), "{hostile}");
        }
        let later = SystemTime::now() + Duration::from_secs(7200);
        assert_eq!(store.prune(later).expired, 2);
        assert!(store.find(&saved[3]).is_none());
    }

    #[test]
    fn a_clip_never_takes_the_free_space_the_spool_needs() {
        let dir = tempfile::tempdir().unwrap();
        let free = crate::spool::free_bytes(dir.path()).unwrap();
        // more than the disk's free space is reserved: the old clip goes, and the new one is refused
        let store = ClipStore::new(dir.path().join("clips"), u64::MAX, None, 0);
        let (_, old) = store.save(&[1u8; 1000], b"{}").unwrap();
        // (1 GiB over: other tests freeing files meanwhile cannot make room)
        let tight = ClipStore::new(dir.path().join("clips"), u64::MAX, None, free + (1 << 30));
        let err = tight.save(&[2u8; 1000], b"{}").unwrap_err().to_string();
        assert!(
            err.contains("1000 bytes") && err.contains("min_free_mb"),
            "{err}"
        );
        assert!(
            tight.find(&old).is_none(),
            "the oldest clip made room first"
        );
    }
}
