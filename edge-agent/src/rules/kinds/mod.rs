//! Rule kinds as data: one [`RuleKind`] for the config, the engine and the events, a table of each
//! kind's keys, defaults, classes and event names ([`RuleKind::spec`], checked by the compiler),
//! and one file per behaviour behind the small [`Behaviour`] trait.
//!
//! Adding a kind: a variant and its [`Spec`] row here, its behaviour in a file beside this one
//! (it reads its typed parameters from the [`RuleConfig`] with its defaults), and — because the
//! wire contract is explicit — its event name in `events::EventKind` with an example. A new key
//! also needs its [`Key`] and its field in [`RuleConfig`].

mod crowd;
mod dwell;
mod line_count;
mod line_crossing;
mod red_light;
mod speeding;
mod stopped_vehicle;
mod sudden_stop;
mod wrong_way;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::RuleConfig;
use super::rule::{Core, Ctx};
use super::{Line, RuleEvent, Zone};
use crate::events::EventKind;

pub(crate) use speeding::ground_speed;

/// The COCO labels the detector reports that rules can filter on.
pub const LABELS: &[&str] = &["person", "bicycle", "car", "motorcycle", "bus", "truck"];
/// Road vehicles: the default classes of vehicle rules.
pub const VEHICLES: &[&str] = &["car", "motorcycle", "bus", "truck"];
const PEOPLE: &[&str] = &["person"];

/// What a rule watches for (`kind` in `[[cameras.rules]]`). Event kinds are the same names, except
/// `zone`, whose stay is reported as `zone_enter` (new, update) and `zone_exit` (end).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Zone,
    LineCrossing,
    LineCount,
    WrongWay,
    StoppedVehicle,
    Loitering,
    Intrusion,
    Overcrowding,
    Congestion,
    Speeding,
    SuddenStop,
    RedLight,
}

/// A key of `[[cameras.rules]]` that only some kinds take (`id`, `kind`, `classes`, `active` and
/// `update_every_s` apply to every kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Zone,
    Line,
    Signal,
    DwellS,
    MinDurationS,
    MinDistancePx,
    MinDistanceM,
    MinCount,
    IntervalS,
    LimitKmh,
    MinFrames,
    StillRadiusPx,
    MinSpeedPxS,
    MinSpeedKmh,
    WithinS,
    MinVehicles,
    GroupS,
}

/// One row of the kinds table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The kind-specific keys it takes.
    pub keys: &'static [Key],
    /// Of those, the ones it cannot do without.
    pub required: &'static [Key],
    /// Classes when the rule lists none.
    pub classes: &'static [&'static str],
    /// The event it raises (`new`, `update`).
    pub event: EventKind,
    /// The event that ends it (only `zone` differs: `zone_exit`).
    pub end_event: EventKind,
    /// Its zone must have a `direction` (a lane).
    pub lane: bool,
    /// It always works in metres: the camera needs `[cameras.calibration]`.
    pub calibrated: bool,
}

impl RuleKind {
    /// Every kind, in the order of `configs/README.md`.
    pub const ALL: [RuleKind; 12] = [
        Self::Zone,
        Self::LineCrossing,
        Self::LineCount,
        Self::WrongWay,
        Self::StoppedVehicle,
        Self::Loitering,
        Self::Intrusion,
        Self::Overcrowding,
        Self::Congestion,
        Self::Speeding,
        Self::SuddenStop,
        Self::RedLight,
    ];

