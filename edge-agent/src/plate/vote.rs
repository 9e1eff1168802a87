//! Per-track plate consensus: many reads of one vehicle → one text, its confidence, and the crop
//! to keep as evidence (Frigate's convention: group by similarity, vote per character, best crop).
//!
//! One read is often wrong in one or two characters (blur, a tilted motorbike plate); a few reads
//! of the same plate are rarely wrong in the same place. Reads of equal length within a small
//! Hamming distance are grouped, the heaviest group wins, and each of its positions is voted with
//! the readers' per-character confidences as weights. The consensus is the most probable plate
//! under those vote shares (the constrained slot decoder run on them), so mixing reads can never
//! produce a text that is no plate.

use super::decode::{
    DecodeOptions, MAX_SLOTS, PlateDecode, SlotProbs, VN_PLATE_OCR_ALPHABET, decode_slots,
};
use super::grammar::{self, PlateHints, PlateInfo};
use super::symbols::{NUM_SYMBOLS, index_of, symbol};

/// One read of a track's plate.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateRead<E = u64> {
    /// Normalised text `[0-9A-Z]`.
    pub text: String,
    /// Confidence of each character (same length as `text`; otherwise `confidence` stands in).
    pub char_conf: Vec<f32>,
    /// Read confidence (lowest slot probability, as the decoders report it).
    pub confidence: f32,
    /// Whether the text follows the plate grammar; invalid reads are counted, not voted.
    pub valid: bool,
    /// Opaque reference to the crop this read came from (evidence).
    pub evidence: E,
    /// Crop quality chosen by the caller (e.g. plate height in pixels × sharpness); higher is
    /// better. Only used to pick the evidence crop.
    pub quality: f32,
}

impl<E> PlateRead<E> {
    /// A read from a decoder result.
    pub fn from_decode(d: &PlateDecode, evidence: E, quality: f32) -> Self {
        PlateRead {
            text: d.text.clone(),
            char_conf: d.char_conf.clone(),
            confidence: d.confidence,
            valid: d.valid,
            evidence,
            quality,
        }
    }

    fn weight(&self) -> f32 {
        // A floor keeps zero-confidence reads countable without letting them decide anything.
        if self.confidence.is_finite() {
            self.confidence.clamp(1e-3, 1.0)
        } else {
            1e-3
        }
    }

    fn char_weight(&self, i: usize) -> f32 {
        match self.char_conf.get(i) {
            Some(&c) if self.char_conf.len() == self.text.len() && c.is_finite() => {
                c.clamp(0.0, 1.0)
            }
            _ => self.weight(),
        }
    }
}

/// Voting settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoteConfig {
    /// Reads of equal length within this Hamming distance of a group's strongest read join it.
    pub max_hamming: usize,
    /// Reads kept per track; past it the weakest read is replaced (bounded memory on the device).
    pub max_reads: usize,
    /// Stop rule: at least this many reads equal to the consensus…
    pub stop_min_agreeing: usize,
    /// …and consensus confidence at least this…
    pub stop_min_confidence: f32,
    /// …and the winning group holds at least this share of the total read weight (no strong rival).
    pub stop_min_share: f32,
}

impl Default for VoteConfig {
    fn default() -> Self {
        VoteConfig {
            max_hamming: 2,
            max_reads: 64,
            stop_min_agreeing: 3,
            stop_min_confidence: 0.8,
            stop_min_share: 0.6,
        }
    }
}

/// The consensus of a track.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VoteResult<E = u64> {
    /// Consensus text.
    pub text: String,
    /// Per-character consensus confidence: the mean, over the group's reads, of the confidence
    /// each read gives the winning character (a read voting for another character gives 0).
    pub char_conf: Vec<f32>,
    /// Lowest `char_conf` (same statistic as the per-read confidence).
    pub confidence: f32,
    /// Classification of `text`.
    pub plate: Option<PlateInfo>,
    /// Reads in the winning group.
    pub group_reads: usize,
    /// Reads whose text equals the consensus.
    pub agreeing_reads: usize,
    /// Valid reads voted (all groups).
    pub valid_reads: usize,
    /// Reads ignored because they do not follow the grammar.
    pub invalid_reads: usize,
    /// Winning group's share of the total read weight (0–1).
    pub share: f32,
    /// Evidence of the best-quality read that agrees with the consensus.
    pub best_evidence: E,
    /// Its quality.
    pub best_quality: f32,
    /// Whether the stop rule holds: enough agreeing reads, confident, no strong rival group.
    pub confident: bool,
}

