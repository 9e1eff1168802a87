//! Unusual-behaviour rules: zones, lines, wrong way, stopping, loitering, intrusion, crowding,
//! congestion, speed, sudden stops and red lights, turned into events with a new → update → end
//! lifecycle. Each kind is a row of the table in [`kinds`] and one file of behaviour there.
//!
//! The engine is a pure function of the tracks it is fed and the stream time (and, for signal
//! lamps only, the pixels of their zones): no clock, no I/O, so every rule is unit-tested with
//! made-up tracks. Conventions follow DESIGN.md: the anchor is the box's bottom-centre, zone
//! membership has an inertia in frames, a line is a segment plus a direction and counts each track
//! once per crossing, dwell is seconds, speeds are estimates.
//!
//! Lifecycle per rule: track rules (`zone`, `wrong_way`, `stopped_vehicle`, `loitering`,
//! `intrusion`, `speeding`, `sudden_stop`) open one event per track, send at most one `update`
//! every `update_every_s`, and end it when the condition clears, the track leaves or ends, the time
//! window closes or the stream ends. A `zone` rule's stay is `zone_enter` (new, update) then
//! `zone_exit` (end). Zone-wide rules (`overcrowding`, `congestion`, a several-vehicle
//! `sudden_stop`) have no track. A `line_crossing` is instantaneous: `new` and `end` in the same
//! frame, and so is a `red_light`. `line_count` is periodic: `new` at the first report, `update`
//! every `interval_s`, `end` at the end of the stream.
//!
//! Id switches: when a new track id appears where a track of the same kind of object vanished
//! moments before, it takes over that track's state and open events, so a tracker glitch neither
//! restarts a dwell timer nor counts a crossing twice (`previous_track_ids` in the details).

mod check;
pub mod config;
pub mod draw;
mod geometry;
pub mod kinds;
mod rule;
mod signal;
mod track;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::ops::Sub;
use std::time::Duration;

use serde::Serialize;

pub use check::{At, Problem, check_camera, parse_window};
pub use geometry::{Homography, P as Point2};
pub use kinds::{LABELS, RuleKind, VEHICLES};
pub use signal::Lamp;

pub use crate::events::{EventKind, Phase};
use config::CameraGeometry;
use geometry::P;
use rule::{Ctx, Rule};
use signal::Signal;
use track::{Obs, Track, secs};

/// One tracked object in one frame, as the tracker hands it over.
#[derive(Debug, Clone, Copy)]
pub struct TrackSample<'a> {
    pub track_id: u64,
    /// COCO label: person, bicycle, car, motorcycle, bus, truck.
    pub label: &'a str,
    /// `[x1, y1, x2, y2]` in frame pixels, tracker-filtered.
    pub bbox: [f32; 4],
    pub score: f32,
}

/// What a rule reports. The event builder adds the plate, evidence frames and ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEvent {
    pub rule_id: String,
    pub kind: EventKind,
    pub phase: Phase,
    /// The track the event is about; none for zone-wide and line-count events.
    pub track_id: Option<u64>,
    pub zone: Option<String>,
    pub line: Option<String>,
    /// Stream time of the frame that produced the event: the evidence frame.
    pub t: Duration,
    /// Rule-specific numbers: `dwell_s`, `speed_kmh` + `uncertainty_kmh` + `"estimate": true`,
    /// `count`, `direction`, per-class counts, `started_s` (stream time the condition began) …
    pub details: serde_json::Value,
    /// The track's label, for the event's object class.
    pub label: Option<String>,
    /// The track's box in this frame, for the evidence crop.
    pub bbox: Option<[f32; 4]>,
}

/// Why a camera's rules could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("camera `{camera}`: invalid rules config: {}", .problems.join("; "))]
    Invalid {
        camera: String,
        problems: Vec<String>,
    },
}

/// A zone as the engine uses it.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    pub id: String,
    pub poly: Vec<P>,
    pub classes: Vec<String>,
    pub inertia: u32,
    /// Arrow start and unit direction in pixels.
    pub direction: Option<(P, P)>,
    /// Arrow end points as configured (for the ground-plane direction).
    pub arrow: Option<(P, P)>,
}

/// A counting line as the engine uses it.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub id: String,
    pub a: P,
    pub b: P,
    pub hysteresis: f64,
    /// Side (+1 right of a→b, −1 left) that `forward` crossings go to.
    pub forward_side: i8,
    pub directed: bool,
}

