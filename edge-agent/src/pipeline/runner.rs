//! Starts the threads of the pipeline and joins them: a decode thread per camera, a pool of
//! inference workers, and the end-of-stream flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::{CameraConfig, CameraRole};
use crate::source::{self, SourceCounters, SourceItem, SourceOptions, StreamStatus};
use crate::track::TrackerConfig;

use super::PipelineError;
use super::camera::{CameraState, CameraStats, FrameContext, Observation, Sampled, WorkerModels};
use super::plates::PlateSchedule;
use super::queue::{FrameQueues, Take};
use super::sampler::FpsSampler;

/// One camera to run.
pub struct CameraSpec {
    pub id: String,
    pub url: String,
    pub target_fps: f64,
    pub role: CameraRole,
    /// The camera's config when it has zones, lines or rules.
    pub rules: Option<Box<CameraConfig>>,
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Frames waiting per camera; when full the oldest is dropped (live) or the source waits
    /// (`lossless`). Default 2.
    pub queue_capacity: usize,
    /// Make sources wait for the workers instead of dropping frames: replaying a file as fast as
    /// possible analyses every sampled frame. Live cameras cannot wait, so `run` leaves it off.
    pub lossless: bool,
    pub source: SourceOptions,
    pub tracker: TrackerConfig,
    pub plates: PlateSchedule,
    /// Local time offset from UTC, for rules' time windows (`[device].utc_offset_minutes`).
    pub utc_offset_minutes: i32,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            queue_capacity: 2,
            lossless: false,
            source: SourceOptions::default(),
            tracker: TrackerConfig::default(),
            plates: PlateSchedule::default(),
            utc_offset_minutes: 420,
        }
    }
}

