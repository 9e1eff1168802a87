//! Model manifests: everything the agent needs to know about one weight file.
//!
//! A new model of a known family is a new manifest, never new code: input geometry, colour order,
//! normalisation and the decoder's parameters all live here.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelError;
use super::licence::{self, Shipping};

/// One `models/NAME.toml` file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Manifest name; equals the weight file's stem and the manifest file's stem.
    pub name: String,
    /// What the model does.
    pub task: ModelTask,
    /// Weight file name in the cache and in mirrors.
    pub file: String,
    /// Lower-case hex sha256 of the weight file; anything else is refused.
    pub sha256: String,
    /// Size of the weight file in bytes.
    pub size_bytes: u64,
    /// SPDX id of the weights' licence (`NOASSERTION` when none was stated); see [`super::licence`].
    pub licence: String,
    /// What is known and unknown about the licence and provenance.
    #[serde(default)]
    pub licence_note: Option<String>,
    /// Where the weights come from (repository, path, commit).
    pub source: String,
    /// Official download URL of the weight file, when one exists.
    #[serde(default)]
    pub url: Option<String>,
    /// What the model was trained on, as far as is known.
    #[serde(default)]
    pub training_data: Option<String>,
    /// Known weaknesses, shown in model cards.
    #[serde(default)]
    pub known_limits: Vec<String>,
    /// Class names inline (index = class id).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Or a file of class names, one per line; must be listed in `files`.
    #[serde(default)]
    pub labels_file: Option<String>,
    /// Extra files the model needs (labels, dictionaries), fetched and verified like the weights.
    #[serde(default)]
    pub files: Vec<AuxFile>,
    pub input: InputSpec,
    pub output: OutputSpec,
    pub decoder: DecoderSpec,
    /// `[trust]` of a plate reader's model: the read confidence from which its reads were right at a
    /// stated precision on a calibration set. The reader's default `min_confidence`.
    #[serde(default)]
    pub trust: Option<TrustSpec>,
}

/// `[trust]`: thresholds chosen on a calibration set that is never the validation footage, so a
/// read marked trusted means what the precision says. One threshold per way the model reads.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    /// Share of trusted reads that were right on the calibration set (0–1), e.g. 0.97.
    pub precision: f32,
    /// What the calibration set is and how the thresholds were measured.
    pub calibration_set: String,
    /// This OCR read alone (`readers = "slot"`).
    #[serde(default)]
    pub slot: Option<f32>,
    /// This OCR fused with the default text recogniser (`readers = "fused"`).
    #[serde(default)]
    pub fused: Option<f32>,
    /// This text recogniser alone (`readers = "ppocr"`).
    #[serde(default)]
    pub ppocr: Option<f32>,
    /// `[trust.with.NAME]`: this OCR reading together with the second slot OCR `NAME`
    /// (`[models] plate_ocr_second`), at the same precision on the same calibration set.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub with: std::collections::BTreeMap<String, PairTrust>,
}

/// `[trust.with.NAME]`: thresholds of two slot OCRs reading together.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairTrust {
    /// The two slot OCRs alone (`readers = "slot"`).
    #[serde(default)]
    pub slot: Option<f32>,
    /// The two slot OCRs fused with the text recogniser (`readers = "fused"`).
    #[serde(default)]
    pub fused: Option<f32>,
}

impl TrustSpec {
    /// Each way of reading, spelt as `[plates] readers` spells it, with its threshold if any.
    pub fn thresholds(&self) -> [(&'static str, Option<f32>); 3] {
        [
            ("slot", self.slot),
            ("fused", self.fused),
            ("ppocr", self.ppocr),
        ]
    }

    fn check(&self) -> Result<(), String> {
        let values = std::iter::once(("precision", Some(self.precision))).chain(self.thresholds());
        for (key, value) in values {
            if let Some(v) = value
                && !(0.0..=1.0).contains(&v)
            {
                return Err(format!("[trust] {key} = {v} is outside 0..=1"));
            }
        }
        for (name, pair) in &self.with {
            for (key, value) in [("slot", pair.slot), ("fused", pair.fused)] {
                if let Some(v) = value
                    && !(0.0..=1.0).contains(&v)
                {
                    return Err(format!("[trust.with.{name}] {key} = {v} is outside 0..=1"));
                }
            }
        }
        if self.thresholds().iter().all(|(_, v)| v.is_none()) {
            return Err("[trust] names no threshold (slot, fused or ppocr)".into());
        }
        Ok(())
    }
}

/// The model card summary that goes out in the `status` birth message: what a reviewer or a
/// data-protection assessment needs to know about the weights behind an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelCard {
    /// Manifest name (as in events' `models`).
    pub name: String,
    /// What the model does, e.g. `object_detection`, `plate_ocr`.
    pub task: String,
    /// What it was trained on, as far as is known (`unknown` when the manifest does not say).
    pub training_data: String,
    /// SPDX id of the weights' licence (`NOASSERTION`: none was stated).
    pub licence: String,
    /// Whether that licence lets a product ship the weights (permissive); `false` means the rights
    /// must be cleared before this device's events are used in production.
    #[serde(default)]
    pub shippable: bool,
    /// Known weaknesses.
    pub known_limits: Vec<String>,
}

