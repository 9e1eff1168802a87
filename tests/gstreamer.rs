//! The `gstreamer` feature end to end (`cargo test -p edge-agent --features gstreamer --test
//! gstreamer`): an H.265 copy of the Hải Phòng clip, made with ffmpeg at test time, decoded through
//! the GStreamer source (every frame, with the H.264 original's timestamps), `edge-agent replay`
//! on it tracking about as many vehicles as on the original, a live H.265 RTSP camera on 127.0.0.1
//! that is killed and restarted, event clips of its own H.265, and a machine without
//! gstreamer1.0-libav.
#![cfg(feature = "gstreamer")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::frames::{connect_and_stream, next_within, read_all, survive_outage, survive_stall};
use common::*;
use edge_agent::source::{self, Decoding, SourceItem, SourceOptions, StreamStatus};
use serde_json::Value;

fn city_clip() -> PathBuf {
    let p = shared_dir().join("footage/video/vn_citycam_haiphong.mp4");
    assert!(p.is_file(), "missing footage {}", p.display());
    p
}

/// The whole clip as H.265 (libx265, same pictures and timestamps, limited range: see
/// `source/gst.rs`), made once per test run under the target's temp folder.
fn h265_clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gstreamer");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("haiphong_h265.mp4");
        let part = dir.join("haiphong_h265.part.mp4");
        let started = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(city_clip())
            .args(["-an", "-fps_mode", "passthrough", "-c:v", "libx265"])
            .args(["-preset", "ultrafast", "-pix_fmt", "yuv420p"])
            .args(["-x265-params", "log-level=error"])
            .arg(&part)
            .status()
            .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}); scripts/test.sh installs it"));
        assert!(status.success(), "ffmpeg could not make the H.265 clip");
        std::fs::rename(&part, &out).unwrap();
        eprintln!("H.265 clip made in {:?}", started.elapsed());
        out
    })
}

fn gst_opts() -> SourceOptions {
    SourceOptions {
        decoding: Decoding::Gstreamer { element: None },
        backoff_min: Duration::from_millis(250),
        backoff_max: Duration::from_secs(1),
        stall_timeout: Duration::from_secs(3),
        ..SourceOptions::default()
    }
}

#[test]
fn h265_file_decodes_every_frame_with_the_originals_timestamps() {
    let clip = h265_clip();
    let started = Instant::now();
    let mut src = source::open(clip.to_str().unwrap(), &gst_opts()).unwrap();
    let (description, frames) = read_all(src.as_mut());
    let took = started.elapsed();
    eprintln!(
        "H.265 1006x720: {} frames in {took:?} = {:.0} fps (open, decode, RGB, copy): {description}",
        frames.len(),
        frames.len() as f64 / took.as_secs_f64()
    );
    assert!(description.contains("avdec_h265"), "{description}");
    let mut original = source::open(city_clip().to_str().unwrap(), &SourceOptions::default())
        .expect("the built-in decoder reads the H.264 original");
    let (_, want) = read_all(original.as_mut());
    assert_eq!(frames.len(), 142);
    assert_eq!(frames.len(), want.len());
    for (i, (f, w)) in frames.iter().zip(&want).enumerate() {
        assert_eq!(f.seq, i as u64);
        assert_eq!((f.width, f.height), (1006, 720));
        assert_eq!(f.rgb.len(), 1006 * 720 * 3);
        let skew = f.stream_time.abs_diff(w.stream_time);
        assert!(
            skew <= Duration::from_millis(1),
            "frame {i}: {:?} vs the original's {:?}",
            f.stream_time,
            w.stream_time
        );
    }
    assert!(
        frames
            .windows(2)
            .all(|p| p[1].stream_time > p[0].stream_time)
    );
    assert_eq!(src.counters().frames, 142);
}

/// `edge-agent replay --json --no-plates` with `configs/junction-rules.toml`, the camera's
/// `decoder` set as given; the summary's camera.
fn replay(video: &Path, decoder: &str) -> Value {
    ort_lib();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_root().join("configs/junction-rules.toml")).unwrap();
    let text = text.replacen(
        "[[cameras]]\n",
        &format!("[[cameras]]\ndecoder = \"{decoder}\"\n"),
        1,
    );
    let config = dir.path().join("junction.toml");
    std::fs::write(&config, text).unwrap();
    let out = run(bin()
        .args(["replay", "--json", "--no-plates", "--config"])
        .arg(&config)
        .arg(video));
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).expect("summary JSON");
    summary["cameras"][0].clone()
}

#[test]
fn replay_of_the_h265_copy_tracks_as_many_vehicles_as_the_h264_original() {
    let h265 = replay(h265_clip(), "gstreamer");
    let h264 = replay(&city_clip(), "builtin");
    eprintln!(
        "tracks: H.265 through GStreamer {}, H.264 built-in {}",
        h265["tracks"], h264["tracks"]
    );
    assert_eq!(h265["frames_decoded"], 142, "{h265}");
    assert_eq!(h265["frames_processed"], h264["frames_processed"]);
    assert_eq!(h265["decode_errors"], 0, "{h265}");
    let (a, b) = (
        h265["tracks"].as_u64().unwrap(),
        h264["tracks"].as_u64().unwrap(),
    );
    assert!(a >= 15, "{h265}");
    // Same scene, re-encoded: the tracker may split or merge a track or two.
    assert!(
        a.abs_diff(b) <= (b / 5).max(3),
        "H.265 {a} vs H.264 {b} tracks"
    );
}

