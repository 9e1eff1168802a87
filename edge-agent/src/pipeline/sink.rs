//! The pipeline's standard sink: builds contract events with evidence and hands them to the
//! durable delivery (spool → MQTT), to a JSON-lines file, or both, counting them by kind.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::AuditTrail;
use crate::clips::{ClipRecorder, EncodedTap};
use crate::events::evidence::EvidenceImage;
use crate::events::status::CameraHealth;
use crate::events::{Event, EventKind, EvidenceRef, Location, Phase, Topics};
use crate::health::{Report, Transition};
use crate::publish::Delivery;
use crate::source::{Frame, SourceCounters, StreamStatus};

use super::camera::{FrameContext, Observation};
use super::report::EventBuilder;
use super::runner::Sink;

/// Events to the spool and/or a JSON-lines file.
pub struct EventSink {
    builder: EventBuilder,
    topics: Topics,
    delivery: Option<Delivery>,
    jsonl: Option<Mutex<EventsFile>>,
    evidence_dir: Option<PathBuf>,
    audit: AuditTrail,
    counts: Mutex<BTreeMap<EventKind, u64>>,
    /// Local numbering when there is no spool to assign `seq`.
    next_seq: AtomicU64,
    failures: AtomicU64,
    /// Recent events for the local API.
    live: Option<std::sync::Arc<super::live::LiveHub>>,
    /// The hash and camera locations of a config applied remotely since start (replace the
    /// builder's).
    config_hash: Mutex<Option<(String, BTreeMap<String, Location>)>>,
    /// Cameras running without their rules, and why: their `health` state says so.
    rules_disabled: Mutex<BTreeMap<String, String>>,
    /// Clips around violations and watchlist hits (`[clips]`); none in a replay.
    clips: Option<std::sync::Arc<ClipRecorder>>,
    /// Evidence images kept on the device until requested (`[mqtt] evidence = "on_request"`).
    held: Option<crate::clips::ClipStore>,
}

impl EventSink {
    pub fn new(builder: EventBuilder, topics: Topics) -> Self {
        EventSink {
            builder,
            topics,
            delivery: None,
            jsonl: None,
            evidence_dir: None,
            audit: AuditTrail::disabled(),
            counts: Mutex::new(BTreeMap::new()),
            next_seq: AtomicU64::new(1),
            failures: AtomicU64::new(0),
            live: None,
            config_hash: Mutex::new(None),
            rules_disabled: Mutex::new(BTreeMap::new()),
            clips: None,
            held: None,
        }
    }

    /// Keep evidence images in `store` and send only their hashes, until the centre asks.
    pub fn with_held_images(mut self, store: crate::clips::ClipStore) -> Self {
        self.held = Some(store);
        self
    }

    /// `[mqtt] evidence = "on_request"`: the images go into the device's store and the event
    /// carries their references; an image that cannot be stored travels as usual.
    fn hold_images(&self, event: &mut Event, images: Vec<EvidenceImage>) -> Vec<EvidenceImage> {
        let Some(store) = &self.held else {
            return images;
        };
        if images.is_empty() {
            return images;
        }
        // The event as kept beside each image names them all: what a request is answered with.
        let refs: Vec<EvidenceRef> = images
            .iter()
            .map(|im| EvidenceRef {
                role: im.role,
                topic: self.topics.evidence(&im.sha256),
                sha256: im.sha256.clone(),
                width: im.width,
                height: im.height,
                bytes: im.jpeg.len() as u64,
                clip: None,
                on_request: true,
            })
            .collect();
        event.evidence.extend(refs);
        let meta = serde_json::to_vec(&*event).unwrap_or_default();
        let mut travel = Vec::new();
        for im in images {
            if let Err(e) = store.save(&im.jpeg, &meta) {
                tracing::warn!(error = %e, "evidence image not kept on the device: it travels with its event");
                event
                    .evidence
                    .retain(|r| !(r.on_request && r.sha256 == im.sha256));
                travel.push(im);
            }
        }
        travel
    }

    /// Also cut a clip around every violation and watchlist hit.
    pub fn with_clips(mut self, clips: std::sync::Arc<ClipRecorder>) -> Self {
        self.clips = Some(clips);
        self
    }