    /// The snake_case name of the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zone => "zone",
            Self::LineCrossing => "line_crossing",
            Self::LineCount => "line_count",
            Self::WrongWay => "wrong_way",
            Self::StoppedVehicle => "stopped_vehicle",
            Self::Loitering => "loitering",
            Self::Intrusion => "intrusion",
            Self::Overcrowding => "overcrowding",
            Self::Congestion => "congestion",
            Self::Speeding => "speeding",
            Self::SuddenStop => "sudden_stop",
            Self::RedLight => "red_light",
        }
    }

    /// The kind's row of the table.
    pub fn spec(self) -> Spec {
        use Key::*;
        let row = |keys, required, classes, event| Spec {
            keys,
            required,
            classes,
            event,
            end_event: event,
            lane: false,
            calibrated: false,
        };
        match self {
            Self::Zone => Spec {
                end_event: EventKind::ZoneExit,
                ..row(&[Zone], &[Zone], LABELS, EventKind::ZoneEnter)
            },
            Self::LineCrossing => row(&[Line], &[Line], LABELS, EventKind::LineCrossing),
            Self::LineCount => row(&[Line, IntervalS], &[Line], LABELS, EventKind::LineCount),
            Self::WrongWay => Spec {
                lane: true,
                ..row(
                    &[Zone, MinDistancePx, MinDistanceM, MinDurationS],
                    &[Zone],
                    VEHICLES,
                    EventKind::WrongWay,
                )
            },
            Self::StoppedVehicle => row(
                &[Zone, DwellS, StillRadiusPx],
                &[],
                VEHICLES,
                EventKind::StoppedVehicle,
            ),
            Self::Loitering => row(&[Zone, DwellS], &[Zone], PEOPLE, EventKind::Loitering),
            Self::Intrusion => row(&[Zone, DwellS], &[Zone], PEOPLE, EventKind::Intrusion),
            Self::Overcrowding => row(
                &[Zone, MinCount, MinDurationS],
                &[Zone, MinCount],
                LABELS,
                EventKind::Overcrowding,
            ),
            Self::Congestion => row(
                &[Zone, MinCount, MinDurationS, StillRadiusPx],
                &[Zone, MinCount],
                VEHICLES,
                EventKind::Congestion,
            ),
            Self::Speeding => Spec {
                calibrated: true,
                ..row(
                    &[Zone, LimitKmh, MinFrames],
                    &[LimitKmh],
                    VEHICLES,
                    EventKind::Speeding,
                )
            },
            Self::SuddenStop => row(
                &[
                    Zone,
                    MinSpeedPxS,
                    MinSpeedKmh,
                    WithinS,
                    MinVehicles,
                    GroupS,
                    StillRadiusPx,
                ],
                &[Zone],
                VEHICLES,
                EventKind::SuddenStop,
            ),
            Self::RedLight => row(
                &[Line, Signal, MinDurationS],
                &[Line, Signal],
                VEHICLES,
                EventKind::RedLight,
            ),
        }
    }
}

impl Key {
    /// Every key, in the order of [`RuleConfig`].
    pub const ALL: [Key; 17] = [
        Self::Zone,
        Self::Line,
        Self::Signal,
        Self::DwellS,
        Self::MinDurationS,
        Self::MinDistancePx,
        Self::MinDistanceM,
        Self::MinCount,
        Self::IntervalS,
        Self::LimitKmh,
        Self::MinFrames,
        Self::StillRadiusPx,
        Self::MinSpeedPxS,
        Self::MinSpeedKmh,
        Self::WithinS,
        Self::MinVehicles,
        Self::GroupS,
    ];

    /// The key's name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zone => "zone",
            Self::Line => "line",
            Self::Signal => "signal",
            Self::DwellS => "dwell_s",
            Self::MinDurationS => "min_duration_s",
            Self::MinDistancePx => "min_distance_px",
            Self::MinDistanceM => "min_distance_m",
            Self::MinCount => "min_count",
            Self::IntervalS => "interval_s",
            Self::LimitKmh => "limit_kmh",
            Self::MinFrames => "min_frames",
            Self::StillRadiusPx => "still_radius_px",
            Self::MinSpeedPxS => "min_speed_px_s",
            Self::MinSpeedKmh => "min_speed_kmh",
            Self::WithinS => "within_s",
            Self::MinVehicles => "min_vehicles",
            Self::GroupS => "group_s",
        }
    }

    /// Whether the rule sets the key.
    pub fn is_set(self, r: &RuleConfig) -> bool {
        match self {
            Self::Zone => r.zone.is_some(),
            Self::Line => r.line.is_some(),
            Self::Signal => r.signal.is_some(),
            Self::MinCount => r.min_count.is_some(),
            Self::MinFrames => r.min_frames.is_some(),
            Self::MinVehicles => r.min_vehicles.is_some(),
            _ => self.real(r).is_some(),
        }
    }

    /// The value of a key that holds a real number (seconds, pixels, metres, speeds).
    pub fn real(self, r: &RuleConfig) -> Option<f64> {
        match self {
            Self::DwellS => r.dwell_s,
            Self::MinDurationS => r.min_duration_s,
            Self::MinDistancePx => r.min_distance_px,
            Self::MinDistanceM => r.min_distance_m,
            Self::IntervalS => r.interval_s,
            Self::LimitKmh => r.limit_kmh,
            Self::StillRadiusPx => r.still_radius_px,
            Self::MinSpeedPxS => r.min_speed_px_s,
            Self::MinSpeedKmh => r.min_speed_kmh,
            Self::WithinS => r.within_s,
            Self::GroupS => r.group_s,
            Self::Zone
            | Self::Line
            | Self::Signal
            | Self::MinCount
            | Self::MinFrames
            | Self::MinVehicles => None,
        }
    }

    /// The value of a key that holds a count.
    pub fn count(self, r: &RuleConfig) -> Option<u32> {
        match self {
            Self::MinCount => r.min_count,
            Self::MinFrames => r.min_frames,
            Self::MinVehicles => r.min_vehicles,
            _ => None,
        }
    }
}

