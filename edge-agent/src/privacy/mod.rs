//! Privacy by default (DESIGN.md "Privacy and accountability"): people are pixelated in evidence
//! images, and plates not on a watchlist can leave the device as a keyed hash, so the centre can
//! link repeat sightings of one vehicle without learning its plate.

pub mod config;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::inference::RgbImage;
use crate::watchlist::{MatchKind, SharedWatchlist, WatchlistEntry};

/// Shortest site key accepted (`[privacy] plate_key_file`): shorter keys make the 10^7-odd plate
/// space cheap to enumerate even for someone who guesses the key's format.
pub const MIN_KEY_BYTES: usize = 16;

/// The key as used: the file's bytes without trailing line breaks and spaces (editors add them).
pub fn key_from_file_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Why the privacy settings could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("cannot read the plate key {path} ([privacy] plate_key_file): {source}")]
    KeyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the plate key {path} ([privacy] plate_key_file) has {len} bytes; at least {MIN_KEY_BYTES} are needed"
    )]
    KeyShort { path: PathBuf, len: usize },
}

/// Pixelates every person box in `img`, with cells sized to each box (a tenth of its height, at
/// least 8 px) so a face, about an eighth of a standing person, is never more than a cell or two.
pub fn pixelate_people(img: &mut RgbImage, people: &[[f32; 4]]) {
    for b in people {
        let h = (b[3] - b[1]).max(0.0);
        let block = ((h / 10.0) as u32).max(8);
        pixelate(img, *b, 0.05, block);
    }
}

/// Replaces every `block`×`block` cell overlapping the box `[x1, y1, x2, y2]` (grown by `pad` of
/// its size) with the cell's mean colour. Pixelation, unlike a light blur, cannot be undone by
/// deconvolution; the cells are aligned to the box so nothing outside it changes.
pub fn pixelate(img: &mut RgbImage, b: [f32; 4], pad: f32, block: u32) {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 || !b.iter().all(|v| v.is_finite()) {
        return;
    }
    let (bw, bh) = ((b[2] - b[0]).max(0.0), (b[3] - b[1]).max(0.0));
    let x0 = (b[0] - bw * pad).floor().clamp(0.0, w as f32) as u32;
    let y0 = (b[1] - bh * pad).floor().clamp(0.0, h as f32) as u32;
    let x1 = (b[2] + bw * pad).ceil().clamp(0.0, w as f32) as u32;
    let y1 = (b[3] + bh * pad).ceil().clamp(0.0, h as f32) as u32;
    let block = block.max(2);
    let mut cy = y0;
    while cy < y1 {
        let ey = (cy + block).min(y1);
        let mut cx = x0;
        while cx < x1 {
            let ex = (cx + block).min(x1);
            let mut sum = [0u64; 3];
            for y in cy..ey {
                for x in cx..ex {
                    let p = img.get_pixel(x, y).0;
                    for c in 0..3 {
                        sum[c] += u64::from(p[c]);
                    }
                }
            }
            let n = u64::from((ex - cx) * (ey - cy)).max(1);
            let mean = image::Rgb([(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]);
            for y in cy..ey {
                for x in cx..ex {
                    img.put_pixel(x, y, mean);
                }
            }
            cx = ex;
        }
        cy = ey;
    }
}

/// HMAC-SHA256 (RFC 2104), from `ring`: no hand-written crypto.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Turns plate texts into stable pseudonyms under a site key.
#[derive(Clone)]
pub struct PlateHasher {
    key: Vec<u8>,
}

impl std::fmt::Debug for PlateHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlateHasher(<key hidden>)")
    }
}

