//! `speeding`: the estimated ground speed over the limit for `min_frames` frames; `speed_kmh`,
//! `uncertainty_kmh` (about 95 %) and `"estimate": true` — an estimate for review, never a penalty.

use std::collections::HashMap;
use std::ops::{Add, Sub};

use serde_json::json;

use super::{Behaviour, PerTrack, round};
use crate::rules::config::RuleConfig;
use crate::rules::geometry::P;
use crate::rules::rule::{Core, Ctx};
use crate::rules::track::{Track, fit_velocity};
use crate::rules::{Calib, RuleEvent};

/// Seconds of track history a speed is fitted over.
const SPEED_WINDOW_S: f64 = 1.0;

pub(super) struct Speeding {
    limit_kmh: f64,
    min_frames: u32,
    per: HashMap<u64, OverLimit>,
}

/// Consecutive frames over and under the limit, and the top speed of the open event.
#[derive(Debug, Clone, Copy, Default)]
struct OverLimit {
    over: u32,
    under: u32,
    max_speed: f64,
}

impl Speeding {
    pub(super) fn new(r: &RuleConfig) -> Self {
        Self {
            limit_kmh: r.limit_kmh.unwrap_or(f64::INFINITY),
            min_frames: r.min_frames.unwrap_or(3),
            per: HashMap::new(),
        }
    }
}

impl Behaviour for Speeding {
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>) {
        let Some(c) = ctx.calib else { return };
        for tr in ctx.visible_tracks() {
            if !core.in_scope(ctx, out, tr) {
                continue;
            }
            let Some((v, sigma)) = ground_speed(tr, c, SPEED_WINDOW_S) else {
                continue;
            };
            let (kmh, unc) = (v * 3.6, 2.0 * sigma * 3.6);
            let st = self.per.entry(tr.id).or_default();
            if kmh > self.limit_kmh {
                st.over += 1;
                st.under = 0;
            } else {
                st.under += 1;
                st.over = 0;
            }
            let open = core.is_open(Some(tr.id));
            if open || st.over >= self.min_frames {
                st.max_speed = if open { st.max_speed.max(kmh) } else { kmh };
            }
            if open && st.under >= self.min_frames {
                core.end_event(ctx, out, Some(tr), "below_limit");
            } else if open || st.over >= self.min_frames {
                let d = json!({
                    "speed_kmh": round(kmh, 1),
                    "uncertainty_kmh": round(unc, 1),
                    "max_speed_kmh": round(st.max_speed, 1),
                    "limit_kmh": self.limit_kmh,
                    "estimate": true,
                });
                core.raise(ctx, out, Some(tr), d);
            }
        }
    }

    fn tracks(&mut self) -> Option<&mut dyn PerTrack> {
        Some(&mut self.per)
    }
}

/// Ground speed in m/s over the last `window_s` of the track, with one standard deviation: the
/// larger of the spread the fit actually shows and what box jitter (1 px + 1 % of the box height)
/// would give, plus the calibration's relative error.
pub(crate) fn ground_speed(tr: &Track, c: &Calib, window_s: f64) -> Option<(f64, f64)> {
    let last = tr.last()?;
    let obs: Vec<_> = tr
        .hist
        .iter()
        .filter(|o| last.t - o.t <= window_s + 1e-9)
        .collect();
    let span = last.t - obs.first()?.t;
    if obs.len() < 3 || span < 0.3 {
        return None;
    }
    let g: Vec<(f64, P)> = obs
        .iter()
        .map(|o| c.h.map(o.p).map(|p| (o.t, p)))
        .collect::<Option<_>>()?;
    let v = fit_velocity(g.iter().copied())?;
    let n = g.len() as f64;
    let mt = g.iter().map(|x| x.0).sum::<f64>() / n;
    let mp = g
        .iter()
        .fold(P::default(), |a, x| a.add(x.1))
        .scale(1.0 / n);
    let stt: f64 = g.iter().map(|x| (x.0 - mt).powi(2)).sum();
    let rss: f64 = g
        .iter()
        .map(|(t, p)| {
            p.sub(mp.add(v.scale(t - mt)))
                .dot(p.sub(mp.add(v.scale(t - mt))))
        })
        .sum();
    let sigma_res = (rss / (2.0 * (n - 2.0)).max(1.0) / stt).sqrt();
    let box_h = f64::from(last.bbox[3] - last.bbox[1]).max(0.0);
    let sigma_px = 1.0 + 0.01 * box_h;
    let sigma_model = sigma_px * c.h.scale_at(last.p)? / stt.sqrt();
    let speed = v.norm();
    let sigma = (sigma_res.max(sigma_model).powi(2) + (c.rel_error * speed).powi(2)).sqrt();
    Some((speed, sigma))
}
