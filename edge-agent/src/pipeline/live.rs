//! The live hub: the pipeline's latest state per camera (last processed frame with what was seen on
//! it, counters, stage latencies, stream up/down) and the last events, kept for the local HTTP API.
//!
//! Writers are the decode and inference threads; readers are API requests. Everything sits behind
//! short-lived locks: a reader copies what it needs (the frame is an `Arc`) and encodes JPEGs after
//! letting go, so a slow HTTP client never holds up a camera.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::config::CameraConfig;
use crate::events::Event;
use crate::inference::RgbImage;
use crate::publish::{Delivery, DeliveryStats};
use crate::source::{SourceCounters, StreamStatus};
use crate::track::{TrackState, TrackerUse};

use super::metrics::CameraStats;
use super::observer::{CameraLoad, PipelineObserver, ProcessedFrame};

/// Events kept for `/events/recent`.
pub const RECENT_EVENTS: usize = 200;
/// Window over which the processed frame rate is measured.
const FPS_WINDOW: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A camera's stream as last reported by its source.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamState {
    /// Opened, no status or frame yet.
    Starting,
    Up {
        description: String,
    },
    Down {
        reason: String,
    },
    Stalled,
    /// The source ended (a file or image folder played to its end).
    Ended,
}

impl StreamState {
    /// Short name for tables and metrics: `starting`, `up`, `down`, `stalled`, `ended`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Up { .. } => "up",
            Self::Down { .. } => "down",
            Self::Stalled => "stalled",
            Self::Ended => "ended",
        }
    }
}

/// One tracked object on the last frame, for overlays.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayObject {
    pub track_id: u64,
    pub label: Arc<str>,
    pub bbox: [f32; 4],
    /// Matched this frame (false: only predicted).
    pub confirmed: bool,
    /// The track's reported plate, once its vote was confident enough to report.
    pub plate: Option<String>,
}

/// The last processed frame of a camera.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    pub image: Arc<RgbImage>,
    pub seq: u64,
    pub capture_time: SystemTime,
    /// When it finished processing.
    pub at: Instant,
    pub objects: Vec<OverlayObject>,
}

/// Everything known about one camera right now.
#[derive(Debug, Clone)]
pub struct CameraLive {
    pub id: String,
    pub name: Option<String>,
    pub url: String,
    pub target_fps: f64,
    /// The camera's zones and lines (for overlays and the installer's editor).
    pub config: Option<CameraConfig>,
    pub stream: StreamState,
    pub stream_since: SystemTime,
    pub decoded: u64,
    pub sampled: u64,
    /// Sampled frames dropped before inference because the workers were behind.
    pub dropped: u64,
    pub failed: u64,
    pub source: SourceCounters,
    pub stats: CameraStats,
    pub frame: Option<LiveFrame>,
    /// Pixelate people in snapshots, as in evidence (`[privacy]`); on unless the camera turns it off.
    pub blur_people: bool,
    /// Why the camera's rules could not be built for its stream; `None` while they run (or it has
    /// none). `/readyz` reports the camera not ready.
    pub rules_error: Option<String>,
    /// The camera's frame queue, as last seen by a worker.
    pub queue: QueueUse,
    /// The camera's tracker, as last seen by a worker.
    pub tracker: TrackerUse,
    processed_at: VecDeque<Instant>,
    plates: HashMap<u64, String>,
}

/// How full a camera's frame queue is, in frames and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueUse {
    pub frames: usize,
    pub capacity: usize,
    /// Pixels of one decoded frame.
    pub frame_bytes: usize,
}

impl QueueUse {
    /// Bytes of the frames waiting.
    pub fn bytes(&self) -> u64 {
        (self.frames * self.frame_bytes) as u64
    }

    /// Bytes the queue may hold.
    pub fn limit_bytes(&self) -> u64 {
        (self.capacity * self.frame_bytes) as u64
    }
}

impl CameraLive {
    fn new(id: &str) -> Self {
        CameraLive {
            id: id.to_string(),
            name: None,
            url: String::new(),
            target_fps: 0.0,
            config: None,
            stream: StreamState::Starting,
            stream_since: SystemTime::now(),
            decoded: 0,
            sampled: 0,
            dropped: 0,
            failed: 0,
            source: SourceCounters::default(),
            stats: CameraStats::default(),
            frame: None,
            blur_people: true,
            rules_error: None,
            queue: QueueUse::default(),
            tracker: TrackerUse::default(),
            processed_at: VecDeque::new(),
            plates: HashMap::new(),
        }
    }

    /// Frames processed per second over the last few seconds.
    pub fn fps(&self) -> f64 {
        let now = Instant::now();
        let recent = self
            .processed_at
            .iter()
            .filter(|t| now.duration_since(**t) <= FPS_WINDOW)
            .count();
        recent as f64 / FPS_WINDOW.as_secs_f64()
    }

