//! What the engine remembers about each track between frames: recent anchors, zone membership
//! with inertia, the side of each line with hysteresis, and a jitter-proof stationarity test.

use std::collections::VecDeque;
use std::ops::{Add, Sub};
use std::time::Duration;

use super::geometry::{P, anchor, in_polygon};

/// Seconds of anchor history kept per track (enough for every rule's look-back).
pub(super) const HISTORY_S: f64 = 10.0;

/// One observation of a track.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obs {
    pub t: f64,
    pub p: P,
    pub bbox: [f32; 4],
}

impl Obs {
    /// Box diagonal in pixels: the object's apparent size, which scales jitter.
    pub(crate) fn diag(&self) -> f64 {
        let w = f64::from(self.bbox[2] - self.bbox[0]);
        let h = f64::from(self.bbox[3] - self.bbox[1]);
        (w * w + h * h).sqrt()
    }
}

/// Membership of one track in one zone.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Membership {
    pub inside: bool,
    /// Consecutive frames the raw test disagreed with `inside`.
    streak: u32,
    /// When `inside` last changed.
    pub since: f64,
}

impl Membership {
    /// Feeds one frame's raw test; returns `Some(new_state)` when membership flips.
    pub(crate) fn feed(&mut self, raw: bool, t: f64, inertia: u32) -> Option<bool> {
        if raw == self.inside {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak >= inertia.max(1) {
            self.inside = raw;
            self.streak = 0;
            self.since = t;
            Some(raw)
        } else {
            None
        }
    }
}

/// Which side of a line a track has settled on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineSide {
    /// +1, -1, or 0 while not yet clear of the dead band.
    pub side: i8,
    /// Last anchor seen clear of the band on `side`.
    pub last: P,
    /// Crossings already counted, forward and backward: once per direction per track.
    pub counted: [bool; 2],
}

/// Whether an anchor has stayed put, however much the box jitters.
///
/// The reference point is the running mean of the anchors since the object stopped; a moving
/// object pulls away from its own mean (a slow car by half its travel), a jittering one does not.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Still {
    pub since: f64,
    mean: P,
    n: u32,
    /// While latched (an event is open) the reference stops following the anchor, so a slow
    /// creep away ends the event instead of dragging the reference along.
    latched: bool,
}

impl Still {
    /// Radius an anchor may wander and still be stationary: `fixed`, else 8 % of the box diagonal.
    pub(super) fn radius(fixed: Option<f64>, o: &Obs) -> f64 {
        fixed.unwrap_or_else(|| (0.08 * o.diag()).max(3.0))
    }

    /// Feeds one observation; returns the seconds stationary so far (0 when moving).
    pub(super) fn feed(&mut self, o: &Obs, radius: f64) -> f64 {
        let limit = if self.latched { 2.0 * radius } else { radius };
        if self.n == 0 || o.p.dist(self.mean) > limit {
            self.since = o.t;
            self.mean = o.p;
            self.n = 1;
            self.latched = false;
            return 0.0;
        }
        if !self.latched {
            self.n += 1;
            self.mean = self
                .mean
                .add(o.p.sub(self.mean).scale(1.0 / f64::from(self.n)));
        }
        o.t - self.since
    }

    pub(super) fn latch(&mut self, on: bool) {
        self.latched = on;
    }
}

/// A track as the engine sees it.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub id: u64,
    pub label: String,
    pub hist: VecDeque<Obs>,
    pub first_t: f64,
    /// Membership per zone, in config order.
    pub zones: Vec<Membership>,
    /// Side per line, in config order.
    pub lines: Vec<LineSide>,
    /// Ids this track had before an id switch, oldest first.
    pub previous_ids: Vec<u64>,
}

impl Track {
    pub(crate) fn new(id: u64, label: &str, t: f64, zones: usize, lines: usize) -> Self {
        Self {
            id,
            label: label.to_string(),
            hist: VecDeque::new(),
            first_t: t,
            zones: vec![Membership::default(); zones],
            lines: vec![LineSide::default(); lines],
            previous_ids: Vec::new(),
        }
    }

    pub(crate) fn last(&self) -> Option<&Obs> {
        self.hist.back()
    }

    pub(crate) fn push(&mut self, t: f64, bbox: [f32; 4]) -> Obs {
        let o = Obs {
            t,
            p: anchor(bbox),
            bbox,
        };
        self.hist.push_back(o);
        while self.hist.front().is_some_and(|f| t - f.t > HISTORY_S) {
            self.hist.pop_front();
        }
        o
    }

    /// Velocity in px/s from a least-squares fit over the last `window_s` seconds.
    pub(crate) fn velocity(&self, window_s: f64) -> Option<P> {
        let last = self.last()?;
        let pts: Vec<&Obs> = self
            .hist
            .iter()
            .filter(|o| last.t - o.t <= window_s + 1e-9)
            .collect();
        fit_velocity(pts.iter().map(|o| (o.t, o.p)))
    }

    /// Where the track should be at `t`, from its recent velocity.
    pub(crate) fn predict(&self, t: f64) -> Option<P> {
        let last = self.last()?;
        let v = self.velocity(0.5).unwrap_or_default();
        Some(last.p.add(v.scale((t - last.t).clamp(0.0, 2.0))))
    }
}

/// Least-squares slope of positions against time; `None` with fewer than 2 distinct times.
pub(super) fn fit_velocity(pts: impl Iterator<Item = (f64, P)>) -> Option<P> {
    let pts: Vec<(f64, P)> = pts.collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let mx = pts.iter().map(|p| p.1.x).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1.y).sum::<f64>() / n;
    let stt: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if stt < 1e-12 {
        return None;
    }
    let sx: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1.x - mx)).sum();
    let sy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1.y - my)).sum();
    Some(P::new(sx / stt, sy / stt))
}

/// Zone membership test on the anchor.
pub(super) fn anchor_in(poly: &[P], o: &Obs) -> bool {
    in_polygon(poly, o.p)
}

/// Seconds as `f64` from a stream time.
pub(super) fn secs(t: Duration) -> f64 {
    t.as_secs_f64()
}
