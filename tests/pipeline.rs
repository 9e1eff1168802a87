//! The whole pipeline end to end with the real models and footage: `edge-agent replay` on the
//! Hải Phòng junction clip with `configs/junction-rules.toml` (forward, played backwards by
//! ffmpeg, and with a frozen stretch), and `edge-agent run` on a real RTSP server on 127.0.0.1
//! that is killed and restarted mid-stream, events visible on the embedded MQTT broker.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn footage(rel: &str) -> PathBuf {
    let p = shared_dir().join("footage").join(rel);
    assert!(p.exists(), "missing footage {}", p.display());
    p
}

fn city_clip() -> PathBuf {
    footage("video/vn_citycam_haiphong.mp4")
}

fn junction_config() -> PathBuf {
    repo_root().join("configs/junction-rules.toml")
}

/// Makes a variant of the city clip with ffmpeg (Debian's; scripts/test.sh installs it).
fn ffmpeg(dir: &Path, name: &str, filter: &str) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(city_clip())
        .args([
            "-vf",
            filter,
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}); scripts/test.sh installs it"));
    assert!(status.success(), "ffmpeg -vf {filter} failed");
    out
}

struct Replay {
    summary: Value,
    events: Vec<Value>,
}

fn replay(video: &Path, extra: &[&str]) -> Replay {
    ort_lib();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = run(bin()
        .args(["replay", "--json", "--config"])
        .arg(junction_config())
        .arg(video)
        .arg("--events")
        .arg(&events)
        .args(extra));
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).expect("summary JSON");
    let events = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("event JSON line"))
        .collect();
    Replay { summary, events }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn replay_forward_clip_tracks_reads_and_raises_no_wrong_way() {
    let r = replay(&city_clip(), &[]);
    let cam = &r.summary["cameras"][0];
    // 7.1 s sampled at the camera's 10 fps, every sampled frame analysed (nothing dropped).
    let processed = cam["frames_processed"].as_u64().unwrap();
    assert_eq!(cam["frames_decoded"], 142);
    assert_eq!(cam["frames_sampled"].as_u64().unwrap(), processed);
    assert!((65..=75).contains(&processed), "processed {processed}");
    assert_eq!(cam["frames_dropped"], 0);
    assert!(cam["tracks"].as_u64().unwrap() >= 15, "{cam}");
    assert!(cam["plate_reads"].as_u64().unwrap() > 0, "{cam}");
    assert!(
        of_kind(&r.events, "wrong_way").is_empty(),
        "forward traffic flagged wrong-way"
    );
    // Motorbikes whose riders the detector sees better than the bikes are vehicles from their
    // first frames, so the stop-line count sees the ones that cross it (it saw none before).
    let count = of_kind(&r.events, "line_count");
    let crossed = count
        .last()
        .and_then(|e| e["rule"]["details"]["total_forward"]["motorcycle"].as_u64())
        .unwrap_or(0);
    assert!(
        crossed >= 1,
        "no motorbike counted at the stop line: {count:?}"
    );
    // A red-light event is about a vehicle that crossed while the lamp it watches was red, and
    // every event carries the configured location.
    for e in of_kind(&r.events, "red_light") {
        let d = &e["rule"]["details"];
        assert!(d["red_for_s"].as_f64().unwrap() >= 1.0, "{e}");
        assert_eq!(e["rule"]["zone"], "signal-approach-red", "{e}");
        assert!(
            ["car", "motorcycle", "bus", "truck"].contains(&e["object"]["class"].as_str().unwrap()),
            "{e}"
        );
    }
    assert!(
        r.events
            .iter()
            .all(|e| e["location"]["lat"].as_f64().is_some())
    );

    // Every line is a contract event: unique ids, increasing seq, models and config hash named.
    let mut ids = std::collections::HashSet::new();
    let mut last_seq = 0;
    for e in &r.events {
        assert_eq!(e["schema_version"], 1);
        assert!(ids.insert(e["event_id"].as_str().unwrap().to_string()));
        let seq = e["seq"].as_u64().unwrap();
        assert!(seq > last_seq);
        last_seq = seq;
        assert_eq!(e["camera_id"], "haiphong");
        assert_eq!(e["models"][0]["name"], "yolox_nano_coco_416");
        assert_eq!(e["config_hash"].as_str().unwrap().len(), 12);
    }
    for p in of_kind(&r.events, "plate_read") {
        let plate = &p["object"]["plate"];
        assert!(
            plate["text"]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert!(plate["confidence"].as_f64().unwrap() >= 0.3, "{p}");
        assert!(p["object"]["track_id"].as_u64().is_some());
        assert!(
            !p["evidence"].as_array().unwrap().is_empty(),
            "plate without evidence: {p}"
        );
    }
}

#[test]
fn replay_reversed_clip_raises_wrong_way_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let reversed = ffmpeg(dir.path(), "reversed.mp4", "reverse");
    let r = replay(&reversed, &["--no-plates"]);
    let wrong: Vec<_> = of_kind(&r.events, "wrong_way");
    let new: Vec<_> = wrong.iter().filter(|e| e["phase"] == "new").collect();
    assert!(
        !new.is_empty(),
        "no wrong_way on the reversed clip: {:?}",
        r.summary
    );
    for e in &new {
        assert!(e["object"]["track_id"].as_u64().is_some());
        assert!(e["rule"]["id"].as_str().unwrap().starts_with("wrong-way"));
        let roles: Vec<_> = e["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["role"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(roles, ["frame", "object"], "{e}");
        assert!(e["rule"]["details"]["distance_px"].as_f64().unwrap() >= 50.0);
    }
    // Every situation that opened is closed.
    for e in &new {
        let track = &e["object"]["track_id"];
        assert!(
            wrong
                .iter()
                .any(|x| x["phase"] == "end" && &x["object"]["track_id"] == track),
            "wrong_way of track {track} never ended"
        );
    }
}

#[test]
fn replay_frozen_stretch_raises_stopped_vehicle_in_the_no_stopping_zone() {
    let dir = tempfile::tempdir().unwrap();
    // 10 fps, then frame 30 repeated for 7 s: everything in view stands still.
    let frozen = ffmpeg(
        dir.path(),
        "frozen.mp4",
        "fps=10,loop=loop=70:size=1:start=30,setpts=N/10/TB",
    );
    let r = replay(&frozen, &["--no-plates"]);
    let stopped: Vec<_> = of_kind(&r.events, "stopped_vehicle")
        .into_iter()
        .filter(|e| e["phase"] == "new")
        .collect();
    assert!(!stopped.is_empty(), "no stopped_vehicle: {:?}", r.summary);
    for e in &stopped {
        assert_eq!(e["rule"]["zone"], "keep-clear");
        assert!(e["rule"]["details"]["dwell_s"].as_f64().unwrap() >= 5.0);
    }
    // The forward clip (no freeze) gives none.
    let forward = replay(&city_clip(), &["--no-plates"]);
    assert!(of_kind(&forward.events, "stopped_vehicle").is_empty());
}

#[test]
fn rules_that_do_not_fit_the_stream_are_a_camera_health_event_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    // The camera re-configured to 1280x720 while the config still says frame_size = [1006, 720].
    let resized = ffmpeg(
        dir.path(),
        "resized.mp4",
        "scale=1280:720,trim=duration=2,setpts=PTS-STARTPTS",
    );
    let r = replay(&resized, &["--no-plates"]);
    let disabled: Vec<_> = of_kind(&r.events, "camera_health")
        .into_iter()
        .filter(|e| e["rule"]["details"]["state"] == "rules_disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{:?}", health_states(&r.events));
    let reason = disabled[0]["rule"]["details"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("[1006, 720]") && reason.contains("1280x720"),
        "{reason}"
    );
    // and with them off, no rule event at all
    assert!(of_kind(&r.events, "wrong_way").is_empty());
}

