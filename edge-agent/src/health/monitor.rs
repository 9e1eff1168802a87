//! A camera's health as a state machine over sampled frames: each condition (frozen, covered,
//! defocused, scene changed, low frame rate) is raised after several bad checks and cleared after
//! several good ones, so a passing bus or one dark frame does not flap the state. The camera's
//! overall state is its most serious active condition; every change of it is a [`Transition`].

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::HealthConfig;
use crate::source::{Frame, SourceCounters, StreamStatus};

use super::analysis::{Grey, Measures, SceneReference, mean_abs_diff, measure};

/// Something wrong with a camera, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// The stream is lost or stalled (reported by the source, see `Sink::stream_status`).
    Down,
    /// The same picture for `frozen_s` while the stream says it is up.
    Frozen,
    /// Nearly black or uniform picture: lens covered or sprayed.
    Covered,
    /// Sharpness well below the camera's own baseline.
    Defocused,
    /// The picture no longer matches the learned scene: camera moved or turned.
    SceneChanged,
    /// Fewer decoded frames per second than expected.
    LowFps,
    /// The camera's main stream (`evidence_url`) is lost: plates and evidence come from the
    /// detection stream meanwhile. Set by the pipeline, not by the image checks.
    MainStreamLost,
}

impl Condition {
    /// Every condition, most serious first.
    pub const ALL: [Condition; 7] = [
        Self::Down,
        Self::Frozen,
        Self::Covered,
        Self::Defocused,
        Self::SceneChanged,
        Self::LowFps,
        Self::MainStreamLost,
    ];

