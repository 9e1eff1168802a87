//! Helpers shared by the end-to-end tests: the built binary, the shared mirror, the ORT library.
//! Anything a test needs that is missing makes it fail with a message saying how to get it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo root")
}

/// The read-only models/footage mirror (`../shared` beside the checkout, or `EDGE_AGENT_SHARED`).
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("EDGE_AGENT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    assert!(
        dir.join("models/MODELS.md").is_file(),
        "the shared models/footage mirror is missing at {}; run the tests through scripts/test.sh or set EDGE_AGENT_SHARED",
        dir.display()
    );
    dir
}

/// The ONNX Runtime 1.31 library, which scripts/test.sh puts in ORT_DYLIB_PATH.
pub fn ort_lib() -> PathBuf {
    let p = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_default();
    assert!(
        p.is_file(),
        "ORT_DYLIB_PATH does not name the ONNX Runtime library ({}); run the tests through scripts/test.sh",
        p.display()
    );
    p
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the command and returns its output, with both streams echoed for failing tests.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn edge-agent");
    eprintln!(
        "--- {:?}\n--- stdout:\n{}--- stderr:\n{}",
        cmd,
        stdout(&out),
        stderr(&out)
    );
    out
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

/// The first `n` frames of the Hải Phòng junction (`frame_0001.jpg`…) copied into `dir/frames`:
/// the source of an image-folder camera, which ends after them.
pub fn frames_folder(dir: &Path, n: usize) -> PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir(&frames).unwrap();
    let src = shared_dir().join("footage/frames/vn_citycam_haiphong_10fps");
    for i in 1..=n {
        let name = format!("frame_{i:04}.jpg");
        std::fs::copy(src.join(&name), frames.join(&name)).unwrap();
    }
    frames
}

/// A `run` config whose one camera, `cam-1`, reads the image folder `frames`: `head` (the
/// sections before it, such as `[device]`, `[mqtt]` and `[storage]`), then `[http]` switched off
/// and the camera, with `target_fps` when given.
pub fn folder_camera_config(head: &str, frames: &Path, target_fps: Option<u32>) -> String {
    let fps = target_fps
        .map(|f| format!("target_fps = {f}\n"))
        .unwrap_or_default();
    format!(
        "{head}[http]\nenabled = false\n\n[[cameras]]\nid = \"cam-1\"\nurl = \"{}\"\n{fps}",
        frames.display()
    )
}

pub mod broker;
pub mod frames;
pub mod rtsp;
pub mod tls;
