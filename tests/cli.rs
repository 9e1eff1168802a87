//! End-to-end tests of the command line: config checking, ONNX Runtime discovery, model cache.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use common::*;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn example_configs_pass_check() {
    let configs: Vec<_> = std::fs::read_dir(repo_root().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(
        configs.len() >= 3,
        "expected the three example configs, found {configs:?}"
    );
    let out = run(bin().arg("check").args(&configs));
    assert!(out.status.success());
    assert!(!stderr(&out).contains(": error:"));
}

const HEAD: &str = "[device]\nsite_id = \"site-1\"\ndevice_id = \"dev-1\"\n\n";

#[test]
fn unknown_key_is_reported_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "unknown.toml",
        &format!("{HEAD}[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/x\"\nfps = 5\n"),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:8:1: error:", cfg.display())),
        "{err}"
    );
    assert!(
        err.contains("unknown field `fps`") && err.contains("target_fps"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn wrong_type_is_reported_at_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "type.toml",
        &format!("{HEAD}[storage]\nmax_size_mb = \"lots\"\n"),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:6:15: error:", cfg.display())),
        "{err}"
    );
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn tracker_section_is_checked_and_points_at_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // low_score above high_score would silently switch off the second association stage.
    let cfg = write(
        dir.path(),
        "tracker.toml",
        &format!(
            "{HEAD}[tracker]
high_score = 0.4
low_score = 0.45
"
        ),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:7:13: error:", cfg.display())),
        "{err}"
    );
    assert!(
        err.contains("tracker.low_score") && err.contains("second association stage"),
        "{err}"
    );
    let typo = write(
        dir.path(),
        "typo.toml",
        &format!(
            "{HEAD}[tracker]
max_lost = 2
"
        ),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&typo));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unknown field `max_lost`") && err.contains("max_lost_s"),
        "{err}"
    );
    let good = write(
        dir.path(),
        "good.toml",
        &format!(
            "{HEAD}[tracker]
low_score = 0.2
max_lost_s = 0.8
min_hits = 2
"
        ),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&good));
    assert!(!stderr(&out).contains("tracker"), "{}", stderr(&out));
}

#[test]
fn duplicate_camera_id_names_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[[cameras]]\nid = \"gate\"\nurl = \"rtsp://h/a\"\n\n[[cameras]]\nid = \"gate\"\nurl = \"rtsp://h/b\"\n"
    );
    let cfg = write(dir.path(), "dup.toml", &text);
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:10:6: error: duplicate camera id `gate` (first used on line 6)",
            cfg.display()
        )),
        "{err}"
    );
}

#[test]
fn every_problem_in_a_file_is_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[runtime]\nthreads = 2\n\n[[cameras]]\nid = \"a/b\"\nurl = \"ftp://h/x\"\n\n[mqtt]\nbroker = \"mqtts://ioc:8883\"\n"
    );
    let cfg = write(dir.path(), "many.toml", &text);
    // The [runtime] error stops deserialisation of that section only; semantic checks need a
    // config that parsed, so fix it and count the semantic ones separately.
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(stderr(&out).contains(":6:1: error: in [runtime]: unknown field `threads`"));
    let fixed = write(
        dir.path(),
        "many2.toml",
        &text.replace("threads = 2", "intra_threads = 2"),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&fixed));
    let err = stderr(&out);
    assert!(!out.status.success());
    for needle in [
        ":9:6: error: camera id `a/b`",
        ":10:7: error: ftp://h/x: unsupported camera url scheme `ftp`",
        ":13:10: error: mqtts:// broker without [mqtt.tls]",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in\n{err}");
    }
}

#[test]
fn strict_check_turns_missing_files_into_failures() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("{HEAD}[http]\nlisten = \"0.0.0.0:8080\"\ntoken_file = \"/nonexistent/token\"\n");
    let cfg = write(dir.path(), "strict.toml", &text);
    let lenient = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(lenient.status.success());
    let strict = run(bin()
        .args(["check", "--strict", "--skip-model-hashes"])
        .arg(&cfg));
    assert!(!strict.status.success());
    assert!(stderr(&strict).contains("/nonexistent/token does not exist"));
}

