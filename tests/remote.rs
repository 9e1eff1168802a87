//! Remote config end to end. (1) The pipeline with the real detector and footage: a camera whose
//! source is unchanged keeps its stream, tracker and counters across an apply, changed ones are
//! swapped or restarted alone, and a change that cannot be applied changes nothing. (2) The agent
//! against a real mosquitto: garbage, a 10 MB payload and a bad zone on `config/set` are rejected
//! with reasons and the agent stays up; a good config is applied (new hash); one that breaks at
//! apply rolls back; the last good one is used after a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::broker::{Mosquitto, test_dir};
use common::tls::need;
use common::*;
use edge_agent::config::{CameraConfig, CameraRole, RuntimeConfig};
use edge_agent::inference::Model;
use edge_agent::models::{ManifestSet, ModelStore};
use edge_agent::pipeline::camera::{FrameContext, Observation};
use edge_agent::pipeline::{self, CameraSpec, PipelineOptions, Sink, WorkerModels};
use edge_agent::source::{SourceCounters, StreamStatus};
use serde_json::Value;

fn footage(rel: &str) -> PathBuf {
    let p = shared_dir().join("footage").join(rel);
    assert!(
        p.exists(),
        "missing footage {} (EDGE_AGENT_SHARED)",
        p.display()
    );
    p
}

/// 71 frames at 10 fps, 640×458.
fn clip() -> PathBuf {
    footage("video/vn_citycam_haiphong_cbp640_10fps.mp4")
}

fn detector() -> Model {
    let lib = ort_lib();
    edge_agent::runtime::init(Some(&lib)).expect("ONNX Runtime");
    let cache = std::env::var_os("EDGE_AGENT_MODEL_CACHE").map(PathBuf::from).expect(
        "EDGE_AGENT_MODEL_CACHE must point at a cache filled by `edge-agent models fetch` (scripts/test.sh does both)",
    );
    let set = ManifestSet::builtin().expect("built-in manifests");
    let rt = RuntimeConfig {
        intra_threads: 2,
        ..RuntimeConfig::default()
    };
    Model::load(
        set.require("yolox_nano_coco_416").expect("manifest"),
        &ModelStore::new(cache),
        &rt,
    )
    .unwrap_or_else(|e| panic!("yolox_nano_coco_416: {e}"))
}

/// Every rule event's (camera, track id, time seen).
#[derive(Default)]
struct Collect {
    rule_events: Mutex<Vec<(String, Option<u64>, Instant)>>,
}

impl Sink for Collect {
    fn observation(&self, camera: &str, obs: Observation, _frame: Option<&FrameContext<'_>>) {
        if let Observation::Rule(r) = obs
            && let Ok(mut v) = self.rule_events.lock()
        {
            v.push((camera.to_string(), r.event.track_id, Instant::now()));
        }
    }
    fn stream_status(&self, _camera: &str, _status: &StreamStatus, _counters: SourceCounters) {}
}

/// A camera with one zone over the whole frame and an intrusion rule that fires for every vehicle.
fn camera(id: &str, url: &str, with_rules: bool) -> CameraSpec {
    let rules = with_rules.then(|| {
        let cfg: CameraConfig = toml::from_str(&format!(
            r#"
id = "{id}"
url = "{url}"
target_fps = 10
frame_size = [640, 458]
[[zones]]
id = "all"
polygon = [[0, 0], [640, 0], [640, 458], [0, 458]]
[[rules]]
id = "any-vehicle"
kind = "intrusion"
zone = "all"
classes = ["car", "motorcycle", "bus", "truck"]
"#
        ))
        .expect("camera config");
        Box::new(cfg)
    });
    CameraSpec {
        id: id.into(),
        url: url.into(),
        target_fps: 10.0,
        role: CameraRole::Scene,
        decoding: Default::default(),
        rules,
        evidence: None,
    }
}

