//! ANPR: from a frame to plate reads. Plate detector on the full frame (dedicated ANPR camera) and
//! on upscaled vehicle crops (scene camera, finds small far plates), candidates merged, OCR batched,
//! then grammar-constrained decoding of the OCR's probabilities (`crate::plate`).

pub mod config;
pub mod mosaic;

use std::sync::Arc;

use serde::Serialize;

use self::mosaic::Mosaic;

use crate::inference::decode::{iou, nms};
use crate::inference::{Detection, InferenceError, Model, ModelOutput, Rect, RgbImage};
use crate::plate::{
    CtcLabelMap, CtcLattice, DecodeOptions, PlateDecode, PlateHints, SlotProbs, VehicleKind,
    decode_ctc, decode_fused, decode_slots,
};

/// Where plate candidates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PlateMode {
    /// Plate detector on the full frame only.
    FullFrame,
    /// Vehicle detector first, plate detector on each vehicle crop.
    VehicleCrops,
    /// Both, merged: the best reader on mixed footage.
    Both,
}

/// Which OCR reads the plates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Readers {
    /// The slot OCR alone: one batched call per frame, the fastest.
    Slot,
    /// The CTC text recogniser (PP-OCR rec) alone, row by row.
    Ppocr,
    /// Both, decoded together (`plate::decode_fused`): the most accurate on small plates. A
    /// cascade: the slot OCR reads every plate, and only plates whose slot read is invalid or under
    /// [`ReaderOptions::fuse_below`] also go through the recogniser (one row per text row).
    Fused,
}

impl Readers {
    /// As the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slot => "slot",
            Self::Ppocr => "ppocr",
            Self::Fused => "fused",
        }
    }
}

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    pub mode: PlateMode,
    /// Which OCR reads the plates; `Ppocr` and `Fused` need [`PlateReader::with_recognizer`].
    pub readers: Readers,
    /// Plate detector score for a candidate to be read at all.
    pub candidate_score: f32,
    /// Read confidence (the decoder's minimum slot probability) below which a read is reported as
    /// low-confidence. `None` (the default): the threshold calibrated for the OCR model and
    /// readers in the model's manifest (`[trust]`), else [`FALLBACK_MIN_CONFIDENCE`]; see
    /// [`PlateReader::trust`].
    pub min_confidence: Option<f32>,
    /// Vehicle detector labels whose crops are searched for plates.
    pub vehicle_labels: Vec<String>,
    /// Vehicle detector score for a crop to be searched.
    pub vehicle_score: f32,
    /// Vehicle crops packed into one plate-detector call ([`mosaic`]); 1 searches each crop alone.
    pub crops_per_call: usize,
    /// [`PlateReader::read_frames`]: whole frames packed into one full-frame detector call.
    pub frames_per_call: usize,
    /// Grammar decoder settings.
    pub decode: DecodeOptions,
    /// Test-time augmentation: also read slightly inset crops and average the OCR probabilities
    /// before decoding, at the cost of more OCR calls. On the shared crops it reads fewer plates
    /// (18–22 trusted with 2–6 views, against 23 with one), so the default is 1.
    pub ocr_views: usize,
    /// `Fused` only: a valid slot read at or above this confidence is kept as it is and the
    /// recogniser is not run on that plate; below it (or invalid) both readers are fused. 0 trusts
    /// every valid slot read; above 1 fuses every plate.
    pub fuse_below: f32,
    /// Recogniser rows are padded to their own width rounded up to a multiple of 8, at least this
    /// many pixels; `None` (the default) pads every row to the manifest's `min_width` (320 for
    /// PP-OCR rec, ~2.5 times a plate row's width). Narrow rows cost less but PP-OCR reads them
    /// worse: on the shared crops, fused with the cascade, 20/59 trusted exact at 48 or 160 px,
    /// 22/59 at 256, 23/59 at 320.
    pub rec_min_width: Option<u32>,
}

/// Default [`ReaderOptions::crops_per_call`].
pub const DEFAULT_CROPS_PER_CALL: usize = 4;

/// The plate OCR a camera, `plates` and `bench --plates` use unless told otherwise.
pub const DEFAULT_PLATE_OCR: &str = "vn_plate_ocr_9x37_64x128";

/// The second slot OCR that reads every plate with [`DEFAULT_PLATE_OCR`] unless told otherwise
/// (our own, built in): the two read as independent experts ([`SlotProbs::product`]).
pub const DEFAULT_PLATE_OCR_SECOND: &str = "vn_plate_ocr_ea_ctc_10x37_64x128";

/// The second slot OCR that reads with `ocr`: `second`, unless it is empty or `ocr` itself (one
/// model read twice is not a second expert), or there is no first OCR.
pub fn second_ocr<'a>(ocr: &str, second: &'a str) -> Option<&'a str> {
    (!ocr.is_empty() && !second.is_empty() && second != ocr).then_some(second)
}

/// Default [`ReaderOptions::fuse_below`].
pub const DEFAULT_FUSE_BELOW: f32 = 0.9;

/// `min_confidence` when neither the config nor the OCR model's manifest gives one: an even
/// chance, which says nothing about how often trusted reads are right.
pub const FALLBACK_MIN_CONFIDENCE: f32 = 0.5;

/// The confidence from which the reader trusts a read, and where that figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustThreshold {
    pub min_confidence: f32,
    pub source: TrustSource,
}

/// Where [`TrustThreshold::min_confidence`] comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum TrustSource {
    /// Set by the config or the command line.
    Configured,
    /// The model's `[trust]`: right at `precision` on its calibration set.
    Calibrated { model: String, precision: f32 },
    /// No calibration for this model and readers: [`FALLBACK_MIN_CONFIDENCE`].
    Uncalibrated { model: String },
}

