//! Starts the threads of the pipeline and joins them: a decode thread per camera, a pool of
//! inference workers, and the end-of-stream flush. While it runs, a [`PipelineControl`] can
//! replace the set of cameras (remote config) without touching the cameras that did not change.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::HealthConfig;
use crate::health::{Monitor, Report, Transition};
use crate::source::{
    self, Frame, FrameSource, SourceCounters, SourceItem, SourceOptions, StreamStatus,
};
use crate::track::TrackerConfig;

use super::CameraSpec;
use super::PipelineError;
use super::camera::{CameraState, FrameContext, Observation, Sampled, WorkerModels};
use super::evidence_stream::EvidenceStream;
use super::metrics::CameraStats;
use super::observer::{CameraLoad, Observers, PipelineObserver};
use super::plates::PlateSchedule;
use super::queue::{FrameQueues, Take};
use super::sampler::FpsSampler;

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
    /// Who watches the pipeline: the HTTP API's live state, systemd's liveness.
    pub observers: Observers,
    /// Camera health and tamper checks (`[health]`).
    pub health: HealthConfig,
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
            observers: Observers::default(),
            health: HealthConfig::default(),
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
    /// A camera's image health changed (frozen, covered, defocused, scene changed, low fps, ok);
    /// `frame` is the frame that decided it.
    fn health_transition(&self, _camera: &str, _transition: &Transition, _frame: Option<&Frame>) {}
    /// A camera's current health, about once a second while frames arrive.
    fn health_report(&self, _camera: &str, _report: &Report) {}
    /// Where a camera's source puts its encoded video for event clips; `None`: no clips.
    fn encoded_tap(&self, _camera: &str) -> Option<crate::clips::EncodedTap> {
        None
    }
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked mid-frame leaves a usable state behind; keep the other cameras going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a [`PipelineControl::apply`] did not happen. In every case the cameras run as before.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A new source could not be opened, or new rules could not be built.
    #[error("{0}")]
    Failed(String),
    #[error("the pipeline is not running")]
    NotRunning,
    #[error("the pipeline did not answer within {0:?}")]
    Timeout(Duration),
}

struct ApplyRequest {
    cameras: Vec<CameraSpec>,
    reply: mpsc::Sender<Result<Vec<String>, String>>,
}

/// Changes a running pipeline from another thread (see [`run_controlled`]).
#[derive(Clone)]
pub struct PipelineControl {
    tx: mpsc::Sender<ApplyRequest>,
}

/// The pipeline's end of a [`PipelineControl`].
pub struct ControlReceiver {
    rx: mpsc::Receiver<ApplyRequest>,
}

/// A control handle and the receiver to pass to [`run_controlled`].
pub fn control() -> (PipelineControl, ControlReceiver) {
    let (tx, rx) = mpsc::channel();
    (PipelineControl { tx }, ControlReceiver { rx })
}

impl PipelineControl {
    /// Makes `cameras` the running set, all or nothing. A camera whose source (url, fps, role) is
    /// unchanged keeps its stream, tracker and counters and only gets new zones/lines/rules; a
    /// camera whose source changed is restarted alone; removed cameras stop (their open events
    /// are closed) and added ones start. New sources are opened and new rules built before
    /// anything changes, so a failure leaves the pipeline exactly as it was. Returns one line per
    /// camera that changed.
    pub fn apply(
        &self,
        cameras: Vec<CameraSpec>,
        timeout: Duration,
    ) -> Result<Vec<String>, ApplyError> {
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(ApplyRequest { cameras, reply })
            .map_err(|_| ApplyError::NotRunning)?;
        match answer.recv_timeout(timeout) {
            Ok(r) => r.map_err(ApplyError::Failed),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ApplyError::Timeout(timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ApplyError::NotRunning),
        }
    }
}

/// A camera being run: its slot in the queues, its shared state and its decode thread.
struct Running {
    spec: CameraSpec,
    index: usize,
    cam: Arc<CameraShared>,
    stop: Arc<AtomicBool>,
    decoder: JoinHandle<()>,
}

/// Runs the cameras until every source ends (files) or `opts.source.stop` is set.
pub fn run(
    cameras: Vec<CameraSpec>,
    workers: Vec<WorkerModels>,
    opts: &PipelineOptions,
    sink: Arc<dyn Sink>,
) -> Result<Summary, PipelineError> {
    run_controlled(cameras, workers, opts, sink, None)
}