    /// Name used in events and the `health` message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Frozen => "frozen",
            Self::Covered => "covered",
            Self::Defocused => "defocused",
            Self::SceneChanged => "scene_changed",
            Self::LowFps => "low_fps",
            Self::MainStreamLost => "main_stream_lost",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A condition with hysteresis: raised after `raise` bad checks in a row, cleared after `clear`
/// good ones.
#[derive(Debug, Clone, Copy, Default)]
struct Hysteresis {
    active: bool,
    bad: u32,
    good: u32,
}

impl Hysteresis {
    fn update(&mut self, bad: bool, raise: u32, clear: u32) {
        if bad {
            self.bad += 1;
            self.good = 0;
            if !self.active && self.bad >= raise.max(1) {
                self.active = true;
            }
        } else {
            self.good += 1;
            self.bad = 0;
            if self.active && self.good >= clear.max(1) {
                self.active = false;
            }
        }
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// What the last check measured, for events and the `health` message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub mean: f32,
    pub std: f32,
    pub sharpness: f32,
    /// Learned sharpness baseline; `None` while learning.
    pub sharpness_baseline: Option<f32>,
    /// Distance to the learned scene (0..1); `None` while learning.
    pub scene_distance: Option<f32>,
    /// Seconds the picture has not changed.
    pub unchanged_s: f32,
    /// Mean grey-level difference from the previous check; `None` at the first check.
    pub frame_diff: Option<f32>,
    /// Decoded frames per second over the window; `None` until the window is full.
    pub fps: Option<f32>,
}

/// A change of the camera's overall state.
#[derive(Debug, Clone)]
pub struct Transition {
    /// `ok` or a [`Condition`] name.
    pub from: &'static str,
    pub to: &'static str,
    /// Every active condition after the change, most serious first.
    pub active: Vec<Condition>,
    /// Capture time of the frame that decided it.
    pub capture_time: SystemTime,
    pub snapshot: Snapshot,
    pub expected_fps: f64,
    pub counters: SourceCounters,
}

impl Transition {
    /// The measurements as event details.
    pub fn details(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("state".into(), Value::from(self.to));
        d.insert("previous".into(), Value::from(self.from));
        d.insert(
            "active".into(),
            Value::from(self.active.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
        );
        let s = &self.snapshot;
        let round = |v: f32| (f64::from(v) * 1000.0).round() / 1000.0;
        d.insert("mean".into(), Value::from(round(s.mean)));
        d.insert("std".into(), Value::from(round(s.std)));
        d.insert("sharpness".into(), Value::from(round(s.sharpness)));
        if let Some(b) = s.sharpness_baseline {
            d.insert("sharpness_baseline".into(), Value::from(round(b)));
        }
        if let Some(v) = s.scene_distance {
            d.insert("scene_distance".into(), Value::from(round(v)));
        }
        d.insert("unchanged_s".into(), Value::from(round(s.unchanged_s)));
        if let Some(v) = s.frame_diff {
            d.insert("frame_diff".into(), Value::from(round(v)));
        }
        if let Some(f) = s.fps {
            d.insert("fps".into(), Value::from(round(f)));
        }
        d.insert("expected_fps".into(), Value::from(self.expected_fps));
        d.insert("frames".into(), Value::from(self.counters.frames));
        d.insert(
            "decode_errors".into(),
            Value::from(self.counters.decode_errors),
        );
        d
    }
}

/// A camera's current health, for the `health` message.
#[derive(Debug, Clone)]
pub struct Report {
    /// `ok`, `down` or the most serious active condition.
    pub state: &'static str,
    pub active: Vec<Condition>,
    pub snapshot: Snapshot,
    pub expected_fps: f64,
    pub counters: SourceCounters,
    /// Capture time of the last frame seen.
    pub last_frame: Option<SystemTime>,
}

/// One camera's health monitor; feed it every decoded frame and every stream status.
#[derive(Debug)]
pub struct Monitor {
    cfg: HealthConfig,
    expected_fps: f64,
    conds: [Hysteresis; Condition::ALL.len()],
    down: bool,
    state: &'static str,
    next_check: Option<Duration>,
    /// Stream time of the first check since the stream came up.
    learning_since: Option<Duration>,
    baseline: Option<f32>,
    reference: Option<SceneReference>,
    /// Grey image of the previous check, for the frozen test.
    prev_grey: Option<Vec<u8>>,
    unchanged_since: Option<Duration>,
    scene_changed_since: Option<Duration>,
    frame_times: VecDeque<Duration>,
    first_frame: Option<Duration>,
    snapshot: Snapshot,
    checks: u64,
}

impl Monitor {
    /// A monitor for a camera expected to deliver `expected_fps` (its `target_fps`).
    pub fn new(cfg: HealthConfig, expected_fps: f64) -> Self {
        Self {
            cfg,
            expected_fps,
            conds: [Hysteresis::default(); Condition::ALL.len()],
            down: false,
            state: "ok",
            next_check: None,
            learning_since: None,
            baseline: None,
            reference: None,
            prev_grey: None,
            unchanged_since: None,
            scene_changed_since: None,
            frame_times: VecDeque::new(),
            first_frame: None,
            snapshot: Snapshot::default(),
            checks: 0,
        }
    }

    /// Current overall state: `ok`, `down` or the most serious active condition.
    pub fn state(&self) -> &'static str {
        self.state
    }

    /// Active conditions, most serious first.
    pub fn active(&self) -> Vec<Condition> {
        Condition::ALL
            .into_iter()
            .filter(|c| self.conds[c.index()].active)
            .collect()
    }

    /// The last measurements.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The camera's expected frame rate.
    pub fn expected_fps(&self) -> f64 {
        self.expected_fps
    }

    /// The current state with the last measurements.
    pub fn report(&self, counters: SourceCounters, last_frame: Option<SystemTime>) -> Report {
        Report {
            state: self.state,
            active: self.active(),
            snapshot: self.snapshot.clone(),
            expected_fps: self.expected_fps,
            counters,
            last_frame,
        }
    }

