//! The plate watchlist: plates the centre wants reported in clear, as `watchlist_hit` events.
//!
//! Everything else can leave the device hashed (`[privacy] hash_plates`), so the list is what
//! decides which plates are personal data the centre has a reason to see.
//!
//! # Text format
//! One plate per line, written any way a person would (`51F-123.45`, `51F12345`, `29-B1 256.62`);
//! everything after a `#` is the entry's label (why it is listed), shown in the hit event. Blank
//! lines and lines starting with `#` are ignored. Plates are normalised with
//! [`crate::plate::grammar::normalize`], so `51F-123.45` and `51f12345` are the same entry.
//!
//! ```text
//! # Tây Ninh police, list of 2026-11-30
//! 51F-123.45   # stolen, case 2026/118
//! 29B125662    # expired registration
//! ```
//!
//! A list is replaced as a whole ([`SharedWatchlist::replace`]), never edited in place, so a
//! reader always sees one complete version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::plate::grammar::normalize;

/// Shortest and longest normalised plate accepted (Vietnamese plates are 7–10 symbols; foreign and
/// special plates a little outside that).
const PLATE_LEN: std::ops::RangeInclusive<usize> = 4..=12;

/// One listed plate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistEntry {
    /// Normalised text, `[0-9A-Z]`.
    pub plate: String,
    /// Why it is listed (the text after `#`), if given.
    pub label: Option<String>,
    /// 1-based line in the source text.
    pub line: usize,
}

/// Why a watchlist was refused; always names the line.
#[derive(Debug, thiserror::Error)]
pub enum WatchlistError {
    #[error("cannot read watchlist {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}, line {line}: {reason}")]
    Line {
        origin: String,
        line: usize,
        reason: String,
    },
}

/// A parsed, immutable watchlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watchlist {
    entries: HashMap<String, WatchlistEntry>,
    hash: String,
}

impl Watchlist {
    /// An empty list (no plate is a hit).
    pub fn empty() -> Self {
        Self::from_entries(HashMap::new())
    }

    /// Parses the text format (module docs). Errors name the line; the whole list is refused.
    pub fn parse(text: &str) -> Result<Self, WatchlistError> {
        Self::parse_named(text, "watchlist")
    }

    /// Reads and parses a watchlist file; errors name the file and line.
    pub fn load(path: &Path) -> Result<Self, WatchlistError> {
        let text = std::fs::read_to_string(path).map_err(|source| WatchlistError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_named(&text, &format!("watchlist {}", path.display()))
    }

    /// [`Self::parse`] with `origin` (file name, `mqtt watchlist/set`) in error messages.
    pub fn parse_named(text: &str, origin: &str) -> Result<Self, WatchlistError> {
        let err = |line: usize, reason: String| WatchlistError::Line {
            origin: origin.to_string(),
            line,
            reason,
        };
        let mut entries: HashMap<String, WatchlistEntry> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let (plate_part, label) = match raw.split_once('#') {
                Some((p, l)) => (p, Some(l.trim())),
                None => (raw, None),
            };
            let plate_part = plate_part.trim();
            if plate_part.is_empty() {
                continue; // blank or comment-only line
            }
            if let Some(bad) = plate_part
                .chars()
                .find(|&c| crate::plate::grammar::normalize_char(c).is_none() && !is_separator(c))
            {
                return Err(err(
                    line,
                    format!(
                        "`{plate_part}` has `{bad}`, which is not part of a plate (letters, digits, `-`, `.`, spaces); put notes after `#`"
                    ),
                ));
            }
            let plate = normalize(plate_part);
            if !PLATE_LEN.contains(&plate.len()) {
                return Err(err(
                    line,
                    format!(
                        "`{plate_part}` is {} plate symbols; a plate has {} to {}",
                        plate.len(),
                        PLATE_LEN.start(),
                        PLATE_LEN.end()
                    ),
                ));
            }
            if let Some(first) = entries.get(&plate) {
                return Err(err(
                    line,
                    format!("{plate} is already listed on line {}", first.line),
                ));
            }
            let label = label.filter(|l| !l.is_empty()).map(str::to_string);
            entries.insert(plate.clone(), WatchlistEntry { plate, label, line });
        }
        Ok(Self::from_entries(entries))
    }

    fn from_entries(entries: HashMap<String, WatchlistEntry>) -> Self {
        // The hash covers what matters (plates and labels), not comments or order, so re-sending
        // the same list reformatted is recognisably the same version.
        let mut sorted: Vec<&WatchlistEntry> = entries.values().collect();
        sorted.sort_by(|a, b| a.plate.cmp(&b.plate));
        let mut h = Sha256::new();
        for e in sorted {
            h.update(e.plate.as_bytes());
            h.update(b"\t");
            h.update(e.label.as_deref().unwrap_or("").as_bytes());
            h.update(b"\n");
        }
        Watchlist {
            entries,
            hash: hex::encode(h.finalize()),
        }
    }