/// Lines of the agent's events file, re-read on each call.
fn events_in(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn health_states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "camera_health")
        .map(|e| {
            e["rule"]["details"]["state"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_on_rtsp_reconnects_after_the_camera_returns_and_publishes_on_the_embedded_broker() {
    ort_lib();
    let clip = footage("video/vn_citycam_haiphong_cbp640_10fps.mp4");
    let mut server = common::rtsp::RtspServer::start(&clip, "/cam");
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[device]
site_id = "test-site"
device_id = "edge-1"

[runtime]
intra_threads = 2

[mqtt]
embedded_listen = "127.0.0.1:{mqtt_port}"

[storage]
spool_dir = "{spool}"

[http]
enabled = false

[[cameras]]
id = "rtsp-cam"
url = "{url}"
target_fps = 5
"#,
            spool = dir.path().join("spool").display(),
            url = server.url(),
        ),
    )
    .unwrap();
    let events = dir.path().join("events.jsonl");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--events")
        .arg(&events)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let stderr = agent.stderr.take().unwrap();
    let (log_tx, log_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("agent: {line}");
            let _ = log_tx.send(line);
        }
    });
    let mut agent = Killed(agent);

    // The stream comes up; a subscriber on the embedded broker sees the agent's events.
    wait_for(Duration::from_secs(60), "the stream to come up", || {
        health_states(&events_in(&events)).contains(&"online".to_string())
    });
    let sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &mqtt_port.to_string(), "-v"])
        .args(["-t", "edge/test-site/edge-1/#"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run mosquitto_sub (scripts/test.sh installs mosquitto-clients)");
    let mut sub = Killed(sub);
    std::thread::sleep(Duration::from_secs(3));

    // Power cut at the camera for 2 s.
    server.kill();
    wait_for(Duration::from_secs(20), "the outage to be reported", || {
        health_states(&events_in(&events)).contains(&"reconnecting".to_string())
    });
    std::thread::sleep(Duration::from_secs(2));
    let online_before = health_states(&events_in(&events))
        .iter()
        .filter(|s| *s == "online")
        .count();
    server.restart();
    let back = wait_for(Duration::from_secs(30), "the stream to come back", || {
        health_states(&events_in(&events))
            .iter()
            .filter(|s| *s == "online")
            .count()
            > online_before
    });
    eprintln!("stream back {back:?} after the server returned");
    assert!(back < Duration::from_secs(5), "reconnect took {back:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(agent.0.try_wait().unwrap().is_none(), "the agent exited");

    // Orderly stop: SIGTERM, summary logged, exit 0.
    let pid = agent.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "agent exit {status:?}");
    let logs: Vec<String> = log_rx.try_iter().collect();
    let summary = logs
        .iter()
        .find(|l| l.contains("camera summary"))
        .unwrap_or_else(|| panic!("no camera summary in the log"));
    let field = |name: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {summary}"))
    };
    assert!(field("processed") >= 10, "{summary}");
    assert!(field("tracks") >= 1, "{summary}");

    let _ = sub.0.kill();
    // Evidence images come through as binary payloads: read bytes, not a UTF-8 string (which
    // would fail on the first JPEG and leave nothing to look at).
    let mut raw = Vec::new();
    if let Some(mut so) = sub.0.stdout.take() {
        use std::io::Read;
        let _ = so.read_to_end(&mut raw);
    }
    let out = String::from_utf8_lossy(&raw);
    assert!(
        out.contains("edge/test-site/edge-1/events/camera_health"),
        "the subscriber saw no camera_health event: {out}"
    );
    assert!(out.contains("\"state\":\"reconnecting\""), "{out}");
}