impl std::fmt::Display for TrustThreshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "confidence >= {}", self.min_confidence)?;
        match &self.source {
            TrustSource::Configured => write!(f, " (configured)"),
            TrustSource::Calibrated { model, precision } => write!(
                f,
                " ({model} [trust]: {:.0} % of trusted reads right on its calibration set)",
                100.0 * precision
            ),
            TrustSource::Uncalibrated { model } => write!(
                f,
                " (fallback: {model} has no calibrated threshold for these readers)"
            ),
        }
    }
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            mode: PlateMode::Both,
            readers: Readers::Slot,
            candidate_score: 0.25,
            min_confidence: None,
            vehicle_labels: ["car", "motorcycle", "bus", "truck", "Motor"]
                .map(String::from)
                .to_vec(),
            vehicle_score: 0.3,
            crops_per_call: DEFAULT_CROPS_PER_CALL,
            frames_per_call: 1,
            decode: DecodeOptions::default(),
            ocr_views: 1,
            fuse_below: DEFAULT_FUSE_BELOW,
            rec_min_width: None,
        }
    }
}

/// One plate found in a frame.
#[derive(Debug, Clone, Serialize)]
pub struct FramePlate {
    /// Plate box in frame pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Plate detector score.
    pub detector_score: f32,
    /// The vehicle the plate was found on, when it came from a vehicle crop.
    pub vehicle: Option<String>,
    pub read: PlateDecode,
    /// True when the read is under `min_confidence` or not a valid plate: shown, not trusted.
    pub low_confidence: bool,
}

/// The models of the plate reader; one per worker.
pub struct PlateReader {
    plate_detector: Model,
    ocr: Model,
    /// A second slot OCR whose probabilities multiply the first's ([`SlotProbs::product`]).
    second_ocr: Option<Model>,
    vehicle_detector: Option<Model>,
    /// The CTC text recogniser and its dictionary folded onto plate symbols.
    recognizer: Option<(Model, CtcLabelMap)>,
    opts: ReaderOptions,
    /// From which confidence a read is trusted (resolved from `opts` and the manifests).
    trust: TrustThreshold,
    /// Plates read and plates sent to the recogniser since the last [`PlateReader::take_counts`].
    counts: ReadCounts,
    /// The canvas vehicle crops are packed into (kept between frames).
    mosaic: Option<Mosaic>,
}

/// How many plates the reader read, and how many of them the recogniser also read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadCounts {
    pub plates: u64,
    pub recognized: u64,
    /// Text rows run through the recogniser (a plate has one per row of each layout tried).
    pub rec_rows: u64,
}

struct Candidate {
    det: Detection,
    vehicle: Option<(Arc<str>, VehicleKind)>,
}

/// The trust threshold for these options: the configured one, else the calibrated one of the model
/// that decides the read (the recogniser for `ppocr`, the OCR otherwise; with a second slot OCR,
/// the OCR's `[trust.with.SECOND]`), else the fallback. Before the recogniser is added, `ppocr`
/// and `fused` resolve as if it were absent.
pub fn trust_threshold(
    opts: &ReaderOptions,
    ocr: &crate::models::ModelManifest,
    second: Option<&crate::models::ModelManifest>,
    recognizer: Option<&crate::models::ModelManifest>,
) -> TrustThreshold {
    if let Some(min_confidence) = opts.min_confidence {
        return TrustThreshold {
            min_confidence,
            source: TrustSource::Configured,
        };
    }
    let slot_trust = |fused: bool| {
        ocr.trust.as_ref().and_then(|t| match second {
            None if fused => t.fused,
            None => t.slot,
            Some(s) => t
                .with
                .get(&s.name)
                .and_then(|p| if fused { p.fused } else { p.slot }),
        })
    };
    let (model, calibrated) = match (opts.readers, recognizer) {
        (Readers::Ppocr, Some(rec)) => (rec, rec.trust.as_ref().and_then(|t| t.ppocr)),
        (Readers::Fused, Some(_)) => (ocr, slot_trust(true)),
        (Readers::Slot, _) => (ocr, slot_trust(false)),
        (_, None) => (ocr, None),
    };
    let name = match second {
        Some(s) if opts.readers != Readers::Ppocr => format!("{} with {}", model.name, s.name),
        _ => model.name.clone(),
    };
    match (calibrated, &model.trust) {
        (Some(min_confidence), Some(t)) => TrustThreshold {
            min_confidence,
            source: TrustSource::Calibrated {
                model: name,
                precision: t.precision,
            },
        },
        _ => TrustThreshold {
            min_confidence: FALLBACK_MIN_CONFIDENCE,
            source: TrustSource::Uncalibrated { model: name },
        },
    }
}

/// The plate family a detector label implies (motorbike plates are two-row).
pub fn vehicle_kind(label: &str) -> VehicleKind {
    match label {
        "motorcycle" | "Motor" | "bicycle" => VehicleKind::Motorbike,
        "car" | "bus" | "truck" => VehicleKind::Car,
        _ => VehicleKind::Unknown,
    }
}

impl PlateReader {
    /// `vehicle_detector` is needed for [`PlateMode::VehicleCrops`] and [`PlateMode::Both`].
    pub fn new(
        plate_detector: Model,
        ocr: Model,
        vehicle_detector: Option<Model>,
        opts: ReaderOptions,
    ) -> Result<Self, InferenceError> {
        if opts.mode != PlateMode::FullFrame && vehicle_detector.is_none() {
            return Err(InferenceError::Spec(format!(
                "plate mode {:?} needs a vehicle detector",
                opts.mode
            )));
        }
        let trust = trust_threshold(&opts, ocr.manifest(), None, None);
        Ok(Self {
            plate_detector,
            ocr,
            second_ocr: None,
            vehicle_detector,
            recognizer: None,
            opts,
            trust,
            counts: ReadCounts::default(),
            mosaic: None,
        })
    }

