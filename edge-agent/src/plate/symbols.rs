//! The 36 plate symbols `0-9A-Z` and sets of them as bit masks.
//!
//! Grammar, slot decoder and CTC decoder all index symbols the same way (digits 0–9, then letters
//! 10–35) so a character class is one `u64` and membership is one shift.

/// The plate symbols in index order.
pub const SYMBOLS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Number of plate symbols.
pub const NUM_SYMBOLS: usize = 36;

/// Index of an ASCII plate symbol (`0-9A-Z`), or `None`.
pub const fn index_of(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The ASCII symbol at `index` (must be < 36; larger indices give `?`).
pub const fn symbol(index: u8) -> u8 {
    if (index as usize) < NUM_SYMBOLS {
        SYMBOLS[index as usize]
    } else {
        b'?'
    }
}

/// A set of plate symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharSet(pub u64);

impl CharSet {
    /// The set of the ASCII symbols in `chars` (others are ignored).
    pub const fn of(chars: &[u8]) -> CharSet {
        let mut bits = 0u64;
        let mut i = 0;
        while i < chars.len() {
            if let Some(ix) = index_of(chars[i]) {
                bits |= 1 << ix;
            }
            i += 1;
        }
        CharSet(bits)
    }

    /// Whether symbol index `ix` is in the set.
    pub const fn contains(self, ix: u8) -> bool {
        ix < 64 && self.0 & (1 << ix) != 0
    }

    /// Whether the ASCII symbol `c` is in the set.
    pub const fn contains_char(self, c: u8) -> bool {
        match index_of(c) {
            Some(ix) => self.contains(ix),
            None => false,
        }
    }

    /// The union of two sets.
    pub const fn union(self, other: CharSet) -> CharSet {
        CharSet(self.0 | other.0)
    }

    /// The symbol indices in the set, ascending.
    pub fn indices(self) -> impl Iterator<Item = u8> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let ix = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(ix)
        })
    }
}

/// `0-9`.
pub const DIGITS: CharSet = CharSet::of(b"0123456789");
/// `A-Z`.
pub const LETTERS: CharSet = CharSet::of(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip() {
        for (i, &c) in SYMBOLS.iter().enumerate() {
            assert_eq!(index_of(c), Some(i as u8));
            assert_eq!(symbol(i as u8), c);
        }
        assert_eq!(index_of(b'_'), None);
        assert_eq!(index_of(b'a'), None);
        assert_eq!(symbol(36), b'?');
    }

    #[test]
    fn sets() {
        let s = CharSet::of(b"A0Z");
        assert!(s.contains_char(b'A') && s.contains_char(b'0') && s.contains_char(b'Z'));
        assert!(!s.contains_char(b'B'));
        assert_eq!(s.indices().collect::<Vec<_>>(), vec![0, 10, 35]);
        assert_eq!(DIGITS.indices().count(), 10);
        assert_eq!(LETTERS.indices().count(), 26);
        assert_eq!(DIGITS.union(LETTERS).indices().count(), 36);
    }
}