impl PlateHasher {
    /// Reads the site key from `path` (trailing whitespace ignored); refuses short keys.
    pub fn load(path: &Path) -> Result<Self, PrivacyError> {
        let bytes = std::fs::read(path).map_err(|source| PrivacyError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        let key = key_from_file_bytes(&bytes);
        if key.len() < MIN_KEY_BYTES {
            return Err(PrivacyError::KeyShort {
                path: path.to_path_buf(),
                len: key.len(),
            });
        }
        Ok(Self::new(key))
    }

    /// `key` is the site's secret (at least 16 bytes is sensible; the config check enforces it).
    pub fn new(key: &[u8]) -> Self {
        PlateHasher { key: key.to_vec() }
    }

    /// `hmac-sha256:` and the lowercase hex HMAC of the normalised text (`[0-9A-Z]`), so the same
    /// plate read with or without punctuation hashes the same.
    pub fn hash(&self, text: &str) -> String {
        let norm: String = text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        format!(
            "hmac-sha256:{}",
            hex::encode(hmac_sha256(&self.key, norm.as_bytes()))
        )
    }
}

/// How one plate may leave the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlateDisclosure {
    /// On the watchlist: in clear, as a `watchlist_hit`, with the entry and the list's version.
    /// A fuzzy hit (one confusable symbol away from `entry`, when
    /// [`PrivacyPolicy::fuzzy_watchlist`] is on) is disclosed the same way: it is a possible hit
    /// the centre must check.
    Hit {
        /// The listed entry; for a fuzzy hit its plate differs from the read.
        entry: WatchlistEntry,
        /// sha256 (hex) of the list in force.
        list_hash: String,
        /// Exact or fuzzy.
        kind: MatchKind,
        /// Symbols that differ between the read and `entry.plate` (0 or 1).
        distance: u32,
        /// Entries the read matched at this distance (`entry` is the smallest of them).
        candidates: usize,
    },
    /// Not listed, hashing on: only this pseudonym (`hmac-sha256:…`).
    Hashed(String),
    /// Not listed, hashing off: in clear.
    Clear,
}

/// What events may say about plates and people: the settings of `[privacy]`, the per-camera
/// `[cameras.privacy]` and the watchlist in force.
#[derive(Debug, Clone)]
pub struct PrivacyPolicy {
    /// Present when `hash_plates = true`.
    pub hasher: Option<PlateHasher>,
    /// The watchlist in force (swapped by `watchlist/set`).
    pub watchlist: SharedWatchlist,
    /// Cameras whose evidence is not pixelated (`blur_people = false` with a reason).
    pub unblurred_cameras: BTreeSet<String>,
    /// `[watchlist] fuzzy`: a read one confusable symbol away from a listed plate is a (fuzzy)
    /// hit, disclosed in clear. Default true.
    pub fuzzy_watchlist: bool,
}

impl Default for PrivacyPolicy {
    fn default() -> Self {
        Self {
            hasher: None,
            watchlist: SharedWatchlist::default(),
            unblurred_cameras: BTreeSet::new(),
            fuzzy_watchlist: true,
        }
    }
}

impl PrivacyPolicy {
    /// How the normalised `plate` may be disclosed.
    pub fn disclose(&self, plate: &str) -> PlateDisclosure {
        let list = self.watchlist.current();
        if let Some(m) = list.find(plate, self.fuzzy_watchlist) {
            return PlateDisclosure::Hit {
                entry: m.entry.clone(),
                list_hash: list.hash().to_string(),
                kind: m.kind,
                distance: m.distance,
                candidates: m.candidates,
            };
        }
        match &self.hasher {
            Some(h) => PlateDisclosure::Hashed(h.hash(plate)),
            None => PlateDisclosure::Clear,
        }
    }