impl ModelCard {
    /// The card of a manifest.
    pub fn from_manifest(m: &ModelManifest) -> Self {
        ModelCard {
            name: m.name.clone(),
            task: m.task.as_str().into(),
            training_data: m.training_data.clone().unwrap_or_else(|| "unknown".into()),
            licence: m.licence.clone(),
            shippable: m.shipping().may_ship(),
            known_limits: m.known_limits.clone(),
        }
    }
}

/// What a model is for.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelTask {
    ObjectDetection,
    PlateDetection,
    PlateOcr,
    TextDetection,
    TextRecognition,
}

impl ModelTask {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ObjectDetection => "object_detection",
            Self::PlateDetection => "plate_detection",
            Self::PlateOcr => "plate_ocr",
            Self::TextDetection => "text_detection",
            Self::TextRecognition => "text_recognition",
        }
    }
}

/// A file beside the weights.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuxFile {
    pub file: String,
    pub sha256: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub url: Option<String>,
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TensorType {
    F32,
    U8,
}

/// Memory layout of an image tensor.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

/// Channel order the model expects.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    Rgb,
    Bgr,
}

/// How an image is brought to the input size.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Keep aspect, paste at the top-left, pad right and bottom (YOLOX).
    LetterboxTopLeft,
    /// Keep aspect, centre, pad on both sides (Ultralytics).
    LetterboxCenter,
    /// Resize to exactly width x height, distorting aspect.
    Stretch,
    /// Resize to `height` keeping aspect; pad the width on the right up to `min_width` (PP-OCR rec).
    FixedHeight,
    /// Scale so the short side is at least `min_short_side`, round both sides to a multiple of
    /// `size_multiple` (PP-OCR det).
    MultipleOf,
}

/// The model input.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Tensor name.
    pub name: String,
    pub dtype: TensorType,
    pub layout: Layout,
    /// Fixed input width in pixels; absent when dynamic.
    #[serde(default)]
    pub width: Option<u32>,
    /// Fixed input height in pixels; absent when dynamic.
    #[serde(default)]
    pub height: Option<u32>,
    pub color: ColorOrder,
    pub resize: ResizeMode,
    /// Pad value in pixel units (0..255) before normalisation. Default 114.
    #[serde(default = "default_pad")]
    pub pad_value: f32,
    /// Pixel values are multiplied by this first (1/255 for 0..1 models). Default 1.
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Subtracted per channel after scaling. Default 0.
    #[serde(default)]
    pub mean: [f32; 3],
    /// Divided per channel after the mean. Default 1.
    #[serde(default = "default_std")]
    pub std: [f32; 3],
    /// Largest batch the model accepts (1 for fixed-batch models). Default 1.
    #[serde(default = "default_batch")]
    pub max_batch: usize,
    /// `fixed_height`: minimum padded width. Default: none.
    #[serde(default)]
    pub min_width: Option<u32>,
    /// `multiple_of`: sides are rounded to this. Default: none.
    #[serde(default)]
    pub size_multiple: Option<u32>,
    /// `multiple_of`: the short side is scaled up to at least this. Default: none.
    #[serde(default)]
    pub min_short_side: Option<u32>,
}

fn default_pad() -> f32 {
    114.0
}
fn default_scale() -> f32 {
    1.0
}
fn default_std() -> [f32; 3] {
    [1.0; 3]
}
fn default_batch() -> usize {
    1
}

/// The model output used by the decoder.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Tensor name.
    pub name: String,
    /// Shape with -1 for dynamic dimensions.
    pub shape: Vec<i64>,
}

