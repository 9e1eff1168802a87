//! Everything that happens to one camera's frame after decoding: detection, tracking, plate reads
//! scheduled per track, rules; in frame order, by whichever worker took the frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::anpr::{PlateReader, vehicle_kind};
use crate::config::{CameraConfig, CameraRole};
use crate::inference::{Detection, InferenceError, Model, Rect, RgbImage};
use crate::models::ModelManifest;
use crate::plate::{PlateDecode, PlateRead, VehicleKind, VoteResult};
use crate::rules::{RuleEngine, RuleEvent, TrackSample};
use crate::track::{Track, TrackState, Tracker, TrackerConfig, TrackerUse};

use super::metrics::CameraStats;
use super::observer::{PipelineObserver, ProcessedFrame};
use super::plates::{Candidate, PlateSchedule, PlateScheduler};
use crate::anpr::mosaic::Mosaic;

/// A frame admitted by the sampler, with the instant it was received (for capture-to-event latency).
pub struct Sampled {
    pub frame: crate::source::Frame,
    pub received: Instant,
    /// Gaps of the source so far (reconnects, jumps in media time): a change from the previous
    /// frame's is a stream gap.
    pub connection: u64,
}

/// The plate crop a read came from; the best one of a track becomes the event's object evidence.
#[derive(Debug)]
pub struct PlateCrop {
    pub image: RgbImage,
    /// Plate box in frame pixels.
    pub bbox: [f32; 4],
}

/// A track's plate consensus, reported once per track: when the vote becomes confident, or when the
/// track ends without having been confident (then `result.confident` is false).
#[derive(Debug, Clone)]
pub struct PlateObservation {
    pub track_id: u64,
    pub label: Arc<str>,
    /// The vehicle's box at the time of the report (the plate's box on an ANPR camera).
    pub bbox: [f32; 4],
    pub result: VoteResult<Arc<PlateCrop>>,
    /// True when reported at the track's end rather than the moment it became confident.
    pub at_track_end: bool,
}

/// A rule event with the track it concerns and that track's plate, if read.
#[derive(Debug, Clone)]
pub struct RuleObservation {
    pub event: RuleEvent,
    pub track: Option<Track>,
    pub label: Option<Arc<str>>,
    pub plate: Option<VoteResult<Arc<PlateCrop>>>,
}

/// What processing one frame produced, handed to the sink with the frame itself for evidence.
#[derive(Debug, Clone)]
pub enum Observation {
    Plate(Box<PlateObservation>),
    Rule(Box<RuleObservation>),
    /// The camera's zones, lines and rules could not be built for its stream (e.g. `frame_size`
    /// differs from the frames): the camera runs without them, which must not go unseen.
    RulesDisabled(String),
}

/// The models one worker owns (ONNX Runtime sessions are not shared between threads), and the
/// buffers it reuses from frame to frame.
pub struct WorkerModels {
    /// Vehicle and person detector (COCO labels).
    pub detector: Model,
    /// Plate detector + OCR; `None` when plate reading is disabled.
    pub plates: Option<PlateReader>,
    /// The canvas vehicle crops are packed on for the plate detector; made at the first use.
    pub mosaic: Option<Mosaic>,
}

impl WorkerModels {
    pub fn new(detector: Model, plates: Option<PlateReader>) -> Self {
        WorkerModels {
            detector,
            plates,
            mosaic: None,
        }
    }
}

/// The state one camera keeps between frames.
pub struct CameraState {
    pub id: String,
    pub role: CameraRole,
    tracker: Tracker,
    plates: PlateScheduler<Arc<PlateCrop>>,
    /// The camera's zones, lines and rules, built into `rules` at the first frame, when the
    /// stream's real frame size is known.
    rules_config: Option<Box<CameraConfig>>,
    rules: Option<RuleEngine>,
    /// The config `rules` was built from, for drawing its zones and lines on evidence.
    geometry: Option<Arc<CameraConfig>>,
    utc_offset_minutes: i32,
    /// Label of every live track, for reports made after the track is gone.
    labels: HashMap<u64, (Arc<str>, [f32; 4])>,
    /// Last stream time seen, for closing rules at the end.
    last_t: Duration,
    /// Size of the last frame, so rules swapped in while running can be built (and refused) at once.
    frame_size: Option<(u32, u32)>,
    pub stats: CameraStats,
    /// Where the last processed frame goes for the local API; none when nobody looks.
    /// Who watches the processed frames (the API's live view); none in a replay.
    observer: Option<Arc<dyn PipelineObserver>>,
    /// The source connection the last processed frame came from.
    connection: Option<u64>,
    /// The camera's main stream, where plates are read and evidence cut (`evidence_url`).
    evidence: Option<Arc<super::evidence_stream::EvidenceStream>>,
}

