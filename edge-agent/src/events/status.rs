//! The availability side channel (DESIGN.md, as Frigate and Sparkplug B do it): a retained birth
//! message on `status` at every connect, the broker-sent last will `offline`, and a periodic
//! `health` message with spool depth, evictions, link state and camera health. These are the
//! messages' types, part of the wire contract like the events; the stages that fill them (spool,
//! publisher, embedded broker, clock check) import them from here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ModelId, TimeSync};
use crate::models::ModelCard;

/// The retained birth message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatusInfo {
    /// `online` in the birth, `offline` in the last will and the goodbye.
    pub state: String,
    pub agent_version: String,
    pub site_id: String,
    pub device_id: String,
    /// Models loaded, with sha256 prefixes.
    pub models: Vec<ModelId>,
    /// sha256 prefix of the config file in force.
    pub config_hash: String,
    /// Execution provider actually registered (`cpu`, `cuda`, `tensorrt`): a provider that fails to
    /// register stops the agent, so this is never a silent CPU fallback.
    pub execution_provider: String,
    /// Engine running the models: `onnxruntime`, or `tract` (pure Rust, CPU; armv7 devices).
    #[serde(default = "default_backend")]
    pub inference_backend: String,
    /// Camera ids configured and enabled.
    pub cameras: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// One model card summary per loaded model: task, training data, licence, known limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_cards: Vec<ModelCard>,
    /// The device's public signing key (hex): what `edge-agent verify --key` checks events with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<String>,
}

impl StatusInfo {
    /// The example shown in docs/events.md.
    pub fn example() -> Self {
        Self {
            state: "online".into(),
            agent_version: "0.1.0".into(),
            site_id: "tn-ql22-km12".into(),
            device_id: "pole-03".into(),
            models: vec![ModelId {
                name: "yolox_nano_coco_416".into(),
                sha256: "3d1e8a0c44f2".into(),
            }],
            config_hash: "5f1c0a9e2b7d".into(),
            execution_provider: "cpu".into(),
            inference_backend: "onnxruntime".into(),
            cameras: vec!["cam-north".into()],
            started_at: DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            model_cards: vec![ModelCard {
                name: "yolox_nano_coco_416".into(),
                task: "object_detection".into(),
                training_data: "COCO 2017 (80 classes)".into(),
                licence: "Apache-2.0".into(),
                shippable: true,
                known_limits: vec![
                    "cars truncated by the image edge can be missed".into(),
                    "night scenes with headlight glare produce wrong classes (a car labelled train)"
                        .into(),
                ],
            }],
            device_key: Some(
                "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29".into(),
            ),
        }
    }
}

fn default_backend() -> String {
    "onnxruntime".into()
}

/// Payload of the last will and of the goodbye on a clean shutdown.
pub fn offline_payload(site_id: &str, device_id: &str) -> Vec<u8> {
    serde_json::json!({"state": "offline", "site_id": site_id, "device_id": device_id})
        .to_string()
        .into_bytes()
}

/// A camera's state as the pipeline sees it, reported in `health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CameraHealth {
    /// `online`, `reconnecting`, `lost` or `disabled`; or, while the stream is up but the picture
    /// is unusable, the most serious condition: `frozen`, `covered`, `defocused`, `scene_changed`
    /// or `low_fps`; or `rules_disabled` when the picture is fine but the camera's rules could not
    /// be built for its stream (the reason in `error`).
    pub state: String,
    /// Frames per second decoded over the last `[health].fps_window_s`.
    pub fps: f32,
    /// Frames per second the camera is expected to deliver (its `target_fps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_fps: Option<f32>,
    /// Pictures or packets the decoder rejected since start.
    #[serde(default)]
    pub decode_errors: u64,
    /// Every active condition, most serious first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// Frames dropped before inference since start (load shedding).
    pub frames_dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// State of the link to the broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinkStats {
    pub connected: bool,
    /// Successful connections since start (the first one included).
    pub connects: u64,
    /// Failed attempts and lost connections since start.
    pub failures: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Spooled messages handed to the broker (re-sends included).
    pub published: u64,
    /// PUBACKs received for spooled messages.
    pub acked: u64,
    /// Payload bytes handed to the MQTT client and not yet acknowledged (the publish window).
    #[serde(default)]
    pub window_bytes: u64,
    /// Bound of the publish window in bytes (one message always fits, whatever its size).
    #[serde(default)]
    pub window_limit_bytes: u64,
    /// Spooled bytes handed to the broker over the last hour and day (with an uplink budget).
    #[serde(default)]
    pub uplink_hour_bytes: u64,
    #[serde(default)]
    pub uplink_day_bytes: u64,
    /// Evidence images waiting in the spool because the uplink budget is reached (0 otherwise).
    #[serde(default)]
    pub images_deferred: u64,
}

/// The clock's state at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClockState {
    pub sync: TimeSync,
    /// Maximum error the kernel reports, microseconds (adjtimex only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_us: Option<i64>,
    /// Estimated error, microseconds (adjtimex only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub est_error_us: Option<i64>,
    /// Where the answer came from: `adjtimex`, `timedatectl` or `none`.
    pub source: String,
}

