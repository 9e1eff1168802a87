//! Consensus of the two plate readers: the most probable grammar-valid text under the slot OCR
//! and the CTC OCR together.
//!
//! The readers fail differently: on small provincial-camera crops the slot OCR keeps the plate's
//! layout and letters but misreads the province code (`77` as `37`, `71`, `17`), while PP-OCR
//! reads digits well but splits or merges letters (`L2` as `12`). Treating them as independent
//! experts, a text's score is the sum of both models' log-probabilities, searched exactly in one
//! Viterbi pass: the CTC decoder's product of lattice and grammar (`ctc.rs`), where emitting the
//! character of format position `j` also adds the slot OCR's log-probability of that character in
//! slot `j`, and each format's remaining slots add their pad probabilities.
//!
//! A character's confidence is the product-of-experts posterior of the chosen symbol at its
//! position — the slot row times the CTC row at the character's peak step, renormalised over the
//! plate symbols — so two readers agreeing make it high and a disagreement low, on the same 0–1
//! scale as either reader alone; the read's confidence is the minimum, pads included, as in
//! [`super::decode_slots`]. A site prior on the province code (`local_codes`) enters the code
//! digits' confidence as it enters the search (`decode::apply_code_prior`).

use super::ctc::{self, COL_BLANK, COL_SEP, CTC_WIDTH, CtcError, CtcLattice, Joint};
use super::decode::{self, DecodeError, DecodeOptions, MAX_SLOTS, PAD, PlateDecode, SlotProbs};
use super::grammar::{self, Shape, TEMPLATES, Template};
use super::symbols::{NUM_SYMBOLS, symbol};