/// The main-stream frame of the moment a detection frame shows, and how much larger it is.
#[derive(Clone, Copy)]
pub struct MainView<'a> {
    pub image: &'a RgbImage,
    /// Main-stream pixels per detection-frame pixel, across and down.
    pub sx: f32,
    pub sy: f32,
}

impl MainView<'_> {
    /// A detection-frame box in main-stream pixels.
    pub fn up(&self, b: [f32; 4]) -> [f32; 4] {
        [
            b[0] * self.sx,
            b[1] * self.sy,
            b[2] * self.sx,
            b[3] * self.sy,
        ]
    }

    /// A main-stream box in detection-frame pixels.
    pub fn down(&self, b: [f32; 4]) -> [f32; 4] {
        [
            b[0] / self.sx,
            b[1] / self.sy,
            b[2] / self.sx,
            b[3] / self.sy,
        ]
    }
}

/// The frame an observation refers to.
pub struct FrameContext<'a> {
    pub image: &'a RgbImage,
    pub capture_time: SystemTime,
    /// Where `capture_time` comes from.
    pub clock: crate::source::CaptureClock,
    pub stream_time: Duration,
    pub seq: u64,
    /// Boxes of the people seen on this frame (detections and person tracks), which evidence
    /// images pixelate (`[cameras.privacy]`).
    pub people: Vec<[f32; 4]>,
    /// The zones and lines the camera's rules run on, drawn on a rule event's frame.
    pub geometry: Option<Arc<CameraConfig>>,
    /// The main-stream frame of the same moment, when the camera has one: evidence is cut from
    /// it (boxes, zones and people scaled up).
    pub main: Option<MainView<'a>>,
}

/// A plate found on a vehicle: its box in frame pixels, the plate detector's score, the read.
type FoundPlate = ([f32; 4], f32, PlateDecode);

const VEHICLE_LABELS: [&str; 4] = ["car", "motorcycle", "bus", "truck"];

impl CameraState {
    pub fn new(
        id: String,
        role: CameraRole,
        tracker: TrackerConfig,
        plates: PlateSchedule,
        rules_config: Option<Box<CameraConfig>>,
        utc_offset_minutes: i32,
    ) -> Self {
        CameraState {
            id,
            role,
            tracker: Tracker::new(tracker),
            plates: PlateScheduler::new(plates),
            rules_config,
            utc_offset_minutes,
            rules: None,
            geometry: None,
            labels: HashMap::new(),
            last_t: Duration::ZERO,
            frame_size: None,
            stats: CameraStats::default(),
            observer: None,
            connection: None,
            evidence: None,
        }
    }

    /// Hand every processed frame, with its tracks and plates, to `observer` (when it wants frames).
    /// Reads plates and cuts evidence from `stream`'s frames (`None`: from the detection frames).
    pub fn set_evidence_stream(
        &mut self,
        stream: Option<Arc<super::evidence_stream::EvidenceStream>>,
    ) {
        self.evidence = stream;
    }

    pub fn set_observer(&mut self, observer: Arc<dyn PipelineObserver>) {
        self.observer = observer.wants_frames().then_some(observer);
    }

