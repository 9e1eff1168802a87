//! Test inputs: real OCR outputs recorded from the shared models, and the shared ground truth.
//!
//! `testdata/ocr_probs.json` holds, for the 60 labelled plate crops and the 15 plates the VN plate
//! detector finds in `footage/images`, the full `[9, 37]` output of `vn_plate_ocr_9x37_64x128`
//! and, for the one-row plates, PP-OCRv4 rec's per-step output folded onto the plate alphabet —
//! natural-log probabilities, clipped at -16. `testdata/dump_probs.py` regenerates it with the
//! reference pre-processing (MODELS.md §3/§4).

use std::path::PathBuf;

use serde::Deserialize;

use super::ctc::{COL_OTHER, COL_SEP, CTC_WIDTH, CtcLattice};
use super::decode::SlotProbs;

#[derive(Debug, Deserialize)]
pub(crate) struct Recorded {
    pub alphabet: String,
    pub ctc_columns: Vec<String>,
    pub slot: Vec<SlotCase>,
    pub ctc: Vec<CtcCase>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SlotCase {
    pub id: String,
    pub gt: String,
    pub argmax: String,
    pub logp: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CtcCase {
    pub id: String,
    pub gt: String,
    pub greedy: String,
    pub logp: Vec<Vec<f32>>,
}

pub(crate) fn recorded() -> Recorded {
    serde_json::from_str(include_str!("testdata/ocr_probs.json")).expect("fixture parses")
}

impl SlotCase {
    pub(crate) fn probs(&self, alphabet: &str) -> SlotProbs {
        SlotProbs {
            alphabet: alphabet.chars().collect(),
            pad: '_',
            slots: self.logp.len(),
            probs: self.logp.iter().flatten().map(|l| l.exp()).collect(),
        }
    }
}

impl CtcCase {
    /// The recorded columns (blank, 36 symbols, `-`, `.`, space, other) folded onto the lattice
    /// layout (the three separators summed).
    pub(crate) fn lattice(&self) -> CtcLattice {
        let mut probs = Vec::with_capacity(self.logp.len() * CTC_WIDTH);
        for row in &self.logp {
            let p: Vec<f32> = row.iter().map(|l| l.exp()).collect();
            probs.extend_from_slice(&p[..COL_SEP]);
            probs.push(p[COL_SEP] + p[COL_SEP + 1] + p[COL_SEP + 2]);
            probs.push(p[COL_OTHER + 2]);
        }
        CtcLattice {
            steps: self.logp.len(),
            probs,
        }
    }
}

/// A real model from the manifests and the model cache (`EDGE_AGENT_MODEL_CACHE`), on ONNX
/// Runtime (`ORT_DYLIB_PATH`).
pub(crate) fn load_model(name: &str, rt: &crate::config::RuntimeConfig) -> crate::inference::Model {
    crate::runtime::init(None).expect("ONNX Runtime (set ORT_DYLIB_PATH)");
    let set = crate::models::ManifestSet::load(None).expect("manifests");
    let manifest = set.require(name).expect("manifest");
    let store = crate::models::ModelStore::new(crate::models::ModelStore::default_dir(None));
    crate::inference::Model::load(manifest, &store, rt)
        .expect("model in the cache (EDGE_AGENT_MODEL_CACHE)")
}

/// The shared models/footage mirror (`../shared` beside the checkout, or `EDGE_AGENT_SHARED`).
pub(crate) fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("EDGE_AGENT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("footage/ground_truth.csv").is_file(),
        "the shared footage mirror is missing at {}; set EDGE_AGENT_SHARED",
        dir.display()
    );
    dir
}

/// A clip of the shared footage (`footage/video/NAME`), which must be there.
pub(crate) fn footage_video(name: &str) -> PathBuf {
    let p = shared_dir().join("footage/video").join(name);
    assert!(
        p.is_file(),
        "missing footage {} (set EDGE_AGENT_SHARED)",
        p.display()
    );
    p
}

/// Rows of a shared CSV file as (header → value) maps. The files have no quoted fields.
pub(crate) fn csv_rows(rel: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(shared_dir().join(rel)).expect("read shared csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

/// Microseconds per call of `f` over `inputs`: (fastest, median) of `batches` passes. The fastest
/// pass is the figure to quote on a shared machine; the median shows the noise.
pub(crate) fn micros_per_call<T>(
    inputs: &[T],
    batches: usize,
    mut f: impl FnMut(&T) -> usize,
) -> (f64, f64) {
    let mut sink = 0usize;
    let mut per: Vec<f64> = (0..batches.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            for x in inputs {
                sink = sink.wrapping_add(f(std::hint::black_box(x)));
            }
            start.elapsed().as_secs_f64() * 1e6 / inputs.len().max(1) as f64
        })
        .collect();
    std::hint::black_box(sink);
    per.sort_by(f64::total_cmp);
    (per[0], per[per.len() / 2])
}

/// The posterior probability that the first code position holds `first`, by brute force over
/// every pair of classes of the two positions (`row0`, `row1`, each summing to about 1): pairs of
/// digits (`digit_of` maps a class to its digit) whose code is in `local` weigh `k`, every other
/// pair 1. The reference for `decode::apply_code_prior`'s closed form.
pub(crate) fn code_digit_posterior(
    row0: &[f32],
    row1: &[f32],
    digit_of: impl Fn(usize) -> Option<usize>,
    local: super::province::CodeSet,
    k: f32,
    first: usize,
) -> f32 {
    let (mut z, mut hit) = (0f32, 0f32);
    for (a, pa) in row0.iter().enumerate() {
        for (b, pb) in row1.iter().enumerate() {
            let w = match (digit_of(a), digit_of(b)) {
                (Some(x), Some(y)) if local.contains((x * 10 + y) as u8) => k,
                _ => 1.0,
            };
            z += pa * pb * w;
            if a == first {
                hit += pa * pb * w;
            }
        }
    }
    hit / z
}
