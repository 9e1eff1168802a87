//! `[plates]`: how plates are read (this stage owns the section and its checks; which models
//! read them is `[models]`, checked by the loader against the manifests).

use serde::{Deserialize, Serialize};

use crate::checks::SectionProblem;

/// `[plates]`: how plates are read (models are named in `[models]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatesConfig {
    /// Where candidates come from when a whole frame is read: `full_frame`, `vehicle_crops` or
    /// `both`. Default `full_frame` (the pipeline passes tracked vehicles itself).
    #[serde(default = "default_plate_mode")]
    pub mode: super::PlateMode,
    /// Which OCR reads plates: `slot` (fastest), `ppocr`, or `fused` (both decoded together; the
    /// most accurate on small plates, one text-recogniser call per plate row). Default `fused`.
    #[serde(default = "default_readers")]
    pub readers: super::Readers,
    /// Text recogniser manifest for `ppocr` and `fused`. Default `ppocrv4_rec`.
    #[serde(default = "default_recognizer")]
    pub recognizer: String,
    /// Read confidence (0–1) under which a read is reported as low-confidence. Default: the OCR
    /// model's calibrated threshold for the configured readers (its manifest's `[trust]`: 97 % of
    /// trusted reads right on its calibration set), or 0.5 for a model without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f32>,
    /// Plate detector score (0–1) for a candidate to be read at all. Default 0.25.
    #[serde(default = "default_candidate_score")]
    pub candidate_score: f32,
    /// Province codes this camera mostly sees (e.g. `[70, 62]` in Tây Ninh): a prior that a read of
    /// one of them is likelier. Default none.
    #[serde(default)]
    pub local_codes: Vec<u8>,
    /// How much likelier a local code is a priori than any one other code (a factor ≥ 1): with a
    /// share `s` of the traffic local over `n` local codes, `(s/n) / ((1−s)/(81−n))`. The read's
    /// confidence is the posterior under this prior. Default 20 (conservative).
    #[serde(default = "default_local_factor")]
    pub local_factor: f32,
    /// Slot-OCR views per plate (1 = the crop only; up to 6 average slightly inset crops). Default 1.
    #[serde(default = "default_ocr_views")]
    pub ocr_views: usize,
    /// `fused` only: the slot OCR reads every plate first; a valid read at or above this confidence
    /// (0–1) is kept and the text recogniser is skipped for that plate, the rest are read by both
    /// and fused. 0 trusts every valid slot read (fastest); above 1 fuses every plate (slowest).
    /// Default 0.9.
    #[serde(default = "default_fuse_below")]
    pub fuse_below: f32,
    /// `mode = "both" | "vehicle_crops"`: vehicle crops packed into one plate-detector call
    /// (1–16; 1 searches each vehicle alone). Default 4.
    #[serde(default = "default_crops_per_call")]
    pub crops_per_call: usize,
}

fn default_plate_mode() -> super::PlateMode {
    super::PlateMode::FullFrame
}
fn default_readers() -> super::Readers {
    super::Readers::Fused
}
fn default_recognizer() -> String {
    "ppocrv4_rec".into()
}
fn default_candidate_score() -> f32 {
    0.25
}
fn default_local_factor() -> f32 {
    20.0
}
fn default_ocr_views() -> usize {
    1
}
fn default_crops_per_call() -> usize {
    super::DEFAULT_CROPS_PER_CALL
}
fn default_fuse_below() -> f32 {
    super::DEFAULT_FUSE_BELOW
}

impl Default for PlatesConfig {
    fn default() -> Self {
        Self {
            mode: default_plate_mode(),
            readers: default_readers(),
            recognizer: default_recognizer(),
            min_confidence: None,
            candidate_score: default_candidate_score(),
            local_codes: Vec::new(),
            local_factor: default_local_factor(),
            ocr_views: default_ocr_views(),
            fuse_below: default_fuse_below(),
            crops_per_call: default_crops_per_call(),
        }
    }
}

impl PlatesConfig {
    /// The plate reader's options for this section.
    pub fn reader_options(&self) -> super::ReaderOptions {
        super::ReaderOptions {
            mode: self.mode,
            readers: self.readers,
            candidate_score: self.candidate_score,
            min_confidence: self.min_confidence,
            ocr_views: self.ocr_views.max(1),
            fuse_below: self.fuse_below,
            crops_per_call: self.crops_per_call.max(1),
            decode: crate::plate::DecodeOptions {
                local_codes: crate::plate::CodeSet::of(&self.local_codes),
                local_log_bonus: if self.local_codes.is_empty() {
                    0.0
                } else {
                    self.local_factor.max(1.0).ln()
                },
                ..crate::plate::DecodeOptions::default()
            },
            ..super::ReaderOptions::default()
        }
    }
}

impl PlatesConfig {
    /// Values the reader cannot work with.
    pub fn check(&self) -> Vec<SectionProblem> {
        let mut out: Vec<SectionProblem> = [
            self.min_confidence.and_then(|v| {
                SectionProblem::out_of_range(
                    "min_confidence",
                    v,
                    0.0,
                    1.0,
                    "it is a probability; leave it out for the OCR model's calibrated threshold",
                )
            }),
            SectionProblem::out_of_range(
                "candidate_score",
                self.candidate_score,
                0.0,
                1.0,
                "it is a probability; 0.25 is the default",
            ),
            SectionProblem::out_of_range(
                "crops_per_call",
                self.crops_per_call,
                1,
                16,
                "4 (the default) packs four vehicle crops into one plate-detector call; 1 searches each alone",
            ),
            SectionProblem::out_of_range(
                "ocr_views",
                self.ocr_views,
                1,
                6,
                "1 reads the crop only; each extra view costs one more OCR crop",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.fuse_below.is_nan() || self.fuse_below < 0.0 {
            out.push(SectionProblem::error(
                "fuse_below",
                format!("fuse_below = {} is not a confidence of 0 or more", self.fuse_below),
                "0 trusts every valid slot read, 0.9 (the default) fuses doubtful ones, above 1 fuses all",
            ));
        }
        if self.local_factor.is_nan() || self.local_factor < 1.0 {
            out.push(SectionProblem::error(
                "local_factor",
                format!("local_factor = {} is below 1", self.local_factor),
                "a factor of 1 is no preference; 20 makes a local code 20 times as likely",
            ));
        }
        for code in &self.local_codes {
            if !crate::plate::province::is_known_code(*code) {
                out.push(SectionProblem::error(
                    "local_codes",
                    format!("local code {code} is not an issued province code"),
                    "use the two-digit codes on this province's plates, e.g. [70] for Tây Ninh",
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plates_section_checks_its_own_keys() {
        assert!(PlatesConfig::default().check().is_empty());
        let bad = PlatesConfig {
            min_confidence: Some(1.5),
            fuse_below: f32::NAN,
            local_factor: 0.5,
            local_codes: vec![70, 13],
            ..PlatesConfig::default()
        };
        let keys: Vec<&str> = bad.check().iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "min_confidence",
                "fuse_below",
                "local_factor",
                "local_codes"
            ]
        );
    }
}
