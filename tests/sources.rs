//! Video sources against real inputs: the three clips in the shared footage (exact frame counts,
//! sizes, timing, pixels against ffmpeg's frames), a truncated copy, the extracted-frames folder,
//! and a real RTSP server on 127.0.0.1 that is killed mid-stream and restarted.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::frames::{connect_and_stream, next_within, read_all, survive_outage, survive_stall};
use edge_agent::source::{self, SourceItem, SourceOptions, StreamStatus};

fn footage(rel: &str) -> PathBuf {
    let p = common::shared_dir().join("footage").join(rel);
    assert!(
        p.exists(),
        "missing footage {}; the shared mirror is incomplete",
        p.display()
    );
    p
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum::<u64>() as f64
        / a.len() as f64
}

#[test]
fn mp4_clips_decode_every_frame_in_presentation_order() {
    // (clip, frames, width, height, container duration in s)
    let clips = [
        ("vn_citycam_haiphong.mp4", 142, 1006, 720, 7.0667),
        ("vn_citycam_02.mp4", 205, 1018, 720, 10.2667),
        ("vn_citycam_haiphong_cbp640_10fps.mp4", 71, 640, 458, 7.1),
    ];
    for (name, count, w, h, duration) in clips {
        let path = footage(&format!("video/{name}"));
        let mut src = source::open(path.to_str().unwrap(), &SourceOptions::default()).unwrap();
        let (description, frames) = read_all(src.as_mut());
        assert!(
            description.contains(&format!("H.264 {w}x{h}")),
            "{name}: {description}"
        );
        assert_eq!(frames.len(), count, "{name}: frame count");
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.seq, i as u64, "{name}");
            assert_eq!((f.width, f.height), (w, h), "{name} frame {i}");
            assert_eq!(f.rgb.len(), (w * h * 3) as usize);
        }
        assert_eq!(frames[0].stream_time, Duration::ZERO, "{name}");
        for pair in frames.windows(2) {
            assert!(
                pair[1].stream_time > pair[0].stream_time,
                "{name}: stream_time not increasing at seq {}: {:?} then {:?}",
                pair[1].seq,
                pair[0].stream_time,
                pair[1].stream_time
            );
            assert_eq!(
                pair[1]
                    .capture_time
                    .duration_since(pair[0].capture_time)
                    .unwrap(),
                pair[1].stream_time - pair[0].stream_time
            );
        }
        // The last frame starts one frame interval before the end of the track.
        let last = frames.last().unwrap().stream_time.as_secs_f64();
        let interval = duration / count as f64;
        assert!(
            (last + interval - duration).abs() < 1.5 * interval,
            "{name}: last frame at {last:.3} s, track lasts {duration} s"
        );
        let c = src.counters();
        assert_eq!((c.frames, c.decode_errors), (count as u64, 0), "{name}");
    }
}

#[test]
fn decoded_pixels_match_ffmpeg_frames() {
    // frame_NNNN.jpg = ffmpeg -vf fps=10 of the first clip, frame_0001 at t=0.
    let path = footage("video/vn_citycam_haiphong.mp4");
    let mut src = source::open(path.to_str().unwrap(), &SourceOptions::default()).unwrap();
    let (_, frames) = read_all(src.as_mut());
    for n in [1usize, 21, 40] {
        let jpg = footage(&format!(
            "frames/vn_citycam_haiphong_10fps/frame_{n:04}.jpg"
        ));
        let want = edge_agent::imageio::read_rgb(&jpg).unwrap();
        assert_eq!(want.dimensions(), (1006, 720));
        let t = (n - 1) as f64 / 10.0;
        // fps=10 picks the frame nearest each 0.1 s slot; compare the candidates around it.
        let best = frames
            .iter()
            .filter(|f| (f.stream_time.as_secs_f64() - t).abs() <= 0.11)
            .map(|f| mean_abs_diff(&f.rgb, want.as_raw()))
            .fold(f64::INFINITY, f64::min);
        eprintln!("frame_{n:04} (t={t:.1} s): mean abs diff {best:.2}");
        assert!(best < 4.0, "frame_{n:04}: mean abs diff {best:.2}");
    }
}