/// Accumulates the reads of one track.
#[derive(Debug, Clone)]
pub struct TrackVote<E = u64> {
    cfg: VoteConfig,
    hints: PlateHints,
    reads: Vec<PlateRead<E>>,
    invalid: usize,
    dropped: usize,
}

impl<E: Clone> TrackVote<E> {
    /// An empty vote.
    pub fn new(cfg: VoteConfig) -> Self {
        TrackVote {
            cfg,
            hints: PlateHints::default(),
            reads: Vec::new(),
            invalid: 0,
            dropped: 0,
        }
    }

    /// Sets what is known about the vehicle (used to classify the consensus).
    pub fn set_hints(&mut self, hints: PlateHints) {
        self.hints = hints;
    }

    /// Adds a read. Invalid reads are only counted. When `max_reads` valid reads are held, the new
    /// read replaces the weakest one if it is stronger.
    pub fn add(&mut self, read: PlateRead<E>) {
        if !read.valid || read.text.is_empty() {
            self.invalid += 1;
            return;
        }
        if self.reads.len() < self.cfg.max_reads.max(1) {
            self.reads.push(read);
            return;
        }
        self.dropped += 1;
        let weakest = self
            .reads
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.weight().total_cmp(&b.1.weight()))
            .map(|(i, r)| (i, r.weight()));
        if let Some((i, w)) = weakest
            && read.weight() > w
            && let Some(slot) = self.reads.get_mut(i)
        {
            *slot = read;
        }
    }

    /// Valid reads held.
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether no valid read is held.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// Reads replaced or refused because `max_reads` was reached.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether reading this track can stop (see [`VoteResult::confident`]).
    pub fn is_confident(&self) -> bool {
        self.result().is_some_and(|r| r.confident)
    }

    /// The consensus so far, or `None` without a valid read.
    pub fn result(&self) -> Option<VoteResult<E>> {
        let groups = self.groups();
        let total: f32 = self.reads.iter().map(PlateRead::weight).sum();
        let (members, weight) = groups.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        let len = self.reads.get(*members.first()?)?.text.len();

        // Per-position weighted vote over the 36 symbols.
        let mut votes = vec![[0f32; NUM_SYMBOLS]; len];
        for &m in &members {
            let r = &self.reads[m];
            for (i, row) in votes.iter_mut().enumerate() {
                if let Some(ix) = r.text.as_bytes().get(i).and_then(|&c| index_of(c)) {
                    row[usize::from(ix)] += r.char_weight(i);
                }
            }
        }
        let n = members.len() as f32;

        // The consensus is the most probable plate under the vote shares, found by the same
        // constrained decoder as single reads: a plain per-position winner could mix reads into
        // no plate (`QT` and `LD` → `QD`) or an unissued code (17 and 70 → 10).
        let mut text = self.consensus(&votes);
        let mut plate = text
            .as_deref()
            .and_then(|t| grammar::parse_normalized(t, &self.hints).ok());
        // A read's own text may carry a code only a soft province prior admits.
        if plate.is_none() {
            let winner: String = votes
                .iter()
                .map(|row| symbol(argmax(row)) as char)
                .collect();
            if members.iter().any(|&m| self.reads[m].text == winner) {
                plate = grammar::parse_lenient(&winner, &self.hints).ok();
                text = Some(winner);
            }
        }
        let mut char_conf: Vec<f32>;
        let text = match (text, plate.is_some()) {
            (Some(t), true) => {
                char_conf = t
                    .bytes()
                    .zip(&votes)
                    .map(|(c, row)| index_of(c).map_or(0.0, |ix| row[usize::from(ix)] / n))
                    .collect();
                t
            }
            _ => {
                // Nothing better: the strongest read of the group stands.
                let strongest = members
                    .iter()
                    .copied()
                    .max_by(|&a, &b| self.reads[a].weight().total_cmp(&self.reads[b].weight()))?;
                let r = &self.reads[strongest];
                char_conf = (0..len).map(|i| r.char_weight(i)).collect();
                plate = grammar::parse_lenient(&r.text, &self.hints).ok();
                r.text.clone()
            }
        };
        char_conf.truncate(len);

        let agreeing: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&m| self.reads[m].text == text)
            .collect();
        let pool = if agreeing.is_empty() {
            &members
        } else {
            &agreeing
        };
        let best = pool.iter().copied().max_by(|&a, &b| {
            let (ra, rb) = (&self.reads[a], &self.reads[b]);
            ra.quality
                .total_cmp(&rb.quality)
                .then(ra.confidence.total_cmp(&rb.confidence))
        })?;
        let confidence = char_conf.iter().copied().fold(1f32, f32::min);
        let share = if total > 0.0 { weight / total } else { 0.0 };
        let confident = agreeing.len() >= self.cfg.stop_min_agreeing
            && confidence >= self.cfg.stop_min_confidence
            && share >= self.cfg.stop_min_share;
        Some(VoteResult {
            text,
            char_conf,
            confidence,
            plate,
            group_reads: members.len(),
            agreeing_reads: agreeing.len(),
            valid_reads: self.reads.len(),
            invalid_reads: self.invalid,
            share,
            best_evidence: self.reads[best].evidence.clone(),
            best_quality: self.reads[best].quality,
            confident,
        })
    }

    /// Constrained decode of the vote shares (one slot per position plus a certain pad).
    fn consensus(&self, votes: &[[f32; NUM_SYMBOLS]]) -> Option<String> {
        let slots = votes.len() + 1;
        if slots > MAX_SLOTS {
            return None;
        }
        let mut probs = Vec::with_capacity(slots * (NUM_SYMBOLS + 1));
        for row in votes {
            let total: f32 = row.iter().sum();
            for &v in row {
                probs.push(if total > 0.0 { v / total } else { 0.0 });
            }
            probs.push(0.0);
        }
        probs.extend(std::iter::repeat_n(0.0, NUM_SYMBOLS));
        probs.push(1.0);
        let sp = SlotProbs {
            alphabet: VN_PLATE_OCR_ALPHABET.chars().collect(),
            pad: '_',
            slots,
            probs,
        };
        let opts = DecodeOptions {
            hints: self.hints,
            ..DecodeOptions::default()
        };
        decode_slots(&sp, &opts)
            .ok()
            .filter(|d| d.valid)
            .map(|d| d.text)
    }

    /// Greedy clustering, strongest reads first: a read joins the first group whose seed (its
    /// strongest read) has the same length and is within `max_hamming`; else it seeds a group.
    fn groups(&self) -> Vec<(Vec<usize>, f32)> {
        let mut order: Vec<usize> = (0..self.reads.len()).collect();
        // Stable sort: equal weights keep arrival order, so results are reproducible.
        order.sort_by(|&a, &b| self.reads[b].weight().total_cmp(&self.reads[a].weight()));
        let mut groups: Vec<(Vec<usize>, f32)> = Vec::new();
        for i in order {
            let r = &self.reads[i];
            let home = groups.iter_mut().find(|(m, _)| {
                m.first().is_some_and(|&seed| {
                    hamming(&self.reads[seed].text, &r.text)
                        .is_some_and(|d| d <= self.cfg.max_hamming)
                })
            });
            match home {
                Some((m, w)) => {
                    m.push(i);
                    *w += r.weight();
                }
                None => groups.push((vec![i], r.weight())),
            }
        }
        groups
    }
}

/// Index of the largest entry (the first on ties).
fn argmax(row: &[f32; NUM_SYMBOLS]) -> u8 {
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    best as u8
}

/// Hamming distance of two equal-length texts, `None` when lengths differ.
fn hamming(a: &str, b: &str) -> Option<usize> {
    (a.len() == b.len()).then(|| a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count())
}

#[cfg(test)]
#[path = "vote_tests.rs"]
mod tests;
