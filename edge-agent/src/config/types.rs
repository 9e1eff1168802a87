//! The agent's configuration, as written in one TOML file.
//!
//! Every field's default is stated in its doc comment and in `configs/README.md`. Relative paths are
//! resolved against the directory of the config file (see [`super::LoadedConfig::resolve_path`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// `[tracker]`: how detections become tracks (every camera). Defaults in
    /// [`crate::track::TrackerConfig`].
    pub tracker: crate::track::TrackerConfig,
    /// `[pipeline]`: frame queues and plate-read scheduling (every camera).
    pub pipeline: PipelineConfig,
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
}

fn default_utc_offset() -> i32 {
    420
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
    /// Keep ONNX Runtime's CPU memory arena (and its planned memory pattern). Default true:
    /// fastest, but each session keeps its peak activation memory; false frees it between runs,
    /// a few MB of resident memory less per model at some CPU cost.
    #[serde(default = "yes")]
    pub cpu_arena: bool,
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
            cpu_arena: true,
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
        }
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

fn default_detector() -> String {
    "yolox_nano_coco_416".into()
}
fn default_plate_detector() -> String {
    "vn_plate_det_yolo26n_640_e2e".into()
}
fn default_plate_ocr() -> String {
    "vn_plate_ocr_9x37_64x128".into()
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
    /// `[w, h]` of the camera's frames; zones, lines and calibration points are checked against
    /// it. Default: none (not checked).
    #[serde(default)]
    pub frame_size: Option<[u32; 2]>,
    /// `[[cameras.zones]]`: polygons for rules. Default: none.
    #[serde(default)]
    pub zones: Vec<super::rules::ZoneConfig>,
    /// `[[cameras.lines]]`: counting lines. Default: none.
    #[serde(default)]
    pub lines: Vec<super::rules::LineConfig>,
    /// `[[cameras.rules]]`: behaviour rules. Default: none.
    #[serde(default)]
    pub rules: Vec<super::rules::RuleConfig>,
    /// `[cameras.calibration]`: image-to-ground mapping for speeds and metres. Default: none.
    #[serde(default)]
    pub calibration: Option<super::rules::CalibrationConfig>,
}

fn default_fps() -> f64 {
    5.0
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
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            embedded_listen: default_embedded_listen(),
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
        }
    }
}

fn default_embedded_listen() -> String {
    "127.0.0.1:1883".into()
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

/// `[storage]`: the durable event spool.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the SQLite spool. Default `/var/lib/edge-agent/spool`.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Upper bound of the spool in MiB; evidence is evicted first, then the oldest events, each
    /// eviction counted. Default 1024.
    #[serde(default = "default_spool_mb")]
    pub max_size_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            spool_dir: default_spool_dir(),
            max_size_mb: default_spool_mb(),
        }
    }
}

fn default_spool_dir() -> PathBuf {
    "/var/lib/edge-agent/spool".into()
}
fn default_spool_mb() -> u64 {
    1024
}

/// `[http]`: the local API for installers and monitoring.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Set false to disable the local API. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Listen address. Default `127.0.0.1:8080`.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// File holding the bearer token (required when `listen` is not a loopback address).
    /// Default: none.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: default_http_listen(),
            token_file: None,
        }
    }
}

fn default_http_listen() -> String {
    "127.0.0.1:8080".into()
}

/// `[evidence]`: the JPEGs attached to events.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Frames wider than this are downscaled before encoding (0 = full size). Default 1280.
    #[serde(default = "default_frame_max_width")]
    pub frame_max_width: u32,
    /// JPEG quality 1..=100. Default 80.
    #[serde(default = "default_jpeg_quality")]
    pub jpeg_quality: u8,
    /// Margin around the object crop, as a fraction of the box size on each side. Default 0.15.
    #[serde(default = "default_crop_padding")]
    pub crop_padding: f32,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            frame_max_width: default_frame_max_width(),
            jpeg_quality: default_jpeg_quality(),
            crop_padding: default_crop_padding(),
        }
    }
}

fn default_frame_max_width() -> u32 {
    1280
}
fn default_jpeg_quality() -> u8 {
    80
}
fn default_crop_padding() -> f32 {
    0.15
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