/// Where the pipeline's results go (events spool, JSON lines, tests).
pub trait Sink: Send + Sync {
    /// A plate consensus or a rule event; `frame` is the frame it arose on (absent for reports at
    /// the end of the stream).
    fn observation(&self, camera: &str, obs: Observation, frame: Option<&FrameContext<'_>>);
    /// A camera's stream went up, down or stalled.
    fn stream_status(&self, camera: &str, status: &StreamStatus, counters: SourceCounters);
}

/// Counts of one camera over the run.
#[derive(Debug, Clone, Default)]
pub struct CameraSummary {
    pub id: String,
    /// Frames decoded by the source.
    pub decoded: u64,
    /// Frames admitted by the sampler.
    pub sampled: u64,
    /// Sampled frames dropped because inference was behind.
    pub dropped: u64,
    /// Frames whose processing failed (logged).
    pub failed: u64,
    pub source: SourceCounters,
    pub tracks: u64,
    pub stats: CameraStats,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub cameras: Vec<CameraSummary>,
    pub wall: Duration,
}

struct CameraShared {
    spec_id: String,
    state: Mutex<CameraState>,
    decoded: AtomicU64,
    sampled: AtomicU64,
    failed: AtomicU64,
    counters: Mutex<SourceCounters>,
}

/// Runs the cameras until every source ends (files) or `opts.source.stop` is set.
pub fn run(
    cameras: Vec<CameraSpec>,
    workers: Vec<WorkerModels>,
    opts: &PipelineOptions,
    sink: Arc<dyn Sink>,
) -> Result<Summary, PipelineError> {
    if workers.is_empty() {
        return Err(PipelineError::NoWorkers);
    }
    let started = Instant::now();
    let mut sources = Vec::with_capacity(cameras.len());
    let mut shared = Vec::with_capacity(cameras.len());
    for spec in cameras {
        let src = source::open(&spec.url, &opts.source).map_err(|e| PipelineError::Source {
            camera: spec.id.clone(),
            source: e,
        })?;
        tracing::info!(camera = %spec.id, source = %src.describe(), fps = spec.target_fps, "camera opened");
        sources.push((src, spec.target_fps));
        shared.push(Arc::new(CameraShared {
            spec_id: spec.id.clone(),
            state: Mutex::new(CameraState::new(
                spec.id,
                spec.role,
                opts.tracker.clone(),
                opts.plates.clone(),
                spec.rules,
                opts.utc_offset_minutes,
            )),
            decoded: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            counters: Mutex::new(SourceCounters::default()),
        }));
    }
    let queues: Arc<FrameQueues<Sampled>> =
        Arc::new(FrameQueues::new(shared.len(), opts.queue_capacity));

    let mut decoders = Vec::new();
    for (index, (mut src, fps)) in sources.into_iter().enumerate() {
        let queues = queues.clone();
        let cam = shared[index].clone();
        let sink = sink.clone();
        let lossless = opts.lossless;
        let handle = thread::Builder::new()
            .name(format!("decode-{}", cam.spec_id))
            .spawn(move || {
                let mut sampler = FpsSampler::new(fps);
                loop {
                    match src.next_item() {
                        Ok(Some(SourceItem::Frame(frame))) => {
                            cam.decoded.fetch_add(1, Ordering::Relaxed);
                            if !sampler.admit(frame.stream_time) {
                                source::recycle(frame.rgb);
                                continue;
                            }
                            cam.sampled.fetch_add(1, Ordering::Relaxed);
                            let item = Sampled {
                                frame,
                                received: Instant::now(),
                            };
                            if lossless {
                                if !queues.push_blocking(index, item) {
                                    break;
                                }
                            } else {
                                queues.push(index, item);
                            }
                        }
                        Ok(Some(SourceItem::Status(status))) => {
                            match &status {
                                StreamStatus::Connected { description } => {
                                    tracing::info!(camera = %cam.spec_id, %description, "stream up")
                                }
                                StreamStatus::Disconnected { reason, retry_in } => {
                                    tracing::warn!(camera = %cam.spec_id, %reason, retry_in_ms = retry_in.as_millis() as u64, "stream down")
                                }
                                StreamStatus::Stalled { for_ } => {
                                    tracing::warn!(camera = %cam.spec_id, stalled_ms = for_.as_millis() as u64, "stream stalled")
                                }
                            }
                            sink.stream_status(&cam.spec_id, &status, src.counters());
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!(camera = %cam.spec_id, error = %e, "source failed");
                            let status = StreamStatus::Disconnected {
                                reason: e.to_string(),
                                retry_in: Duration::ZERO,
                            };
                            sink.stream_status(&cam.spec_id, &status, src.counters());
                            break;
                        }
                    }
                }
                if let Ok(mut c) = cam.counters.lock() {
                    *c = src.counters();
                }
                queues.close(index);
            })
            .map_err(PipelineError::Thread)?;
        decoders.push(handle);
    }

    let mut pool = Vec::new();
    for (w, mut models) in workers.into_iter().enumerate() {
        let queues = queues.clone();
        let shared = shared.clone();
        let sink = sink.clone();
        let stop = opts.source.stop.clone();
        let handle = thread::Builder::new()
            .name(format!("infer-{w}"))
            .spawn(move || {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        queues.shutdown();
                    }
                    let (index, sampled) = match queues.take(Duration::from_millis(200)) {
                        Take::Frame(i, s) => (i, s),
                        Take::Idle => continue,
                        Take::Finished => break,
                    };
                    let cam = &shared[index];
                    let mut state = match cam.state.lock() {
                        Ok(s) => s,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    let seq = sampled.frame.seq;
                    let mut emit = |obs: Observation, ctx: &FrameContext<'_>| {
                        sink.observation(&cam.spec_id, obs, Some(ctx));
                    };
                    if let Err(e) = state.process(&mut models, sampled, &mut emit) {
                        cam.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(camera = %cam.spec_id, frame = seq, error = %e, "frame not processed");
                    }
                    drop(state);
                    queues.release(index);
                }
            })
            .map_err(PipelineError::Thread)?;
        pool.push(handle);
    }

    for h in pool {
        if h.join().is_err() {
            tracing::error!("an inference worker panicked");
        }
    }
    // Workers are gone: a decode thread blocked on a full queue must not wait for them.
    queues.shutdown();
    for h in decoders {
        if h.join().is_err() {
            tracing::error!("a decode thread panicked");
        }
    }

    let dropped = queues.dropped();
    let mut summary = Vec::with_capacity(shared.len());
    for (i, cam) in shared.iter().enumerate() {
        let mut state = match cam.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.finish(&mut |obs| sink.observation(&cam.spec_id, obs, None));
        summary.push(CameraSummary {
            id: cam.spec_id.clone(),
            decoded: cam.decoded.load(Ordering::Relaxed),
            sampled: cam.sampled.load(Ordering::Relaxed),
            dropped: dropped.get(i).copied().unwrap_or(0),
            failed: cam.failed.load(Ordering::Relaxed),
            source: cam.counters.lock().map(|c| *c).unwrap_or_default(),
            tracks: state.tracks_confirmed(),
            stats: state.stats.clone(),
        });
    }
    Ok(Summary {
        cameras: summary,
        wall: started.elapsed(),
    })
}
