//! The event contract between the device and the integration centre (DESIGN.md "Events and
//! topics"): typed Rust values that serialise to versioned JSON, the committed JSON Schema made from
//! them, and the MQTT topic layout.
//!
//! The pipeline builds an [`Event`] and hands it with its [`evidence::EvidenceImage`]s to
//! `publish::Delivery::submit`, which assigns `seq`, fills the evidence references and spools it.

pub mod evidence;
pub mod examples;
pub mod schema;
pub mod status;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of the JSON layout; bumped on any change a consumer must know about.
pub const SCHEMA_VERSION: u32 = 1;

/// One alert or observation, as published on `{prefix}/{site}/{device}/events/{kind}`.
///
/// Consumers dedupe by `event_id` (delivery is at-least-once) and detect loss by gaps in `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Layout version, [`SCHEMA_VERSION`] when produced by this build.
    pub schema_version: u32,
    /// UUIDv7: unique, and sorts by creation time.
    pub event_id: Uuid,
    /// Per-device monotonic number, persisted across restarts; assigned by the spool on submit.
    pub seq: u64,
    pub kind: EventKind,
    pub phase: Phase,
    pub site_id: String,
    pub device_id: String,
    pub camera_id: String,
    /// Where the camera stands, as the installer recorded it; absent when not configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Time the frame was captured, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    #[schemars(with = "DateTime<Utc>")]
    pub capture_time: DateTime<Utc>,
    /// Whether `capture_time` comes from a synchronised clock; an unsynced clock makes it evidence
    /// of order only.
    pub time_sync: TimeSync,
    /// Which clock `capture_time` was read from, so a reviewer knows how a clock step shows in
    /// it (`seq` orders events whatever the clock did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_source: Option<TimeSource>,
    /// The object the event is about; absent for camera-level events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectInfo>,
    /// The rule that fired; absent for plain observations such as `plate_read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleInfo>,
    /// Images (and clips) published separately on `evidence/{sha256}`.
    #[serde(default)]
    pub evidence: Vec<EvidenceRef>,
    /// The event this one adds evidence to (an `update` carrying a rule event's clip), by its
    /// `event_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<Uuid>,
    /// Models that produced the event, so a reviewer can tell which weights read the plate.
    #[serde(default)]
    pub models: Vec<ModelId>,
    /// sha256 prefix of the config in force, to tie the event to rules and zones.
    pub config_hash: String,
    /// Hash of the device's newest audit record when the event was made. Events are spooled and
    /// acknowledged, so the centre holds these anchors even across outages; `edge-agent audit
    /// verify --anchor` shows whether the log on the device still contains one (not cut short,
    /// not replaced). Absent when the device keeps no audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<String>,
    /// The device's signature over everything else in the event (`edge-agent verify`); absent
    /// from events that were not spooled (e.g. `replay`'s file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<EventSignature>,
}

/// Where a camera stands and looks, so the centre can put its events on a map (`[device]` and
/// `[[cameras]]` `location` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// WGS 84 latitude, degrees north.
    pub lat: f64,
    /// WGS 84 longitude, degrees east.
    pub lon: f64,
    /// Direction the camera looks, degrees clockwise from true north.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    /// Human address or road reference, e.g. `QL22 km 12, Trảng Bàng, Tây Ninh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Longest address accepted (it travels in every event).
pub const MAX_ADDRESS_CHARS: usize = 160;