    /// Sends a clip (or an image) kept on the device because `actor` (the signing centre key)
    /// asked for it in request `version`: its event again, carrying the clip in pieces (the image
    /// whole), and an audit record of it leaving. `Err` says why it cannot be sent.
    pub fn send_clip(&self, sha256: &str, actor: &str, version: &str) -> Result<(), String> {
        let (action, answer) = match (&self.clips, self.held_image(sha256)) {
            (_, Some(image)) => ("evidence.image_sent", image),
            (Some(clips), None) => ("evidence.clip_sent", clips.answer(sha256)?),
            (None, None) => {
                return Err(format!(
                    "no clip or kept image {sha256} on this device ([clips] mode, [mqtt] evidence)"
                ));
            }
        };
        self.audit.record(
            action,
            actor,
            serde_json::json!({
                "request_version": version,
                "event_id": answer.event.refers_to.map(|id| id.to_string()),
                "camera": answer.event.camera_id,
                "sha256": sha256,
                "parts": answer.files.len(),
                "bytes": answer.files.iter().map(|f| f.jpeg.len()).sum::<usize>(),
            }),
        );
        tracing::info!(
            sha256,
            actor,
            parts = answer.files.len(),
            "evidence requested by the centre: sending"
        );
        self.submit(answer.event, answer.files, false);
        Ok(())
    }

    /// A kept image asked for: its event again, carrying the image.
    fn held_image(&self, sha256: &str) -> Option<crate::clips::ClipEvent> {
        let (jpeg, meta) = self.held.as_ref()?.load(sha256)?;
        let mut event: Event = serde_json::from_slice(&meta).ok()?;
        let kept = event.evidence.iter().find(|r| r.sha256 == sha256)?.clone();
        event.refers_to = Some(event.event_id);
        event.event_id = uuid::Uuid::now_v7();
        event.phase = Phase::Update;
        event.seq = 0;
        event.signature = None;
        event.evidence = Vec::new();
        Some(crate::clips::ClipEvent {
            event,
            files: vec![EvidenceImage {
                role: kept.role,
                sha256: sha256.to_string(),
                jpeg,
                width: kept.width,
                height: kept.height,
            }],
        })
    }

    /// Emits the `update` events of the clips that are ready (all waiting ones with `finish`).
    fn collect_clips(&self, finish: bool) {
        let Some(clips) = &self.clips else {
            return;
        };
        for ready in clips.collect(finish) {
            if !ready.files.is_empty() {
                // A clip of unpixelated people leaves the device (`clips = "send"`).
                self.audit.record(
                    "evidence.clip_sent",
                    "local",
                    serde_json::json!({
                        "event_id": ready.event.refers_to.map(|id| id.to_string()),
                        "camera": ready.event.camera_id,
                        "sha256": ready.event.evidence.first().map(|r| r.sha256.clone()),
                        "parts": ready.files.len(),
                    }),
                );
            }
            // a clip's pieces (`clips = "send"`) are the clip, not images to keep
            self.submit(ready.event, ready.files, false);
        }
    }

    /// Events from now on name this config and carry its locations (after a remote config was
    /// applied).
    pub fn set_config(&self, hash: String, locations: BTreeMap<String, Location>) {
        if let Ok(mut h) = self.config_hash.lock() {
            *h = Some((hash, locations));
        }
        // the new config's rules are built anew; a camera whose rules fail again says so again
        if let Ok(mut d) = self.rules_disabled.lock() {
            d.clear();
        }
    }

    /// Also keep every event in the live hub's recent list (`/events/recent`).
    pub fn with_live(mut self, hub: std::sync::Arc<super::live::LiveHub>) -> Self {
        self.live = Some(hub);
        self
    }

    /// Submit every event to the durable delivery.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Also write every event as one JSON line to `file` (no bound: a replay ends).
    pub fn with_jsonl(mut self, file: File) -> Self {
        self.jsonl = Some(Mutex::new(EventsFile {
            writer: BufWriter::new(file),
            rotate: None,
        }));
        self
    }

    /// Also append every event as one JSON line to the file at `path`, which a running agent
    /// keeps under `max_bytes`: past it the file becomes `<path>.1` (replacing the one before) and
    /// a new one starts, so at most about twice `max_bytes` is kept.
    pub fn with_jsonl_bounded(mut self, path: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let file = open_append(path)?;
        let bytes = file.metadata()?.len();
        self.jsonl = Some(Mutex::new(EventsFile {
            writer: BufWriter::new(file),
            rotate: Some(Rotation {
                path: path.to_path_buf(),
                max_bytes,
                bytes,
            }),
        }));
        Ok(self)
    }

    /// Also save evidence JPEGs as `{dir}/{sha256}.jpg`.
    pub fn with_evidence_dir(mut self, dir: PathBuf) -> Self {
        self.evidence_dir = Some(dir);
        self
    }

    /// Record every evidence export (`with_evidence_dir`) in this audit trail, and stamp every
    /// event with its head (`audit_head`).
    pub fn with_audit(mut self, trail: AuditTrail) -> Self {
        self.audit = trail;
        self
    }

