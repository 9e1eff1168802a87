//! A camera's main stream (`evidence_url`): the high-resolution stream a camera sends beside the
//! sub-stream the detector runs on. It is decoded on a thread of its own, its last frames kept,
//! and for each detection frame the main-stream frame of the same moment is picked, so plates are
//! read (and evidence cut) from the main stream's pixels. When the main stream is down or has no
//! frame of that moment, the detection frame serves, and the camera's health says so.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::inference::RgbImage;
use crate::source::{self, FrameSource, SourceItem, SourceOptions, StreamStatus};

/// The main stream's state before its first connection has ended, either way.
const NOT_CONNECTED_YET: &str = "not connected yet";

/// How long a main stream may take to send its first frame before the camera's health calls it
/// lost: an RTSP handshake takes a second or two on a loaded device, and a stream that was never up
/// is not lost yet. A first connection that fails says so at once (its reason replaces
/// [`NOT_CONNECTED_YET`]).
pub const FIRST_CONNECT_GRACE: Duration = Duration::from_secs(10);

/// Thumbnail side for comparing a detection frame with main-stream candidates (grey, 16 × 12).
const THUMB_W: u32 = 16;
const THUMB_H: u32 = 12;

/// A grey thumbnail of `img` by block averages: enough to tell which of a few consecutive frames
/// shows the same moment, whatever the two streams' sizes.
fn thumbnail(img: &RgbImage) -> [u8; (THUMB_W * THUMB_H) as usize] {
    let mut out = [0u8; (THUMB_W * THUMB_H) as usize];
    let (w, h) = (img.width().max(1), img.height().max(1));
    let raw = img.as_raw();
    for ty in 0..THUMB_H {
        for tx in 0..THUMB_W {
            let (x0, x1) = (
                tx * w / THUMB_W,
                ((tx + 1) * w / THUMB_W).max(tx * w / THUMB_W + 1),
            );
            let (y0, y1) = (
                ty * h / THUMB_H,
                ((ty + 1) * h / THUMB_H).max(ty * h / THUMB_H + 1),
            );
            // every 4th pixel of the block is plenty
            let (mut sum, mut n) = (0u64, 0u64);
            for y in (y0..y1.min(h)).step_by(4) {
                for x in (x0..x1.min(w)).step_by(4) {
                    let i = ((y * w + x) * 3) as usize;
                    if let Some(p) = raw.get(i..i + 3) {
                        sum += u64::from(p[0]) * 3 + u64::from(p[1]) * 6 + u64::from(p[2]);
                        n += 10;
                    }
                }
            }
            out[(ty * THUMB_W + tx) as usize] = (sum / n.max(1)) as u8;
        }
    }
    out
}

fn difference(a: &[u8], b: &[u8]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| u32::from(x.abs_diff(*y)))
        .sum()
}

struct Kept {
    capture_time: SystemTime,
    thumb: [u8; (THUMB_W * THUMB_H) as usize],
    image: Arc<RgbImage>,
}

/// What the main stream did, for the camera's health and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvidenceStreamStats {
    /// Frames flowing now.
    pub up: bool,
    /// Down, but only because its first connection is still under way (within
    /// [`FIRST_CONNECT_GRACE`] of opening): not a loss.
    pub connecting: bool,
    /// Why not, when down.
    pub reason: Option<String>,
    /// Detection frames given a main-stream frame.
    pub matched: u64,
    /// Detection frames read on their own pixels (main stream down or no frame of that moment).
    pub fell_back: u64,
    pub width: u32,
    pub height: u32,
}

struct Shared {
    frames: Mutex<VecDeque<Kept>>,
    /// Signalled at every new frame, for a detection frame waiting for its moment.
    arrived: Condvar,
    status: Mutex<(bool, Option<String>)>,
    /// When the stream was opened (for [`FIRST_CONNECT_GRACE`]).
    opened: Instant,
    matched: AtomicU64,
    fell_back: AtomicU64,
}

