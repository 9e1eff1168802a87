//! One configured rule and its state: per-track conditions, zone-wide counts, line tallies, and
//! the open events whose lifecycle it drives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Add, Sub};
use std::time::Duration;

use serde_json::{Value, json};

use super::check::{Distance, Params, Speed, Window, params, rule_classes};
use super::geometry::P;
use super::track::{Still, Track, fit_velocity};
use super::{Calib, Crossing, Line, Phase, RuleEvent, RuleKind, Zone};
use crate::config::{RuleConfig, RuleKindConfig};

/// Seconds a vehicle must be stationary to count as queued (congestion).
const QUEUE_STILL_S: f64 = 2.0;
/// Tracks unseen for longer are left out of zone counts even before the tracker ends them.
const RECENT_S: f64 = 1.0;
/// Seconds of standstill that confirm a sudden stop.
const STOP_CONFIRM_S: f64 = 0.6;
/// Seconds of track history a speed is fitted over.
const SPEED_WINDOW_S: f64 = 1.0;
/// Seconds between two steps of wrong_way's steadiness test: long enough that box jitter does not
/// swamp a slow vehicle's motion at any frame rate.
const STEP_S: f64 = 0.2;
/// Seconds of history a sudden stop's approach speed is fitted over.
const APPROACH_WINDOW_S: f64 = 0.5;

/// What the engine knows in the current frame.
pub(crate) struct Ctx<'a> {
    pub t: f64,
    pub td: Duration,
    pub tracks: &'a HashMap<u64, Track>,
    pub visible: &'a HashSet<u64>,
    pub crossings: &'a [Crossing],
    pub removed: &'a [Track],
    pub renamed: &'a [(u64, u64)],
    pub zones: &'a [Zone],
    pub lines: &'a [Line],
    pub calib: Option<&'a Calib>,
    pub local: Option<u32>,
}

impl Ctx<'_> {
    /// Visible tracks in id order, so events come out in a stable order.
    fn visible_tracks(&self) -> Vec<&Track> {
        let mut ids: Vec<u64> = self.visible.iter().copied().collect();
        ids.sort_unstable();
        ids.iter().filter_map(|id| self.tracks.get(id)).collect()
    }
}

/// An event that has been opened and not yet ended.
#[derive(Debug, Clone)]
struct Open {
    started: f64,
    last_update: f64,
    details: Value,
}

/// Per-track state a rule keeps while the track is in its scope.
#[derive(Debug, Clone, Default)]
struct PerTrack {
    still: Still,
    /// Furthest point along the lane reached (wrong_way): (t, along, across).
    peak: Option<(f64, f64, f64)>,
    /// Steps of [`STEP_S`] since the peak, and how many of them moved backwards (wrong_way).
    steps: u32,
    back_steps: u32,
    /// Position along the lane and time at the last step.
    prev_along: f64,
    prev_t: f64,
    over: u32,
    under: u32,
    max_speed: f64,
    /// Last time the track moved at least the sudden-stop speed, and that speed.
    moving: Option<(f64, f64)>,
    fired: bool,
    queued: bool,
}

pub(crate) struct Rule {
    pub id: String,
    kind: RuleKindConfig,
    zone: Option<usize>,
    line: Option<usize>,
    classes: Vec<String>,
    pub windows: Vec<Window>,
    p: Params,
    /// Open events by track (None = zone-wide or line-wide).
    open: HashMap<Option<u64>, Open>,
    per: HashMap<u64, PerTrack>,
    above_since: Option<f64>,
    below_since: Option<f64>,
    max_count: usize,
    counts: [BTreeMap<String, u64>; 2],
    totals: [BTreeMap<String, u64>; 2],
    period_start: Option<f64>,
    reports: u32,
    stops: Vec<(f64, u64)>,
    was_active: bool,
}

fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

impl Rule {
    pub fn new(
        r: &RuleConfig,
        zone: Option<usize>,
        line: Option<usize>,
        windows: Vec<Window>,
    ) -> Self {
        Self {
            id: r.id.clone(),
            kind: r.kind,
            zone,
            line,
            classes: rule_classes(r),
            windows,
            p: params(r),
            open: HashMap::new(),
            per: HashMap::new(),
            above_since: None,
            below_since: None,
            max_count: 0,
            counts: Default::default(),
            totals: Default::default(),
            period_start: None,
            reports: 0,
            stops: Vec::new(),
            was_active: false,
        }
    }

