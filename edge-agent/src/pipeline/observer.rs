//! Who watches the pipeline from outside: the HTTP API's live state ([`super::live::LiveHub`]) and
//! systemd's liveness ([`crate::service::Liveness`]). The pipeline tells [`PipelineObserver`]s what
//! happens and never knows who they are, so the stages do not import the API or the service, and a
//! new watcher (a second UI, a test probe) is one `impl`, not a new argument through every thread.
//!
//! Observers are called on the decode and inference threads: they must return quickly.

use std::sync::Arc;
use std::time::SystemTime;

use crate::inference::RgbImage;
use crate::source::{SourceCounters, StreamStatus};
use crate::track::{Track, TrackerUse};

use super::CameraSpec;
use super::metrics::CameraStats;

/// A camera's load after one frame went through inference (for `/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct CameraLoad {
    /// Frames dropped from the camera's queue so far, and frames whose processing failed.
    pub dropped: u64,
    pub failed: u64,
    /// Frames waiting in the camera's queue, its capacity, and the pixel bytes of one frame.
    pub queued: usize,
    pub capacity: usize,
    pub frame_bytes: usize,
    pub tracker: TrackerUse,
}

/// One frame after every stage, with what was seen on it.
pub struct ProcessedFrame<'a> {
    pub image: Arc<RgbImage>,
    pub seq: u64,
    pub capture_time: SystemTime,
    pub tracks: &'a [Track],
    /// Class label of a track's class id.
    pub labels: &'a dyn Fn(usize) -> Arc<str>,
    /// Plate reports made on this frame: (track id, text).
    pub plates: &'a [(u64, String)],
    /// Tracks that ended on this frame.
    pub ended: &'a [u64],
    pub stats: &'a CameraStats,
}

/// Watches the pipeline; every method has a no-op default, so an observer implements what it uses.
pub trait PipelineObserver: Send + Sync {
    /// Every camera opened and the workers started.
    fn pipeline_started(&self, _cameras: &[String]) {}
    /// The running cameras after a reload.
    fn cameras_changed(&self, _cameras: &[CameraSpec]) {}
    /// A decoded frame; `admitted` when the sampler let it through to inference.
    fn frame_decoded(&self, _camera: &str, _admitted: bool, _source: SourceCounters) {}
    /// The stream went up, down or stalled.
    fn stream_status(&self, _camera: &str, _status: &StreamStatus, _source: SourceCounters) {}
    /// The camera's source ended (end of file, or the camera was removed).
    fn stream_ended(&self, _camera: &str, _source: SourceCounters) {}
    /// Whether [`Self::frame_processed`] should get the frame's pixels; when no observer wants
    /// them the frame's buffer goes straight back to the decoders.
    fn wants_frames(&self) -> bool {
        false
    }
    /// A frame went through every stage (only called when [`Self::wants_frames`]).
    fn frame_processed(&self, _camera: &str, _frame: &ProcessedFrame<'_>) {}
    /// After each frame of `camera`: its queue, losses and tracker.
    fn frame_done(&self, _camera: &str, _load: &CameraLoad) {}
}

/// Every observer of one pipeline, called in order.
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn PipelineObserver>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}

impl Observers {
    /// Adds an observer.
    pub fn push(&mut self, observer: Arc<dyn PipelineObserver>) {
        self.0.push(observer);
    }

    /// True when nobody watches.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PipelineObserver for Observers {
    fn pipeline_started(&self, cameras: &[String]) {
        self.0.iter().for_each(|o| o.pipeline_started(cameras));
    }
    fn cameras_changed(&self, cameras: &[CameraSpec]) {
        self.0.iter().for_each(|o| o.cameras_changed(cameras));
    }
    fn frame_decoded(&self, camera: &str, admitted: bool, source: SourceCounters) {
        self.0
            .iter()
            .for_each(|o| o.frame_decoded(camera, admitted, source));
    }
    fn stream_status(&self, camera: &str, status: &StreamStatus, source: SourceCounters) {
        self.0
            .iter()
            .for_each(|o| o.stream_status(camera, status, source));
    }
    fn stream_ended(&self, camera: &str, source: SourceCounters) {
        self.0.iter().for_each(|o| o.stream_ended(camera, source));
    }
    fn wants_frames(&self) -> bool {
        self.0.iter().any(|o| o.wants_frames())
    }
    fn frame_processed(&self, camera: &str, frame: &ProcessedFrame<'_>) {
        self.0
            .iter()
            .filter(|o| o.wants_frames())
            .for_each(|o| o.frame_processed(camera, frame));
    }
    fn frame_done(&self, camera: &str, load: &CameraLoad) {
        self.0.iter().for_each(|o| o.frame_done(camera, load));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        frames: bool,
        seen: Mutex<Vec<String>>,
    }

    impl PipelineObserver for Recorder {
        fn stream_ended(&self, camera: &str, _source: SourceCounters) {
            self.seen.lock().unwrap().push(format!("ended {camera}"));
        }
        fn wants_frames(&self) -> bool {
            self.frames
        }
        fn frame_processed(&self, camera: &str, frame: &ProcessedFrame<'_>) {
            self.seen
                .lock()
                .unwrap()
                .push(format!("frame {camera} {}", frame.seq));
        }
    }

    #[test]
    fn every_observer_hears_the_pipeline_and_only_those_that_want_frames_get_them() {
        let pixels = Arc::new(Recorder {
            frames: true,
            ..Recorder::default()
        });
        let counts = Arc::new(Recorder::default());
        let mut all = Observers::default();
        assert!(!all.wants_frames(), "nobody watches: frames are recycled");
        all.push(pixels.clone());
        all.push(counts.clone());
        assert!(all.wants_frames());
        all.stream_ended("gate", SourceCounters::default());
        let stats = CameraStats::default();
        let labels = |_: usize| Arc::<str>::from("car");
        all.frame_processed(
            "gate",
            &ProcessedFrame {
                image: Arc::new(RgbImage::new(2, 2)),
                seq: 7,
                capture_time: SystemTime::UNIX_EPOCH,
                tracks: &[],
                labels: &labels,
                plates: &[],
                ended: &[],
                stats: &stats,
            },
        );
        assert_eq!(*pixels.seen.lock().unwrap(), ["ended gate", "frame gate 7"]);
        assert_eq!(*counts.seen.lock().unwrap(), ["ended gate"]);
    }
}