    /// Adds the CTC text recogniser (`ppocrv4_rec`) used by [`Readers::Ppocr`] and
    /// [`Readers::Fused`].
    pub fn with_recognizer(mut self, recognizer: Model) -> Result<Self, InferenceError> {
        let m = recognizer.manifest();
        if !matches!(m.decoder, crate::models::DecoderSpec::CtcOcr { .. }) {
            return Err(InferenceError::WrongKind {
                model: m.name.clone(),
                kind: m.decoder.kind(),
                wanted: "CTC OCR",
            });
        }
        let map = CtcLabelMap::ppocr(recognizer.dictionary());
        let mut recognizer = recognizer;
        if let Some(min) = self.opts.rec_min_width {
            recognizer.set_fixed_height_width(min, 8)?;
        }
        self.recognizer = Some((recognizer, map));
        self.refresh_trust();
        Ok(self)
    }

    /// Adds a second slot OCR that reads every plate the first reads; each slot's probabilities
    /// are the two models' product ([`SlotProbs::product`]). It must be a slot OCR with the first's
    /// alphabet and pad; it may have more slots (a 10-slot model beside a 9-slot one).
    pub fn with_second_ocr(mut self, second: Model) -> Result<Self, InferenceError> {
        let (a, b) = (self.ocr.manifest(), second.manifest());
        let letters = |m: &crate::models::ModelManifest| {
            m.decoder
                .slot_layout()
                .map(|(alphabet, pad, _)| (alphabet.to_string(), pad))
        };
        let Some(theirs) = letters(b) else {
            return Err(not_slot_ocr(&second));
        };
        if letters(a).is_some_and(|ours| ours != theirs) {
            return Err(InferenceError::Spec(format!(
                "the second plate OCR `{}` has another alphabet or pad than `{}`: they cannot read together",
                b.name, a.name
            )));
        }
        self.second_ocr = Some(second);
        self.refresh_trust();
        Ok(self)
    }

    fn refresh_trust(&mut self) {
        self.trust = trust_threshold(
            &self.opts,
            self.ocr.manifest(),
            self.second_ocr.as_ref().map(Model::manifest),
            self.recognizer.as_ref().map(|(r, _)| r.manifest()),
        );
    }

    pub fn options(&self) -> &ReaderOptions {
        &self.opts
    }

    /// The confidence from which a read is trusted (not `low_confidence`), and its source.
    pub fn trust(&self) -> &TrustThreshold {
        &self.trust
    }

    /// Whether a read is shown but not trusted: not a valid plate, or under the trust threshold.
    pub fn is_low_confidence(&self, read: &PlateDecode) -> bool {
        !read.valid || read.confidence < self.trust.min_confidence
    }

    /// The plate detector's manifest (its input size and padding), for callers that compose the
    /// detector's input themselves (the pipeline packs several vehicle crops into one).
    pub fn plate_detector_manifest(&self) -> &crate::models::ModelManifest {
        self.plate_detector.manifest()
    }

    /// Plates read, and how many of them the recogniser read too, since the last call (which
    /// resets them).
    pub fn take_counts(&mut self) -> ReadCounts {
        std::mem::take(&mut self.counts)
    }

    /// ONNX Runtime time summed over the reader's models since the last call (which resets it).
    pub fn take_model_time(&mut self) -> std::time::Duration {
        let mut models: Vec<&mut Model> = vec![&mut self.plate_detector, &mut self.ocr];
        models.extend(self.vehicle_detector.as_mut());
        models.extend(self.recognizer.as_mut().map(|r| &mut r.0));
        models
            .into_iter()
            .map(|m| {
                let t = m.total_times().run;
                m.reset_totals();
                t
            })
            .sum()
    }

    /// Every plate in a frame, most confident first.
    pub fn read_frame(&mut self, frame: &RgbImage) -> Result<Vec<FramePlate>, InferenceError> {
        Ok(self.read_frames(&[frame])?.pop().unwrap_or_default())
    }

