//! `zone`, `loitering`, `intrusion`: a track of the rule's classes inside the zone for `dwell_s`
//! (a `zone` rule reports the stay from the first frame in).

use serde_json::json;

use super::{Behaviour, RuleKind, round};
use crate::rules::RuleEvent;
use crate::rules::config::RuleConfig;
use crate::rules::rule::{Core, Ctx};

pub(super) struct Dwell {
    dwell_s: f64,
}

impl Dwell {
    pub(super) fn new(r: &RuleConfig) -> Self {
        let dwell_s = match r.kind {
            RuleKind::Zone => 0.0,
            RuleKind::Intrusion => r.dwell_s.unwrap_or(0.0),
            _ => r.dwell_s.unwrap_or(30.0),
        };
        Self { dwell_s }
    }
}

impl Behaviour for Dwell {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for tr in ctx.visible_tracks() {
            if !core.class_ok(tr) {
                continue;
            }
            if core.in_zone(tr) {
                let since = core.zone.map_or(tr.first_t, |z| tr.zones[z].since);
                let dwell = ctx.t - since;
                if dwell + 1e-9 >= self.dwell_s {
                    let d = json!({"dwell_s": round(dwell, 2), "started_s": round(since, 3)});
                    core.raise(ctx, out, Some(tr), d);
                }
            } else if core.is_open(Some(tr.id)) {
                core.end_event(ctx, out, Some(tr), "left_zone");
            }
        }
    }
}
