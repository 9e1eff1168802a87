//! Per-camera geometry and behaviour rules, as an integrator writes them in `[[cameras]]`.
//!
//! The rules stage owns these sections (`config` only aggregates them into the camera's table);
//! [`crate::rules::check_camera`] holds every semantic check so `edge-agent check` and the engine
//! agree, and [`super::kinds`] says which keys each kind takes. All coordinates are pixels of the
//! camera's full frame, origin top-left, y down.

use serde::{Deserialize, Serialize};

pub use super::kinds::RuleKind;

/// A point `[x, y]` in frame pixels.
pub type Point = [f64; 2];

/// `[[cameras.zones]]`: a polygon on the image; objects are in it when their box's bottom-centre is.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Zone id, unique within the camera; reported in events. Required.
    pub id: String,
    /// Corners `[[x, y], ...]`, at least 3, in drawing order, edges not crossing. Required.
    pub polygon: Vec<Point>,
    /// Only these COCO labels can be members (`person`, `bicycle`, `car`, `motorcycle`, `bus`,
    /// `truck`). Default: empty = every label.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Frames the anchor must be inside (or outside) before membership changes, so a box
    /// flickering on the edge does not enter and leave every frame. Default 3.
    #[serde(default = "default_inertia")]
    pub inertia: u32,
    /// Travel direction of a lane, as an arrow `[[x1, y1], [x2, y2]]` drawn on the image.
    /// Needed by `wrong_way`; gives `congestion` its queue axis. Default: none.
    #[serde(default)]
    pub direction: Option<[Point; 2]>,
}

fn default_inertia() -> u32 {
    3
}

/// `[[cameras.lines]]`: a counting line.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// Line id, unique within the camera. Required.
    pub id: String,
    /// The segment `[[x1, y1], [x2, y2]]`; only crossings of the segment itself count. Required.
    pub points: [Point; 2],
    /// Counted direction, as an arrow `[[x1, y1], [x2, y2]]` across the line. Default: none =
    /// both directions, `forward` being towards the right-hand side walking from the first point
    /// to the second.
    #[serde(default)]
    pub direction: Option<[Point; 2]>,
    /// Dead band either side of the line, in pixels: an anchor must get this far past the line for
    /// a crossing to count, so a box jittering on the line counts once. Default 6.
    #[serde(default = "default_hysteresis")]
    pub hysteresis_px: f64,
}

fn default_hysteresis() -> f64 {
    6.0
}

/// `[[cameras.rules]]`: one rule. Which keys apply depends on `kind` (see `configs/README.md`);
/// a key that does not apply to the kind is an error, so typos do not pass silently.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Rule id, unique within the camera; every event names it. Required.
    pub id: String,
    /// What the rule watches for. Required.
    pub kind: RuleKind,
    /// Zone id the rule applies in. Required for zone rules; optional for `stopped_vehicle`
    /// (whole frame) and `speeding`.
    #[serde(default)]
    pub zone: Option<String>,
    /// Line id, for `line_crossing`, `line_count` and `red_light` (the stop line).
    #[serde(default)]
    pub line: Option<String>,
    /// Zone id of the signal lamp `red_light` watches: a zone drawn tightly around the red lamp.
    #[serde(default)]
    pub signal: Option<String>,
    /// COCO labels the rule applies to. Default depends on the kind: vehicles (`car`,
    /// `motorcycle`, `bus`, `truck`) for vehicle rules, `person` for `loitering` and `intrusion`,
    /// every label for `zone`, lines and `overcrowding`.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Local time windows `"HH:MM-HH:MM"` when the rule is armed (may wrap midnight,
    /// `"22:00-05:00"`). Default: empty = always.
    #[serde(default)]
    pub active: Vec<String>,
    /// Least seconds between two `update` events of one rule and track. Default 5.
    #[serde(default = "default_update_every")]
    pub update_every_s: f64,
    /// Seconds an object must stay (stopped, loitering, in a restricted zone) before the event.
    #[serde(default)]
    pub dwell_s: Option<f64>,
    /// Seconds a condition must hold (wrong_way, overcrowding, congestion; red_light: seconds the
    /// lamp must have been red).
    #[serde(default)]
    pub min_duration_s: Option<f64>,
    /// Pixels travelled against the lane before `wrong_way` fires.
    #[serde(default)]
    pub min_distance_px: Option<f64>,
    /// Metres travelled against the lane (needs `calibration`); replaces `min_distance_px`.
    #[serde(default)]
    pub min_distance_m: Option<f64>,
    /// Objects in the zone (overcrowding) or queued vehicles (congestion) that raise the event.
    #[serde(default)]
    pub min_count: Option<u32>,
    /// Seconds between two `line_count` reports.
    #[serde(default)]
    pub interval_s: Option<f64>,
    /// Speed limit in km/h for `speeding`.
    #[serde(default)]
    pub limit_kmh: Option<f64>,
    /// Consecutive frames over the limit before `speeding` fires.
    #[serde(default)]
    pub min_frames: Option<u32>,
    /// Radius in pixels an anchor may wander and still be stationary. Default: 8 % of the box
    /// diagonal, at least 3 px, which absorbs detector jitter at any distance from the camera.
    #[serde(default)]
    pub still_radius_px: Option<f64>,
    /// Speed in px/s a vehicle must have had before a `sudden_stop`.
    #[serde(default)]
    pub min_speed_px_s: Option<f64>,
    /// Speed in km/h a vehicle must have had before a `sudden_stop` (needs `calibration`).
    #[serde(default)]
    pub min_speed_kmh: Option<f64>,
    /// Seconds from moving to standstill that count as sudden.
    #[serde(default)]
    pub within_s: Option<f64>,
    /// Vehicles stopping suddenly together that make a `sudden_stop` a possible incident.
    #[serde(default)]
    pub min_vehicles: Option<u32>,
    /// Seconds within which those vehicles must stop.
    #[serde(default)]
    pub group_s: Option<f64>,
}