    /// Image checks made so far.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// A stream status from the source. Down and up are reported by the source's own
    /// `camera_health` events, so this changes the state without a [`Transition`]; image
    /// conditions start over after a reconnect (the learned baseline and scene are kept).
    pub fn on_stream(&mut self, status: &StreamStatus) {
        let down = !matches!(status, StreamStatus::Connected { .. });
        for c in Condition::ALL {
            if c != Condition::Down {
                self.conds[c.index()].reset();
            }
        }
        self.conds[Condition::Down.index()].active = down;
        self.down = down;
        self.prev_grey = None;
        self.unchanged_since = None;
        self.scene_changed_since = None;
        self.frame_times.clear();
        self.first_frame = None;
        self.next_check = None;
        self.state = self.overall();
    }

    /// A decoded frame; checks the picture when a check is due. Returns the state change, if any.
    pub fn on_frame(&mut self, frame: &Frame, counters: SourceCounters) -> Option<Transition> {
        let t = frame.stream_time;
        if self.down {
            // A frame means the stream is up, whatever the status said last.
            self.on_stream(&StreamStatus::Connected {
                description: String::new(),
            });
        }
        self.count_frame(t);
        if !self.cfg.enabled {
            return None;
        }
        let interval = Duration::from_secs_f64(self.cfg.check_interval_s.max(0.01));
        match self.next_check {
            Some(next) if t < next => return None,
            _ => {}
        }
        self.next_check = Some(t + interval);
        let grey = Grey::from_rgb(
            &frame.rgb,
            frame.width,
            frame.height,
            self.cfg.analysis_width,
        )?;
        let m = measure(&grey);
        self.check(t, &m, grey.data);
        let new = self.overall();
        if new == self.state {
            return None;
        }
        let from = std::mem::replace(&mut self.state, new);
        Some(Transition {
            from,
            to: new,
            active: self.active(),
            capture_time: frame.capture_time,
            snapshot: self.snapshot.clone(),
            expected_fps: self.expected_fps,
            counters,
        })
    }

    fn count_frame(&mut self, t: Duration) {
        self.first_frame.get_or_insert(t);
        self.frame_times.push_back(t);
        let window = Duration::from_secs_f64(self.cfg.fps_window_s.max(0.1));
        while let Some(&front) = self.frame_times.front() {
            if t.saturating_sub(front) > window {
                self.frame_times.pop_front();
            } else {
                break;
            }
        }
    }

    /// Frames per second over the window, once a whole window has been seen.
    fn fps(&self, t: Duration) -> Option<f32> {
        let window = self.cfg.fps_window_s.max(0.1);
        let first = self.first_frame?;
        if t.saturating_sub(first).as_secs_f64() < window {
            return None;
        }
        Some((self.frame_times.len().saturating_sub(1) as f64 / window) as f32)
    }