/// `[clips]` on a live camera: a rule event gets an `update` carrying an MP4 remuxed from the RTSP
/// stream's own H.264 (no re-encode), kept on the device under its sha256, which our own decoder
/// plays back picture for picture.
#[test]
fn run_on_rtsp_cuts_a_clip_around_a_rule_event_and_keeps_it_on_the_device() {
    ort_lib();
    let clip = footage("video/vn_citycam_haiphong_cbp640_10fps.mp4");
    let server = common::rtsp::RtspServer::start(&clip, "/cam");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[device]
site_id = "test-site"
device_id = "edge-1"

[runtime]
intra_threads = 2

[models]
plate_detector = ""

[mqtt]
embedded_listen = "127.0.0.1:{mqtt_port}"

[storage]
spool_dir = "{spool}"

[http]
enabled = false

[clips]
pre_s = 1
post_s = 2

[[cameras]]
id = "rtsp-cam"
url = "{url}"
target_fps = 5

[[cameras.zones]]
id = "all"
polygon = [[0, 0], [640, 0], [640, 458], [0, 458]]

[[cameras.rules]]
id = "anything-in-view"
kind = "intrusion"
zone = "all"
classes = ["car", "motorcycle"]
"#,
            mqtt_port = free_port(),
            spool = spool.display(),
            url = server.url(),
        ),
    )
    .unwrap();
    let events = dir.path().join("events.jsonl");
    let agent = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--events")
        .arg(&events)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the agent");
    let _agent = Killed(agent);
    // The first events come before the stream has a second of past: their clips lack it and say
    // so (`complete: false`); a later one has its whole window.
    let clip_update = |events: &[Value]| {
        events
            .iter()
            .find(|e| {
                e["evidence"][0]["role"] == "clip" && e["evidence"][0]["clip"]["complete"] == true
            })
            .cloned()
    };
    wait_for(Duration::from_secs(90), "a complete clip update", || {
        clip_update(&events_in(&events)).is_some()
    });
    let all = events_in(&events);
    let update = clip_update(&all).unwrap();
    assert_eq!(update["phase"], "update");
    assert_eq!(update["kind"], "intrusion");
    let original = all
        .iter()
        .find(|e| e["event_id"] == update["refers_to"])
        .unwrap_or_else(|| panic!("the clip refers to no event: {update}"));
    assert_eq!(original["phase"], "new");
    assert_eq!(original["object"], update["object"]);
    let ev = &update["evidence"][0];
    let info = &ev["clip"];
    assert_eq!(info["on_request"], true, "{ev}");
    assert_eq!(info["complete"], true, "{ev}");
    let ms = info["duration_ms"].as_u64().unwrap();
    // post 2 s plus pre 1 s back to the keyframe before it (the clip's GOP is under 3 s)
    assert!((3000..=6500).contains(&ms), "{ev}");
    let sha = ev["sha256"].as_str().unwrap();
    assert!(
        ev["topic"]
            .as_str()
            .unwrap()
            .ends_with(&format!("evidence/{sha}"))
    );

    // On the device, under its hash; bytes as stated; plays back with our own decoder.
    let file = spool.join("clips").join(format!("{sha}.mp4"));
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(bytes.len() as u64, ev["bytes"].as_u64().unwrap());
    assert_eq!(edge_agent::events::evidence::sha256_hex(&bytes), sha);
    let mut src =
        edge_agent::source::open(file.to_str().unwrap(), &Default::default()).expect("open clip");
    let (_, frames) = common::frames::read_all(src.as_mut());
    assert!(frames.len() >= 25, "{} pictures", frames.len());
    assert_eq!((frames[0].width, frames[0].height), (640, 458));
    let played = frames.last().unwrap().stream_time.as_millis() as u64 + 100;
    assert!(
        played.abs_diff(ms) <= 100,
        "{played} ms played, {ms} ms stated"
    );
    // nothing of the clip was published: it waits for a request
    assert!(
        !all.iter()
            .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
            .any(|r| r["role"] == "clip" && r["clip"]["on_request"] == false)
    );
}

