//! The agent's clips: a ring per camera, the store on the device, and the `update` events that
//! carry finished clips.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ring::ClipCut;
use super::{ClipMode, ClipStore, ClipsConfig, EncodedTap, RingStats};
use crate::events::evidence::EvidenceImage;
use crate::events::{ClipInfo, Event, EvidenceRef, EvidenceRole, Phase, Topics};

/// Counts over the run, for `/metrics` and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClipCounts {
    /// Clips written to the store.
    pub made: u64,
    /// Of those, closed before their window ended (stream lost or ended).
    pub incomplete: u64,
    /// Clips that could not be made (no keyframe kept, the disk refused): logged.
    pub failed: u64,
}

/// Rings and counts together, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClipStats {
    pub rings: Vec<(String, RingStats)>,
    pub counts: ClipCounts,
}

/// One camera's ring and what its clips are for.
struct Camera {
    tap: EncodedTap,
    mode: ClipMode,
}

/// Makes and keeps the clips of every camera.
pub struct ClipRecorder {
    config: ClipsConfig,
    store: ClipStore,
    topics: Topics,
    /// Each camera's mode when it differs from `config.mode`.
    modes: BTreeMap<String, ClipMode>,
    cameras: Mutex<BTreeMap<String, Camera>>,
    made: AtomicU64,
    incomplete: AtomicU64,
    failed: AtomicU64,
}

/// Size of the pieces a clip travels in: each is one spooled, acknowledged message, so a link
/// lost halfway resends only the pieces not yet acknowledged.
pub(super) const PART_BYTES: usize = 256 * 1024;

/// `event` (whose evidence is one `clip`) made to carry the clip: `on_request: false`, the number
/// of pieces, and the pieces as files to publish.
fn travelling(mut event: Event, mp4: &[u8]) -> ClipEvent {
    let (width, height) = event
        .evidence
        .first()
        .map_or((0, 0), |r| (r.width, r.height));
    let files: Vec<EvidenceImage> = mp4
        .chunks(PART_BYTES)
        .map(|part| EvidenceImage {
            role: EvidenceRole::ClipPart,
            sha256: crate::events::evidence::sha256_hex(part),
            jpeg: part.to_vec(),
            width,
            height,
        })
        .collect();
    for r in event.evidence.iter_mut() {
        if let Some(c) = r.clip.as_mut() {
            c.on_request = false;
            c.parts = Some(files.len() as u32);
        }
    }
    ClipEvent { event, files }
}

/// A finished clip's `update` event and, when the clip travels, its pieces to publish.
pub struct ClipEvent {
    pub event: Event,
    pub files: Vec<EvidenceImage>,
}