#[test]
fn check_warns_on_a_model_that_may_not_ship_and_strict_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let shippable = format!(
        "{HEAD}[models]\nplate_detector = \"\"\nplate_ocr = \"vn_plate_ocr_ea_ctc_10x37_64x128\"\n"
    );
    let agpl = format!(
        "{HEAD}[models]\ndetector = \"vn_vehicle_yolo11n_int8_dyn\"\nplate_detector = \"\"\nplate_ocr = \"vn_plate_ocr_ea_ctc_10x37_64x128\"\n"
    );
    let clean = write(dir.path(), "clean.toml", &shippable);
    let out = run(bin()
        .args(["check", "--strict", "--skip-model-hashes"])
        .arg(&clean));
    assert!(
        !stderr(&out).contains("may not be shipped"),
        "{}",
        stderr(&out)
    );
    let cfg = write(dir.path(), "agpl.toml", &agpl);
    let lenient = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    let err = stderr(&lenient);
    assert!(
        err.contains(
            ":6:12: warning: detector `vn_vehicle_yolo11n_int8_dyn` is licensed AGPL-3.0-only"
        ),
        "{err}"
    );
    assert!(err.contains("may ship: yolox_nano_coco_416"), "{err}");
    let strict = run(bin()
        .args(["check", "--strict", "--skip-model-hashes"])
        .arg(&cfg));
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains("it may not be shipped in a product"),
        "{}",
        stderr(&strict)
    );
    // A deployment that cleared the rights says so, and `check` takes its word.
    let cleared = write(
        dir.path(),
        "cleared.toml",
        &format!("{agpl}rights_cleared = [\"vn_vehicle_yolo11n_int8_dyn\", \"nope\"]\n"),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cleared));
    let err = stderr(&out);
    assert!(!err.contains("may not be shipped"), "{err}");
    assert!(
        err.contains(":9:") && err.contains("unknown model `nope` in rights_cleared"),
        "{err}"
    );
}

#[test]
fn version_prints_onnxruntime_version_and_path() {
    let lib = ort_lib();
    let out = run(bin().arg("version").env("ORT_DYLIB_PATH", &lib));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains(&format!("edge-agent {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("onnxruntime: 1.31.1"), "{text}");
    assert!(text.contains(&lib.display().to_string()), "{text}");
    // The features line names what was compiled in (the armv7 qemu check relies on `tract`).
    assert_eq!(
        text.lines()
            .find(|l| l.starts_with("features:"))
            .is_some_and(|l| l.contains("tract")),
        cfg!(feature = "tract"),
        "{text}"
    );
    assert!(text.contains("features:"), "{text}");
}

#[test]
fn missing_onnxruntime_library_is_a_clear_error_not_a_panic() {
    let out = run(bin()
        .arg("version")
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1"));
    assert_eq!(out.status.code(), Some(1), "a panic exits 101");
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/libonnxruntime.so.1.31.1") && err.contains("ORT_DYLIB_PATH"),
        "{err}"
    );
    assert!(
        err.contains("onnxruntime==1.31.1"),
        "the error says what to do: {err}"
    );
}

#[test]
fn a_library_that_is_not_onnxruntime_is_refused() {
    let libz = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/aarch64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.is_file())
    .expect("libz.so.1 is part of every Debian system");
    let out = run(bin().arg("version").env("ORT_DYLIB_PATH", libz));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&libz.display().to_string()) && err.contains("is not ONNX Runtime"),
        "{err}"
    );
}