impl Line {
    /// Signed distance from the line through a and b; positive on the right of a→b (y down).
    fn signed_dist(&self, p: P) -> f64 {
        let ab = self.b.sub(self.a);
        ab.cross(p.sub(self.a)) / ab.norm()
    }
}

/// The image-to-ground map with its stated accuracy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calib {
    pub h: Homography,
    pub rel_error: f64,
}

/// A crossing found this frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crossing {
    pub line: usize,
    pub track: u64,
    pub forward: bool,
}

/// Seconds a vanished track can be taken over by a new id.
const HANDOVER_S: f64 = 1.5;
/// Seconds without a sighting after which a track is dropped even if the tracker never ended it.
const STALE_S: f64 = 10.0;

/// Evaluates one camera's rules frame by frame.
pub struct RuleEngine {
    camera: String,
    zones: Vec<Zone>,
    lines: Vec<Line>,
    rules: Vec<Rule>,
    calib: Option<Calib>,
    /// The signal lamp of each zone (read only in zones a `red_light` rule watches).
    signals: Vec<Signal>,
    /// Zones whose pixels show a signal lamp.
    lamps: Vec<usize>,
    tracks: HashMap<u64, Track>,
    /// Old id → new id after an id switch, until the tracker ends the old id.
    merged: HashMap<u64, u64>,
    /// (stream time, local seconds after midnight) pairing, for time windows.
    clock: Option<(f64, u32)>,
    warned_no_clock: bool,
    last_t: f64,
}