impl Location {
    /// Values that cannot be a place (errors), and places that are probably a mistake
    /// (warnings); keys inside `location`.
    pub fn check(&self) -> Vec<crate::checks::SectionProblem> {
        use crate::checks::SectionProblem;
        let mut out = Vec::new();
        let mut push = |key, message: String, hint: &str, warning: bool| {
            out.push(if warning {
                SectionProblem::warning(key, message, hint)
            } else {
                SectionProblem::error(key, message, hint)
            })
        };
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            push(
                "lat",
                format!("lat = {} is not a latitude (-90..=90)", self.lat),
                "degrees north, WGS 84, as a phone's map app shows it",
                false,
            );
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            push(
                "lon",
                format!("lon = {} is not a longitude (-180..=180)", self.lon),
                "degrees east, WGS 84",
                false,
            );
        }
        if let Some(h) = self.heading_deg
            && !(h.is_finite() && (0.0..360.0).contains(&h))
        {
            push(
                "heading_deg",
                format!("heading_deg = {h} is outside 0..360"),
                "degrees clockwise from true north: 0 north, 90 east",
                false,
            );
        }
        if let Some(a) = &self.address {
            if a.chars().count() > MAX_ADDRESS_CHARS {
                push(
                    "address",
                    format!(
                        "address has {} characters; at most {MAX_ADDRESS_CHARS}",
                        a.chars().count()
                    ),
                    "a road reference and place name is enough; it travels in every event",
                    false,
                );
            }
            if a.chars().any(char::is_control) {
                push(
                    "address",
                    "address contains control characters".into(),
                    "one line of text",
                    false,
                );
            }
        }
        // Vietnam with its islands lies within these; outside them the two are often swapped.
        let in_vietnam = (6.0..=24.0).contains(&self.lat) && (102.0..=118.0).contains(&self.lon);
        let place_ok = self.lat.is_finite() && self.lon.is_finite() && self.lat.abs() <= 90.0;
        if place_ok && self.lon.abs() <= 180.0 && !in_vietnam {
            push(
                "lat",
                format!("({}, {}) is outside Vietnam", self.lat, self.lon),
                "check that lat and lon are not swapped (Tây Ninh is lat 11.3, lon 106.1)",
                true,
            );
        }
        out
    }
}

/// An event's signature: Ed25519 by the device's key over the event's canonical bytes (the JSON
/// without this member, written again with sorted keys) and `prev`, the previous event's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventSignature {
    /// `ed25519`.
    pub alg: String,
    /// The device's public key, hex (the birth message carries it too).
    pub key: String,
    /// sha256 (hex) of the previous event's `sig`, or 64 zeros for the device's first: a removed
    /// event breaks the chain.
    pub prev: String,
    /// The signature, hex.
    pub sig: String,
}

impl Event {
    /// A new event with a fresh UUIDv7; `seq` and `evidence` are filled in on submit.
    pub fn new(
        kind: EventKind,
        phase: Phase,
        site_id: impl Into<String>,
        device_id: impl Into<String>,
        camera_id: impl Into<String>,
        capture_time: DateTime<Utc>,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            event_id: Uuid::now_v7(),
            seq: 0,
            kind,
            phase,
            site_id: site_id.into(),
            device_id: device_id.into(),
            camera_id: camera_id.into(),
            location: None,
            capture_time,
            time_sync: TimeSync::Unknown,
            time_source: None,
            object: None,
            rule: None,
            evidence: Vec::new(),
            refers_to: None,
            models: Vec::new(),
            config_hash: String::new(),
            audit_head: None,
            signature: None,
        }
    }
}

/// Capture times are always written in UTC with a `Z`, with as many fraction digits as needed.
mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// What happened. The MQTT topic ends with this name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A plate was read on a vehicle track (consensus of the per-track vote).
    PlateRead,
    /// A read plate is on a watchlist.
    WatchlistHit,
    /// A track moved against a line's allowed direction.
    WrongWay,
    /// A vehicle stayed still in a zone longer than allowed.
    StoppedVehicle,
    /// A person stayed in a zone longer than allowed.
    Loitering,
    /// An object entered a forbidden zone.
    Intrusion,
    /// A track crossed a counting line.
    LineCrossing,
    /// Periodic per-line counts.
    LineCount,
    ZoneEnter,
    ZoneExit,
    /// More objects in a zone than allowed.
    Overcrowding,
    /// Traffic density or speed in a zone crossed the congestion threshold.
    Congestion,
    /// Estimated speed over the limit (always an estimate, see `rule.details`).
    Speeding,
    /// A sharp deceleration of a track.
    SuddenStop,
    /// A vehicle crossed the stop line while the signal lamp was red.
    RedLight,
    /// A camera stream was lost, recovered, or degraded.
    CameraHealth,
}

