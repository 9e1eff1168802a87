//! Camera health and the systemd service end to end, with the real binary, models and footage:
//! `replay` of a real image sequence with a covered-lens stretch gives a `camera_health` event
//! into `covered` (with the covered frame as evidence) and one back to `ok`; `run` under a
//! notification socket bound here sends READY=1, WATCHDOG=1 while frames are analysed, STOPPING=1.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The 40 real frames, then `covered` darkened copies of the first ones, then the 40 again.
fn covered_sequence(dir: &Path, covered: usize) -> PathBuf {
    let src = shared_dir().join("footage/frames/vn_citycam_haiphong_10fps");
    let out = dir.join("frames");
    std::fs::create_dir_all(&out).unwrap();
    let mut n = 0;
    let mut put = |path: &Path, cover: bool| {
        n += 1;
        let dest = out.join(format!("f{n:04}.jpg"));
        if cover {
            // A hand over the lens: almost no light, a faint trace of the scene.
            let mut img = image::open(path).unwrap().to_rgb8();
            for p in img.pixels_mut() {
                for c in p.0.iter_mut() {
                    *c = 6 + *c / 32;
                }
            }
            img.save(&dest).unwrap();
        } else {
            std::fs::copy(path, &dest).unwrap();
        }
    };
    let frames: Vec<PathBuf> = (1..=40)
        .map(|i| src.join(format!("frame_{i:04}.jpg")))
        .collect();
    for f in &frames {
        put(f, false);
    }
    for f in frames.iter().take(covered) {
        put(f, true);
    }
    for f in &frames {
        put(f, false);
    }
    out
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[device]\nsite_id = \"test-site\"\ndevice_id = \"edge-1\"\n\n\
             [storage]\nspool_dir = \"{spool}\"\n\n[http]\nenabled = false\n\n\
             [health]\ncheck_interval_s = 0.2\nlearn_s = 1.0\n\n\
             [[cameras]]\nid = \"junction\"\nurl = \"{frames}\"\ntarget_fps = 10\n{extra}",
            spool = dir.join("spool").display(),
            frames = dir.join("frames").display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_covered_lens_in_real_footage_gives_camera_health_events_with_evidence() {
    ort_lib();
    let dir = tempfile::tempdir().unwrap();
    let frames = covered_sequence(dir.path(), 20);
    let cfg = config(dir.path(), "");
    let events = dir.path().join("events.jsonl");
    let evidence = dir.path().join("evidence");
    let out = run(bin()
        .args(["replay", "--no-plates", "--config"])
        .arg(&cfg)
        .arg(&frames)
        .arg("--events")
        .arg(&events)
        .arg("--evidence")
        .arg(&evidence));
    assert!(out.status.success());
    let health: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "camera_health" && e["rule"]["details"]["previous"].is_string())
        .collect();
    let states: Vec<(&str, &str)> = health
        .iter()
        .map(|e| {
            (
                e["phase"].as_str().unwrap(),
                e["rule"]["details"]["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("new", "covered"), ("end", "ok")], "{health:#?}");
    let covered = &health[0];
    let d = &covered["rule"]["details"];
    assert!(d["mean"].as_f64().unwrap() < 16.0, "{d}");
    assert_eq!(d["active"], serde_json::json!(["covered"]));
    assert_eq!(covered["camera_id"], "junction");
    // The picture that decided it, as evidence, saved and referenced by sha256.
    let ev = covered["evidence"].as_array().unwrap();
    assert_eq!(ev.len(), 1, "{covered}");
    let sha = ev[0]["sha256"].as_str().unwrap();
    assert!(evidence.join(format!("{sha}.jpg")).is_file());
    // Normal frames raise nothing: the cover came after 4 s and lasted 2 s.
    let t0 =
        chrono::DateTime::parse_from_rfc3339(covered["capture_time"].as_str().unwrap()).unwrap();
    let t1 =
        chrono::DateTime::parse_from_rfc3339(health[1]["capture_time"].as_str().unwrap()).unwrap();
    let dt = (t1 - t0).num_milliseconds();
    assert!((1000..=3000).contains(&dt), "covered for {dt} ms");
}

#[test]
fn run_under_systemd_notifies_ready_watchdog_and_stopping() {
    ort_lib();
    let dir = tempfile::tempdir().unwrap();
    covered_sequence(dir.path(), 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(
        dir.path(),
        &format!("\n[mqtt]\nembedded_listen = \"127.0.0.1:{port}\"\n"),
    );
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut agent = bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The 80 frames play in real time (8 s at 10 fps); then the source ends and the agent stops.
    let mut got: Vec<(Duration, String)> = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push((
                started.elapsed(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
        if got.iter().any(|(_, m)| m == "STOPPING=1") {
            break;
        }
        if let Some(status) = agent.try_wait().unwrap() {
            while let Ok(n) = sock.recv(&mut buf) {
                got.push((
                    started.elapsed(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
            assert!(status.success(), "{status}");
            break;
        }
    }
    let status = agent.wait().unwrap();
    assert!(status.success(), "{status}");
    eprintln!("{got:#?}");
    let kinds: Vec<&str> = got
        .iter()
        .map(|(_, m)| m.lines().next().unwrap_or(""))
        .collect();
    let ready = kinds.iter().position(|k| *k == "READY=1").expect("READY=1");
    assert!(
        got[ready].1.contains("STATUS=running 1 camera(s)"),
        "{got:?}"
    );
    let pings = kinds.iter().filter(|k| **k == "WATCHDOG=1").count();
    assert!(
        kinds[..ready].iter().all(|k| *k != "WATCHDOG=1"),
        "watchdog before ready: {kinds:?}"
    );
    // 8 s of frames with a 1 s watchdog: a ping every 0.5 s while frames are analysed.
    assert!(pings >= 5, "{pings} pings: {kinds:?}");
    assert_eq!(kinds.last(), Some(&"STOPPING=1"), "{kinds:?}");
}