#[test]
fn a_live_h265_camera_streams_and_survives_a_restart() {
    let mut server = common::rtsp::RtspServer::start_codec(h265_clip(), "/cam", "h265");
    let limit = Duration::from_secs(15);

    // The built-in decoder cannot, and says what to do.
    let mut builtin = source::open(&server.url(), &SourceOptions::default()).unwrap();
    match next_within(builtin.as_mut(), limit, "Disconnected (built-in)") {
        SourceItem::Status(StreamStatus::Disconnected { reason, .. }) => {
            assert!(reason.contains("h265"), "{reason}");
            assert!(reason.contains("decoder = \"gstreamer\""), "{reason}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    drop(builtin);

    let mut src = source::open(&server.url(), &gst_opts()).unwrap();
    let opened = Instant::now();
    let (description, before) = connect_and_stream(src.as_mut(), limit, 10);
    eprintln!("connected in {:?}: {description}", opened.elapsed());
    assert!(description.contains("avdec_h265"), "{description}");
    assert!(description.contains("RTSP"), "{description}");
    assert_eq!((before[0].width, before[0].height), (1006, 720));

    // The server is down 2 s; a session's media time is anchored at its first picture's arrival,
    // which the decoder's frame threads delay by a few frame times, so allow some of that.
    let last = before.last().unwrap().clone();
    survive_outage(
        src.as_mut(),
        &mut server,
        last,
        limit,
        Duration::from_millis(1500),
    );
}

#[test]
fn a_hung_h265_camera_is_reported_stalled_and_recovered() {
    let server = common::rtsp::RtspServer::start_codec(h265_clip(), "/cam", "h265");
    let opts = SourceOptions {
        stall_timeout: Duration::from_millis(1500),
        ..gst_opts()
    };
    let mut src = source::open(&server.url(), &opts).unwrap();
    let limit = Duration::from_secs(10);
    survive_stall(src.as_mut(), &server, limit);
}

#[test]
fn without_gstreamer1_0_libav_the_error_names_the_package() {
    ort_lib();
    // A plugin folder with what the pipeline needs except a decoder for H.265 (no libav, no
    // libde265): what a machine without gstreamer1.0-libav has.
    let system = Path::new("/usr/lib/x86_64-linux-gnu/gstreamer-1.0");
    assert!(
        system.is_dir(),
        "no GStreamer plugins at {}",
        system.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in [
        "coreelements",
        "playback",
        "typefindfunctions",
        "isomp4",
        "videoparsersbad",
        "videoconvertscale",
        "app",
    ] {
        let file = format!("libgst{name}.so");
        std::os::unix::fs::symlink(system.join(&file), plugins.join(&file)).unwrap();
    }
    let config = dir.path().join("gst.toml");
    std::fs::write(
        &config,
        "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[[cameras]]\nid = \"cam\"\nurl = \"x.mp4\"\ndecoder = \"gstreamer\"\n",
    )
    .unwrap();
    let out = run(bin()
        .args(["replay", "--no-plates", "--config"])
        .arg(&config)
        .arg(h265_clip())
        .env("GST_PLUGIN_SYSTEM_PATH_1_0", &plugins)
        .env("GST_PLUGIN_PATH_1_0", &plugins)
        .env("GST_REGISTRY_1_0", dir.path().join("registry.bin")));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("haiphong_h265.mp4"), "{err}");
    assert!(err.contains("found no H.265"), "{err}");
    assert!(err.contains("gstreamer1.0-libav"), "{err}");
}

#[test]
fn a_live_h265_camera_gives_event_clips_of_its_own_h265() {
    let server = common::rtsp::RtspServer::start_codec(h265_clip(), "/cam", "h265");
    let tap = edge_agent::clips::EncodedTap::new(
        16 << 20,
        Duration::from_secs(1),
        Duration::from_millis(500),
    );
    let opts = SourceOptions {
        encoded: Some(std::sync::Arc::new(tap.clone())),
        ..gst_opts()
    };
    let limit = Duration::from_secs(15);
    let mut src = source::open(&server.url(), &opts).unwrap();
    let (_, frames) = connect_and_stream(src.as_mut(), limit, 40);
    let at = frames.last().unwrap().stream_time;
    let event = edge_agent::events::examples::example(edge_agent::events::EventKind::WrongWay);
    tap.request(event, at);
    let started = Instant::now();
    let cut = loop {
        if let Some(cut) = tap.take_ready().pop() {
            break cut;
        }
        assert!(started.elapsed() < limit, "no clip within {limit:?}");
        next_within(src.as_mut(), limit, "frame");
    };
    drop(src);
    assert!(cut.complete, "the stream went on past post_s");
    assert!(cut.units[0].keyframe);
    assert_eq!(cut.units[0].codec, edge_agent::clips::VideoCodec::H265);
    let dims = cut.dims.expect("picture size");
    assert_eq!(dims, (1006, 720));
    let mp4 = edge_agent::clips::remux(&cut.units, dims).expect("remux");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip.mp4");
    std::fs::write(&out, &mp4).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,codec_tag_string,nb_read_frames:format=duration",
        ])
        .args(["-of", "default=nw=1"])
        .arg(&out)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&probe.stdout);
    eprintln!(
        "live H.265 clip: {} units, {} bytes\n{text}",
        cut.units.len(),
        mp4.len()
    );
    assert!(
        probe.status.success() && probe.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        text.contains("codec_name=hevc") && text.contains("codec_tag_string=hvc1"),
        "{text}"
    );
    assert!(
        text.contains(&format!("nb_read_frames={}", cut.units.len())),
        "every unit is a picture that decodes: {text}"
    );
    let duration: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .expect("duration");
    // from the keyframe before `at - 1 s` (the stream's start here) to `at + 0.5 s`
    let want = (at + Duration::from_millis(500)).as_secs_f64();
    assert!(
        duration >= 1.5 && duration <= want + 0.5,
        "{duration} s, at most about {want} s"
    );
}
