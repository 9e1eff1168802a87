//! Tracker settings: the future `[tracker]` config section, with the defaults tuned on real
//! traffic footage (YOLOX-Nano at 10 fps) and a check that names the offending key.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// COCO ids of the YOLOX manifests: person, bicycle, car, motorcycle, bus, truck.
const DEFAULT_CLASSES: [usize; 6] = [0, 1, 2, 3, 5, 7];
/// Car, bus and truck: the detector flips between them on the same vehicle.
const DEFAULT_VEHICLE_FAMILY: [usize; 3] = [2, 5, 7];

/// How detections become tracks. Every key has a default; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Detections at or above this score are matched first, against every track. Default 0.5.
    pub high_score: f32,
    /// Detections between this and `high_score` only keep confirmed (or lost) tracks alive (the
    /// second association stage: a partly occluded object scores low but is still there); lower
    /// scores are ignored. Default 0.1.
    pub low_score: f32,
    /// An unmatched detection starts a new track only at or above this score, so noise does not
    /// spawn tracks. Must be at least `high_score`. Default 0.6.
    pub new_track_score: f32,
    /// Least IoU between a track's predicted box and a high-score detection to match them.
    /// Default 0.2 (ByteTrack's first-stage gate).
    pub match_iou: f32,
    /// Least IoU for a low-score detection to match a confirmed or lost track; stricter because
    /// low scores are less trustworthy. Default 0.5.
    pub low_match_iou: f32,
    /// Matched frames (including the first) before a track is confirmed and reported. Default 3.
    pub min_hits: u32,
    /// How long a confirmed track is kept, predicted, without a detection before it ends; within
    /// this time it can be re-associated under its old id. TOML key `max_lost_s`, in seconds.
    /// Default 1.5 s.
    #[serde(
        rename = "max_lost_s",
        deserialize_with = "seconds",
        serialize_with = "as_seconds"
    )]
    pub max_lost: Duration,
    /// Detector class ids to track; detections of other classes are ignored. Default the COCO
    /// person, bicycle, car, motorcycle, bus and truck: `[0, 1, 2, 3, 5, 7]`.
    pub classes: Vec<usize>,
    /// Groups of class ids the detector confuses on one object; a track matches detections of
    /// any class in its group and reports the most frequent recent one. A class in no group only
    /// matches itself. Default `[[2, 5, 7]]` (car, bus, truck).
    pub families: Vec<Vec<usize>>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_score: 0.5,
            low_score: 0.1,
            new_track_score: 0.6,
            match_iou: 0.2,
            low_match_iou: 0.5,
            min_hits: 3,
            max_lost: Duration::from_millis(1500),
            classes: DEFAULT_CLASSES.to_vec(),
            families: vec![DEFAULT_VEHICLE_FAMILY.to_vec()],
        }
    }
}

/// A tracker setting that cannot work; `key` is the name under `[tracker]`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tracker.{key}: {message}")]
pub struct TrackerConfigError {
    pub key: &'static str,
    pub message: String,
}

impl TrackerConfig {
    /// Checks the values against each other; the tracker itself runs with any values, but these
    /// combinations silently disable part of it.
    pub fn validate(&self) -> Result<(), TrackerConfigError> {
        let err = |key, message: String| Err(TrackerConfigError { key, message });
        for (key, v) in [
            ("high_score", self.high_score),
            ("low_score", self.low_score),
            ("new_track_score", self.new_track_score),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return err(key, format!("{v} is not a score between 0 and 1"));
            }
        }
        for (key, v) in [
            ("match_iou", self.match_iou),
            ("low_match_iou", self.low_match_iou),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return err(key, format!("{v} is not an IoU strictly between 0 and 1"));
            }
        }
        if self.low_score > self.high_score {
            return err(
                "low_score",
                format!(
                    "{} is above high_score {}; the second association stage would never run",
                    self.low_score, self.high_score
                ),
            );
        }
        if self.new_track_score < self.high_score {
            return err(
                "new_track_score",
                format!(
                    "{} is below high_score {}; detections that start tracks must be high-score ones",
                    self.new_track_score, self.high_score
                ),
            );
        }
        if self.min_hits == 0 {
            return err("min_hits", "must be at least 1".into());
        }
        if self.classes.is_empty() {
            return err("classes", "is empty: nothing would be tracked".into());
        }
        let mut seen = Vec::new();
        for family in &self.families {
            for &c in family {
                if seen.contains(&c) {
                    return err("families", format!("class {c} is in more than one family"));
                }
                seen.push(c);
            }
        }
        Ok(())
    }
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = f64::deserialize(d)?;
    Duration::try_from_secs_f64(s).map_err(|_| {
        serde::de::Error::custom(format!("{s} is not a duration in seconds (a number ≥ 0)"))
    })
}

fn as_seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults_and_they_validate() {
        let cfg: TrackerConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, TrackerConfig::default());
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn reads_seconds_and_refuses_unknown_keys() {
        let cfg: TrackerConfig =
            toml::from_str("max_lost_s = 0.75\nmin_hits = 2\nfamilies = []").unwrap();
        assert_eq!(cfg.max_lost, Duration::from_millis(750));
        assert_eq!(cfg.min_hits, 2);
        assert!(cfg.families.is_empty());
        let e = toml::from_str::<TrackerConfig>("max_lost = 1").unwrap_err();
        assert!(e.to_string().contains("unknown field `max_lost`"), "{e}");
        let e = toml::from_str::<TrackerConfig>("max_lost_s = -1").unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
        let back = toml::to_string(&cfg).unwrap();
        assert!(back.contains("max_lost_s = 0.75"), "{back}");
    }

    #[test]
    fn validate_names_the_key() {
        let bad = [
            (
                TrackerConfig {
                    low_score: 0.7,
                    ..Default::default()
                },
                "tracker.low_score",
            ),
            (
                TrackerConfig {
                    new_track_score: 0.4,
                    ..Default::default()
                },
                "tracker.new_track_score",
            ),
            (
                TrackerConfig {
                    match_iou: 0.0,
                    ..Default::default()
                },
                "tracker.match_iou",
            ),
            (
                TrackerConfig {
                    min_hits: 0,
                    ..Default::default()
                },
                "tracker.min_hits",
            ),
            (
                TrackerConfig {
                    families: vec![vec![2, 7], vec![7, 5]],
                    ..Default::default()
                },
                "tracker.families",
            ),
            (
                TrackerConfig {
                    high_score: f32::NAN,
                    ..Default::default()
                },
                "tracker.high_score",
            ),
        ];
        for (cfg, key) in bad {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.starts_with(key), "{e}");
        }
    }
}