fn default_update_every() -> f64 {
    5.0
}

/// `[cameras.calibration]`: maps image points on the road surface to metres, for speeds and
/// distances. Either `ground` or `distances` is required.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// Four image points on the road surface `[[x, y], ...]`, in order around the quadrilateral.
    pub image: Vec<Point>,
    /// The same four points on the ground in metres `[[X, Y], ...]` (any origin). Default: none.
    #[serde(default)]
    pub ground: Option<Vec<Point>>,
    /// Measured side lengths in metres of a ground rectangle: point 1→2, 2→3, 3→4, 4→1
    /// (opposite sides are averaged). Default: none.
    #[serde(default)]
    pub distances: Option<Vec<f64>>,
    /// Relative error of the measurements, in percent, added to every speed's uncertainty.
    /// Default 5.
    #[serde(default = "default_calibration_error")]
    pub error_pct: f64,
}

fn default_calibration_error() -> f64 {
    5.0
}

/// The part of one `[[cameras]]` entry the rules read: its zones, lines, rules and calibration,
/// borrowed from the camera's config (which the config aggregate owns).
#[derive(Debug, Clone, Copy)]
pub struct CameraGeometry<'a> {
    pub id: &'a str,
    /// `[w, h]` the geometry was drawn for, when the config states it.
    pub frame_size: Option<[u32; 2]>,
    pub zones: &'a [ZoneConfig],
    pub lines: &'a [LineConfig],
    pub rules: &'a [RuleConfig],
    pub calibration: Option<&'a CalibrationConfig>,
}

/// A camera's geometry owned, e.g. scaled onto a larger frame ([`crate::rules::draw::scaled`]).
#[derive(Debug, Clone)]
pub struct OwnedGeometry {
    pub id: String,
    pub frame_size: Option<[u32; 2]>,
    pub zones: Vec<ZoneConfig>,
    pub lines: Vec<LineConfig>,
    pub rules: Vec<RuleConfig>,
    pub calibration: Option<CalibrationConfig>,
}

impl OwnedGeometry {
    pub fn of(g: CameraGeometry<'_>) -> Self {
        OwnedGeometry {
            id: g.id.to_string(),
            frame_size: g.frame_size,
            zones: g.zones.to_vec(),
            lines: g.lines.to_vec(),
            rules: g.rules.to_vec(),
            calibration: g.calibration.cloned(),
        }
    }

    pub fn view(&self) -> CameraGeometry<'_> {
        CameraGeometry {
            id: &self.id,
            frame_size: self.frame_size,
            zones: &self.zones,
            lines: &self.lines,
            rules: &self.rules,
            calibration: self.calibration.as_ref(),
        }
    }
}