impl RuleEngine {
    /// Builds the engine for one camera; refuses configs that `edge-agent check` refuses.
    /// `frame_size` is the decoded frame's size; a config written for another size is refused.
    pub fn new(camera: &CameraGeometry<'_>, frame_size: (u32, u32)) -> Result<Self, RulesError> {
        let mut problems: Vec<String> = check_camera(camera)
            .into_iter()
            .map(|p| format!("{}: {}", path_text(&p.at), p.message))
            .collect();
        if let Some([w, h]) = camera.frame_size
            && (w, h) != frame_size
        {
            problems.push(format!(
                "frame_size is [{w}, {h}] but the stream's frames are {}x{}",
                frame_size.0, frame_size.1
            ));
        }
        let invalid = |problems: Vec<String>| RulesError::Invalid {
            camera: camera.id.to_string(),
            problems,
        };
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let zones: Vec<Zone> = camera
            .zones
            .iter()
            .map(|z| {
                let arrow = z.direction.map(|[a, b]| (P::from_arr(a), P::from_arr(b)));
                Zone {
                    id: z.id.clone(),
                    poly: z.polygon.iter().map(|p| P::from_arr(*p)).collect(),
                    classes: z.classes.clone(),
                    inertia: z.inertia,
                    direction: arrow.and_then(|(a, b)| b.sub(a).unit().map(|u| (a, u))),
                    arrow,
                }
            })
            .collect();
        let lines: Vec<Line> = camera
            .lines
            .iter()
            .map(|l| {
                let (a, b) = (P::from_arr(l.points[0]), P::from_arr(l.points[1]));
                let forward_side = match l.direction {
                    Some([d0, d1]) => {
                        if b.sub(a).cross(P::from_arr(d1).sub(P::from_arr(d0))) >= 0.0 {
                            1
                        } else {
                            -1
                        }
                    }
                    None => 1,
                };
                Line {
                    id: l.id.clone(),
                    a,
                    b,
                    hysteresis: l.hysteresis_px,
                    forward_side,
                    directed: l.direction.is_some(),
                }
            })
            .collect();
        let calib = match &camera.calibration {
            Some(c) => Some(Calib {
                h: check::calibration_homography(c).map_err(|p| invalid(vec![p.message]))?,
                rel_error: c.error_pct / 100.0,
            }),
            None => None,
        };
        let mut rules = Vec::new();
        let mut lamps = Vec::new();
        for r in camera.rules {
            let find_zone = |id: &Option<String>| -> Result<Option<usize>, RulesError> {
                match id {
                    None => Ok(None),
                    Some(id) => zones
                        .iter()
                        .position(|z| &z.id == id)
                        .map(Some)
                        .ok_or_else(|| invalid(vec![format!("unknown zone `{id}`")])),
                }
            };
            let line = match &r.line {
                None => None,
                Some(id) => Some(
                    lines
                        .iter()
                        .position(|l| &l.id == id)
                        .ok_or_else(|| invalid(vec![format!("unknown line `{id}`")]))?,
                ),
            };
            let windows = r
                .active
                .iter()
                .map(|w| parse_window(w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(vec![e]))?;
            let signal = find_zone(&r.signal)?;
            lamps.extend(signal.filter(|s| !lamps.contains(s)));
            rules.push(Rule::new(r, find_zone(&r.zone)?, line, signal, windows));
        }
        Ok(Self {
            camera: camera.id.to_string(),
            signals: vec![Signal::default(); zones.len()],
            zones,
            lines,
            rules,
            calib,
            lamps,
            tracks: HashMap::new(),
            merged: HashMap::new(),
            clock: None,
            warned_no_clock: false,
            last_t: 0.0,
        })
    }

    /// Tells the engine the local wall-clock time (seconds after local midnight) at stream time
    /// `t`, for rules with `active` windows; later frames are timed from this pairing, so call
    /// it again whenever the wall clock is corrected. Until it is called, windowed rules stay
    /// armed (an alert reviewed by a human is safer than a missed one) and a warning is logged.
    pub fn set_local_time(&mut self, t: Duration, secs_of_day: u32) {
        self.clock = Some((secs(t), secs_of_day % 86_400));
    }

    /// Whether a rule watches a signal lamp, so [`Self::observe_frame`] wants the frames.
    pub fn watches_signals(&self) -> bool {
        !self.lamps.is_empty()
    }

    /// Reads the signal lamps from the frame at stream time `t` (RGB, `width` × `height`); call
    /// it before [`Self::update`] of the same frame. Returns what each watched zone shows.
    pub fn observe_frame(
        &mut self,
        t: Duration,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Vec<(String, Lamp)> {
        let ts = secs(t).max(self.last_t);
        let mut seen = Vec::with_capacity(self.lamps.len());
        for &z in &self.lamps {
            let (Some(zone), Some(signal)) = (self.zones.get(z), self.signals.get_mut(z)) else {
                continue;
            };
            let lamp = signal::read_lamp(rgb, width, height, &zone.poly);
            signal.feed(ts, lamp);
            seen.push((zone.id.clone(), lamp));
        }
        seen
    }

    fn local_time(&self, t: f64) -> Option<u32> {
        self.clock.map(|(t0, s0)| {
            let dt = (t - t0).rem_euclid(86_400.0) as u32;
            (s0 + dt) % 86_400
        })
    }

    /// Feeds one frame. `t` is the frame's stream time (monotonic); `tracks` are the tracks
    /// visible in it; `ended` are the ids the tracker removed in this frame.
    pub fn update(
        &mut self,
        t: Duration,
        tracks: &[TrackSample<'_>],
        ended: &[u64],
    ) -> Vec<RuleEvent> {
        let ts = secs(t).max(self.last_t);
        self.last_t = ts;
        let mut renamed = Vec::new();
        let visible: HashSet<u64> = tracks.iter().map(|s| s.track_id).collect();
        // A reappearing old id is a new object, not the track it was merged into.
        for s in tracks {
            self.merged.remove(&s.track_id);
        }
        for s in tracks {
            if self.tracks.contains_key(&s.track_id) {
                continue;
            }
            if let Some(old) = self.handover_candidate(s, ts, &visible)
                && let Some(mut tr) = self.tracks.remove(&old)
            {
                tracing::debug!(camera = %self.camera, old, new = s.track_id, "id switch: track state handed over");
                tr.previous_ids.push(old);
                tr.id = s.track_id;
                self.tracks.insert(s.track_id, tr);
                self.merged.insert(old, s.track_id);
                renamed.push((old, s.track_id));
            }
        }
        let mut removed = Vec::new();
        for id in ended {
            if visible.contains(id) {
                continue;
            }
            if self.merged.remove(id).is_some() {
                continue;
            }
            if let Some(tr) = self.tracks.remove(id) {
                removed.push(tr);
            }
        }
        let stale: Vec<u64> = self
            .tracks
            .iter()
            .filter(|(_, tr)| tr.last().is_some_and(|o| ts - o.t > STALE_S))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(tr) = self.tracks.remove(&id) {
                tracing::debug!(camera = %self.camera, track = id, "track not seen for {STALE_S} s: dropped");
                removed.push(tr);
            }
        }

        let mut crossings = Vec::new();
        for s in tracks {
            let (nz, nl) = (self.zones.len(), self.lines.len());
            let tr = self
                .tracks
                .entry(s.track_id)
                .or_insert_with(|| Track::new(s.track_id, s.label, ts, nz, nl));
            tr.label = s.label.to_string();
            let o = tr.push(ts, s.bbox);
            for (zi, z) in self.zones.iter().enumerate() {
                let eligible = z.classes.is_empty() || z.classes.iter().any(|c| c == s.label);
                let raw = eligible && track::anchor_in(&z.poly, &o);
                tr.zones[zi].feed(raw, ts, z.inertia);
            }
            for (li, l) in self.lines.iter().enumerate() {
                if let Some(forward) = line_step(l, &mut tr.lines[li], &o) {
                    crossings.push(Crossing {
                        line: li,
                        track: s.track_id,
                        forward,
                    });
                }
            }
        }

        let local = self.local_time(ts);
        let any_windows = self.rules.iter().any(|r| !r.windows.is_empty());
        if any_windows && local.is_none() && !self.warned_no_clock {
            self.warned_no_clock = true;
            tracing::warn!(camera = %self.camera, "rules with time windows but no local time given: they stay armed");
        }
        let ctx = Ctx {
            t: ts,
            td: t,
            tracks: &self.tracks,
            visible: &visible,
            crossings: &crossings,
            removed: &removed,
            renamed: &renamed,
            zones: &self.zones,
            lines: &self.lines,
            signals: &self.signals,
            calib: self.calib.as_ref(),
            local,
        };
        let mut out = Vec::new();
        for r in &mut self.rules {
            r.step(&ctx, &mut out);
        }
        out
    }

    /// The stream broke and came back (a reconnect): every track is forgotten and the events of
    /// single tracks end, so a vehicle seen before the gap and one seen after are never joined
    /// (a looped clip's seam raised `wrong_way` without this).
    pub fn discontinuity(&mut self, t: Duration) -> Vec<RuleEvent> {
        let ts = secs(t).max(self.last_t);
        let mut out = Vec::new();
        for r in &mut self.rules {
            r.discontinuity(ts, t, &self.tracks, &self.zones, &self.lines, &mut out);
        }
        self.tracks.clear();
        self.merged.clear();
        out
    }

    /// Ends every open event at the end of the stream (with final line counts).
    pub fn finish(&mut self, t: Duration) -> Vec<RuleEvent> {
        let ts = secs(t).max(self.last_t);
        let mut out = Vec::new();
        for r in &mut self.rules {
            r.finish(ts, t, &self.tracks, &self.zones, &self.lines, &mut out);
        }
        out
    }

    /// A vanished track (not visible now, seen within [`HANDOVER_S`]) of the same kind of object
    /// close to where the new one appears.
    fn handover_candidate(
        &self,
        s: &TrackSample<'_>,
        t: f64,
        visible: &HashSet<u64>,
    ) -> Option<u64> {
        let o = Obs {
            t,
            p: geometry::anchor(s.bbox),
            bbox: s.bbox,
        };
        self.tracks
            .values()
            .filter(|tr| !visible.contains(&tr.id) && same_kind(&tr.label, s.label))
            .filter_map(|tr| {
                let last = tr.last()?;
                if last.t >= t || t - last.t > HANDOVER_S {
                    return None;
                }
                let d = tr.predict(t)?.dist(o.p);
                let reach = (0.5 * last.diag().min(o.diag())).max(15.0);
                (d <= reach).then_some((tr.id, d))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id)
    }
}

/// Labels a detector confuses for one object (car/truck/bus, bicycle/motorcycle), never a person
/// with the motorbike they ride.
fn same_kind(a: &str, b: &str) -> bool {
    let group = |l: &str| match l {
        "car" | "truck" | "bus" => 1,
        "motorcycle" | "bicycle" => 2,
        "person" => 3,
        _ => 0,
    };
    a == b || (group(a) != 0 && group(a) == group(b))
}

/// Advances a track's side of a line; `Some(forward)` when this frame completes a crossing that
/// has not been counted for the track in that direction yet.
fn line_step(l: &Line, ls: &mut track::LineSide, o: &Obs) -> Option<bool> {
    let d = l.signed_dist(o.p);
    let s: i8 = if d > l.hysteresis {
        1
    } else if d < -l.hysteresis {
        -1
    } else {
        return None;
    };
    if ls.side == 0 || ls.side == s {
        ls.side = s;
        ls.last = o.p;
        return None;
    }
    let crossed = geometry::segments_intersect(ls.last, o.p, l.a, l.b);
    ls.side = s;
    ls.last = o.p;
    if !crossed {
        return None;
    }
    let forward = s == l.forward_side;
    let slot = usize::from(!forward);
    if ls.counted[slot] {
        return None;
    }
    ls.counted[slot] = true;
    Some(forward)
}

fn path_text(at: &[At]) -> String {
    let mut s = String::new();
    for a in at {
        match a {
            At::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            At::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}