impl EventKind {
    /// Every kind, in the order of the contract.
    pub const ALL: [EventKind; 16] = [
        Self::PlateRead,
        Self::WatchlistHit,
        Self::WrongWay,
        Self::StoppedVehicle,
        Self::Loitering,
        Self::Intrusion,
        Self::LineCrossing,
        Self::LineCount,
        Self::ZoneEnter,
        Self::ZoneExit,
        Self::Overcrowding,
        Self::Congestion,
        Self::Speeding,
        Self::SuddenStop,
        Self::RedLight,
        Self::CameraHealth,
    ];

    /// The snake_case name used in JSON and topics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlateRead => "plate_read",
            Self::WatchlistHit => "watchlist_hit",
            Self::WrongWay => "wrong_way",
            Self::StoppedVehicle => "stopped_vehicle",
            Self::Loitering => "loitering",
            Self::Intrusion => "intrusion",
            Self::LineCrossing => "line_crossing",
            Self::LineCount => "line_count",
            Self::ZoneEnter => "zone_enter",
            Self::ZoneExit => "zone_exit",
            Self::Overcrowding => "overcrowding",
            Self::Congestion => "congestion",
            Self::Speeding => "speeding",
            Self::SuddenStop => "sudden_stop",
            Self::RedLight => "red_light",
            Self::CameraHealth => "camera_health",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of a situation: one `new`, any number of `update`s, one `end` (Frigate's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    New,
    Update,
    End,
}

/// State of the device clock when the frame was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeSync {
    Synced,
    Unsynced,
    Unknown,
}

/// Where an event's `capture_time` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The device's wall clock when the frame arrived (live cameras): an NTP step shows as a
    /// jump in `capture_time`.
    Receipt,
    /// The device's wall clock when the file opened plus the file's media time (files, folders).
    FileStart,
    /// The device's wall clock when the event was made (no frame: end of stream, camera health).
    Agent,
}

/// The tracked object an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectInfo {
    /// Detector label, e.g. `car`, `motorcycle`, `person`.
    pub class: String,
    /// Tracker id, unique per camera while the agent runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
    /// Box in frame pixels: x1, y1, x2, y2.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Detector confidence, 0..1.
    pub score: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<PlateInfo>,
}

/// A read licence plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlateInfo {
    /// Normalised `[0-9A-Z]`, top row first, e.g. `29B125662`. Absent when the plate is sent
    /// hashed (`text_hmac`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// As printed on the plate, e.g. `29-B1 256.62`. Absent when the plate is sent hashed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display: String,
    /// `hmac-sha256:` and the lowercase hex HMAC-SHA256 of `text` under the site key, sent instead
    /// of `text` and `display` for plates not on the watchlist when `[privacy] hash_plates` is on.
    /// Stable per site key, so the centre can link sightings of one vehicle without its plate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_hmac: Option<String>,
    /// Whole-plate confidence, 0..1.
    pub confidence: f32,
    /// Confidence of each character of `text`.
    pub char_confidence: Vec<f32>,
    /// 1 for long plates, 2 for square (motorbike) plates.
    pub rows: u8,
    /// Province or issuing body from the plate's code, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// Whether the text matches a Vietnamese plate series.
    pub valid: bool,
}

/// The rule that produced the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleInfo {
    /// Rule id from the config.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// Rule-specific measurements (dwell seconds, speed estimate, counts …).
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Which picture an evidence image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceRole {
    /// The whole frame, downscaled. On a rule event it shows the zone or line the rule watches
    /// and the offending object's box, labelled with the event kind and track id (the object
    /// crop stays clean).
    Frame,
    /// The object (the plate crop for plate events).
    Object,
    /// An MP4 of the seconds around a rule event, remuxed from the camera's own stream (H.264,
    /// no re-encode). Sent in an `update` of the event once its `post_s` has passed; by default
    /// the file stays on the device (`on_request`).
    Clip,
    /// One piece of a clip that travels (`clips = "send"`, or an `evidence/get` request), each
    /// on its own topic; the pieces follow their `clip` in order, and concatenated they hash to
    /// its sha256.
    ClipPart,
}

