//! Position-aware repair of plate text that comes without probabilities (an OCR that returns only
//! a string, a text typed by an operator, a watchlist entry).
//!
//! The text becomes a pseudo probability matrix — each character likely, its look-alikes
//! (`0`/`O`/`D`/`Q`, `1`/`I`, `2`/`Z`, `4`/`A`, `5`/`S`, `6`/`G`, `7`/`T`, `8`/`B`) somewhat
//! likely, anything else almost impossible, length fixed — and goes through the constrained slot
//! decoder. So a look-alike is swapped only where the position demands the other class, and the
//! same grammar decides as for model output. With the default loss budget at most two swaps are
//! made.

use super::decode::{DecodeOptions, SlotProbs, decode_slots};
use super::grammar::{self, PlateHints, PlateInfo};

/// Look-alike pairs (digit or letter, letter).
const LOOK_ALIKES: &[(char, char)] = &[
    ('0', 'O'),
    ('0', 'D'),
    ('0', 'Q'),
    ('D', 'O'),
    ('1', 'I'),
    ('2', 'Z'),
    ('4', 'A'),
    ('5', 'S'),
    ('6', 'G'),
    ('7', 'T'),
    ('8', 'B'),
];

const P_READ: f32 = 0.9;
const P_LOOK_ALIKE: f32 = 0.03;
const P_OTHER: f32 = 1e-6;

/// The outcome of [`repair_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Repaired normalised text, or the normalised input when no plate is within two swaps.
    pub text: String,
    /// Whether `text` is a plate.
    pub valid: bool,
    /// Characters swapped for a look-alike.
    pub swaps: usize,
    /// Classification when valid.
    pub plate: Option<PlateInfo>,
}

/// Normalises `raw` and swaps look-alike characters where the plate format demands the other
/// class (`29-81 256.62` → `29B125662`). Province codes must be issued ones.
pub fn repair_text(raw: &str, hints: &PlateHints) -> Repair {
    let text = grammar::normalize(raw);
    let alphabet: Vec<char> = super::decode::VN_PLATE_OCR_ALPHABET.chars().collect();
    // One slot per character plus one pad, so the length cannot change.
    let slots = text.chars().count() + 1;
    if slots > super::decode::MAX_SLOTS {
        return unrepaired(text, hints);
    }
    let mut probs = Vec::with_capacity(slots * alphabet.len());
    for s in 0..slots {
        let c = text.chars().nth(s).unwrap_or('_');
        for &a in &alphabet {
            probs.push(if a == c {
                P_READ
            } else if LOOK_ALIKES
                .iter()
                .any(|&(x, y)| (x == c && y == a) || (y == c && x == a))
            {
                P_LOOK_ALIKE
            } else {
                P_OTHER
            });
        }
    }
    let sp = SlotProbs {
        alphabet,
        pad: '_',
        slots,
        probs,
    };
    let opts = DecodeOptions {
        hints: *hints,
        ..DecodeOptions::default()
    };
    match decode_slots(&sp, &opts) {
        Ok(d) if d.valid => Repair {
            swaps: d
                .text
                .chars()
                .zip(text.chars())
                .filter(|(a, b)| a != b)
                .count(),
            text: d.text,
            valid: true,
            plate: d.plate,
        },
        _ => unrepaired(text, hints),
    }
}

fn unrepaired(text: String, hints: &PlateHints) -> Repair {
    let plate = grammar::parse_normalized(&text, hints).ok();
    Repair {
        valid: plate.is_some(),
        text,
        swaps: 0,
        plate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plate::grammar::VehicleKind;

    fn fix(raw: &str) -> Repair {
        repair_text(raw, &PlateHints::default())
    }

    #[test]
    fn look_alikes_follow_the_position() {
        let cases = [
            ("29-81 256.62", "29B125662", 1),
            ("51F-123.4S", "51F12345", 1),
            ("5IF-1Z3.45", "51F12345", 2),
            ("3OE-958.63", "30E95863", 1),
            ("190-013.70", "19D01370", 1),
            ("BBA-295.99", "88A29599", 2),
            ("8BA29599", "88A29599", 1),
            ("51O-123.45", "51D12345", 1),
            ("30G-7O5.16", "30G70516", 1),
            ("TM-I2-34", "TM1234", 1),
        ];
        for (raw, want, swaps) in cases {
            let r = fix(raw);
            assert_eq!(r.text, want, "{raw}");
            assert!(r.valid, "{raw}");
            assert_eq!(r.swaps, swaps, "{raw}");
        }
    }

    #[test]
    fn valid_text_is_left_alone() {
        let r = fix("51F-123.45");
        assert_eq!((r.text.as_str(), r.swaps, r.valid), ("51F12345", 0, true));
        // `8` in a serial is a digit: no swap to B.
        assert_eq!(fix("29B188888").text, "29B188888");
    }

    #[test]
    fn too_many_or_impossible_swaps_stay_invalid() {
        // Three look-alikes needed: beyond the budget.
        let r = fix("5IF-IZ3.4S");
        assert!(!r.valid && r.swaps == 0);
        assert_eq!(r.text, "5IFIZ34S");
        // No look-alike fixes a W in the series or an unknown length.
        assert!(!fix("51W-123.45").valid);
        assert!(!fix("51F-123.456.7").valid);
        assert!(!fix("").valid);
        // The province must be issued: 10 has no look-alike that makes it one.
        assert!(!fix("10A-123.45").valid);
    }

    #[test]
    fn hints_reach_the_plate() {
        let moto = PlateHints {
            vehicle: VehicleKind::Motorbike,
            rows: None,
        };
        let r = repair_text("29-V5 21O8", &moto);
        assert_eq!(r.text, "29V52108");
        assert_eq!(r.plate.unwrap().display, "29-V5 2108");
    }
}
