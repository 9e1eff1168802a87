//! The agent's configuration, as written in one TOML file.
//!
//! Every field's default is stated in its doc comment and in `configs/README.md`. Relative paths are
//! resolved against the directory of the config file (see [`super::LoadedConfig::resolve_path`]).

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

/// `[runtime]`: how models are executed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Path to `libonnxruntime.so.*`. Default: none, then `ORT_DYLIB_PATH`, next to the binary,
    /// system library directories.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Execution provider: `cpu`, `cuda` or `tensorrt`. Default `cpu`. A provider that fails to
    /// register is an error, never a silent fallback to CPU.
    #[serde(default)]
    pub execution_provider: ExecutionProviderKind,
    /// Threads inside one operator. Default 0 = let ONNX Runtime use one per core.
    #[serde(default)]
    pub intra_threads: usize,
    /// Threads across operators. Default 1.
    #[serde(default = "one")]
    pub inter_threads: usize,
    /// Inference workers, each with its own session per model. Default 1.
    #[serde(default = "one")]
    pub workers: usize,
    /// Let ONNX Runtime's worker threads spin-wait between runs. Default false: with several models
    /// run in turn on a few cores, idle sessions' spinning threads steal the cores from the active
    /// one (and burn power on a solar-powered pole).
    #[serde(default)]
    pub spin_wait: bool,
    /// One ONNX Runtime thread pool of `intra_threads` for all models of the process instead of
    /// one per session. Default true: a fixed thread count whatever the number of models, and
    /// `spin_wait` no longer lets idle sessions steal the cores (`runtime::SharedThreads`).
    #[serde(default = "yes")]
    pub shared_threads: bool,
    /// Keep ONNX Runtime's CPU memory arena (and its planned memory pattern). Default true:
    /// fastest, but each session keeps its peak activation memory; false frees it between runs,
    /// a few MB of resident memory less per model at some CPU cost.
    #[serde(default = "yes")]
    pub cpu_arena: bool,
    /// Run fixed-input detectors on whole frames at the smallest input (a multiple of 32) that holds
    /// the frame at the detector's own letterbox scale, from a copy of the model rewritten for it,
    /// instead of the full square input. Default true: a 16:9 frame costs the detector about half.
    /// CPU execution provider only (not checked on CUDA or TensorRT).
    #[serde(default = "yes")]
    pub fit_canvas: bool,
    /// `[runtime.cuda]`: CUDA options. Default device 0.
    #[serde(default)]
    pub cuda: CudaConfig,
    /// `[runtime.tensorrt]`: TensorRT options.
    #[serde(default)]
    pub tensorrt: TensorRtConfig,
    /// Inference engine: `onnxruntime` (default) or `tract` (pure Rust, CPU only, for devices with
    /// no ONNX Runtime build such as armv7; needs a binary built with the `tract` feature).
    #[serde(default)]
    pub backend: InferenceBackend,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            onnxruntime: None,
            execution_provider: ExecutionProviderKind::default(),
            intra_threads: 0,
            inter_threads: 1,
            workers: 1,
            spin_wait: false,
            shared_threads: true,
            cpu_arena: true,
            fit_canvas: true,
            cuda: CudaConfig::default(),
            tensorrt: TensorRtConfig::default(),
            backend: InferenceBackend::default(),
        }
    }
}

fn one() -> usize {
    1
}

/// Which engine runs the models.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InferenceBackend {
    #[default]
    Onnxruntime,
    Tract,
}

impl InferenceBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnxruntime => "onnxruntime",
            Self::Tract => "tract",
        }
    }
}

/// Which ONNX Runtime execution provider runs the models.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProviderKind {
    #[default]
    Cpu,
    Cuda,
    Tensorrt,
}

impl ExecutionProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Tensorrt => "tensorrt",
        }
    }
}

/// `[runtime.cuda]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CudaConfig {
    /// GPU index. Default 0.
    #[serde(default)]
    pub device_id: i32,
}