    /// Seconds since the last processed frame.
    pub fn last_frame_age(&self) -> Option<Duration> {
        self.frame.as_ref().map(|f| f.at.elapsed())
    }
}

/// Shared between the pipeline (writer) and the HTTP API (reader).
pub struct LiveHub {
    cameras: RwLock<BTreeMap<String, Arc<Mutex<CameraLive>>>>,
    events: Mutex<VecDeque<Event>>,
    event_counts: Mutex<BTreeMap<String, u64>>,
    delivery: Mutex<Option<Delivery>>,
    clips: Mutex<Option<Arc<crate::clips::ClipRecorder>>>,
    started: Instant,
    snapshots: Mutex<HashMap<String, (u64, Instant, bytes::Bytes)>>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("cameras", &self.camera_ids())
            .finish_non_exhaustive()
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveHub {
    pub fn new() -> Self {
        LiveHub {
            cameras: RwLock::new(BTreeMap::new()),
            events: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
            event_counts: Mutex::new(BTreeMap::new()),
            delivery: Mutex::new(None),
            clips: Mutex::new(None),
            started: Instant::now(),
            snapshots: Mutex::new(HashMap::new()),
        }
    }

    /// Declares a camera before the pipeline starts, so it is listed (as `starting`) even if its
    /// source never comes up.
    pub fn add_camera(&self, cam: &CameraConfig, url: &str, target_fps: f64) {
        let mut live = CameraLive::new(&cam.id);
        live.name = cam.name.clone();
        live.url = url.to_string();
        live.target_fps = target_fps;
        live.config = Some(cam.clone());
        self.cameras
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cam.id.clone(), Arc::new(Mutex::new(live)));
    }

    /// The camera runs without its rules, for `reason`.
    pub fn rules_disabled(&self, camera: &str, reason: &str) {
        let e = self.entry(camera);
        lock(&e).rules_error = Some(reason.to_string());
    }

    /// Whether snapshots of `camera` pixelate people (the camera's privacy setting).
    pub fn set_blur_people(&self, camera: &str, blur: bool) {
        let e = self.entry(camera);
        lock(&e).blur_people = blur;
    }

    /// The delivery whose spool and MQTT state `/metrics` reports.
    pub fn set_delivery(&self, delivery: Delivery) {
        *lock(&self.delivery) = Some(delivery);
    }

    pub fn set_clips(&self, clips: Arc<crate::clips::ClipRecorder>) {
        *lock(&self.clips) = Some(clips);
    }

    /// Each camera's clip ring and the clips made, when clips are on.
    pub fn clip_stats(&self) -> Option<crate::clips::ClipStats> {
        lock(&self.clips).as_ref().map(|c| c.stats())
    }

    /// Spool and MQTT counters, when delivery runs.
    pub fn delivery_stats(&self) -> Option<DeliveryStats> {
        let d = lock(&self.delivery).clone();
        d.map(|d| d.stats())
    }

    /// Time since the hub was made (agent start).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn camera_ids(&self) -> Vec<String> {
        self.cameras
            .read()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn entry(&self, id: &str) -> Arc<Mutex<CameraLive>> {
        if let Ok(c) = self.cameras.read()
            && let Some(e) = c.get(id)
        {
            return e.clone();
        }
        let mut c = self.cameras.write().unwrap_or_else(|e| e.into_inner());
        c.entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(CameraLive::new(id))))
            .clone()
    }

    /// A copy of one camera's state without its frame pixels being copied (the frame is an `Arc`).
    pub fn camera(&self, id: &str) -> Option<CameraLive> {
        let e = self.cameras.read().ok()?.get(id)?.clone();
        let c = lock(&e).clone();
        Some(c)
    }

    /// Copies of every camera's state, in id order.
    pub fn cameras(&self) -> Vec<CameraLive> {
        let entries: Vec<_> = self
            .cameras
            .read()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        entries.iter().map(|e| lock(e).clone()).collect()
    }

    /// The event sink: an event was emitted (after it got its `seq`).
    pub fn event(&self, event: &Event) {
        *lock(&self.event_counts)
            .entry(event.kind.as_str().to_string())
            .or_default() += 1;
        let mut q = lock(&self.events);
        if q.len() == RECENT_EVENTS {
            q.pop_front();
        }
        q.push_back(event.clone());
    }

    /// Events emitted since start, by kind.
    pub fn event_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.event_counts).clone()
    }

    /// The newest `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Vec<Event> {
        lock(&self.events)
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    /// A cached encoding of the camera's frame `seq` made less than `max_age` ago.
    pub fn cached_snapshot(
        &self,
        camera: &str,
        seq: u64,
        max_age: Duration,
    ) -> Option<bytes::Bytes> {
        let s = lock(&self.snapshots);
        let (cseq, at, jpeg) = s.get(camera)?;
        (*cseq == seq || at.elapsed() < max_age).then(|| jpeg.clone())
    }

    /// Remembers the encoding of frame `seq`.
    pub fn store_snapshot(&self, camera: &str, seq: u64, jpeg: bytes::Bytes) {
        lock(&self.snapshots).insert(camera.to_string(), (seq, Instant::now(), jpeg));
    }
}

