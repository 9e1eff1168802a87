//! `stopped_vehicle`: a vehicle stationary for `dwell_s` (in a zone: illegal stopping).
//! Stationary = the anchor within the radius of its running mean, so box jitter does not reset
//! it and a slow car is not stopped.

use std::collections::HashMap;

use serde_json::json;

use super::{Behaviour, PerTrack, round};
use crate::rules::RuleEvent;
use crate::rules::config::RuleConfig;
use crate::rules::rule::{Core, Ctx};
use crate::rules::track::Still;

pub(super) struct StoppedVehicle {
    dwell_s: f64,
    still_radius_px: Option<f64>,
    per: HashMap<u64, Still>,
}

impl StoppedVehicle {
    pub(super) fn new(r: &RuleConfig) -> Self {
        Self {
            dwell_s: r.dwell_s.unwrap_or(30.0),
            still_radius_px: r.still_radius_px,
            per: HashMap::new(),
        }
    }
}

impl Behaviour for StoppedVehicle {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for tr in ctx.visible_tracks() {
            if !core.in_scope(ctx, out, tr) {
                continue;
            }
            let Some(o) = tr.last() else { continue };
            let radius = Still::radius(self.still_radius_px, o);
            let still = self.per.entry(tr.id).or_default();
            let still_s = still.feed(o, radius);
            let since = still.since;
            if still_s + 1e-9 >= self.dwell_s {
                still.latch(true);
                let d = json!({
                    "dwell_s": round(still_s, 2),
                    "started_s": round(since, 3),
                    "no_stopping_zone": core.zone.is_some(),
                });
                core.raise(ctx, out, Some(tr), d);
            } else if core.is_open(Some(tr.id)) {
                core.end_event(ctx, out, Some(tr), "moved");
            }
        }
    }

    fn tracks(&mut self) -> Option<&mut dyn PerTrack> {
        Some(&mut self.per)
    }
}
