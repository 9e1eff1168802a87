//! USB/CSI cameras through V4L2 (nokhwa, behind the `v4l2` cargo feature). The device sits behind
//! a small trait so that pixel conversion, timing, and open/unplug handling are tested with a fake
//! device here, where no V4L2 device exists (stack-facts §3); capture itself needs real hardware.
//! It runs in the live-source loop (`live.rs`): a camera that stops delivering without an error
//! (a hung USB device) is reported as stalled after `stall_timeout` and reopened with backoff,
//! like a silent RTSP stream.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::live::{Connection, OpenFailure, Picture};
use super::{FrameSource, SharedCounters, SourceError, SourceOptions};

/// Pixel layouts a camera may deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelFormat {
    /// Packed 4:2:2, Y0 U Y1 V, limited range (the V4L2 default for webcams).
    Yuyv,
    Mjpeg,
    Rgb24,
}

/// One captured buffer, as the device delivered it.
pub(crate) struct RawFrame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Why a capture gave no buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CaptureFailure {
    /// The device reported an error (unplugged, I/O error).
    Error(String),
    /// No buffer within the time allowed: the device hangs.
    Stalled,
}

/// What the source needs from a camera device.
pub(crate) trait CaptureDevice: Send {
    /// Opens the device and starts streaming; returns a description (format, size, rate).
    fn open(&mut self) -> Result<String, String>;
    /// Waits up to `limit` for the next buffer.
    fn capture(&mut self, limit: Duration) -> Result<RawFrame, CaptureFailure>;
    fn close(&mut self);
}

/// Opens `v4l2:///dev/videoN`.
pub(crate) fn open(url: &str, opts: &SourceOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    let index = device_index(url)?;
    #[cfg(feature = "v4l2")]
    {
        let counters = Arc::new(SharedCounters::default());
        let conn = V4l2Connection {
            device: native::NokhwaDevice::new(index),
            counters: counters.clone(),
            place: url.to_string(),
        };
        let clock = Arc::new(crate::clock::SystemClock);
        Ok(Box::new(super::live::LiveSource::new(
            url.to_string(),
            conn,
            opts,
            counters,
            clock,
        )))
    }
    #[cfg(not(feature = "v4l2"))]
    {
        let _ = (index, opts);
        Err(SourceError::FeatureMissing {
            place: url.to_string(),
            what: "V4L2 camera",
            feature: "v4l2",
        })
    }
}

/// `v4l2:///dev/video2` → 2.
pub(crate) fn device_index(url: &str) -> Result<u32, SourceError> {
    let path = url.get("v4l2://".len()..).unwrap_or("");
    path.strip_prefix("/dev/video")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| SourceError::BadUrl {
            place: url.to_string(),
            reason: "expected v4l2:///dev/videoN (N = device number)".into(),
        })
}

/// A V4L2 camera as a live connection: the live-source loop reopens it with backoff when it
/// fails, is unplugged or hangs.
pub(crate) struct V4l2Connection<D: CaptureDevice> {
    device: D,
    counters: Arc<SharedCounters>,
    place: String,
}

impl<D: CaptureDevice> Connection for V4l2Connection<D> {
    fn open(&mut self) -> Result<String, OpenFailure> {
        self.device
            .open()
            .map_err(|e| OpenFailure::Retry(format!("cannot open the camera: {e}")))
    }

    fn next_picture(&mut self, limit: Duration) -> Result<Option<Picture>, String> {
        let raw = match self.device.capture(limit) {
            Ok(raw) => raw,
            Err(CaptureFailure::Error(e)) => return Err(format!("capture failed: {e}")),
            // the loop tells the stall by its clock
            Err(CaptureFailure::Stalled) => return Ok(None),
        };
        let received = SystemTime::now();
        match to_rgb(&raw) {
            Ok((rgb, width, height)) => Ok(Some(Picture {
                media_time: None,
                received,
                width,
                height,
                rgb,
                units: Vec::new(),
            })),
            Err(e) => {
                SharedCounters::add(&self.counters.decode_errors);
                tracing::debug!(camera = %self.place, error = %e, "dropping a bad camera buffer");
                Ok(None)
            }
        }
    }

