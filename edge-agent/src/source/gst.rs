//! GStreamer decoding (cargo feature `gstreamer`, camera `decoder = "gstreamer"`): the way to H.265
//! cameras and to hardware decoders such as `nvv4l2decoder` on a Jetson, which the built-in
//! retina + openh264 path cannot reach. One pipeline per connection:
//!
//! `filesrc | rtspsrc (TCP) ! decodebin | parsebin ! DECODER [! nvvidconv] ! videoconvert !
//! video/x-raw,format=RGB ! appsink`
//!
//! The appsink callback runs on GStreamer's streaming thread: it copies each picture into a pooled
//! buffer and hands it over a bounded channel (dropping and counting for live cameras, waiting for
//! files). A camera is a [`Connection`] of the live-source loop (`live.rs`), which times, numbers,
//! tells stalls and reconnects as for every live camera; a file is read to its end by [`GstFile`].
//! For event clips, a probe on the stream's parser takes each access unit it hands the decoder.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use gst::prelude::*;
use gst_video::prelude::*;

use super::codec::{LengthPrefixed, VideoCodec};
use super::live::{
    Connection, EncodedUnit as LiveUnit, LiveSource, OpenFailure, Picture as LivePicture,
};
use super::{
    Decoding, Frame, FrameSource, SharedCounters, SourceCounters, SourceError, SourceItem,
    SourceOptions, StreamStatus,
};

/// Decoded pictures waiting for the pipeline. Small: each is a whole RGB frame (2.7 MB at
/// 1006x720), and a live camera should drop rather than fall behind.
const QUEUE: usize = 4;
/// Encoded access units between the parser's streaming thread and the source (event clips): a
/// few seconds of video; when full, units are dropped and the clip ring starts again.
const ENCODED_QUEUE: usize = 128;
/// Encoded units held for a decoded picture to put them on the frames' clock; beyond this the
/// oldest go (the ring starts again).
const MAX_WAITING_UNITS: usize = 256;
/// How often blocked waits look at the stop flag and the bus.
const POLL: Duration = Duration::from_millis(50);
/// RTP jitter-buffer latency for RTSP (ms). Over TCP nothing arrives out of order, so a small
/// buffer only adds delay; GStreamer's default is 2000.
const RTSP_LATENCY_MS: u32 = 200;

/// What to read.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Rtsp {
        /// The URL without credentials (rtspsrc takes them as properties, so they never show up in
        /// GStreamer's own messages).
        location: String,
        user: Option<(String, String)>,
    },
}

/// The GStreamer pipelines of one camera or file, one per connection: what the live-source loop
/// (`live.rs`) runs for an RTSP camera, and [`GstFile`] for a file.
pub(crate) struct GstConnection {
    place: String,
    target: Target,
    /// The configured decoder element (`None`: decodebin).
    element: Option<String>,
    opts: SourceOptions,
    session: Option<Session>,
    counters: Arc<SharedCounters>,
    /// Encoded access units waiting for the decoded picture that times them (`opts.encoded`).
    waiting_units: VecDeque<EncodedUnit>,
    /// A live connection's first picture, taken while opening (its size and decoder go into the
    /// `Connected` description) and handed out first.
    first: Option<Picture>,
}

/// A file decoded by GStreamer: media time from the file, to its end.
pub(crate) struct GstFile {
    conn: GstConnection,
    /// `Connected` goes out with the first picture.
    described: bool,
    pending: VecDeque<SourceItem>,
    seq: u64,
    opened: Instant,
    opened_wall: SystemTime,
    /// Last stream_time, to keep it increasing.
    last_time: Option<Duration>,
    /// First PTS, stream_time zero.
    first_pts: Option<u64>,
    finished: bool,
}

/// An access unit as the stream's parser handed it to the decoder, in Annex B.
struct EncodedUnit {
    pts: Option<u64>,
    codec: VideoCodec,
    annexb: Vec<u8>,
}

/// The receiving end of a session's encoded units, and how many were dropped on a full queue.
struct EncodedUnits {
    rx: Receiver<EncodedUnit>,
    dropped: Arc<AtomicU64>,
}