impl ClipRecorder {
    /// `modes`: per-camera overrides of `[clips] mode`.
    pub fn new(
        config: ClipsConfig,
        store: ClipStore,
        topics: Topics,
        modes: BTreeMap<String, ClipMode>,
    ) -> Self {
        ClipRecorder {
            config,
            store,
            topics,
            modes,
            cameras: Mutex::new(BTreeMap::new()),
            made: AtomicU64::new(0),
            incomplete: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn cameras(&self) -> MutexGuard<'_, BTreeMap<String, Camera>> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mode(&self, camera: &str) -> ClipMode {
        self.modes.get(camera).copied().unwrap_or(self.config.mode)
    }

    /// The ring a camera's source feeds; `None` when its clips are off. A camera opened again
    /// (reconnect after a config change) keeps its ring.
    pub fn tap(&self, camera: &str) -> Option<EncodedTap> {
        let mode = self.mode(camera);
        if mode == ClipMode::Off {
            return None;
        }
        let bytes =
            usize::try_from(self.config.ring_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let mut cams = self.cameras();
        let cam = cams.entry(camera.to_string()).or_insert_with(|| Camera {
            tap: EncodedTap::new(bytes, self.config.pre(), self.config.post()),
            mode,
        });
        Some(cam.tap.clone())
    }

    /// Asks for a clip around `at` (the event frame's stream time) for a rule event just made.
    pub fn request(&self, camera: &str, event: &Event, at: Duration) {
        if let Some(cam) = self.cameras().get(camera) {
            cam.tap.request(event.clone(), at);
        }
    }

    /// Writes the clips whose window has passed (every waiting one with `finish`: the run ends)
    /// and returns their `update` events.
    pub fn collect(&self, finish: bool) -> Vec<ClipEvent> {
        let cuts: Vec<(ClipMode, ClipCut)> = self
            .cameras()
            .values()
            .flat_map(|c| {
                if finish {
                    c.tap.finish();
                }
                c.tap.take_ready().into_iter().map(|cut| (c.mode, cut))
            })
            .collect();
        cuts.into_iter()
            .filter_map(|(mode, cut)| self.write(mode, cut))
            .collect()
    }

    fn write(&self, mode: ClipMode, cut: ClipCut) -> Option<ClipEvent> {
        let camera = cut.event.camera_id.clone();
        let started = std::time::Instant::now();
        let mp4 = match cut.dims {
            Some(dims) => super::remux(&cut.units, dims),
            None => Err(super::ClipError::NoKeyframe(cut.units.len())),
        };
        let mp4 = match mp4 {
            Ok(m) => m,
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(camera, event = %cut.event.event_id, error = %e, "no clip for the event");
                return None;
            }
        };
        let remux_ms = started.elapsed().as_secs_f64() * 1e3;
        let sha = crate::events::evidence::sha256_hex(&mp4);
        let (first, last) = (cut.units.first()?, cut.units.last()?);
        // the last picture lasts as long as the one before it
        let step = match cut.units.len() {
            n if n >= 2 => cut.units[n - 1]
                .stream_time
                .saturating_sub(cut.units[n - 2].stream_time),
            _ => Duration::ZERO,
        };
        let duration = last.stream_time.saturating_sub(first.stream_time) + step;
        let (width, height) = cut.dims.unwrap_or_default();
        let on_request = mode != ClipMode::Send;
        let original = *cut.event;
        let mut event = original.clone();
        event.event_id = uuid::Uuid::now_v7();
        event.phase = Phase::Update;
        event.refers_to = Some(original.event_id);
        event.seq = 0;
        event.signature = None;
        event.audit_head = None;
        event.evidence = vec![EvidenceRef {
            role: EvidenceRole::Clip,
            topic: self.topics.evidence(&sha),
            sha256: sha.clone(),
            width,
            height,
            bytes: mp4.len() as u64,
            on_request: false,
            clip: Some(ClipInfo {
                duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                start: DateTime::<Utc>::from(first.capture_time),
                complete: cut.complete,
                on_request: true,
                parts: None,
            }),
        }];
        // The stored meta is the event as kept on the device: what a later request is answered with.
        let meta = serde_json::to_vec(&event).unwrap_or_default();
        if let Err(e) = self.store.save(&mp4, &meta) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(camera, event = %original.event_id, error = %e, "no clip for the event");
            return None;
        }
        self.made.fetch_add(1, Ordering::Relaxed);
        if !cut.complete {
            self.incomplete.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(camera, event = %original.event_id, sha256 = %sha, bytes = mp4.len(), duration_ms = duration.as_millis() as u64, complete = cut.complete, mode = mode.as_str(), remux_ms = format!("{remux_ms:.1}"), total_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1e3), "clip made");
        match on_request {
            true => Some(ClipEvent {
                event,
                files: Vec::new(),
            }),
            false => Some(travelling(event, &mp4)),
        }
    }

    /// The clip with this hash, to send because the centre asked (`evidence/get`): an `update` of
    /// its event with the clip in pieces. `Err` says why not (no such clip here any more).
    pub fn answer(&self, sha256: &str) -> Result<ClipEvent, String> {
        let Some((mp4, meta)) = self.store.load(sha256) else {
            return Err(format!("no clip {sha256} on this device"));
        };
        if crate::events::evidence::sha256_hex(&mp4) != sha256 {
            return Err(format!(
                "the stored clip {sha256} no longer matches its hash"
            ));
        }
        let stored: Event = serde_json::from_slice(&meta)
            .map_err(|e| format!("the stored event of clip {sha256} is unreadable: {e}"))?;
        let mut event = stored;
        event.event_id = uuid::Uuid::now_v7();
        event.seq = 0;
        event.signature = None;
        event.audit_head = None;
        Ok(travelling(event, &mp4))
    }

    /// Each camera's ring and the clips made so far.
    pub fn stats(&self) -> ClipStats {
        ClipStats {
            rings: self
                .cameras()
                .iter()
                .map(|(id, c)| (id.clone(), c.tap.stats()))
                .collect(),
            counts: ClipCounts {
                made: self.made.load(Ordering::Relaxed),
                incomplete: self.incomplete.load(Ordering::Relaxed),
                failed: self.failed.load(Ordering::Relaxed),
            },
        }
    }

    pub fn store(&self) -> &ClipStore {
        &self.store
    }
}
