//! RTSP cameras: the main input in the field. retina (RTSP over TCP interleaved, which survives NAT
//! and lossy 4G links better than UDP) and openh264, driven by a small tokio runtime of the
//! camera's own, as a [`Connection`] in the live-source loop (`live.rs`): the loop reconnects
//! with backoff and jitter after errors and stalls, and reports every change as a
//! [`StreamStatus`] for camera health.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};

use super::VideoCodec;
use super::h264::H264Decoder;
use super::live::{Connection, EncodedUnit, LiveSource, OpenFailure, Picture};
use super::{FrameSource, SharedCounters, SourceError, SourceOptions};

/// The longest one wait for the next picture blocks, so the loop sees the stop flag promptly.
const POLL: Duration = Duration::from_millis(100);

/// Validates the URL; connecting happens on the first `next_item`.
pub(crate) fn open(url: &str, opts: &SourceOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    let conn = RtspConnection::new(url, opts)?;
    let (place, counters) = (conn.place.clone(), conn.counters.clone());
    let clock = Arc::new(crate::clock::SystemClock);
    Ok(Box::new(LiveSource::new(
        place, conn, opts, counters, clock,
    )))
}

/// One RTSP camera: DESCRIBE, SETUP, PLAY, then H.264 pictures.
struct RtspConnection {
    url: url::Url,
    creds: Option<Credentials>,
    place: String,
    /// Bounds each connection step (DESCRIBE, SETUP, PLAY): the stall timeout.
    step: Duration,
    stop: Arc<AtomicBool>,
    clips: bool,
    rt: tokio::runtime::Runtime,
    session: Option<Playing>,
    counters: Arc<SharedCounters>,
    /// Access units received since the last picture, for event clips.
    units: Vec<EncodedUnit>,
}

/// A playing session and its decoder.
struct Playing {
    demuxed: Demuxed,
    decoder: H264Decoder,
}

impl RtspConnection {
    fn new(url: &str, opts: &SourceOptions) -> Result<Self, SourceError> {
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Worker {
                place: place.clone(),
                reason: format!("cannot start the RTSP runtime: {e}"),
            })?;
        Ok(Self {
            url: parsed,
            creds,
            place,
            step: opts.stall_timeout,
            stop: opts.stop.clone(),
            clips: opts.encoded.is_some(),
            rt,
            session: None,
            counters: Arc::new(SharedCounters::default()),
            units: Vec::new(),
        })
    }

    /// Runs `fut` unless it takes longer than `limit` or the source is stopped.
    fn guarded<T>(
        rt: &tokio::runtime::Runtime,
        stop: &AtomicBool,
        what: &str,
        limit: Duration,
        fut: impl Future<Output = T>,
    ) -> Result<T, String> {
        rt.block_on(async {
            let quit = async {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(POLL / 2).await;
                }
            };
            tokio::select! {
                v = fut => Ok(v),
                () = tokio::time::sleep(limit) => Err(format!("{what} timed out after {:.1} s", limit.as_secs_f64())),
                () = quit => Err("stopped".to_string()),
            }
        })
    }
}

