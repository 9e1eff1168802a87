//! Vietnamese plate text: the language side of plate reading, independent of any OCR runtime.
//!
//! `grammar` normalises and validates text and writes it as printed (`province` holds the code
//! table); `decode` finds the most probable grammar-valid text in a slot OCR's probability matrix;
//! `ctc` does the same for a CTC OCR's per-step probabilities; `fuse` for both readers together; `repair` fixes look-alike characters
//! in text that comes without probabilities; `vote` turns the reads of one vehicle track into one
//! answer.
//!
//! ```
//! use edge_agent::plate::{
//!     DecodeOptions, PlateRead, SlotProbs, TrackVote, VoteConfig, decode_slots,
//! };
//!
//! // Output of `vn_plate_ocr_9x37_64x128` for one crop: [9, 37] softmax rows.
//! let text = "29B125662";
//! let alphabet = edge_agent::plate::VN_PLATE_OCR_ALPHABET;
//! let probs: Vec<f32> = (0..9)
//!     .flat_map(|s| {
//!         let want = text.chars().nth(s).unwrap_or('_');
//!         alphabet.chars().map(move |c| if c == want { 0.964 } else { 0.001 })
//!     })
//!     .collect();
//! let read = decode_slots(&SlotProbs::vn_plate_ocr(probs), &DecodeOptions::default())?;
//! assert_eq!(read.plate.as_ref().map(|p| p.display.as_str()), Some("29-B1 256.62"));
//!
//! let mut track: TrackVote<u64> = TrackVote::new(VoteConfig::default());
//! track.add(PlateRead::from_decode(&read, 17, 1.0)); // 17: the crop's id
//! assert_eq!(track.result().map(|r| r.text), Some(text.to_string()));
//! # Ok::<(), edge_agent::plate::DecodeError>(())
//! ```

pub mod ctc;
pub mod decode;
pub mod fuse;
pub mod grammar;
pub mod province;
pub mod repair;
pub mod symbols;
pub mod vote;

#[cfg(test)]
pub(crate) mod fixtures;

pub use ctc::{CtcError, CtcLabelMap, CtcLattice, decode_ctc};
pub use decode::{
    DecodeError, DecodeOptions, PlateDecode, ProvincePrior, SlotProbs, VN_PLATE_OCR_ALPHABET,
    decode_slots,
};
pub use fuse::{FuseError, decode_fused};
pub use grammar::{
    PlateCategory, PlateError, PlateHints, PlateInfo, VehicleKind, is_valid, normalize,
    normalize_rows, parse, parse_lenient, parse_normalized,
};
pub use province::{CodeSet, Province};
pub use repair::{Repair, repair_text};
pub use vote::{PlateRead, TrackVote, VoteConfig, VoteResult};
