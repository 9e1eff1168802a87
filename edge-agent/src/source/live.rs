//! The one loop every live camera runs (RTSP built in, RTSP through GStreamer, V4L2): it owns
//! what a camera's connection does not — reconnecting with backoff, telling a stall, the status
//! items the pipeline turns into camera health, and gap-free `seq` with `stream_time` that never
//! goes back (the shape of Moonfire NVR's `Streamer::run` / `run_once`). A [`Connection`] only
//! opens and hands over the next picture.
//!
//! Time comes from an injected [`Clock`]: the retry waits and the stall timer run on simulated
//! time in the tests.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::VideoCodec;
use super::live_clock::LiveClock;
use super::{
    CaptureClock, Frame, FrameSource, SharedCounters, SourceCounters, SourceError, SourceItem,
    SourceOptions, StreamStatus,
};
use crate::backoff::{Backoff, Jitter};
use crate::clock::Clock;

/// A decoded picture as a connection hands it over, before the loop times and numbers it.
pub(crate) struct Picture {
    /// Media time (RTP, PTS) on the connection's own clock; `None`: the camera gives none and the
    /// receipt time is used.
    pub media_time: Option<Duration>,
    pub received: SystemTime,
    pub width: u32,
    pub height: u32,
    /// Packed RGB8.
    pub rgb: Vec<u8>,
    /// The encoded access units received up to this picture (decode order), for event clips.
    pub units: Vec<EncodedUnit>,
}

/// One encoded access unit (Annex B) with its own media time (with B-frames, not its picture's).
pub(crate) struct EncodedUnit {
    pub media_time: Option<Duration>,
    pub codec: VideoCodec,
    pub annexb: Vec<u8>,
}

/// Why a connection could not be opened.
pub(crate) enum OpenFailure {
    /// Retrying cannot help (a missing GStreamer element): the camera stops with this error.
    #[cfg_attr(not(feature = "gstreamer"), allow(dead_code))]
    Fatal(SourceError),
    /// The camera may come back: the reason, retried with backoff.
    Retry(String),
}

/// What a live camera implements: open, hand over the next picture, close.
pub(crate) trait Connection: Send {
    /// Connects and starts streaming; returns a description (codec, size, transport) for the
    /// `Connected` status.
    fn open(&mut self) -> Result<String, OpenFailure>;
    /// Waits at most `limit` for the next picture. `Ok(None)`: none yet (the loop tells a stall
    /// and looks at the stop flag; return within about 100 ms where the wait can be cut short);
    /// `Err`: the connection is lost, and why.
    fn next_picture(&mut self, limit: Duration) -> Result<Option<Picture>, String>;
    /// Ends the connection (before a reconnect, and when the source is dropped).
    fn close(&mut self);
}

/// A live camera: a [`Connection`] run by the reconnecting loop.
pub(crate) struct LiveSource<C: Connection> {
    place: String,
    conn: C,
    opts: SourceOptions,
    clock: Arc<dyn Clock>,
    connected: bool,
    backoff: Backoff,
    retry_at: Option<std::time::Instant>,
    /// Items to hand out before pulling more (a stall is followed by its disconnect).
    pending: VecDeque<SourceItem>,
    seq: u64,
    stamps: LiveClock,
    last_picture: std::time::Instant,
    session_frames: u64,
    counters: Arc<SharedCounters>,
}

impl<C: Connection> LiveSource<C> {
    /// `place` names the camera in messages (its URL, password redacted); `counters` are shared
    /// with the connection, which counts what it drops and cannot decode.
    pub(super) fn new(
        place: String,
        conn: C,
        opts: &SourceOptions,
        counters: Arc<SharedCounters>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.monotonic();
        Self {
            place,
            conn,
            opts: opts.clone(),
            connected: false,
            backoff: Backoff::new(
                opts.backoff_min,
                opts.backoff_max,
                Jitter::Symmetric(opts.backoff_jitter),
            ),
            retry_at: None,
            pending: VecDeque::new(),
            seq: 0,
            stamps: LiveClock::new(now),
            last_picture: now,
            session_frames: 0,
            counters,
            clock,
        }
    }