/// A reference to a JPEG (or a clip's MP4) published on `topic`; the consumer checks its sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceRef {
    pub role: EvidenceRole,
    /// Lowercase hex sha256 of the JPEG (MP4) bytes.
    pub sha256: String,
    /// Full MQTT topic the file is published on (for a clip kept on the device: once requested).
    pub topic: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Clips: what the clip is, how long and whether it left the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipInfo>,
    /// An image kept on the device (`[mqtt] evidence = "on_request"`): it is published on `topic`
    /// only when the centre asks for it (`evidence/get`). Absent: it travels with the event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_request: bool,
}

/// What a clip holds, beside its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClipInfo {
    /// Length in milliseconds, from its first to past its last picture.
    pub duration_ms: u64,
    /// Capture time of its first picture, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    #[schemars(with = "DateTime<Utc>")]
    pub start: DateTime<Utc>,
    /// False when the stream was lost or ended before `post_s`, or the camera's ring no longer
    /// held the seconds before the event: the clip holds what existed.
    pub complete: bool,
    /// True: the file stays on the device (it shows unpixelated people) until the centre asks
    /// for it (`evidence/get`). False: it travels with this event as `parts` `clip_part` pieces.
    pub on_request: bool,
    /// How many `clip_part` pieces follow (when the clip travels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
}

/// A model that contributed to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelId {
    /// Manifest name.
    pub name: String,
    /// First 12 hex digits of the weight file's sha256.
    pub sha256: String,
}

/// The MQTT topics of one device, `{prefix}/{site}/{device}/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, site_id: &str, device_id: &str) -> Self {
        Self {
            base: format!("{prefix}/{site_id}/{device_id}"),
        }
    }
    pub fn event(&self, kind: EventKind) -> String {
        format!("{}/events/{kind}", self.base)
    }
    pub fn evidence(&self, sha256: &str) -> String {
        format!("{}/evidence/{sha256}", self.base)
    }
    /// Retained birth message, and the LWT `offline`.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    pub fn health(&self) -> String {
        format!("{}/health", self.base)
    }
    /// Inbound: a new config (docs/remote.md).
    pub fn config_set(&self) -> String {
        format!("{}/config/set", self.base)
    }
    /// Inbound: a new watchlist.
    pub fn watchlist_set(&self) -> String {
        format!("{}/watchlist/set", self.base)
    }
    /// Inbound: a signed request for a clip kept on the device.
    pub fn evidence_get(&self) -> String {
        format!("{}/evidence/get", self.base)
    }
    /// Retained: the running config and the outcome of the last remote change.
    pub fn config_state(&self) -> String {
        format!("{}/config/state", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_as_their_topic_names() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: EventKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn event_round_trips_and_uses_contract_names() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T07:15:30.250+07:00")
            .unwrap()
            .with_timezone(&Utc);
        let mut e = Event::new(EventKind::PlateRead, Phase::New, "s", "d", "c", t);
        e.object = Some(ObjectInfo {
            class: "car".into(),
            track_id: Some(4),
            bbox: [1.0, 2.0, 3.0, 4.0],
            score: 0.9,
            plate: None,
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["capture_time"], "2026-03-01T00:15:30.250Z");
        assert_eq!(v["object"]["box"][2], 3.0);
        assert_eq!(v["kind"], "plate_read");
        assert_eq!(v["event_id"].as_str().unwrap().as_bytes()[14], b'7');
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn topics_follow_the_layout() {
        let t = Topics::new("tayninh/traffic", "s1", "d1");
        assert_eq!(
            t.event(EventKind::WrongWay),
            "tayninh/traffic/s1/d1/events/wrong_way"
        );
        assert_eq!(t.evidence("ab"), "tayninh/traffic/s1/d1/evidence/ab");
        assert_eq!(t.status(), "tayninh/traffic/s1/d1/status");
        assert_eq!(t.health(), "tayninh/traffic/s1/d1/health");
    }
}
