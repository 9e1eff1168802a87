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

pub mod frames;
pub mod rtsp;
pub mod tls;