/// [`run`], taking camera changes from `control` while it runs.
pub fn run_controlled(
    cameras: Vec<CameraSpec>,
    workers: Vec<WorkerModels>,
    opts: &PipelineOptions,
    sink: Arc<dyn Sink>,
    control: Option<ControlReceiver>,
) -> Result<Summary, PipelineError> {
    if workers.is_empty() {
        return Err(PipelineError::NoWorkers);
    }
    let started = Instant::now();
    let mut p = Pipeline {
        queues: Arc::new(FrameQueues::new(0, opts.queue_capacity)),
        slots: Arc::new(RwLock::new(Vec::new())),
        running: Vec::new(),
        retired: Vec::new(),
        opts: opts.clone(),
        sink: sink.clone(),
    };
    let mut opened = Vec::with_capacity(cameras.len());
    for spec in cameras {
        let stop = Arc::new(AtomicBool::new(false));
        let src = p
            .open(&spec, &stop)
            .inspect_err(|_| stop.store(true, Ordering::Relaxed));
        match src {
            Ok(src) => opened.push((spec, src, stop)),
            Err(e) => {
                for (_, _, s) in &opened {
                    s.store(true, Ordering::Relaxed);
                }
                return Err(e);
            }
        }
    }
    for (spec, src, stop) in opened {
        p.start(spec, src, stop)?;
    }

    let mut pool = Vec::new();
    for (w, mut models) in workers.into_iter().enumerate() {
        let queues = p.queues.clone();
        let slots = p.slots.clone();
        let sink = sink.clone();
        let stop = opts.source.stop.clone();
        let observers = opts.observers.clone();
        let capacity = opts.queue_capacity;
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
                    let cam = slots
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(index)
                        .cloned();
                    let Some(cam) = cam else {
                        queues.release(index);
                        continue;
                    };
                    let mut state = lock(&cam.state);
                    let seq = sampled.frame.seq;
                    let frame_bytes = sampled.frame.rgb.len();
                    if state.note_connection(sampled.connection) {
                        state.discontinuity(&mut |obs| sink.observation(&cam.spec_id, obs, None));
                    }
                    let mut emit = |obs: Observation, ctx: &FrameContext<'_>| {
                        sink.observation(&cam.spec_id, obs, Some(ctx));
                    };
                    if let Err(e) = state.process(&mut models, sampled, &mut emit) {
                        cam.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(camera = %cam.spec_id, frame = seq, error = %e, "frame not processed");
                    }
                    let tracker = state.tracker_use();
                    drop(state);
                    observers.frame_done(
                        &cam.spec_id,
                        &CameraLoad {
                            dropped: queues.dropped().get(index).copied().unwrap_or(0),
                            failed: cam.failed.load(Ordering::Relaxed),
                            queued: queues.depths().get(index).copied().unwrap_or(0),
                            capacity,
                            frame_bytes,
                            tracker,
                        },
                    );
                    queues.release(index);
                }
            })
            .map_err(PipelineError::Thread)?;
        pool.push(handle);
    }

    opts.observers.pipeline_started(
        &p.running
            .iter()
            .map(|r| r.spec.id.clone())
            .collect::<Vec<_>>(),
    );

    // Watch for shutdown and camera changes until the workers are done.
    let mut control = control;
    while !pool.iter().all(JoinHandle::is_finished) {
        if opts.source.stop.load(Ordering::Relaxed) {
            // Each camera has its own stop flag (so one can be stopped alone); pass shutdown on.
            for r in &p.running {
                r.stop.store(true, Ordering::Relaxed);
            }
        }
        match control
            .as_ref()
            .map(|c| c.rx.recv_timeout(Duration::from_millis(100)))
        {
            Some(Ok(req)) => {
                let result = p.apply(req.cameras);
                let _ = req.reply.send(result);
            }
            Some(Err(mpsc::RecvTimeoutError::Timeout)) => {}
            Some(Err(mpsc::RecvTimeoutError::Disconnected)) => control = None,
            None => thread::sleep(Duration::from_millis(100)),
        }
    }
    drop(control);
    for h in pool {
        if h.join().is_err() {
            tracing::error!("an inference worker panicked");
        }
    }
    // Workers are gone: a decode thread blocked on a full queue must not wait for them.
    p.queues.shutdown();
    for r in &p.running {
        r.stop.store(true, Ordering::Relaxed);
    }
    let running = std::mem::take(&mut p.running);
    for r in running {
        p.retire(r);
    }
    Ok(Summary {
        cameras: p.retired,
        wall: started.elapsed(),
    })
}