/// The classes a rule applies to: its own list, else the kind's default.
pub fn rule_classes(r: &RuleConfig) -> Vec<String> {
    if !r.classes.is_empty() {
        return r.classes.clone();
    }
    r.kind
        .spec()
        .classes
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A distance threshold in image pixels or ground metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Distance {
    Px(f64),
    M(f64),
}

/// A speed threshold in pixels per second or km/h on the ground.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Speed {
    PxPerS(f64),
    Kmh(f64),
}

/// What one kind does with the frames. The rule's shared state (its id, scope, open events and
/// their lifecycle) is the [`Core`]; a behaviour keeps only its own, mostly per track.
pub(crate) trait Behaviour: Send {
    /// One frame.
    fn step(&mut self, core: &mut Core, ctx: &Ctx<'_>, out: &mut Vec<RuleEvent>);
    /// What it keeps per track, if anything.
    fn tracks(&mut self) -> Option<&mut dyn PerTrack> {
        None
    }
    /// The track ended or left the rule's zone: drop what is kept about it.
    fn forget(&mut self, track: u64) {
        if let Some(t) = self.tracks() {
            t.forget(track);
        }
    }
    /// The tracker switched the track's id: what is kept follows it.
    fn rename(&mut self, old: u64, new: u64) {
        if let Some(t) = self.tracks() {
            t.rename(old, new);
        }
    }
    /// The stream broke: drop everything kept per track (zone-wide state goes on).
    fn forget_tracks(&mut self) {
        if let Some(t) = self.tracks() {
            t.clear();
        }
    }
    /// The rule's time window closed: start over.
    fn reset(&mut self) {
        self.forget_tracks();
    }
    /// The stream ended: last words before every open event is closed.
    fn finish(
        &mut self,
        _core: &mut Core,
        _t: f64,
        _td: Duration,
        _zones: &[Zone],
        _lines: &[Line],
        _out: &mut Vec<RuleEvent>,
    ) {
    }
}

/// State kept per track id.
pub(crate) trait PerTrack {
    fn forget(&mut self, track: u64);
    fn rename(&mut self, old: u64, new: u64);
    fn clear(&mut self);
}

impl<T> PerTrack for HashMap<u64, T> {
    fn forget(&mut self, track: u64) {
        self.remove(&track);
    }
    fn rename(&mut self, old: u64, new: u64) {
        if let Some(v) = self.remove(&old) {
            self.insert(new, v);
        }
    }
    fn clear(&mut self) {
        HashMap::clear(self);
    }
}

/// The behaviour of a rule, with its thresholds (defaults applied).
pub(crate) fn behaviour(r: &RuleConfig) -> Box<dyn Behaviour> {
    match r.kind {
        RuleKind::Zone | RuleKind::Loitering | RuleKind::Intrusion => {
            Box::new(dwell::Dwell::new(r))
        }
        RuleKind::LineCrossing => Box::new(line_crossing::LineCrossing),
        RuleKind::LineCount => Box::new(line_count::LineCount::new(r)),
        RuleKind::WrongWay => Box::new(wrong_way::WrongWay::new(r)),
        RuleKind::StoppedVehicle => Box::new(stopped_vehicle::StoppedVehicle::new(r)),
        RuleKind::Overcrowding | RuleKind::Congestion => Box::new(crowd::Crowd::new(r)),
        RuleKind::Speeding => Box::new(speeding::Speeding::new(r)),
        RuleKind::SuddenStop => Box::new(sudden_stop::SuddenStop::new(r)),
        RuleKind::RedLight => Box::new(red_light::RedLight::new(r)),
    }
}

pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}
