//! `[health]`: the health stage's config section and its checks (the config loader only
//! aggregates it and pins what [`HealthConfig::check`] finds to `file:line:col`).

use serde::{Deserialize, Serialize};

use crate::checks::SectionProblem;

/// `[health]`: camera health and tamper detection (`edge-agent/src/health`). Every camera is checked
/// against its own learned baseline, so thresholds are ratios, not absolute sharpness values.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Set false to skip image checks (stream up/down is still reported). Default true.
    pub enabled: bool,
    /// Seconds of stream time between two image checks. Default 1.0.
    pub check_interval_s: f64,
    /// Width of the grey image the checks run on (downscaled). Default 320.
    pub analysis_width: u32,
    /// Seconds of checks before the baseline and reference scene are trusted. Default 60.
    pub learn_s: f64,
    /// Time constant of the slowly learned baseline and reference scene, seconds. Default 300.
    pub reference_s: f64,
    /// Consecutive bad checks before a condition is raised. Default 3.
    pub raise_checks: u32,
    /// Consecutive good checks before a condition is cleared. Default 3.
    pub clear_checks: u32,
    /// Defocused when the Laplacian variance falls below this fraction of the baseline. Default 0.35.
    pub defocus_ratio: f64,
    /// ... and cleared when it is back above this fraction. Default 0.6.
    pub defocus_clear_ratio: f64,
    /// Covered when the grey image's standard deviation is below this (0..255). Default 6.
    pub covered_max_std: f64,
    /// Covered when the mean brightness is below this (0..255), whatever the texture. Default 8.
    pub covered_max_mean: f64,
    /// Scene changed when the distance to the reference scene (0..1) is above this. Default 0.45.
    pub scene_change_distance: f64,
    /// Consecutive checks over the distance before `scene_changed` is raised. Default 10.
    pub scene_change_checks: u32,
    /// A changed scene that persists this long becomes the new reference (camera re-aimed on
    /// purpose), seconds; 0 = never. Default 900.
    pub scene_adopt_s: f64,
    /// Frozen when the grey images of consecutive checks differ by less than this mean grey level
    /// (a live sensor's noise alone stays above it). Default 0.1.
    pub frozen_max_diff: f64,
    /// ... for this many seconds. Default 10.
    pub frozen_s: f64,
    /// Low frame rate when decoded fps falls below this fraction of the camera's `target_fps`.
    /// Default 0.5.
    pub min_fps_ratio: f64,
    /// Window over which the decoded fps is measured, seconds. Default 10.
    pub fps_window_s: f64,
    /// Seconds without a processed frame before the systemd watchdog stops being fed (a camera
    /// known to be reconnecting counts as alive). Default 20.
    pub watchdog_stale_s: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            check_interval_s: 1.0,
            analysis_width: 320,
            learn_s: 60.0,
            reference_s: 300.0,
            raise_checks: 3,
            clear_checks: 3,
            defocus_ratio: 0.35,
            defocus_clear_ratio: 0.6,
            covered_max_std: 6.0,
            covered_max_mean: 8.0,
            scene_change_distance: 0.45,
            scene_change_checks: 10,
            scene_adopt_s: 900.0,
            frozen_max_diff: 0.1,
            frozen_s: 10.0,
            min_fps_ratio: 0.5,
            fps_window_s: 10.0,
            watchdog_stale_s: 20.0,
        }
    }
}

impl HealthConfig {
    /// Values the monitor cannot work with, and combinations that make it flap or get killed.
    pub fn check(&self) -> Vec<SectionProblem> {
        let mut out: Vec<SectionProblem> = [
            (
                "check_interval_s",
                self.check_interval_s,
                0.05,
                3600.0,
                "1 s is usual",
            ),
            (
                "analysis_width",
                f64::from(self.analysis_width),
                32.0,
                4096.0,
                "320 is enough for every check",
            ),
            (
                "learn_s",
                self.learn_s,
                0.0,
                86_400.0,
                "a minute of normal pictures is enough",
            ),
            (
                "reference_s",
                self.reference_s,
                self.check_interval_s,
                86_400.0,
                "5 minutes; at least one check interval",
            ),
            (
                "defocus_ratio",
                self.defocus_ratio,
                0.01,
                1.0,
                "0.35: a third of the usual sharpness",
            ),
            (
                "defocus_clear_ratio",
                self.defocus_clear_ratio,
                0.01,
                1.0,
                "above defocus_ratio, so the state cannot flap; 0.6 is usual",
            ),
            (
                "covered_max_std",
                self.covered_max_std,
                0.0,
                255.0,
                "grey levels; 6 is a near-uniform picture",
            ),
            (
                "covered_max_mean",
                self.covered_max_mean,
                0.0,
                255.0,
                "grey levels; 8 is a black picture",
            ),
            (
                "scene_change_distance",
                self.scene_change_distance,
                0.01,
                1.0,
                "0.45; normal traffic stays under 0.1",
            ),
            (
                "scene_adopt_s",
                self.scene_adopt_s,
                0.0,
                31_536_000.0,
                "0 = never adopt; 900 s is usual",
            ),
            (
                "frozen_max_diff",
                self.frozen_max_diff,
                0.0,
                255.0,
                "grey levels; 0.1 catches repeated frames",
            ),
            ("frozen_s", self.frozen_s, 0.1, 86_400.0, "10 s is usual"),
            (
                "min_fps_ratio",
                self.min_fps_ratio,
                0.0,
                1.0,
                "0.5: half the target rate",
            ),
            (
                "fps_window_s",
                self.fps_window_s,
                0.5,
                3600.0,
                "10 s is usual",
            ),
            (
                "watchdog_stale_s",
                self.watchdog_stale_s,
                1.0,
                3600.0,
                "20 s, below the unit's WatchdogSec=30s",
            ),
        ]
        .into_iter()
        .filter_map(|(key, v, lo, hi, hint)| SectionProblem::out_of_range(key, v, lo, hi, hint))
        .collect();
        for (key, v) in [
            ("raise_checks", self.raise_checks),
            ("clear_checks", self.clear_checks),
            ("scene_change_checks", self.scene_change_checks),
        ] {
            if v == 0 {
                out.push(SectionProblem::error(
                    key,
                    format!("{key} must be at least 1"),
                    "3 is usual (10 for scene_change_checks)",
                ));
            }
        }
        if self.defocus_ratio >= self.defocus_clear_ratio {
            out.push(SectionProblem::error(
                "defocus_ratio",
                format!(
                    "defocus_ratio = {} is not below defocus_clear_ratio = {}",
                    self.defocus_ratio, self.defocus_clear_ratio
                ),
                "the clear ratio must be higher so the state cannot flap; 0.35 and 0.6 are usual",
            ));
        }
        if self.watchdog_stale_s >= 30.0 {
            out.push(SectionProblem::warning(
                "watchdog_stale_s",
                format!(
                    "watchdog_stale_s = {} is not below the unit's WatchdogSec=30s",
                    self.watchdog_stale_s
                ),
                "systemd would kill a stalled agent before it stops feeding the watchdog; raise WatchdogSec too",
            ));
        }
        out
    }
}