#[test]
fn apply_keeps_unchanged_cameras_and_changes_nothing_when_it_fails() {
    let clip = clip();
    let url = clip.display().to_string();
    let workers = vec![WorkerModels::new(detector(), None)];
    // Paced like a camera, but every sampled frame is analysed, so the test does not depend on how
    // busy the machine is.
    let mut opts = PipelineOptions {
        lossless: true,
        ..PipelineOptions::default()
    };
    opts.source.realtime = true;
    let sink = Arc::new(Collect::default());
    let (control, rx) = pipeline::control();
    let cams = vec![camera("a", &url, true), camera("b", &url, false)];
    let run_sink: Arc<dyn Sink> = sink.clone();
    let runner = std::thread::spawn(move || {
        pipeline::run_controlled(cams, workers, &opts, run_sink, Some(rx))
    });

    // Apply once a has raised events, so there is a "before" to compare with.
    let start = Instant::now();
    while !sink
        .rule_events
        .lock()
        .unwrap()
        .iter()
        .any(|(cam, _, _)| cam == "a")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a raised no event"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first_apply = Instant::now();
    // b gets rules (in place), c is added; a is sent unchanged.
    let changes = control
        .apply(
            vec![
                camera("a", &url, true),
                camera("b", &url, true),
                camera("c", &url, false),
            ],
            Duration::from_secs(30),
        )
        .expect("first apply");
    assert_eq!(changes, vec!["b: rules replaced", "c: started"]);

    std::thread::sleep(Duration::from_millis(1000));
    // A camera that cannot be opened: refused, and nothing else changes (b keeps its rules, c runs).
    let err = control
        .apply(
            vec![
                camera("a", &url, true),
                camera("b", &url, false),
                camera("d", "/nonexistent/clip.mp4", false),
            ],
            Duration::from_secs(30),
        )
        .expect_err("d cannot open");
    assert!(
        err.to_string().contains("camera `d`"),
        "the reason names the camera: {err}"
    );
    // b's source changes (another spelling of the same file): restarted alone; c is removed.
    let other = format!(
        "{}/./{}",
        clip.parent().unwrap().display(),
        clip.file_name().unwrap().to_string_lossy()
    );
    let changes = control
        .apply(
            vec![camera("a", &url, true), camera("b", &other, true)],
            Duration::from_secs(30),
        )
        .expect("second apply");
    assert_eq!(changes, vec!["b: restarted (source changed)", "c: stopped"]);

    let summary = runner.join().expect("runner thread").expect("pipeline");
    let ids: Vec<&str> = summary.cameras.iter().map(|c| c.id.as_str()).collect();
    eprintln!("summary cameras: {ids:?}");
    for c in &summary.cameras {
        eprintln!(
            "{}: decoded {} sampled {} processed {} tracks {}",
            c.id, c.decoded, c.sampled, c.stats.processed, c.tracks
        );
    }
    let of = |id: &str| {
        summary
            .cameras
            .iter()
            .filter(|c| c.id == id)
            .collect::<Vec<_>>()
    };
    // a was never reopened: one run over the whole clip.
    assert_eq!(of("a").len(), 1, "{ids:?}");
    assert_eq!(
        of("a")[0].decoded,
        71,
        "a decoded the clip once, without a restart"
    );
    assert_eq!(of("b").len(), 2, "b restarted once: {ids:?}");
    assert!(
        of("b")[1].decoded >= 71 - 1,
        "the restarted b read its (new) source from the start"
    );
    assert_eq!(of("c").len(), 1);
    assert!(of("d").is_empty(), "the refused camera never ran");

    // a's tracker went on: its track ids after the apply continue, they do not start again.
    let events = sink.rule_events.lock().unwrap().clone();
    let a_ids = |after: bool| -> Vec<u64> {
        events
            .iter()
            .filter(|(cam, _, t)| cam == "a" && (*t >= first_apply) == after)
            .filter_map(|(_, id, _)| *id)
            .collect()
    };
    let (before, after) = (a_ids(false), a_ids(true));
    eprintln!("a track ids before {before:?} after {after:?}");
    assert!(
        !before.is_empty() && !after.is_empty(),
        "a raised events before and after the apply"
    );
    // Tracks that first appear after the apply get ids after those of earlier tracks: a fresh
    // tracker would have handed out 1, 2, … again.
    let max_before = before.iter().max().copied().unwrap_or(0);
    let fresh: Vec<u64> = after
        .iter()
        .copied()
        .filter(|id| !before.contains(id))
        .collect();
    assert!(
        !fresh.is_empty(),
        "no new track on a after the apply: {after:?}"
    );
    assert!(
        fresh.iter().all(|&id| id > max_before),
        "track ids restarted: before {before:?} new after {fresh:?}"
    );
    // b's new rules took effect in place: it raised events.
    assert!(
        events.iter().any(|(cam, _, _)| cam == "b"),
        "b's swapped-in rules raised nothing"
    );
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real mosquitto on a free loopback port, anonymous (the ACL path is tests/delivery.rs's).
fn mosquitto(dir: &Path) -> Mosquitto {
    let port = free_port();
    let conf = format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n");
    Mosquitto::start(dir, &conf, port)
}

const BASE: &str = "edge/test-site/edge-1";

/// The retained `config/state`, if any.
fn retained_state(port: u16) -> Option<Value> {
    let out = Command::new(need("mosquitto_sub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-C",
            "1",
            "-W",
            "2",
        ])
        .args(["-t", &format!("{BASE}/config/state")])
        .output()
        .expect("run mosquitto_sub");
    serde_json::from_slice(&out.stdout).ok()
}

fn wait_state(port: u16, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(s) = retained_state(port)
            && pred(&s)
        {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; last state: {:?}",
            retained_state(port)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn publish(port: u16, topic: &str, payload: &[u8], dir: &Path) {
    let file = dir.join("payload.bin");
    std::fs::write(&file, payload).expect("write payload");
    let status = Command::new(need("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", &format!("{BASE}/{topic}")])
        .arg("-f")
        .arg(&file)
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub to {topic} failed");
}

/// The test centre's key (made once per test process by `edge-agent sign-remote`) and its public
/// half, which every agent config here pins.
fn centre() -> &'static (PathBuf, String) {
    static CENTRE: OnceLock<(PathBuf, String)> = OnceLock::new();
    CENTRE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("edge-agent-test-centre-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("centre key dir");
        let key = dir.join("centre.key");
        let out = bin()
            .args(["sign-remote", "--public", "--key"])
            .arg(&key)
            .output()
            .expect("run sign-remote");
        assert!(out.status.success(), "sign-remote --public failed");
        let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (key, public)
    })
}

/// The next number a document signed here carries (one counter for every topic: each topic only
/// needs its numbers to rise).
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

/// A document signed by the test centre for edge-1 with the next sequence number, as
/// `edge-agent sign-remote` prints it. `what` is `--config` or `--watchlist`.
fn signed(what: &str, version: &str, text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("doc");
    std::fs::write(&file, text).expect("write document");
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed).to_string();
    let out = bin()
        .args(["sign-remote", "--key"])
        .arg(&centre().0)
        .args(["--site", "test-site", "--device", "edge-1", "--seq", &seq])
        .args(["--doc-version", version, "--actor", "test-operator", what])
        .arg(&file)
        .output()
        .expect("run sign-remote");
    assert!(
        out.status.success(),
        "sign-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn config_set(version: &str, toml: &str) -> Vec<u8> {
    signed("--config", version, toml)
}

fn agent_config(port: u16, spool: &Path, rtsp: &str, extra: &str) -> String {
    format!(
        r#"[device]
site_id = "test-site"
device_id = "edge-1"

[runtime]
intra_threads = 2

[mqtt]
broker = "mqtt://127.0.0.1:{port}"

[storage]
spool_dir = "{spool}"

[http]
enabled = false

[remote]
centre_keys = ["{key}"]

[[cameras]]
id = "cam-a"
url = "{rtsp}"
target_fps = 5

[[cameras]]
id = "cam-b"
url = "{rtsp}"
target_fps = 5
frame_size = [640, 458]
{extra}"#,
        spool = spool.display(),
        key = centre().1,
    )
}

fn start_agent(config: &Path, events: &Path) -> (Killed, mpsc::Receiver<String>) {
    let mut agent = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["--log-format", "text", "run", "--config"])
        .arg(config)
        .arg("--events")
        .arg(events)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let stderr = agent.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("agent: {line}");
            let _ = tx.send(line);
        }
    });
    (Killed(agent), rx)
}

