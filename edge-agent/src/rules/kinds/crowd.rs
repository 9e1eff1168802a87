//! `overcrowding` (members of the zone) and `congestion` (vehicles queued in it: stationary for
//! [`QUEUE_STILL_S`]): a count held for `min_duration_s`, zone-wide; it ends after as long below.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Behaviour, PerTrack, RuleKind, round};
use crate::rules::RuleEvent;
use crate::rules::config::RuleConfig;
use crate::rules::geometry::P;
use crate::rules::rule::{Core, Ctx};
use crate::rules::track::Still;

/// Seconds a vehicle must be stationary to count as queued (congestion).
const QUEUE_STILL_S: f64 = 2.0;
/// Tracks unseen for longer are left out of zone counts even before the tracker ends them.
const RECENT_S: f64 = 1.0;

pub(super) struct Crowd {
    congestion: bool,
    min_count: u32,
    min_duration_s: f64,
    still_radius_px: Option<f64>,
    above_since: Option<f64>,
    below_since: Option<f64>,
    max_count: usize,
    /// Stationarity and whether queued, per vehicle (congestion).
    per: HashMap<u64, (Still, bool)>,
}

impl Crowd {
    pub(super) fn new(r: &RuleConfig) -> Self {
        let congestion = r.kind == RuleKind::Congestion;
        Self {
            congestion,
            min_count: r.min_count.unwrap_or(1),
            min_duration_s: r
                .min_duration_s
                .unwrap_or(if congestion { 30.0 } else { 5.0 }),
            still_radius_px: r.still_radius_px,
            above_since: None,
            below_since: None,
            max_count: 0,
            per: HashMap::new(),
        }
    }
}

impl Behaviour for Crowd {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        if self.congestion {
            for tr in ctx.visible_tracks() {
                if !(core.class_ok(tr) && core.in_zone(tr)) {
                    self.per.remove(&tr.id);
                    continue;
                }
                let Some(o) = tr.last() else { continue };
                let radius = Still::radius(self.still_radius_px, o);
                let (still, queued) = self.per.entry(tr.id).or_default();
                *queued = still.feed(o, radius) >= QUEUE_STILL_S;
            }
        }
        let mut ids: Vec<u64> = ctx
            .tracks
            .values()
            .filter(|tr| core.class_ok(tr) && core.in_zone(tr))
            .filter(|tr| tr.last().is_some_and(|o| ctx.t - o.t <= RECENT_S))
            .filter(|tr| !self.congestion || self.per.get(&tr.id).is_some_and(|p| p.1))
            .map(|tr| tr.id)
            .collect();
        ids.sort_unstable();
        let n = ids.len();
        let min = self.min_count as usize;
        let hold = self.min_duration_s;
        let open = core.is_open(None);
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
                if self.congestion {
                    queue_length(core, ctx, &ids, &mut d);
                }
                core.raise(ctx, out, None, d);
            }
        } else {
            self.above_since = None;
            if open {
                let since = *self.below_since.get_or_insert(ctx.t);
                if ctx.t - since + 1e-9 >= hold {
                    self.below_since = None;
                    core.end_event(ctx, out, None, "cleared");
                }
            }
        }
    }

    fn tracks(&mut self) -> Option<&mut dyn PerTrack> {
        Some(&mut self.per)
    }

    fn reset(&mut self) {
        self.per.clear();
        self.above_since = None;
        self.below_since = None;
    }
}

/// Queue length: spread of the queued anchors along the lane direction (or the longest distance
/// between them when the zone has no direction), in pixels and, when calibrated, metres.
fn queue_length(core: &Core, ctx: &Ctx<'_>, ids: &[u64], d: &mut Value) {
    let pts: Vec<P> = ids
        .iter()
        .filter_map(|id| ctx.tracks.get(id)?.last().map(|o| o.p))
        .collect();
    let dir = core
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
