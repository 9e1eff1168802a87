//! The agent's configuration, as written in one TOML file.
//!
//! Every field's default is stated in its doc comment and in `configs/README.md`. Relative paths are
//! resolved against the directory of the config file (see [`super::LoadedConfig::resolve_path`]).

use crate::anpr::config::PlatesConfig;
use crate::privacy::config::{CameraPrivacyConfig, PrivacyConfig};
use crate::publish::config::MqttConfig;
use crate::runtime::config::RuntimeConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::api::HttpConfig;
use crate::events::evidence::EvidenceConfig;
use crate::health::HealthConfig;
use crate::spool::StorageConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Config {
    pub device: DeviceConfig,
    pub runtime: RuntimeConfig,
    pub models: ModelsConfig,
    pub cameras: Vec<CameraConfig>,
    pub mqtt: MqttConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub evidence: EvidenceConfig,
    /// `[clips]`: video around rule events. Defaults in [`crate::clips::ClipsConfig`].
    pub clips: crate::clips::ClipsConfig,
    pub watchlist: WatchlistConfig,
    pub health: HealthConfig,
    pub privacy: PrivacyConfig,
    pub plates: PlatesConfig,
    /// `[tracker]`: how detections become tracks (every camera). Defaults in
    /// [`crate::track::TrackerConfig`].
    pub tracker: crate::track::TrackerConfig,
    /// `[pipeline]`: frame queues and plate-read scheduling (every camera).
    pub pipeline: PipelineConfig,
    /// `[remote]`: whether the centre may change cameras and the watchlist over MQTT.
    pub remote: RemoteConfig,
}

/// `[remote]`: configuration changes from the integration centre (`docs/remote.md`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// Subscribe to `config/set` and `watchlist/set` and apply what passes the checks. `false`:
    /// no subscription, and a remote config or watchlist stored by an earlier run is not used
    /// (the file on the device is all there is). Default true.
    pub enabled: bool,
    /// Public Ed25519 keys (hex) of the centre whose signed documents this device accepts. Empty:
    /// every remote document is refused. Only the file on the device sets them; a remote document
    /// cannot change `[remote]`.
    pub centre_keys: Vec<String>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            centre_keys: Vec::new(),
        }
    }
}

/// `[device]`: who this device is. Both ids become MQTT topic levels.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Site (installation) id, e.g. `tn-ql22-km12`. Required.
    pub site_id: String,
    /// Device id, unique within the site, e.g. `pole-03`. Required.
    pub device_id: String,
    /// Free-text description shown in status messages. Default: none.
    #[serde(default)]
    pub description: Option<String>,
    /// Local time offset from UTC in minutes, for rules with `active` time windows. Default 420
    /// (Vietnam, UTC+7, no daylight saving).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
    /// Where the device stands: `{ lat, lon, heading_deg, address }`, carried by every event of
    /// its cameras unless a camera gives its own. Default: none.
    #[serde(default)]
    pub location: Option<crate::events::Location>,
}

fn default_utc_offset() -> i32 {
    420
}

/// The location a camera's events carry: its own, else the device's, with its own heading.
pub fn camera_location(
    device: &DeviceConfig,
    cam: &CameraConfig,
) -> Option<crate::events::Location> {
    let mut loc = cam.location.clone().or_else(|| device.location.clone())?;
    if cam.heading_deg.is_some() {
        loc.heading_deg = cam.heading_deg;
    }
    Some(loc)
}

impl Config {
    /// Each camera's events' location (cameras without one are left out).
    pub fn camera_locations(&self) -> BTreeMap<String, crate::events::Location> {
        self.cameras
            .iter()
            .filter_map(|c| Some((c.id.clone(), camera_location(&self.device, c)?)))
            .collect()
    }
}

fn yes() -> bool {
    true
}

