//! `line_crossing`: each crossing of the line by a track of the rule's classes, as `new` and `end`
//! in one frame (directed lines: forward crossings only).

use serde_json::json;

use super::Behaviour;
use crate::rules::RuleEvent;
use crate::rules::rule::{Core, Ctx};

pub(super) struct LineCrossing;

impl Behaviour for LineCrossing {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        for (tr, forward) in core.crossings(ctx) {
            let d = json!({"direction": if forward { "forward" } else { "backward" }});
            core.instant(ctx, out, tr, d);
        }
    }
}