/// What the controlling thread keeps of a running pipeline.
struct Pipeline {
    queues: Arc<FrameQueues<Sampled>>,
    /// Camera state per queue slot; slots are only ever added (a stopped camera's slot stays,
    /// closed), so a worker's index stays valid.
    slots: Arc<RwLock<Vec<Arc<CameraShared>>>>,
    running: Vec<Running>,
    /// Summaries of stopped cameras, in stopping order.
    retired: Vec<CameraSummary>,
    opts: PipelineOptions,
    sink: Arc<dyn Sink>,
}

impl Pipeline {
    fn open(
        &self,
        spec: &CameraSpec,
        stop: &Arc<AtomicBool>,
    ) -> Result<Box<dyn FrameSource>, PipelineError> {
        let mut so = self.opts.source.clone();
        so.stop = stop.clone();
        so.decoding = spec.decoding.clone();
        so.encoded = self
            .sink
            .encoded_tap(&spec.id)
            .map(|tap| Arc::new(tap) as Arc<dyn crate::source::EncodedSink>);
        let src = source::open(&spec.url, &so).map_err(|e| PipelineError::Source {
            camera: spec.id.clone(),
            error: e,
        })?;
        tracing::info!(camera = %spec.id, source = %src.describe(), fps = spec.target_fps, "camera opened");
        Ok(src)
    }

    /// Gives an opened source a queue slot, a fresh camera state and a decode thread.
    fn start(
        &mut self,
        spec: CameraSpec,
        src: Box<dyn FrameSource>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), PipelineError> {
        let mut state = CameraState::new(
            spec.id.clone(),
            spec.role,
            self.opts.tracker.clone(),
            self.opts.plates.clone(),
            spec.rules.clone(),
            self.opts.utc_offset_minutes,
        );
        if self.opts.observers.wants_frames() {
            state.set_observer(Arc::new(self.opts.observers.clone()));
        }
        let evidence = self.evidence_stream(&spec);
        state.set_evidence_stream(evidence.clone());
        let cam = Arc::new(CameraShared {
            spec_id: spec.id.clone(),
            state: Mutex::new(state),
            decoded: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            counters: Mutex::new(SourceCounters::default()),
        });
        let index = {
            let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
            let index = self.queues.add_camera();
            debug_assert_eq!(index, slots.len());
            slots.push(cam.clone());
            index
        };
        let decoder = spawn_decoder(
            Decoder {
                index,
                fps: spec.target_fps,
                cam: cam.clone(),
                queues: self.queues.clone(),
                sink: self.sink.clone(),
                lossless: self.opts.lossless,
                observers: self.opts.observers.clone(),
                monitor: Monitor::new(self.opts.health.clone(), spec.target_fps),
                evidence,
            },
            src,
        );
        let decoder = match decoder {
            Ok(d) => d,
            Err(e) => {
                self.queues.close(index);
                return Err(e);
            }
        };
        self.running.push(Running {
            spec,
            index,
            cam,
            stop,
            decoder,
        });
        Ok(())
    }

    /// The camera's main stream, opened when it names one and frames come at their own pace (a
    /// replay runs ahead of any second stream, so it reads the detection frames).
    fn evidence_stream(&self, spec: &CameraSpec) -> Option<Arc<EvidenceStream>> {
        let (url, tolerance) = spec.evidence.as_ref()?;
        if self.opts.lossless {
            tracing::warn!(camera = %spec.id, "evidence_url is used by a live run only; plates are read on the detection frames");
            return None;
        }
        // enough frames to cover the tolerance on both sides at up to 30 fps
        let keep = ((tolerance.as_secs_f64() * 2.0 * 30.0).ceil() as usize).clamp(2, 32);
        // decoded the way the camera's sub-stream is (`decoder`, `gst_decoder`)
        let mut so = self.opts.source.clone();
        so.decoding = spec.decoding.clone();
        match EvidenceStream::open(&spec.id, url, &so, *tolerance, keep) {
            Ok(s) => {
                tracing::info!(camera = %spec.id, main = %s.describe(), "main stream opened for plates and evidence");
                Some(Arc::new(s))
            }
            Err(e) => {
                tracing::error!(camera = %spec.id, error = %e, "main stream not opened: plates and evidence from the detection stream");
                None
            }
        }
    }