/// `[models]`: where weights live and which manifest fills each role.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Directory holding verified weights. Default: env `EDGE_AGENT_MODEL_CACHE`, else
    /// `/var/lib/edge-agent/models`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// A local mirror directory or an `http(s)://` base URL that `models fetch` tries before the
    /// manifest's own URL. Default: none.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Extra directory of model manifests (`*.toml`), added to the built-in ones. Default: none.
    #[serde(default)]
    pub manifest_dir: Option<PathBuf>,
    /// Manifest for vehicle and person detection. Default `yolox_nano_coco_416`.
    #[serde(default = "default_detector")]
    pub detector: String,
    /// Manifest for licence-plate detection; empty string disables plate reading.
    /// Default `vn_plate_det_yolo26n_640_e2e`.
    #[serde(default = "default_plate_detector")]
    pub plate_detector: String,
    /// Manifest for plate OCR; empty string disables it. Default `vn_plate_ocr_9x37_64x128`.
    #[serde(default = "default_plate_ocr")]
    pub plate_ocr: String,
    /// A second slot OCR that reads every plate with `plate_ocr`, the two as independent experts
    /// (each slot's probabilities multiplied); empty string: `plate_ocr` alone, as does naming
    /// `plate_ocr` itself. Default `vn_plate_ocr_ea_ctc_10x37_64x128` (ours, built in).
    #[serde(default = "default_plate_ocr_second")]
    pub plate_ocr_second: String,
    /// Models whose licence does not allow shipping but whose rights this deployment has cleared
    /// (a commercial licence, a written permission): `check` stops warning about them. Default
    /// none: a model that may not ship is a warning, and `check --strict` refuses it.
    #[serde(default)]
    pub rights_cleared: Vec<String>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            mirror: None,
            manifest_dir: None,
            detector: default_detector(),
            plate_detector: default_plate_detector(),
            plate_ocr: default_plate_ocr(),
            plate_ocr_second: default_plate_ocr_second(),
            rights_cleared: Vec::new(),
        }
    }
}

impl Config {
    /// Each enabled camera's clip mode where it differs from `[clips] mode`.
    pub fn clip_modes(&self) -> BTreeMap<String, crate::clips::ClipMode> {
        self.cameras
            .iter()
            .filter_map(|c| Some((c.id.clone(), c.clips?)))
            .collect()
    }

    /// The disk the clip store may take, MiB: `[clips] store_mb`, or 0 when no camera makes clips.
    pub fn clips_store_mb(&self) -> u64 {
        let on = self
            .cameras
            .iter()
            .filter(|c| c.enabled)
            .any(|c| c.clips.unwrap_or(self.clips.mode) != crate::clips::ClipMode::Off);
        if on { self.clips.store_mb } else { 0 }
    }
}

impl ModelsConfig {
    /// The manifests named by the roles, with the role name; disabled roles are left out.
    pub fn roles(&self) -> Vec<(&'static str, &str)> {
        [
            ("detector", self.detector.as_str()),
            ("plate_detector", self.plate_detector.as_str()),
            ("plate_ocr", self.plate_ocr.as_str()),
            (
                "plate_ocr_second",
                self.plate_ocr_second().unwrap_or_default(),
            ),
        ]
        .into_iter()
        .filter(|(_, name)| !name.is_empty())
        .collect()
    }

    /// The second slot OCR, if one reads with `plate_ocr` (not empty, not `plate_ocr` itself).
    pub fn plate_ocr_second(&self) -> Option<&str> {
        crate::anpr::second_ocr(&self.plate_ocr, &self.plate_ocr_second)
    }
}

fn default_evidence_match_ms() -> u32 {
    250
}
fn default_detector() -> String {
    "yolox_nano_coco_416".into()
}
fn default_plate_detector() -> String {
    "vn_plate_det_yolo26n_640_e2e".into()
}
fn default_plate_ocr() -> String {
    crate::anpr::DEFAULT_PLATE_OCR.into()
}
fn default_plate_ocr_second() -> String {
    crate::anpr::DEFAULT_PLATE_OCR_SECOND.into()
}

