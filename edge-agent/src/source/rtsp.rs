//! RTSP cameras: the main input in the field. retina (RTSP over TCP interleaved, which survives NAT
//! and lossy 4G links better than UDP) and openh264 run on a capture thread with its own small
//! tokio runtime; the thread never gives up — it reconnects with backoff and jitter after errors
//! and stalls, and reports every change as a [`StreamStatus`] for camera health.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};

use super::h264::{Decoded, H264Decoder};
use super::live_clock::LiveClock;
use super::{
    Frame, FrameSource, SharedCounters, SourceCounters, SourceError, SourceItem, SourceOptions,
    StreamStatus,
};
use crate::backoff::{Backoff, Jitter};

/// Items buffered between the capture thread and the pipeline; beyond this, frames are dropped
/// (and counted) rather than letting a live view fall behind.
const QUEUE: usize = 16;
/// How often blocked waits look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Handle on the capture thread of one RTSP camera.
pub(crate) struct RtspSource {
    place: String,
    rx: Receiver<SourceItem>,
    counters: Arc<SharedCounters>,
    stop: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    seq: u64,
}

impl RtspSource {
    /// Validates the URL and starts the capture thread; connecting happens there.
    pub fn open(url: &str, opts: &SourceOptions) -> Result<Self, SourceError> {
        let place = super::redact_url(url);
        let bad = |reason: String| SourceError::BadUrl {
            place: place.clone(),
            reason,
        };
        let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
        if parsed.scheme() != "rtsp" {
            return Err(bad("only rtsp:// is supported".into()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("the URL has no host".into()));
        }
        // retina takes credentials separately and refuses them inside the URL.
        let creds = if parsed.username().is_empty() {
            None
        } else {
            let c = Credentials {
                username: percent_decode(parsed.username()),
                password: percent_decode(parsed.password().unwrap_or("")),
            };
            parsed
                .set_username("")
                .and_then(|()| parsed.set_password(None))
                .map_err(|()| bad("cannot separate the credentials from the URL".into()))?;
            Some(c)
        };
        let (tx, rx) = sync_channel(QUEUE);
        let counters = Arc::new(SharedCounters::default());
        let quit = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            url: parsed,
            creds,
            place: place.clone(),
            opts: opts.clone(),
            tx,
            counters: counters.clone(),
            quit: quit.clone(),
            clock: LiveClock::new(Instant::now()),
            unsent_discontinuity: false,
        };
        let handle = std::thread::Builder::new()
            .name("rtsp-capture".into())
            .spawn(move || worker.run())
            .map_err(|e| SourceError::Worker {
                place: place.clone(),
                reason: format!("cannot start the capture thread: {e}"),
            })?;
        Ok(Self {
            place,
            rx,
            counters,
            stop: opts.stop.clone(),
            quit,
            worker: Some(handle),
            seq: 0,
        })
    }
}

impl FrameSource for RtspSource {
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match self.rx.recv_timeout(POLL * 2) {
                Ok(SourceItem::Frame(mut f)) => {
                    // Numbered here, after any drops in the queue, so the sequence has no gaps.
                    f.seq = self.seq;
                    self.seq += 1;
                    SharedCounters::add(&self.counters.frames);
                    return Ok(Some(SourceItem::Frame(f)));
                }
                Ok(status) => return Ok(Some(status)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    return Err(SourceError::Worker {
                        place: self.place.clone(),
                        reason: "it ended (see the log for a panic); reopen the source".into(),
                    });
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.place.clone()
    }

    fn counters(&self) -> SourceCounters {
        self.counters.snapshot()
    }
}

impl Drop for RtspSource {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.take() {
            // Every wait in the worker polls `quit`, so this returns within about POLL.
            let _ = h.join();
        }
    }
}

/// Undoes URL percent-encoding of user names and passwords (`p%40ss` → `p@ss`).
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a session ended.
enum End {
    Failed(String),
    Stalled(Duration),
    Quit,
}

struct Worker {
    url: url::Url,
    creds: Option<Credentials>,
    place: String,
    opts: SourceOptions,
    tx: SyncSender<SourceItem>,
    counters: Arc<SharedCounters>,
    quit: Arc<AtomicBool>,
    /// stream_time from RTP time: across reconnects and jumps (`live_clock`).
    clock: LiveClock,
    /// A jump whose frame was dropped (queue full): the next frame carries it.
    unsent_discontinuity: bool,
}

impl Worker {
    fn quitting(&self) -> bool {
        self.quit.load(Ordering::Relaxed) || self.opts.stop.load(Ordering::Relaxed)
    }