#[test]
fn truncated_mp4_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "vn_citycam_haiphong.mp4",
        "vn_citycam_haiphong_cbp640_10fps.mp4",
    ] {
        let bytes = std::fs::read(footage(&format!("video/{name}"))).unwrap();
        let cut = dir.path().join(format!("cut_{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let place = cut.display().to_string();
        let err = match source::open(&place, &SourceOptions::default()) {
            Err(e) => e.to_string(),
            Ok(mut src) => loop {
                match src.next_item() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("{name}: a truncated file must not end cleanly"),
                    Err(e) => break e.to_string(),
                }
            },
        };
        eprintln!("{err}");
        assert!(err.contains(&place), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }
}

#[test]
fn h265_mp4_with_the_builtin_decoder_says_to_use_gstreamer() {
    // Both mp4 tags of H.265: `hev1` (ffmpeg's default) and `hvc1` (Apple, many NVR exports),
    // which the mp4 reader does not know at all.
    let dir = tempfile::tempdir().unwrap();
    for tag in ["hev1", "hvc1"] {
        let out = dir.path().join(format!("{tag}.mp4"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(footage("video/vn_citycam_haiphong.mp4"))
            .args([
                "-an",
                "-frames:v",
                "5",
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
            ])
            .args(["-x265-params", "log-level=error", "-tag:v", tag])
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}); scripts/test.sh installs it"));
        assert!(status.success(), "ffmpeg could not make the {tag} clip");
        let place = out.display().to_string();
        let err = source::open(&place, &SourceOptions::default())
            .err()
            .expect("the built-in decoder must refuse H.265")
            .to_string();
        eprintln!("{err}");
        assert!(err.contains(&place), "{err}");
        assert!(err.contains("H.265"), "{err}");
        assert!(err.contains("decoder = \"gstreamer\""), "{err}");
    }
}

#[test]
fn realtime_files_are_paced_and_stop_promptly() {
    let path = footage("video/vn_citycam_haiphong_cbp640_10fps.mp4");
    let opts = SourceOptions {
        realtime: true,
        ..SourceOptions::default()
    };
    let mut src = source::open(path.to_str().unwrap(), &opts).unwrap();
    let t = Instant::now();
    let mut n = 0;
    while n < 6 {
        if let Some(SourceItem::Frame(_)) = src.next_item().unwrap() {
            n += 1;
        }
    }
    // Frames 0..5 of a 10 fps clip: the sixth is due at 0.5 s.
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(450), "not paced: {took:?}");
    opts.stop.store(true, Ordering::Relaxed);
    let t = Instant::now();
    assert!(src.next_item().unwrap().is_none());
    assert!(t.elapsed() < Duration::from_millis(200));
}

#[test]
fn image_folder_plays_the_extracted_frames() {
    let dir = footage("frames/vn_citycam_haiphong_10fps");
    let count = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            p.extension().is_some_and(|x| x == "jpg")
        })
        .count();
    let mut src = source::open(dir.to_str().unwrap(), &SourceOptions::default()).unwrap();
    let (description, frames) = read_all(src.as_mut());
    assert!(
        description.starts_with(&format!("{count} images")),
        "{description}"
    );
    assert_eq!(frames.len(), count);
    assert_eq!((frames[0].width, frames[0].height), (1006, 720));
    assert_eq!(frames[10].stream_time, Duration::from_secs(1));
}

// ---- RTSP against a real server on 127.0.0.1 ----

fn rtsp_opts() -> SourceOptions {
    SourceOptions {
        backoff_min: Duration::from_millis(250),
        backoff_max: Duration::from_secs(1),
        stall_timeout: Duration::from_secs(3),
        ..SourceOptions::default()
    }
}