/// `[runtime.tensorrt]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorRtConfig {
    /// Build fp16 engines. Default true.
    #[serde(default = "yes")]
    pub fp16: bool,
    /// Where built engines are cached between restarts. Default: none (rebuilt at every start,
    /// which takes minutes on a Jetson).
    #[serde(default)]
    pub engine_cache_dir: Option<PathBuf>,
    /// Jetson DLA core to use. Default: none (GPU only).
    #[serde(default)]
    pub dla_core: Option<u32>,
}

impl Default for TensorRtConfig {
    fn default() -> Self {
        Self {
            fp16: true,
            engine_cache_dir: None,
            dla_core: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// `[plates]`: how plates are read (models are named in `[models]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatesConfig {
    /// Where candidates come from when a whole frame is read: `full_frame`, `vehicle_crops` or
    /// `both`. Default `full_frame` (the pipeline passes tracked vehicles itself).
    #[serde(default = "default_plate_mode")]
    pub mode: crate::anpr::PlateMode,
    /// Which OCR reads plates: `slot` (fastest), `ppocr`, or `fused` (both decoded together; the
    /// most accurate on small plates, one text-recogniser call per plate row). Default `fused`.
    #[serde(default = "default_readers")]
    pub readers: crate::anpr::Readers,
    /// Text recogniser manifest for `ppocr` and `fused`. Default `ppocrv4_rec`.
    #[serde(default = "default_recognizer")]
    pub recognizer: String,
    /// Read confidence (0–1) under which a read is reported as low-confidence. Default 0.5.
    #[serde(default = "default_plate_min_confidence")]
    pub min_confidence: f32,
    /// Plate detector score (0–1) for a candidate to be read at all. Default 0.25.
    #[serde(default = "default_candidate_score")]
    pub candidate_score: f32,
    /// Province codes this camera mostly sees (e.g. `[70, 62]` in Tây Ninh): a prior that a read of
    /// one of them is likelier. Default none.
    #[serde(default)]
    pub local_codes: Vec<u8>,
    /// How much likelier a local code is a priori than any one other code (a factor ≥ 1): with a
    /// share `s` of the traffic local over `n` local codes, `(s/n) / ((1−s)/(81−n))`. The read's
    /// confidence is the posterior under this prior. Default 20 (conservative).
    #[serde(default = "default_local_factor")]
    pub local_factor: f32,
    /// Slot-OCR views per plate (1 = the crop only; up to 6 average slightly inset crops). Default 1.
    #[serde(default = "default_ocr_views")]
    pub ocr_views: usize,
    /// `fused` only: the slot OCR reads every plate first; a valid read at or above this confidence
    /// (0–1) is kept and the text recogniser is skipped for that plate, the rest are read by both
    /// and fused. 0 trusts every valid slot read (fastest); above 1 fuses every plate (slowest).
    /// Default 0.9.
    #[serde(default = "default_fuse_below")]
    pub fuse_below: f32,
    /// `mode = "both" | "vehicle_crops"`: vehicle crops packed into one plate-detector call
    /// (1–16; 1 searches each vehicle alone). Default 4.
    #[serde(default = "default_crops_per_call")]
    pub crops_per_call: usize,
}

fn default_plate_mode() -> crate::anpr::PlateMode {
    crate::anpr::PlateMode::FullFrame
}
fn default_readers() -> crate::anpr::Readers {
    crate::anpr::Readers::Fused
}
fn default_recognizer() -> String {
    "ppocrv4_rec".into()
}
fn default_plate_min_confidence() -> f32 {
    0.5
}
fn default_candidate_score() -> f32 {
    0.25
}
fn default_local_factor() -> f32 {
    20.0
}
fn default_ocr_views() -> usize {
    1
}
fn default_crops_per_call() -> usize {
    crate::anpr::DEFAULT_CROPS_PER_CALL
}
fn default_fuse_below() -> f32 {
    crate::anpr::DEFAULT_FUSE_BELOW
}

impl Default for PlatesConfig {
    fn default() -> Self {
        Self {
            mode: default_plate_mode(),
            readers: default_readers(),
            recognizer: default_recognizer(),
            min_confidence: default_plate_min_confidence(),
            candidate_score: default_candidate_score(),
            local_codes: Vec::new(),
            local_factor: default_local_factor(),
            ocr_views: default_ocr_views(),
            fuse_below: default_fuse_below(),
            crops_per_call: default_crops_per_call(),
        }
    }
}

impl PlatesConfig {
    /// The plate reader's options for this section.
    pub fn reader_options(&self) -> crate::anpr::ReaderOptions {
        crate::anpr::ReaderOptions {
            mode: self.mode,
            readers: self.readers,
            candidate_score: self.candidate_score,
            min_confidence: self.min_confidence,
            ocr_views: self.ocr_views.max(1),
            fuse_below: self.fuse_below,
            crops_per_call: self.crops_per_call.max(1),
            decode: crate::plate::DecodeOptions {
                local_codes: crate::plate::CodeSet::of(&self.local_codes),
                local_log_bonus: if self.local_codes.is_empty() {
                    0.0
                } else {
                    self.local_factor.max(1.0).ln()
                },
                ..crate::plate::DecodeOptions::default()
            },
            ..crate::anpr::ReaderOptions::default()
        }
    }
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
        ]
        .into_iter()
        .filter(|(_, name)| !name.is_empty())
        .collect()
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

/// `[mqtt]`: the link to the integration centre.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:1883` or `mqtts://host:8883`. Default: none, which starts an embedded broker on
    /// `embedded_listen` so a fresh device works out of the box.
    #[serde(default)]
    pub broker: Option<String>,
    /// Listen address of the embedded broker. Default `127.0.0.1:1883`.
    #[serde(default = "default_embedded_listen")]
    pub embedded_listen: String,
    /// Payload bytes the embedded broker's log of each subscribed topic filter may hold, in KiB
    /// (the spool, not the broker, is the durable copy). Default 256.
    #[serde(default = "default_embedded_log_kb")]
    pub embedded_log_kb: u32,
    /// Fixed MQTT client id (persistent sessions need it). Default: the device id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `v311` or `v5`. Default `v311`.
    #[serde(default)]
    pub protocol: MqttProtocol,
    /// First topic level(s): topics are `{prefix}/{site}/{device}/...`. Default `edge`.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Username for password authentication. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (kept out of the config so the config can be shared). Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Keep-alive interval in seconds. Default 30.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// `[mqtt.tls]`: present means TLS. Default: none.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// First reconnect delay in milliseconds; doubles per failure, with jitter. Default 500.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay in seconds. Default 30.
    #[serde(default = "default_reconnect_max_s")]
    pub reconnect_max_s: u64,
    /// Seconds between `health` messages. Default 30.
    #[serde(default = "default_health_interval_s")]
    pub health_interval_s: u64,
    /// Publishes awaiting PUBACK at once. Default 100.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: u16,
    /// Uplink budget of a metered link, in MB (10^6 bytes) handed to the broker per sliding hour
    /// and per sliding day. Past it evidence images wait in the spool (events still go: they are
    /// the alert). Default 0 = no limit.
    #[serde(default)]
    pub uplink_mb_per_hour: f64,
    #[serde(default)]
    pub uplink_mb_per_day: f64,
    /// Payload KiB handed to the MQTT client and not yet acknowledged, at most (one message
    /// always fits): what a new watchlist hit or violation waits behind on a busy link. Default
    /// 4096; on a thin uplink about 2 s of its speed (e.g. 256).
    #[serde(default = "default_window_kb")]
    pub window_kb: u32,
    /// Why a plain `mqtt://` broker on another machine (plates, evidence and the password in
    /// clear) or an embedded broker listening beyond loopback (no authentication) is acceptable
    /// here; recorded in the audit log at every start. Default none: `check` refuses both.
    #[serde(default)]
    pub allow_insecure: Option<String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            embedded_listen: default_embedded_listen(),
            embedded_log_kb: default_embedded_log_kb(),
            client_id: None,
            protocol: MqttProtocol::default(),
            topic_prefix: default_prefix(),
            username: None,
            password_file: None,
            keep_alive_s: default_keep_alive(),
            tls: None,
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_s: default_reconnect_max_s(),
            health_interval_s: default_health_interval_s(),
            max_inflight: default_max_inflight(),
            uplink_mb_per_hour: 0.0,
            uplink_mb_per_day: 0.0,
            window_kb: default_window_kb(),
            allow_insecure: None,
        }
    }
}