/// A picture as the streaming thread hands it over.
struct Picture {
    /// Buffer PTS in nanoseconds (pipeline running time for RTSP, media time for files).
    pts: Option<u64>,
    received: SystemTime,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

/// One running pipeline (one connection of a camera, or a whole file).
struct Session {
    pipeline: gst::Pipeline,
    rx: Receiver<Picture>,
    quit: Arc<AtomicBool>,
    /// What a `missing-plugin` bus message said was missing, for the error that follows it.
    missing: Option<String>,
    eos: bool,
    /// The stream's encoded access units, when the camera keeps clips.
    encoded: Option<EncodedUnits>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The streaming thread may be waiting for room in the channel: let it go first.
        self.quit.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// How a session ended.
enum End {
    /// Worth retrying (live): the reason.
    Failed(String),
    /// End of a file, or the server ended the stream.
    Eos,
}

impl End {
    fn reason(self) -> String {
        match self {
            End::Failed(reason) => reason,
            End::Eos => "the server ended the stream".into(),
        }
    }
}

/// Why a pipeline could not be started.
enum StartError {
    /// Retrying cannot help (missing element, bad file).
    Fatal(SourceError),
    /// A live camera may come back.
    Retry(String),
}

/// Opens an RTSP camera (the live-source loop; it connects on the first `next_item`) or a file
/// (decoding starts here, so a missing or unreadable file fails here) through GStreamer.
pub(crate) fn open(url: &str, opts: &SourceOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    let conn = GstConnection::new(url, opts)?;
    if !conn.is_file() {
        let place = conn.place.clone();
        let counters = conn.counters.clone();
        let clock = Arc::new(crate::clock::SystemClock);
        return Ok(Box::new(LiveSource::new(
            place, conn, opts, counters, clock,
        )));
    }
    Ok(Box::new(GstFile::open(conn)?))
}

impl GstConnection {
    /// Checks the URL and that the elements exist.
    fn new(url: &str, opts: &SourceOptions) -> Result<Self, SourceError> {
        let place = super::redact_url(url);
        init(&place)?;
        let element = match &opts.decoding {
            Decoding::Gstreamer { element } => element.clone().filter(|e| !e.trim().is_empty()),
            Decoding::Builtin => None,
        };
        if let Some(e) = element.as_deref().filter(|e| !super::is_element_name(e)) {
            return Err(SourceError::BadUrl {
                place,
                reason: format!(
                    "gst_decoder `{e}` is not a GStreamer element name (letters, digits, '_' and '-')"
                ),
            });
        }
        let target = target(url, &place)?;
        for name in required_elements(&target, element.as_deref()) {
            if gst::ElementFactory::find(name).is_none() {
                return Err(SourceError::MissingElement {
                    place,
                    element: name.to_string(),
                    hint: install_hint(name),
                });
            }
        }
        Ok(Self {
            place,
            target,
            element,
            opts: opts.clone(),
            session: None,
            counters: Arc::new(SharedCounters::default()),
            waiting_units: VecDeque::new(),
            first: None,
        })
    }

    fn is_file(&self) -> bool {
        matches!(self.target, Target::File(_))
    }

    fn stopped(&self) -> bool {
        self.opts.stop.load(Ordering::Relaxed)
    }

    /// Builds the pipeline and sets it playing. Files wait for the first picture to be ready
    /// (preroll) so that their errors surface here.
    fn start(&self) -> Result<Session, StartError> {
        let live = !self.is_file();
        let description = launch_line(&self.target, self.element.as_deref());
        tracing::debug!(source = %self.place, pipeline = %description, "starting GStreamer");
        let fatal = |reason: String| {
            StartError::Fatal(SourceError::Decode {
                place: self.place.clone(),
                reason,
            })
        };
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| fatal(format!("cannot build the GStreamer pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| fatal("the GStreamer description is not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .ok_or_else(|| fatal("the pipeline has no source element".into()))?;
        match &self.target {
            Target::File(path) => src.set_property("location", path.to_string_lossy().as_ref()),
            Target::Rtsp { location, user } => {
                src.set_property("location", location);
                if let Some((name, password)) = user {
                    src.set_property("user-id", name);
                    src.set_property("user-pw", password);
                }
            }
        }
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| fatal("the pipeline has no appsink".into()))?;
        let encoded = self
            .opts
            .encoded
            .is_some()
            .then(|| tap_parser(&pipeline, self.place.clone()));
        let (tx, rx) = sync_channel(QUEUE);
        let quit = Arc::new(AtomicBool::new(false));
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(on_sample(
                    tx,
                    live,
                    quit.clone(),
                    self.opts.stop.clone(),
                    self.counters.clone(),
                    self.place.clone(),
                ))
                .build(),
        );
        let mut session = Session {
            pipeline,
            rx,
            quit,
            missing: None,
            eos: false,
            encoded,
        };
        let changed = session.pipeline.set_state(gst::State::Playing);
        if live {
            // rtspsrc connects in the background; refusals and timeouts arrive on the bus.
            return match changed {
                Ok(_) => Ok(session),
                Err(_) => Err(StartError::Retry(self.bus_error(&mut session))),
            };
        }
        if changed.is_err() {
            return Err(fatal(self.bus_error(&mut session)));
        }
        // Wait for preroll: the demuxer and decoder are then set up, or have failed.
        let bus = session.pipeline.bus();
        let deadline = Instant::now() + self.opts.stall_timeout;
        while Instant::now() < deadline && !self.stopped() {
            let Some(bus) = &bus else { break };
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(POLL.as_millis() as u64),
                &[
                    gst::MessageType::Error,
                    gst::MessageType::Eos,
                    gst::MessageType::AsyncDone,
                    gst::MessageType::Element,
                ],
            ) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::AsyncDone(_) => return Ok(session),
                gst::MessageView::Eos(_) => {
                    session.eos = true;
                    return Ok(session);
                }
                gst::MessageView::Element(e) => note_missing_plugin(e, &mut session),
                gst::MessageView::Error(e) => {
                    return Err(fatal(error_text(e, session.missing.as_deref())));
                }
                _ => {}
            }
        }
        Ok(session)
    }

