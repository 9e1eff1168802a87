//! Vietnamese plate text: the language side of plate reading, independent of any OCR runtime.
//!
//! `grammar` normalises and validates text and writes it as printed; `decode` finds the most
//! probable grammar-valid text in a slot OCR's probability matrix; `ctc` does the same for a CTC
//! OCR's per-step probabilities; `vote` turns the reads of one vehicle track into one answer.

pub mod ctc;
pub mod decode;
pub mod grammar;
pub mod province;
pub mod symbols;
pub mod vote;

#[cfg(test)]
mod fixtures;

pub use ctc::{CtcError, CtcLabelMap, CtcLattice, decode_ctc};
pub use decode::{
    DecodeError, DecodeOptions, PlateDecode, ProvincePrior, SlotProbs, VN_PLATE_OCR_ALPHABET,
    decode_slots,
};
pub use grammar::{
    PlateCategory, PlateError, PlateHints, PlateInfo, VehicleKind, is_valid, normalize,
    normalize_rows, parse, parse_lenient, parse_normalized,
};
pub use province::Province;
pub use vote::{PlateRead, TrackVote, VoteConfig, VoteResult};