    #[cfg(test)]
    pub(crate) fn connection(&self) -> &C {
        &self.conn
    }

    /// The connection is gone: queues `Disconnected` and schedules the retry.
    fn lost(&mut self, why: String) {
        if self.connected {
            self.conn.close();
            self.connected = false;
        }
        if self.session_frames > 0 {
            self.backoff.reset();
        }
        self.session_frames = 0;
        if let Some(tap) = &self.opts.encoded {
            // clips waiting for this connection's video close now, marked incomplete
            tap.gap();
        }
        let retry_in = self.backoff.next_delay();
        self.retry_at = Some(self.clock.monotonic() + retry_in);
        SharedCounters::add(&self.counters.reconnects);
        let reason = format!("{}: {why}", self.place);
        tracing::warn!(camera = %self.place, %reason, retry_in_ms = retry_in.as_millis() as u64, "stream lost; reconnecting");
        self.pending
            .push_back(SourceItem::Status(StreamStatus::Disconnected {
                reason,
                retry_in,
            }));
    }

    /// Times and numbers a picture, and hands its encoded units to the clip ring.
    fn frame(&mut self, p: Picture) -> Frame {
        let (stream_time, jumped) = self.stamps.stamp(p.media_time, self.clock.monotonic());
        if jumped {
            tracing::warn!(camera = %self.place, "media time jumped; the camera's tracks restart");
        }
        if let Some(tap) = &self.opts.encoded {
            if jumped {
                tap.gap();
            }
            for u in &p.units {
                // on the frames' clock by its distance from the picture's media time
                let (time, capture) = match (u.media_time, p.media_time) {
                    (Some(um), Some(pm)) if um >= pm => {
                        (stream_time + (um - pm), p.received + (um - pm))
                    }
                    (Some(um), Some(pm)) => (
                        stream_time.saturating_sub(pm - um),
                        p.received.checked_sub(pm - um).unwrap_or(p.received),
                    ),
                    _ => (stream_time, p.received),
                };
                tap.push(time, capture, u.codec, &u.annexb, (p.width, p.height));
            }
        }
        let frame = Frame {
            seq: self.seq,
            capture_time: p.received,
            clock: CaptureClock::Receipt,
            stream_time,
            discontinuity: jumped,
            width: p.width,
            height: p.height,
            rgb: p.rgb,
        };
        self.seq += 1;
        self.session_frames += 1;
        SharedCounters::add(&self.counters.frames);
        frame
    }
}