fn stop_agent(agent: &mut Killed) {
    let pid = agent.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let start = Instant::now();
    while agent.0.try_wait().ok().flatten().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const GOOD_ZONE: &str = r#"
[[cameras.zones]]
id = "all"
polygon = [[0, 0], [640, 0], [640, 458], [0, 458]]

[[cameras.rules]]
id = "any-vehicle"
kind = "intrusion"
zone = "all"
"#;

#[test]
fn agent_takes_config_over_mqtt_and_rejects_bad_payloads() {
    ort_lib();
    // mosquitto drops root to its own user, which must read the files.
    let dir = test_dir();
    let broker = mosquitto(dir.path());
    let port = broker.port;
    let mut rtsp = common::rtsp::RtspServer::start(&clip(), "/cam");
    let spool = dir.path().join("spool");
    let config = dir.path().join("agent.toml");
    let disk_text = agent_config(port, &spool, &rtsp.url(), "");
    std::fs::write(&config, &disk_text).expect("write config");
    let events = dir.path().join("events.jsonl");
    let (mut agent, logs) = start_agent(&config, &events);

    let first = wait_state(port, "the start-up state", Duration::from_secs(120), |s| {
        s["version"] == "file"
    });
    assert_eq!(first["status"], "applied");
    let file_hash = first["config_hash"].as_str().expect("hash").to_string();

    // Garbage bytes: not UTF-8.
    publish(
        port,
        "config/set",
        &[0xff, 0xfe, 0x00, 0x9c, 0x42],
        dir.path(),
    );
    let s = wait_state(port, "garbage rejected", Duration::from_secs(20), |s| {
        s["status"] == "rejected"
            && s["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not UTF-8"))
    });
    assert_eq!(s["config_hash"], file_hash.as_str(), "nothing changed");

    // 10 MB: refused by size before parsing.
    publish(port, "config/set", &vec![b'{'; 10 << 20], dir.path());
    wait_state(port, "10 MB rejected", Duration::from_secs(20), |s| {
        s["status"] == "rejected"
            && s["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("10485760 bytes; the limit is 262144"))
    });

    // A zone outside cam-b's frame: rejected by the validator of `check`, located in the payload.
    let bad_zone = agent_config(
        port,
        &spool,
        &rtsp.url(),
        &GOOD_ZONE.replace("[640, 458], [0, 458]", "[6400, 458], [0, 458]"),
    );
    publish(
        port,
        "config/set",
        &config_set("bad-zone", &bad_zone),
        dir.path(),
    );
    let s = wait_state(port, "bad zone rejected", Duration::from_secs(20), |s| {
        s["request"]["version"] == "bad-zone"
    });
    assert_eq!(s["status"], "rejected", "{s}");
    let at = s["errors"][0]["at"].as_str().unwrap_or_default();
    assert!(
        at.starts_with("mqtt:config/set:3"),
        "located in the sent text: {s}"
    );
    assert_eq!(s["config_hash"], file_hash.as_str());

    // A good change: cam-b gets a zone and a rule, in place; cam-a is untouched.
    let v2 = agent_config(port, &spool, &rtsp.url(), GOOD_ZONE);
    // Whoever can publish on the broker is not the centre: an unsigned document is refused.
    let unsigned = serde_json::json!({"version": "unsigned", "toml": v2});
    publish(
        port,
        "config/set",
        unsigned.to_string().as_bytes(),
        dir.path(),
    );
    let s = wait_state(port, "unsigned refused", Duration::from_secs(20), |s| {
        s["request"]["version"] == "unsigned"
    });
    assert_eq!(s["status"], "rejected", "{s}");
    assert!(
        s["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not signed")),
        "{s}"
    );
    assert_eq!(s["config_hash"], file_hash.as_str());

    let v2_doc = config_set("v2", &v2);
    publish(port, "config/set", &v2_doc, dir.path());
    let s = wait_state(port, "v2 applied", Duration::from_secs(30), |s| {
        s["request"]["version"] == "v2"
    });
    assert_eq!(s["status"], "applied", "{s}");
    assert_eq!(s["version"], "v2");
    let v2_hash = s["config_hash"].as_str().expect("hash").to_string();
    assert_ne!(v2_hash, file_hash, "a new hash");
    assert_eq!(s["changes"], serde_json::json!(["cam-b: rules replaced"]));
    // The same signed document sent again (a recorded message replayed): refused.
    publish(port, "config/set", &v2_doc, dir.path());
    let s = wait_state(port, "replay refused", Duration::from_secs(20), |s| {
        s["request"]["version"] == "v2" && s["status"] == "rejected"
    });
    assert!(
        s["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("replay")),
        "{s}"
    );
    assert_eq!(s["version"], "v2");
    // Events from now on name the new config.
    let start = Instant::now();
    while !std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| e["config_hash"] == v2_hash.as_str())
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no event names config {v2_hash}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A new camera on a local file: refused before anything is opened (issue 19), v2 keeps running.
    let v3 = format!("{v2}\n[[cameras]]\nid = \"cam-c\"\nurl = \"/nonexistent/clip.mp4\"\n");
    publish(port, "config/set", &config_set("v3", &v3), dir.path());
    let s = wait_state(port, "v3 rejected", Duration::from_secs(30), |s| {
        s["request"]["version"] == "v3"
    });
    assert_eq!(s["status"], "rejected", "{s}");
    assert_eq!(s["version"], "v2");
    assert_eq!(s["config_hash"], v2_hash.as_str());
    assert!(
        s["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cam-c") && m.contains("rtsp://")),
        "{s}"
    );

    // A rollback (the change passes every check but a camera cannot be started) is covered with the
    // real pipeline by apply_keeps_unchanged_cameras_and_changes_nothing_when_it_fails and, through
    // the state message, by remote::agent's tests: from the network only streams may be named, and
    // an RTSP camera that cannot connect yet is started and reconnects, as documented.

    // Watchlists: a good one is in force, a bad one is refused with its line.
    let wl = signed(
        "--watchlist",
        "w1",
        "# test list\n51F-123.45 # stolen\n29B125662\n",
    );
    publish(port, "watchlist/set", &wl, dir.path());
    let s = wait_state(port, "w1 applied", Duration::from_secs(20), |s| {
        s["request"]["version"] == "w1"
    });
    assert_eq!(s["status"], "applied", "{s}");
    assert_eq!(s["watchlist"]["entries"], 2);
    let bad = signed("--watchlist", "w2", "51F-123.45\nnot a plate!\n");
    publish(port, "watchlist/set", &bad, dir.path());
    let s = wait_state(port, "w2 rejected", Duration::from_secs(20), |s| {
        s["request"]["version"] == "w2"
    });
    assert_eq!(s["status"], "rejected");
    assert_eq!(s["errors"][0]["at"], "mqtt:watchlist/set:2:1");
    assert_eq!(s["watchlist"]["version"], "w1", "the previous list stays");

    // A retained config/set stays on the broker and is handed out again at every subscription:
    // after a reconnect it would be applied over whatever came since. The agent ignores messages
    // delivered as retained (checked at the restart below). Live, MQTT 3.1.1 gives no retain flag,
    // so this one is applied now, then superseded by a plain publish of v2.
    let file = dir.path().join("retained.json");
    std::fs::write(&file, config_set("v-retained", &v2)).expect("write payload");
    let status = Command::new(need("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-r"])
        .args(["-t", &format!("{BASE}/config/set")])
        .arg("-f")
        .arg(&file)
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success());
    wait_state(port, "v-retained applied", Duration::from_secs(20), |s| {
        s["version"] == "v-retained"
    });
    publish(port, "config/set", &config_set("v2", &v2), dir.path());
    wait_state(port, "v2 again", Duration::from_secs(20), |s| {
        s["version"] == "v2"
    });

    assert!(
        agent.0.try_wait().expect("wait").is_none(),
        "the agent stayed up"
    );
    stop_agent(&mut agent);
    let lines: Vec<String> = logs.try_iter().collect();
    let opened = |cam: &str| {
        lines
            .iter()
            .filter(|l| l.contains("camera opened") && l.contains(&format!("camera={cam}")))
            .count()
    };
    assert_eq!(opened("cam-a"), 1, "cam-a's stream was never reopened");
    assert_eq!(
        opened("cam-b"),
        1,
        "cam-b's rules were swapped without reopening its stream"
    );

    // Every outcome here is in the audit log, and the chain verifies (`config.rollback` is
    // asserted by remote::agent's tests, which drive a refusing pipeline).
    let audit = spool.join("audit.jsonl");
    let text = std::fs::read_to_string(&audit).expect("audit log");
    for action in [
        "config.reject",
        "config.apply",
        "watchlist.set",
        "watchlist.reject",
    ] {
        assert!(
            text.contains(&format!("\"{action}\"")),
            "no {action} in the audit log"
        );
    }
    let out = run(bin().args(["audit", "verify"]).arg(&audit));
    assert!(out.status.success(), "audit verify: {}", stderr(&out));
    // ... and every record is signed with the device key
    let key = edge_agent::signing::DeviceKey::load_or_create(&spool.join("device.key"))
        .expect("the agent made its key")
        .public_hex();
    let out = run(bin().args(["audit", "verify", "--key", &key]).arg(&audit));
    assert!(out.status.success(), "audit verify --key: {}", stdout(&out));
    assert!(
        stdout(&out).contains("from record 0 on"),
        "{}",
        stdout(&out)
    );
    // The sender's name in the payload is a claim, not an identity: the record's actor is the
    // centre key that signed.
    let apply: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["action"] == "config.apply")
        .expect("a config.apply record");
    assert_eq!(
        apply["actor"].as_str(),
        Some(format!("key:{}", &centre().1[..16]).as_str()),
        "{apply}"
    );
    assert_eq!(
        apply["details"]["claimed_actor"], "test-operator",
        "{apply}"
    );
    // Events carry the audit head as an anchor: the log holds it, and the same log cut short
    // does not.
    let anchor = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|e| e["audit_head"].as_str().map(String::from))
        .expect("events carry audit_head");
    let out = run(bin()
        .args(["audit", "verify", "--anchor", &anchor])
        .arg(&audit));
    assert!(out.status.success(), "anchor: {}", stdout(&out));
    let cut = dir.path().join("audit-cut.jsonl");
    let kept: Vec<&str> = text.lines().take_while(|l| !l.contains(&anchor)).collect();
    std::fs::write(&cut, kept.join("\n") + "\n").unwrap();
    let out = run(bin()
        .args(["audit", "verify", "--anchor", &anchor])
        .arg(&cut));
    assert!(!out.status.success(), "a cut log passed: {}", stdout(&out));
    assert!(stdout(&out).contains("not in the log"), "{}", stdout(&out));

    // A restart runs the last good remote config and watchlist, not the file, and the retained
    // v-retained, handed out again at the new subscription, is not applied over it.
    let _ = Command::new(need("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-r", "-n"])
        .args(["-t", &format!("{BASE}/config/state")])
        .status();
    let (mut agent, _logs) = start_agent(&config, &events);
    let s = wait_state(
        port,
        "the state after restart",
        Duration::from_secs(120),
        |s| s["request"].is_null(),
    );
    assert_eq!(s["version"], "v2", "{s}");
    assert_eq!(s["config_hash"], v2_hash.as_str());
    assert_eq!(s["watchlist"]["version"], "w1");
    // the agent has subscribed by now (it answered); give the retained message time to arrive
    std::thread::sleep(Duration::from_secs(3));
    let s = retained_state(port).expect("state");
    assert_eq!(
        (s["version"].as_str(), s["request"].is_null()),
        (Some("v2"), true),
        "the retained config/set was applied after the restart: {s}"
    );
    stop_agent(&mut agent);
    rtsp.kill();
}