    fn close(&mut self) {
        self.device.close();
    }
}

/// Converts a camera buffer to packed RGB8; returns (rgb, width, height).
pub(crate) fn to_rgb(raw: &RawFrame) -> Result<(Vec<u8>, u32, u32), String> {
    let (w, h) = (raw.width as usize, raw.height as usize);
    match raw.format {
        PixelFormat::Rgb24 => {
            if raw.data.len() != w * h * 3 {
                return Err(format!(
                    "RGB24 buffer of {} bytes for {w}x{h} (want {})",
                    raw.data.len(),
                    w * h * 3
                ));
            }
            Ok((raw.data.clone(), raw.width, raw.height))
        }
        PixelFormat::Yuyv => {
            if w % 2 != 0 || raw.data.len() != w * h * 2 {
                return Err(format!(
                    "YUYV buffer of {} bytes for {w}x{h} (want {}, even width)",
                    raw.data.len(),
                    w * h * 2
                ));
            }
            let mut rgb = vec![0u8; w * h * 3];
            for (src, dst) in raw.data.chunks_exact(4).zip(rgb.chunks_exact_mut(6)) {
                let (cb, cr) = (i32::from(src[1]) - 128, i32::from(src[3]) - 128);
                for (k, y) in [src[0], src[2]].into_iter().enumerate() {
                    // BT.601 limited range, 16.16 fixed point.
                    let l = (i32::from(y) - 16) * 76309 + 32768;
                    dst[k * 3] = ((l + 104597 * cr) >> 16).clamp(0, 255) as u8;
                    dst[k * 3 + 1] = ((l - 25675 * cb - 53279 * cr) >> 16).clamp(0, 255) as u8;
                    dst[k * 3 + 2] = ((l + 132201 * cb) >> 16).clamp(0, 255) as u8;
                }
            }
            Ok((rgb, raw.width, raw.height))
        }
        PixelFormat::Mjpeg => {
            let img = crate::imageio::decode_rgb(&raw.data).map_err(|e| format!("MJPEG: {e}"))?;
            let (iw, ih) = img.dimensions();
            Ok((img.into_raw(), iw, ih))
        }
    }
}

#[cfg(feature = "v4l2")]
mod native {
    //! nokhwa's camera is not `Send`, so it lives on its own thread and is driven over channels.

    use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
    use std::time::Duration;

