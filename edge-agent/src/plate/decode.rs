//! Grammar-constrained decoding of a fixed-slot plate OCR (`vn_plate_ocr_9x37_64x128`: 9 slots, a
//! softmax over `0-9A-Z_` per slot, `_` = pad).
//!
//! Instead of argmax followed by ad-hoc repairs, the decoder returns the most probable text the
//! grammar allows: it maximises the sum of log-probabilities of the chosen class in every slot
//! (characters, then pads — pads only trailing) over all strings of all formats. Slots are
//! independent given the image, so per format this is a Viterbi pass over positions where the state
//! is the previous character, needed only where two positions constrain each other (province code,
//! two-letter series). Cost is a few hundred additions per format: microseconds per crop.
//!
//! Repairs therefore happen only where the position demands the other class (`8` → `B` in a series
//! position, `D` → `0` in a serial position) and pick the model's own second choice, not a fixed
//! confusion table.

use super::grammar::{self, PlateHints, PlateInfo, Rule, Shape, TEMPLATES, Template};
use super::province::{self, CodeSet};
use super::symbols::{NUM_SYMBOLS, symbol};

/// The slot OCR's output for one crop.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotProbs {
    /// Class characters in output order, e.g. `0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_`.
    pub alphabet: Vec<char>,
    /// The padding class (`_`).
    pub pad: char,
    /// Number of slots (9).
    pub slots: usize,
    /// `slots × alphabet.len()` probabilities, row-major (one softmax row per slot).
    pub probs: Vec<f32>,
}

/// The alphabet of `vn_plate_ocr_9x37_64x128` (MODELS.md §3).
pub const VN_PLATE_OCR_ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_";

impl SlotProbs {
    /// Probabilities from `vn_plate_ocr_9x37_64x128` (`[9, 37]`, alphabet
    /// [`VN_PLATE_OCR_ALPHABET`]).
    pub fn vn_plate_ocr(probs: Vec<f32>) -> Self {
        SlotProbs {
            alphabet: VN_PLATE_OCR_ALPHABET.chars().collect(),
            pad: '_',
            slots: 9,
            probs,
        }
    }

    /// The probability row of one slot.
    pub fn row(&self, slot: usize) -> &[f32] {
        let k = self.alphabet.len();
        self.probs.get(slot * k..(slot + 1) * k).unwrap_or(&[])
    }

    /// Two slot OCRs read as independent experts: each slot's row is the renormalised product of
    /// both rows. A slot only one model has (a 9-slot model beside a 10-slot one) keeps that
    /// model's row: the shorter model cannot see a tenth character, so it says nothing about it.
    /// Each model's probabilities are floored at [`EXPERT_FLOOR`] first. Both must share the
    /// alphabet and pad; a row that is not finite falls back to the mean of the two rows.
    pub fn product(&self, other: &SlotProbs) -> Result<SlotProbs, DecodeError> {
        if self.alphabet != other.alphabet || self.pad != other.pad {
            return Err(DecodeError::Alphabets);
        }
        for s in [self, other] {
            let classes = s.alphabet.len();
            if s.probs.len() != s.slots * classes {
                return Err(DecodeError::Shape {
                    len: s.probs.len(),
                    slots: s.slots,
                    classes,
                });
            }
        }
        let slots = self.slots.max(other.slots);
        let mut probs = Vec::with_capacity(slots * self.alphabet.len());
        for j in 0..slots {
            let (a, b) = (self.row(j), other.row(j));
            let row: Vec<f32> = match (a.is_empty(), b.is_empty()) {
                (false, false) => {
                    let joint: Vec<f32> = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| x.max(EXPERT_FLOOR) * y.max(EXPERT_FLOOR))
                        .collect();
                    let sum: f32 = joint.iter().sum();
                    if sum > 0.0 && sum.is_finite() {
                        joint.iter().map(|v| v / sum).collect()
                    } else {
                        a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect()
                    }
                }
                (true, _) => b.to_vec(),
                (_, true) => a.to_vec(),
            };
            probs.extend(row);
        }
        Ok(SlotProbs {
            alphabet: self.alphabet.clone(),
            pad: self.pad,
            slots,
            probs,
        })
    }
}

/// Floor of each model's probability in [`SlotProbs::product`]: a softmax's far tail (1e-10,
/// 1e-20) is not evidence, and two tails multiplied would sink below the decoder's own floor, so
/// that one model's underflow would veto a character the other reads.
pub const EXPERT_FLOOR: f32 = 1e-9;

