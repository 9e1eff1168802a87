//! Multi-object tracker: turns per-frame detections into tracks with stable ids, which the rules
//! engine (lines, zones, dwell, direction) and the per-track plate vote need.
//!
//! ByteTrack-class: every track is predicted to the frame's time by a constant-velocity Kalman
//! filter; high-score detections are matched first against all tracks (IoU, optimal assignment),
//! then low-score detections against the confirmed and lost tracks still unmatched, with a
//! stricter overlap, which keeps partly occluded objects alive without letting low-score noise
//! start tracks. Unlike ByteTrack, lost tracks take part in the second stage: a small edge
//! detector scores a car queued at a light anywhere between 0.3 and 0.6 from frame to frame, and
//! a close low-score box over the prediction is better evidence than none. Matching is class-aware
//! with families (the detector flips car/bus/truck on one vehicle). Lifecycle: tentative until
//! `min_hits` matches, confirmed, lost (predicted, re-associable) for up to `max_lost` seconds,
//! then ended.
//!
//! Pure and deterministic: time is the stream time passed to [`Tracker::update`], never a clock,
//! so variable frame rates and dropped frames are handled with real time deltas.

mod assign;
mod config;
mod kalman;
pub mod riders;

use std::time::Duration;

pub use config::{TrackerConfig, TrackerConfigError};

use crate::inference::Detection;
use assign::Assigner;
use kalman::BoxFilter;

/// Recent detections whose majority class a track reports.
const CLASS_WINDOW: usize = 15;
/// An unmatched detection overlapping a detection matched this frame (same family) by at least
/// this much is a second box on one object — class-aware NMS keeps a car box and a truck box on
/// the same vehicle — and starts no track.
const DUPLICATE_IOU: f32 = 0.7;

/// Where a track is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackState {
    /// Seen fewer than `min_hits` times; not reported and dropped at its first miss.
    Tentative,
    /// Matched at least `min_hits` times, and matched this frame.
    Confirmed,
    /// Confirmed before, not matched this frame; its box is the prediction.
    Lost,
}

/// One tracked object as seen at the current frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Track {
    /// Unique per tracker, from 1, never reused. Given when the track is confirmed, so reported
    /// ids have no gaps from tentative tracks that died.
    pub id: u64,
    /// The most frequent class among the track's recent detections (within its family).
    pub class_id: usize,
    /// Score of the last matched detection.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in frame pixels: the filtered box, or the prediction when not matched.
    pub bbox: [f32; 4],
    /// Velocity of the box centre in px/s.
    pub velocity: [f32; 2],
    /// `Confirmed` when matched this frame, `Lost` while only predicted.
    pub state: TrackState,
    /// Number of frames with a matched detection.
    pub hits: u32,
    /// Stream time of the first detection.
    pub first_seen: Duration,
    /// Stream time of the last matched detection.
    pub last_seen: Duration,
    /// Index of the detection matched this frame in the slice given to [`Tracker::update`].
    pub matched_detection: Option<usize>,
}

/// What one frame changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerUpdate {
    /// Confirmed tracks (state `Confirmed`) and lost ones still kept (state `Lost`), by id.
    pub tracks: Vec<Track>,
    /// Ids of confirmed tracks removed at this frame (lost for longer than `max_lost`).
    pub ended: Vec<u64>,
}

/// Internal track: the public view plus the filter and class votes.
#[derive(Debug, Clone)]
struct Slot {
    track: Track,
    filter: BoxFilter,
    /// Family representative: detections of another family never match.
    family: usize,
    classes: [usize; CLASS_WINDOW],
    class_count: usize,
}

impl Slot {
    /// Records a matched detection's class and re-elects the track's class: the majority of the
    /// window, ties going to the most recent.
    fn push_class(&mut self, class_id: usize) {
        self.classes[self.class_count % CLASS_WINDOW] = class_id;
        self.class_count += 1;
        let n = self.class_count.min(CLASS_WINDOW);
        let newest = (self.class_count - 1) % CLASS_WINDOW;
        let window = &self.classes[..n];
        let mut best = (0, class_id);
        for age in 0..n {
            let c = self.classes[(newest + CLASS_WINDOW - age) % CLASS_WINDOW];
            let count = window.iter().filter(|&&x| x == c).count();
            if count > best.0 {
                best = (count, c);
            }
        }
        self.track.class_id = best.1;
    }

    /// Tentative → confirmed once seen `min_hits` times; the id is given here.
    fn confirm_if_due(&mut self, min_hits: u32, next_id: &mut u64) {
        if self.track.state == TrackState::Tentative && self.track.hits >= min_hits {
            self.track.state = TrackState::Confirmed;
            self.track.id = *next_id;
            *next_id += 1;
        }
    }
}

/// Scratch buffers reused across frames so a warm tracker does not allocate in its inner loop.
#[derive(Debug, Default)]
struct Scratch {
    high: Vec<usize>,
    low: Vec<usize>,
    det_used: Vec<bool>,
    rows: Vec<usize>,
    gain: Vec<f32>,
    pairs: Vec<(usize, usize)>,
    predicted: Vec<[f32; 4]>,
    assigner: Assigner,
}