    /// Events emitted so far, by kind.
    pub fn counts(&self) -> BTreeMap<EventKind, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Events that could not be built or stored (each logged).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Flushes the JSON-lines file.
    /// Closes the clips still waiting (the run ends), then flushes the events file.
    pub fn flush(&self) -> std::io::Result<()> {
        self.collect_clips(true);
        if let Some(w) = &self.jsonl {
            let mut w = w.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            w.writer.flush()?;
        }
        Ok(())
    }

    fn emit(&self, event: Event, images: Vec<EvidenceImage>) {
        self.submit(event, images, true);
    }

    /// Builds the references and submits; `hold`: keep the images on the device when `[mqtt]
    /// evidence = "on_request"` (not for files that were asked for).
    fn submit(&self, mut event: Event, images: Vec<EvidenceImage>, hold: bool) {
        if let Ok(h) = self.config_hash.lock()
            && let Some((hash, locations)) = h.as_ref()
        {
            event.config_hash.clone_from(hash);
            event.location = locations.get(&event.camera_id).cloned();
        }
        let kind = event.kind;
        event.audit_head = self.audit.head();
        let images = match hold {
            true => self.hold_images(&mut event, images),
            false => images,
        };
        event.evidence =
            crate::events::evidence::evidence_refs(&event.evidence, &images, &self.topics);
        if let Some(dir) = &self.evidence_dir {
            let mut written = Vec::new();
            for im in &images {
                let path = dir.join(format!("{}.jpg", im.sha256));
                match std::fs::write(&path, &im.jpeg) {
                    Ok(()) => written.push(im.sha256.clone()),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot save evidence")
                    }
                }
            }
            if !written.is_empty() {
                // Evidence copied out of the agent's control: who, what and where (Circular 67).
                self.audit.record(
                    "evidence.export",
                    "local",
                    serde_json::json!({
                        "dir": dir.display().to_string(),
                        "event_id": event.event_id.to_string(),
                        "kind": kind.as_str(),
                        "camera": event.camera_id,
                        "sha256": written,
                    }),
                );
            }
        }
        let seq = match &self.delivery {
            Some(d) => match d.submit_signed(event.clone(), images) {
                Ok((seq, signature)) => {
                    // the events file and the API show the event as it was sent
                    event.signature = signature;
                    seq
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(kind = %kind, error = %e, "event not spooled");
                    return;
                }
            },
            None => self.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        event.seq = seq;
        if let Some(hub) = &self.live {
            hub.event(&event);
        }
        if let Some(w) = &self.jsonl {
            let line = match serde_json::to_string(&event) {
                Ok(l) => l,
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "event not serialisable");
                    return;
                }
            };
            // Flushed per event: a live agent's file is read while it runs.
            if let Ok(mut w) = w.lock()
                && let Err(e) = w.write_line(&line)
            {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot write the events file");
            }
        }
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(kind).or_default() += 1;
        }
    }
}

impl Sink for EventSink {
    fn observation(&self, camera: &str, obs: Observation, frame: Option<&FrameContext<'_>>) {
        if let Observation::RulesDisabled(reason) = &obs {
            if let Some(hub) = &self.live {
                hub.rules_disabled(camera, reason);
            }
            if let Ok(mut d) = self.rules_disabled.lock() {
                d.insert(camera.to_string(), reason.clone());
            }
        }
        match self.builder.build(camera, &obs, frame) {
            Ok((event, images)) => {
                // Violations and watchlist hits get a clip of the seconds around them.
                if let (Some(clips), Some(frame)) = (&self.clips, frame)
                    && event.phase == Phase::New
                    && crate::spool::priority(event.kind) <= 1
                {
                    clips.request(camera, &event, frame.stream_time);
                }
                self.emit(event, images);
                self.collect_clips(false);
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(camera, error = %e, "cannot build the event's evidence");
            }
        }
    }

    fn stream_status(&self, camera: &str, status: &StreamStatus, counters: SourceCounters) {
        if let Some(d) = &self.delivery {
            let (state, error) = match status {
                StreamStatus::Connected { .. } => ("online", None),
                StreamStatus::Disconnected { reason, .. } => ("reconnecting", Some(reason.clone())),
                StreamStatus::Stalled { .. } => ("reconnecting", Some("stalled".to_string())),
            };
            d.set_camera_health(
                camera,
                CameraHealth {
                    state: state.into(),
                    fps: 0.0,
                    expected_fps: None,
                    decode_errors: counters.decode_errors,
                    conditions: Vec::new(),
                    frames_dropped: counters.dropped,
                    last_frame: None,
                    error,
                },
            );
        }
        self.emit(
            self.builder.camera_health(camera, status, counters),
            Vec::new(),
        );
        self.collect_clips(false);
    }