impl<C: Connection> FrameSource for LiveSource<C> {
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        loop {
            if self.opts.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            if let Some(at) = self.retry_at.take()
                && !self.clock.sleep_until(at, &self.opts.stop)
            {
                return Ok(None);
            }
            if !self.connected {
                match self.conn.open() {
                    Ok(description) => {
                        self.connected = true;
                        self.stamps.new_session();
                        self.last_picture = self.clock.monotonic();
                        tracing::info!(camera = %self.place, %description, "stream connected");
                        return Ok(Some(SourceItem::Status(StreamStatus::Connected {
                            description,
                        })));
                    }
                    Err(OpenFailure::Fatal(e)) => return Err(e),
                    Err(OpenFailure::Retry(why)) => {
                        self.lost(why);
                        continue;
                    }
                }
            }
            let waited = self
                .clock
                .monotonic()
                .saturating_duration_since(self.last_picture);
            if waited >= self.opts.stall_timeout {
                SharedCounters::add(&self.counters.stalls);
                tracing::warn!(camera = %self.place, stalled_ms = waited.as_millis() as u64, "no frame from the camera");
                self.pending
                    .push_back(SourceItem::Status(StreamStatus::Stalled { for_: waited }));
                self.lost(format!("no frame for {:.1} s", waited.as_secs_f64()));
                continue;
            }
            match self.conn.next_picture(self.opts.stall_timeout - waited) {
                Ok(Some(p)) => {
                    self.last_picture = self.clock.monotonic();
                    return Ok(Some(SourceItem::Frame(self.frame(p))));
                }
                Ok(None) => {}
                Err(why) => self.lost(why),
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

impl<C: Connection> Drop for LiveSource<C> {
    fn drop(&mut self) {
        if self.connected {
            self.conn.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// What the scripted connection does on each call.
    enum Step {
        Open(Result<&'static str, &'static str>),
        Picture(Option<Duration>),
        /// Nothing for the whole limit: time passes.
        Silent,
        Lost(&'static str),
    }

    struct Scripted {
        steps: VecDeque<Step>,
        clock: Arc<ManualClock>,
        closed: usize,
        /// Simulated time the source spent waiting in `next_picture`.
        waited: Duration,
    }

    impl Connection for Scripted {
        fn open(&mut self) -> Result<String, OpenFailure> {
            match self.steps.pop_front() {
                Some(Step::Open(Ok(d))) => Ok(d.into()),
                Some(Step::Open(Err(e))) => Err(OpenFailure::Retry(e.into())),
                _ => panic!("the script expected no open here"),
            }
        }
        fn next_picture(&mut self, limit: Duration) -> Result<Option<Picture>, String> {
            match self.steps.pop_front() {
                Some(Step::Picture(media_time)) => {
                    self.clock.advance(Duration::from_millis(40));
                    Ok(Some(Picture {
                        media_time,
                        received: SystemTime::UNIX_EPOCH,
                        width: 2,
                        height: 2,
                        rgb: vec![0; 12],
                        units: vec![EncodedUnit {
                            media_time,
                            codec: VideoCodec::H264,
                            annexb: vec![0, 0, 1, 0x65, 1],
                        }],
                    }))
                }
                Some(Step::Silent) => {
                    self.clock.advance(limit);
                    self.waited += limit;
                    Ok(None)
                }
                Some(Step::Lost(why)) => Err(why.into()),
                _ => panic!("the script expected no picture here"),
            }
        }
        fn close(&mut self) {
            self.closed += 1;
        }
    }

    /// What reached the clip ring: units (their stream time) and gaps, in order.
    #[derive(Debug, Default)]
    struct Recorded(std::sync::Mutex<Vec<Option<Duration>>>);

    impl super::super::EncodedSink for Recorded {
        fn push(&self, t: Duration, _: SystemTime, _: VideoCodec, _: &[u8], _: (u32, u32)) {
            self.0.lock().unwrap().push(Some(t));
        }
        fn gap(&self) {
            self.0.lock().unwrap().push(None);
        }
    }

    fn source(steps: Vec<Step>) -> (LiveSource<Scripted>, Arc<ManualClock>, Arc<Recorded>) {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let ring = Arc::new(Recorded::default());
        let conn = Scripted {
            steps: steps.into(),
            clock: clock.clone(),
            closed: 0,
            waited: Duration::ZERO,
        };
        let opts = SourceOptions {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            backoff_jitter: 0.0,
            stall_timeout: Duration::from_secs(10),
            encoded: Some(ring.clone()),
            ..SourceOptions::default()
        };
        let src = LiveSource::new(
            "rtsp://cam/x".into(),
            conn,
            &opts,
            Arc::new(SharedCounters::default()),
            clock.clone(),
        );
        (src, clock, ring)
    }

    /// Everything the source yields until the script runs out, as short words.
    fn drain(src: &mut LiveSource<Scripted>, items: usize) -> (Vec<String>, Vec<Frame>) {
        let mut log = Vec::new();
        let mut frames = Vec::new();
        for _ in 0..items {
            match src.next_item().expect("no error") {
                Some(SourceItem::Frame(f)) => {
                    log.push(format!("frame{}", f.seq));
                    frames.push(f);
                }
                Some(SourceItem::Status(StreamStatus::Connected { description })) => {
                    log.push(format!("up {description}"))
                }
                Some(SourceItem::Status(StreamStatus::Disconnected { reason, retry_in })) => {
                    log.push(format!("down {reason} retry {}s", retry_in.as_secs()))
                }
                Some(SourceItem::Status(StreamStatus::Stalled { for_ })) => {
                    log.push(format!("stalled {}s", for_.as_secs()))
                }
                None => log.push("end".into()),
            }
        }
        (log, frames)
    }

    #[test]
    fn refusals_back_off_then_a_stall_and_a_loss_reconnect_with_seq_and_time_going_on() {
        let (mut src, clock, _) = source(vec![
            Step::Open(Err("connection refused")),
            Step::Open(Err("connection refused")),
            Step::Open(Ok("H.264 2x2")),
            Step::Picture(Some(Duration::from_secs(100))),
            Step::Picture(Some(Duration::from_millis(100_040))),
            Step::Silent,
            Step::Open(Ok("H.264 2x2")),
            Step::Picture(Some(Duration::from_secs(7))),
            Step::Lost("the server ended the stream"),
            Step::Open(Ok("H.264 2x2")),
            Step::Picture(None),
        ]);
        let t0 = clock.monotonic();
        let (log, frames) = drain(&mut src, 12);
        assert_eq!(
            log,
            [
                "down rtsp://cam/x: connection refused retry 1s",
                "down rtsp://cam/x: connection refused retry 2s",
                "up H.264 2x2",
                "frame0",
                "frame1",
                "stalled 10s",
                "down rtsp://cam/x: no frame for 10.0 s retry 1s",
                "up H.264 2x2",
                "frame2",
                "down rtsp://cam/x: the server ended the stream retry 1s",
                "up H.264 2x2",
                "frame3",
            ]
        );
        // 1 + 2 s of backoff, 10 s of silence, 1 + 1 s: 15 s of simulated time, no real sleep
        let simulated = clock.monotonic() - t0;
        assert!(
            (Duration::from_secs(15)..Duration::from_secs(16)).contains(&simulated),
            "{simulated:?}"
        );
        assert_eq!(src.connection().waited, Duration::from_secs(10));
        assert_eq!(
            src.connection().closed,
            2,
            "the stalled and the lost connection"
        );
        // seq without gaps; stream_time forward across both reconnects, the gaps showing
        assert_eq!(
            frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].stream_time > w[0].stream_time)
        );
        assert_eq!(
            frames[1].stream_time - frames[0].stream_time,
            Duration::from_millis(40),
            "media time within a session"
        );
        assert!(frames[2].stream_time - frames[1].stream_time >= Duration::from_secs(10));
        assert!(
            frames.iter().all(|f| !f.discontinuity),
            "a reconnect is a gap, not a jump in media time"
        );
        let c = src.counters();
        assert_eq!((c.frames, c.reconnects, c.stalls), (4, 4, 1), "{c:?}");
    }

    #[test]
    fn a_jump_in_media_time_is_a_discontinuity_and_restarts_the_clip_ring() {
        let (mut src, _clock, ring) = source(vec![
            Step::Open(Ok("H.264 2x2")),
            Step::Picture(Some(Duration::from_secs(50))),
            Step::Picture(Some(Duration::from_millis(50_040))),
            // an NVR looping its recording: back to the start
            Step::Picture(Some(Duration::from_secs(1))),
        ]);
        let (_, frames) = drain(&mut src, 4);
        assert_eq!(
            frames.iter().map(|f| f.discontinuity).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert!(frames[2].stream_time > frames[1].stream_time);
        // each unit at its picture's time, and the ring told of the jump before the third
        let times: Vec<Option<Duration>> = frames.iter().map(|f| Some(f.stream_time)).collect();
        assert_eq!(
            *ring.0.lock().unwrap(),
            [times[0], times[1], None, times[2]]
        );
    }

    #[test]
    fn stop_ends_a_retry_wait_at_once() {
        let (mut src, _clock, _) = source(vec![Step::Open(Err("refused"))]);
        assert!(matches!(
            src.next_item(),
            Ok(Some(SourceItem::Status(StreamStatus::Disconnected { .. })))
        ));
        src.opts.stop.store(true, Ordering::Relaxed);
        assert!(matches!(src.next_item(), Ok(None)));
    }
}