/// Why a probability matrix cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `probs.len()` is not `slots × alphabet.len()`.
    #[error(
        "slot probabilities have {len} values, expected {slots} slots × {classes} classes; check the OCR output shape"
    )]
    Shape {
        /// Values given.
        len: usize,
        /// Slots declared.
        slots: usize,
        /// Alphabet size.
        classes: usize,
    },
    /// The pad character is not in the alphabet.
    #[error("pad character `{pad}` is not in the OCR alphabet")]
    PadNotInAlphabet {
        /// The pad character.
        pad: char,
    },
    /// Two slot OCRs to be read together have different alphabets or pads.
    #[error("the two slot OCRs have different alphabets or pad characters")]
    Alphabets,
    /// More slots than the decoder supports.
    #[error("{slots} slots; the plate decoder supports 1 to {MAX_SLOTS}")]
    Slots {
        /// Slots declared.
        slots: usize,
    },
}

/// Most slots a model may have (the longest plate has 10 characters).
pub const MAX_SLOTS: usize = 16;

/// How the province-code table constrains the two leading digits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProvincePrior {
    /// Only issued codes. The default: unused codes (10, 13, 42, …) are never on a real plate, so
    /// a read of one is an OCR error, and the best issued code is the model's own next choice.
    Hard,
    /// Any two digits, but an unissued code costs `log_penalty` (natural log, ≤ 0; e.g.
    /// `ln(0.01)`): for sites that may see codes issued after this table was written.
    Soft {
        /// Added to the log-probability of texts whose code is not in the table.
        log_penalty: f32,
    },
    /// Any two digits, no preference.
    Off,
}

/// Decoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    /// Province-code constraint.
    pub province: ProvincePrior,
    /// What the caller knows about the vehicle. Decides the display of `DD L DDDDD`, and a known
    /// vehicle narrows the search: a car gets no motorbike-only series, a motorbike no 7-character
    /// car plate.
    pub hints: PlateHints,
    /// Largest drop in log-probability (natural log, ≥ 0) from the unconstrained argmax that the
    /// grammar may impose. Beyond it no format is plausible and the argmax text is returned marked
    /// invalid. Default `ln(1000)`: the replacements together must have at least 1/1000 of the
    /// argmax's odds.
    pub max_log_loss: f32,
    /// Whether military plates (`TM-12-34`) are candidates. Default true.
    pub allow_military: bool,
    /// Province codes this camera mostly sees (its own province); empty by default.
    pub local_codes: CodeSet,
    /// Natural-log bonus for texts whose code is in `local_codes` (≥ 0). `ln(k)` says a local code
    /// is a priori k times as likely as any other code: most traffic at a provincial camera is
    /// local, and the OCR's worst errors are digit-for-digit in the code (77 read as 37 or 71).
    pub local_log_bonus: f32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            province: ProvincePrior::Hard,
            hints: PlateHints::default(),
            max_log_loss: 1000f32.ln(),
            allow_military: true,
            local_codes: CodeSet::default(),
            local_log_bonus: 0.0,
        }
    }
}

/// The decoded plate text of one crop.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlateDecode {
    /// Normalised text `[0-9A-Z]`; when `valid` is false, the unconstrained argmax text.
    pub text: String,
    /// Probability of each character of `text` in its slot.
    pub char_conf: Vec<f32>,
    /// Read confidence: the lowest probability over the chosen class of every slot, characters
    /// and trailing pads alike; 0 when `valid` is false.
    ///
    /// The minimum, not the mean: a plate is wrong as soon as one character is, and the mean
    /// (geometric or not) dilutes one bad slot among eight good ones (0.3 among 1.0s has a
    /// geometric mean of 0.87). It also does not depend on the plate length or the OCR kind (the
    /// CTC decoder reports the same statistic), so one threshold serves every camera and model.
    /// Pads count because a doubtful pad is a doubtful length.
    pub confidence: f32,
    /// Unconstrained argmax text, trailing pads stripped (the reference post-processing).
    pub raw_text: String,
    /// Lowest argmax probability over all slots.
    pub raw_confidence: f32,
    /// Whether `text` follows the grammar.
    pub valid: bool,
    /// Whether the grammar changed the argmax text.
    pub changed: bool,
    /// Classification of `text` when `valid`.
    pub plate: Option<PlateInfo>,
    /// Natural-log probability of the chosen sequence under the model (characters and pads for
    /// the slot OCR, the best path for CTC), without priors.
    pub log_prob: f32,
}

