//! `[clips]`: clips around rule events (this module owns the section and its checks).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::SectionProblem;

/// What happens to a camera's event clips.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClipMode {
    /// No ring, no clips.
    Off,
    /// Clips stay on the device (they hold unpixelated people); the event carries their hash.
    #[default]
    Store,
    /// Clips are also sent with the event, on its evidence topic (a site whose DPIA allows it).
    Send,
}

impl ClipMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClipMode::Off => "off",
            ClipMode::Store => "store",
            ClipMode::Send => "send",
        }
    }
}

/// `[clips]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClipsConfig {
    /// `store` (default), `send` or `off`; a camera's `clips` overrides it.
    #[serde(default)]
    pub mode: ClipMode,
    /// Seconds before the event; the clip starts at the keyframe before that. Default 5.
    #[serde(default = "default_pre_s")]
    pub pre_s: f64,
    /// Seconds after the event. Default 5.
    #[serde(default = "default_post_s")]
    pub post_s: f64,
    /// Encoded video kept in memory per camera, MiB. Default 16 (about 30 s of a 4 Mbit/s stream).
    #[serde(default = "default_ring_mb")]
    pub ring_mb: u64,
    /// Clips kept on the device, MiB; the oldest go first. Default 1024.
    #[serde(default = "default_store_mb")]
    pub store_mb: u64,
}

impl Default for ClipsConfig {
    fn default() -> Self {
        Self {
            mode: ClipMode::default(),
            pre_s: default_pre_s(),
            post_s: default_post_s(),
            ring_mb: default_ring_mb(),
            store_mb: default_store_mb(),
        }
    }
}

fn default_pre_s() -> f64 {
    5.0
}
fn default_post_s() -> f64 {
    5.0
}
fn default_ring_mb() -> u64 {
    16
}
fn default_store_mb() -> u64 {
    1024
}

impl ClipsConfig {
    pub fn pre(&self) -> Duration {
        Duration::from_secs_f64(self.pre_s.clamp(0.0, 60.0))
    }

    pub fn post(&self) -> Duration {
        Duration::from_secs_f64(self.post_s.clamp(0.0, 60.0))
    }

    /// Values the recorder cannot work with, and bounds that cannot hold a clip.
    pub fn check(&self) -> Vec<SectionProblem> {
        let mut out: Vec<SectionProblem> = [
            SectionProblem::out_of_range("pre_s", self.pre_s, 0.0, 60.0, "5 s shows the approach"),
            SectionProblem::out_of_range("post_s", self.post_s, 0.0, 60.0, "5 s shows the outcome"),
            SectionProblem::out_of_range(
                "ring_mb",
                self.ring_mb,
                1,
                512,
                "16 MiB holds about 30 s of a 4 Mbit/s stream",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.store_mb < 16 {
            out.push(SectionProblem::error(
                "store_mb",
                format!("store_mb = {} cannot hold even a few clips", self.store_mb),
                "1024 keeps about 250 clips of 10 s at 4 Mbit/s",
            ));
        }
        // bytes the window needs at a modest 4 Mbit/s: warn when the ring cannot hold it
        let window_mb = (self.pre_s + self.post_s).max(0.0) * 4.0 / 8.0 * 1.5;
        if self.mode != ClipMode::Off && (self.ring_mb as f64) < window_mb {
            out.push(SectionProblem::warning(
                "ring_mb",
                format!(
                    "ring_mb = {} holds less than pre_s + post_s = {} s of a 4 Mbit/s stream with one spare group of pictures",
                    self.ring_mb,
                    self.pre_s + self.post_s
                ),
                format!("use at least {} MiB, or shorter clips", window_mb.ceil()),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clips_section_checks_its_own_keys() {
        assert!(ClipsConfig::default().check().is_empty());
        let bad = ClipsConfig {
            pre_s: -1.0,
            post_s: 90.0,
            ring_mb: 2,
            store_mb: 4,
            ..ClipsConfig::default()
        };
        let keys: Vec<&str> = bad.check().iter().map(|p| p.key).collect();
        assert_eq!(keys, ["pre_s", "post_s", "store_mb", "ring_mb"]);
    }
}
