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
//!
//! # Matching
//! [`Watchlist::find`] reports an exact hit, or — when asked — a *fuzzy* one: a listed plate that
//! differs from the read in exactly one position, where the two symbols are one of the OCR
//! confusions of [`CONFUSABLE_PAIRS`] (`8`/`B`, `0`/`D`, `1`/`7`, `5`/`S`, `2`/`Z`, `6`/`G`, either
//! way round). Only same-length substitutions count; a missing or extra symbol is no match. A
//! fuzzy hit is a *possible* hit for a person to check, never a certain one.
//!
//! The fuzzy search needs no index: it probes the list with each single-confusable variant of
//! the read (at most one per symbol, so at most 12 hash lookups for the longest plate), which
//! costs no memory beyond the entries themselves, whatever the length of the list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::plate::grammar::normalize;

/// Shortest and longest normalised plate accepted (Vietnamese plates are 7–10 symbols; foreign and
/// special plates a little outside that).
const PLATE_LEN: std::ops::RangeInclusive<usize> = 4..=12;

/// The OCR confusions a fuzzy match forgives: a read and a listed plate that differ only by one
/// of these pairs, in one position and in either direction, are a possible hit.
pub const CONFUSABLE_PAIRS: [(u8, u8); 6] = [
    (b'8', b'B'),
    (b'0', b'D'),
    (b'1', b'7'),
    (b'5', b'S'),
    (b'2', b'Z'),
    (b'6', b'G'),
];

/// The symbol `c` is confused with ([`CONFUSABLE_PAIRS`]), if any.
fn confusable_partner(c: u8) -> Option<u8> {
    CONFUSABLE_PAIRS.iter().find_map(|&(a, b)| {
        if c == a {
            Some(b)
        } else if c == b {
            Some(a)
        } else {
            None
        }
    })
}

/// How a read matched a listed plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The read is the listed plate.
    Exact,
    /// The read differs from the listed plate by one confusable symbol ([`CONFUSABLE_PAIRS`]).
    Fuzzy,
}

impl MatchKind {
    /// `exact` or `fuzzy`, as events name it (`rule.details.match`).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Fuzzy => "fuzzy",
        }
    }
}