    /// Every plate in each of `frames`, most confident first per frame. With several frames the
    /// full-frame pass packs [`ReaderOptions::frames_per_call`] of them into one plate-detector
    /// call ([`Mosaic`]: two wide camera frames stacked lose ~6 % of their letterbox scale), and
    /// OCR is batched across the frames.
    pub fn read_frames(
        &mut self,
        frames: &[&RgbImage],
    ) -> Result<Vec<Vec<FramePlate>>, InferenceError> {
        let mut candidates: Vec<Vec<Candidate>> = frames.iter().map(|_| Vec::new()).collect();
        if self.opts.mode != PlateMode::VehicleCrops {
            self.detect_full_frames(frames, &mut candidates)?;
        }
        if self.opts.mode != PlateMode::FullFrame {
            for (frame, found) in frames.iter().zip(candidates.iter_mut()) {
                self.search_vehicles(frame, found)?;
            }
        }
        let min = self.opts.candidate_score;
        let mut kept: Vec<(usize, Candidate, Rect)> = Vec::new();
        for (i, (frame, mut found)) in frames.iter().zip(candidates).enumerate() {
            found.retain(|c| c.det.score >= min);
            for c in merge(found) {
                if let Some(r) = Rect::covering(c.det.bbox, frame.width(), frame.height()) {
                    kept.push((i, c, r));
                }
            }
        }
        let items: Vec<(&RgbImage, Rect)> = kept.iter().map(|(i, _, r)| (frames[*i], *r)).collect();
        let kinds: Vec<VehicleKind> = kept
            .iter()
            .map(|(_, c, _)| c.vehicle.as_ref().map_or(VehicleKind::Unknown, |v| v.1))
            .collect();
        let reads = self.read_items(&items, &kinds)?;
        let mut out: Vec<Vec<FramePlate>> = frames.iter().map(|_| Vec::new()).collect();
        for ((i, c, _), read) in kept.into_iter().zip(reads) {
            let low_confidence = self.is_low_confidence(&read);
            out[i].push(FramePlate {
                bbox: c.det.bbox,
                detector_score: c.det.score,
                vehicle: c.vehicle.map(|v| v.0.to_string()),
                read,
                low_confidence,
            });
        }
        for plates in &mut out {
            plates.sort_by(|a, b| {
                (a.low_confidence, -a.read.confidence)
                    .partial_cmp(&(b.low_confidence, -b.read.confidence))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        Ok(out)
    }

    /// The full-frame pass, `frames_per_call` whole frames per detector call; a frame alone gets
    /// the detector's own letterbox scale, on a canvas fitted to the frame
    /// ([`Model::detect_fitted`]).
    fn detect_full_frames(
        &mut self,
        frames: &[&RgbImage],
        candidates: &mut [Vec<Candidate>],
    ) -> Result<(), InferenceError> {
        let per_call = self.opts.frames_per_call.max(1);
        let mosaic = mosaic_canvas(&self.plate_detector, &mut self.mosaic);
        for (g, group) in frames.chunks(per_call).enumerate() {
            if let [frame] = group {
                for det in self.plate_detector.detect_fitted(frame, None)? {
                    candidates[g * per_call].push(Candidate { det, vehicle: None });
                }
                continue;
            }
            let items: Vec<(&RgbImage, Rect)> =
                group.iter().map(|f| (*f, Rect::whole(f))).collect();
            let canvas = mosaic.compose_items(&items)?;
            let found = self.plate_detector.detect(canvas, None)?;
            for (k, det) in mosaic.assign_all(&found) {
                candidates[g * per_call + k].push(Candidate { det, vehicle: None });
            }
        }
        Ok(())
    }

    /// The scene-camera pass: vehicles detected, then the plate detector on their crops, several
    /// crops per call ([`ReaderOptions::crops_per_call`], packed by [`Mosaic`]). A vehicle whose
    /// plate the full-frame pass already found is not searched again; that plate gets the
    /// vehicle's kind. Smaller vehicles claim full-frame plates first, so a bus box covering a
    /// motorbike does not take the motorbike's plate.
    fn search_vehicles(
        &mut self,
        frame: &RgbImage,
        candidates: &mut Vec<Candidate>,
    ) -> Result<(), InferenceError> {
        let Some(vehicles) = self.vehicle_detector.as_mut() else {
            return Ok(());
        };
        let mut crops: Vec<(Rect, Arc<str>, VehicleKind)> = Vec::new();
        for v in vehicles.detect_fitted(frame, None)? {
            if v.score < self.opts.vehicle_score {
                continue;
            }
            let label = vehicles.label(v.class_id);
            if !self.opts.vehicle_labels.iter().any(|l| **l == *label) {
                continue;
            }
            let Some(region) = Rect::covering(v.bbox, frame.width(), frame.height()) else {
                continue;
            };
            if region.w >= 16 && region.h >= 16 {
                let kind = vehicle_kind(&label);
                crops.push((region, label, kind));
            }
        }
        crops.sort_by_key(|(r, ..)| u64::from(r.w) * u64::from(r.h));
        let min = self.opts.candidate_score;
        crops.retain(|(region, label, kind)| {
            let found = candidates.iter_mut().find(|c| {
                let (cx, cy) = centre(&c.det.bbox);
                c.vehicle.is_none() && c.det.score >= min && region.contains(cx, cy)
            });
            match found {
                Some(c) => {
                    c.vehicle = Some((label.clone(), *kind));
                    false
                }
                None => true,
            }
        });
        if crops.is_empty() {
            return Ok(());
        }
        let per_call = self.opts.crops_per_call.max(1);
        let mosaic = mosaic_canvas(&self.plate_detector, &mut self.mosaic);
        for group in crops.chunks(per_call) {
            let regions: Vec<Rect> = group.iter().map(|c| c.0).collect();
            let canvas = mosaic.compose(frame, &regions)?;
            let found = self.plate_detector.detect(canvas, None)?;
            // Every plate on a crop, not only the best: a vehicle box may also hold the plate of
            // the vehicle in front of it, which the full-frame pass missed.
            for (k, det) in mosaic.assign_all(&found) {
                let (_, label, kind) = &group[k];
                candidates.push(Candidate {
                    det,
                    vehicle: Some((label.clone(), *kind)),
                });
            }
        }
        Ok(())
    }

    /// Plates on vehicles already found (the pipeline's tracked boxes): the plate detector on each
    /// vehicle's crop, its best candidate read, OCR batched across vehicles. One entry per vehicle,
    /// `None` where no candidate reached `candidate_score`.
    pub fn read_vehicles(
        &mut self,
        frame: &RgbImage,
        vehicles: &[([f32; 4], VehicleKind)],
    ) -> Result<Vec<Option<FramePlate>>, InferenceError> {
        let mut found: Vec<(usize, Detection, Rect)> = Vec::new();
        for (i, (bbox, _)) in vehicles.iter().enumerate() {
            let Some(region) = Rect::covering(*bbox, frame.width(), frame.height()) else {
                continue;
            };
            if region.w < 16 || region.h < 16 {
                continue;
            }
            let best = self
                .plate_detector
                .detect(frame, Some(region))?
                .into_iter()
                .filter(|d| d.score >= self.opts.candidate_score)
                .max_by(|a, b| a.score.total_cmp(&b.score));
            if let Some(det) = best
                && let Some(plate) = Rect::covering(det.bbox, frame.width(), frame.height())
            {
                found.push((i, det, plate));
            }
        }
        let regions: Vec<Rect> = found.iter().map(|f| f.2).collect();
        let reads = self.read_regions(frame, &regions, found.iter().map(|f| vehicles[f.0].1))?;
        let mut out: Vec<Option<FramePlate>> = vec![None; vehicles.len()];
        for ((i, det, _), read) in found.into_iter().zip(reads) {
            let low_confidence = self.is_low_confidence(&read);
            out[i] = Some(FramePlate {
                bbox: det.bbox,
                detector_score: det.score,
                vehicle: None,
                read,
                low_confidence,
            });
        }
        Ok(out)
    }

    /// Plate boxes on the full frame at or above `candidate_score` (a dedicated ANPR camera tracks
    /// these directly), without reading them.
    pub fn detect_plates(&mut self, frame: &RgbImage) -> Result<Vec<Detection>, InferenceError> {
        let min = self.opts.candidate_score;
        let mut found = self.plate_detector.detect_fitted(frame, None)?;
        found.retain(|d| d.score >= min);
        Ok(found)
    }

    /// Reads plates whose boxes are already known (a dedicated ANPR camera's tracked plates), OCR
    /// batched. One entry per box, `None` for a box outside the frame.
    pub fn read_boxes(
        &mut self,
        frame: &RgbImage,
        plates: &[([f32; 4], VehicleKind)],
    ) -> Result<Vec<Option<PlateDecode>>, InferenceError> {
        let inside: Vec<(usize, Rect)> = plates
            .iter()
            .enumerate()
            .filter_map(|(i, (b, _))| Some((i, Rect::covering(*b, frame.width(), frame.height())?)))
            .collect();
        let regions: Vec<Rect> = inside.iter().map(|x| x.1).collect();
        let reads = self.read_regions(frame, &regions, inside.iter().map(|x| plates[x.0].1))?;
        let mut out = vec![None; plates.len()];
        for ((i, _), read) in inside.into_iter().zip(reads) {
            out[i] = Some(read);
        }
        Ok(out)
    }

    /// Reads plate crops (each image is one plate).
    pub fn read_crops(&mut self, crops: &[&RgbImage]) -> Result<Vec<PlateDecode>, InferenceError> {
        let items: Vec<(&RgbImage, Rect)> = crops.iter().map(|c| (*c, Rect::whole(c))).collect();
        self.read_items(&items, &vec![VehicleKind::Unknown; items.len()])
    }

    fn read_regions(
        &mut self,
        frame: &RgbImage,
        regions: &[Rect],
        kinds: impl Iterator<Item = VehicleKind>,
    ) -> Result<Vec<PlateDecode>, InferenceError> {
        let items: Vec<(&RgbImage, Rect)> = regions.iter().map(|r| (frame, *r)).collect();
        self.read_items(&items, &kinds.collect::<Vec<_>>())
    }

    /// OCR of every view of every region in batches, probabilities averaged per region, then the
    /// grammar-constrained decode.
    fn read_items(
        &mut self,
        items: &[(&RgbImage, Rect)],
        kinds: &[VehicleKind],
    ) -> Result<Vec<PlateDecode>, InferenceError> {
        let views: Vec<Vec<Rect>> = items
            .iter()
            .map(|(_, r)| views_of(*r, self.opts.ocr_views))
            .collect();
        let flat: Vec<(&RgbImage, Option<Rect>)> = items
            .iter()
            .zip(&views)
            .flat_map(|((img, _), vs)| vs.iter().map(move |v| (*img, Some(*v))))
            .collect();
        let mut means = mean_over_views(slot_ocr(&mut self.ocr, &flat)?, &views);
        if let Some(second) = self.second_ocr.as_mut() {
            let theirs = mean_over_views(slot_ocr(second, &flat)?, &views);
            let (a, b) = (&self.ocr, &*second);
            for (mine, theirs) in means.iter_mut().zip(theirs) {
                let both = slot_probs_of(a, std::mem::take(mine))?
                    .product(&slot_probs_of(b, theirs)?)
                    .map_err(|e| InferenceError::Output(e.to_string()))?;
                *mine = both.probs;
            }
        }
        // The cascade: the slot read of every item, and which items the recogniser reads too.
        let mut slot_reads: Vec<Option<PlateDecode>> = Vec::with_capacity(items.len());
        let mut recognize: Vec<bool> = Vec::with_capacity(items.len());
        for (mean, kind) in means.iter().zip(kinds) {
            let (read, rec) = match self.opts.readers {
                Readers::Slot => (Some(self.decode(mean.clone(), *kind)?), false),
                Readers::Ppocr => (None, true),
                Readers::Fused => {
                    let d = self.decode(mean.clone(), *kind)?;
                    let rec = needs_fusion(&d, self.opts.fuse_below);
                    (Some(d), rec)
                }
            };
            slot_reads.push(read);
            recognize.push(rec);
        }
        let chosen: Vec<(&RgbImage, Rect)> = items
            .iter()
            .zip(&recognize)
            .filter(|(_, r)| **r)
            .map(|(it, _)| *it)
            .collect();
        let mut lattices = if chosen.is_empty() {
            Vec::new()
        } else {
            self.recognize(&chosen)?
        }
        .into_iter();
        self.counts.plates += items.len() as u64;
        self.counts.recognized += chosen.len() as u64;
        let mut out = Vec::with_capacity(items.len());
        for (((mean, kind), slot_read), rec) in
            means.into_iter().zip(kinds).zip(slot_reads).zip(recognize)
        {
            let layouts = if rec { lattices.next() } else { None };
            let read = match (layouts, slot_read) {
                (None, Some(d)) => d,
                (None, None) => self.decode(mean, *kind)?,
                // Layouts the plate's shape allows: the most confident read wins.
                (Some(layouts), _) => {
                    let mut best: Option<PlateDecode> = None;
                    for lat in &layouts {
                        let d = self.decode_with(mean.clone(), lat, *kind)?;
                        if best
                            .as_ref()
                            .is_none_or(|b| (d.valid, d.confidence) > (b.valid, b.confidence))
                        {
                            best = Some(d);
                        }
                    }
                    match best {
                        Some(d) => d,
                        None => self.decode(mean, *kind)?,
                    }
                }
            };
            out.push(read);
        }
        Ok(out)
    }

    /// The recogniser's lattices for every item, one per layout the item's shape allows (see
    /// [`layouts_of`]); text rows of all items run in batches.
    fn recognize(
        &mut self,
        items: &[(&RgbImage, Rect)],
    ) -> Result<Vec<Vec<CtcLattice>>, InferenceError> {
        let Some((rec, map)) = self.recognizer.as_mut() else {
            return Err(InferenceError::Spec(format!(
                "plate readers {:?} need a text recogniser (ppocrv4_rec)",
                self.opts.readers
            )));
        };
        // (item, layout, rows) → flat list of row regions.
        let layouts: Vec<Vec<Vec<Rect>>> = items.iter().map(|(_, r)| layouts_of(*r)).collect();
        let flat: Vec<(&RgbImage, Option<Rect>)> = items
            .iter()
            .zip(&layouts)
            .flat_map(|((img, _), ls)| ls.iter().flatten().map(move |r| (*img, Some(*r))))
            .collect();
        let max = rec.manifest().input.max_batch.max(1);
        // Rows of similar aspect (hence padded width) run together, so that a batch is padded to
        // little more than each of its rows; results go back in the original order.
        let mut order: Vec<usize> = (0..flat.len()).collect();
        order.sort_by(|&a, &b| row_aspect(&flat[a]).total_cmp(&row_aspect(&flat[b])));
        let sorted: Vec<(&RgbImage, Option<Rect>)> = order.iter().map(|&i| flat[i]).collect();
        self.counts.rec_rows += flat.len() as u64;
        let mut by_sorted: Vec<CtcLattice> = Vec::with_capacity(flat.len());
        for chunk in sorted.chunks(max) {
            let (dims, data) = rec.infer_raw(chunk)?;
            let (n, steps) = (
                dims.first().copied().unwrap_or(0),
                dims.get(1).copied().unwrap_or(0),
            );
            let per = data.len() / n.max(1);
            if n != chunk.len() || per == 0 {
                return Err(InferenceError::Output(format!(
                    "text recogniser returned {dims:?} for {} rows",
                    chunk.len()
                )));
            }
            for one in data.chunks_exact(per) {
                by_sorted.push(
                    map.reduce(one, steps)
                        .map_err(|e| InferenceError::Output(e.to_string()))?,
                );
            }
        }
        let mut rows: Vec<Option<CtcLattice>> = vec![None; flat.len()];
        for (i, lat) in order.into_iter().zip(by_sorted) {
            rows[i] = Some(lat);
        }
        let mut it = rows.into_iter().flatten();
        Ok(layouts
            .iter()
            .map(|ls| {
                ls.iter()
                    .map(|l| CtcLattice::join_rows(&it.by_ref().take(l.len()).collect::<Vec<_>>()))
                    .collect()
            })
            .collect())
    }

    /// The slot probabilities of a plate: the OCR's, or with a second OCR their product, which has
    /// the longer model's slots.
    fn slot_probs(&self, probs: Vec<f32>) -> Result<SlotProbs, InferenceError> {
        let mut p = slot_probs_of(&self.ocr, probs)?;
        if let Some((_, _, slots)) = self
            .second_ocr
            .as_ref()
            .and_then(|m| m.manifest().decoder.slot_layout())
        {
            p.slots = p.slots.max(slots);
        }
        Ok(p)
    }

    fn decode_options(&self, vehicle: VehicleKind) -> DecodeOptions {
        DecodeOptions {
            hints: PlateHints {
                vehicle,
                rows: None,
            },
            ..self.opts.decode
        }
    }

    /// Decode with the recogniser's lattice: alone or fused with the slot OCR's probabilities.
    fn decode_with(
        &self,
        probs: Vec<f32>,
        lattice: &CtcLattice,
        vehicle: VehicleKind,
    ) -> Result<PlateDecode, InferenceError> {
        let opts = self.decode_options(vehicle);
        let out = |e: String| InferenceError::Output(e);
        match self.opts.readers {
            Readers::Ppocr => decode_ctc(lattice, &opts).map_err(|e| out(e.to_string())),
            _ => decode_fused(&self.slot_probs(probs)?, lattice, &opts)
                .map_err(|e| out(e.to_string())),
        }
    }

    fn decode(&self, probs: Vec<f32>, vehicle: VehicleKind) -> Result<PlateDecode, InferenceError> {
        decode_slots(&self.slot_probs(probs)?, &self.decode_options(vehicle))
            .map_err(|e| InferenceError::Output(e.to_string()))
    }
}

fn not_slot_ocr(model: &Model) -> InferenceError {
    let m = model.manifest();
    InferenceError::WrongKind {
        model: m.name.clone(),
        kind: m.decoder.kind(),
        wanted: "slot OCR",
    }
}

/// `probs` as the slot OCR `model` lays them out.
fn slot_probs_of(model: &Model, probs: Vec<f32>) -> Result<SlotProbs, InferenceError> {
    let Some((alphabet, pad, slots)) = model.manifest().decoder.slot_layout() else {
        return Err(not_slot_ocr(model));
    };
    Ok(SlotProbs {
        alphabet: alphabet.chars().collect(),
        pad,
        slots,
        probs,
    })
}

/// A slot OCR's probabilities for every region, in batches of its manifest's `max_batch`.
fn slot_ocr(
    model: &mut Model,
    flat: &[(&RgbImage, Option<Rect>)],
) -> Result<Vec<Vec<f32>>, InferenceError> {
    let max = model.manifest().input.max_batch.max(1);
    let mut probs: Vec<Vec<f32>> = Vec::with_capacity(flat.len());
    for chunk in flat.chunks(max) {
        match model.infer(chunk)? {
            ModelOutput::Slots(reads) => probs.extend(reads.into_iter().map(|r| r.probs)),
            _ => return Err(not_slot_ocr(model)),
        }
    }
    Ok(probs)
}

/// Slot probabilities averaged over each item's views (`probs` holds every view of every item in
/// order).
fn mean_over_views(probs: Vec<Vec<f32>>, views: &[Vec<Rect>]) -> Vec<Vec<f32>> {
    let mut means: Vec<Vec<f32>> = Vec::with_capacity(views.len());
    let mut it = probs.into_iter();
    for vs in views {
        let group: Vec<Vec<f32>> = it.by_ref().take(vs.len()).collect();
        let Some((first, rest)) = group.split_first() else {
            means.push(Vec::new());
            continue;
        };
        let mut mean = first.clone();
        for p in rest {
            mean.iter_mut().zip(p).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= group.len() as f32);
        means.push(mean);
    }
    means
}

/// Whether a slot read goes on to be fused with the recogniser's (see [`ReaderOptions::fuse_below`]).
pub fn needs_fusion(slot_read: &PlateDecode, fuse_below: f32) -> bool {
    !slot_read.valid || slot_read.confidence < fuse_below
}

/// Width over height of a recogniser row: its padded width at a fixed height is proportional.
fn row_aspect((img, r): &(&RgbImage, Option<Rect>)) -> f32 {
    let (w, h) = r.map_or((img.width(), img.height()), |r| (r.w, r.h));
    w as f32 / h.max(1) as f32
}

/// Text-row layouts to try for a plate box: one row for long plates, two stacked rows for square
/// ones, both in between. Standard plates are 4.7:1 (one row), 2:1 and 1.36:1 (two rows); oblique
/// cameras foreshorten the width, so a one-row plate can look as narrow as about 2:1, and a
/// box that narrow is read both ways.
fn layouts_of(r: Rect) -> Vec<Vec<Rect>> {
    let aspect = r.w as f32 / r.h.max(1) as f32;
    let one = vec![r];
    // Halves; an odd middle row goes to the top row.
    let top = r.h.div_ceil(2);
    let two = vec![
        Rect { h: top, ..r },
        Rect {
            y: r.y + top,
            h: r.h - top,
            ..r
        },
    ];
    if r.h < 8 {
        vec![one]
    } else if aspect < TWO_ROW_MAX_ASPECT {
        vec![two]
    } else if aspect < ONE_ROW_MIN_ASPECT {
        vec![one, two]
    } else {
        vec![one]
    }
}
/// Below this width:height a plate box is read as two rows only (the 2:1 two-row car plate).
const TWO_ROW_MAX_ASPECT: f32 = 2.0;
/// From this width:height on, one row only (the 4.7:1 plate foreshortened by up to a third).
const ONE_ROW_MIN_ASPECT: f32 = 3.2;

/// The crop itself, then crops inset by a pixel or two on varying sides: small shifts of the plate
/// inside the OCR's fixed input, whose errors are largely independent.
fn views_of(r: Rect, n: usize) -> Vec<Rect> {
    const INSETS: [(u32, u32, u32, u32); 5] = [
        (1, 1, 1, 1),
        (2, 0, 0, 1),
        (0, 1, 2, 0),
        (1, 0, 1, 2),
        (0, 2, 1, 0),
    ];
    let mut out = vec![r];
    for &(l, t, rr, b) in INSETS.iter().take(n.saturating_sub(1)) {
        if r.w > l + rr + 8 && r.h > t + b + 8 {
            out.push(Rect {
                x: r.x + l,
                y: r.y + t,
                w: r.w - l - rr,
                h: r.h - t - b,
            });
        }
    }
    out
}

/// The reused canvas of `detector`'s input size, padded like its letterbox (made on first use).
fn mosaic_canvas<'a>(detector: &Model, slot: &'a mut Option<Mosaic>) -> &'a mut Mosaic {
    let input = &detector.manifest().input;
    let (w, h) = (input.width.unwrap_or(640), input.height.unwrap_or(640));
    let fill = input.pad_value.clamp(0.0, 255.0) as u8;
    if slot.as_ref().is_some_and(|m| m.size() != (w, h)) {
        *slot = None;
    }
    slot.get_or_insert_with(|| Mosaic::new(w, h, fill))
}

fn centre(b: &[f32; 4]) -> (f32, f32) {
    ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
}

/// One candidate per plate: boxes overlapping by IoU > 0.5 are the same plate; the higher score wins
/// but keeps the vehicle it was found on.
fn merge(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let dets: Vec<Detection> = candidates.iter().map(|c| c.det.clone()).collect();
    let kept = nms(dets, 0.5, true);
    kept.into_iter()
        .map(|d| {
            let vehicle = candidates
                .iter()
                .filter(|c| iou(&c.det.bbox, &d.bbox) > 0.5)
                .find_map(|c| c.vehicle.clone());
            Candidate { det: d, vehicle }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plate::fixtures::{csv_rows, shared_dir};

    /// A real model from the manifests and the model cache (`EDGE_AGENT_MODEL_CACHE`), on ONNX
    /// Runtime (`ORT_DYLIB_PATH`).
    fn model(name: &str) -> Model {
        let rt = crate::runtime::config::RuntimeConfig {
            intra_threads: 1,
            ..Default::default()
        };
        crate::plate::fixtures::load_model(name, &rt)
    }

    fn reader(readers: Readers) -> PlateReader {
        let opts = ReaderOptions {
            mode: PlateMode::FullFrame,
            readers,
            ..ReaderOptions::default()
        };
        let r = PlateReader::new(
            model("vn_plate_det_yolo26n_640_e2e"),
            model("vn_plate_ocr_9x37_64x128"),
            None,
            opts,
        )
        .expect("reader");
        match readers {
            Readers::Slot => r,
            _ => r.with_recognizer(model("ppocrv4_rec")).expect("recogniser"),
        }
    }

    #[test]
    fn the_trust_threshold_is_the_configured_one_else_the_models_calibrated_one() {
        let set = crate::models::ManifestSet::builtin().expect("built-in manifests");
        let ocr = set.require("vn_plate_ocr_9x37_64x128").expect("ocr");
        let rec = set.require("ppocrv4_rec").expect("rec");
        let cal = ocr.trust.clone().expect("[trust]");
        let opts = |readers, min_confidence| ReaderOptions {
            readers,
            min_confidence,
            ..ReaderOptions::default()
        };
        let at = |o: &ReaderOptions, r: Option<&crate::models::ModelManifest>| {
            trust_threshold(o, ocr, None, r)
        };
        let t = at(&opts(Readers::Fused, None), Some(rec));
        assert_eq!(t.min_confidence, cal.fused.expect("fused"));
        assert!(matches!(&t.source, TrustSource::Calibrated { model, .. } if model == &ocr.name));
        assert_eq!(
            at(&opts(Readers::Slot, None), None).min_confidence,
            cal.slot.expect("slot")
        );
        let t = at(&opts(Readers::Ppocr, None), Some(rec));
        assert_eq!(
            Some(t.min_confidence),
            rec.trust.as_ref().and_then(|t| t.ppocr)
        );
        assert!(matches!(&t.source, TrustSource::Calibrated { model, .. } if model == &rec.name));
        // A number in the config wins; a model without [trust] falls back to an even chance and
        // says so.
        let t = at(&opts(Readers::Fused, Some(0.6)), Some(rec));
        assert_eq!(
            (t.min_confidence, &t.source),
            (0.6, &TrustSource::Configured)
        );
        let mut bare = ocr.clone();
        bare.trust = None;
        let t = trust_threshold(&opts(Readers::Fused, None), &bare, None, Some(rec));
        assert_eq!(t.min_confidence, FALLBACK_MIN_CONFIDENCE);
        assert!(t.to_string().contains("fallback"), "{t}");
        // Two slot OCRs reading together are trusted from the pair's own calibration, never from
        // either model's alone; a pair nobody calibrated falls back.
        let second = set.require(DEFAULT_PLATE_OCR_SECOND).expect("second ocr");
        let pair = cal.with.get(&second.name).expect("[trust.with.SECOND]");
        for (readers, want, r) in [
            (Readers::Fused, pair.fused, Some(rec)),
            (Readers::Slot, pair.slot, None),
        ] {
            let t = trust_threshold(&opts(readers, None), ocr, Some(second), r);
            assert_eq!(Some(t.min_confidence), want, "{readers:?}");
            assert!(t.to_string().contains(&second.name), "{t}");
        }
        let t = trust_threshold(&opts(Readers::Slot, None), second, Some(ocr), None);
        assert_eq!(t.min_confidence, FALLBACK_MIN_CONFIDENCE, "{t}");
        let t = trust_threshold(&opts(Readers::Ppocr, None), ocr, Some(second), Some(rec));
        assert!(matches!(&t.source, TrustSource::Calibrated { model, .. } if model == &rec.name));
    }

    #[test]
    fn plate_cascade_skips_the_recogniser_only_for_confident_slot_reads() {
        let dir = shared_dir().join("footage/plate_crops");
        let crops: Vec<RgbImage> = csv_rows("footage/plate_crops/labels.csv")
            .iter()
            .map(|r| crate::imageio::read_rgb(&dir.join(&r["filename"])).expect("crop"))
            .collect();
        let refs: Vec<&RgbImage> = crops.iter().collect();
        let slot_reads = reader(Readers::Slot).read_crops(&refs).expect("slot reads");
        let below = DEFAULT_FUSE_BELOW;
        // The most and the least confident slot reads among the real crops.
        let by_conf = |d: &&PlateDecode| (d.valid, d.confidence);
        let (sure, _) = crops
            .iter()
            .zip(&slot_reads)
            .max_by(|a, b| by_conf(&a.1).partial_cmp(&by_conf(&b.1)).expect("finite"))
            .expect("crops");
        let (unsure, _) = crops
            .iter()
            .zip(&slot_reads)
            .min_by(|a, b| by_conf(&a.1).partial_cmp(&by_conf(&b.1)).expect("finite"))
            .expect("crops");
        let sure_slot = &slot_reads[crops.iter().position(|c| std::ptr::eq(c, sure)).unwrap()];
        assert!(!needs_fusion(sure_slot, below), "{sure_slot:?}");

        let mut fused = reader(Readers::Fused);
        let read = fused.read_crops(&[sure]).expect("fused read");
        let counts = fused.take_counts();
        assert_eq!(
            (counts.plates, counts.recognized, counts.rec_rows),
            (1, 0, 0)
        );
        assert_eq!(
            read[0].text, sure_slot.text,
            "a confident slot read is kept"
        );
        assert_eq!(read[0].confidence, sure_slot.confidence);

        fused.read_crops(&[unsure]).expect("fused read");
        let counts = fused.take_counts();
        assert_eq!((counts.plates, counts.recognized), (1, 1));
        assert!(counts.rec_rows >= 1, "{counts:?}");

        // Every crop: the recogniser runs on exactly the plates the slot reader doubts.
        fused.read_crops(&refs).expect("fused reads");
        let want = slot_reads.iter().filter(|d| needs_fusion(d, below)).count() as u64;
        let counts = fused.take_counts();
        assert_eq!(counts.recognized, want);
        assert!(
            want > 0 && want < crops.len() as u64,
            "{want} of {}",
            crops.len()
        );
    }
}