/// One camera's main stream.
pub struct EvidenceStream {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    tolerance: Duration,
    url: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EvidenceStream {
    /// Opens `url` (any source `source::open` takes) and keeps its last `keep` frames; a detection
    /// frame is matched with a main frame captured within `tolerance` of it.
    pub fn open(
        camera: &str,
        url: &str,
        opts: &SourceOptions,
        tolerance: Duration,
        keep: usize,
    ) -> Result<Self, source::SourceError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut so = opts.clone();
        so.stop = stop.clone();
        // the clip ring is the detection stream's; this one only gives pictures
        so.encoded = None;
        let mut src = source::open(url, &so)?;
        let shared = Arc::new(Shared {
            frames: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
            status: Mutex::new((false, Some(NOT_CONNECTED_YET.into()))),
            opened: Instant::now(),
            matched: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
        });
        let keep = keep.max(1);
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            let id = camera.to_string();
            std::thread::Builder::new()
                .name(format!("main-{camera}"))
                .spawn(move || feed(&id, src.as_mut(), &shared, &stop, keep))
                .map_err(|e| source::SourceError::Io {
                    path: format!("main stream of {camera}").into(),
                    source: e,
                })?
        };
        Ok(EvidenceStream {
            shared,
            stop,
            thread: Some(thread),
            tolerance,
            url: source::redact_url(url),
        })
    }

    /// The main-stream frame of the moment `frame` was captured at: among those captured within
    /// the tolerance, the one that looks most like it. The main stream usually arrives a little
    /// later (larger pictures, B-frames): while it is up and has nothing from after that moment
    /// yet, this waits for it, at most the tolerance. `None`: read `frame` itself.
    pub fn matching(&self, capture_time: SystemTime, frame: &RgbImage) -> Option<Arc<RgbImage>> {
        let near = |k: &Kept| {
            let d = match k.capture_time.duration_since(capture_time) {
                Ok(d) => d,
                Err(e) => e.duration(),
            };
            d <= self.tolerance
        };
        let best = {
            let mut frames = lock(&self.shared.frames);
            let deadline = std::time::Instant::now() + self.tolerance;
            while lock(&self.shared.status).0
                && frames.back().is_none_or(|k| k.capture_time < capture_time)
            {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                frames = self
                    .shared
                    .arrived
                    .wait_timeout(frames, left)
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
            let candidates: Vec<&Kept> = frames.iter().filter(|k| near(k)).collect();
            tracing::trace!(
                candidates = candidates.len(),
                kept = frames.len(),
                newest_ms =
                    frames
                        .back()
                        .map(|k| match k.capture_time.duration_since(capture_time) {
                            Ok(d) => d.as_secs_f64() * 1e3,
                            Err(e) => -e.duration().as_secs_f64() * 1e3,
                        }),
                "matching a detection frame"
            );
            match candidates.len() {
                0 => None,
                1 => Some(candidates[0].image.clone()),
                _ => {
                    let thumb = thumbnail(frame);
                    candidates
                        .iter()
                        .min_by_key(|k| difference(&k.thumb, &thumb))
                        .map(|k| k.image.clone())
                }
            }
        };
        let counter = match best {
            Some(_) => &self.shared.matched,
            None => &self.shared.fell_back,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        best
    }

    pub fn stats(&self) -> EvidenceStreamStats {
        let (up, reason) = lock(&self.shared.status).clone();
        let (width, height) = lock(&self.shared.frames)
            .back()
            .map_or((0, 0), |k| (k.image.width(), k.image.height()));
        EvidenceStreamStats {
            up,
            connecting: first_connect_pending(up, reason.as_deref(), self.shared.opened.elapsed()),
            reason,
            matched: self.shared.matched.load(Ordering::Relaxed),
            fell_back: self.shared.fell_back.load(Ordering::Relaxed),
            width,
            height,
        }
    }

    /// The main stream's URL, password redacted.
    pub fn describe(&self) -> &str {
        &self.url
    }
}

impl Drop for EvidenceStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!(stream = %self.url, "the main-stream thread panicked");
        }
    }
}

/// Whether a stream that is not up is still on its first connection, within the grace.
fn first_connect_pending(up: bool, reason: Option<&str>, since_open: Duration) -> bool {
    !up && reason == Some(NOT_CONNECTED_YET) && since_open < FIRST_CONNECT_GRACE
}

fn feed(camera: &str, src: &mut dyn FrameSource, shared: &Shared, stop: &AtomicBool, keep: usize) {
    while !stop.load(Ordering::Relaxed) {
        match src.next_item() {
            Ok(Some(SourceItem::Frame(f))) => {
                let Some(image) = RgbImage::from_raw(f.width, f.height, f.rgb) else {
                    continue;
                };
                let kept = Kept {
                    capture_time: f.capture_time,
                    thumb: thumbnail(&image),
                    image: Arc::new(image),
                };
                let mut frames = lock(&shared.frames);
                if frames.len() >= keep
                    && let Some(old) = frames.pop_front()
                    && let Ok(img) = Arc::try_unwrap(old.image)
                {
                    source::recycle(img.into_raw());
                }
                frames.push_back(kept);
                drop(frames);
                shared.arrived.notify_all();
                let mut status = lock(&shared.status);
                if !status.0 {
                    tracing::info!(
                        camera,
                        "main stream up: plates and evidence from its frames"
                    );
                    *status = (true, None);
                }
            }
            Ok(Some(SourceItem::Status(s))) => {
                if let StreamStatus::Disconnected { reason, .. } = &s {
                    tracing::warn!(camera, %reason, "main stream down: plates and evidence from the detection stream meanwhile");
                    *lock(&shared.status) = (false, Some(reason.clone()));
                    lock(&shared.frames).clear();
                } else if let StreamStatus::Stalled { for_ } = &s {
                    *lock(&shared.status) = (
                        false,
                        Some(format!("no frame for {:.1} s", for_.as_secs_f64())),
                    );
                    lock(&shared.frames).clear();
                }
            }
            Ok(None) => {
                *lock(&shared.status) = (false, Some("the main stream ended".into()));
                break;
            }
            Err(e) => {
                tracing::warn!(camera, error = %e, "main stream failed: plates and evidence from the detection stream");
                *lock(&shared.status) = (false, Some(e.to_string()));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_main_stream_is_not_lost_while_its_first_connection_is_under_way() {
        let second = Duration::from_secs(1);
        assert!(first_connect_pending(
            false,
            Some(NOT_CONNECTED_YET),
            second
        ));
        // past the grace, a stream that never sent a frame is lost
        assert!(!first_connect_pending(
            false,
            Some(NOT_CONNECTED_YET),
            FIRST_CONNECT_GRACE
        ));
        // a first connection that failed says so at once
        assert!(!first_connect_pending(
            false,
            Some("connection refused"),
            second
        ));
        assert!(!first_connect_pending(true, None, second));
    }
}
