//! Grammar-constrained decoding of a CTC OCR (PP-OCRv4 rec: per-step softmax over 6625 classes,
//! 0 = blank, last = space).
//!
//! The big dictionary is first folded onto the plate alphabet ([`CtcLabelMap`]): blank, `0-9A-Z`
//! (with `Đ` and full-width forms summed into their ASCII symbol), one separator class (`-`, `.`,
//! space, `·`, `:` …) and "other". The decoder then finds the best CTC path whose collapsed output,
//! separators removed, is a plate: a Viterbi pass over (step × format position × last label ×
//! after-blank), the product of the CTC lattice with the grammar's automaton. Separators are
//! allowed between characters except inside a province code or a two-letter series.

use super::decode::{DecodeOptions, PlateDecode, ProvincePrior, province_prior};
use super::grammar::{self, Rule, Shape, TEMPLATES, Template};
use super::symbols::{NUM_SYMBOLS, index_of, symbol};

/// Reduced column of the CTC blank.
pub const COL_BLANK: usize = 0;
/// Reduced column of the separators.
pub const COL_SEP: usize = 1 + NUM_SYMBOLS;
/// Reduced column of every other character.
pub const COL_OTHER: usize = COL_SEP + 1;
/// Columns of a reduced lattice: blank, 36 symbols, separator, other.
pub const CTC_WIDTH: usize = COL_OTHER + 1;

/// Per-step probabilities folded onto the plate alphabet (`steps × CTC_WIDTH`, row-major; column 0
/// blank, 1–36 the symbols `0-9A-Z`, then separator and other).
#[derive(Debug, Clone, PartialEq)]
pub struct CtcLattice {
    /// Time steps.
    pub steps: usize,
    /// `steps × CTC_WIDTH` probabilities.
    pub probs: Vec<f32>,
}

impl CtcLattice {
    /// Joins the lattices of a plate's rows, top first, into one (a single-line OCR reads a
    /// two-row plate one row at a time). A certain-blank step goes between rows so that equal
    /// characters at the seam (`…9` / `9…`) stay two characters.
    pub fn join_rows(rows: &[CtcLattice]) -> CtcLattice {
        let mut probs = Vec::new();
        let mut steps = 0;
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                let mut sep = [0f32; CTC_WIDTH];
                sep[COL_BLANK] = 1.0;
                probs.extend_from_slice(&sep);
                steps += 1;
            }
            let n = r.steps.min(r.probs.len() / CTC_WIDTH);
            probs.extend_from_slice(&r.probs[..n * CTC_WIDTH]);
            steps += n;
        }
        CtcLattice { steps, probs }
    }
}

/// Why a CTC output cannot be reduced or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtcError {
    /// The probabilities are not `steps × classes`.
    #[error(
        "CTC probabilities have {len} values, expected {steps} steps × {classes} classes; check the dictionary matches the model"
    )]
    Shape {
        /// Values given.
        len: usize,
        /// Steps declared.
        steps: usize,
        /// Classes expected.
        classes: usize,
    },
}

/// Maps a CTC model's classes onto reduced columns.
#[derive(Debug, Clone)]
pub struct CtcLabelMap {
    cols: Vec<u8>,
}

impl CtcLabelMap {
    /// The PP-OCR layout: class 0 blank, classes `1..=keys.len()` the dictionary lines in order,
    /// then one class for space.
    pub fn ppocr<S: AsRef<str>>(keys: &[S]) -> Self {
        let mut cols = Vec::with_capacity(keys.len() + 2);
        cols.push(COL_BLANK as u8);
        cols.extend(keys.iter().map(|k| column_of(k.as_ref()) as u8));
        cols.push(COL_SEP as u8);
        CtcLabelMap { cols }
    }

    /// Number of model classes.
    pub fn classes(&self) -> usize {
        self.cols.len()
    }

    /// Reduced column of a model class (`COL_OTHER` past the end).
    pub fn column(&self, class: usize) -> usize {
        self.cols.get(class).map_or(COL_OTHER, |&c| usize::from(c))
    }

    /// Folds `steps × classes()` probabilities into a lattice (columns summed).
    pub fn reduce(&self, probs: &[f32], steps: usize) -> Result<CtcLattice, CtcError> {
        let k = self.cols.len();
        if probs.len() != steps * k {
            return Err(CtcError::Shape {
                len: probs.len(),
                steps,
                classes: k,
            });
        }
        let mut out = vec![0f32; steps * CTC_WIDTH];
        for (row, dst) in probs.chunks_exact(k).zip(out.chunks_exact_mut(CTC_WIDTH)) {
            for (&p, &c) in row.iter().zip(&self.cols) {
                if p.is_finite() && p > 0.0 {
                    dst[usize::from(c)] += p;
                }
            }
        }
        Ok(CtcLattice { steps, probs: out })
    }
}