fn default_embedded_listen() -> String {
    "127.0.0.1:1883".into()
}
fn default_embedded_log_kb() -> u32 {
    16
}
fn default_prefix() -> String {
    "edge".into()
}
fn default_keep_alive() -> u64 {
    30
}
fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_s() -> u64 {
    30
}
fn default_health_interval_s() -> u64 {
    30
}
fn default_max_inflight() -> u16 {
    100
}
fn default_window_kb() -> u32 {
    4096
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MqttProtocol {
    #[default]
    V311,
    V5,
}

/// `[mqtt.tls]`: server verification and optional client certificate (mutual TLS).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificate(s) that signed the broker's certificate. Required.
    pub ca_file: PathBuf,
    /// PEM client certificate for mutual TLS. Default: none.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate. Required with `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
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

/// `[cameras.privacy]`: what this camera's evidence images may show.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraPrivacyConfig {
    /// Pixelate detected people in this camera's evidence images (frame and object crops).
    /// Default true; turning it off requires `reason`, which is logged and audited at start-up.
    #[serde(default = "yes")]
    pub blur_people: bool,
    /// Why people are not pixelated on this camera (e.g. the legal basis). Required when
    /// `blur_people = false`. Default: none.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Default for CameraPrivacyConfig {
    fn default() -> Self {
        Self {
            blur_people: true,
            reason: None,
        }
    }
}