/// Why the two readers' outputs cannot be fused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuseError {
    /// The slot OCR's output is malformed.
    #[error(transparent)]
    Slots(#[from] DecodeError),
    /// The CTC lattice is malformed.
    #[error(transparent)]
    Ctc(#[from] CtcError),
}

/// Finds the most probable plate under both readers (see the module doc).
///
/// There is no plausibility cut as in the single-reader decoders: a confident misread of one
/// reader (PP-OCR merging `99999` into `9999`) would reject the right text. Disagreement shows in
/// the confidence instead. The CTC search still prunes paths trailing its greedy path by more than
/// four times `opts.max_log_loss`. When no format survives, the slot decode comes back with
/// confidence 0.
pub fn decode_fused(
    slots: &SlotProbs,
    lattice: &CtcLattice,
    opts: &DecodeOptions,
) -> Result<PlateDecode, FuseError> {
    let t = decode::Table::new(slots)?;
    let (lat, lp) = ctc::sanitize(lattice)?;
    let (raw_text, _, raw_conf) = decode::argmax(slots);

    // Slot losses relative to each slot's best symbol, and the sums they are relative to.
    let mut joint = Joint {
        loss: [[0.0; NUM_SYMBOLS]; MAX_SLOTS],
    };
    let mut best_prefix = [0f32; MAX_SLOTS + 1];
    for j in 0..t.slots {
        let best = t.lp[j][..NUM_SYMBOLS]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        for c in 0..NUM_SYMBOLS {
            joint.loss[j][c] = t.lp[j][c] - best;
        }
        best_prefix[j + 1] = best_prefix[j] + best;
    }
    let mut pad_tail = [0f32; MAX_SLOTS + 1];
    for s in (0..t.slots).rev() {
        pad_tail[s] = pad_tail[s + 1] + t.lp[s][PAD];
    }

    // (score with priors, model log-probability, characters as (symbol, peak step), format)
    let mut best: Option<(f32, f32, Chars, &Template)> = None;
    for tpl in TEMPLATES {
        let n = tpl.pos.len();
        if n > t.slots
            || (!opts.allow_military && tpl.shape == Shape::Military)
            || !grammar::shape_allowed(tpl.shape, opts.hints.vehicle)
        {
            continue;
        }
        let Some((score, path)) = ctc::viterbi(lat.steps, &lp, tpl, opts, Some(&joint)) else {
            continue;
        };
        let chars = path_chars(&lat, &path);
        if chars.len() != n {
            continue;
        }
        let slot_model: f32 = chars
            .iter()
            .enumerate()
            .map(|(j, &(c, _))| t.lp[j][c])
            .sum::<f32>()
            + pad_tail[n];
        let model = ctc::path_log_prob(lat.steps, &lp, &path) + slot_model;
        let total = score + best_prefix[n] + pad_tail[n];
        if best.as_ref().is_none_or(|(b, ..)| total > *b) {
            best = Some((total, model, chars, tpl));
        }
    }

    let Some((_, model, chars, tpl)) = best else {
        let mut d = decode::decode_slots(slots, opts)?;
        d.confidence = 0.0;
        return Ok(d);
    };
    let text: String = chars
        .iter()
        .map(|&(c, _)| symbol(c as u8) as char)
        .collect();
    // The product-of-experts posterior over the plate symbols at each character's position.
    let posteriors: Vec<[f32; NUM_SYMBOLS]> = chars
        .iter()
        .enumerate()
        .map(|(j, &(_, step))| {
            let row = &lat.probs[step * CTC_WIDTH..(step + 1) * CTC_WIDTH];
            let joint: [f32; NUM_SYMBOLS] = std::array::from_fn(|k| t.p[j][k] * row[1 + k]);
            let sum: f32 = joint.iter().sum();
            joint.map(|v| if sum > 0.0 { v / sum } else { 0.0 })
        })
        .collect();
    let mut char_conf: Vec<f32> = chars
        .iter()
        .zip(&posteriors)
        .map(|(&(c, _), post)| post[c])
        .collect();
    if let [p0, p1, ..] = &posteriors[..] {
        let digits = [p0, p1].map(|post| std::array::from_fn(|d| post[d]));
        decode::apply_code_prior(&mut char_conf, &text, tpl, digits, opts);
    }
    let n = chars.len();
    let confidence = char_conf
        .iter()
        .copied()
        .chain((n..t.slots).map(|s| t.p[s][PAD]))
        .fold(1f32, f32::min);
    Ok(PlateDecode::chosen(
        text,
        char_conf,
        confidence,
        (raw_text, raw_conf),
        model,
        &opts.hints,
    ))
}

/// Characters of a path: (symbol index, step of its highest probability).
type Chars = Vec<(usize, usize)>;

/// The characters of a CTC path as (symbol, step of its highest probability); runs of one label
/// are one character, separators are dropped.
fn path_chars(lat: &CtcLattice, path: &[(usize, usize)]) -> Chars {
    let mut out: Chars = Vec::new();
    let mut prev: Option<(usize, usize)> = None;
    for &(t, col) in path {
        let same_run = prev.is_some_and(|(pt, pc)| pc == col && pt + 1 == t);
        if col != COL_SEP && col != COL_BLANK {
            let p = lat.probs[t * CTC_WIDTH + col];
            match out.last_mut() {
                Some(last) if same_run => {
                    if p > lat.probs[last.1 * CTC_WIDTH + col] {
                        last.1 = t;
                    }
                }
                _ => out.push((col - 1, t)),
            }
        }
        prev = Some((t, col));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plate::VN_PLATE_OCR_ALPHABET;

    /// Slot probabilities with `p` on each character of `text` (pads after it), the rest spread.
    fn slots(text: &str, p: &[f32]) -> SlotProbs {
        let alphabet: Vec<char> = VN_PLATE_OCR_ALPHABET.chars().collect();
        let probs = (0..9)
            .flat_map(|s| {
                let want = text.chars().nth(s).unwrap_or('_');
                let ps = p.get(s).copied().unwrap_or(0.99);
                let rest = (1.0 - ps) / 36.0;
                alphabet
                    .iter()
                    .map(move |&c| if c == want { ps } else { rest })
            })
            .collect();
        SlotProbs::vn_plate_ocr(probs)
    }

    /// A CTC lattice reading `text` one character per two steps (character, blank): `p` on the
    /// character, the rest half on blank and half spread over the other symbols.
    fn lattice(text: &str, p: f32) -> CtcLattice {
        let mut probs = Vec::new();
        for ch in text.chars() {
            let col = 1 + usize::from(crate::plate::symbols::index_of(ch as u8).unwrap());
            let mut row = [(1.0 - p) / 2.0 / 35.0; CTC_WIDTH];
            row[col] = p;
            row[COL_BLANK] = (1.0 - p) / 2.0;
            row[COL_SEP] = 0.0;
            row[CTC_WIDTH - 1] = 0.0;
            probs.extend_from_slice(&row);
            let mut blank = [0f32; CTC_WIDTH];
            blank[COL_BLANK] = 1.0;
            probs.extend_from_slice(&blank);
        }
        CtcLattice {
            steps: probs.len() / CTC_WIDTH,
            probs,
        }
    }

    #[test]
    fn a_confident_ctc_digit_overrides_a_doubtful_slot_digit() {
        // Slot OCR: `37L243140` with a doubtful first slot; CTC: `77L243140` sure of the 7.
        let s = slots("37L243140", &[0.55]);
        let mut sp = s.probs.clone();
        sp[7] = 0.4; // slot 0, class `7`
        let s = SlotProbs { probs: sp, ..s };
        let d = decode_fused(&s, &lattice("77L243140", 0.9), &DecodeOptions::default()).unwrap();
        assert_eq!(d.text, "77L243140");
        assert!(d.valid);
        assert!(d.changed);
        // The posterior of `7` in slot 0: 0.4·0.9 against 0.55·(0.1/36 spread) — near certain.
        assert!(d.char_conf[0] > 0.9, "{:?}", d.char_conf);
    }

    #[test]
    fn agreement_keeps_the_text_and_disagreement_lowers_the_confidence() {
        let opts = DecodeOptions::default();
        let agree =
            decode_fused(&slots("51F12345", &[]), &lattice("51F12345", 0.9), &opts).unwrap();
        assert_eq!(agree.text, "51F12345");
        assert!(agree.confidence > 0.9, "{agree:?}");
        // The slot OCR says 3 at 0.7, the CTC OCR 8 at 0.7: whichever wins, it is doubted.
        let split = decode_fused(
            &slots("51F12345", &[0.99, 0.99, 0.99, 0.99, 0.99, 0.7]),
            &lattice("51F12845", 0.7),
            &opts,
        )
        .unwrap();
        assert!(split.confidence < 0.7, "{split:?}");
        assert!(["51F12345", "51F12845"].contains(&split.text.as_str()));
    }

    #[test]
    fn the_site_prior_moves_the_code_and_its_confidence() {
        // Both readers lean to 71; a Bình Định camera (77 and 81 local) mostly sees 77.
        let s = slots("71L12345", &[0.99, 0.6]);
        let mut sp = s.probs.clone();
        sp[37 + 7] = 0.35; // slot 1, class `7`
        let s = SlotProbs { probs: sp, ..s };
        let l = lattice("71L12345", 0.6);
        let plain = decode_fused(&s, &l, &DecodeOptions::default()).unwrap();
        assert_eq!(plain.text, "71L12345");
        let local = DecodeOptions {
            local_codes: crate::plate::province::CodeSet::of(&[77, 81]),
            local_log_bonus: 1000f32.ln(),
            ..DecodeOptions::default()
        };
        let d = decode_fused(&s, &l, &local).unwrap();
        assert_eq!(d.text, "77L12345");
        // The readers alone give the second 7 about 0.35 × 0.2/35 against 0.6 × 0.6 for the 1
        // (a confidence near 0.005); with the prior it is the likelier digit.
        assert!(
            d.char_conf[1] > 0.5 && d.char_conf[1] < 1.0,
            "{:?}",
            d.char_conf
        );
        // The other characters keep their confidence.
        assert_eq!(d.char_conf[2..], plain.char_conf[2..]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let bad = CtcLattice {
            steps: 3,
            probs: vec![0.0; 5],
        };
        assert!(matches!(
            decode_fused(&slots("51F12345", &[]), &bad, &DecodeOptions::default()),
            Err(FuseError::Ctc(_))
        ));
        let s = SlotProbs {
            probs: vec![0.0; 10],
            ..slots("51F12345", &[])
        };
        assert!(matches!(
            decode_fused(&s, &lattice("51F12345", 0.9), &DecodeOptions::default()),
            Err(FuseError::Slots(_))
        ));
    }
}
