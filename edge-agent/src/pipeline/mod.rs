//! The video pipeline: sources → sampler → detector → tracker → plate reads and rules → events.
//!
//! A decode thread per camera samples frames to the camera's target rate and queues them
//! ([`queue::FrameQueues`], dropping the oldest when inference falls behind); a pool of inference
//! workers, each with its own ONNX Runtime sessions, takes cameras round-robin and runs every
//! per-frame stage for the frame it took.

pub mod camera;
pub mod evidence_stream;
pub mod live;
pub mod metrics;
pub mod observer;
pub mod plates;
pub mod queue;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod scene_cut;
pub mod sink;

use crate::config::{CameraConfig, CameraRole};
use crate::source;

pub use camera::{Observation, PlateObservation, RuleObservation, WorkerModels, detector_manifest};
pub use observer::{Observers, PipelineObserver};
pub use runner::{
    ApplyError, CameraSummary, ControlReceiver, PipelineControl, PipelineOptions, Sink, Summary,
    control, run, run_controlled,
};

/// One camera to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    pub id: String,
    pub url: String,
    pub target_fps: f64,
    pub role: CameraRole,
    /// How its stream or file is decoded (`decoder`, `gst_decoder`).
    pub decoding: source::Decoding,
    /// The camera's config when it has zones, lines or rules.
    pub rules: Option<Box<CameraConfig>>,
    /// The main stream plates and evidence are cut from (`evidence_url`), and how far apart in
    /// capture time its frame may be from the detection frame.
    pub evidence: Option<(String, std::time::Duration)>,
}

/// Why the pipeline could not start.
///
/// The messages carry their cause themselves and mark no `source`: a chain printer (`{:#}`)
/// would otherwise print each cause twice.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("camera `{camera}`: {error}")]
    Source {
        camera: String,
        error: crate::source::SourceError,
    },
    #[error("no inference workers (runtime.workers must be at least 1)")]
    NoWorkers,
    #[error("cannot start a pipeline thread: {0}")]
    Thread(std::io::Error),
}