impl PlateDecode {
    /// A search's chosen `text` with its characters' confidences, checked against the grammar
    /// (`valid`, `plate`) and compared with the unconstrained read (`changed`).
    pub(crate) fn chosen(
        text: String,
        char_conf: Vec<f32>,
        confidence: f32,
        raw: (String, f32),
        log_prob: f32,
        hints: &PlateHints,
    ) -> Self {
        let plate = grammar::parse_lenient(&text, hints).ok();
        let (raw_text, raw_confidence) = raw;
        PlateDecode {
            changed: text != raw_text,
            valid: plate.is_some(),
            text,
            char_conf,
            confidence,
            raw_text,
            raw_confidence,
            plate,
            log_prob,
        }
    }
}

/// Floor for probabilities before taking logs, so a zero never makes a whole format impossible
/// and the arithmetic stays finite.
const PROB_FLOOR: f32 = 1e-12;

/// Per-slot log-probabilities of the 36 plate symbols and the pad, plus plain probabilities.
pub(crate) struct Table {
    pub(crate) slots: usize,
    pub(crate) lp: [[f32; NUM_SYMBOLS + 1]; MAX_SLOTS],
    pub(crate) p: [[f32; NUM_SYMBOLS + 1]; MAX_SLOTS],
}
pub(crate) const PAD: usize = NUM_SYMBOLS;

impl Table {
    pub(crate) fn new(sp: &SlotProbs) -> Result<Table, DecodeError> {
        let classes = sp.alphabet.len();
        if sp.slots == 0 || sp.slots > MAX_SLOTS {
            return Err(DecodeError::Slots { slots: sp.slots });
        }
        if sp.probs.len() != sp.slots * classes {
            return Err(DecodeError::Shape {
                len: sp.probs.len(),
                slots: sp.slots,
                classes,
            });
        }
        if !sp.alphabet.contains(&sp.pad) {
            return Err(DecodeError::PadNotInAlphabet { pad: sp.pad });
        }
        // Map each class to a plate symbol or the pad; classes mapping to the same symbol (`a`
        // and `A`) add up, the marginal probability of that symbol. Other classes are ignored.
        let map: Vec<Option<usize>> = sp
            .alphabet
            .iter()
            .map(|&c| {
                if c == sp.pad {
                    Some(PAD)
                } else {
                    grammar::normalize_char(c)
                        .and_then(|n| super::symbols::index_of(n as u8))
                        .map(usize::from)
                }
            })
            .collect();
        let mut t = Table {
            slots: sp.slots,
            lp: [[0.0; NUM_SYMBOLS + 1]; MAX_SLOTS],
            p: [[0.0; NUM_SYMBOLS + 1]; MAX_SLOTS],
        };
        for s in 0..sp.slots {
            let row = sp.row(s);
            for (k, &v) in row.iter().enumerate() {
                if let Some(Some(ix)) = map.get(k) {
                    // NaN or negative outputs count as zero probability.
                    if v.is_finite() && v > 0.0 {
                        t.p[s][*ix] += v;
                    }
                }
            }
            for ix in 0..=NUM_SYMBOLS {
                t.lp[s][ix] = t.p[s][ix].max(PROB_FLOOR).ln();
            }
        }
        Ok(t)
    }
}