    fn run(mut self) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(camera = %self.place, error = %e, "cannot start the RTSP runtime");
                return;
            }
        };
        rt.block_on(self.reconnect_loop());
    }

    async fn reconnect_loop(&mut self) {
        let mut backoff = Backoff::new(
            self.opts.backoff_min,
            self.opts.backoff_max,
            Jitter::Symmetric(self.opts.backoff_jitter),
        );
        loop {
            let mut frames = 0u64;
            let end = self.session(&mut frames).await;
            if frames > 0 {
                backoff.reset();
            }
            if let Some(tap) = &self.opts.encoded {
                // clips waiting for this session's video close now, marked incomplete
                tap.gap();
            }
            let reason = match end {
                End::Quit => return,
                End::Failed(reason) => reason,
                End::Stalled(for_) => {
                    SharedCounters::add(&self.counters.stalls);
                    if !self.send_status(StreamStatus::Stalled { for_ }).await {
                        return;
                    }
                    format!("no frame for {:.1} s", for_.as_secs_f64())
                }
            };
            if self.quitting() {
                return;
            }
            let retry_in = backoff.next_delay();
            SharedCounters::add(&self.counters.reconnects);
            let reason = format!("{}: {reason}", self.place);
            tracing::warn!(camera = %self.place, %reason, retry_in_ms = retry_in.as_millis() as u64, "RTSP stream lost; reconnecting");
            if !self
                .send_status(StreamStatus::Disconnected { reason, retry_in })
                .await
            {
                return;
            }
            let until = Instant::now() + retry_in;
            while Instant::now() < until {
                if self.quitting() {
                    return;
                }
                tokio::time::sleep(POLL.min(until - Instant::now())).await;
            }
        }
    }

    /// Runs `fut` unless it takes longer than `limit` or the source is stopped.
    async fn guarded<T>(
        &self,
        what: &str,
        limit: Duration,
        fut: impl Future<Output = T>,
    ) -> Result<T, End> {
        let quit = async {
            while !self.quitting() {
                tokio::time::sleep(POLL).await;
            }
        };
        tokio::select! {
            v = fut => Ok(v),
            () = tokio::time::sleep(limit) => Err(End::Failed(format!("{what} timed out after {:.1} s", limit.as_secs_f64()))),
            () = quit => Err(End::Quit),
        }
    }

    /// One connection: DESCRIBE, SETUP, PLAY, then frames until an error, a stall or stop.
    async fn session(&mut self, frames: &mut u64) -> End {
        match self.session_inner(frames).await {
            Ok(end) | Err(end) => end,
        }
    }

    async fn session_inner(&mut self, frames: &mut u64) -> Result<End, End> {
        let step = self.opts.stall_timeout;
        let options = SessionOptions::default()
            .creds(self.creds.clone())
            .user_agent(format!("edge-agent/{}", env!("CARGO_PKG_VERSION")));
        let mut session = self
            .guarded(
                "DESCRIBE",
                step,
                Session::describe(self.url.clone(), options),
            )
            .await?
            .map_err(|e| End::Failed(e.to_string()))?;
        let Some(index) = session.streams().iter().position(|s| s.media() == "video") else {
            return Err(End::Failed("the camera offers no video stream".into()));
        };
        let encoding = session.streams()[index]
            .encoding_name()
            .to_ascii_lowercase();
        if encoding != "h264" {
            return Err(End::Failed(format!(
                "the camera sends {encoding}; the built-in decoder reads H.264 only: set decoder = \"gstreamer\" on the camera (an edge-agent built with `--features gstreamer`), or set the camera's stream to H.264"
            )));
        }
        let setup = SetupOptions::default()
            .transport(Transport::Tcp(TcpTransportOptions::default()))
            .frame_format(FrameFormat::SIMPLE);
        self.guarded("SETUP", step, session.setup(index, setup))
            .await?
            .map_err(|e| End::Failed(e.to_string()))?;
        let description = match session.streams()[index].parameters() {
            Some(ParametersRef::Video(v)) => {
                let (w, h) = v.pixel_dimensions();
                format!("H.264 {w}x{h} ({}) over RTSP/TCP", v.rfc6381_codec())
            }
            _ => "H.264 over RTSP/TCP (parameters in-band)".to_string(),
        };
        let playing = self
            .guarded("PLAY", step, session.play(PlayOptions::default()))
            .await?
            .map_err(|e| End::Failed(e.to_string()))?;
        let mut demuxed = playing.demuxed().map_err(|e| End::Failed(e.to_string()))?;
        tracing::info!(camera = %self.place, %description, "RTSP connected");
        if !self
            .send_status(StreamStatus::Connected { description })
            .await
        {
            return Err(End::Quit);
        }
        let mut decoder = H264Decoder::new().map_err(End::Failed)?;
        self.clock.new_session();
        let mut last_frame = Instant::now();
        loop {
            let waited = last_frame.elapsed();
            if waited >= self.opts.stall_timeout {
                return Err(End::Stalled(waited));
            }
            let limit = self.opts.stall_timeout - waited;
            let item = match self.guarded("", limit, demuxed.next()).await {
                Ok(item) => item,
                Err(End::Failed(_)) => return Err(End::Stalled(last_frame.elapsed())),
                Err(other) => return Err(other),
            };
            let frame = match item {
                None => return Ok(End::Failed("the server ended the stream".into())),
                Some(Err(e)) => return Ok(End::Failed(e.to_string())),
                Some(Ok(CodecItem::VideoFrame(f))) => f,
                Some(Ok(_)) => continue,
            };
            let received = std::time::SystemTime::now();
            last_frame = Instant::now();
            let ts = frame.timestamp();
            let clock = ts.clock_rate().get();
            match decoder.push(frame.data(), ts.timestamp(), received) {
                Ok(Some(d)) => {
                    *frames += 1;
                    if !self.emit(d, clock, frame.data()) {
                        return Err(End::Quit);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    SharedCounters::add(&self.counters.decode_errors);
                    tracing::debug!(camera = %self.place, error = %e, "decoder rejected a frame");
                }
            }
        }
    }

    /// Times a picture and queues it (and its access unit `au` into the clip ring, also when the
    /// queue is full); false if the consumer is gone.
    fn emit(&mut self, d: Decoded, clock: u32, au: &[u8]) -> bool {
        // RTP time of the picture (retina extends it past the 32-bit wrap).
        let media = u64::try_from(d.pts).ok().map(|ticks| {
            let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(clock.max(1));
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        });
        let (stream_time, jumped) = self.clock.stamp(media, Instant::now());
        if jumped {
            tracing::warn!(camera = %self.place, "RTP time jumped; the camera's tracks restart");
        }
        if let Some(tap) = &self.opts.encoded {
            if jumped {
                tap.gap();
            }
            tap.push(stream_time, d.tag, au, (d.width, d.height));
        }
        let discontinuity = jumped || std::mem::take(&mut self.unsent_discontinuity);
        let frame = Frame {
            seq: 0,
            capture_time: d.tag,
            clock: super::CaptureClock::Receipt,
            stream_time,
            discontinuity,
            width: d.width,
            height: d.height,
            rgb: d.rgb,
        };
        match self.tx.try_send(SourceItem::Frame(frame)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                SharedCounters::add(&self.counters.dropped);
                self.unsent_discontinuity |= discontinuity;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Status changes are never dropped: waits for room (polling stop). False if the consumer is gone.
    async fn send_status(&self, status: StreamStatus) -> bool {
        let mut item = SourceItem::Status(status);
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if self.quitting() {
                        return false;
                    }
                    item = back;
                    tokio::time::sleep(POLL / 5).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%2Bw0rd+x"), "p@ss+w0rd+x");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%+1"), "%+1");
    }

    #[test]
    fn bad_urls_are_refused_at_open_with_the_password_hidden() {
        let opts = SourceOptions::default();
        let err = RtspSource::open("rtsp://admin:hunter2@/x", &opts)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("rtsp://"), "{err}");
    }

    #[test]
    fn refused_connection_is_reported_and_retried_with_the_redacted_url() {
        // A port nobody listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = SourceOptions {
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(100),
            ..SourceOptions::default()
        };
        let url = format!("rtsp://cam:s3cret@127.0.0.1:{port}/live");
        let mut src = RtspSource::open(&url, &opts).unwrap();
        assert_eq!(
            src.describe(),
            format!("rtsp://cam:***@127.0.0.1:{port}/live")
        );
        for _ in 0..2 {
            match src.next_item().unwrap() {
                Some(SourceItem::Status(StreamStatus::Disconnected { reason, retry_in })) => {
                    assert!(reason.contains(&src.describe()), "{reason}");
                    assert!(!reason.contains("s3cret"), "{reason}");
                    assert!(reason.to_lowercase().contains("refused"), "{reason}");
                    assert!(retry_in <= Duration::from_millis(100));
                }
                other => panic!("expected Disconnected, got {other:?}"),
            }
        }
        assert!(src.counters().reconnects >= 2);
        opts.stop.store(true, Ordering::Relaxed);
        let t = Instant::now();
        assert!(src.next_item().unwrap().is_none());
        drop(src);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "stop took {:?}",
            t.elapsed()
        );
    }
}