    /// Runs every stage on one frame; observations go to `emit` with the frame.
    pub fn process(
        &mut self,
        models: &mut WorkerModels,
        sampled: Sampled,
        emit: &mut dyn FnMut(Observation, &FrameContext<'_>),
    ) -> Result<(), InferenceError> {
        let started = Instant::now();
        let frame = sampled.frame;
        let t = frame.stream_time;
        self.last_t = t;
        self.frame_size = Some((frame.width, frame.height));
        let image = RgbImage::from_raw(frame.width, frame.height, frame.rgb).ok_or_else(|| {
            InferenceError::Spec(format!(
                "camera {}: frame {} has {}×{} pixels but a buffer of another size",
                self.id, frame.seq, frame.width, frame.height
            ))
        })?;
        // The main stream's frame of this moment, if the camera has one and it came.
        let main_frame = self
            .evidence
            .as_ref()
            .and_then(|s| s.matching(frame.capture_time, &image));
        let main = main_frame.as_deref().map(|m| MainView {
            image: m,
            sx: m.width() as f32 / image.width().max(1) as f32,
            sy: m.height() as f32 / image.height().max(1) as f32,
        });
        let mut ctx = FrameContext {
            image: &image,
            capture_time: frame.capture_time,
            clock: frame.clock,
            stream_time: t,
            seq: frame.seq,
            people: Vec::new(),
            geometry: None,
            main,
        };
        let mut out: Vec<Observation> = Vec::new();
        if let Some(cfg) = self.rules_config.take() {
            match RuleEngine::new(&cfg.geometry(), (frame.width, frame.height)) {
                Ok(mut engine) => {
                    engine.set_local_time(
                        t,
                        local_secs_of_day(frame.capture_time, self.utc_offset_minutes),
                    );
                    self.rules = Some(engine);
                    self.geometry = Some(Arc::from(cfg));
                }
                Err(e) => {
                    tracing::error!(camera = %self.id, error = %e, "rules disabled for this camera");
                    out.push(Observation::RulesDisabled(e.to_string()));
                    self.geometry = None;
                }
            }
        }
        ctx.geometry = self.geometry.clone();

        let t0 = Instant::now();
        let (mut detections, labels) = self.detect(models, &image)?;
        carry_riders(&mut detections, &labels);
        self.stats.detect.record(t0.elapsed());
        self.stats.detector_calls += 1;
        self.stats.ort_detect += models.detector.total_times().run;
        models.detector.reset_totals();

        let t0 = Instant::now();
        let update = self.tracker.update(t, &detections);
        self.stats.track.record(t0.elapsed());
        self.stats.max_tracks = self.stats.max_tracks.max(update.tracks.len());
        let label_of = |class_id: usize| -> Arc<str> {
            labels
                .get(class_id)
                .cloned()
                .unwrap_or_else(|| Arc::from(format!("class_{class_id}")))
        };

        ctx.people = person_boxes(&detections, &update.tracks, &label_of);
        for tr in &update.tracks {
            let entry = self
                .labels
                .entry(tr.id)
                .or_insert_with(|| (label_of(tr.class_id), tr.bbox));
            entry.1 = tr.bbox;
        }

        let t0 = Instant::now();
        if models.plates.is_some() {
            self.read_plates(models, &image, main, t, &update.tracks, &label_of, &mut out)?;
        }
        if let Some(reader) = models.plates.as_mut() {
            self.stats.ort_plates += reader.take_model_time();
        }
        for &id in &update.ended {
            out.extend(self.end_track(id));
        }
        self.stats.plates.record(t0.elapsed());

        let t0 = Instant::now();
        if let Some(rules) = self.rules.as_mut() {
            if rules.watches_signals() {
                for (zone, lamp) in
                    rules.observe_frame(t, image.as_raw(), image.width(), image.height())
                {
                    tracing::trace!(camera = %self.id, zone, ?lamp, "signal lamp");
                }
            }
            let names: Vec<Arc<str>> = update
                .tracks
                .iter()
                .map(|tr| label_of(tr.class_id))
                .collect();
            let samples: Vec<TrackSample<'_>> = update
                .tracks
                .iter()
                .zip(&names)
                .filter(|(tr, _)| tr.state == TrackState::Confirmed)
                .map(|(tr, name)| TrackSample {
                    track_id: tr.id,
                    label: name,
                    bbox: tr.bbox,
                    score: tr.score,
                })
                .collect();
            for event in rules.update(t, &samples, &update.ended) {
                let track = event
                    .track_id
                    .and_then(|id| update.tracks.iter().find(|tr| tr.id == id).cloned());
                let label = track.as_ref().map(|tr| label_of(tr.class_id));
                // A rule event names the vehicle's plate only once the vote is worth showing.
                let min = self.plates.schedule().min_report_confidence;
                let plate = event
                    .track_id
                    .and_then(|id| self.plates.consensus(id))
                    .filter(|r| r.confidence >= min);
                out.push(Observation::Rule(Box::new(RuleObservation {
                    event,
                    track,
                    label,
                    plate,
                })));
            }
        }
        self.stats.rules.record(t0.elapsed());

        let reported: Vec<(u64, String)> = if self.observer.is_some() {
            out.iter()
                .filter_map(|o| match o {
                    Observation::Plate(p) if p.result.confident => {
                        Some((p.track_id, p.result.text.clone()))
                    }
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        for o in out {
            emit(o, &ctx);
            self.stats
                .capture_to_event
                .record(sampled.received.elapsed());
        }
        self.stats.processed += 1;
        self.stats.frame.record(started.elapsed());
        self.stats
            .capture_to_done
            .record(sampled.received.elapsed());
        if let Some(observer) = &self.observer {
            // `ctx` borrows the image; take what it holds before the image moves on.
            let (seq, capture_time) = (ctx.seq, ctx.capture_time);
            observer.frame_processed(
                &self.id,
                &ProcessedFrame {
                    image: Arc::new(image),
                    seq,
                    capture_time,
                    tracks: &update.tracks,
                    labels: &label_of,
                    plates: &reported,
                    ended: &update.ended,
                    stats: &self.stats,
                },
            );
        } else {
            // No one keeps the frame: its buffer goes back to the decoders.
            crate::source::recycle(image.into_raw());
        }
        Ok(())
    }

    /// Vehicles and people on a scene camera; plates on an ANPR camera (which tracks plates).
    fn detect(
        &self,
        models: &mut WorkerModels,
        image: &RgbImage,
    ) -> Result<(Vec<Detection>, Vec<Arc<str>>), InferenceError> {
        match (self.role, models.plates.as_mut()) {
            (CameraRole::Anpr, Some(reader)) => {
                Ok((reader.detect_plates(image)?, vec![Arc::from("plate")]))
            }
            _ => {
                let found = models.detector.detect_fitted(image, None)?;
                let max = found.iter().map(|d| d.class_id + 1).max().unwrap_or(0);
                let labels = (0..max).map(|c| models.detector.label(c)).collect();
                Ok((found, labels))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_plates(
        &mut self,
        models: &mut WorkerModels,
        image: &RgbImage,
        main: Option<MainView<'_>>,
        t: Duration,
        tracks: &[Track],
        label_of: &dyn Fn(usize) -> Arc<str>,
        out: &mut Vec<Observation>,
    ) -> Result<(), InferenceError> {
        let anpr = self.role == CameraRole::Anpr;
        let candidates: Vec<(Candidate, Arc<str>)> = tracks
            .iter()
            .filter(|tr| tr.state == TrackState::Confirmed && tr.matched_detection.is_some())
            .filter_map(|tr| {
                let label = label_of(tr.class_id);
                let kind = if anpr {
                    VehicleKind::Unknown
                } else if VEHICLE_LABELS.contains(&&*label) {
                    vehicle_kind(&label)
                } else {
                    return None;
                };
                Some((
                    Candidate {
                        track_id: tr.id,
                        bbox: tr.bbox,
                        kind,
                    },
                    label,
                ))
            })
            .collect();
        let plain: Vec<Candidate> = candidates.iter().map(|c| c.0).collect();
        let chosen = self.plates.select(t, &plain);
        if chosen.is_empty() {
            return Ok(());
        }
        let WorkerModels {
            plates: Some(reader),
            mosaic,
            ..
        } = models
        else {
            return Ok(());
        };
        // Plates are searched and read on the main stream's pixels when it has this moment.
        let (pixels, up) = match main {
            Some(m) => {
                self.stats.main_stream_frames += 1;
                (m.image, m)
            }
            None => (
                image,
                MainView {
                    image,
                    sx: 1.0,
                    sy: 1.0,
                },
            ),
        };
        let boxes: Vec<([f32; 4], VehicleKind)> = chosen
            .iter()
            .map(|&i| (up.up(plain[i].bbox), plain[i].kind))
            .collect();
        let reads: Vec<Option<FoundPlate>> = if anpr {
            self.stats.ocr_crops += boxes.len() as u64;
            reader
                .read_boxes(pixels, &boxes)?
                .into_iter()
                .zip(&boxes)
                .map(|(r, b)| r.map(|r| (b.0, 1.0, r)))
                .collect()
        } else {
            self.find_and_read(reader, mosaic, pixels, &boxes)?
        };
        for (&i, read) in chosen.iter().zip(reads) {
            let Some((plate_box, det_score, decode)) = read else {
                continue;
            };
            // in the pixels it was read on: what makes a plate readable
            if plate_box[3] - plate_box[1] < self.plates.schedule().min_plate_height {
                continue;
            }
            self.stats.plate_reads += 1;
            let (cand, label) = &candidates[i];
            let crop = Arc::new(PlateCrop {
                image: crop_padded(pixels, plate_box, 0.15),
                // events and overlays speak detection-frame pixels
                bbox: up.down(plate_box),
            });
            // Taller, more certainly detected plates make the better evidence crop.
            let quality = (plate_box[3] - plate_box[1]).max(0.0) / up.sy * det_score;
            let read = PlateRead::from_decode(&decode, crop, quality);
            if let Some(result) = self.plates.add(cand.track_id, cand.kind, read) {
                self.stats.plates_reported += 1;
                out.push(Observation::Plate(Box::new(PlateObservation {
                    track_id: cand.track_id,
                    label: label.clone(),
                    bbox: cand.bbox,
                    result,
                    at_track_end: false,
                })));
            }
        }
        Ok(())
    }

    /// The plate detector once on the chosen vehicles' crops packed into one canvas, then OCR of
    /// each vehicle's best plate, batched. One entry per vehicle.
    fn find_and_read(
        &mut self,
        reader: &mut PlateReader,
        mosaic: &mut Option<Mosaic>,
        image: &RgbImage,
        vehicles: &[([f32; 4], VehicleKind)],
    ) -> Result<Vec<Option<FoundPlate>>, InferenceError> {
        let mut out = vec![None; vehicles.len()];
        // Crops too small to hold a readable plate are not worth a cell.
        let inside: Vec<(usize, Rect)> = vehicles
            .iter()
            .enumerate()
            .filter_map(|(i, (b, _))| {
                let r = Rect::covering(*b, image.width(), image.height())?;
                (r.w >= 16 && r.h >= 16).then_some((i, r))
            })
            .collect();
        if inside.is_empty() {
            return Ok(out);
        }
        // A detector with a dynamic input size gets the Ultralytics training size.
        let input = &reader.plate_detector_manifest().input;
        let (w, h) = (input.width.unwrap_or(640), input.height.unwrap_or(640));
        let fill = input.pad_value.clamp(0.0, 255.0) as u8;
        let mosaic = match mosaic {
            Some(m) if m.size() == (w, h) => m,
            slot => slot.insert(Mosaic::new(w, h, fill)),
        };
        let regions: Vec<Rect> = inside.iter().map(|x| x.1).collect();
        let canvas = mosaic.compose(image, &regions)?;
        let found = reader.detect_plates(canvas)?;
        self.stats.plate_detector_calls += 1;
        self.stats.vehicles_searched += regions.len() as u64;
        let plates: Vec<(usize, Detection)> = mosaic
            .assign(&found)
            .into_iter()
            .zip(&inside)
            .filter_map(|(d, &(i, _))| Some((i, d?)))
            .collect();
        let boxes: Vec<([f32; 4], VehicleKind)> = plates
            .iter()
            .map(|(i, d)| (d.bbox, vehicles[*i].1))
            .collect();
        self.stats.ocr_crops += boxes.len() as u64;
        let reads = reader.read_boxes(image, &boxes)?;
        for ((i, d), read) in plates.into_iter().zip(reads) {
            out[i] = read.map(|r| (d.bbox, d.score, r));
        }
        Ok(out)
    }

    /// A track ended: forget it, and report its plate if it was never reported.
    fn end_track(&mut self, id: u64) -> Option<Observation> {
        let (label, bbox) = self
            .labels
            .remove(&id)
            .unwrap_or_else(|| (Arc::from(""), [0.0; 4]));
        let result = self.plates.end(id)?;
        self.stats.plates_reported += 1;
        Some(Observation::Plate(Box::new(PlateObservation {
            track_id: id,
            label,
            bbox,
            result,
            at_track_end: true,
        })))
    }

    /// Builds the rule engine for `rules` against the stream's frame size, without installing it:
    /// the first half of an atomic swap. `Ok(None)` when there are no rules or no frame has been
    /// seen yet (the engine is then built at the first frame, as at start).
    pub fn build_rules(&self, rules: Option<&CameraConfig>) -> Result<Option<RuleEngine>, String> {
        match (rules, self.frame_size) {
            (Some(cfg), Some(size)) => RuleEngine::new(&cfg.geometry(), size)
                .map(Some)
                .map_err(|e| format!("camera `{}`: rules: {e}", self.id)),
            _ => Ok(None),
        }
    }

    /// Replaces the camera's zones, lines and rules in place; the tracker, plate votes and stream
    /// go on. Events the old rules still had open are closed through `emit`. `engine` is what
    /// [`CameraState::build_rules`] returned for `rules`.
    pub fn set_rules(
        &mut self,
        rules: Option<Box<CameraConfig>>,
        engine: Option<RuleEngine>,
        emit: &mut dyn FnMut(Observation),
    ) {
        if let Some(mut old) = self.rules.take() {
            for event in old.finish(self.last_t) {
                emit(Observation::Rule(Box::new(RuleObservation {
                    event,
                    track: None,
                    label: None,
                    plate: None,
                })));
            }
        }
        self.rules_config = None;
        match engine {
            Some(mut engine) => {
                engine.set_local_time(
                    self.last_t,
                    local_secs_of_day(SystemTime::now(), self.utc_offset_minutes),
                );
                self.rules = Some(engine);
                self.geometry = rules.map(Arc::from);
            }
            None => {
                self.rules_config = rules;
                self.geometry = None;
            }
        }
    }

    /// Tracks confirmed so far.
    pub fn tracks_confirmed(&self) -> u64 {
        self.tracker.tracks_confirmed()
    }

    /// The tracker's memory and bound, and the detections it refused when full (for `/metrics`).
    pub fn tracker_use(&self) -> TrackerUse {
        self.tracker.usage()
    }

    /// Whether `sampled` comes after a stream gap (a reconnect since the last frame processed).
    pub fn note_connection(&mut self, connection: u64) -> bool {
        let gap = self.connection.is_some_and(|c| c != connection);
        self.connection = Some(connection);
        gap
    }

    /// A stream gap: every track ends (its plate reported) and the rules forget them, so no
    /// motion is inferred across the gap.
    pub fn discontinuity(&mut self, emit: &mut dyn FnMut(Observation)) {
        self.end_tracks(RuleEngine::discontinuity, emit);
    }

    /// End of stream: every track ends; unreported plates and open rule events are closed.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Observation)) {
        self.end_tracks(RuleEngine::finish, emit);
    }

    /// Ends every track, then emits what `rules_end` (the rule engine's gap or end) closes.
    fn end_tracks(
        &mut self,
        rules_end: fn(&mut RuleEngine, Duration) -> Vec<RuleEvent>,
        emit: &mut dyn FnMut(Observation),
    ) {
        for id in self.tracker.finish() {
            if let Some(obs) = self.end_track(id) {
                emit(obs);
            }
        }
        if let Some(rules) = self.rules.as_mut() {
            for event in rules_end(rules, self.last_t) {
                emit(Observation::Rule(Box::new(RuleObservation {
                    event,
                    track: None,
                    label: None,
                    plate: None,
                })));
            }
        }
    }
}

/// The detector's manifest as the pipeline loads it: its score threshold lowered to the tracker's
/// `low_score`, so the low-score boxes reach the tracker's second association stage (YOLOX's
/// manifest keeps 0.3, which would cut off the 0.1–0.3 band). A threshold already lower is kept.
pub fn detector_manifest(manifest: &ModelManifest, tracker: &TrackerConfig) -> ModelManifest {
    let mut m = manifest.clone();
    if let Some(t) = m.decoder.score_threshold_mut()
        && tracker.low_score < *t
    {
        *t = tracker.low_score;
    }
    m
}

/// Every person box of the frame: this frame's detections plus the person tracks (which cover a
/// person the detector missed on this one frame).
fn person_boxes(
    detections: &[Detection],
    tracks: &[Track],
    label_of: &dyn Fn(usize) -> Arc<str>,
) -> Vec<[f32; 4]> {
    let is_person = |c: usize| &*label_of(c) == "person";
    let is_ridden = |c: usize| TWO_WHEELERS.contains(&&*label_of(c));
    let boxes = detections
        .iter()
        .map(|d| (d.class_id, d.bbox))
        .chain(tracks.iter().map(|t| (t.class_id, t.bbox)));
    let mut out = Vec::new();
    for (class, b) in boxes {
        if is_person(class) {
            out.push(b);
        } else if is_ridden(class) {
            out.push(rider_box(b));
        }
    }
    out
}

/// Labels of vehicles people ride on (COCO and the Vietnamese vehicle models).
const TWO_WHEELERS: &[&str] = &["motorcycle", "motorbike", "bicycle", "bike", "scooter"];

/// Where the rider of a two-wheeler is: from 0.8 of the box's height above it down to its middle.
/// The detector often misses a rider it sees as part of the motorbike (issue 19: two riders were
/// left sharp in the demo's `wrong_way` evidence); the lower half, wheels and rear plate, stays
/// readable as evidence.
fn rider_box(b: [f32; 4]) -> [f32; 4] {
    let h = (b[3] - b[1]).max(0.0);
    [b[0], b[1] - 0.8 * h, b[2], b[1] + 0.5 * h]
}

/// Seconds after local midnight of a wall-clock time.
fn local_secs_of_day(t: SystemTime, utc_offset_minutes: i32) -> u32 {
    let unix = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (unix + i64::from(utc_offset_minutes) * 60).rem_euclid(86_400) as u32
}

/// The box grown by `pad` of its size on each side, clipped to the image.
pub fn crop_padded(image: &RgbImage, b: [f32; 4], pad: f32) -> RgbImage {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let grown = [
        b[0] - w * pad,
        b[1] - h * pad,
        b[2] + w * pad,
        b[3] + h * pad,
    ];
    match crate::inference::Rect::covering(grown, image.width(), image.height()) {
        Some(r) => image::imageops::crop_imm(image, r.x, r.y, r.w, r.h).to_image(),
        None => RgbImage::new(1, 1),
    }
}

/// Motorbikes and bicycles carrying a detected rider take the rider's score, so they are tracked
/// from the start like the vehicles they are ([`crate::track::riders`]).
fn carry_riders(detections: &mut [Detection], labels: &[Arc<str>]) {
    let Some(person) = labels.iter().position(|l| &**l == "person") else {
        return;
    };
    let bikes: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(&***l, "motorcycle" | "bicycle"))
        .map(|(i, _)| i)
        .collect();
    crate::track::riders::carry(detections, person, &bikes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ManifestSet;

    fn threshold(m: &mut ModelManifest) -> Option<f32> {
        m.decoder.score_threshold_mut().map(|t| *t)
    }

    #[test]
    fn riders_are_covered_even_when_only_their_motorbike_is_detected() {
        let labels = ["person", "car", "motorcycle"];
        let label_of = |c: usize| Arc::<str>::from(labels[c]);
        let det = |class_id, bbox| Detection {
            class_id,
            score: 0.9,
            bbox,
        };
        let detections = [
            det(0, [10.0, 10.0, 30.0, 60.0]),
            det(1, [100.0, 100.0, 200.0, 160.0]),
            det(2, [300.0, 200.0, 340.0, 260.0]),
        ];
        let boxes = person_boxes(&detections, &[], &label_of);
        assert_eq!(
            boxes.len(),
            2,
            "the person and the motorbike's rider, not the car"
        );
        assert_eq!(boxes[0], [10.0, 10.0, 30.0, 60.0]);
        let rider = boxes[1];
        // from well above the motorbike (where the head is) to its middle
        assert_eq!(rider, [300.0, 152.0, 340.0, 230.0]);
        // the lower half, where the rear plate is, stays outside
        assert!(rider[3] < 260.0 - 20.0);
    }

    #[test]
    fn detector_threshold_follows_the_trackers_low_score() {
        let set = ManifestSet::builtin().expect("built-in manifests");
        let yolox = set.require("yolox_nano_coco_416").expect("yolox manifest");
        assert_eq!(threshold(&mut yolox.clone()), Some(0.3));
        let mut lowered = detector_manifest(yolox, &TrackerConfig::default());
        assert_eq!(threshold(&mut lowered), Some(0.1));
        // Only the threshold changes: the file and its hash are the same model.
        assert_eq!(
            (&lowered.file, &lowered.sha256),
            (&yolox.file, &yolox.sha256)
        );
        // A tracker that ignores low scores does not raise the manifest's threshold.
        let strict = TrackerConfig {
            low_score: 0.45,
            ..TrackerConfig::default()
        };
        assert_eq!(threshold(&mut detector_manifest(yolox, &strict)), Some(0.3));
        // Models without a score threshold pass through.
        let ocr = set
            .require("vn_plate_ocr_9x37_64x128")
            .expect("ocr manifest");
        assert_eq!(detector_manifest(ocr, &TrackerConfig::default()), *ocr);
    }
}