/// Finds the most probable grammar-valid text in `probs`.
///
/// Never drops a read: if no format is plausible (see [`DecodeOptions::max_log_loss`]) the
/// argmax text comes back with `valid: false` and confidence 0.
pub fn decode_slots(probs: &SlotProbs, opts: &DecodeOptions) -> Result<PlateDecode, DecodeError> {
    let t = Table::new(probs)?;
    let (raw_text, raw_log, raw_conf) = argmax(probs);

    // Suffix sums of pad log-probabilities: the cost of ending the text at each slot.
    let mut pad_tail = [0f32; MAX_SLOTS + 1];
    for s in (0..t.slots).rev() {
        pad_tail[s] = pad_tail[s + 1] + t.lp[s][PAD];
    }

    // Each format's best path, scored with the priors; among the plausible ones (judged on the
    // model's own probabilities, without priors) the best scored wins.
    let floor = raw_log - opts.max_log_loss.max(0.0);
    let mut best: Option<(f32, f32, Path, &Template)> = None;
    for tpl in TEMPLATES {
        let n = tpl.pos.len();
        if n > t.slots
            || (!opts.allow_military && tpl.shape == Shape::Military)
            || !grammar::shape_allowed(tpl.shape, opts.hints.vehicle)
        {
            continue;
        }
        if let Some((score, path)) = viterbi(&t, tpl, opts) {
            let total = score + pad_tail[n];
            let model: f32 = (0..n)
                .map(|s| t.lp[s][usize::from(path.syms[s])])
                .sum::<f32>()
                + pad_tail[n];
            if model >= floor && best.as_ref().is_none_or(|(b, ..)| total > *b) {
                best = Some((total, model, path, tpl));
            }
        }
    }

    match best {
        Some((_, score, path, tpl)) => {
            let text: String = path.syms[..path.len]
                .iter()
                .map(|&ix| symbol(ix) as char)
                .collect();
            let mut char_conf: Vec<f32> = path.syms[..path.len]
                .iter()
                .enumerate()
                .map(|(s, &ix)| t.p[s][ix as usize])
                .collect();
            let digits = [0, 1].map(|s| std::array::from_fn(|d| t.p[s][d]));
            apply_code_prior(&mut char_conf, &text, tpl, digits, opts);
            let pad_conf = (path.len..t.slots).map(|s| t.p[s][PAD]);
            let confidence = char_conf
                .iter()
                .copied()
                .chain(pad_conf)
                .fold(1f32, f32::min);
            Ok(PlateDecode::chosen(
                text,
                char_conf,
                confidence,
                (raw_text, raw_conf),
                score,
                &opts.hints,
            ))
        }
        _ => {
            let char_conf = raw_text
                .chars()
                .enumerate()
                .map(|(s, _)| probs.row(s).iter().copied().fold(0f32, f32::max))
                .collect();
            Ok(PlateDecode {
                text: raw_text.clone(),
                char_conf,
                confidence: 0.0,
                raw_text,
                raw_confidence: raw_conf,
                valid: false,
                changed: false,
                plate: None,
                log_prob: raw_log,
            })
        }
    }
}

/// Argmax text (trailing pads stripped), its log-probability over all slots, and its lowest slot
/// probability — computed on the model's own classes, as the reference post-processing does.
pub(crate) fn argmax(sp: &SlotProbs) -> (String, f32, f32) {
    let mut text = String::with_capacity(sp.slots);
    let mut log = 0f32;
    let mut min = 1f32;
    let mut pads = 0usize;
    for s in 0..sp.slots {
        let row = sp.row(s);
        let (k, p) =
            row.iter()
                .copied()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bk, bp), (k, p)| {
                    if p > bp { (k, p) } else { (bk, bp) }
                });
        let p = if p.is_finite() { p.max(0.0) } else { 0.0 };
        log += p.max(PROB_FLOOR).ln();
        min = min.min(p);
        let c = sp.alphabet.get(k).copied().unwrap_or('?');
        text.push(c);
        pads = if c == sp.pad { pads + 1 } else { 0 };
    }
    let keep = text.chars().count() - pads;
    (text.chars().take(keep).collect(), log, min)
}

/// A chosen symbol per position of one format.
struct Path {
    len: usize,
    syms: [u8; MAX_SLOTS],
}

/// Best path through one format: max over strings of Σ log p(slot i = char i). Returns the score
/// of the characters (pads excluded) and the path.
fn viterbi(t: &Table, tpl: &Template, opts: &DecodeOptions) -> Option<(f32, Path)> {
    const NEG: f32 = f32::NEG_INFINITY;
    let n = tpl.pos.len();
    // score[i][c]: best score of positions 0..=i with symbol c at i; back[i][c]: symbol at i-1.
    let mut score = [[NEG; NUM_SYMBOLS]; MAX_SLOTS];
    let mut back = [[0u8; NUM_SYMBOLS]; MAX_SLOTS];
    for c in tpl.pos[0].set.indices() {
        score[0][c as usize] = t.lp[0][c as usize];
    }
    for i in 1..n {
        let pos = &tpl.pos[i];
        let (prev, cur) = score.split_at_mut(i);
        let prev = &prev[i - 1];
        let cur = &mut cur[0];
        let rule = grammar::rule_for(pos.rule, opts.hints.vehicle);
        if rule == Rule::Free {
            // Unconstrained: every symbol follows the best previous one.
            let (bp, bs) = best_of(prev);
            if bs == NEG {
                return None;
            }
            for c in pos.set.indices() {
                cur[c as usize] = bs + t.lp[i][c as usize];
                back[i][c as usize] = bp;
            }
            continue;
        }
        for c in pos.set.indices() {
            let mut bs = NEG;
            let mut bp = 0u8;
            for (pc, &ps) in prev.iter().enumerate() {
                if ps == NEG {
                    continue;
                }
                let pc = pc as u8;
                let s = match rule {
                    Rule::Province => match province_prior(opts, pc * 10 + c) {
                        Some(bonus) => ps + bonus,
                        None => continue,
                    },
                    rule => {
                        if !grammar::pair_allowed(rule, pc, c, true) {
                            continue;
                        }
                        ps
                    }
                };
                if s > bs {
                    bs = s;
                    bp = pc;
                }
            }
            if bs > NEG {
                cur[c as usize] = bs + t.lp[i][c as usize];
                back[i][c as usize] = bp;
            }
        }
    }
    let (last, total) = best_of(&score[n - 1]);
    if total == NEG {
        return None;
    }
    let mut path = Path {
        len: n,
        syms: [0; MAX_SLOTS],
    };
    let mut c = last;
    for i in (0..n).rev() {
        path.syms[i] = c;
        c = back[i][c as usize];
    }
    Some((total, path))
}