    /// The entry for a plate; `plate` is normalised here too, so display text works as well.
    pub fn contains(&self, plate: &str) -> Option<&WatchlistEntry> {
        self.entries.get(plate).or_else(|| {
            let norm = normalize(plate);
            self.entries.get(&norm)
        })
    }

    /// Number of listed plates.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// sha256 (hex) over the sorted plates and labels: the list's version, for status and audit.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// First 12 hex digits of [`Self::hash`], for logs.
    pub fn version(&self) -> &str {
        &self.hash[..12]
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '·' | ':' | '_')
}

/// The watchlist in use, shared by the pipeline (readers) and the remote `watchlist/set` handler
/// (writer). Readers take a cheap snapshot; a replacement is atomic, so no frame ever sees half a
/// list.
#[derive(Debug, Clone, Default)]
pub struct SharedWatchlist(Arc<RwLock<Arc<Watchlist>>>);

impl SharedWatchlist {
    /// Shares `list`.
    pub fn new(list: Watchlist) -> Self {
        SharedWatchlist(Arc::new(RwLock::new(Arc::new(list))))
    }

    /// The current list (a snapshot: later replacements do not change it).
    pub fn current(&self) -> Arc<Watchlist> {
        // A panic while holding the lock cannot leave the Arc half-written, so a poisoned lock
        // still holds a whole list.
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Swaps in `list`; returns the one it replaced.
    pub fn replace(&self, list: Watchlist) -> Arc<Watchlist> {
        let new = Arc::new(list);
        let mut g = match self.0.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        std::mem::replace(&mut *g, new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plates_labels_and_comments() {
        let w = Watchlist::parse(
            "# list of 2026-11-30\n\n51F-123.45   # stolen, case 118\n29-B1 256.62\n  50ld00454 #  \n",
        )
        .expect("valid");
        assert_eq!(w.len(), 3);
        let e = w.contains("51F12345").expect("listed");
        assert_eq!(e.label.as_deref(), Some("stolen, case 118"));
        assert_eq!(e.line, 3);
        assert_eq!(w.contains("29B125662").map(|e| e.line), Some(4));
        assert_eq!(w.contains("50LD00454").and_then(|e| e.label.clone()), None);
        // Display text and lower case find the same entry.
        assert!(w.contains("51F-123.45").is_some());
        assert!(w.contains("51f12345").is_some());
        assert!(w.contains("51F12346").is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let e = Watchlist::parse("51F12345\n51F-123.45 # again\n")
            .expect_err("duplicate")
            .to_string();
        assert!(e.contains("line 2") && e.contains("line 1"), "{e}");
        let e = Watchlist::parse("51F12345\n\n51F*123\n")
            .expect_err("bad char")
            .to_string();
        assert!(e.contains("line 3") && e.contains('*'), "{e}");
        let e = Watchlist::parse("ABC\n").expect_err("short").to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("wl.txt");
        std::fs::write(&p, "51F12345\n???\n").expect("write");
        let e = Watchlist::load(&p).expect_err("bad").to_string();
        assert!(e.contains("wl.txt") && e.contains("line 2"), "{e}");
        let e = Watchlist::load(&dir.path().join("none.txt"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("none.txt"), "{e}");
    }

    #[test]
    fn hash_ignores_format_but_not_content() {
        let a = Watchlist::parse("51F-123.45 # stolen\n29B125662\n").expect("a");
        let b = Watchlist::parse("# header\n29B1-256.62\n\n51F12345#stolen\n").expect("b");
        let c = Watchlist::parse("51F12345 # recovered\n29B125662\n").expect("c");
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.version().len(), 12);
        assert_ne!(Watchlist::empty().hash(), a.hash());
    }

    #[test]
    fn shared_list_is_swapped_atomically() {
        let shared = SharedWatchlist::new(Watchlist::parse("51F12345\n").expect("v1"));
        let snapshot = shared.current();
        let old = shared.replace(Watchlist::parse("29B125662\n").expect("v2"));
        assert!(old.contains("51F12345").is_some());
        // The earlier snapshot is unchanged; new readers see the new list.
        assert!(snapshot.contains("51F12345").is_some());
        assert!(shared.current().contains("51F12345").is_none());
        assert!(shared.clone().current().contains("29B125662").is_some());
    }
}
