//! One configured rule: the [`Core`] every kind shares (scope, open events and their
//! new → update → end lifecycle, time windows, id switches) and its kind's [`Behaviour`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::check::Window;
use super::config::RuleConfig;
use super::kinds::{self, Behaviour, RuleKind, round, rule_classes};
use super::signal::Signal;
use super::track::Track;
use super::{Calib, Crossing, Line, RuleEvent, Zone};
use crate::events::Phase;

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
    /// The signal lamp seen in each zone (by zone index; unknown where none is watched).
    pub signals: &'a [Signal],
    pub calib: Option<&'a Calib>,
    pub local: Option<u32>,
}

impl Ctx<'_> {
    /// Visible tracks in id order, so events come out in a stable order.
    pub(crate) fn visible_tracks(&self) -> Vec<&Track> {
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

/// What every rule has, whatever its kind: its id and scope, and its open events.
pub(crate) struct Core {
    pub id: String,
    pub kind: RuleKind,
    /// The zone it applies in (its scope).
    pub zone: Option<usize>,
    pub line: Option<usize>,
    /// The zone of the signal lamp it watches (`red_light`).
    pub signal: Option<usize>,
    classes: Vec<String>,
    update_every_s: f64,
    /// Open events by track (None = zone-wide or line-wide).
    open: HashMap<Option<u64>, Open>,
    /// Tracks that left the zone this frame: the behaviour forgets them after its step.
    left: Vec<u64>,
}

impl Core {
    pub(crate) fn class_ok(&self, tr: &Track) -> bool {
        self.classes.contains(&tr.label)
    }

    pub(crate) fn in_zone(&self, tr: &Track) -> bool {
        self.zone
            .is_none_or(|z| tr.zones.get(z).is_some_and(|m| m.inside))
    }

    /// Whether `tr` is one of this rule's classes inside its zone. A track of its classes that has
    /// left the zone is forgotten, and its open event ends with reason `left_zone`.
    pub(crate) fn in_scope(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>, tr: &Track) -> bool {
        if !self.class_ok(tr) {
            return false;
        }
        if !self.in_zone(tr) {
            self.left.push(tr.id);
            self.end_event(ctx, out, Some(tr), "left_zone");
            return false;
        }
        true
    }

    /// This frame's crossings of the rule's line by tracks of its classes, with their direction
    /// (`true`: forward); on a directed line only forward ones count.
    pub(crate) fn crossings<'c>(&self, ctx: &'c Ctx<'_>) -> Vec<(&'c Track, bool)> {
        let Some(li) = self.line else {
            return Vec::new();
        };
        let directed = ctx.lines.get(li).is_some_and(|l| l.directed);
        ctx.crossings
            .iter()
            .filter(|c| c.line == li && (c.forward || !directed))
            .filter_map(|c| Some((ctx.tracks.get(&c.track)?, c.forward)))
            .filter(|(tr, _)| self.class_ok(tr))
            .collect()
    }

    /// Whether an event of `key` (a track, or None for the rule's track-less event) is open.
    pub(crate) fn is_open(&self, key: Option<u64>) -> bool {
        self.open.contains_key(&key)
    }

    /// The details last sent for the open event of `key`.
    pub(crate) fn open_details(&self, key: Option<u64>) -> Option<&Value> {
        self.open.get(&key).map(|o| &o.details)
    }

    /// Tracks with an open event.
    pub(crate) fn open_tracks(&self) -> HashSet<u64> {
        self.open.keys().filter_map(|k| *k).collect()
    }

    fn event_kind(&self, phase: Phase) -> crate::events::EventKind {
        let spec = self.kind.spec();
        if phase == Phase::End {
            spec.end_event
        } else {
            spec.event
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
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
            zone: self
                .zone
                .or(self.signal)
                .and_then(|z| zones.get(z))
                .map(|z| z.id.clone()),
            line: self.line.and_then(|l| lines.get(l)).map(|l| l.id.clone()),
            t: td,
            details,
            label: track.map(|t| t.label.clone()),
            bbox: track.and_then(|t| t.last()).map(|o| o.bbox),
        });
    }

    /// An instantaneous event of `track` (a crossing): `new` and `end` in this frame.
    pub(crate) fn instant(
        &self,
        ctx: &Ctx<'_>,
        out: &mut Vec<RuleEvent>,
        track: &Track,
        details: Value,
    ) {
        let (zones, lines) = (ctx.zones, ctx.lines);
        self.emit(
            out,
            Phase::New,
            ctx.td,
            Some(track),
            details.clone(),
            zones,
            lines,
        );
        self.emit(out, Phase::End, ctx.td, Some(track), details, zones, lines);
    }

    /// Opens the event of `track` (None: the rule's track-less one) or, rate-limited, updates it.
    pub(crate) fn raise(
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
                if ctx.t - o.last_update + 1e-9 < self.update_every_s {
                    return;
                }
                o.last_update = ctx.t;
                Phase::Update
            }
        };
        self.emit(out, phase, ctx.td, track, details, ctx.zones, ctx.lines);
    }

    /// Sets the details of the track-less event without sending anything; true when it was not
    /// open before (periodic reports, which send on their own schedule).
    pub(crate) fn hold_open(&mut self, t: f64, details: Value) -> bool {
        let fresh = !self.open.contains_key(&None);
        let o = self.open.entry(None).or_insert(Open {
            started: t,
            last_update: t,
            details: Value::Null,
        });
        o.details = details;
        o.last_update = t;
        fresh
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

    /// Ends the open event of `track` (or the rule's track-less event, for `None`) at this frame.
    pub(crate) fn end_event(
        &mut self,
        ctx: &Ctx<'_>,
        out: &mut Vec<RuleEvent>,
        track: Option<&Track>,
        reason: &str,
    ) {
        let key = track.map(|t| t.id);
        self.close(ctx.t, ctx.td, out, key, track, reason, ctx.zones, ctx.lines);
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
}

pub(crate) struct Rule {
    core: Core,
    behaviour: Box<dyn Behaviour>,
    pub windows: Vec<Window>,
    was_active: bool,
}

impl Rule {
    pub(super) fn new(
        r: &RuleConfig,
        zone: Option<usize>,
        line: Option<usize>,
        signal: Option<usize>,
        windows: Vec<Window>,
    ) -> Self {
        Self {
            core: Core {
                id: r.id.clone(),
                kind: r.kind,
                zone,
                line,
                signal,
                classes: rule_classes(r),
                update_every_s: r.update_every_s,
                open: HashMap::new(),
                left: Vec::new(),
            },
            behaviour: kinds::behaviour(r),
            windows,
            was_active: false,
        }
    }

    fn active(&self, local: Option<u32>) -> bool {
        self.windows.is_empty() || local.is_none_or(|s| self.windows.iter().any(|w| w.contains(s)))
    }

    pub(super) fn step(&mut self, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for &(old, new) in ctx.renamed {
            self.behaviour.rename(old, new);
            if let Some(o) = self.core.open.remove(&Some(old)) {
                self.core.open.insert(Some(new), o);
            }
        }
        if !self.active(ctx.local) {
            if self.was_active {
                self.core.end_all(
                    ctx.t,
                    ctx.td,
                    ctx.tracks,
                    ctx.zones,
                    ctx.lines,
                    "window_closed",
                    out,
                    |_| true,
                );
                self.behaviour.reset();
            }
            self.was_active = false;
            return;
        }
        self.was_active = true;
        for tr in ctx.removed {
            self.behaviour.forget(tr.id);
            self.core.end_event(ctx, out, Some(tr), "track_ended");
        }
        self.behaviour.step(&mut self.core, ctx, out);
        for id in std::mem::take(&mut self.core.left) {
            self.behaviour.forget(id);
        }
    }

    /// The stream broke (reconnect): events of single tracks end with reason `stream_gap` and
    /// per-track state is forgotten, so no motion is inferred across the gap; zone- and line-wide
    /// events and line counts go on.
    pub(super) fn discontinuity(
        &mut self,
        t: f64,
        td: Duration,
        tracks: &HashMap<u64, Track>,
        zones: &[Zone],
        lines: &[Line],
        out: &mut Vec<RuleEvent>,
    ) {
        self.core.end_all(
            t,
            td,
            tracks,
            zones,
            lines,
            "stream_gap",
            out,
            Option::is_some,
        );
        self.behaviour.forget_tracks();
    }

    pub(super) fn finish(
        &mut self,
        t: f64,
        td: Duration,
        tracks: &HashMap<u64, Track>,
        zones: &[Zone],
        lines: &[Line],
        out: &mut Vec<RuleEvent>,
    ) {
        self.behaviour
            .finish(&mut self.core, t, td, zones, lines, out);
        self.core
            .end_all(t, td, tracks, zones, lines, "stream_end", out, |_| true);
    }
}