impl PipelineObserver for LiveHub {
    /// A new camera set is running (remote config): new cameras are listed, removed ones dropped,
    /// and each camera's url, rate, zones and lines follow the new config.
    fn cameras_changed(&self, specs: &[super::CameraSpec]) {
        let mut cams = self.cameras.write().unwrap_or_else(|e| e.into_inner());
        cams.retain(|id, _| specs.iter().any(|s| &s.id == id));
        for s in specs {
            let e = cams
                .entry(s.id.clone())
                .or_insert_with(|| Arc::new(Mutex::new(CameraLive::new(&s.id))))
                .clone();
            let mut c = lock(&e);
            c.url = s.url.clone();
            c.target_fps = s.target_fps;
            if let Some(cfg) = &s.rules {
                c.name = cfg.name.clone();
            }
            c.config = s.rules.as_deref().cloned();
            // the new rules are built anew; a failure is reported again
            c.rules_error = None;
        }
    }

    /// Decode thread: a frame was decoded (`admitted`: the sampler kept it).
    fn frame_decoded(&self, camera: &str, admitted: bool, source: SourceCounters) {
        let e = self.entry(camera);
        let mut c = lock(&e);
        c.decoded += 1;
        if admitted {
            c.sampled += 1;
        }
        c.source = source;
        if !matches!(c.stream, StreamState::Up { .. }) {
            // Folder and file sources send no status: frames coming in is the stream being up.
            c.stream = StreamState::Up {
                description: String::new(),
            };
            c.stream_since = SystemTime::now();
        }
    }

    /// Decode thread: the source reported its state.
    fn stream_status(&self, camera: &str, status: &StreamStatus, source: SourceCounters) {
        let e = self.entry(camera);
        let mut c = lock(&e);
        c.stream = match status {
            StreamStatus::Connected { description } => StreamState::Up {
                description: description.clone(),
            },
            StreamStatus::Disconnected { reason, .. } => StreamState::Down {
                reason: reason.clone(),
            },
            StreamStatus::Stalled { .. } => StreamState::Stalled,
        };
        c.stream_since = SystemTime::now();
        c.source = source;
    }

    /// Decode thread: the source ended.
    fn stream_ended(&self, camera: &str, source: SourceCounters) {
        let e = self.entry(camera);
        let mut c = lock(&e);
        if !matches!(c.stream, StreamState::Down { .. }) {
            c.stream = StreamState::Ended;
            c.stream_since = SystemTime::now();
        }
        c.source = source;
    }

    /// Inference worker: a frame went through every stage. `plates` are plate reports made on it
    /// (track id, text); `ended` the tracks that ended on it.
    fn wants_frames(&self) -> bool {
        true
    }

    fn frame_processed(&self, camera: &str, frame: &ProcessedFrame<'_>) {
        let ProcessedFrame {
            image,
            seq,
            capture_time,
            tracks,
            labels,
            plates,
            ended,
            stats,
        } = frame;
        let e = self.entry(camera);
        let mut c = lock(&e);
        for (id, text) in plates.iter() {
            c.plates.insert(*id, text.clone());
        }
        for id in ended.iter() {
            c.plates.remove(id);
        }
        let objects = tracks
            .iter()
            .map(|t| OverlayObject {
                track_id: t.id,
                label: labels(t.class_id),
                bbox: t.bbox,
                confirmed: t.state == TrackState::Confirmed,
                plate: c.plates.get(&t.id).cloned(),
            })
            .collect();
        let now = Instant::now();
        c.frame = Some(LiveFrame {
            image: image.clone(),
            seq: *seq,
            capture_time: *capture_time,
            at: now,
            objects,
        });
        c.stats.clone_from(stats);
        c.processed_at.push_back(now);
        while c
            .processed_at
            .front()
            .is_some_and(|t| now.duration_since(*t) > FPS_WINDOW)
        {
            c.processed_at.pop_front();
        }
    }

