//! Video sources: every camera or file becomes a stream of decoded RGB frames with timing, behind
//! one trait, so the pipeline never cares whether pixels came from RTSP, a USB camera, an mp4 file
//! or a folder of images. Live sources never end: they report trouble as [`StreamStatus`] items and
//! reconnect with backoff, which the pipeline turns into camera-health events. All of them run one
//! loop (`live.rs`); a camera kind (`rtsp.rs`, `gst.rs`, `v4l2.rs`) only opens a connection and
//! hands over its next picture.

mod codec;
mod error;
mod file;
mod folder;
#[cfg(feature = "gstreamer")]
mod gst;
pub(crate) mod h264;
mod live;
mod live_clock;
mod pool;
mod rtsp;
// Without the feature only the fake-device tests use the V4L2 source.
#[cfg_attr(not(feature = "v4l2"), allow(dead_code))]
mod v4l2;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub use codec::{CodecDataError, LengthPrefixed, VideoCodec, hvcc_record};
pub(crate) use codec::{H264_PPS, H264_SPS};
pub use error::SourceError;
/// Annex B NAL units (the clip recorder reads the same streams the decoder is fed).
pub(crate) use h264::nal_units;
pub use pool::{frame_buffer, recycle};

/// One decoded picture.
#[derive(Clone)]
pub struct Frame {
    /// Monotonic per source from 0, without gaps (also across reconnects).
    pub seq: u64,
    /// Wall clock at receipt (live sources), or the open wall time plus PTS (files, folders).
    pub capture_time: SystemTime,
    /// Which of the two `capture_time` is.
    pub clock: CaptureClock,
    /// Media time since the source opened: RTP/PTS when present, else receipt time. Never goes
    /// backwards, also across reconnects.
    pub stream_time: Duration,
    /// The media time jumped before this frame (a looped recording, a camera clock reset): no
    /// motion may be inferred across it, as across a reconnect.
    pub discontinuity: bool,
    pub width: u32,
    pub height: u32,
    /// Packed RGB8, `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("stream_time", &self.stream_time)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// Where a frame's `capture_time` comes from: it says how a wall-clock step shows in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureClock {
    /// The device's wall clock when the frame arrived (live sources): it steps with the clock.
    Receipt,
    /// The device's wall clock when the file opened plus the file's media time (files, folders):
    /// a step during the run does not show.
    FileStart,
}

/// What a source yields: a picture, or a change in the stream's health.
#[derive(Debug, Clone)]
pub enum SourceItem {
    Frame(Frame),
    Status(StreamStatus),
}

/// Stream health, reported as it changes so the pipeline can publish camera health.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamStatus {
    /// Connected and streaming; `description` gives codec and resolution.
    Connected { description: String },
    /// Lost (or never reached); the source tries again after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
    /// Connected but no frame for `for_`; a reconnect follows.
    Stalled { for_: Duration },
}

/// Per-source counters for camera health, readable at any time through [`FrameSource::counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Frames handed out by `next_item`.
    pub frames: u64,
    /// Pictures or packets the decoder rejected (the source skips them and goes on).
    pub decode_errors: u64,
    /// Frames dropped because the consumer was behind a live source.
    pub dropped: u64,
    /// Connection losses after which the source reconnected or is retrying.
    pub reconnects: u64,
    /// Times no frame arrived within the stall timeout.
    pub stalls: u64,
}

/// Counters shared between a capture thread and the handle the pipeline holds.
#[derive(Debug, Default)]
pub(crate) struct SharedCounters {
    pub frames: AtomicU64,
    pub decode_errors: AtomicU64,
    pub dropped: AtomicU64,
    pub reconnects: AtomicU64,
    pub stalls: AtomicU64,
}

