//! `sudden_stop`: a vehicle moving at least `min_speed` that is stationary within `within_s`;
//! when `min_vehicles` stop within `group_s`, a zone-wide event with `possible_incident: true`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Behaviour, PerTrack, Speed, ground_speed, round};
use crate::rules::RuleEvent;
use crate::rules::config::RuleConfig;
use crate::rules::rule::{Core, Ctx};
use crate::rules::track::Still;

/// Seconds of standstill that confirm a sudden stop.
const STOP_CONFIRM_S: f64 = 0.6;
/// Seconds of history a sudden stop's approach speed is fitted over.
const APPROACH_WINDOW_S: f64 = 0.5;

pub(super) struct SuddenStop {
    min_speed: Speed,
    within_s: f64,
    min_vehicles: u32,
    group_s: f64,
    still_radius_px: Option<f64>,
    per: HashMap<u64, Approach>,
    /// Recent sudden stops: (stream time, track).
    stops: Vec<(f64, u64)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Approach {
    still: Still,
    /// Last time the track moved at least the minimum speed, and that speed.
    moving: Option<(f64, f64)>,
    fired: bool,
}

impl SuddenStop {
    pub(super) fn new(r: &RuleConfig) -> Self {
        Self {
            min_speed: match (r.min_speed_kmh, r.min_speed_px_s) {
                (Some(k), _) => Speed::Kmh(k),
                (None, px) => Speed::PxPerS(px.unwrap_or(80.0)),
            },
            within_s: r.within_s.unwrap_or(2.0),
            min_vehicles: r.min_vehicles.unwrap_or(2),
            group_s: r.group_s.unwrap_or(5.0),
            still_radius_px: r.still_radius_px,
            per: HashMap::new(),
            stops: Vec::new(),
        }
    }

    /// Several vehicles stopping suddenly together: a possible incident, zone-wide.
    fn incident(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let group_s = self.group_s;
        let open_ids = core.open_tracks();
        self.stops
            .retain(|(t, id)| ctx.t - t <= group_s && open_ids.contains(id));
        let mut ids: Vec<u64> = self.stops.iter().map(|s| s.1).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() >= self.min_vehicles as usize {
            let d = json!({"possible_incident": true, "vehicles": ids.len(), "track_ids": ids});
            core.raise(ctx, out, None, d);
        } else if core.is_open(None) && open_ids.is_empty() {
            core.end_event(ctx, out, None, "cleared");
        }
    }
}

impl Behaviour for SuddenStop {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let (min_speed, unit) = match self.min_speed {
            Speed::PxPerS(v) => (v, "from_speed_px_s"),
            Speed::Kmh(v) => (v, "from_speed_kmh"),
        };
        for tr in ctx.visible_tracks() {
            if !core.in_scope(ctx, out, tr) {
                continue;
            }
            let Some(o) = tr.last().copied() else {
                continue;
            };
            let speed = match self.min_speed {
                Speed::PxPerS(_) => tr.velocity(APPROACH_WINDOW_S).map(|v| v.norm()),
                Speed::Kmh(_) => ctx
                    .calib
                    .and_then(|c| ground_speed(tr, c, APPROACH_WINDOW_S))
                    .map(|(v, _)| v * 3.6),
            };
            let radius = Still::radius(self.still_radius_px, &o);
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
                .filter(|(tm, _)| *tm + self.within_s + 1e-9 >= since)
                .filter(|_| still_s + 1e-9 >= STOP_CONFIRM_S && !st.fired);
            let open = core.is_open(Some(tr.id));
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
                core.raise(ctx, out, Some(tr), d);
            } else if open && still_s == 0.0 {
                core.end_event(ctx, out, Some(tr), "moved");
            } else if open {
                let d = core
                    .open_details(Some(tr.id))
                    .cloned()
                    .unwrap_or(Value::Null);
                core.raise(ctx, out, Some(tr), d);
            }
        }
        self.incident(core, ctx, out);
    }

    fn tracks(&mut self) -> Option<&mut dyn PerTrack> {
        Some(&mut self.per)
    }

    fn rename(&mut self, old: u64, new: u64) {
        self.per.rename(old, new);
        for s in &mut self.stops {
            if s.1 == old {
                s.1 = new;
            }
        }
    }

    fn reset(&mut self) {
        self.per.clear();
        self.stops.clear();
    }
}