/// One pass of a camera's sub-stream through `run`, optionally with a main stream: the camera
/// summary's fields, and the health messages the embedded broker carried.
struct MainStreamRun {
    processed: u64,
    plate_reads: u64,
    main_stream_frames: u64,
    health: String,
}

fn run_sub_stream(sub: &str, main: Option<&str>) -> MainStreamRun {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let config = dir.path().join("agent.toml");
    let main = main.map_or(String::new(), |m| format!("evidence_url = \"{m}\"\n"));
    std::fs::write(
        &config,
        format!(
            r#"[device]
site_id = "test-site"
device_id = "edge-1"

[runtime]
intra_threads = 2

[mqtt]
embedded_listen = "127.0.0.1:{mqtt_port}"
health_interval_s = 1

[storage]
spool_dir = "{spool}"

[http]
enabled = false

[clips]
mode = "off"

[[cameras]]
id = "cam"
url = "{sub}"
target_fps = 10
{main}"#,
            spool = dir.path().join("spool").display(),
        ),
    )
    .unwrap();
    let agent = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["--log-format", "text", "run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let started = Instant::now();
    let mut agent = Killed(agent);
    let stderr = agent.0.stderr.take().unwrap();
    let (log_tx, log_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let health = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &mqtt_port.to_string(),
            "-C",
            "2",
            "-W",
            "8",
        ])
        .args(["-t", "edge/test-site/edge-1/health"])
        .output()
        .expect("run mosquitto_sub (scripts/test.sh installs mosquitto-clients)");
    // the clip lasts 7.1 s: its one pass, then stop
    std::thread::sleep(Duration::from_secs(9).saturating_sub(started.elapsed()));
    let _ = Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status();
    let start = Instant::now();
    while agent.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "agent did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = log_rx.try_iter().collect();
    let summary = logs
        .iter()
        .find(|l| l.contains("camera summary"))
        .unwrap_or_else(|| panic!("no camera summary in the log:\n{}", logs.join("\n")))
        .clone();
    let field = |name: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {summary}"))
    };
    eprintln!("{summary}");
    MainStreamRun {
        processed: field("processed"),
        plate_reads: field("plate_reads"),
        main_stream_frames: field("main_stream_frames"),
        health: String::from_utf8_lossy(&health.stdout).to_string(),
    }
}