impl SharedCounters {
    pub(crate) fn snapshot(&self) -> SourceCounters {
        SourceCounters {
            frames: self.frames.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A stream of frames. `next_item` blocks until something happens; it returns `Ok(None)` at the end
/// of a file or folder, or promptly after the stop flag is set. Live sources never end on their own.
pub trait FrameSource: Send {
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError>;
    /// Human-readable source name (the URL with any password redacted).
    fn describe(&self) -> String;
    /// Health counters so far.
    fn counters(&self) -> SourceCounters;
}

/// How sources retry, detect stalls and pace files.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// First reconnect delay; doubles after each failure up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Random spread of each delay, as a fraction (0.2 = ±20%), so cameras on one switch don't
    /// reconnect in lock-step.
    pub backoff_jitter: f64,
    /// A live source that yields no frame for this long reports `Stalled` and reconnects. Also
    /// bounds each connection step (DESCRIBE, SETUP, PLAY).
    pub stall_timeout: Duration,
    /// Pace files and folders by their timestamps, to simulate a live camera.
    pub realtime: bool,
    /// Frame rate assigned to image folders (they carry no timing).
    pub folder_fps: f64,
    /// Set to make blocking calls return promptly (`Ok(None)`) on shutdown.
    pub stop: Arc<AtomicBool>,
    /// How RTSP streams and video files are decoded (the camera's `decoder`).
    pub decoding: Decoding,
    /// Where RTSP and file sources (built-in and GStreamer) also put each encoded access unit,
    /// for event clips (the camera's clip ring); `None`: clips are off for this camera (or its
    /// source cannot give them).
    pub encoded: Option<Arc<dyn EncodedSink>>,
}

/// What takes a camera's encoded video as the source receives it (the clip recorder's ring).
pub trait EncodedSink: Send + Sync + std::fmt::Debug {
    /// One access unit (Annex B, parameter sets before keyframes) of a `dims` picture, at its own
    /// presentation time on the frames' clock.
    fn push(
        &self,
        stream_time: Duration,
        capture_time: SystemTime,
        codec: VideoCodec,
        annexb: &[u8],
        dims: (u32, u32),
    );
    /// The stream broke (reconnect, a jump, lost units): nothing joins across it.
    fn gap(&self);
}

/// Which decoder turns RTSP streams and video files into pictures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Decoding {
    /// retina + openh264 (RTSP) and the mp4 reader + openh264 (files): H.264 only, no system
    /// libraries needed.
    #[default]
    Builtin,
    /// A GStreamer pipeline (cargo feature `gstreamer`): H.265 and hardware decoders.
    Gstreamer {
        /// Decoder element, e.g. `nvv4l2decoder`; `None` lets `decodebin` choose.
        element: Option<String>,
    },
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            backoff_jitter: 0.2,
            stall_timeout: Duration::from_secs(10),
            realtime: false,
            folder_fps: 10.0,
            stop: Arc::new(AtomicBool::new(false)),
            decoding: Decoding::Builtin,
            encoded: None,
        }
    }
}

/// Opens a source by URL: `rtsp://` → RTSP, `v4l2:///dev/videoN` → V4L2 camera, a directory →
/// image folder, an `.mp4`/`.mov` file → file. With [`Decoding::Gstreamer`], RTSP streams and
/// files of any container GStreamer reads go through GStreamer instead. Connection problems of
/// live sources are not errors here: they come later as [`StreamStatus`] items while the source
/// retries.
pub fn open(url: &str, opts: &SourceOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    let gstreamer = matches!(opts.decoding, Decoding::Gstreamer { .. });
    let path = match CameraUrl::parse(url)? {
        CameraUrl::Rtsp if gstreamer => return open_gstreamer(url, opts),
        CameraUrl::Rtsp => return rtsp::open(url, opts),
        CameraUrl::V4l2 { .. } => return v4l2::open(url, opts),
        CameraUrl::Local(path) => path,
    };
    let path = path.as_path();
    let meta = std::fs::metadata(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Ok(Box::new(folder::FolderSource::open(path, opts)?));
    }
    if gstreamer {
        return open_gstreamer(url, opts);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("mp4" | "mov" | "m4v") => Ok(Box::new(file::Mp4Source::open(path, opts)?)),
        _ => Err(SourceError::Unsupported {
            place: redact_url(url),
        }),
    }
}

/// An RTSP URL or a file through GStreamer, or the error saying the feature is not built in.
fn open_gstreamer(url: &str, opts: &SourceOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    #[cfg(feature = "gstreamer")]
    {
        gst::open(url, opts)
    }
    #[cfg(not(feature = "gstreamer"))]
    {
        let _ = opts;
        Err(SourceError::FeatureMissing {
            place: redact_url(url),
            what: "GStreamer decoding (`decoder = \"gstreamer\"`)",
            feature: "gstreamer",
        })
    }
}

/// Whether `name` can be a GStreamer element name (`gst_decoder` goes into a pipeline
/// description, so nothing but a name may pass).
pub fn is_element_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why a GStreamer decoder element cannot be used on this machine, or `None` when it is
/// installed. `check` warns with this (the config may be written for another device).
#[cfg(feature = "gstreamer")]
pub fn gstreamer_element_problem(element: &str) -> Option<String> {
    gst::element_problem(element)
}

/// The URL with any password replaced by `***`, for logs, messages and `/config`: the one place
/// URLs are redacted. Works on the text, so a URL that does not parse is masked too, and errs on
/// hiding: everything between `://` and the last `@` before the query becomes `user:***` (or the
/// last `@` anywhere, when a password holds `?` or `#` — a query with an `@` is masked too).
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..before_query].rfind('@').or_else(|| rest.rfind('@')) else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = userinfo
        .split_once(':')
        .map_or(userinfo, |(u, _)| u)
        .split('/')
        .next()
        .unwrap_or_default();
    format!("{}{user}:***{}", &url[..start], &rest[at..])
}

