//! `edge-agent probe` end to end: a good config (a real clip and an image folder as cameras, the
//! real models, a real mosquitto with TLS and a password started here) passes with exit 0; a broken
//! one (an unreachable RTSP camera, a CA that did not sign the broker's certificate) fails with
//! exit 1 and rows that name the camera URL and the CA problem.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::broker::{Mosquitto, password_auth, test_dir, tls_listener, write_passwd};
use common::tls::make_certs;
use common::*;

/// mosquitto with one TLS listener that wants a user name and password.
fn start_broker(dir: &Path) -> Mosquitto {
    let port = free_port();
    write_passwd(dir, &[("edge", "s3cret-probe")]);
    let conf = format!(
        "{}persistence false\nlog_dest file {}/mosquitto.log\n{}",
        password_auth(dir, false),
        dir.display(),
        tls_listener(port, dir, false)
    );
    Mosquitto::start(dir, &conf, port)
}

fn config(dir: &Path, name: &str, cameras: &[(&str, String)], ca: &str, port: u16) -> PathBuf {
    let mut text = format!(
        "[device]\nsite_id = \"probe-site\"\ndevice_id = \"probe-1\"\n\n\
         [mqtt]\nbroker = \"mqtts://localhost:{port}\"\nusername = \"edge\"\npassword_file = \"password.txt\"\n\n\
         [mqtt.tls]\nca_file = \"{ca}\"\n\n[storage]\nspool_dir = \"spool-{name}\"\nmax_size_mb = 64\n"
    );
    for (id, url) in cameras {
        text.push_str(&format!(
            "\n[[cameras]]\nid = \"{id}\"\nurl = \"{url}\"\ntarget_fps = 5.0\n"
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn setup() -> (tempfile::TempDir, Mosquitto) {
    shared_dir();
    ort_lib();
    // mosquitto drops root and must read the files.
    let dir = test_dir();
    make_certs(dir.path(), &[]);
    std::fs::write(dir.path().join("password.txt"), "s3cret-probe\n").unwrap();
    let broker = start_broker(dir.path());
    (dir, broker)
}

fn probe(config: &Path) -> (i32, String) {
    let out = run(bin()
        .args([
            "probe",
            "--allow-unsynced-clock",
            "--timeout-s",
            "10",
            "--config",
        ])
        .arg(config));
    (out.status.code().unwrap_or(-1), stdout(&out))
}

/// The table's rows for one check, as (target, result, detail).
fn rows<'a>(table: &'a str, check: &str) -> Vec<(&'a str, &'a str, &'a str)> {
    table
        .lines()
        .filter(|l| l.starts_with(&format!("{check} ")))
        .map(|l| {
            let result = ["PASS", "WARN", "FAIL"]
                .into_iter()
                .find(|r| l.contains(&format!("  {r}  ")))
                .unwrap_or("?");
            let (before, detail) = l.split_once(&format!("  {result}  ")).unwrap_or((l, ""));
            (before[check.len()..].trim(), result, detail.trim())
        })
        .collect()
}

fn save(name: &str, text: &str) {
    // Kept for the commissioning docs and the report: target/probe-*.txt.
    let dir = repo_root().join("target");
    let _ = std::fs::write(dir.join(format!("probe-{name}.txt")), text);
}

#[test]
fn a_good_config_passes_with_exit_0() {
    let (dir, broker) = setup();
    let footage = shared_dir().join("footage");
    let clip = footage.join("video/vn_citycam_haiphong_cbp640_10fps.mp4");
    let folder = footage.join("frames/vn_citycam_haiphong_10fps");
    let cfg = config(
        dir.path(),
        "good",
        &[
            ("clip", clip.display().to_string()),
            ("folder", folder.display().to_string()),
        ],
        "ca.crt",
        broker.port,
    );
    let (code, table) = probe(&cfg);
    save("good", &table);
    assert_eq!(code, 0, "{table}");
    let cams = rows(&table, "camera");
    assert_eq!(cams.len(), 2, "{table}");
    for (target, result, detail) in &cams {
        assert_eq!(*result, "PASS", "{target}: {detail}");
    }
    assert!(cams[0].2.starts_with("640x458, 10.0 fps"), "{}", cams[0].2);
    assert!(cams[1].2.starts_with("1006x720"), "{}", cams[1].2);
    let models = rows(&table, "model");
    assert_eq!(
        models.len(),
        4,
        "detector, plate detector, OCR, second OCR: {table}"
    );
    assert!(
        models[3].0 == "plate_ocr_second vn_plate_ocr_ea_ctc_10x37_64x128"
            && models[3].2.contains("(may ship)"),
        "{table}"
    );
    for (target, result, detail) in &models {
        // A model that runs but may not ship is a warning: the licence is part of commissioning.
        let expected = match detail.contains("(may ship)") {
            true => "PASS",
            false => "WARN",
        };
        assert_eq!(*result, expected, "{target}: {detail}");
        assert!(
            detail.contains("verified") && detail.contains("one inference on a camera frame"),
            "{detail}"
        );
    }
    let plate_detector = models
        .iter()
        .find(|(target, ..)| target.starts_with("plate_detector vn_plate_det_yolo26n"))
        .expect("the default plate detector's row");
    assert_eq!(plate_detector.1, "WARN", "{table}");
    assert!(
        plate_detector
            .2
            .contains("licence AGPL-3.0-only (may not ship)"),
        "{table}"
    );
    let broker_rows = rows(&table, "broker");
    assert_eq!(broker_rows[0].1, "PASS", "{table}");
    assert!(
        broker_rows[0].2.contains("CONNACK") && broker_rows[0].2.contains("ca.crt, user edge"),
        "{table}"
    );
    assert_eq!(rows(&table, "runtime")[0].1, "PASS");
    assert_eq!(rows(&table, "disk")[0].1, "PASS", "{table}");
    // no agent has run with this config: no key yet, and probe does not make one
    assert_eq!(rows(&table, "identity")[0].1, "WARN", "{table}");
    assert_ne!(rows(&table, "clock")[0].1, "FAIL", "{table}");
    assert!(table.contains(" 0 failed"), "{table}");
}

#[test]
fn a_frame_size_the_stream_does_not_send_fails_the_camera() {
    let (dir, broker) = setup();
    let clip = shared_dir().join("footage/video/vn_citycam_haiphong_cbp640_10fps.mp4");
    let cfg = config(
        dir.path(),
        "resized",
        &[("clip", clip.display().to_string())],
        "ca.crt",
        broker.port,
    );
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("frame_size = [1280, 720]\n");
    std::fs::write(&cfg, text).unwrap();
    let (code, table) = probe(&cfg);
    save("resized", &table);
    assert_ne!(code, 0, "{table}");
    let cams = rows(&table, "camera");
    assert_eq!(cams[0].1, "FAIL", "{table}");
    assert!(
        cams[0]
            .2
            .contains("frame_size is [1280, 720] but the stream sends 640x458"),
        "{}",
        cams[0].2
    );
}

#[test]
fn a_broken_config_fails_naming_the_camera_and_the_ca() {
    let (dir, broker) = setup();
    let cfg = config(
        dir.path(),
        "broken",
        &[("gate", "rtsp://127.0.0.1:1/x".to_string())],
        "wrong-ca.crt",
        broker.port,
    );
    let started = Instant::now();
    let (code, table) = probe(&cfg);
    save("broken", &table);
    assert_eq!(code, 1, "{table}");
    let cams = rows(&table, "camera");
    assert_eq!(cams.len(), 1, "{table}");
    assert_eq!(cams[0].1, "FAIL", "{table}");
    assert!(cams[0].0.contains("rtsp://127.0.0.1:1/x"), "{table}");
    assert!(
        cams[0].2.contains("rtsp://127.0.0.1:1/x") && cams[0].2.to_lowercase().contains("refused"),
        "{table}"
    );
    let b = rows(&table, "broker");
    assert_eq!(b[0].1, "FAIL", "{table}");
    assert!(
        b[0].2.contains("UnknownIssuer")
            && b[0].2.contains("wrong-ca.crt")
            && b[0].2.contains("[mqtt.tls].ca_file"),
        "{table}"
    );
    // Models are independent of the broken parts; without a frame they run on a test image.
    for (target, result, detail) in rows(&table, "model") {
        assert_ne!(result, "FAIL", "{target}: {detail}");
        assert!(detail.contains("grey test image"), "{detail}");
    }
    // Failing fast: a refused connection is reported at once, not after the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_unusable_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[device]\nsite_id = \"s\"\n").unwrap();
    let (code, table) = probe(&cfg);
    assert_eq!(code, 2, "{table}");
    let r = rows(&table, "config");
    assert_eq!(r[0].1, "FAIL");
    assert!(
        r[0].2.contains("bad.toml") && r[0].2.contains("device_id"),
        "{table}"
    );
}

#[test]
fn a_main_stream_that_does_not_answer_is_a_warning_not_a_failure() {
    let (dir, broker) = setup();
    let clip = shared_dir().join("footage/video/vn_citycam_haiphong_cbp640_10fps.mp4");
    let cfg = config(
        dir.path(),
        "main-stream",
        &[("gate", clip.display().to_string())],
        "ca.crt",
        broker.port,
    );
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("evidence_url = \"rtsp://127.0.0.1:1/main\"\n");
    std::fs::write(&cfg, text).unwrap();
    let (code, table) = probe(&cfg);
    save("main-stream", &table);
    let cams = rows(&table, "camera");
    assert_eq!(cams.len(), 2, "{table}");
    assert_eq!(cams[0].1, "PASS", "{table}");
    let main = &cams[1];
    assert!(
        main.0.starts_with("gate main rtsp://127.0.0.1:1/main"),
        "{table}"
    );
    assert_eq!(main.1, "WARN", "{table}");
    assert!(main.2.contains("from the detection stream"), "{table}");
    assert_ne!(code, 1, "a main stream down fails nothing: {table}");
}