/// `[[cameras]]`: one entry per video source.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Camera id, unique on this device; an MQTT topic level. Required.
    pub id: String,
    /// Human name shown to operators. Default: none.
    #[serde(default)]
    pub name: Option<String>,
    /// `rtsp://[user:pass@]host[:port]/path`, `v4l2:///dev/videoN`, or a path to a video file or an
    /// image folder. Required.
    pub url: String,
    /// Frames per second to analyse; extra frames are dropped before inference. Default 5.
    #[serde(default = "default_fps")]
    pub target_fps: f64,
    /// `anpr` (dedicated plate camera: plate detector on the full frame) or `scene` (vehicle
    /// detector first, plates read on vehicle crops). Default `scene`.
    #[serde(default)]
    pub role: CameraRole,
    /// Set false to keep a camera configured but not opened. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How the stream or file is decoded: `builtin` (retina + openh264, H.264 only) or
    /// `gstreamer` (H.265 and hardware decoders; needs a binary built with the `gstreamer`
    /// feature). Default `builtin`.
    #[serde(default)]
    pub decoder: DecoderKind,
    /// GStreamer decoder element for `decoder = "gstreamer"`, e.g. `nvv4l2decoder` (Jetson; its
    /// output goes through `nvvidconv`) or `avdec_h265`. Default: none, `decodebin` chooses.
    #[serde(default)]
    pub gst_decoder: Option<String>,
    /// `[w, h]` of the camera's frames; zones, lines and calibration points are checked against
    /// it. Default: none (not checked).
    #[serde(default)]
    pub frame_size: Option<[u32; 2]>,
    /// Where this camera stands and looks, replacing `[device] location` in its events. Default:
    /// the device's.
    #[serde(default)]
    pub location: Option<crate::events::Location>,
    /// Direction this camera looks, degrees clockwise from true north; replaces the heading of
    /// the location it uses (cameras on one pole share a place, not a heading). Default: none.
    #[serde(default)]
    pub heading_deg: Option<f64>,
    /// `[[cameras.zones]]`: polygons for rules. Default: none.
    #[serde(default)]
    pub zones: Vec<crate::rules::config::ZoneConfig>,
    /// `[[cameras.lines]]`: counting lines. Default: none.
    #[serde(default)]
    pub lines: Vec<crate::rules::config::LineConfig>,
    /// `[[cameras.rules]]`: behaviour rules. Default: none.
    #[serde(default)]
    pub rules: Vec<crate::rules::config::RuleConfig>,
    /// `[cameras.calibration]`: image-to-ground mapping for speeds and metres. Default: none.
    #[serde(default)]
    pub calibration: Option<crate::rules::config::CalibrationConfig>,
    /// `[cameras.privacy]`: evidence minimisation for this camera. Default: people pixelated.
    #[serde(default)]
    pub privacy: CameraPrivacyConfig,
    /// The camera's main (high-resolution) stream: plates are read and evidence cut from its
    /// frame of the same moment, while detection runs on `url` (the sub-stream). Default: none.
    #[serde(default)]
    pub evidence_url: Option<String>,
    /// How far apart (ms) a main-stream frame may be captured from the detection frame and still
    /// stand for it. Default 250.
    #[serde(default = "default_evidence_match_ms")]
    pub evidence_match_ms: u32,
    /// This camera's event clips: `store`, `send` or `off`. Default: `[clips] mode`.
    #[serde(default)]
    pub clips: Option<crate::clips::ClipMode>,
}

fn default_fps() -> f64 {
    5.0
}

impl CameraConfig {
    /// The zones, lines, rules and calibration, as the rules stage reads them.
    pub fn geometry(&self) -> crate::rules::config::CameraGeometry<'_> {
        crate::rules::config::CameraGeometry {
            id: &self.id,
            frame_size: self.frame_size,
            zones: &self.zones,
            lines: &self.lines,
            rules: &self.rules,
            calibration: self.calibration.as_ref(),
        }
    }
}

impl CameraConfig {
    /// The decoder the source uses for this camera.
    pub fn decoding(&self) -> crate::source::Decoding {
        match self.decoder {
            DecoderKind::Builtin => crate::source::Decoding::Builtin,
            DecoderKind::Gstreamer => crate::source::Decoding::Gstreamer {
                element: self.gst_decoder.clone(),
            },
        }
    }
}

/// Which decoder a camera uses.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// retina + openh264: H.264 only, no system libraries.
    #[default]
    Builtin,
    /// GStreamer (cargo feature `gstreamer`).
    Gstreamer,
}

/// What a camera is for.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CameraRole {
    Anpr,
    #[default]
    Scene,
}

/// `[pipeline]`: how frames wait for the inference workers and how plate reads are spent.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Frames waiting per camera; when full the oldest is dropped (and counted). Default 2.
    pub queue_capacity: usize,
    /// Vehicles whose plates are searched per frame at most, packed into one plate-detector call.
    /// Default 4.
    pub plate_reads_per_frame: usize,
    /// Least stream seconds between two plate-detector calls of one camera. Default 0.2.
    pub plate_call_interval_s: f64,
    /// Least seconds between two reads of one track. Default 0.2.
    pub plate_read_interval_s: f64,
    /// Reads of one track at most, when its vote never becomes confident. Default 25.
    pub plate_max_attempts: u32,
    /// Vehicle boxes shorter than this (pixels) are too far to read. Default 40.
    pub plate_min_vehicle_height: f32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 2,
            plate_reads_per_frame: 4,
            plate_call_interval_s: 0.2,
            plate_read_interval_s: 0.2,
            plate_max_attempts: 25,
            plate_min_vehicle_height: 40.0,
        }
    }
}

/// `[watchlist]`: plates reported in clear as `watchlist_hit` events (format: `watchlist.rs`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchlistConfig {
    /// Text file, one plate per line with an optional `# label`. Default: none (empty list; it
    /// can still arrive over MQTT `watchlist/set`).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Also report a read one confusable symbol away from a listed plate (8/B, 0/D, 1/7, 5/S,
    /// 2/Z, 6/G) as a `watchlist_hit` with `match = "fuzzy"`, in clear like an exact hit
    /// (docs/privacy.md). Default true.
    #[serde(default = "yes")]
    pub fuzzy: bool,
}

impl Default for WatchlistConfig {
    fn default() -> Self {
        Self {
            file: None,
            fuzzy: true,
        }
    }
}