    fn health_transition(&self, camera: &str, tr: &Transition, frame: Option<&Frame>) {
        match self.builder.health_transition(camera, tr, frame) {
            Ok((event, images)) => self.emit(event, images),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(camera, error = %e, "cannot build the camera health event");
            }
        }
    }

    fn health_report(&self, camera: &str, report: &Report) {
        if let Some(d) = &self.delivery {
            let rules_error = self
                .rules_disabled
                .lock()
                .ok()
                .and_then(|d| d.get(camera).cloned());
            d.set_camera_health(camera, camera_health(report, rules_error));
        }
        self.collect_clips(false);
    }

    fn encoded_tap(&self, camera: &str) -> Option<EncodedTap> {
        self.clips.as_ref()?.tap(camera)
    }
}

/// The `--events` file, bounded when it belongs to a running agent.
struct EventsFile {
    writer: BufWriter<File>,
    rotate: Option<Rotation>,
}

struct Rotation {
    path: PathBuf,
    max_bytes: u64,
    bytes: u64,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl EventsFile {
    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        if let Some(r) = &mut self.rotate
            && r.bytes > 0
            && r.bytes + line.len() as u64 + 1 > r.max_bytes
        {
            self.writer.flush()?;
            let mut old = r.path.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(&r.path, &old)?;
            self.writer = BufWriter::new(open_append(&r.path)?);
            r.bytes = 0;
            tracing::info!(path = %r.path.display(), max_bytes = r.max_bytes, "events file rotated to .1");
        }
        writeln!(self.writer, "{line}")?;
        self.writer.flush()?;
        if let Some(r) = &mut self.rotate {
            r.bytes += line.len() as u64 + 1;
        }
        Ok(())
    }
}

/// A camera's entry in the `health` message: its stream's state, or `rules_disabled` (with the
/// reason in `error`) when the stream is fine but its rules could not be built.
fn camera_health(report: &Report, rules_error: Option<String>) -> CameraHealth {
    let state = match report.state {
        // a camera that sees but does not judge is not "online": its rules are off
        "ok" if rules_error.is_some() => "rules_disabled",
        "ok" => "online",
        "down" => "reconnecting",
        other => other,
    };
    CameraHealth {
        state: state.into(),
        fps: report.snapshot.fps.unwrap_or(0.0),
        expected_fps: Some(report.expected_fps as f32),
        decode_errors: report.counters.decode_errors,
        conditions: report
            .active
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        frames_dropped: report.counters.dropped,
        last_frame: report.last_frame.map(chrono::DateTime::<chrono::Utc>::from),
        error: rules_error.map(|r| format!("rules disabled: {r}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_file_of_a_running_agent_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut f = EventsFile {
            writer: BufWriter::new(open_append(&path).unwrap()),
            rotate: Some(Rotation {
                path: path.clone(),
                max_bytes: 100,
                bytes: 0,
            }),
        };
        for i in 0..20 {
            f.write_line(&format!("{{\"seq\":{i:03},\"pad\":\"xxxxxxxxxxxx\"}}"))
                .unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let (now, before) = (read(&path), read(&dir.path().join("events.jsonl.1")));
        assert!(
            now.len() <= 100 && before.len() <= 100,
            "{now:?} {before:?}"
        );
        // the newest lines are kept, whole and in order
        let lines: Vec<&str> = before.lines().chain(now.lines()).collect();
        assert!(lines.last().unwrap().contains("\"seq\":019"), "{lines:?}");
        let seqs: Vec<&str> = lines.iter().map(|l| &l[7..10]).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted);
    }

    #[test]
    fn a_camera_without_its_rules_is_not_reported_online() {
        let report = Report {
            state: "ok",
            active: Vec::new(),
            snapshot: Default::default(),
            expected_fps: 10.0,
            counters: SourceCounters::default(),
            last_frame: None,
        };
        let h = camera_health(&report, None);
        assert_eq!((h.state.as_str(), h.error), ("online", None));
        let reason = "frame_size [1006, 720] but the stream sends 1280x720".to_string();
        let h = camera_health(&report, Some(reason.clone()));
        assert_eq!(h.state, "rules_disabled");
        assert_eq!(h.error, Some(format!("rules disabled: {reason}")));
        // a stream that is down says so first
        let down = Report {
            state: "down",
            ..report
        };
        assert_eq!(camera_health(&down, Some(reason)).state, "reconnecting");
    }
}