    /// The bus's error after a failed state change ("Element failed to change its state" alone
    /// says nothing: the bus message has the cause).
    fn bus_error(&self, session: &mut Session) -> String {
        let Some(bus) = session.pipeline.bus() else {
            return "GStreamer could not start the pipeline".into();
        };
        while let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(500),
            &[gst::MessageType::Error, gst::MessageType::Element],
        ) {
            match msg.view() {
                gst::MessageView::Element(e) => note_missing_plugin(e, session),
                gst::MessageView::Error(e) => {
                    return error_text(e, session.missing.as_deref());
                }
                _ => {}
            }
        }
        "GStreamer could not start the pipeline (no error message on the bus)".into()
    }

    /// Waits up to POLL for a picture or news on the bus.
    fn poll(&mut self) -> Result<Option<Picture>, End> {
        let Some(session) = self.session.as_mut() else {
            return Err(End::Failed("no pipeline".into()));
        };
        let received = session.rx.recv_timeout(POLL);
        if let Some(units) = &session.encoded {
            if units.dropped.swap(0, Ordering::Relaxed) > 0 {
                // a hole in the encoded stream: no clip may span it
                self.waiting_units.clear();
                if let Some(tap) = &self.opts.encoded {
                    tap.gap();
                }
            }
            self.waiting_units.extend(units.rx.try_iter());
            if self.waiting_units.len() > MAX_WAITING_UNITS {
                self.waiting_units.clear();
                if let Some(tap) = &self.opts.encoded {
                    tap.gap();
                }
            }
        }
        match received {
            Ok(p) => return Ok(Some(p)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(End::Failed("the GStreamer pipeline stopped".into()));
            }
        }
        if session.eos {
            return Err(End::Eos);
        }
        if let Some(bus) = session.pipeline.bus() {
            while let Some(msg) = bus.pop_filtered(&[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
                gst::MessageType::Element,
            ]) {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        return Err(End::Failed(error_text(e, session.missing.as_deref())));
                    }
                    gst::MessageView::Eos(_) => {
                        // Every picture was handed over before EOS reached the bus; let the
                        // channel drain first.
                        session.eos = true;
                        return Ok(None);
                    }
                    gst::MessageView::Warning(w) => {
                        // Decoders warn about pictures they had to skip.
                        SharedCounters::add(&self.counters.decode_errors);
                        tracing::debug!(source = %self.place, warning = %w.error(), debug = ?w.debug(), "GStreamer warning");
                    }
                    gst::MessageView::Element(e) => note_missing_plugin(e, session),
                    _ => {}
                }
            }
        }
        Ok(None)
    }

    /// The encoded units the parser passed before the picture of PTS `pts` (all of them when
    /// timestamps are missing), in decode order.
    fn take_units(&mut self, pts: Option<u64>) -> Vec<EncodedUnit> {
        let n = match pts {
            Some(p) => self
                .waiting_units
                .iter()
                .position(|u| u.pts.is_some_and(|u| u > p))
                .unwrap_or(self.waiting_units.len()),
            None => self.waiting_units.len(),
        };
        self.waiting_units.drain(..n).collect()
    }

    /// What the running pipeline decodes with, for the `Connected` status.
    fn description(&self, p: &Picture) -> String {
        let decoder = self
            .session
            .as_ref()
            .and_then(|s| decoder_name(&s.pipeline))
            .unwrap_or_else(|| "GStreamer".into());
        let how = match &self.target {
            Target::File(_) => "file",
            Target::Rtsp { .. } => "RTSP/TCP",
        };
        format!(
            "{}x{} decoded by GStreamer {decoder} ({how}) from {}",
            p.width, p.height, self.place
        )
    }
}

impl Connection for GstConnection {
    fn open(&mut self) -> Result<String, OpenFailure> {
        self.session = Some(self.start().map_err(|e| match e {
            StartError::Fatal(e) => OpenFailure::Fatal(e),
            StartError::Retry(why) => OpenFailure::Retry(why),
        })?);
        // rtspsrc connects in the background: the camera is up once its first picture is here,
        // and `Connected` says what it sends
        let deadline = Instant::now() + self.opts.stall_timeout;
        let failed = loop {
            if self.opts.stop.load(Ordering::Relaxed) {
                break "stopped".to_string();
            }
            match self.poll() {
                Ok(Some(p)) => {
                    let description = self.description(&p);
                    self.first = Some(p);
                    return Ok(description);
                }
                Ok(None) if Instant::now() < deadline => {}
                Ok(None) => {
                    break format!(
                        "no picture within {:.1} s of connecting",
                        self.opts.stall_timeout.as_secs_f64()
                    );
                }
                Err(end) => break end.reason(),
            }
        };
        self.close();
        Err(OpenFailure::Retry(failed))
    }