#[test]
fn a_too_old_onnxruntime_is_refused_with_its_version() {
    let old = std::env::var_os("EDGE_AGENT_TEST_OLD_ORT").expect(
        "EDGE_AGENT_TEST_OLD_ORT must name libonnxruntime.so.1.20.1 (scripts/test.sh fetches it from the PyPI wheel)",
    );
    let out = run(bin().arg("version").env("ORT_DYLIB_PATH", &old));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("version 1.20.1") && err.contains("needs 1.31 or newer"),
        "{err}"
    );
}

#[test]
fn configured_library_path_wins_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!("{HEAD}[runtime]\nonnxruntime = \"/nonexistent/from-config.so\"\n"),
    );
    let out = run(bin()
        .arg("version")
        .arg("--config")
        .arg(&cfg)
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/from-config.so (from config runtime.onnxruntime)"));
}

#[test]
fn fetch_then_verify_then_detect_corruption() {
    let mirror = shared_dir().join("models");
    let cache = tempfile::tempdir().unwrap();
    let fetch = run(bin()
        .args([
            "models",
            "fetch",
            "yolox_nano_coco_416",
            "vn_plate_ocr_9x37_64x128",
            "--from",
        ])
        .arg(&mirror)
        .arg("--cache-dir")
        .arg(cache.path()));
    assert!(fetch.status.success());
    assert!(
        stdout(&fetch).contains("3 fetched"),
        "model + labels + OCR model"
    );
    let verify = run(bin()
        .args([
            "models",
            "verify",
            "yolox_nano_coco_416",
            "vn_plate_ocr_9x37_64x128",
            "--cache-dir",
        ])
        .arg(cache.path()));
    assert!(verify.status.success());
    assert!(stdout(&verify).contains("all verified"));

    // Flip one byte of a cached weight: verify must name the file and both hashes.
    let weight = cache.path().join("yolox_nano_coco_416.onnx");
    let mut bytes = std::fs::read(&weight).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&weight, &bytes).unwrap();
    let actual = edge_agent::models::sha256_file(&weight).unwrap();
    let verify = run(bin()
        .args(["models", "verify", "yolox_nano_coco_416", "--cache-dir"])
        .arg(cache.path()));
    assert_eq!(verify.status.code(), Some(1));
    let text = stdout(&verify);
    assert!(
        text.contains("yolox_nano_coco_416.onnx")
            && text.contains("e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd")
            && text.contains(&actual),
        "{text}"
    );

    // A second fetch repairs it from the mirror.
    let refetch = run(bin()
        .args(["models", "fetch", "yolox_nano_coco_416", "--from"])
        .arg(&mirror)
        .arg("--cache-dir")
        .arg(cache.path()));
    assert!(refetch.status.success());
    assert_eq!(
        edge_agent::models::sha256_file(&weight).unwrap(),
        "e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd"
    );
}

#[test]
fn a_corrupt_mirror_copy_is_refused_and_nothing_enters_the_cache() {
    let mirror = tempfile::tempdir().unwrap();
    let mut bytes =
        std::fs::read(shared_dir().join("models/vn_plate_ocr_9x37_64x128.onnx")).unwrap();
    bytes[500] ^= 0x01;
    std::fs::write(mirror.path().join("vn_plate_ocr_9x37_64x128.onnx"), &bytes).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["models", "fetch", "vn_plate_ocr_9x37_64x128", "--from"])
        .arg(mirror.path())
        .arg("--cache-dir")
        .arg(cache.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("vn_plate_ocr_9x37_64x128.onnx") && err.contains("sha256 mismatch"),
        "{err}"
    );
    assert!(
        err.contains("expected c1ae2ae031b10f8ab7ed6e3cdaf8d9c753477e299dbad3579c8f705a7d882134"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "no partial or corrupt file may remain"
    );
}