/// `[privacy]`: plate pseudonymisation and local retention (docs/privacy.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Send plates that are not on the watchlist as `plate.text_hmac` (HMAC-SHA256 under the site
    /// key) instead of their text, and without plate images. Default false.
    #[serde(default)]
    pub hash_plates: bool,
    /// File holding the site's secret HMAC key (at least 16 bytes; kept out of the config so the
    /// config can be shared). Required when `hash_plates = true`. Default: none.
    #[serde(default)]
    pub plate_key_file: Option<PathBuf>,
    /// `[privacy.retention]`: how long undelivered data may stay on the device.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// `[privacy.retention]`: age limits per data class, in hours; 0 = no age limit (size bound only).
/// Every deletion is logged and recorded in the audit log with its class and count.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Evidence images waiting in the spool. Default 168 (7 days).
    #[serde(default = "default_evidence_hours")]
    pub evidence_hours: u64,
    /// Event records waiting in the spool. Default 720 (30 days).
    #[serde(default = "default_event_hours")]
    pub event_hours: u64,
    /// Event clips stored on the device (`[clips]`). Default 168 (7 days).
    #[serde(default = "default_evidence_hours")]
    pub clip_hours: u64,
    /// Evidence JPEGs written by `replay --evidence DIR`: older ones in DIR are deleted when the
    /// next replay writes there. Default 0 (kept; the folder is the operator's).
    #[serde(default)]
    pub export_hours: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            evidence_hours: default_evidence_hours(),
            event_hours: default_event_hours(),
            clip_hours: default_evidence_hours(),
            export_hours: 0,
        }
    }
}

fn default_evidence_hours() -> u64 {
    168
}
fn default_event_hours() -> u64 {
    720
}