    fn next_picture(&mut self, _limit: Duration) -> Result<Option<LivePicture>, String> {
        let p = match self.first.take() {
            Some(p) => p,
            None => match self.poll() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(end) => return Err(end.reason()),
            },
        };
        let units = self
            .take_units(p.pts)
            .into_iter()
            .map(|u| LiveUnit {
                media_time: u.pts.map(Duration::from_nanos),
                codec: u.codec,
                annexb: u.annexb,
            })
            .collect();
        Ok(Some(LivePicture {
            media_time: p.pts.map(Duration::from_nanos),
            received: p.received,
            width: p.width,
            height: p.height,
            rgb: p.rgb,
            units,
        }))
    }

    fn close(&mut self) {
        self.session = None;
        self.waiting_units.clear();
        self.first = None;
    }
}

impl GstFile {
    /// Starts decoding, so that a missing or unreadable file fails here.
    fn open(mut conn: GstConnection) -> Result<Self, SourceError> {
        conn.session = Some(conn.start().map_err(|e| match e {
            StartError::Fatal(e) => e,
            StartError::Retry(reason) => SourceError::Decode {
                place: conn.place.clone(),
                reason,
            },
        })?);
        Ok(Self {
            conn,
            described: false,
            pending: VecDeque::new(),
            seq: 0,
            opened: Instant::now(),
            opened_wall: SystemTime::now(),
            last_time: None,
            first_pts: None,
            finished: false,
        })
    }

    /// Media time since the file's first picture.
    fn media_time(&mut self, pts: Option<u64>) -> Duration {
        let pts = pts.unwrap_or(0);
        let first = *self.first_pts.get_or_insert(pts);
        Duration::from_nanos(pts.saturating_sub(first))
    }

    /// Times and numbers a picture (kept increasing), and hands the clip ring the units the
    /// parser passed before it, each at its own media time.
    fn frame(&mut self, p: Picture) -> Frame {
        let mut t = self.media_time(p.pts);
        if let Some(last) = self.last_time
            && t <= last
        {
            t = last + Duration::from_micros(1);
        }
        self.last_time = Some(t);
        let units = self.conn.take_units(p.pts);
        if let Some(tap) = self.conn.opts.encoded.clone() {
            for u in units {
                let at = self.media_time(u.pts.or(p.pts));
                tap.push(
                    at,
                    self.opened_wall + at,
                    u.codec,
                    &u.annexb,
                    (p.width, p.height),
                );
            }
        }
        let frame = Frame {
            seq: self.seq,
            capture_time: self.opened_wall + t,
            clock: super::CaptureClock::FileStart,
            stream_time: t,
            discontinuity: false,
            width: p.width,
            height: p.height,
            rgb: p.rgb,
        };
        self.seq += 1;
        SharedCounters::add(&self.conn.counters.frames);
        frame
    }
}

impl FrameSource for GstFile {
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        loop {
            if self.conn.opts.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            if self.finished {
                return Ok(None);
            }
            match self.conn.poll() {
                Ok(Some(p)) => {
                    let description = (!self.described).then(|| self.conn.description(&p));
                    let frame = self.frame(p);
                    if self.conn.opts.realtime
                        && !super::sleep_until(
                            self.opened + frame.stream_time,
                            &self.conn.opts.stop,
                        )
                    {
                        return Ok(None);
                    }
                    if let Some(description) = description {
                        self.described = true;
                        tracing::info!(source = %self.conn.place, %description, "GStreamer source connected");
                        self.pending.push_back(SourceItem::Frame(frame));
                        return Ok(Some(SourceItem::Status(StreamStatus::Connected {
                            description,
                        })));
                    }
                    return Ok(Some(SourceItem::Frame(frame)));
                }
                Ok(None) => {}
                Err(End::Eos) => {
                    self.conn.close();
                    self.finished = true;
                }
                Err(End::Failed(reason)) => {
                    self.conn.close();
                    self.finished = true;
                    return Err(SourceError::Decode {
                        place: self.conn.place.clone(),
                        reason,
                    });
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.conn.place.clone()
    }

    fn counters(&self) -> SourceCounters {
        self.conn.counters.snapshot()
    }
}

/// Initialises GStreamer once per process.
fn init(place: &str) -> Result<(), SourceError> {
    gst::init().map_err(|e| SourceError::Decode {
        place: place.to_string(),
        reason: format!("cannot initialise GStreamer: {e}"),
    })
}

/// The file or RTSP camera behind `url`, with RTSP credentials taken out of the URL.
fn target(url: &str, place: &str) -> Result<Target, SourceError> {
    match super::CameraUrl::parse(url)? {
        super::CameraUrl::Local(path) => return Ok(Target::File(path)),
        super::CameraUrl::Rtsp => {}
        super::CameraUrl::V4l2 { .. } => {
            return Err(SourceError::BadUrl {
                place: place.to_string(),
                reason: "a V4L2 camera is read without GStreamer: remove decoder = \"gstreamer\""
                    .into(),
            });
        }
    }
    let bad = |reason: String| SourceError::BadUrl {
        place: place.to_string(),
        reason,
    };
    // the URL is valid and has a host (`CameraUrl::parse`); only the credentials come out
    let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
    let user = if parsed.username().is_empty() {
        None
    } else {
        let pair = (
            super::rtsp::percent_decode(parsed.username()),
            super::rtsp::percent_decode(parsed.password().unwrap_or("")),
        );
        parsed
            .set_username("")
            .and_then(|()| parsed.set_password(None))
            .map_err(|()| bad("cannot separate the credentials from the URL".into()))?;
        Some(pair)
    };
    Ok(Target::Rtsp {
        location: parsed.to_string(),
        user,
    })
}

/// Whether a decoder outputs NVIDIA device memory (`nvv4l2decoder`), which `videoconvert` cannot
/// read: `nvvidconv` copies it to system memory first.
fn needs_nvvidconv(element: &str) -> bool {
    let Some(factory) = gst::ElementFactory::find(element) else {
        return element.starts_with("nvv4l2");
    };
    factory
        .static_pad_templates()
        .iter()
        .filter(|t| t.direction() == gst::PadDirection::Src)
        .any(|t| {
            t.caps()
                .iter_with_features()
                .any(|(_, f)| f.contains("memory:NVMM"))
        })
}

/// The elements a pipeline for `target` needs, in pipeline order.
fn required_elements<'a>(target: &Target, element: Option<&'a str>) -> Vec<&'a str> {
    let mut names = vec![match target {
        Target::File(_) => "filesrc",
        Target::Rtsp { .. } => "rtspsrc",
    }];
    match element {
        None => names.push("decodebin"),
        Some(e) => {
            names.extend(["parsebin", e]);
            if needs_nvvidconv(e) {
                names.push("nvvidconv");
            }
        }
    }
    names.extend(["videoconvert", "appsink"]);
    names
}