/// An `evidence/get` for clip `sha`, signed by the test centre (`edge-agent sign-remote --clip`).
fn clip_request(version: &str, sha: &str) -> Vec<u8> {
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed).to_string();
    let out = bin()
        .args(["sign-remote", "--key"])
        .arg(&centre().0)
        .args(["--site", "test-site", "--device", "edge-1", "--seq", &seq])
        .args(["--doc-version", version, "--clip", sha])
        .output()
        .expect("run sign-remote");
    assert!(out.status.success(), "sign-remote --clip: {}", stderr(&out));
    out.stdout
}

/// A clip kept on the device travels only when a signed `evidence/get` names its hash: then in
/// pieces on the evidence topics, which put together hash to what the event said, with an audit
/// record naming the centre key. Unsigned, unknown and path-like requests are refused in
/// `config/state`. With `[mqtt] evidence = "on_request"` the events' images are kept the same way.
#[test]
fn a_clip_kept_on_the_device_is_sent_only_on_a_signed_request() {
    let dir = test_dir();
    let broker = mosquitto(dir.path());
    let port = broker.port;
    let mut rtsp = common::rtsp::RtspServer::start(&clip(), "/cam");
    let spool = dir.path().join("spool");
    let config = dir.path().join("agent.toml");
    let extra = format!("{GOOD_ZONE}\n[clips]\npre_s = 1\npost_s = 2\n");
    // images too stay on the device until asked for
    let text = agent_config(port, &spool, &rtsp.url(), &extra)
        .replace("[mqtt]\n", "[mqtt]\nevidence = \"on_request\"\n");
    std::fs::write(&config, text).unwrap();
    let events = dir.path().join("events.jsonl");
    let (mut agent, _logs) = start_agent(&config, &events);
    let read_events = || -> Vec<Value> {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let clip_ref = |e: &Value, on_request: bool| -> Option<Value> {
        let r = &e["evidence"][0];
        (r["role"] == "clip" && r["clip"]["on_request"] == on_request).then(|| r.clone())
    };
    let start = Instant::now();
    let kept = loop {
        if let Some(r) = read_events().iter().find_map(|e| clip_ref(e, true)) {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no clip was made"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let sha = kept["sha256"].as_str().unwrap().to_string();
    assert!(spool.join("clips").join(format!("{sha}.mp4")).is_file());
    // the violation's frame and crop are kept too: references only, files in <spool>/held
    let held: Vec<String> = read_events()
        .iter()
        .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["on_request"] == true)
        .map(|r| r["sha256"].as_str().unwrap().to_string())
        .collect();
    assert!(!held.is_empty(), "no image kept on the device");
    let image = held[0].clone();
    assert!(spool.join("held").join(format!("{image}.jpg")).is_file());

    // Everything the device publishes on its evidence topics, payloads in hex.
    let sub = Command::new(need("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", &format!("{BASE}/evidence/+"), "-F", "%t %x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run mosquitto_sub");
    let mut sub = Killed(sub);
    std::thread::sleep(Duration::from_millis(500));

    // Refused: unsigned, a clip the device does not have, and a path instead of a hash.
    let unsigned = format!(r#"{{"version":"e0","sha256":"{sha}"}}"#);
    publish(port, "evidence/get", unsigned.as_bytes(), dir.path());
    let s = wait_state(
        port,
        "the unsigned request refused",
        Duration::from_secs(30),
        |s| s["request"]["topic"] == "evidence/get" && s["request"]["version"] == "e0",
    );
    assert_eq!(s["status"], "rejected", "{s}");
    assert!(
        s["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not signed"),
        "{s}"
    );
    publish(
        port,
        "evidence/get",
        &clip_request("e1", &"f".repeat(64)),
        dir.path(),
    );
    let s = wait_state(
        port,
        "the unknown clip refused",
        Duration::from_secs(30),
        |s| s["request"]["version"] == "e1",
    );
    assert!(
        s["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no clip"),
        "{s}"
    );
    publish(
        port,
        "evidence/get",
        &clip_request("e2", "../../device.key"),
        dir.path(),
    );
    let s = wait_state(port, "the path refused", Duration::from_secs(30), |s| {
        s["status"] == "rejected"
            && s["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("hex"))
    });
    assert_eq!(s["request"]["topic"], "evidence/get", "{s}");

    // Served: the event again with the clip in pieces, published and acknowledged.
    publish(port, "evidence/get", &clip_request("e3", &sha), dir.path());
    let start = Instant::now();
    let sent = loop {
        if let Some(e) = read_events()
            .into_iter()
            .find(|e| clip_ref(e, false).is_some_and(|r| r["sha256"] == sha.as_str()))
        {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the clip was not sent"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(sent["phase"], "update");
    let parts: Vec<String> = sent["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["role"] == "clip_part")
        .map(|r| r["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        Some(parts.len() as u64),
        sent["evidence"][0]["clip"]["parts"].as_u64()
    );
    assert!(!parts.is_empty());
    // all pieces arrive; put together they are the clip
    let collected = Arc::new(Mutex::new(String::new()));
    {
        let collected = collected.clone();
        let stdout = sub.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut c = collected.lock().unwrap();
                c.push_str(&line);
                c.push('\n');
            }
        });
    }
    let start = Instant::now();
    let whole = loop {
        let text = collected.lock().unwrap().clone();
        let by_topic: std::collections::HashMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once(' ')).collect();
        let pieces: Option<Vec<&str>> = parts
            .iter()
            .map(|p| {
                by_topic
                    .get(format!("{BASE}/evidence/{p}").as_str())
                    .copied()
            })
            .collect();
        if let Some(pieces) = pieces {
            break pieces.concat();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pieces missing: {text:.400}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let bytes: Vec<u8> = (0..whole.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&whole[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(edge_agent::events::evidence::sha256_hex(&bytes), sha);
    // A kept image travels only when asked for, like a clip (one piece: the JPEG itself).
    assert!(
        !collected
            .lock()
            .unwrap()
            .contains(&format!("evidence/{image} ")),
        "a kept image was published unasked"
    );
    publish(
        port,
        "evidence/get",
        &clip_request("e4", &image),
        dir.path(),
    );
    let start = Instant::now();
    loop {
        let text = collected.lock().unwrap().clone();
        if let Some(hex) = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{BASE}/evidence/{image} ")))
        {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(edge_agent::events::evidence::sha256_hex(&bytes), image);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the kept image was not sent"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // the request and the clip leaving are in the audit log, under the centre key
    let audit = std::fs::read_to_string(spool.join("audit.jsonl")).unwrap();
    let sent_record = audit
        .lines()
        .find(|l| l.contains("evidence.clip_sent"))
        .unwrap_or_else(|| panic!("no evidence.clip_sent in the audit log"));
    assert!(
        sent_record.contains(&sha) && sent_record.contains("\"key:"),
        "{sent_record}"
    );
    assert!(
        audit.contains("evidence.request_refused") && audit.contains("evidence.request_unserved")
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("evidence.image_sent") && l.contains(&image)),
        "no evidence.image_sent for the kept image"
    );
    let _ = sub.0.kill();
    stop_agent(&mut agent);
    rtsp.kill();
}