    fn check(&mut self, t: Duration, m: &Measures, grey: Vec<u8>) {
        self.checks += 1;
        let cfg = &self.cfg;
        let (raise, clear) = (cfg.raise_checks, cfg.clear_checks);
        let learning_since = *self.learning_since.get_or_insert(t);
        let learned = t.saturating_sub(learning_since).as_secs_f64() >= cfg.learn_s;
        // Learning weight per check, from the time constant of the reference.
        let alpha = (cfg.check_interval_s / cfg.reference_s.max(cfg.check_interval_s)) as f32;
        // Faster while learning, so the first minute already gives a usable reference.
        let alpha = if learned { alpha } else { alpha.max(0.2) };

        // Covered: near-uniform or black; it also makes the other image checks meaningless.
        let covered_now =
            f64::from(m.std) < cfg.covered_max_std || f64::from(m.mean) < cfg.covered_max_mean;
        self.conds[Condition::Covered.index()].update(covered_now, raise, clear);

        // Frozen: the picture did not change between checks for `frozen_s`. A covered lens also
        // gives identical frames, which is not a frozen stream.
        let diff = self
            .prev_grey
            .as_deref()
            .map_or(f32::INFINITY, |p| mean_abs_diff(p, &grey));
        if f64::from(diff) < cfg.frozen_max_diff && !covered_now {
            self.unchanged_since.get_or_insert(t);
        } else {
            self.unchanged_since = None;
        }
        self.prev_grey = Some(grey);
        let unchanged = self
            .unchanged_since
            .map_or(0.0, |s| t.saturating_sub(s).as_secs_f64());
        // Raised as soon as the time has passed; cleared by `clear_checks` changing pictures.
        self.conds[Condition::Frozen.index()].update(unchanged >= cfg.frozen_s, 1, clear);

        let frozen = self.conds[Condition::Frozen.index()].active || self.unchanged_since.is_some();
        let covered = self.conds[Condition::Covered.index()].active || covered_now;

        // Scene change: far from the learned reference for several checks in a row.
        let distance = self
            .reference
            .as_ref()
            .filter(|_| learned)
            .map(|r| r.distance(m).value());
        let scene_bad = distance.map(|d| f64::from(d) > cfg.scene_change_distance);

        // Defocus: sharpness well under the camera's own baseline. Not judged while the picture
        // shows another scene (a bus filling the view, a moved camera): the baseline is the old
        // scene's.
        let mut defocus_bad = None;
        if let Some(base) = self.baseline.filter(|_| learned && scene_bad != Some(true)) {
            let ratio = f64::from(m.sharpness) / f64::from(base.max(1e-3));
            let active = self.conds[Condition::Defocused.index()].active;
            defocus_bad = Some(if active {
                ratio < cfg.defocus_clear_ratio
            } else {
                ratio < cfg.defocus_ratio
            });
        }

        if covered || frozen {
            // Nothing to learn from and nothing to judge: keep the other conditions as they are.
        } else {
            if let Some(bad) = defocus_bad {
                self.conds[Condition::Defocused.index()].update(bad, raise, clear);
            }
            if let Some(bad) = scene_bad {
                self.conds[Condition::SceneChanged.index()].update(
                    bad,
                    cfg.scene_change_checks,
                    clear,
                );
            }
            let defocused = self.conds[Condition::Defocused.index()].active;
            let changed = self.conds[Condition::SceneChanged.index()].active;
            // Learn only from pictures that look normal, so a slow degradation is not learned
            // as the new normal.
            if !defocused && defocus_bad != Some(true) {
                let s = m.sharpness;
                self.baseline = Some(match self.baseline {
                    None => s,
                    Some(b) => b + alpha * (s - b),
                });
            }
            if !changed && scene_bad != Some(true) {
                match self.reference.as_mut() {
                    None => self.reference = Some(SceneReference::from_measures(m)),
                    Some(r) => r.learn(m, alpha),
                }
            }
            if changed {
                let since = *self.scene_changed_since.get_or_insert(t);
                if cfg.scene_adopt_s > 0.0
                    && t.saturating_sub(since).as_secs_f64() >= cfg.scene_adopt_s
                {
                    tracing::info!("the changed scene persisted; adopting it as the new reference");
                    self.reference = Some(SceneReference::from_measures(m));
                    self.conds[Condition::SceneChanged.index()].reset();
                    self.scene_changed_since = None;
                }
            } else {
                self.scene_changed_since = None;
            }
        }

        let fps = self.fps(t);
        if let Some(fps) = fps {
            let low = f64::from(fps) < cfg.min_fps_ratio * self.expected_fps;
            self.conds[Condition::LowFps.index()].update(low, raise, clear);
        }
        self.snapshot = Snapshot {
            mean: m.mean,
            std: m.std,
            sharpness: m.sharpness,
            sharpness_baseline: self.baseline.filter(|_| learned),
            scene_distance: distance,
            unchanged_s: unchanged as f32,
            frame_diff: diff.is_finite().then_some(diff),
            fps,
        };
    }

    fn overall(&self) -> &'static str {
        Condition::ALL
            .into_iter()
            .find(|c| self.conds[c.index()].active)
            .map_or("ok", Condition::as_str)
    }
}