/// The `gst-launch` description; locations and credentials are set as properties afterwards so
/// no path or password needs quoting here; the element name passed [`super::is_element_name`].
fn launch_line(target: &Target, element: Option<&str>) -> String {
    let source = match target {
        Target::File(_) => "filesrc name=src".to_string(),
        // Only the video stream: an audio track would otherwise be offered to the decoder too.
        Target::Rtsp { .. } => format!(
            "rtspsrc name=src protocols=tcp latency={RTSP_LATENCY_MS} ! application/x-rtp,media=video"
        ),
    };
    let decode = match element {
        None => "decodebin".to_string(),
        Some(e) if needs_nvvidconv(e) => format!("parsebin ! {e} ! nvvidconv"),
        Some(e) => format!("parsebin ! {e}"),
    };
    let live = matches!(target, Target::Rtsp { .. });
    format!(
        "{source} ! {decode} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=2 drop={live}"
    )
}

/// See [`super::gstreamer_element_problem`].
pub(crate) fn element_problem(element: &str) -> Option<String> {
    if !super::is_element_name(element) {
        return Some(format!("`{element}` is not a GStreamer element name"));
    }
    if let Err(e) = gst::init() {
        return Some(format!("cannot initialise GStreamer: {e}"));
    }
    if gst::ElementFactory::find(element).is_some() {
        return None;
    }
    Some(format!(
        "the GStreamer element `{element}` is not installed on this machine; {}",
        install_hint(element)
    ))
}

/// Which Debian package brings an element, as advice.
fn install_hint(element: &str) -> String {
    let package = match element {
        "filesrc" | "capsfilter" | "queue" => Some("libgstreamer1.0-0 (GStreamer itself)"),
        "decodebin" | "parsebin" | "videoconvert" | "appsink" | "typefind" => {
            Some("gstreamer1.0-plugins-base")
        }
        "rtspsrc" | "qtdemux" | "matroskademux" | "rtph264depay" | "rtph265depay"
        | "v4l2h264dec" | "v4l2h265dec" => Some("gstreamer1.0-plugins-good"),
        "h264parse" | "h265parse" | "openh264dec" | "libde265dec" | "nvh264dec" | "nvh265dec"
        | "vah264dec" | "vah265dec" | "v4l2slh264dec" | "v4l2slh265dec" => {
            Some("gstreamer1.0-plugins-bad")
        }
        "vaapih264dec" | "vaapih265dec" => Some("gstreamer1.0-vaapi"),
        "nvv4l2decoder" | "nvvidconv" => {
            Some("nvidia-l4t-gstreamer (JetPack, on the Jetson itself)")
        }
        e if e.starts_with("avdec_") => Some("gstreamer1.0-libav"),
        _ => None,
    };
    match package {
        Some(p) => format!("install the Debian package {p}"),
        None => format!(
            "no package is known to provide it: check the name with `gst-inspect-1.0 {element}`, or leave gst_decoder unset to let decodebin choose"
        ),
    }
}

/// Remembers what a `missing-plugin` element message says is missing (decodebin posts it just
/// before its error).
fn note_missing_plugin(e: &gst::message::Element, session: &mut Session) {
    if let Some(s) = e.structure()
        && s.name() == "missing-plugin"
    {
        let what = s
            .get::<String>("name")
            .or_else(|_| s.get::<String>("type"))
            .unwrap_or_else(|_| "a plugin".into());
        session.missing = Some(what);
    }
}