/// A camera `url` as the sources read it: the one table of schemes, used to open a source and by
/// `check` to refuse a URL before the camera is ever reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraUrl {
    /// `rtsp://[user:pass@]host[:port]/path`.
    Rtsp,
    /// `v4l2:///dev/videoN`.
    V4l2 { index: u32 },
    /// A video file or a folder of images: `file://PATH` or a plain path.
    Local(PathBuf),
}

impl CameraUrl {
    /// Reads a camera URL; an error names it (credentials redacted) and says what is accepted.
    pub fn parse(raw: &str) -> Result<Self, SourceError> {
        let bad = |reason: String| SourceError::BadUrl {
            place: redact_url(raw),
            reason,
        };
        if raw.trim().is_empty() {
            return Err(bad("the camera url is empty".into()));
        }
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(raw)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "rtsp" => {
                let u = url::Url::parse(raw).map_err(|e| bad(format!("not a valid URL: {e}")))?;
                if u.host_str().is_none_or(str::is_empty) {
                    return Err(bad("the URL has no host".into()));
                }
                Ok(Self::Rtsp)
            }
            "rtsps" => Err(bad(
                "RTSP over TLS is not supported by the RTSP client (retina 0.4); use rtsp:// over the site VPN".into(),
            )),
            "v4l2" => v4l2::device_index(raw).map(|index| Self::V4l2 { index }),
            "file" => Ok(Self::Local(PathBuf::from(rest))),
            other => Err(bad(format!("unsupported camera url scheme `{other}`"))),
        }
    }
}

/// Sleeps until `deadline` in short steps; returns false if the stop flag was set meanwhile.
pub(crate) fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    use crate::clock::Clock;
    crate::clock::SystemClock.sleep_until(deadline, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_urls_are_read_once_for_open_and_check() {
        assert_eq!(
            CameraUrl::parse("rtsp://admin:pw@10.0.0.5:554/live").unwrap(),
            CameraUrl::Rtsp
        );
        assert_eq!(
            CameraUrl::parse("v4l2:///dev/video2").unwrap(),
            CameraUrl::V4l2 { index: 2 }
        );
        assert_eq!(
            CameraUrl::parse("file:///srv/clip.mp4").unwrap(),
            CameraUrl::Local(PathBuf::from("/srv/clip.mp4"))
        );
        assert_eq!(
            CameraUrl::parse("clips/gate").unwrap(),
            CameraUrl::Local(PathBuf::from("clips/gate"))
        );
        for (raw, says) in [
            ("", "empty"),
            ("rtsp:///live", "no host"),
            ("rtsps://admin:pw@cam/live", "not supported"),
            ("v4l2://camera", "/dev/videoN"),
            ("ftp://h/x", "unsupported camera url scheme `ftp`"),
        ] {
            let e = CameraUrl::parse(raw).unwrap_err().to_string();
            assert!(e.contains(says), "{raw}: {e}");
            assert!(!e.contains("pw@"), "credentials leak: {e}");
        }
    }

    #[test]
    fn a_password_with_a_query_character_is_hidden_too() {
        for url in [
            "rtsp://admin:p?ss@10.0.0.5/live",
            "rtsp://admin:p#ss@10.0.0.5/live",
        ] {
            let r = redact_url(url);
            assert_eq!(r, "rtsp://admin:***@10.0.0.5/live", "{url}");
        }
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("rtsp://admin:s3cret@10.0.0.5:554/Streaming/101"),
            "rtsp://admin:***@10.0.0.5:554/Streaming/101"
        );
        assert_eq!(redact_url("rtsp://10.0.0.5/live"), "rtsp://10.0.0.5/live");
        assert!(!redact_url("rtsp://a:p@ss@[bad/x").contains("p@ss"));
        assert_eq!(
            redact_url("rtsp://admin@cam/x?a=b@c"),
            "rtsp://admin:***@cam/x?a=b@c"
        );
        assert_eq!(redact_url("/data/clip.mp4"), "/data/clip.mp4");
        // unparseable, and a password with a slash: still hidden
        assert!(!redact_url("rtsp://u:pa/ss@host/live").contains("pa/ss"));
        assert!(!redact_url("rtsp://u:hunter2@[::1/x").contains("hunter2"));
    }

    #[test]
    fn unknown_kinds_are_refused_with_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes.txt");
        std::fs::write(&f, "x").unwrap();
        let err = open(f.to_str().unwrap(), &SourceOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("notes.txt") && err.contains("unsupported"),
            "{err}"
        );
        let err = open("/no/such/clip.mp4", &SourceOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/no/such/clip.mp4"), "{err}");
    }
}