    /// Whether people are pixelated in `camera`'s evidence.
    pub fn blurs(&self, camera: &str) -> bool {
        !self.unblurred_cameras.contains(camera)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231() {
        // Test case 1.
        let got = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(got),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        let got = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(got),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let got = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(got),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn plate_hash_is_stable_per_key_and_differs_across_keys() {
        let a = PlateHasher::new(b"site-key-tay-ninh-0001");
        let b = PlateHasher::new(b"site-key-tay-ninh-0002");
        assert_eq!(a.hash("51F12345"), a.hash("51F-123.45"));
        assert_eq!(a.hash("51F12345"), a.hash("51f12345"));
        assert_ne!(a.hash("51F12345"), b.hash("51F12345"));
        assert_ne!(a.hash("51F12345"), a.hash("51F12346"));
        assert!(a.hash("51F12345").starts_with("hmac-sha256:"));
        assert!(!format!("{a:?}").contains("tay"));
    }

    #[test]
    fn pixelate_changes_inside_the_box_only() {
        // A checkerboard: pixelation to 8-px cells must flatten it inside the box.
        let mut img = RgbImage::from_fn(64, 48, |x, y| {
            if (x + y) % 2 == 0 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([0, 0, 0])
            }
        });
        let before = img.clone();
        pixelate(&mut img, [16.0, 8.0, 40.0, 32.0], 0.0, 8);
        for (x, y, p) in img.enumerate_pixels() {
            let inside = (16..40).contains(&x) && (8..32).contains(&y);
            if inside {
                assert!(
                    p.0.iter().all(|&c| (120..=135).contains(&c)),
                    "({x},{y}) not flattened: {p:?}"
                );
            } else {
                assert_eq!(*p, *before.get_pixel(x, y), "({x},{y}) changed outside");
            }
        }
    }

    #[test]
    fn key_file_is_trimmed_and_short_keys_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("site.key");
        std::fs::write(&good, "0123456789abcdef0123\n").expect("write");
        let from_file = PlateHasher::load(&good).expect("key");
        assert_eq!(
            from_file.hash("51F12345"),
            PlateHasher::new(b"0123456789abcdef0123").hash("51F12345")
        );
        let short = dir.path().join("short.key");
        std::fs::write(&short, "tooshort\n").expect("write");
        let e = PlateHasher::load(&short).expect_err("short").to_string();
        assert!(e.contains("short.key") && e.contains("8 bytes"), "{e}");
        let e = PlateHasher::load(&dir.path().join("none.key"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("none.key"), "{e}");
    }

    #[test]
    fn disclosure_follows_watchlist_then_hashing() {
        let wl = crate::watchlist::Watchlist::parse("51F-123.45 # stolen\n").expect("list");
        let mut p = PrivacyPolicy {
            watchlist: SharedWatchlist::new(wl),
            ..PrivacyPolicy::default()
        };
        assert_eq!(p.disclose("30K31896"), PlateDisclosure::Clear);
        p.hasher = Some(PlateHasher::new(b"site-key-tay-ninh-0001"));
        match p.disclose("51F12345") {
            PlateDisclosure::Hit {
                entry,
                list_hash,
                kind,
                distance,
                ..
            } => {
                assert_eq!(entry.label.as_deref(), Some("stolen"));
                assert_eq!(list_hash.len(), 64);
                assert_eq!((kind, distance), (MatchKind::Exact, 0));
            }
            other => panic!("expected a hit, got {other:?}"),
        }
        assert_eq!(
            p.disclose("30K31896"),
            PlateDisclosure::Hashed(PlateHasher::new(b"site-key-tay-ninh-0001").hash("30K31896"))
        );
        // A list swapped in later takes effect at once.
        p.watchlist
            .replace(crate::watchlist::Watchlist::parse("30K-318.96\n").expect("v2"));
        assert!(matches!(
            p.disclose("30K31896"),
            PlateDisclosure::Hit { .. }
        ));
        assert!(matches!(p.disclose("51F12345"), PlateDisclosure::Hashed(_)));
        assert!(p.blurs("cam-1"));
        p.unblurred_cameras.insert("cam-1".into());
        assert!(!p.blurs("cam-1"));
    }

    #[test]
    fn fuzzy_hits_are_disclosed_in_clear_unless_switched_off() {
        let wl = crate::watchlist::Watchlist::parse("51F-123.45 # stolen\n").expect("list");
        let mut p = PrivacyPolicy {
            hasher: Some(PlateHasher::new(b"site-key-tay-ninh-0001")),
            watchlist: SharedWatchlist::new(wl),
            ..PrivacyPolicy::default()
        };
        assert!(p.fuzzy_watchlist, "fuzzy matching is on by default");
        // The listed `1` read as `7`: a possible hit, in clear.
        match p.disclose("51F72345") {
            PlateDisclosure::Hit {
                entry,
                kind,
                distance,
                candidates,
                ..
            } => {
                assert_eq!(entry.plate, "51F12345");
                assert_eq!((kind, distance, candidates), (MatchKind::Fuzzy, 1, 1));
            }
            other => panic!("expected a fuzzy hit, got {other:?}"),
        }
        // A non-confusable substitution stays a hashed sighting.
        assert!(matches!(p.disclose("51F12346"), PlateDisclosure::Hashed(_)));
        p.fuzzy_watchlist = false;
        assert!(matches!(p.disclose("51F72345"), PlateDisclosure::Hashed(_)));
        assert!(matches!(
            p.disclose("51F12345"),
            PlateDisclosure::Hit {
                kind: MatchKind::Exact,
                ..
            }
        ));
    }

    #[test]
    fn pixelate_clips_and_ignores_bad_boxes() {
        let mut img = RgbImage::from_pixel(10, 10, image::Rgb([9, 9, 9]));
        pixelate(&mut img, [-5.0, -5.0, 50.0, 50.0], 0.1, 4);
        pixelate(&mut img, [f32::NAN, 0.0, 3.0, 3.0], 0.0, 4);
        pixelate(&mut img, [8.0, 8.0, 2.0, 2.0], 0.0, 4);
        assert!(img.pixels().all(|p| p.0 == [9, 9, 9]));
    }
}