/// Log-prior of a province code under `opts`, or `None` where the code is ruled out.
pub(crate) fn province_prior(opts: &DecodeOptions, code: u8) -> Option<f32> {
    let local = if opts.local_codes.contains(code) {
        opts.local_log_bonus.max(0.0)
    } else {
        0.0
    };
    if province::is_known_code(code) {
        return Some(local);
    }
    match opts.province {
        ProvincePrior::Hard => None,
        ProvincePrior::Soft { log_penalty } => Some(log_penalty.min(0.0) + local),
        ProvincePrior::Off => Some(local),
    }
}

/// The site prior in a read's confidence (see [`DecodeOptions::local_codes`]).
///
/// The search ranks texts by the readers' probability times the prior, so the confidence must be
/// that posterior too: otherwise a code the prior rightly chose (`77` at a Bình Định camera, read
/// `71` by the OCR) is always reported doubtful. `digits[j][d]` is the readers' probability of
/// digit `d` at code position `j`, normalised like `char_conf`. With `k = exp(local_log_bonus)`
/// for local codes and 1 for the others, each code digit's confidence becomes its marginal
/// posterior:
/// `conf₀ · (1 + (k−1)·Σ_{b: c₀b local} q₁(b)) / (1 + (k−1)·Σ_{ab local} q₀(a)·q₁(b))`, and
/// likewise for the second digit. Without local codes nothing changes.
pub(crate) fn apply_code_prior(
    char_conf: &mut [f32],
    text: &str,
    tpl: &Template,
    digits: [[f32; 10]; 2],
    opts: &DecodeOptions,
) {
    let k = opts.local_log_bonus.max(0.0).exp();
    let code_digits = text.as_bytes().get(..2).and_then(|c| {
        Some((
            usize::from(c[0].checked_sub(b'0')?),
            usize::from(c[1].checked_sub(b'0')?),
        ))
    });
    let Some((c0, c1)) = code_digits else {
        return;
    };
    if k <= 1.0
        || opts.local_codes.0 == 0
        || c0 > 9
        || c1 > 9
        || char_conf.len() < 2
        || tpl.pos.get(1).map(|p| p.rule) != Some(Rule::Province)
    {
        return;
    }
    let local = |a: usize, b: usize| opts.local_codes.contains((a * 10 + b) as u8);
    let [q0, q1] = digits;
    let mut both = 0f32;
    let (mut given0, mut given1) = (0f32, 0f32);
    for (a, pa) in q0.iter().enumerate() {
        for (b, pb) in q1.iter().enumerate() {
            if local(a, b) {
                both += pa * pb;
                if a == c0 {
                    given0 += pb;
                }
                if b == c1 {
                    given1 += pa;
                }
            }
        }
    }
    let z = 1.0 + (k - 1.0) * both;
    char_conf[0] = (char_conf[0] * (1.0 + (k - 1.0) * given0) / z).clamp(0.0, 1.0);
    char_conf[1] = (char_conf[1] * (1.0 + (k - 1.0) * given1) / z).clamp(0.0, 1.0);
}

/// Index and value of the largest entry.
fn best_of(row: &[f32; NUM_SYMBOLS]) -> (u8, f32) {
    let mut bi = 0u8;
    let mut bv = f32::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        if v > bv {
            bv = v;
            bi = i as u8;
        }
    }
    (bi, bv)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