/// The bus error as a sentence with the cause and, for a missing plugin, what to install.
fn error_text(e: &gst::message::Error, missing: Option<&str>) -> String {
    let err = e.error();
    // The debug string's last line holds the detail ("No such file "/x.mp4" for reading.").
    // A one-line debug string is only the code location.
    let detail = e
        .debug()
        .filter(|d| d.lines().count() > 1)
        .and_then(|d| d.lines().last().map(|l| l.trim().to_string()))
        .filter(|l| !l.is_empty());
    let mut text = err.message().trim_end_matches('.').to_string();
    if let Some(d) = detail {
        text.push_str(&format!(" ({d})"));
    }
    if err.matches(gst::StreamError::TypeNotFound) {
        text.push_str(": not a video GStreamer can read, or truncated");
    } else if err.matches(gst::ResourceError::OpenReadWrite) {
        text.push_str(": check the camera's address and port, and that it is up");
    }
    if err.matches(gst::CoreError::MissingPlugin) {
        let what = missing.unwrap_or("a decoder for this stream");
        let lower = what.to_ascii_lowercase();
        let package = if lower.contains("demux") || lower.contains("depayload") {
            "gstreamer1.0-plugins-good"
        } else if lower.contains("pars") {
            "gstreamer1.0-plugins-bad"
        } else {
            "gstreamer1.0-libav (avdec_h264, avdec_h265)"
        };
        text = format!(
            "GStreamer found no {what}: install {package}, or name an installed decoder in the camera's gst_decoder"
        );
    }
    text
}

/// The factory name of the video decoder inside the pipeline (decodebin picks it at run time).
fn decoder_name(pipeline: &gst::Pipeline) -> Option<String> {
    pipeline
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find_map(|e| {
            let factory = e.factory()?;
            let klass = factory.klass();
            (klass.contains("Decoder") && klass.contains("Video"))
                .then(|| factory.name().to_string())
        })
}

/// Watches for the stream's H.264 or H.265 parser (inside decodebin or parsebin) and takes each
/// access unit it hands the decoder, as Annex B: what event clips are cut from, without a second
/// pipeline branch (so cameras whose streams are neither play as before).
fn tap_parser(pipeline: &gst::Pipeline, place: String) -> EncodedUnits {
    let (tx, rx) = sync_channel(ENCODED_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let hooked = AtomicBool::new(false);
    let lost = dropped.clone();
    pipeline.connect_deep_element_added(move |_, _, element| {
        let Some(factory) = element.factory() else {
            return;
        };
        let codec = match factory.name().as_str() {
            "h264parse" => VideoCodec::H264,
            "h265parse" => VideoCodec::H265,
            _ => return,
        };
        let Some(pad) = element.static_pad("src") else {
            return;
        };
        if hooked.swap(true, Ordering::Relaxed) {
            return; // the first parser is the stream's
        }
        let (tx, lost, place) = (tx.clone(), lost.clone(), place.clone());
        let warned = AtomicBool::new(false);
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            match encoded_unit(pad, buffer, codec) {
                Ok(unit) => {
                    if tx.try_send(unit).is_err() {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) if !warned.swap(true, Ordering::Relaxed) => {
                    tracing::warn!(source = %place, error = %e, "no event clips from this stream");
                }
                Err(_) => {}
            }
            gst::PadProbeReturn::Ok
        });
    });
    EncodedUnits { rx, dropped }
}

/// One parsed buffer as Annex B, whatever stream format the parser negotiated with the decoder
/// (start codes, or lengths with the parameter sets in `codec_data`).
fn encoded_unit(
    pad: &gst::Pad,
    buffer: &gst::BufferRef,
    codec: VideoCodec,
) -> Result<EncodedUnit, String> {
    let caps = pad.current_caps().ok_or("the parser has no caps yet")?;
    let s = caps.structure(0).ok_or("the parser's caps are empty")?;
    if s.get::<&str>("alignment").is_ok_and(|a| a != "au") {
        return Err("the parser hands out single NAL units, not access units".into());
    }
    let map = buffer.map_readable().map_err(|e| e.to_string())?;
    let annexb = match s.get::<&str>("stream-format").unwrap_or("byte-stream") {
        "byte-stream" => map.as_slice().to_vec(),
        format => {
            let record = s
                .get::<gst::Buffer>("codec_data")
                .map_err(|_| format!("stream-format {format} without codec_data"))?;
            let record = record.map_readable().map_err(|e| e.to_string())?;
            let lp = LengthPrefixed::from_record(codec, record.as_slice())
                .map_err(|e| format!("codec_data: {e}"))?;
            let unit = lp.to_annexb(map.as_slice(), false).map_err(|e| e.0)?;
            let in_band = super::nal_units(&unit).any(|n| codec.is_parameter_set(n));
            if codec.is_keyframe(&unit) && !in_band {
                lp.to_annexb(map.as_slice(), true).map_err(|e| e.0)?
            } else {
                unit
            }
        }
    };
    Ok(EncodedUnit {
        pts: buffer.pts().map(gst::ClockTime::nseconds),
        codec,
        annexb,
    })
}