    /// Inference worker, after each frame: queue drops, failed frames, the queue's fill (frames of
    /// `frame_bytes` pixels) and the tracker (for `/metrics`).
    fn frame_done(&self, camera: &str, load: &CameraLoad) {
        let e = self.entry(camera);
        let mut c = lock(&e);
        c.dropped = load.dropped;
        c.failed = load.failed;
        c.queue = QueueUse {
            frames: load.queued,
            capacity: load.capacity,
            frame_bytes: load.frame_bytes,
        };
        c.tracker = load.tracker;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, Phase};
    use crate::track::Track;

    #[test]
    fn event_ring_keeps_the_newest_first() {
        let hub = LiveHub::new();
        for i in 0..(RECENT_EVENTS as u64 + 5) {
            let mut e = Event::new(
                EventKind::CameraHealth,
                Phase::New,
                "s",
                "d",
                "c",
                chrono::Utc::now(),
            );
            e.seq = i;
            hub.event(&e);
        }
        let recent = hub.recent_events(3);
        assert_eq!(
            recent.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![
                RECENT_EVENTS as u64 + 4,
                RECENT_EVENTS as u64 + 3,
                RECENT_EVENTS as u64 + 2
            ]
        );
        assert_eq!(hub.recent_events(10_000).len(), RECENT_EVENTS);
    }

    #[test]
    fn a_new_camera_set_replaces_the_listed_cameras_and_their_zones() {
        let hub = LiveHub::new();
        let cam = |id: &str, zones: &str| -> crate::config::CameraConfig {
            toml::from_str(&format!("id = \"{id}\"\nurl = \"x\"\n{zones}")).unwrap()
        };
        hub.add_camera(&cam("a", ""), "x", 5.0);
        hub.add_camera(&cam("b", ""), "x", 5.0);
        let with_zone = cam(
            "b",
            "[[zones]]\nid = \"z\"\npolygon = [[0, 0], [9, 0], [9, 9]]\n",
        );
        let spec = |c: &crate::config::CameraConfig, fps: f64| super::super::CameraSpec {
            id: c.id.clone(),
            url: "rtsp://new/x".into(),
            target_fps: fps,
            role: c.role,
            decoding: c.decoding(),
            rules: (!c.zones.is_empty()).then(|| Box::new(c.clone())),
            evidence: None,
        };
        hub.cameras_changed(&[spec(&with_zone, 8.0), spec(&cam("c", ""), 2.0)]);
        assert_eq!(hub.camera_ids(), vec!["b", "c"]);
        let b = hub.camera("b").unwrap();
        assert_eq!(b.target_fps, 8.0);
        assert_eq!(b.config.unwrap().zones[0].id, "z");
        assert!(hub.camera("c").unwrap().config.is_none());
    }

    #[test]
    fn counters_state_and_plates_follow_the_pipeline() {
        let hub = LiveHub::new();
        hub.frame_decoded("cam", true, SourceCounters::default());
        hub.frame_decoded("cam", false, SourceCounters::default());
        let c = hub.camera("cam").expect("camera appears on first frame");
        assert_eq!((c.decoded, c.sampled), (2, 1));
        assert_eq!(c.stream.as_str(), "up");
        let track = Track {
            id: 7,
            class_id: 0,
            score: 0.9,
            bbox: [1.0, 2.0, 30.0, 40.0],
            velocity: [0.0, 0.0],
            state: TrackState::Confirmed,
            hits: 3,
            first_seen: Duration::ZERO,
            last_seen: Duration::ZERO,
            matched_detection: Some(0),
        };
        let label = |_: usize| Arc::<str>::from("car");
        let img = Arc::new(RgbImage::new(4, 4));
        let stats = CameraStats::default();
        hub.frame_processed(
            "cam",
            &ProcessedFrame {
                image: img.clone(),
                seq: 1,
                capture_time: SystemTime::now(),
                tracks: std::slice::from_ref(&track),
                labels: &label,
                plates: &[(7, "51F12345".into())],
                ended: &[],
                stats: &stats,
            },
        );
        let c = hub.camera("cam").unwrap();
        let f = c.frame.as_ref().unwrap();
        assert_eq!(f.objects[0].plate.as_deref(), Some("51F12345"));
        assert!(c.fps() > 0.0);
        hub.frame_processed(
            "cam",
            &ProcessedFrame {
                image: img,
                seq: 2,
                capture_time: SystemTime::now(),
                tracks: &[],
                labels: &label,
                plates: &[],
                ended: &[7],
                stats: &stats,
            },
        );
        assert!(hub.camera("cam").unwrap().plates.is_empty());
        hub.stream_status(
            "cam",
            &StreamStatus::Disconnected {
                reason: "refused".into(),
                retry_in: Duration::from_secs(1),
            },
            SourceCounters::default(),
        );
        hub.stream_ended("cam", SourceCounters::default());
        assert_eq!(hub.camera("cam").unwrap().stream.as_str(), "down");
    }
}