/// What the embedded broker may hold, and an estimate of what it holds now.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct BrokerMemory {
    /// Topic filters that have a log (one per filter ever subscribed).
    pub filters: u64,
    /// Payload bytes held in the filters' logs: for each, what was appended to it, at most its
    /// bound (an upper estimate: rumqttd does not report what it dropped).
    pub held_bytes: u64,
    /// Bound of one filter's log (`[mqtt].embedded_log_kb`).
    pub per_filter_limit_bytes: u64,
    /// Bound of all logs: `filters` times the per-filter bound.
    pub limit_bytes: u64,
}

/// Depth and eviction counters, for `health` and `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct SpoolStats {
    /// Event messages not yet acknowledged by the broker.
    pub events: u64,
    /// Evidence images not yet acknowledged.
    pub evidence: u64,
    /// Payload bytes held.
    pub bytes: u64,
    /// Bound from `[storage].max_size_mb`.
    pub max_bytes: u64,
    /// Events dropped because the spool was full (their seq numbers are the gaps consumers see).
    pub evicted_events: u64,
    /// Evidence images dropped because the spool was full.
    pub evicted_evidence: u64,
    /// Events deleted undelivered by `[privacy.retention] event_hours`.
    pub expired_events: u64,
    /// Evidence images deleted undelivered by `[privacy.retention] evidence_hours`.
    pub expired_evidence: u64,
    /// Bytes the spool may still add before its filesystem falls to `[storage].min_free_mb`
    /// (free space plus the database's reusable pages); `None` when not measured.
    pub disk_room_bytes: Option<u64>,
    /// The last submission had to evict because the disk, not `max_size_mb`, was full.
    pub disk_low: bool,
    /// Submissions that evicted because of the disk (their drops are in the evicted counters).
    pub disk_evictions: u64,
    /// Steps of the wall clock (NTP, an RTC set at boot) the spool saw: it moved its rows'
    /// creation times by each, so their ages, and retention, are unaffected.
    pub clock_steps: u64,
}

/// The periodic `health` message.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Health {
    pub time: DateTime<Utc>,
    pub uptime_s: u64,
    pub spool: SpoolStats,
    pub mqtt: LinkStats,
    pub cameras: BTreeMap<String, CameraHealth>,
    /// Hash of the newest audit-log record: kept by the centre, it shows later whether the log on
    /// the device was cut short (`edge-agent audit verify` prints the head to compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<String>,
    /// The device clock's sync state (evidence timestamps are only as good as this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_sync: Option<ClockState>,
    /// What the agent holds in memory, and the bounds of what may grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryReport>,
}

/// The agent's memory in a `health` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryReport {
    /// Resident set size of the agent's process, bytes.
    pub resident_bytes: u64,
    /// The embedded broker's logs, when it runs (none with a site broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerMemory>,
}

impl Health {
    /// The example shown in docs/events.md.
    pub fn example() -> Self {
        let time = DateTime::parse_from_rfc3339("2026-03-01T00:16:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        Self {
            time,
            uptime_s: 960,
            spool: SpoolStats {
                events: 12,
                evidence: 20,
                bytes: 1_482_112,
                max_bytes: 1 << 30,
                evicted_events: 0,
                evicted_evidence: 0,
                expired_events: 0,
                expired_evidence: 4,
                disk_room_bytes: Some(3_821_010_944),
                disk_low: false,
                disk_evictions: 0,
                clock_steps: 0,
            },
            mqtt: LinkStats {
                connected: true,
                connects: 2,
                failures: 5,
                last_error: Some("I/O: Connection refused (os error 111)".into()),
                published: 5_230,
                acked: 5_218,
                window_bytes: 1_644_312,
                window_limit_bytes: 4_194_304,
                uplink_hour_bytes: 48_210_332,
                uplink_day_bytes: 412_906_118,
                images_deferred: 37,
            },
            cameras: BTreeMap::from([(
                "cam-north".to_string(),
                CameraHealth {
                    state: "online".into(),
                    fps: 5.0,
                    expected_fps: Some(5.0),
                    decode_errors: 0,
                    conditions: Vec::new(),
                    frames_dropped: 3,
                    last_frame: Some(time),
                    error: None,
                },
            )]),
            audit_head: Some(
                "9b2f6c1e0d4a7b3c5e8f1a2d4c6b8e0f1a3c5e7d9b1f3a5c7e9d1b3f5a7c9e1d".into(),
            ),
            time_sync: Some(ClockState {
                sync: TimeSync::Synced,
                max_error_us: Some(16_500),
                est_error_us: Some(820),
                source: "adjtimex".into(),
            }),
            memory: Some(MemoryReport {
                resident_bytes: 167_772_160,
                broker: Some(BrokerMemory {
                    filters: 2,
                    held_bytes: 393_216,
                    per_filter_limit_bytes: 256 << 10,
                    limit_bytes: 512 << 10,
                }),
            }),
        }
    }
}