/// A camera with a main stream: detection runs on a half-size sub-stream (ffmpeg's downscale of
/// the junction clip), plates are searched and read on the main stream's frame of the same moment
/// (the clip itself, served on a second mount), and far more plates are read than on the
/// sub-stream alone. A main stream that cannot be reached is a health condition, and the camera
/// goes on with its sub-stream.
#[test]
fn plates_are_read_on_the_main_stream_while_detection_runs_on_the_sub_stream() {
    ort_lib();
    let dir = tempfile::tempdir().unwrap();
    let sub_clip = dir.path().join("sub.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(city_clip())
        .args([
            "-an",
            "-vf",
            "scale=504:360",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
        ])
        .args([
            "-bf",
            "0",
            "-g",
            "20",
            "-fps_mode",
            "passthrough",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&sub_clip)
        .status()
        .expect("run ffmpeg (scripts/test.sh installs it)");
    assert!(status.success(), "ffmpeg could not make the sub-stream");

    let sub = common::rtsp::RtspServer::start(&sub_clip, "/sub");
    let main = common::rtsp::RtspServer::start(&city_clip(), "/main");
    let alone = run_sub_stream(&sub.url(), None);
    let paired = run_sub_stream(&sub.url(), Some(&main.url()));
    eprintln!(
        "plate reads: sub-stream alone {} in {} frames, with the main stream {} in {} frames ({} searched on it)",
        alone.plate_reads,
        alone.processed,
        paired.plate_reads,
        paired.processed,
        paired.main_stream_frames
    );
    assert_eq!(alone.main_stream_frames, 0);
    assert!(
        paired.main_stream_frames >= 10,
        "{}",
        paired.main_stream_frames
    );
    // per frame analysed (waiting for the main stream's frame costs some frames on 2 cores)
    let rate = |r: &MainStreamRun| r.plate_reads as f64 / r.processed.max(1) as f64;
    assert!(
        paired.plate_reads >= 8 && rate(&paired) >= 2.0 * rate(&alone),
        "main stream {} reads in {} frames, sub-stream alone {} in {}",
        paired.plate_reads,
        paired.processed,
        alone.plate_reads,
        alone.processed
    );
    assert!(
        !paired.health.contains("main_stream_lost"),
        "{}",
        paired.health
    );

    // No main stream there: said in the camera's health, and plates go on from the sub-stream.
    let lost = run_sub_stream(&sub.url(), Some("rtsp://127.0.0.1:1/main"));
    assert!(lost.health.contains("main_stream_lost"), "{}", lost.health);
    assert_eq!(lost.main_stream_frames, 0);
}
