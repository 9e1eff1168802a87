//! `line_crossing`: each crossing of the line by a track of the rule's classes, as `new` and `end`
//! in one frame (directed lines: forward crossings only).

use serde_json::json;

use super::Behaviour;
use crate::events::Phase;
use crate::rules::RuleEvent;
use crate::rules::rule::{Core, Ctx};

pub(super) struct LineCrossing;

impl Behaviour for LineCrossing {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let Some(li) = core.line else { return };
        let directed = ctx.lines.get(li).is_some_and(|l| l.directed);
        for c in ctx.crossings.iter().filter(|c| c.line == li) {
            let Some(tr) = ctx.tracks.get(&c.track) else {
                continue;
            };
            if !core.class_ok(tr) || (directed && !c.forward) {
                continue;
            }
            let d = json!({"direction": if c.forward { "forward" } else { "backward" }});
            core.emit(
                out,
                Phase::New,
                ctx.td,
                Some(tr),
                d.clone(),
                ctx.zones,
                ctx.lines,
            );
            core.emit(out, Phase::End, ctx.td, Some(tr), d, ctx.zones, ctx.lines);
        }
    }
}