    /// Stops a camera: its source, then its queued frames; open events are closed.
    fn retire(&mut self, r: Running) {
        r.stop.store(true, Ordering::Relaxed);
        if r.decoder.join().is_err() {
            tracing::error!(camera = %r.spec.id, "a decode thread panicked");
        }
        self.queues.discard(r.index);
        let mut state = lock(&r.cam.state);
        state.finish(&mut |obs| self.sink.observation(&r.cam.spec_id, obs, None));
        state.set_evidence_stream(None);
        let cam = &r.cam;
        self.retired.push(CameraSummary {
            id: cam.spec_id.clone(),
            decoded: cam.decoded.load(Ordering::Relaxed),
            sampled: cam.sampled.load(Ordering::Relaxed),
            dropped: self.queues.dropped().get(r.index).copied().unwrap_or(0),
            failed: cam.failed.load(Ordering::Relaxed),
            source: *lock(&cam.counters),
            tracks: state.tracks_confirmed(),
            stats: state.stats.clone(),
        });
    }

    /// See [`PipelineControl::apply`].
    fn apply(&mut self, wanted: Vec<CameraSpec>) -> Result<Vec<String>, String> {
        if self.opts.source.stop.load(Ordering::Relaxed) {
            return Err("the pipeline is shutting down".into());
        }
        if wanted.is_empty() {
            // With no camera left the workers would finish and the agent stop.
            return Err("no camera to run; at least one must stay enabled".into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = wanted.iter().find(|s| !seen.insert(s.id.as_str())) {
            return Err(format!("camera id `{}` appears twice", dup.id));
        }
        let same_source = |a: &CameraSpec, b: &CameraSpec| {
            a.url == b.url
                && a.target_fps == b.target_fps
                && a.role == b.role
                && a.decoding == b.decoding
        };
        // Prepare everything that can fail, changing nothing yet.
        let mut to_start = Vec::new();
        let mut swaps = Vec::new();
        let mut prepared: Result<(), String> = Ok(());
        for spec in &wanted {
            match self.running.iter().position(|r| r.spec.id == spec.id) {
                Some(i) if same_source(&self.running[i].spec, spec) => {
                    if self.running[i].spec.rules != spec.rules {
                        let built =
                            lock(&self.running[i].cam.state).build_rules(spec.rules.as_deref());
                        match built {
                            Ok(engine) => swaps.push((i, spec.clone(), engine)),
                            Err(e) => {
                                prepared = Err(e);
                                break;
                            }
                        }
                    }
                }
                other => {
                    let stop = Arc::new(AtomicBool::new(false));
                    match self.open(spec, &stop) {
                        Ok(src) => to_start.push((spec.clone(), src, stop, other.is_some())),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            prepared = Err(e.to_string());
                            break;
                        }
                    }
                }
            }
        }
        if let Err(e) = prepared {
            for (_, _, stop, _) in &to_start {
                stop.store(true, Ordering::Relaxed);
            }
            tracing::warn!(error = %e, "camera change refused; nothing changed");
            return Err(e);
        }

        // Commit. New cameras get their slots before old ones close, so the workers never see
        // "every camera finished" in between.
        let mut changes = Vec::new();
        for (i, spec, engine) in swaps {
            let r = &mut self.running[i];
            let sink = self.sink.clone();
            let id = r.cam.spec_id.clone();
            lock(&r.cam.state).set_rules(spec.rules.clone(), engine, &mut |obs| {
                sink.observation(&id, obs, None)
            });
            r.spec = spec;
            tracing::info!(camera = %id, "rules replaced in place");
            changes.push(format!("{id}: rules replaced"));
        }
        let mut restarted = Vec::new();
        for (spec, src, stop, restart) in to_start {
            let id = spec.id.clone();
            let old = restart
                .then(|| self.running.iter().position(|r| r.spec.id == id))
                .flatten()
                .map(|i| self.running.remove(i));
            if let Err(e) = self.start(spec, src, stop) {
                // Only a thread that cannot be spawned gets here; keep what ran before.
                tracing::error!(camera = %id, error = %e, "cannot start the camera");
                if let Some(old) = old {
                    self.running.push(old);
                }
                changes.push(format!("{id}: not started: {e}"));
                continue;
            }
            match old {
                Some(old) => {
                    restarted.push(old);
                    changes.push(format!("{id}: restarted (source changed)"));
                }
                None => changes.push(format!("{id}: started")),
            }
        }
        for old in restarted {
            self.retire(old);
        }
        while let Some(i) = self
            .running
            .iter()
            .position(|r| !wanted.iter().any(|s| s.id == r.spec.id))
        {
            let r = self.running.remove(i);
            changes.push(format!("{}: stopped", r.spec.id));
            tracing::info!(camera = %r.spec.id, "camera removed");
            self.retire(r);
        }
        self.opts.observers.cameras_changed(&wanted);
        Ok(changes)
    }
}

/// What a decode thread needs besides its source.
struct Decoder {
    index: usize,
    fps: f64,
    cam: Arc<CameraShared>,
    queues: Arc<FrameQueues<Sampled>>,
    sink: Arc<dyn Sink>,
    lossless: bool,
    observers: Observers,
    /// Camera health and tamper checks on every decoded frame.
    monitor: Monitor,
    /// The camera's main stream, whose loss its health reports.
    evidence: Option<Arc<EvidenceStream>>,
}

fn spawn_decoder(
    d: Decoder,
    mut src: Box<dyn FrameSource>,
) -> Result<JoinHandle<()>, PipelineError> {
    let Decoder {
        index,
        fps,
        cam,
        queues,
        sink,
        lossless,
        observers,
        mut monitor,
        evidence,
    } = d;
    thread::Builder::new()
        .name(format!("decode-{}", cam.spec_id))
        .spawn(move || {
            let mut sampler = FpsSampler::new(fps);
            let mut scene = super::scene_cut::SceneCut::new();
            let mut last_report: Option<Instant> = None;
            let mut connection = 0u64;
            loop {
                match src.next_item() {
                    Ok(Some(SourceItem::Frame(frame))) => {
                        cam.decoded.fetch_add(1, Ordering::Relaxed);
                        // A jump in media time, or a cut to another view (a PTZ preset), is a
                        // gap like a reconnect: the next frame processed ends the camera's
                        // tracks (also when this one is not sampled).
                        let cut = scene.is_cut(&frame.rgb, frame.width, frame.height);
                        if cut && !frame.discontinuity {
                            tracing::info!(camera = %cam.spec_id, "the view changed at once (a PTZ preset, another input); the camera's tracks restart");
                        }
                        if frame.discontinuity || cut {
                            connection += 1;
                        }
                        // Health is checked on every decoded frame (cheap: one small grey copy
                        // per check interval), so a frozen or covered camera is seen even when
                        // inference is behind and drops frames.
                        let counters = src.counters();
                        let transition = monitor.on_frame(&frame, counters);
                        if let Some(tr) = &transition {
                            tracing::warn!(camera = %cam.spec_id, from = tr.from, to = tr.to, details = %serde_json::Value::Object(tr.details()), "camera health changed");
                            sink.health_transition(&cam.spec_id, tr, Some(&frame));
                        }
                        if transition.is_some()
                            || last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                        {
                            let mut report = monitor.report(counters, Some(frame.capture_time));
                            if evidence.as_ref().is_some_and(|s| {
                                let st = s.stats();
                                !st.up && !st.connecting
                            }) {
                                report.active.push(crate::health::Condition::MainStreamLost);
                            }
                            sink.health_report(&cam.spec_id, &report);
                            last_report = Some(Instant::now());
                        }
                        let admitted = sampler.admit(frame.stream_time);
                        observers.frame_decoded(&cam.spec_id, admitted, src.counters());
                        if !admitted {
                            source::recycle(frame.rgb);
                            continue;
                        }
                        cam.sampled.fetch_add(1, Ordering::Relaxed);
                        let item = Sampled {
                            frame,
                            received: Instant::now(),
                            connection,
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
                        monitor.on_stream(&status);
                        scene.reset();
                        if !matches!(status, StreamStatus::Connected { .. }) {
                            connection += 1;
                        }
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
                        observers.stream_status(&cam.spec_id, &status, src.counters());
                        sink.stream_status(&cam.spec_id, &status, src.counters());
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(camera = %cam.spec_id, error = %e, "source failed");
                        let status = StreamStatus::Disconnected {
                            reason: e.to_string(),
                            retry_in: Duration::ZERO,
                        };
                        observers.stream_status(&cam.spec_id, &status, src.counters());
                        sink.stream_status(&cam.spec_id, &status, src.counters());
                        break;
                    }
                }
            }
            *lock(&cam.counters) = src.counters();
            observers.stream_ended(&cam.spec_id, src.counters());
            queues.close(index);
        })
        .map_err(PipelineError::Thread)
}