/// How raw outputs become detections or text.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DecoderSpec {
    /// YOLOX grid head: rows `[tx, ty, tw, th, obj, cls...]` over strides, scores already sigmoid.
    Yolox {
        strides: Vec<u32>,
        score_threshold: f32,
        nms_iou: f32,
        #[serde(default)]
        class_agnostic_nms: bool,
    },
    /// NMS-free rows `[x1, y1, x2, y2, score, class]` in input pixels.
    YoloEnd2end {
        score_threshold: f32,
        #[serde(default)]
        nms_iou: Option<f32>,
    },
    /// `[B, 4 + C, N]` with `cx, cy, w, h` then class scores; NMS required.
    Ultralytics {
        score_threshold: f32,
        nms_iou: f32,
        #[serde(default)]
        class_agnostic_nms: bool,
    },
    /// Fixed character slots, each a softmax over `alphabet`; `pad_char` fills unused slots.
    SlotOcr {
        slots: usize,
        alphabet: String,
        pad_char: char,
    },
    /// Greedy CTC over a dictionary file; index 0 is blank, the last index is a space.
    CtcOcr { dictionary: String },
    /// DBNet text probability map.
    Dbnet {
        threshold: f32,
        box_threshold: f32,
        unclip_ratio: f32,
        min_area: f32,
    },
}

impl DecoderSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Yolox { .. } => "yolox",
            Self::YoloEnd2end { .. } => "yolo_end2end",
            Self::Ultralytics { .. } => "ultralytics",
            Self::SlotOcr { .. } => "slot_ocr",
            Self::CtcOcr { .. } => "ctc_ocr",
            Self::Dbnet { .. } => "dbnet",
        }
    }

    /// A slot OCR's alphabet, pad character and slot count; `None` for the other kinds. Two slot
    /// OCRs with the same alphabet and pad can read a plate together.
    pub fn slot_layout(&self) -> Option<(&str, char, usize)> {
        match self {
            Self::SlotOcr {
                slots,
                alphabet,
                pad_char,
            } => Some((alphabet.as_str(), *pad_char, *slots)),
            _ => None,
        }
    }

    /// The least score a detection is kept with, for detector kinds; `None` for the others.
    pub fn score_threshold_mut(&mut self) -> Option<&mut f32> {
        match self {
            Self::Yolox {
                score_threshold, ..
            }
            | Self::YoloEnd2end {
                score_threshold, ..
            }
            | Self::Ultralytics {
                score_threshold, ..
            } => Some(score_threshold),
            Self::SlotOcr { .. } | Self::CtcOcr { .. } | Self::Dbnet { .. } => None,
        }
    }
}

impl ModelManifest {
    /// Parses a manifest and checks that it is internally consistent.
    pub fn parse(origin: &Path, text: &str) -> Result<Self, ModelError> {
        let manifest: Self = toml::from_str(text).map_err(|e| ModelError::Manifest {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        manifest.check().map_err(|message| ModelError::Manifest {
            path: origin.to_path_buf(),
            message,
        })?;
        Ok(manifest)
    }

    /// What the weights' licence allows (a manifest that did not parse its licence counts as one
    /// that stated none).
    pub fn shipping(&self) -> Shipping {
        licence::shipping(&self.licence).unwrap_or(Shipping::NotStated)
    }

    fn check(&self) -> Result<(), String> {
        licence::shipping(&self.licence)?;
        let stem = Path::new(&self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if stem != self.name {
            return Err(format!(
                "name `{}` must equal the weight file's stem `{stem}`",
                self.name
            ));
        }
        for (file, sha) in self.all_files() {
            if sha.len() != 64
                || !sha
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!(
                    "sha256 of `{file}` must be 64 lower-case hex digits"
                ));
            }
        }
        if let Some(lf) = &self.labels_file
            && !self.files.iter().any(|f| &f.file == lf)
        {
            return Err(format!(
                "labels_file `{lf}` must also be listed in [[files]]"
            ));
        }
        if let DecoderSpec::CtcOcr { dictionary } = &self.decoder
            && !self.files.iter().any(|f| &f.file == dictionary)
        {
            return Err(format!(
                "dictionary `{dictionary}` must also be listed in [[files]]"
            ));
        }
        if let Some(trust) = &self.trust {
            if !matches!(self.task, ModelTask::PlateOcr | ModelTask::TextRecognition) {
                return Err(format!(
                    "[trust] is for plate readers; a {} model has no reads to trust",
                    self.task.as_str()
                ));
            }
            trust.check()?;
        }
        Ok(())
    }

    /// The weight file and every auxiliary file, with their expected sha256.
    pub fn all_files(&self) -> impl Iterator<Item = (&str, &str)> {
        std::iter::once((self.file.as_str(), self.sha256.as_str())).chain(
            self.files
                .iter()
                .map(|f| (f.file.as_str(), f.sha256.as_str())),
        )
    }

    /// The official URL of one of this manifest's files.
    pub fn url_of(&self, file: &str) -> Option<&str> {
        if file == self.file {
            self.url.as_deref()
        } else {
            self.files
                .iter()
                .find(|f| f.file == file)
                .and_then(|f| f.url.as_deref())
        }
    }

    /// `name@sha256-prefix`, the id events carry.
    pub fn model_id(&self) -> String {
        format!("{}@{}", self.name, &self.sha256[..12])
    }
}