/// Reduced column of one dictionary entry.
fn column_of(key: &str) -> usize {
    let mut chars = key.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return COL_OTHER;
    };
    if let Some(ix) = grammar::normalize_char(c).and_then(|n| index_of(n as u8)) {
        return 1 + usize::from(ix);
    }
    match c {
        '-' | '‐' | '‑' | '–' | '—' | '－' | '.' | '·' | '。' | '．' | ':' | '：' | ' '
        | '\u{3000}' => COL_SEP,
        _ => COL_OTHER,
    }
}

const NEG: f32 = f32::NEG_INFINITY;

/// A second reader's say in the CTC search (`fuse.rs`): for each format position and symbol, the
/// slot OCR's log-probability of that symbol in that slot minus the slot's best (so ≤ 0), added
/// where the CTC path emits the position's character.
pub(super) struct Joint {
    pub(super) loss: [[f32; NUM_SYMBOLS]; super::decode::MAX_SLOTS],
}

/// The lattice with NaN, infinite or out-of-range values made 0, and its logs.
pub(super) fn sanitize(lat: &CtcLattice) -> Result<(CtcLattice, Vec<f32>), CtcError> {
    if lat.probs.len() != lat.steps * CTC_WIDTH {
        return Err(CtcError::Shape {
            len: lat.probs.len(),
            steps: lat.steps,
            classes: CTC_WIDTH,
        });
    }
    let clean = CtcLattice {
        steps: lat.steps,
        probs: lat
            .probs
            .iter()
            .map(|&p| {
                if p.is_finite() {
                    p.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect(),
    };
    let lp = clean.probs.iter().map(|&p| p.max(1e-12).ln()).collect();
    Ok((clean, lp))
}

/// The non-blank steps of a path as (step, reduced column).
pub(super) type StepPath = Vec<(usize, usize)>;
/// `last` value for "a separator was the last label".
const LAST_SEP: usize = NUM_SYMBOLS;
/// `last` value for "nothing emitted yet".
const LAST_NONE: usize = NUM_SYMBOLS + 1;
const LASTS: usize = NUM_SYMBOLS + 2;

fn pack(j: usize, last: usize, blank: bool) -> usize {
    (j * LASTS + last) * 2 + usize::from(blank)
}
fn unpack(s: usize) -> (usize, usize, bool) {
    (s / 2 / LASTS, (s / 2) % LASTS, s % 2 == 1)
}
fn col_of_last(last: usize) -> usize {
    if last == LAST_SEP { COL_SEP } else { 1 + last }
}

/// Finds the most probable CTC path whose text is a plate. `opts.max_log_loss` is measured against
/// the best unconstrained path; past it the greedy text is returned with `valid: false`.
///
/// In the result, `char_conf` is each character's highest step probability, `confidence` their
/// minimum, and `raw_text` the greedy decode (`?` for characters outside the plate alphabet).
pub fn decode_ctc(lat: &CtcLattice, opts: &DecodeOptions) -> Result<PlateDecode, CtcError> {
    // NaN, infinite or negative outputs count as zero probability.
    let (clean, lp) = sanitize(lat)?;
    let lat = &clean;
    let (raw_text, raw_log, raw_conf) = greedy(lat, &lp);

    // Each format's best path, scored with the priors; among the plausible ones (judged on the
    // model's own probabilities, without priors) the best scored wins.
    let floor = raw_log - opts.max_log_loss.max(0.0);
    let mut best: Option<(f32, f32, StepPath, &Template)> = None;
    for tpl in TEMPLATES {
        if (!opts.allow_military && tpl.shape == Shape::Military)
            || !grammar::shape_allowed(tpl.shape, opts.hints.vehicle)
        {
            continue;
        }
        if let Some((score, path)) = viterbi(lat.steps, &lp, tpl, opts, None) {
            let model = path_log_prob(lat.steps, &lp, &path);
            if model >= floor && best.as_ref().is_none_or(|(b, ..)| score > *b) {
                best = Some((score, model, path, tpl));
            }
        }
    }
    if let Some((_, score, path, tpl)) = best {
        // path: (step, label column) for every non-blank step; chars are runs of symbol columns.
        let mut text = String::new();
        let mut char_conf: Vec<f32> = Vec::new();
        // The step where each character peaks: its row is that character's evidence.
        let mut peaks: Vec<usize> = Vec::new();
        let mut prev: Option<(usize, usize)> = None;
        for &(t, col) in &path {
            let p = lat.probs[t * CTC_WIDTH + col];
            let same_run = prev.is_some_and(|(pt, pc)| pc == col && pt + 1 == t);
            if col != COL_SEP {
                if same_run {
                    if let (Some(c), Some(at)) = (char_conf.last_mut(), peaks.last_mut())
                        && p > *c
                    {
                        *c = p;
                        *at = t;
                    }
                } else {
                    text.push(symbol((col - 1) as u8) as char);
                    char_conf.push(p);
                    peaks.push(t);
                }
            }
            prev = Some((t, col));
        }
        debug_assert_eq!(text.len(), tpl.pos.len());
        if let [s0, s1, ..] = peaks[..] {
            let digits =
                [s0, s1].map(|s| std::array::from_fn(|d| lat.probs[s * CTC_WIDTH + 1 + d]));
            super::decode::apply_code_prior(&mut char_conf, &text, tpl, digits, opts);
        }
        let confidence = char_conf.iter().copied().fold(1f32, f32::min);
        return Ok(PlateDecode::chosen(
            text,
            char_conf,
            confidence,
            (raw_text, raw_conf),
            score,
            &opts.hints,
        ));
    }
    let n = raw_text.chars().count();
    Ok(PlateDecode {
        text: raw_text.clone(),
        char_conf: vec![raw_conf; n],
        confidence: 0.0,
        raw_text,
        raw_confidence: raw_conf,
        valid: false,
        changed: false,
        plate: None,
        log_prob: raw_log,
    })
}

/// Log-probability of a path given by its non-blank steps (every other step is blank).
pub(super) fn path_log_prob(steps: usize, lp: &[f32], path: &[(usize, usize)]) -> f32 {
    let mut it = path.iter().peekable();
    (0..steps)
        .map(|t| {
            let col = match it.peek() {
                Some(&&(pt, c)) if pt == t => {
                    it.next();
                    c
                }
                _ => COL_BLANK,
            };
            lp[t * CTC_WIDTH + col]
        })
        .sum()
}

/// Greedy CTC: best column per step, repeats collapsed, blanks and separators dropped. Returns the
/// text, the best path's log-probability and the lowest probability among emitted characters.
pub(super) fn greedy(lat: &CtcLattice, lp: &[f32]) -> (String, f32, f32) {
    let mut text = String::new();
    let mut log = 0f32;
    let mut min = 1f32;
    let mut prev = COL_BLANK;
    for (row, lrow) in lat
        .probs
        .chunks_exact(CTC_WIDTH)
        .zip(lp.chunks_exact(CTC_WIDTH))
    {
        let (col, _) =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (k, &v)| if v > b.1 { (k, v) } else { b },
            );
        log += lrow[col];
        if col != prev && col != COL_BLANK && col != COL_SEP {
            text.push(if col == COL_OTHER {
                '?'
            } else {
                symbol((col - 1) as u8) as char
            });
            min = min.min(row[col]);
        }
        prev = col;
    }
    (text, log, min)
}

/// Best constrained path for one format: its log-probability and its non-blank steps as
/// (step, column).
pub(super) fn viterbi(
    steps: usize,
    lp: &[f32],
    tpl: &Template,
    opts: &DecodeOptions,
    joint: Option<&Joint>,
) -> Option<(f32, StepPath)> {
    let n = tpl.pos.len();
    let states = (n + 1) * LASTS * 2;
    let mut prev = vec![NEG; states];
    let mut cur = vec![NEG; states];
    // Back-pointers: predecessor state for every (step, state).
    // Zeroed (cheap to allocate); only entries of reached states are ever read back.
    let mut back = vec![0u16; steps * states];
    prev[pack(0, LAST_NONE, true)] = 0.0;
    // Positions with at least one live state in `prev`; dead positions are skipped.
    let mut live = vec![false; n + 1];
    live[0] = true;
    let per_pos = LASTS * 2;
    // Pruning that cannot change the answer: a prefix that trails the greedy prefix by more than
    // the loss budget ends, at best, that far below the greedy path, i.e. implausible. The soft
    // province penalty is added to the margin because scores include it.
    let margin = joint.map_or(1.0, |_| 4.0) * opts.max_log_loss.max(0.0)
        + match opts.province {
            ProvincePrior::Soft { log_penalty } => -log_penalty.min(0.0),
            _ => 0.0,
        };
    let mut greedy_prefix = 0f32;

    for t in 0..steps {
        let row = &lp[t * CTC_WIDTH..(t + 1) * CTC_WIDTH];
        let bp = &mut back[t * states..(t + 1) * states];
        cur.fill(NEG);
        let mut relax = |cur: &mut [f32], to: usize, score: f32, from: usize| {
            if score > cur[to] {
                cur[to] = score;
                bp[to] = from as u16;
            }
        };
        // Stay at the same position: blank, repeat of the last label, or a separator.
        for s in (0..=n)
            .filter(|&j| live[j])
            .flat_map(|j| j * per_pos..(j + 1) * per_pos)
        {
            let ps = prev[s];
            if ps == NEG {
                continue;
            }
            let (j, last, blank) = unpack(s);
            relax(&mut cur, pack(j, last, true), ps + row[COL_BLANK], s);
            if !blank && last != LAST_NONE {
                relax(&mut cur, s, ps + row[col_of_last(last)], s);
            }
            if j >= 1 && j < n && tpl.pos[j].rule == Rule::Free && (last != LAST_SEP || blank) {
                relax(&mut cur, pack(j, LAST_SEP, false), ps + row[COL_SEP], s);
            }
        }
        // Emit the character of position j (moving to j + 1).
        for (j, pos) in tpl.pos.iter().enumerate() {
            if !live[j] {
                continue;
            }
            let base = j * LASTS * 2;
            let slice = &prev[base..base + LASTS * 2];
            let rule = grammar::rule_for(pos.rule, opts.hints.vehicle);
            if rule == Rule::Free || j == 0 {
                // Best and runner-up source; the best is barred only for a repeat of its label.
                let (mut b1, mut s1, mut b2, mut s2) = (NEG, usize::MAX, NEG, usize::MAX);
                for (k, &v) in slice.iter().enumerate() {
                    if v > b1 {
                        (b2, s2) = (b1, s1);
                        (b1, s1) = (v, base + k);
                    } else if v > b2 {
                        (b2, s2) = (v, base + k);
                    }
                }
                if b1 == NEG {
                    continue;
                }
                for c in pos.set.indices() {
                    let c = usize::from(c);
                    let (src, sc) = if s1 == pack(j, c, false) {
                        (s2, b2)
                    } else {
                        (s1, b1)
                    };
                    if sc > NEG {
                        let e = row[1 + c] + joint.map_or(0.0, |b| b.loss[j][c]);
                        relax(&mut cur, pack(j + 1, c, false), sc + e, src);
                    }
                }
            } else {
                for c in pos.set.indices() {
                    for pc in tpl.pos[j - 1].set.indices() {
                        let penalty = match rule {
                            Rule::Province => match province_prior(opts, pc * 10 + c) {
                                Some(bonus) => bonus,
                                None => continue,
                            },
                            rule => {
                                if !grammar::pair_allowed(rule, pc, c, true) {
                                    continue;
                                }
                                0.0
                            }
                        };
                        let (c, pc) = (usize::from(c), usize::from(pc));
                        let e = row[1 + c] + joint.map_or(0.0, |b| b.loss[j][c]);
                        for blank in [false, true] {
                            if pc == c && !blank {
                                continue;
                            }
                            let src = pack(j, pc, blank);
                            let v = prev[src];
                            if v > NEG {
                                relax(&mut cur, pack(j + 1, c, false), v + penalty + e, src);
                            }
                        }
                    }
                }
            }
        }
        greedy_prefix += row.iter().copied().fold(NEG, f32::max);
        let floor = greedy_prefix - margin;
        live.fill(false);
        for (s, v) in cur.iter_mut().enumerate() {
            if *v < floor {
                *v = NEG;
            } else {
                live[s / per_pos] = true;
            }
        }
        if !live.contains(&true) {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }

    let (mut state, score) = (0..LASTS * 2)
        .map(|k| pack(n, 0, false) + k)
        .map(|s| (s, prev[s]))
        .fold((usize::MAX, NEG), |b, x| if x.1 > b.1 { x } else { b });
    if score == NEG {
        return None;
    }
    let mut path = Vec::with_capacity(n * 2);
    for t in (0..steps).rev() {
        let (_, last, blank) = unpack(state);
        if !blank {
            path.push((t, col_of_last(last)));
        }
        state = usize::from(*back.get(t * states + state)?);
    }
    path.reverse();
    Some((score, path))
}

#[cfg(test)]
#[path = "ctc_tests.rs"]
mod tests;