/// Live tracks one camera keeps at most (tentative and lost ones included). A frame full of
/// detections for many seconds (a detector gone wrong, a crowd at a low threshold) must not grow
/// the tracker without bound; confident detections beyond it start no track and are counted.
pub const MAX_TRACKS: usize = 1024;

/// A tracker's memory: bytes its tracks take, their bound, detections refused when full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerUse {
    pub bytes: u64,
    pub limit_bytes: u64,
    pub refused: u64,
}

/// The tracker for one camera stream.
#[derive(Debug)]
pub struct Tracker {
    cfg: TrackerConfig,
    /// Family representative per class id; `None` for classes not tracked.
    family_of: Vec<Option<usize>>,
    slots: Vec<Slot>,
    last_time: Option<Duration>,
    next_id: u64,
    created: u64,
    /// Detections that found the tracker full ([`MAX_TRACKS`]).
    refused: u64,
    scratch: Scratch,
}

impl Tracker {
    /// A tracker with no tracks. Call [`TrackerConfig::validate`] first on user-supplied settings.
    pub fn new(cfg: TrackerConfig) -> Self {
        let len = cfg.classes.iter().max().map_or(0, |m| m + 1);
        let mut family_of = vec![None; len];
        for &c in &cfg.classes {
            let family = cfg.families.iter().find(|f| f.contains(&c));
            // The smallest member stands for the family: the same for all members, never a
            // class outside it.
            family_of[c] = Some(family.and_then(|f| f.iter().copied().min()).unwrap_or(c));
        }
        Self {
            cfg,
            family_of,
            slots: Vec::new(),
            last_time: None,
            next_id: 1,
            created: 0,
            refused: 0,
            scratch: Scratch::default(),
        }
    }

    /// Tracks born so far, tentative ones included (a measure of fragmentation next to the number
    /// of confirmed ids).
    pub fn tracks_created(&self) -> u64 {
        self.created
    }

    /// Ids handed out so far (confirmed tracks).
    pub fn tracks_confirmed(&self) -> u64 {
        self.next_id - 1
    }

    /// Confident detections that started no track because the tracker was full.
    pub fn tracks_refused(&self) -> u64 {
        self.refused
    }

    /// Bytes the tracks take now, and at most ([`MAX_TRACKS`]).
    pub fn memory(&self) -> (u64, u64) {
        let slot = std::mem::size_of::<Slot>();
        (
            (self.slots.capacity() * slot) as u64,
            (MAX_TRACKS * slot) as u64,
        )
    }

    /// Memory, bound and refusals together (for `/metrics`).
    pub fn usage(&self) -> TrackerUse {
        let (bytes, limit_bytes) = self.memory();
        TrackerUse {
            bytes,
            limit_bytes,
            refused: self.refused,
        }
    }