    use nokhwa::Camera;
    use nokhwa::pixel_format::RgbFormat;
    use nokhwa::utils::{CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

    use super::{CaptureDevice, CaptureFailure, PixelFormat, RawFrame};

    /// How long opening the device may take before it counts as hung.
    const OPEN_LIMIT: Duration = Duration::from_secs(20);

    enum Request {
        Open,
        Capture,
        Close,
    }

    enum Reply {
        Opened(Result<String, String>),
        Captured(Result<RawFrame, String>),
    }

    pub(crate) struct NokhwaDevice {
        index: u32,
        requests: Sender<Request>,
        replies: Receiver<Reply>,
    }

    /// Why a request got no reply.
    enum NoReply {
        TimedOut,
        ThreadEnded,
    }

    impl NokhwaDevice {
        pub(super) fn new(index: u32) -> Self {
            let (requests, replies) = spawn(index);
            Self {
                index,
                requests,
                replies,
            }
        }

        /// Waits up to `limit` for the camera thread. A thread that does not answer is stuck in
        /// the driver: it is abandoned (it exits when its call returns, its reply unheard) and a
        /// fresh one serves the next open.
        fn ask(&mut self, req: Request, limit: Duration) -> Result<Reply, NoReply> {
            self.requests.send(req).map_err(|_| NoReply::ThreadEnded)?;
            match self.replies.recv_timeout(limit) {
                Ok(reply) => Ok(reply),
                Err(RecvTimeoutError::Timeout) => {
                    (self.requests, self.replies) = spawn(self.index);
                    Err(NoReply::TimedOut)
                }
                Err(RecvTimeoutError::Disconnected) => Err(NoReply::ThreadEnded),
            }
        }
    }

    fn spawn(index: u32) -> (Sender<Request>, Receiver<Reply>) {
        let (requests, rx) = channel();
        let (tx, replies) = channel();
        std::thread::Builder::new()
            .name(format!("v4l2-video{index}"))
            .spawn(move || serve(index, &rx, &tx))
            .map(drop)
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the V4L2 thread"));
        (requests, replies)
    }

    fn serve(index: u32, rx: &Receiver<Request>, tx: &Sender<Reply>) {
        let mut camera: Option<Camera> = None;
        for req in rx {
            let reply = match req {
                Request::Open => Reply::Opened(open(index).map(|(c, d)| {
                    camera = Some(c);
                    d
                })),
                Request::Capture => Reply::Captured(match camera.as_mut() {
                    Some(c) => capture(c),
                    None => Err("the camera is not open".into()),
                }),
                Request::Close => {
                    if let Some(mut c) = camera.take() {
                        let _ = c.stop_stream();
                    }
                    continue;
                }
            };
            if tx.send(reply).is_err() {
                return;
            }
        }
    }

    fn open(index: u32) -> Result<(Camera, String), String> {
        let requested =
            RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
        let mut camera =
            Camera::new(CameraIndex::Index(index), requested).map_err(|e| e.to_string())?;
        camera.open_stream().map_err(|e| e.to_string())?;
        let f = camera.camera_format();
        let description = format!(
            "{} {}x{} at {} fps (V4L2)",
            f.format(),
            f.resolution().width(),
            f.resolution().height(),
            f.frame_rate()
        );
        Ok((camera, description))
    }

    fn capture(camera: &mut Camera) -> Result<RawFrame, String> {
        let buffer = camera.frame().map_err(|e| e.to_string())?;
        let format = match buffer.source_frame_format() {
            FrameFormat::YUYV => PixelFormat::Yuyv,
            FrameFormat::MJPEG => PixelFormat::Mjpeg,
            FrameFormat::RAWRGB => PixelFormat::Rgb24,
            other => return Err(format!("unsupported pixel format {other}")),
        };
        let res = buffer.resolution();
        Ok(RawFrame {
            format,
            width: res.width(),
            height: res.height(),
            data: buffer.buffer().to_vec(),
        })
    }

    impl CaptureDevice for NokhwaDevice {
        fn open(&mut self) -> Result<String, String> {
            match self.ask(Request::Open, OPEN_LIMIT) {
                Ok(Reply::Opened(r)) => r,
                Err(NoReply::TimedOut) => Err(format!(
                    "opening took longer than {} s",
                    OPEN_LIMIT.as_secs()
                )),
                _ => Err("the V4L2 thread ended".into()),
            }
        }

        fn capture(&mut self, limit: Duration) -> Result<RawFrame, CaptureFailure> {
            match self.ask(Request::Capture, limit) {
                Ok(Reply::Captured(r)) => r.map_err(CaptureFailure::Error),
                Err(NoReply::TimedOut) => Err(CaptureFailure::Stalled),
                _ => Err(CaptureFailure::Error("the V4L2 thread ended".into())),
            }
        }

        fn close(&mut self) {
            let _ = self.requests.send(Request::Close);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    use crate::clock::ManualClock;
    use crate::source::live::LiveSource;
    use crate::source::{SourceItem, StreamStatus};

    /// Scripted device: each open/capture pops the next planned outcome. A hang takes the whole
    /// time allowed, on the test's clock.
    struct FakeDevice {
        opens: VecDeque<Result<String, String>>,
        captures: VecDeque<Result<RawFrame, CaptureFailure>>,
        closed: usize,
        clock: Arc<ManualClock>,
    }

    fn fake(
        opens: Vec<Result<String, String>>,
        captures: Vec<Result<RawFrame, CaptureFailure>>,
    ) -> FakeDevice {
        FakeDevice {
            opens: opens.into(),
            captures: captures.into(),
            closed: 0,
            clock: Arc::new(ManualClock::new(chrono::Utc::now())),
        }
    }

    /// The device in the live-source loop, on its simulated clock.
    fn live(
        place: &str,
        device: FakeDevice,
        opts: &SourceOptions,
    ) -> LiveSource<V4l2Connection<FakeDevice>> {
        let counters = Arc::new(SharedCounters::default());
        let clock = device.clock.clone();
        let conn = V4l2Connection {
            device,
            counters: counters.clone(),
            place: place.into(),
        };
        LiveSource::new(place.into(), conn, opts, counters, clock)
    }

    impl CaptureDevice for FakeDevice {
        fn open(&mut self) -> Result<String, String> {
            self.opens
                .pop_front()
                .unwrap_or(Err("no such device".into()))
        }
        fn capture(&mut self, limit: Duration) -> Result<RawFrame, CaptureFailure> {
            let next = self
                .captures
                .pop_front()
                .unwrap_or(Err(CaptureFailure::Error("unplugged".into())));
            if matches!(next, Err(CaptureFailure::Stalled)) {
                self.clock.advance(limit);
            }
            next
        }
        fn close(&mut self) {
            self.closed += 1;
        }
    }

    fn yuyv(w: u32, h: u32, y: u8, u: u8, v: u8) -> RawFrame {
        let data = [y, u, y, v].repeat((w * h / 2) as usize);
        RawFrame {
            format: PixelFormat::Yuyv,
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn yuyv_mjpeg_and_rgb_convert_to_rgb() {
        // Limited-range white, black and pure red (BT.601: Y=81, Cb=90, Cr=240).
        assert_eq!(to_rgb(&yuyv(2, 1, 235, 128, 128)).unwrap().0, [255; 6]);
        assert_eq!(to_rgb(&yuyv(2, 1, 16, 128, 128)).unwrap().0, [0; 6]);
        let red = to_rgb(&yuyv(2, 1, 81, 90, 240)).unwrap().0;
        assert!(red[0] > 250 && red[1] < 5 && red[2] < 5, "{red:?}");
        let mut jpeg = Vec::new();
        image::RgbImage::from_pixel(16, 8, image::Rgb([200, 40, 40]))
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let raw = RawFrame {
            format: PixelFormat::Mjpeg,
            width: 16,
            height: 8,
            data: jpeg,
        };
        let (rgb, w, h) = to_rgb(&raw).unwrap();
        assert_eq!((w, h, rgb.len()), (16, 8, 16 * 8 * 3));
        assert!((i32::from(rgb[0]) - 200).abs() < 8, "{:?}", &rgb[..3]);
        let bad = RawFrame {
            format: PixelFormat::Rgb24,
            width: 4,
            height: 4,
            data: vec![0; 10],
        };
        assert!(to_rgb(&bad).unwrap_err().contains("RGB24"));
        assert!(to_rgb(&yuyv(3, 1, 0, 0, 0)).is_err());
    }

    #[test]
    fn open_failures_retry_then_frames_flow_then_unplug_reconnects() {
        let opts = SourceOptions {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(20),
            ..SourceOptions::default()
        };
        let device = fake(
            vec![
                Err("Permission denied".into()),
                Ok("YUYV 4x2 at 30 fps".into()),
                Ok("YUYV 4x2 at 30 fps".into()),
            ],
            vec![
                Ok(yuyv(4, 2, 235, 128, 128)),
                Ok(RawFrame {
                    format: PixelFormat::Mjpeg,
                    width: 4,
                    height: 2,
                    data: b"garbage".to_vec(),
                }),
                Ok(yuyv(4, 2, 16, 128, 128)),
                Err(CaptureFailure::Error("No such device (os error 19)".into())),
                Ok(yuyv(4, 2, 126, 128, 128)),
            ],
        );
        let mut src = live("v4l2:///dev/video0", device, &opts);
        let mut log = Vec::new();
        let mut frames = Vec::new();
        while frames.len() < 3 {
            match src.next_item().unwrap().unwrap() {
                SourceItem::Frame(f) => {
                    log.push("frame");
                    frames.push(f);
                }
                SourceItem::Status(StreamStatus::Connected { .. }) => log.push("connected"),
                SourceItem::Status(StreamStatus::Disconnected { reason, .. }) => {
                    assert!(reason.starts_with("v4l2:///dev/video0: "), "{reason}");
                    log.push("disconnected");
                }
                SourceItem::Status(s) => panic!("unexpected {s:?}"),
            }
        }
        assert_eq!(
            log,
            [
                "disconnected",
                "connected",
                "frame",
                "frame",
                "disconnected",
                "connected",
                "frame"
            ]
        );
        assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(frames[0].rgb[0], 255);
        assert_eq!(frames[1].rgb[0], 0);
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].stream_time > w[0].stream_time)
        );
        let c = src.counters();
        assert_eq!((c.frames, c.decode_errors, c.reconnects), (3, 1, 2));
        assert_eq!(src.connection().device.closed, 1);
    }

    #[test]
    fn a_camera_that_hangs_is_reported_stalled_then_reopened() {
        let opts = SourceOptions {
            backoff_min: Duration::from_millis(5),
            backoff_max: Duration::from_millis(10),
            ..SourceOptions::default()
        };
        let device = fake(
            vec![Ok("YUYV 4x2".into()), Ok("YUYV 4x2".into())],
            vec![
                Ok(yuyv(4, 2, 235, 128, 128)),
                Err(CaptureFailure::Stalled),
                Ok(yuyv(4, 2, 16, 128, 128)),
            ],
        );
        let mut src = live("v4l2:///dev/video1", device, &opts);
        let mut log = Vec::new();
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            match src.next_item().unwrap().unwrap() {
                SourceItem::Frame(f) => {
                    log.push("frame".to_string());
                    seqs.push(f.seq);
                }
                SourceItem::Status(StreamStatus::Connected { .. }) => log.push("connected".into()),
                SourceItem::Status(StreamStatus::Stalled { for_ }) => {
                    assert_eq!(for_, opts.stall_timeout);
                    log.push("stalled".into());
                }
                SourceItem::Status(StreamStatus::Disconnected { reason, .. }) => {
                    log.push(reason);
                }
            }
        }
        let stall_s = opts.stall_timeout.as_secs_f64();
        assert_eq!(
            log,
            [
                "connected".to_string(),
                "frame".into(),
                "stalled".into(),
                format!("v4l2:///dev/video1: no frame for {stall_s:.1} s"),
                "connected".into(),
                "frame".into(),
            ]
        );
        assert_eq!(seqs, [0, 1], "seq continues across the reopen");
        let c = src.counters();
        assert_eq!((c.stalls, c.reconnects), (1, 1));
        assert_eq!(
            src.connection().device.closed,
            1,
            "the hung device was closed"
        );
    }

    #[test]
    fn device_urls_parse_or_explain() {
        assert_eq!(device_index("v4l2:///dev/video2").unwrap(), 2);
        let err = device_index("v4l2://camera").unwrap_err().to_string();
        assert!(err.contains("v4l2:///dev/videoN"), "{err}");
        #[cfg(not(feature = "v4l2"))]
        {
            let err = open("v4l2:///dev/video0", &SourceOptions::default())
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("--features v4l2"), "{err}");
        }
    }
}