/// `models fetch` may run as root in a cache the service user owns: a symlink planted where the
/// temporary file used to go (`.NAME.partial`) must not make the fetch write through it.
#[test]
fn a_planted_partial_symlink_is_not_written_through() {
    let cache = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let planted = cache.path().join(".vn_plate_ocr_9x37_64x128.onnx.partial");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let out = run(bin()
        .args(["models", "fetch", "vn_plate_ocr_9x37_64x128", "--from"])
        .arg(shared_dir().join("models"))
        .arg("--cache-dir")
        .arg(cache.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert_eq!(std::fs::read_link(&planted).unwrap(), victim);
    let weight = cache.path().join("vn_plate_ocr_9x37_64x128.onnx");
    assert!(!weight.is_symlink());
    assert_eq!(
        edge_agent::models::sha256_file(&weight).unwrap(),
        "c1ae2ae031b10f8ab7ed6e3cdaf8d9c753477e299dbad3579c8f705a7d882134"
    );
}

/// A minimal HTTP/1.1 file server on 127.0.0.1 serving `dir`, answering `requests` requests.
fn serve_dir(dir: std::path::PathBuf, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            match std::fs::read(dir.join(&path)) {
                Ok(body) => {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .unwrap();
                    stream.write_all(&body).unwrap();
                }
                Err(_) => write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap(),
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn fetch_over_http_from_a_local_mirror() {
    let url = serve_dir(shared_dir().join("models"), 4);
    let cache = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args([
            "models",
            "fetch",
            "vn_plate_ocr_9x37_64x128",
            "--from",
            &url,
            "--cache-dir",
        ])
        .arg(cache.path()));
    assert!(out.status.success());
    assert!(stdout(&out).contains(&format!("from {url}/vn_plate_ocr_9x37_64x128.onnx")));
    let verify = run(bin()
        .args([
            "models",
            "verify",
            "vn_plate_ocr_9x37_64x128",
            "--cache-dir",
        ])
        .arg(cache.path()));
    assert!(verify.status.success());
}

#[test]
fn a_model_no_source_has_is_an_error_naming_the_file() {
    let empty = tempfile::tempdir().unwrap();
    let url = serve_dir(empty.path().to_path_buf(), 2);
    let cache = tempfile::tempdir().unwrap();
    // ppocrv4_det has no official URL, and the mirror answers 404.
    let out = run(bin()
        .args([
            "models",
            "fetch",
            "ppocrv4_det",
            "--from",
            &url,
            "--cache-dir",
        ])
        .arg(cache.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no source for ppocrv4_det.onnx"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn models_list_shows_every_manifest() {
    let out = run(bin().args(["models", "list"]));
    assert!(out.status.success());
    let text = stdout(&out);
    for name in [
        "yolox_nano_coco_416",
        "vn_plate_det_yolo26n_640_e2e",
        "vn_plate_det_yolo26n_640_e2e_opset19",
        "vn_plate_ocr_9x37_64x128",
        "ppocrv4_det",
        "ppocrv4_rec",
        "vn_vehicle_yolo11n_int8_dyn",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}

#[test]
fn json_logs_for_fleets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!("{HEAD}[runtime]\nonnxruntime = \"/nonexistent/x.so\"\n"),
    );
    let out = run(bin()
        .args(["--log-format", "json", "run", "--config"])
        .arg(&cfg));
    assert!(!out.status.success());
    let first_json = stderr(&out)
        .lines()
        .find(|l| l.starts_with('{'))
        .map(str::to_string);
    let line = first_json.expect("at least one JSON log line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("log line is JSON");
    assert!(
        v.get("level").is_some() && v.get("timestamp").is_some(),
        "{v}"
    );
}

/// The subcommands a `--help` text lists under `Commands:` (clap's own `help` left out).
fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // a wrapped description continues further in
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_subcommand_has_help() {
    // Walks the whole command tree from what `--help` lists, so a new subcommand is covered the
    // day it is added.
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        let out = run(bin().args(&path).arg("--help"));
        assert!(out.status.success(), "{path:?} --help");
        let help = stdout(&out);
        assert!(help.contains("Usage:"), "{path:?} --help:\n{help}");
        for name in listed_subcommands(&help) {
            let mut sub = path.clone();
            sub.push(name);
            pending.push(sub);
        }
        seen.push(path.join(" "));
    }
    let top = seen
        .iter()
        .filter(|p| !p.is_empty() && !p.contains(' '))
        .count();
    assert!(
        top >= 16,
        "only {top} top-level subcommands found: {seen:?}"
    );
    for nested in ["models fetch", "models cards", "audit verify"] {
        assert!(
            seen.iter().any(|p| p == nested),
            "{nested} not reached: {seen:?}"
        );
    }
}

#[test]
fn the_event_schema_and_the_model_cards_print() {
    let out = run(bin().arg("schema"));
    assert!(out.status.success());
    let schema: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("`schema` prints one JSON document");
    assert!(
        schema.get("$schema").is_some() || schema.get("title").is_some(),
        "{schema}"
    );
    let out = run(bin().args(["models", "cards"]));
    assert!(out.status.success());
    let cards = stdout(&out);
    for needle in [
        "vn_plate_ocr_9x37_64x128",
        "licence:",
        "known limits:",
        // The default pair's own thresholds, beside today's reader's alone.
        "slot with vn_plate_ocr_ea_ctc_10x37_64x128 >= 0.897, fused with vn_plate_ocr_ea_ctc_10x37_64x128 >= 0.964",
    ] {
        assert!(cards.contains(needle), "{needle} missing from:\n{cards}");
    }
}

#[test]
fn detect_finds_the_dog_bicycle_and_car_at_the_golden_boxes() {
    let img = shared_dir().join("footage/images/coco_dog.jpg");
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["detect", "--model", "yolox_nano_coco_416"])
        .arg(&img)
        .arg("--annotate")
        .arg(out_dir.path())
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert!(out.status.success());
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert_eq!(
        line["file"],
        img.display().to_string(),
        "file is echoed as given"
    );
    let dets = line["detections"].as_array().unwrap();
    let find = |label: &str| {
        dets.iter()
            .find(|d| d["label"] == label)
            .unwrap_or_else(|| panic!("no {label} in {dets:?}"))
    };
    let close = |d: &serde_json::Value, want: [f64; 4]| {
        let b = d["box"].as_array().unwrap();
        b.iter()
            .zip(want)
            .all(|(g, w)| (g.as_f64().unwrap() - w).abs() <= 1.5)
    };
    assert!(close(find("dog"), [132.8, 206.6, 325.7, 543.1]));
    assert!(close(find("bicycle"), [51.7, 137.2, 572.3, 423.6]));
    assert!(close(find("car"), [466.3, 78.4, 692.5, 171.3]));
    let png = out_dir.path().join("coco_dog.png");
    let annotated = image::open(&png).expect("annotated PNG").to_rgb8();
    assert_eq!(annotated.dimensions(), (768, 576));
}

#[test]
fn detect_reports_an_unreadable_image_by_name_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "broken.jpg", "\u{FF}not really a jpeg");
    let good = shared_dir().join("footage/images/coco_dog.jpg");
    let out = run(bin()
        .args(["detect", "--model", "yolox_nano_coco_416"])
        .arg(&bad)
        .arg(&good)
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.jpg"), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "the good image is still processed"
    );
}

#[test]
fn a_closed_stdout_ends_detect_quietly() {
    use std::io::Read;
    let frames = shared_dir().join("footage/frames/vn_citycam_haiphong_10fps");
    let mut child = bin()
        .args(["detect", "--model", "yolox_nano_coco_416"])
        .args((1..=6).map(|i| frames.join(format!("frame_{i:04}.jpg"))))
        .env("ORT_DYLIB_PATH", ort_lib())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe is dropped
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// The sections of a `run` config before its camera: [`HEAD`], `runtime` (sections or nothing), the
/// embedded broker on a free port and the spool in `dir`.
fn run_head(dir: &Path, runtime: &str) -> String {
    format!(
        "{HEAD}{runtime}[mqtt]\nembedded_listen = \"127.0.0.1:{}\"\n\n[storage]\nspool_dir = \"{}\"\n\n",
        free_port(),
        dir.join("spool").display()
    )
}

#[test]
fn run_processes_an_image_folder_camera_to_its_end_and_reports_it() {
    // Three real frames as a camera; the folder ends, so `run` stops by itself.
    let dir = tempfile::tempdir().unwrap();
    let frames = frames_folder(dir.path(), 3);
    let cfg = write(
        dir.path(),
        "run.toml",
        &folder_camera_config(&run_head(dir.path(), ""), &frames, Some(10)),
    );
    let out = run(bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .env("ORT_DYLIB_PATH", ort_lib()));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("models loaded") && err.contains("provider=cpu"),
        "{err}"
    );
    assert!(err.contains("camera summary"), "{err}");
    assert!(err.contains("processed=3"), "{err}");
}

/// No GPU here and the CPU build of ONNX Runtime: a device configured for CUDA must refuse to start
/// with a message that says so, never process frames on a silent CPU fallback.
#[test]
fn run_with_cuda_on_a_machine_without_it_fails_clearly_instead_of_falling_back() {
    let dir = tempfile::tempdir().unwrap();
    let frames = frames_folder(dir.path(), 1);
    let head = run_head(dir.path(), "[runtime]\nexecution_provider = \"cuda\"\n\n");
    let cfg = write(
        dir.path(),
        "cuda.toml",
        &folder_camera_config(&head, &frames, None),
    );
    let out = run(bin()
        .args(["--log-format", "text", "run", "--config"])
        .arg(&cfg)
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert!(
        !out.status.success(),
        "run started on a machine without CUDA"
    );
    let err = stderr(&out);
    assert!(err.contains("`cuda` failed to register"), "{err}");
    assert!(err.contains("does not fall back to the CPU"), "{err}");
    assert!(!err.contains("models loaded"), "{err}");
    assert!(!err.contains("processed="), "{err}");
}

#[test]
fn tract_backend_with_a_gpu_provider_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "tract.toml",
        &format!("{HEAD}[runtime]\nbackend = \"tract\"\nexecution_provider = \"cuda\"\n"),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:6:", cfg.display())), "{err}");
    assert!(err.contains("runs on the CPU only"), "{err}");
    // A binary without the feature must say so rather than fail at the first frame.
    assert_eq!(
        err.contains("built without the `tract` feature"),
        !cfg!(feature = "tract"),
        "{err}"
    );
}

#[test]
fn gstreamer_decoder_is_checked_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gst.toml",
        &format!(
            "{HEAD}[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/x\"\ndecoder = \"gstreamer\"\ngst_decoder = \"nvv4l2decoder ! fakesink\"\n\n[[cameras]]\nid = \"b\"\nurl = \"rtsp://h/y\"\ngst_decoder = \"avdec_h265\"\n\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/z\"\ndecoder = \"gstreamer\"\ngst_decoder = \"nvv4l2decoder\"\n"
        ),
    );
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    // A binary without the feature must say so rather than fail when the camera opens.
    assert_eq!(
        err.contains(&format!(
            "{}:8:11: error: decoder = \"gstreamer\" but this binary was built without the `gstreamer` feature",
            cfg.display()
        )),
        !cfg!(feature = "gstreamer"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:9:15: error:", cfg.display()))
            && err.contains("is not a GStreamer element name"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:14:15: warning:", cfg.display()))
            && err.contains("decoder is not \"gstreamer\""),
        "{err}"
    );
    // With the feature, an element missing on this machine is a warning (the config may be for a
    // Jetson); without it, the camera's decoder line is the error.
    assert_eq!(
        err.contains(&format!("{}:20:15: warning: the GStreamer element `nvv4l2decoder` is not installed on this machine", cfg.display())),
        cfg!(feature = "gstreamer"),
        "{err}"
    );
}