    /// Advances to stream time `t` (monotonic; a time earlier than the previous frame is treated
    /// as the previous frame's time) and associates this frame's detections.
    pub fn update(&mut self, t: Duration, detections: &[Detection]) -> TrackerUpdate {
        let (t, dt) = match self.last_time {
            Some(prev) if t < prev => {
                tracing::warn!(
                    ?t,
                    ?prev,
                    "tracker: stream time went backwards; using the previous frame's time"
                );
                (prev, 0.0)
            }
            Some(prev) => (t, (t - prev).as_secs_f32()),
            None => (t, 0.0),
        };
        self.last_time = Some(t);
        let mut ended = Vec::new();

        // Tracks unseen for longer than max_lost end before matching, so an object that comes
        // back later gets a new id.
        let max_lost = self.cfg.max_lost;
        self.slots.retain(|s| {
            let keep = t.saturating_sub(s.track.last_seen) <= max_lost;
            if !keep && s.track.state != TrackState::Tentative {
                ended.push(s.track.id);
            }
            keep
        });
        for s in &mut self.slots {
            s.filter.predict(dt);
            s.track.matched_detection = None;
        }

        let sc = &mut self.scratch;
        sc.high.clear();
        sc.low.clear();
        sc.det_used.clear();
        sc.det_used.resize(detections.len(), false);
        for (i, d) in detections.iter().enumerate() {
            if self.family_of.get(d.class_id).copied().flatten().is_none()
                || !d.score.is_finite()
                || !d.bbox.iter().all(|x| x.is_finite())
            {
                continue;
            }
            if d.score >= self.cfg.high_score {
                sc.high.push(i);
            } else if d.score >= self.cfg.low_score {
                sc.low.push(i);
            }
        }
        sc.predicted.clear();
        sc.predicted
            .extend(self.slots.iter().map(|s| s.filter.bbox()));

        // Stage 1: high-score detections against every track.
        sc.rows.clear();
        sc.rows.extend(0..self.slots.len());
        self.associate(t, detections, Stage::High);
        // Stage 2: low-score detections against confirmed and lost tracks left unmatched.
        let sc = &mut self.scratch;
        sc.rows.clear();
        sc.rows.extend(
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.track.state != TrackState::Tentative && s.track.matched_detection.is_none()
                })
                .map(|(k, _)| k),
        );
        self.associate(t, detections, Stage::Low);

        // Unmatched: a tentative track dies, a confirmed one is lost.
        self.slots.retain_mut(|s| {
            if s.track.matched_detection.is_some() {
                return true;
            }
            match s.track.state {
                TrackState::Tentative => false,
                TrackState::Confirmed | TrackState::Lost => {
                    s.track.state = TrackState::Lost;
                    s.filter.freeze_size();
                    true
                }
            }
        });

        // Unmatched confident detections start tracks.
        for k in 0..self.scratch.high.len() {
            let i = self.scratch.high[k];
            let d = &detections[i];
            if self.scratch.det_used[i] || d.score < self.cfg.new_track_score {
                continue;
            }
            let Some(family) = self.family_of.get(d.class_id).copied().flatten() else {
                continue;
            };
            let duplicate = self.slots.iter().any(|s| {
                s.family == family
                    && s.track
                        .matched_detection
                        .is_some_and(|m| iou(&detections[m].bbox, &d.bbox) >= DUPLICATE_IOU)
            });
            if duplicate {
                continue;
            }
            if self.slots.len() >= MAX_TRACKS {
                self.refused += 1;
                continue;
            }
            self.created += 1;
            let filter = BoxFilter::new(d.bbox);
            let mut slot = Slot {
                track: Track {
                    id: 0,
                    class_id: d.class_id,
                    score: d.score,
                    bbox: filter.bbox(),
                    velocity: [0.0; 2],
                    state: TrackState::Tentative,
                    hits: 1,
                    first_seen: t,
                    last_seen: t,
                    matched_detection: Some(i),
                },
                filter,
                family,
                classes: [0; CLASS_WINDOW],
                class_count: 0,
            };
            slot.push_class(d.class_id);
            slot.confirm_if_due(self.cfg.min_hits, &mut self.next_id);
            self.slots.push(slot);
        }

        let mut tracks: Vec<Track> = self
            .slots
            .iter_mut()
            .filter(|s| s.track.state != TrackState::Tentative)
            .map(|s| {
                s.track.bbox = s.filter.bbox();
                s.track.velocity = s.filter.velocity();
                s.track.clone()
            })
            .collect();
        tracks.sort_unstable_by_key(|tr| tr.id);
        ended.sort_unstable();
        TrackerUpdate { tracks, ended }
    }

    /// End of stream: ends every confirmed track and returns their ids.
    pub fn finish(&mut self) -> Vec<u64> {
        let mut ended: Vec<u64> = self
            .slots
            .drain(..)
            .filter(|s| s.track.state != TrackState::Tentative)
            .map(|s| s.track.id)
            .collect();
        ended.sort_unstable();
        self.last_time = None;
        ended
    }

    /// Matches `scratch.rows` (slot indices) against the stage's unused detections and applies
    /// the matches.
    fn associate(&mut self, t: Duration, detections: &[Detection], stage: Stage) {
        let sc = &mut self.scratch;
        let (cols, min_iou) = match stage {
            Stage::High => (&sc.high, self.cfg.match_iou),
            Stage::Low => (&sc.low, self.cfg.low_match_iou),
        };
        let (nr, nc) = (sc.rows.len(), cols.len());
        if nr == 0 || nc == 0 {
            return;
        }
        sc.gain.clear();
        for &r in &sc.rows {
            let slot = &self.slots[r];
            let pb = sc.predicted[r];
            for &c in cols.iter() {
                let d = &detections[c];
                let same_family =
                    self.family_of.get(d.class_id).copied().flatten() == Some(slot.family);
                let allowed = same_family && !sc.det_used[c];
                let overlap = if allowed { iou(&pb, &d.bbox) } else { 0.0 };
                // Gain above zero marks a pair that may match; an IoU exactly at the gate does.
                sc.gain.push(if allowed && overlap >= min_iou {
                    overlap - min_iou + 1e-6
                } else {
                    0.0
                });
            }
        }
        sc.pairs.clear();
        sc.assigner.solve(nr, nc, &sc.gain, &mut sc.pairs);
        for p in 0..sc.pairs.len() {
            let (r, c) = sc.pairs[p];
            let (slot_ix, det_ix) = (sc.rows[r], cols[c]);
            sc.det_used[det_ix] = true;
            let d = &detections[det_ix];
            let slot = &mut self.slots[slot_ix];
            slot.filter.update(d.bbox);
            slot.track.hits += 1;
            slot.track.last_seen = t;
            slot.track.score = d.score;
            slot.track.matched_detection = Some(det_ix);
            slot.push_class(d.class_id);
            if slot.track.state == TrackState::Lost {
                slot.track.state = TrackState::Confirmed;
            }
            slot.confirm_if_due(self.cfg.min_hits, &mut self.next_id);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    High,
    Low,
}

/// Intersection over union of two corner boxes; 0 for empty boxes.
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    if inter <= 0.0 {
        return 0.0;
    }
    let area = |x: &[f32; 4]| (x[2] - x[0]).max(0.0) * (x[3] - x[1]).max(0.0);
    inter / (area(a) + area(b) - inter)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