impl Connection for RtspConnection {
    fn open(&mut self) -> Result<String, OpenFailure> {
        // retina spawns onto the runtime (the demuxer's reader, a TEARDOWN on drop)
        let _context = self.rt.enter();
        let (rt, stop, step) = (&self.rt, &*self.stop, self.step);
        let retry = OpenFailure::Retry;
        let options = SessionOptions::default()
            .creds(self.creds.clone())
            .user_agent(format!("edge-agent/{}", env!("CARGO_PKG_VERSION")));
        let describe = Session::describe(self.url.clone(), options);
        let mut session = Self::guarded(rt, stop, "DESCRIBE", step, describe)
            .map_err(retry)?
            .map_err(|e| retry(e.to_string()))?;
        let Some(index) = session.streams().iter().position(|s| s.media() == "video") else {
            return Err(retry("the camera offers no video stream".into()));
        };
        let encoding = session.streams()[index]
            .encoding_name()
            .to_ascii_lowercase();
        if encoding != "h264" {
            return Err(retry(format!(
                "the camera sends {encoding}; the built-in decoder reads H.264 only: set decoder = \"gstreamer\" on the camera (an edge-agent built with `--features gstreamer`), or set the camera's stream to H.264"
            )));
        }
        let setup = SetupOptions::default()
            .transport(Transport::Tcp(TcpTransportOptions::default()))
            .frame_format(FrameFormat::SIMPLE);
        Self::guarded(rt, stop, "SETUP", step, session.setup(index, setup))
            .map_err(retry)?
            .map_err(|e| retry(e.to_string()))?;
        let description = match session.streams()[index].parameters() {
            Some(ParametersRef::Video(v)) => {
                let (w, h) = v.pixel_dimensions();
                format!("H.264 {w}x{h} ({}) over RTSP/TCP", v.rfc6381_codec())
            }
            _ => "H.264 over RTSP/TCP (parameters in-band)".to_string(),
        };
        let play = session.play(PlayOptions::default());
        let playing = Self::guarded(rt, stop, "PLAY", step, play)
            .map_err(retry)?
            .map_err(|e| retry(e.to_string()))?;
        let demuxed = playing.demuxed().map_err(|e| retry(e.to_string()))?;
        let decoder = H264Decoder::new().map_err(retry)?;
        self.session = Some(Playing { demuxed, decoder });
        self.units.clear();
        Ok(description)
    }

    fn next_picture(&mut self, limit: Duration) -> Result<Option<Picture>, String> {
        let _context = self.rt.enter();
        let Some(playing) = self.session.as_mut() else {
            return Err("not connected".into());
        };
        let wait = limit.min(POLL);
        let item = match self
            .rt
            .block_on(tokio::time::timeout(wait, playing.demuxed.next()))
        {
            Err(_elapsed) => return Ok(None),
            Ok(item) => item,
        };
        let frame = match item {
            None => return Err("the server ended the stream".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(CodecItem::VideoFrame(f))) => f,
            Some(Ok(_)) => return Ok(None),
        };
        let received = SystemTime::now();
        let ts = frame.timestamp();
        // RTP time (retina extends it past the 32-bit wrap) on the stream's clock
        let clock = u128::from(ts.clock_rate().get().max(1));
        let media = |ticks: i64| {
            u64::try_from(ticks).ok().map(|t| {
                let nanos = u128::from(t) * 1_000_000_000 / clock;
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            })
        };
        if self.clips {
            self.units.push(EncodedUnit {
                media_time: media(ts.timestamp()),
                codec: VideoCodec::H264,
                annexb: frame.data().to_vec(),
            });
        }
        match playing.decoder.push(frame.data(), ts.timestamp(), received) {
            Ok(Some(d)) => Ok(Some(Picture {
                media_time: media(d.pts),
                received: d.tag,
                width: d.width,
                height: d.height,
                rgb: d.rgb,
                units: std::mem::take(&mut self.units),
            })),
            Ok(None) => Ok(None),
            Err(e) => {
                SharedCounters::add(&self.counters.decode_errors);
                tracing::debug!(camera = %self.place, error = %e, "decoder rejected a frame");
                Ok(None)
            }
        }
    }

    fn close(&mut self) {
        // retina sends its TEARDOWN from a task spawned on drop: it needs the runtime's context
        let _context = self.rt.enter();
        self.session = None;
        self.units.clear();
    }
}

impl Drop for RtspConnection {
    fn drop(&mut self) {
        self.close();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceItem, StreamStatus};
    use std::time::Instant;

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%2Bw0rd+x"), "p@ss+w0rd+x");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%+1"), "%+1");
    }

    #[test]
    fn bad_urls_are_refused_at_open_with_the_password_hidden() {
        let opts = SourceOptions::default();
        let err = open("rtsp://admin:hunter2@/x", &opts)
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
        let mut src = open(&url, &opts).unwrap();
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