    fn event_kind(&self, phase: Phase) -> RuleKind {
        use RuleKindConfig as K;
        match self.kind {
            K::Zone if phase == Phase::End => RuleKind::ZoneExit,
            K::Zone => RuleKind::ZoneEnter,
            K::LineCrossing => RuleKind::LineCrossing,
            K::LineCount => RuleKind::LineCount,
            K::WrongWay => RuleKind::WrongWay,
            K::StoppedVehicle => RuleKind::StoppedVehicle,
            K::Loitering => RuleKind::Loitering,
            K::Intrusion => RuleKind::Intrusion,
            K::Overcrowding => RuleKind::Overcrowding,
            K::Congestion => RuleKind::Congestion,
            K::Speeding => RuleKind::Speeding,
            K::SuddenStop => RuleKind::SuddenStop,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        out: &mut Vec<RuleEvent>,
        phase: Phase,
        td: Duration,
        track: Option<&Track>,
        mut details: Value,
        zones: &[Zone],
        lines: &[Line],
    ) {
        if let (Some(tr), Some(obj)) = (track, details.as_object_mut()) {
            obj.entry("class").or_insert_with(|| json!(tr.label));
            if !tr.previous_ids.is_empty() {
                obj.insert("previous_track_ids".into(), json!(tr.previous_ids));
            }
        }
        out.push(RuleEvent {
            rule_id: self.id.clone(),
            kind: self.event_kind(phase),
            phase,
            track_id: track.map(|t| t.id),
            zone: self.zone.and_then(|z| zones.get(z)).map(|z| z.id.clone()),
            line: self.line.and_then(|l| lines.get(l)).map(|l| l.id.clone()),
            t: td,
            details,
            label: track.map(|t| t.label.clone()),
            bbox: track.and_then(|t| t.last()).map(|o| o.bbox),
        });
    }

    /// Opens the event of `key` or, rate-limited, updates it.
    fn raise(
        &mut self,
        ctx: &Ctx<'_>,
        out: &mut Vec<RuleEvent>,
        track: Option<&Track>,
        details: Value,
    ) {
        let key = track.map(|t| t.id);
        let phase = match self.open.get_mut(&key) {
            None => {
                self.open.insert(
                    key,
                    Open {
                        started: ctx.t,
                        last_update: ctx.t,
                        details: details.clone(),
                    },
                );
                Phase::New
            }
            Some(o) => {
                o.details = details.clone();
                if ctx.t - o.last_update + 1e-9 < self.p.update_every_s {
                    return;
                }
                o.last_update = ctx.t;
                Phase::Update
            }
        };
        self.emit(out, phase, ctx.td, track, details, ctx.zones, ctx.lines);
    }

    /// Ends the event of `key` if one is open.
    #[allow(clippy::too_many_arguments)]
    fn close(
        &mut self,
        t: f64,
        td: Duration,
        out: &mut Vec<RuleEvent>,
        key: Option<u64>,
        track: Option<&Track>,
        reason: &str,
        zones: &[Zone],
        lines: &[Line],
    ) {
        if let Some(o) = self.open.remove(&key) {
            let mut details = o.details;
            if let Some(obj) = details.as_object_mut() {
                obj.insert("reason".into(), json!(reason));
                obj.insert("duration_s".into(), json!(round(t - o.started, 2)));
            }
            self.emit(out, Phase::End, td, track, details, zones, lines);
        }
    }

    /// Whether `tr` is one of this rule's classes inside its zone. A track of its classes that has
    /// left the zone loses its state here, and its open event ends with reason `left_zone`.
    fn in_scope(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>, tr: &Track) -> bool {
        if !self.class_ok(tr) {
            return false;
        }
        if !self.in_zone(tr) {
            self.per.remove(&tr.id);
            self.end_event(ctx, out, Some(tr), "left_zone");
            return false;
        }
        true
    }

    /// Ends the open event of `track` (or the rule's track-less event, for `None`) at this frame.
    fn end_event(
        &mut self,
        ctx: &Ctx<'_>,
        out: &mut Vec<RuleEvent>,
        track: Option<&Track>,
        reason: &str,
    ) {
        let key = track.map(|t| t.id);
        self.close(ctx.t, ctx.td, out, key, track, reason, ctx.zones, ctx.lines);
    }

    fn class_ok(&self, tr: &Track) -> bool {
        self.classes.contains(&tr.label)
    }

    fn in_zone(&self, tr: &Track) -> bool {
        self.zone
            .is_none_or(|z| tr.zones.get(z).is_some_and(|m| m.inside))
    }

    fn active(&self, local: Option<u32>) -> bool {
        self.windows.is_empty() || local.is_none_or(|s| self.windows.iter().any(|w| w.contains(s)))
    }

    pub fn step(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for &(old, new) in ctx.renamed {
            if let Some(p) = self.per.remove(&old) {
                self.per.insert(new, p);
            }
            if let Some(o) = self.open.remove(&Some(old)) {
                self.open.insert(Some(new), o);
            }
            for s in &mut self.stops {
                if s.1 == old {
                    s.1 = new;
                }
            }
        }
        if !self.active(ctx.local) {
            if self.was_active {
                self.end_all(
                    ctx.t,
                    ctx.td,
                    ctx.tracks,
                    ctx.zones,
                    ctx.lines,
                    "window_closed",
                    out,
                    |_| true,
                );
                self.per.clear();
                self.stops.clear();
                self.above_since = None;
                self.below_since = None;
            }
            self.was_active = false;
            return;
        }
        self.was_active = true;
        for tr in ctx.removed {
            self.per.remove(&tr.id);
            self.end_event(ctx, out, Some(tr), "track_ended");
        }
        use RuleKindConfig as K;
        match self.kind {
            K::Zone | K::Loitering | K::Intrusion => self.dwell(ctx, out),
            K::LineCrossing => self.line_crossing(ctx, out),
            K::LineCount => self.line_count(ctx, out),
            K::WrongWay => self.wrong_way(ctx, out),
            K::StoppedVehicle => self.stopped(ctx, out),
            K::Overcrowding | K::Congestion => self.crowd(ctx, out),
            K::Speeding => self.speeding(ctx, out),
            K::SuddenStop => self.sudden_stop(ctx, out),
        }
        if matches!(self.kind, K::SuddenStop) {
            self.incident(ctx, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn end_all(
        &mut self,
        t: f64,
        td: Duration,
        tracks: &HashMap<u64, Track>,
        zones: &[Zone],
        lines: &[Line],
        reason: &str,
        out: &mut Vec<RuleEvent>,
        which: impl Fn(&Option<u64>) -> bool,
    ) {
        let mut keys: Vec<Option<u64>> = self.open.keys().copied().filter(which).collect();
        keys.sort_unstable();
        for key in keys {
            let tr = key.and_then(|id| tracks.get(&id));
            self.close(t, td, out, key, tr, reason, zones, lines);
        }
    }

    /// The stream broke (reconnect): events of single tracks end with reason `stream_gap` and
    /// per-track state is forgotten, so no motion is inferred across the gap; zone- and line-wide
    /// events and line counts go on.
    pub fn discontinuity(
        &mut self,
        t: f64,
        td: Duration,
        tracks: &HashMap<u64, Track>,
        zones: &[Zone],
        lines: &[Line],
        out: &mut Vec<RuleEvent>,
    ) {
        self.end_all(
            t,
            td,
            tracks,
            zones,
            lines,
            "stream_gap",
            out,
            Option::is_some,
        );
        self.per.clear();
    }

    pub fn finish(
        &mut self,
        t: f64,
        td: Duration,
        tracks: &HashMap<u64, Track>,
        zones: &[Zone],
        lines: &[Line],
        out: &mut Vec<RuleEvent>,
    ) {
        if self.kind == RuleKindConfig::LineCount && self.period_start.is_some() {
            let details = self.count_details(t);
            let fresh = !self.open.contains_key(&None);
            let o = self.open.entry(None).or_insert(Open {
                started: t,
                last_update: t,
                details: Value::Null,
            });
            o.details = details.clone();
            if fresh {
                self.emit(out, Phase::New, td, None, details, zones, lines);
            }
            // A second finish reports nothing more.
            self.period_start = None;
        }
        self.end_all(t, td, tracks, zones, lines, "stream_end", out, |_| true);
    }

    /// zone, loitering, intrusion: a track of the rule's classes inside the zone for `dwell_s`.
    fn dwell(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let need = if self.kind == RuleKindConfig::Zone {
            0.0
        } else {
            self.p.dwell_s
        };
        for tr in ctx.visible_tracks() {
            if !self.class_ok(tr) {
                continue;
            }
            let open = self.open.contains_key(&Some(tr.id));
            if self.in_zone(tr) {
                let since = self.zone.map_or(tr.first_t, |z| tr.zones[z].since);
                let dwell = ctx.t - since;
                if dwell + 1e-9 >= need {
                    let d = json!({"dwell_s": round(dwell, 2), "started_s": round(since, 3)});
                    self.raise(ctx, out, Some(tr), d);
                }
            } else if open {
                self.end_event(ctx, out, Some(tr), "left_zone");
            }
        }
    }

    fn line_crossing(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let Some(li) = self.line else { return };
        let directed = ctx.lines.get(li).is_some_and(|l| l.directed);
        for c in ctx.crossings.iter().filter(|c| c.line == li) {
            let Some(tr) = ctx.tracks.get(&c.track) else {
                continue;
            };
            if !self.class_ok(tr) || (directed && !c.forward) {
                continue;
            }
            let d = json!({"direction": if c.forward { "forward" } else { "backward" }});
            self.emit(
                out,
                Phase::New,
                ctx.td,
                Some(tr),
                d.clone(),
                ctx.zones,
                ctx.lines,
            );
            self.emit(out, Phase::End, ctx.td, Some(tr), d, ctx.zones, ctx.lines);
        }
    }

    fn count_details(&self, t: f64) -> Value {
        let start = self.period_start.unwrap_or(t);
        json!({
            "interval_s": self.p.interval_s,
            "period_s": round(t - start, 3),
            "forward": self.counts[0],
            "backward": self.counts[1],
            "total_forward": self.totals[0],
            "total_backward": self.totals[1],
        })
    }

    fn line_count(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let Some(li) = self.line else { return };
        let start = *self.period_start.get_or_insert(ctx.t);
        for c in ctx.crossings.iter().filter(|c| c.line == li) {
            let Some(tr) = ctx.tracks.get(&c.track) else {
                continue;
            };
            if !self.class_ok(tr) {
                continue;
            }
            let slot = usize::from(!c.forward);
            *self.counts[slot].entry(tr.label.clone()).or_default() += 1;
            *self.totals[slot].entry(tr.label.clone()).or_default() += 1;
        }
        if ctx.t - start + 1e-9 >= self.p.interval_s {
            let details = self.count_details(ctx.t);
            let phase = if self.reports == 0 {
                Phase::New
            } else {
                Phase::Update
            };
            self.reports += 1;
            let o = self.open.entry(None).or_insert(Open {
                started: ctx.t,
                last_update: ctx.t,
                details: Value::Null,
            });
            o.details = details.clone();
            o.last_update = ctx.t;
            self.emit(out, phase, ctx.td, None, details, ctx.zones, ctx.lines);
            self.counts = Default::default();
            self.period_start = Some(ctx.t);
        }
    }

    /// Position along and across the lane direction, in pixels or ground metres.
    fn along(&self, ctx: &Ctx<'_>, p: P) -> Option<(f64, f64)> {
        let z = ctx.zones.get(self.zone?)?;
        let (origin, u) = z.direction?;
        let (d, u) = match self.p.min_distance {
            Distance::Px(_) => (p.sub(origin), u),
            Distance::M(_) => {
                let c = ctx.calib?;
                let (a, b) = z.arrow?;
                let (ga, gb) = (c.h.map(a)?, c.h.map(b)?);
                (c.h.map(p)?.sub(ga), gb.sub(ga).unit()?)
            }
        };
        Some((d.dot(u), u.cross(d)))
    }

    /// wrong_way: since its furthest point along the lane, the track went back at least the
    /// distance, for at least the duration, steadily (most 0.2 s steps went back: a box that
    /// jumps once when occluded does not count) and mostly along the lane axis (a car crossing
    /// the lane at an angle does not count).
    fn wrong_way(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let (need, unit) = match self.p.min_distance {
            Distance::Px(d) => (d, "distance_px"),
            Distance::M(d) => (d, "distance_m"),
        };
        // Jitter below this is neither forward nor backward.
        let step_eps = match self.p.min_distance {
            Distance::Px(_) => 0.5,
            Distance::M(_) => 0.05,
        };
        for tr in ctx.visible_tracks() {
            if !self.in_scope(ctx, out, tr) {
                continue;
            }
            let Some(o) = tr.last() else { continue };
            let Some((s, w)) = self.along(ctx, o.p) else {
                continue;
            };
            let st = self.per.entry(tr.id).or_default();
            let Some((pt, ps, pw)) = st.peak.filter(|p| s <= p.1) else {
                st.peak = Some((ctx.t, s, w));
                st.steps = 0;
                st.back_steps = 0;
                st.prev_along = s;
                st.prev_t = ctx.t;
                continue;
            };
            if ctx.t - st.prev_t + 1e-9 >= STEP_S {
                st.steps += 1;
                if s < st.prev_along - step_eps {
                    st.back_steps += 1;
                }
                st.prev_along = s;
                st.prev_t = ctx.t;
            }
            let steady = 2 * st.back_steps >= st.steps;
            let (back, across, dur) = (ps - s, (w - pw).abs(), ctx.t - pt);
            let fire =
                back >= need && back >= across && steady && dur + 1e-9 >= self.p.min_duration_s;
            if fire || self.open.contains_key(&Some(tr.id)) {
                let d = json!({unit: round(back, 2), "duration_s": round(dur, 2), "started_s": round(pt, 3)});
                self.raise(ctx, out, Some(tr), d);
            }
        }
    }

    fn stopped(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for tr in ctx.visible_tracks() {
            if !self.in_scope(ctx, out, tr) {
                continue;
            }
            let Some(o) = tr.last() else { continue };
            let radius = Still::radius(self.p.still_radius_px, o);
            let st = self.per.entry(tr.id).or_default();
            let still_s = st.still.feed(o, radius);
            let since = st.still.since;
            let open = self.open.contains_key(&Some(tr.id));
            if still_s + 1e-9 >= self.p.dwell_s {
                if let Some(st) = self.per.get_mut(&tr.id) {
                    st.still.latch(true);
                }
                let d = json!({
                    "dwell_s": round(still_s, 2),
                    "started_s": round(since, 3),
                    "no_stopping_zone": self.zone.is_some(),
                });
                self.raise(ctx, out, Some(tr), d);
            } else if open {
                self.end_event(ctx, out, Some(tr), "moved");
            }
        }
    }

    /// overcrowding (members) and congestion (queued vehicles): a count held for `min_duration_s`.
    fn crowd(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let congestion = self.kind == RuleKindConfig::Congestion;
        if congestion {
            for tr in ctx.visible_tracks() {
                if !(self.class_ok(tr) && self.in_zone(tr)) {
                    self.per.remove(&tr.id);
                    continue;
                }
                let Some(o) = tr.last() else { continue };
                let radius = Still::radius(self.p.still_radius_px, o);
                let st = self.per.entry(tr.id).or_default();
                st.queued = st.still.feed(o, radius) >= QUEUE_STILL_S;
            }
        }
        let mut ids: Vec<u64> = ctx
            .tracks
            .values()
            .filter(|tr| self.class_ok(tr) && self.in_zone(tr))
            .filter(|tr| tr.last().is_some_and(|o| ctx.t - o.t <= RECENT_S))
            .filter(|tr| !congestion || self.per.get(&tr.id).is_some_and(|p| p.queued))
            .map(|tr| tr.id)
            .collect();
        ids.sort_unstable();
        let n = ids.len();
        let min = self.p.min_count as usize;
        let hold = self.p.min_duration_s;
        let open = self.open.contains_key(&None);
        if n >= min {
            self.below_since = None;
            let since = *self.above_since.get_or_insert(ctx.t);
            if open || ctx.t - since + 1e-9 >= hold {
                self.max_count = if open { self.max_count.max(n) } else { n };
                let mut d = json!({
                    "count": n,
                    "min_count": min,
                    "max_count": self.max_count,
                    "track_ids": ids,
                    "started_s": round(since, 3),
                });
                if congestion {
                    self.queue_length(ctx, &ids, &mut d);
                }
                self.raise(ctx, out, None, d);
            }
        } else {
            self.above_since = None;
            if open {
                let since = *self.below_since.get_or_insert(ctx.t);
                if ctx.t - since + 1e-9 >= hold {
                    self.below_since = None;
                    self.end_event(ctx, out, None, "cleared");
                }
            }
        }
    }

    /// Queue length: spread of the queued anchors along the lane direction (or the longest
    /// distance between them when the zone has no direction), in pixels and, when calibrated,
    /// metres.
    fn queue_length(&self, ctx: &Ctx<'_>, ids: &[u64], d: &mut Value) {
        let pts: Vec<P> = ids
            .iter()
            .filter_map(|id| ctx.tracks.get(id)?.last().map(|o| o.p))
            .collect();
        let dir = self
            .zone
            .and_then(|z| ctx.zones.get(z)?.direction)
            .map(|(_, u)| u);
        let spread = |pts: &[P], dir: Option<P>| -> f64 {
            match dir {
                Some(u) => {
                    let s: Vec<f64> = pts.iter().map(|p| p.dot(u)).collect();
                    let max = s.iter().copied().fold(f64::MIN, f64::max);
                    let min = s.iter().copied().fold(f64::MAX, f64::min);
                    if s.is_empty() { 0.0 } else { max - min }
                }
                None => pts
                    .iter()
                    .flat_map(|a| pts.iter().map(move |b| a.dist(*b)))
                    .fold(0.0, f64::max),
            }
        };
        if let Some(obj) = d.as_object_mut() {
            obj.insert("queue_length_px".into(), json!(round(spread(&pts, dir), 1)));
            if let Some(c) = ctx.calib {
                let g: Option<Vec<P>> = pts.iter().map(|p| c.h.map(*p)).collect();
                if let Some(g) = g {
                    obj.insert("queue_length_m".into(), json!(round(spread(&g, None), 1)));
                }
            }
        }
    }

    fn speeding(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let Some(c) = ctx.calib else { return };
        for tr in ctx.visible_tracks() {
            if !self.in_scope(ctx, out, tr) {
                continue;
            }
            let Some((v, sigma)) = ground_speed(tr, c, SPEED_WINDOW_S) else {
                continue;
            };
            let (kmh, unc) = (v * 3.6, 2.0 * sigma * 3.6);
            let st = self.per.entry(tr.id).or_default();
            if kmh > self.p.limit_kmh {
                st.over += 1;
                st.under = 0;
            } else {
                st.under += 1;
                st.over = 0;
            }
            let open = self.open.contains_key(&Some(tr.id));
            let (over, under) = (st.over, st.under);
            if open || over >= self.p.min_frames {
                st.max_speed = if open { st.max_speed.max(kmh) } else { kmh };
            }
            let max_speed = st.max_speed;
            if open && under >= self.p.min_frames {
                self.end_event(ctx, out, Some(tr), "below_limit");
            } else if open || over >= self.p.min_frames {
                let d = json!({
                    "speed_kmh": round(kmh, 1),
                    "uncertainty_kmh": round(unc, 1),
                    "max_speed_kmh": round(max_speed, 1),
                    "limit_kmh": self.p.limit_kmh,
                    "estimate": true,
                });
                self.raise(ctx, out, Some(tr), d);
            }
        }
    }

    fn sudden_stop(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let (min_speed, unit) = match self.p.min_speed {
            Speed::PxPerS(v) => (v, "from_speed_px_s"),
            Speed::Kmh(v) => (v, "from_speed_kmh"),
        };
        for tr in ctx.visible_tracks() {
            if !self.in_scope(ctx, out, tr) {
                continue;
            }
            let Some(o) = tr.last().copied() else {
                continue;
            };
            let speed = match self.p.min_speed {
                Speed::PxPerS(_) => tr.velocity(APPROACH_WINDOW_S).map(|v| v.norm()),
                Speed::Kmh(_) => ctx
                    .calib
                    .and_then(|c| ground_speed(tr, c, APPROACH_WINDOW_S))
                    .map(|(v, _)| v * 3.6),
            };
            let radius = Still::radius(self.p.still_radius_px, &o);
            let st = self.per.entry(tr.id).or_default();
            let still_s = st.still.feed(&o, radius);
            if still_s == 0.0 {
                st.fired = false;
            }
            if let Some(v) = speed
                && v >= min_speed
            {
                st.moving = Some((ctx.t, v));
            }
            let since = st.still.since;
            let sudden = st
                .moving
                .filter(|(tm, _)| *tm + self.p.within_s + 1e-9 >= since)
                .filter(|_| still_s + 1e-9 >= STOP_CONFIRM_S && !st.fired);
            let open = self.open.contains_key(&Some(tr.id));
            if let Some((tm, v)) = sudden {
                st.fired = true;
                st.still.latch(true);
                let within = (since - tm).max(0.0);
                let d = json!({
                    unit: round(v, 1),
                    "stop_within_s": round(within, 2),
                    "started_s": round(since, 3),
                });
                self.stops.push((ctx.t, tr.id));
                self.raise(ctx, out, Some(tr), d);
            } else if open && still_s == 0.0 {
                self.end_event(ctx, out, Some(tr), "moved");
            } else if open {
                let d = self
                    .open
                    .get(&Some(tr.id))
                    .map(|o| o.details.clone())
                    .unwrap_or(Value::Null);
                self.raise(ctx, out, Some(tr), d);
            }
        }
    }

    /// Several vehicles stopping suddenly together: a possible incident, zone-wide.
    fn incident(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let group_s = self.p.group_s;
        let open_ids: HashSet<u64> = self.open.keys().filter_map(|k| *k).collect();
        self.stops
            .retain(|(t, id)| ctx.t - t <= group_s && open_ids.contains(id));
        let mut ids: Vec<u64> = self.stops.iter().map(|s| s.1).collect();
        ids.sort_unstable();
        ids.dedup();
        let group_open = self.open.contains_key(&None);
        if ids.len() >= self.p.min_vehicles as usize {
            let d = json!({"possible_incident": true, "vehicles": ids.len(), "track_ids": ids});
            self.raise(ctx, out, None, d);
        } else if group_open && open_ids.is_empty() {
            self.end_event(ctx, out, None, "cleared");
        }
    }
}

/// Ground speed in m/s over the last `window_s` of the track, with one standard deviation: the
/// larger of the spread the fit actually shows and what box jitter (1 px + 1 % of the box height)
/// would give, plus the calibration's relative error.
pub(crate) fn ground_speed(tr: &Track, c: &Calib, window_s: f64) -> Option<(f64, f64)> {
    let last = tr.last()?;
    let obs: Vec<_> = tr
        .hist
        .iter()
        .filter(|o| last.t - o.t <= window_s + 1e-9)
        .collect();
    let span = last.t - obs.first()?.t;
    if obs.len() < 3 || span < 0.3 {
        return None;
    }
    let g: Vec<(f64, P)> = obs
        .iter()
        .map(|o| c.h.map(o.p).map(|p| (o.t, p)))
        .collect::<Option<_>>()?;
    let v = fit_velocity(g.iter().copied())?;
    let n = g.len() as f64;
    let mt = g.iter().map(|x| x.0).sum::<f64>() / n;
    let mp = g
        .iter()
        .fold(P::default(), |a, x| a.add(x.1))
        .scale(1.0 / n);
    let stt: f64 = g.iter().map(|x| (x.0 - mt).powi(2)).sum();
    let rss: f64 = g
        .iter()
        .map(|(t, p)| {
            p.sub(mp.add(v.scale(t - mt)))
                .dot(p.sub(mp.add(v.scale(t - mt))))
        })
        .sum();
    let sigma_res = (rss / (2.0 * (n - 2.0)).max(1.0) / stt).sqrt();
    let box_h = f64::from(last.bbox[3] - last.bbox[1]).max(0.0);
    let sigma_px = 1.0 + 0.01 * box_h;
    let sigma_model = sigma_px * c.h.scale_at(last.p)? / stt.sqrt();
    let speed = v.norm();
    let sigma = (sigma_res.max(sigma_model).powi(2) + (c.rel_error * speed).powi(2)).sqrt();
    Some((speed, sigma))
}