/// Next item, failing the test if none comes within `limit`.
fn cbp_clip() -> PathBuf {
    footage("video/vn_citycam_haiphong_cbp640_10fps.mp4")
}

#[test]
fn rtsp_survives_the_server_being_killed_and_restarted() {
    let mut server = common::rtsp::RtspServer::start(&cbp_clip(), "/cam");
    let mut src = source::open(&server.url(), &rtsp_opts()).unwrap();
    let limit = Duration::from_secs(10);
    let (description, before) = connect_and_stream(src.as_mut(), limit, 10);
    assert!(description.contains("H.264 640x458"), "{description}");
    assert_eq!((before[0].width, before[0].height), (640, 458));
    let last = before.last().unwrap().clone();
    let reconnected = survive_outage(
        src.as_mut(),
        &mut server,
        last,
        limit,
        Duration::from_secs(2),
    );
    assert!(
        reconnected < Duration::from_secs(5),
        "reconnect took {reconnected:?}"
    );
}

#[test]
fn rtsp_hung_server_is_reported_stalled_and_recovered() {
    let server = common::rtsp::RtspServer::start(&cbp_clip(), "/cam");
    let opts = SourceOptions {
        stall_timeout: Duration::from_millis(1500),
        ..rtsp_opts()
    };
    let mut src = source::open(&server.url(), &opts).unwrap();
    let limit = Duration::from_secs(10);
    survive_stall(src.as_mut(), &server, limit);
}

#[test]
fn rtsp_unknown_mount_is_reported_and_retried() {
    let server = common::rtsp::RtspServer::start(&cbp_clip(), "/cam");
    let url = format!("rtsp://viewer:pa55@127.0.0.1:{}/nope", server.port);
    let opts = rtsp_opts();
    let mut src = source::open(&url, &opts).unwrap();
    let redacted = format!("rtsp://viewer:***@127.0.0.1:{}/nope", server.port);
    for _ in 0..2 {
        match next_within(src.as_mut(), Duration::from_secs(10), "Disconnected") {
            SourceItem::Status(StreamStatus::Disconnected { reason, retry_in }) => {
                assert!(reason.starts_with(&redacted), "{reason}");
                assert!(reason.contains("404"), "{reason}");
                assert!(!reason.contains("pa55"));
                assert!(retry_in <= Duration::from_millis(1200));
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    assert_eq!(src.describe(), redacted);
    opts.stop.store(true, Ordering::Relaxed);
    assert!(src.next_item().unwrap().is_none());
}

/// This thread's CPU time (Linux schedstat), so the benchmark means something on a shared machine.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Decode speed of each clip, single thread: wall clock and this thread's CPU time. Run with
/// `cargo test --release --test sources -- --ignored --nocapture decode_speed`.
#[test]
#[ignore = "benchmark; run in release"]
fn decode_speed() {
    for name in [
        "vn_citycam_haiphong.mp4",
        "vn_citycam_02.mp4",
        "vn_citycam_haiphong_cbp640_10fps.mp4",
    ] {
        let path: &Path = &footage(&format!("video/{name}"));
        let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
        let mut n = 0;
        for _ in 0..3 {
            let (t, c) = (Instant::now(), thread_cpu());
            let mut src = source::open(path.to_str().unwrap(), &SourceOptions::default()).unwrap();
            n = read_all(src.as_mut()).1.len();
            wall = wall.min(t.elapsed().as_secs_f64());
            if let (Some(c0), Some(c1)) = (c, thread_cpu()) {
                cpu = cpu.min((c1 - c0).as_secs_f64());
            }
        }
        println!(
            "{name}: {n} frames, {:.0} frames/s wall, {:.0} frames/s of CPU time (demux + decode + RGB)",
            n as f64 / wall,
            n as f64 / cpu
        );
    }
}