/// The appsink callback: copies the picture out of GStreamer's buffer (dropping row padding) and
/// hands it over. Live cameras drop and count when the consumer is behind; files wait.
fn on_sample(
    tx: SyncSender<Picture>,
    live: bool,
    quit: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: Arc<SharedCounters>,
    place: String,
) -> impl FnMut(&gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> + Send + 'static {
    move |sink| {
        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
        let received = SystemTime::now();
        let picture = match copy_picture(&sample, received) {
            Ok(p) => p,
            Err(e) => {
                SharedCounters::add(&counters.decode_errors);
                tracing::warn!(source = %place, error = %e, "skipping a picture GStreamer delivered");
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        let mut item = picture;
        loop {
            match tx.try_send(item) {
                Ok(()) => return Ok(gst::FlowSuccess::Ok),
                Err(TrySendError::Disconnected(_)) => return Err(gst::FlowError::Flushing),
                Err(TrySendError::Full(back)) if live => {
                    SharedCounters::add(&counters.dropped);
                    super::recycle(back.rgb);
                    return Ok(gst::FlowSuccess::Ok);
                }
                Err(TrySendError::Full(back)) => {
                    if quit.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                        return Err(gst::FlowError::Flushing);
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

/// Packed RGB out of a GStreamer RGB sample.
fn copy_picture(sample: &gst::Sample, received: SystemTime) -> Result<Picture, String> {
    let buffer = sample.buffer().ok_or("a sample without a buffer")?;
    let caps = sample.caps().ok_or("a sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| format!("cannot map the picture: {e}"))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = usize::try_from(frame.plane_stride()[0]).map_err(|e| e.to_string())?;
    let data = frame.plane_data(0).map_err(|e| e.to_string())?;
    let row = w * 3;
    if stride < row || data.len() < stride * h.saturating_sub(1) + row {
        return Err(format!(
            "picture of {w}x{h} with stride {stride} has only {} bytes",
            data.len()
        ));
    }
    let mut rgb = super::frame_buffer(row * h);
    for (dst, src) in rgb.chunks_exact_mut(row).zip(data.chunks(stride)) {
        dst.copy_from_slice(&src[..row]);
    }
    Ok(Picture {
        pts: buffer.pts().map(gst::ClockTime::nseconds),
        received,
        width: frame.width(),
        height: frame.height(),
        rgb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// The Hải Phòng junction clip (H.264) in the shared mirror.
    fn haiphong() -> PathBuf {
        crate::plate::fixtures::footage_video("vn_citycam_haiphong.mp4")
    }

    /// An H.265 copy of the first `frames` pictures of the Hải Phòng clip, made with ffmpeg
    /// (libx265) in `dir`: H.265 footage is not in the shared mirror.
    fn h265_clip(dir: &Path, frames: u32) -> PathBuf {
        let src = haiphong();
        let out = dir.join("h265.mp4");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&src)
            .args(["-an", "-fps_mode", "passthrough", "-frames:v"])
            .arg(frames.to_string())
            .args(["-c:v", "libx265", "-preset", "ultrafast"])
            // Limited range: GStreamer 1.22 decodes full-range (yuvj) H.265 as limited range
            // (README, "Video sources"), which would hide errors of our own in the colour check.
            .args(["-pix_fmt", "yuv420p", "-x265-params", "log-level=error"])
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}); scripts/test.sh installs it"));
        assert!(status.success(), "ffmpeg could not make the H.265 clip");
        out
    }

    fn gst_opts(element: Option<&str>) -> SourceOptions {
        SourceOptions {
            decoding: Decoding::Gstreamer {
                element: element.map(str::to_string),
            },
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(100),
            stall_timeout: Duration::from_secs(5),
            ..SourceOptions::default()
        }
    }

    fn read_all(src: &mut dyn FrameSource) -> (String, Vec<Frame>) {
        let mut description = String::new();
        let mut frames = Vec::new();
        while let Some(item) = src.next_item().unwrap() {
            match item {
                SourceItem::Frame(f) => frames.push(f),
                SourceItem::Status(StreamStatus::Connected { description: d }) => description = d,
                SourceItem::Status(s) => panic!("a file reports no {s:?}"),
            }
        }
        (description, frames)
    }

    /// ffmpeg's RGB of the first picture, to check GStreamer's colour conversion.
    fn ffmpeg_first_rgb(clip: &Path) -> Vec<u8> {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(clip)
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .expect("run ffmpeg");
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn decodes_every_h265_picture_with_increasing_timestamps_and_ffmpeg_colours() {
        let dir = tempfile::tempdir().unwrap();
        let clip = h265_clip(dir.path(), 30);
        for element in [None, Some("avdec_h265")] {
            let started = Instant::now();
            let mut src = open(clip.to_str().unwrap(), &gst_opts(element)).unwrap();
            let (description, frames) = read_all(src.as_mut());
            let took = started.elapsed();
            eprintln!(
                "{element:?}: {} frames in {took:?} ({:.0} fps): {description}",
                frames.len(),
                frames.len() as f64 / took.as_secs_f64()
            );
            assert!(description.contains("1006x720"), "{description}");
            assert!(description.contains("avdec_h265"), "{description}");
            assert_eq!(frames.len(), 30, "{element:?}");
            for (i, f) in frames.iter().enumerate() {
                assert_eq!(f.seq, i as u64);
                assert_eq!(
                    (f.width, f.height, f.rgb.len()),
                    (1006, 720, 1006 * 720 * 3)
                );
            }
            assert_eq!(frames[0].stream_time, Duration::ZERO);
            for w in frames.windows(2) {
                assert!(
                    w[1].stream_time > w[0].stream_time,
                    "{:?}",
                    (w[0].stream_time, w[1].stream_time)
                );
                assert!(w[1].capture_time > w[0].capture_time);
            }
            // The clip runs at about 20 fps: 30 pictures span about 1.5 s.
            let span = frames[29].stream_time.as_secs_f64();
            assert!((1.2..1.8).contains(&span), "{span}");
            let want = ffmpeg_first_rgb(&clip);
            let diff = frames[0]
                .rgb
                .iter()
                .zip(&want)
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum::<u64>() as f64
                / want.len() as f64;
            assert!(diff < 3.0, "mean difference from ffmpeg's RGB: {diff}");
            let c = src.counters();
            assert_eq!((c.frames, c.dropped, c.reconnects), (30, 0, 0), "{c:?}");
        }
    }

    #[test]
    fn a_missing_file_is_named_with_the_cause() {
        let err = open("/no/such/clip.mp4", &gst_opts(None))
            .err()
            .expect("a missing file must fail at open")
            .to_string();
        assert!(err.contains("/no/such/clip.mp4"), "{err}");
        assert!(!err.contains("failed to change its state"), "{err}");
        assert!(
            err.to_lowercase().contains("not found") || err.contains("No such file"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_video_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes.mp4");
        std::fs::write(&f, "not a video at all").unwrap();
        let err = open(f.to_str().unwrap(), &gst_opts(None))
            .err()
            .expect("text must not open as video")
            .to_string();
        assert!(err.contains("notes.mp4"), "{err}");
        eprintln!("{err}");
    }

    #[test]
    fn a_missing_decoder_element_is_named_with_advice() {
        let err = open("/no/matter.mp4", &gst_opts(Some("nosuchdec")))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`nosuchdec` is not installed"), "{err}");
        assert!(err.contains("gst-inspect-1.0 nosuchdec"), "{err}");
        let err = open("/no/matter.mp4", &gst_opts(Some("x ! fakesink")))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a GStreamer element name"), "{err}");
        assert!(install_hint("avdec_h265").contains("gstreamer1.0-libav"));
        assert!(install_hint("nvv4l2decoder").contains("nvidia-l4t-gstreamer"));
        assert!(install_hint("rtspsrc").contains("gstreamer1.0-plugins-good"));
        assert!(install_hint("h265parse").contains("gstreamer1.0-plugins-bad"));
        assert!(element_problem("avdec_h265").is_none());
        assert!(element_problem("nvv4l2decoder").is_some_and(|p| p.contains("nvidia-l4t")));
    }

    #[test]
    fn rtsp_credentials_stay_out_of_the_pipeline_and_the_messages() {
        let t = target("rtsp://cam:p%40ss@10.0.0.5:554/Streaming/101", "x").unwrap();
        let Target::Rtsp { location, user } = &t else {
            panic!("{t:?}")
        };
        assert_eq!(location, "rtsp://10.0.0.5:554/Streaming/101");
        assert_eq!(
            user.as_ref().unwrap(),
            &("cam".to_string(), "p@ss".to_string())
        );
        let line = launch_line(&t, Some("nvv4l2decoder"));
        assert!(
            !line.contains("p@ss") && !line.contains("10.0.0.5"),
            "{line}"
        );
        // nvv4l2decoder is not installed here; its name alone says it needs nvvidconv.
        assert!(
            line.contains("parsebin ! nvv4l2decoder ! nvvidconv ! videoconvert"),
            "{line}"
        );
        assert!(
            line.contains("protocols=tcp") && line.contains("drop=true"),
            "{line}"
        );
        let file = launch_line(&Target::File("/x.mp4".into()), None);
        assert!(
            file.contains("filesrc name=src ! decodebin ! videoconvert"),
            "{file}"
        );
        assert!(file.contains("drop=false"), "{file}");
    }

    #[test]
    fn a_refused_camera_is_reported_and_retried_with_the_redacted_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = gst_opts(None);
        let url = format!("rtsp://cam:s3cret@127.0.0.1:{port}/live");
        let mut src = open(&url, &opts).unwrap();
        for _ in 0..2 {
            match src.next_item().unwrap() {
                Some(SourceItem::Status(StreamStatus::Disconnected { reason, retry_in })) => {
                    assert!(
                        reason.contains(&format!("rtsp://cam:***@127.0.0.1:{port}/live")),
                        "{reason}"
                    );
                    assert!(!reason.contains("s3cret"), "{reason}");
                    assert!(retry_in <= Duration::from_millis(120));
                    eprintln!("{reason}");
                }
                other => panic!("expected Disconnected, got {other:?}"),
            }
        }
        assert!(src.counters().reconnects >= 2);
        opts.stop.store(true, Ordering::Relaxed);
        assert!(src.next_item().unwrap().is_none());
    }
}
