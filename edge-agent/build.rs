//! Embeds every manifest in the repository's `models/` directory into the binary, so a device needs
//! no manifest files next to it, and the weights we trained ourselves (`models/*.onnx`), so it needs
//! no mirror for them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let models = manifest_dir.join("../models");
    println!("cargo:rerun-if-changed={}", models.display());
    let mut out = String::from(
        "/// Built-in manifests: (name, TOML text).\npub(super) static MANIFESTS: &[(&str, &str)] = &[\n",
    );
    for path in files(&models, "toml") {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 manifest name");
        let abs = path.canonicalize().expect("manifest path");
        writeln!(
            out,
            "    ({stem:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    // Weights we trained ourselves are committed beside their manifests (third-party weights never
    // are) and travel inside the binary: a device fetches them from itself, with no mirror.
    out.push_str(
        "/// Built-in weight files: (file name, bytes).\npub(super) static WEIGHTS: &[(&str, &[u8])] = &[\n",
    );
    for path in files(&models, "onnx") {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|s| s.to_str())
            .expect("utf-8 weight file name");
        let abs = path.canonicalize().expect("weight path");
        writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("builtin_manifests.rs");
    std::fs::write(dest, out).expect("write builtin_manifests.rs");
}

/// The files in `dir` ending in `.ext`, sorted (none when `dir` is missing).
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    found.retain(|p| p.extension().is_some_and(|x| x == ext));
    found.sort();
    found
}
