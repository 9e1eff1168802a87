//! `red_light`: a vehicle crossing the stop line (the rule's `line`; directed lines: forward
//! crossings only) while the signal lamp watched in the `signal` zone had been red for at least
//! `min_duration_s`. Instantaneous, like a line crossing: `new` and `end` in one frame.
//!
//! A crossing is judged when the lamp's frames have told: at once when the lamp is lit in the
//! crossing's frame or a later one of the same red run (the usual case), otherwise after
//! [`crate::rules::signal::RELEASE_S`] (a dark frame may be LED flicker). Crossings while the
//! lamp's state is unknown (a grey infrared picture, the lamp hidden) raise nothing.

use serde_json::json;

use super::{Behaviour, round};
use crate::rules::RuleEvent;
use crate::rules::config::RuleConfig;
use crate::rules::rule::{Core, Ctx};
use crate::rules::signal::Signal;
use crate::rules::track::Track;

pub(super) struct RedLight {
    /// Seconds the lamp must have been red: a vehicle already committed as it turned red does
    /// not count.
    min_red_s: f64,
    /// Crossings not judged yet: the track as it crossed, when, which way.
    pending: Vec<(Track, f64, bool)>,
}

impl RedLight {
    pub(super) fn new(r: &RuleConfig) -> Self {
        Self {
            min_red_s: r.min_duration_s.unwrap_or(1.0),
            pending: Vec::new(),
        }
    }

    /// Judges the pending crossings the lamp's frames have told about and keeps the others.
    fn judge(
        &mut self,
        core: &Core,
        ctx: &Ctx<'_>,
        signal: Option<&Signal>,
        out: &mut Vec<RuleEvent>,
    ) {
        let min_red_s = self.min_red_s;
        self.pending.retain(|(crossed, t, forward)| {
            let red_since = signal.and_then(|s| s.red_at(*t));
            let settled = signal.is_none_or(|s| s.settled_not_red(*t, ctx.t));
            let Some(since) = red_since else {
                return !settled;
            };
            let red_for = t - since;
            if red_for + 1e-9 >= min_red_s {
                // the vehicle as it is now (the evidence frame); as it crossed if it is gone
                let tr = ctx.tracks.get(&crossed.id).unwrap_or(crossed);
                let d = json!({
                    "direction": if *forward { "forward" } else { "backward" },
                    "red_for_s": round(red_for, 2),
                    "red_since_s": round(since, 3),
                    "crossed_s": round(*t, 3),
                });
                core.instant(ctx, out, tr, d);
            }
            false
        });
    }
}

impl Behaviour for RedLight {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for (tr, forward) in core.crossings(ctx) {
            self.pending.push((tr.clone(), ctx.t, forward));
        }
        let signal = core.signal.and_then(|s| ctx.signals.get(s));
        self.judge(core, ctx, signal, out);
    }

    fn rename(&mut self, old: u64, new: u64) {
        for (tr, _, _) in &mut self.pending {
            if tr.id == old {
                tr.id = new;
            }
        }
    }

    /// A crossing seen before a gap is still judged by the lamp's frames after it.
    fn forget_tracks(&mut self) {}

    fn reset(&mut self) {
        self.pending.clear();
    }
}