/// A read found on the list ([`Watchlist::find`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchlistMatch<'a> {
    /// The listed entry; for a fuzzy match its plate differs from the read.
    pub entry: &'a WatchlistEntry,
    /// Exact or fuzzy.
    pub kind: MatchKind,
    /// Symbols that differ between the read and [`Self::entry`]: 0 (exact) or 1 (fuzzy).
    pub distance: u32,
    /// Listed plates the read matched at this distance: 1 for an exact match; for a fuzzy one,
    /// all entries one confusable symbol away, of which [`Self::entry`] is the lexicographically
    /// smallest.
    pub candidates: usize,
}

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

    /// The entry `plate` matches: exactly, or — with `fuzzy` and no exact entry — by one
    /// confusable substitution (module docs, "Matching"). Among several fuzzy candidates the
    /// lexicographically smallest plate is chosen, so the answer never depends on hash order.
    /// `plate` is normalised here too, so display text works as well.
    pub fn find(&self, plate: &str, fuzzy: bool) -> Option<WatchlistMatch<'_>> {
        let norm = match self.entries.get(plate) {
            Some(entry) => return Some(Self::exact(entry)),
            None => normalize(plate),
        };
        if let Some(entry) = self.entries.get(&norm) {
            return Some(Self::exact(entry));
        }
        if !fuzzy || !PLATE_LEN.contains(&norm.len()) {
            return None;
        }
        // `norm` is ASCII (`[0-9A-Z]`), so swapping one byte for another ASCII byte keeps it a
        // valid string of the same length.
        let mut variant = norm.clone();
        let mut best: Option<&WatchlistEntry> = None;
        let mut candidates = 0;
        for (i, c) in norm.bytes().enumerate() {
            let Some(partner) = confusable_partner(c) else {
                continue;
            };
            let mut sym = [0u8; 4];
            variant.replace_range(i..=i, char::from(partner).encode_utf8(&mut sym));
            if let Some(entry) = self.entries.get(&variant) {
                candidates += 1;
                if best.is_none_or(|b| entry.plate < b.plate) {
                    best = Some(entry);
                }
            }
            variant.replace_range(i..=i, char::from(c).encode_utf8(&mut sym));
        }
        best.map(|entry| WatchlistMatch {
            entry,
            kind: MatchKind::Fuzzy,
            distance: 1,
            candidates,
        })
    }

    fn exact(entry: &WatchlistEntry) -> WatchlistMatch<'_> {
        WatchlistMatch {
            entry,
            kind: MatchKind::Exact,
            distance: 0,
            candidates: 1,
        }
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

    fn fuzzy(w: &Watchlist, read: &str) -> Option<(String, MatchKind, u32, usize)> {
        w.find(read, true)
            .map(|m| (m.entry.plate.clone(), m.kind, m.distance, m.candidates))
    }

    #[test]
    fn find_reports_exact_hits_as_exact() {
        let w = Watchlist::parse("51F-123.45 # stolen\n").expect("list");
        for read in ["51F12345", "51F-123.45", "51f12345"] {
            let m = w.find(read, true).expect("exact hit");
            assert_eq!((m.kind, m.distance, m.candidates), (MatchKind::Exact, 0, 1));
            assert_eq!(m.entry.label.as_deref(), Some("stolen"));
            assert_eq!(w.find(read, false).map(|m| m.kind), Some(MatchKind::Exact));
        }
        assert_eq!(MatchKind::Exact.as_str(), "exact");
        assert_eq!(MatchKind::Fuzzy.as_str(), "fuzzy");
    }

    #[test]
    fn each_confusable_pair_matches_fuzzily_both_ways() {
        for &(a, b) in &CONFUSABLE_PAIRS {
            let (a, b) = (char::from(a), char::from(b));
            for (listed_sym, read_sym) in [(a, b), (b, a)] {
                let listed = format!("51F{listed_sym}2345");
                let read = format!("51F{read_sym}2345");
                let w = Watchlist::parse(&format!("{listed} # case\n")).expect("list");
                assert_eq!(
                    fuzzy(&w, &read),
                    Some((listed.clone(), MatchKind::Fuzzy, 1, 1)),
                    "{read} should match {listed}"
                );
                // Switched off, the same read is no hit at all.
                assert!(
                    w.find(&read, false).is_none(),
                    "{read} matched with fuzzy off"
                );
            }
        }
        // The substitution may sit anywhere, the first and last symbols included.
        let w = Watchlist::parse("8F123456\n51F1234S\n").expect("list");
        assert_eq!(
            fuzzy(&w, "BF123456").map(|m| m.0).as_deref(),
            Some("8F123456")
        );
        assert_eq!(
            fuzzy(&w, "51F12345").map(|m| m.0).as_deref(),
            Some("51F1234S")
        );
    }

    #[test]
    fn other_substitutions_and_lengths_are_no_fuzzy_hit() {
        let w = Watchlist::parse("51F12345\n").expect("list");
        // One substitution that is not a confusable pair (4/A, 3/E, O/0 are not in the table).
        for read in ["51F12346", "51F1234A", "51F1E345", "51F12O45"] {
            assert!(w.find(read, true).is_none(), "{read} matched");
        }
        // Two confusable substitutions.
        assert!(w.find("S1F1Z345", true).is_none());
        assert!(w.find("51F77345", true).is_none());
        // A symbol more or less, even a confusable one.
        for read in ["51F123456", "51F1234", "51F123458", "5F12345"] {
            assert!(w.find(read, true).is_none(), "{read} matched");
        }
        assert!(Watchlist::empty().find("51F12345", true).is_none());
        assert!(w.find("", true).is_none());
    }

    #[test]
    fn several_fuzzy_candidates_pick_the_smallest_and_count_them() {
        // `81F12345` is one confusable symbol from `B1F12345` (8/B) and from `81F1Z345` (2/Z),
        // and from `81F72345` (1/7); `81F12346` is not a candidate (6/5 is no pair).
        let text = "B1F12345 # b\n81F1Z345 # z\n81F72345 # seven\n81F12346\n";
        let w = Watchlist::parse(text).expect("list");
        let want = Some(("81F1Z345".to_string(), MatchKind::Fuzzy, 1, 3));
        assert_eq!(fuzzy(&w, "81F12345"), want);
        // The choice does not depend on the order of the file (or the hash map).
        let reordered = Watchlist::parse("81F12346\n81F72345\nB1F12345\n81F1Z345\n").expect("list");
        assert_eq!(fuzzy(&reordered, "81F12345"), want);
        // An exact entry wins over fuzzy neighbours.
        let w = Watchlist::parse("81F12345\nB1F12345\n").expect("list");
        assert_eq!(
            fuzzy(&w, "81F12345"),
            Some(("81F12345".to_string(), MatchKind::Exact, 0, 1))
        );
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
