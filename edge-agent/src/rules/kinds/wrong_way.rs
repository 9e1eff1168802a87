//! `wrong_way`: since its furthest point along the lane, the track went back at least the
//! distance, for at least the duration, steadily (most 0.2 s steps went back: a box that jumps
//! once when occluded does not count) and mostly along the lane axis (a car crossing the lane at
//! an angle does not count).

use std::collections::HashMap;
use std::ops::Sub;

use serde_json::json;

use super::{Behaviour, Distance, PerTrack, round};
use crate::rules::RuleEvent;
use crate::rules::config::RuleConfig;
use crate::rules::geometry::P;
use crate::rules::rule::{Core, Ctx};

/// Seconds between two steps of the steadiness test: long enough that box jitter does not swamp
/// a slow vehicle's motion at any frame rate.
const STEP_S: f64 = 0.2;

pub(super) struct WrongWay {
    min_distance: Distance,
    min_duration_s: f64,
    per: HashMap<u64, Progress>,
}

/// A track's progress along the lane.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Furthest point along the lane reached: (t, along, across).
    peak: Option<(f64, f64, f64)>,
    /// Steps of [`STEP_S`] since the peak, and how many of them moved backwards.
    steps: u32,
    back_steps: u32,
    /// Position along the lane and time at the last step.
    prev_along: f64,
    prev_t: f64,
}

impl WrongWay {
    pub(super) fn new(r: &RuleConfig) -> Self {
        Self {
            min_distance: match (r.min_distance_m, r.min_distance_px) {
                (Some(m), _) => Distance::M(m),
                (None, px) => Distance::Px(px.unwrap_or(60.0)),
            },
            min_duration_s: r.min_duration_s.unwrap_or(1.0),
            per: HashMap::new(),
        }
    }

    /// Position along and across the lane direction, in pixels or ground metres.
    fn along(&self, core: &Core, ctx: &Ctx<'_>, p: P) -> Option<(f64, f64)> {
        let z = ctx.zones.get(core.zone?)?;
        let (origin, u) = z.direction?;
        let (d, u) = match self.min_distance {
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
}

impl Behaviour for WrongWay {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let (need, unit) = match self.min_distance {
            Distance::Px(d) => (d, "distance_px"),
            Distance::M(d) => (d, "distance_m"),
        };
        // Jitter below this is neither forward nor backward.
        let step_eps = match self.min_distance {
            Distance::Px(_) => 0.5,
            Distance::M(_) => 0.05,
        };
        for tr in ctx.visible_tracks() {
            if !core.in_scope(ctx, out, tr) {
                continue;
            }
            let Some(o) = tr.last() else { continue };
            let Some((s, w)) = self.along(core, ctx, o.p) else {
                continue;
            };
            let st = self.per.entry(tr.id).or_default();
            let Some((pt, ps, pw)) = st.peak.filter(|p| s <= p.1) else {
                *st = Progress {
                    peak: Some((ctx.t, s, w)),
                    steps: 0,
                    back_steps: 0,
                    prev_along: s,
                    prev_t: ctx.t,
                };
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
                back >= need && back >= across && steady && dur + 1e-9 >= self.min_duration_s;
            if fire || core.is_open(Some(tr.id)) {
                let d = json!({unit: round(back, 2), "duration_s": round(dur, 2), "started_s": round(pt, 3)});
                core.raise(ctx, out, Some(tr), d);
            }
        }
    }

    fn tracks(&mut self) -> Option<&mut dyn PerTrack> {
        Some(&mut self.per)
    }
}
