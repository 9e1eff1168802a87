//! `line_count`: per-class crossings of the line, reported every `interval_s` (`new` at the first
//! report, `update` after, `end` at the end of the stream), with totals since the start.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Behaviour, round};
use crate::events::Phase;
use crate::rules::config::RuleConfig;
use crate::rules::rule::{Core, Ctx};
use crate::rules::{Line, RuleEvent, Zone};

pub(super) struct LineCount {
    interval_s: f64,
    /// Forward and backward counts of the current period, and since the start.
    counts: [BTreeMap<String, u64>; 2],
    totals: [BTreeMap<String, u64>; 2],
    period_start: Option<f64>,
    reports: u32,
}

impl LineCount {
    pub(super) fn new(r: &RuleConfig) -> Self {
        Self {
            interval_s: r.interval_s.unwrap_or(60.0),
            counts: Default::default(),
            totals: Default::default(),
            period_start: None,
            reports: 0,
        }
    }

    fn details(&self, t: f64) -> Value {
        let start = self.period_start.unwrap_or(t);
        json!({
            "interval_s": self.interval_s,
            "period_s": round(t - start, 3),
            "forward": self.counts[0],
            "backward": self.counts[1],
            "total_forward": self.totals[0],
            "total_backward": self.totals[1],
        })
    }
}

impl Behaviour for LineCount {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let Some(li) = core.line else { return };
        let start = *self.period_start.get_or_insert(ctx.t);
        for c in ctx.crossings.iter().filter(|c| c.line == li) {
            let Some(tr) = ctx.tracks.get(&c.track) else {
                continue;
            };
            if !core.class_ok(tr) {
                continue;
            }
            let slot = usize::from(!c.forward);
            *self.counts[slot].entry(tr.label.clone()).or_default() += 1;
            *self.totals[slot].entry(tr.label.clone()).or_default() += 1;
        }
        if ctx.t - start + 1e-9 >= self.interval_s {
            let details = self.details(ctx.t);
            let phase = if self.reports == 0 {
                Phase::New
            } else {
                Phase::Update
            };
            self.reports += 1;
            core.hold_open(ctx.t, details.clone());
            core.emit(out, phase, ctx.td, None, details, ctx.zones, ctx.lines);
            self.counts = Default::default();
            self.period_start = Some(ctx.t);
        }
    }

    /// Counts and the current period go on across a closed time window.
    fn reset(&mut self) {}

    /// The last, partial period is reported before the end.
    fn finish(
        &mut self,
        core: &mut Core,
        t: f64,
        td: Duration,
        zones: &[Zone],
        lines: &[Line],
        out: &mut Vec<RuleEvent>,
    ) {
        if self.period_start.is_some() {
            let details = self.details(t);
            if core.hold_open(t, details.clone()) {
                core.emit(out, Phase::New, td, None, details, zones, lines);
            }
            // A second finish reports nothing more.
            self.period_start = None;
        }
    }
}
