//! Finding and checking the ONNX Runtime shared library before `ort` touches it.
//!
//! `ort` with `load-dynamic` panics on first use when the library is missing, and its own error
//! omits the reason. We look the library up ourselves (config, `ORT_DYLIB_PATH`, next to the binary,
//! system directories), check that it exists, exports the ORT API and is new enough, and only then
//! hand it to `ort::init_from`.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// Oldest ONNX Runtime this build accepts (the `api-31` feature of `ort`).
pub const MIN_MINOR_VERSION: u32 = 31;
/// The version tested and recommended.
pub const RECOMMENDED_VERSION: &str = "1.31.1";

const FIX_HINT: &str = "install the library from the PyPI wheel (pip download --no-deps --only-binary=:all: onnxruntime==1.31.1, then unzip onnxruntime/capi/libonnxruntime.so.1.31.1) and set runtime.onnxruntime in the config or ORT_DYLIB_PATH to it";

/// Where the library path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibrarySource {
    Config,
    EnvVar,
    NextToBinary,
    SystemDir,
}

impl LibrarySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config runtime.onnxruntime",
            Self::EnvVar => "ORT_DYLIB_PATH",
            Self::NextToBinary => "next to the binary",
            Self::SystemDir => "system library directory",
        }
    }
}

/// A library that was found, opened and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtLibrary {
    pub path: PathBuf,
    pub version: String,
    pub source: LibrarySource,
}

/// Why the ONNX Runtime library cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("ONNX Runtime library not found at {path} (from {}); {FIX_HINT}", origin.as_str())]
    Missing {
        path: PathBuf,
        origin: LibrarySource,
    },
    #[error("ONNX Runtime library not found; tried: {tried}; {FIX_HINT}")]
    NotFound { tried: String },
    #[error("cannot load {path} as a shared library: {reason}; {FIX_HINT}")]
    Dlopen { path: PathBuf, reason: String },
    #[error(
        "{path} is not ONNX Runtime (it does not export OrtGetApiBase); point runtime.onnxruntime or ORT_DYLIB_PATH at libonnxruntime.so.{RECOMMENDED_VERSION}"
    )]
    NotOnnxRuntime { path: PathBuf },
    #[error(
        "ONNX Runtime at {path} is version {version}, but edge-agent needs 1.{MIN_MINOR_VERSION} or newer; {FIX_HINT}"
    )]
    TooOld { path: PathBuf, version: String },
    #[error("ONNX Runtime at {path} reports an unreadable version string")]
    BadVersion { path: PathBuf },
    #[error("ONNX Runtime at {path} passed the checks but ort refused it: {message}")]
    Ort { path: PathBuf, message: String },
}

const LIB_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1"];

/// Finds the library path, in the order of DESIGN.md. An explicit path (config or env) that does
/// not exist is an error rather than a reason to look elsewhere: the operator asked for that file.
pub fn locate(configured: Option<&Path>) -> Result<(PathBuf, LibrarySource), LibraryError> {
    if let Some(p) = configured {
        return existing(p, LibrarySource::Config);
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return existing(Path::new(&p), LibrarySource::EnvVar);
    }
    let mut tried = Vec::new();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(p) = exe_dir.and_then(|dir| find_in_dir(&dir, &mut tried)) {
        return Ok((p, LibrarySource::NextToBinary));
    }
    for dir in system_dirs() {
        if let Some(p) = find_in_dir(&dir, &mut tried) {
            return Ok((p, LibrarySource::SystemDir));
        }
    }
    Err(LibraryError::NotFound {
        tried: tried.join(", "),
    })
}

fn existing(p: &Path, source: LibrarySource) -> Result<(PathBuf, LibrarySource), LibraryError> {
    if p.is_file() {
        Ok((p.to_path_buf(), source))
    } else {
        Err(LibraryError::Missing {
            path: p.to_path_buf(),
            origin: source,
        })
    }
}

/// `libonnxruntime.so`, `.so.1`, or the newest `.so.1.X.Y` in `dir`.
fn find_in_dir(dir: &Path, tried: &mut Vec<String>) -> Option<PathBuf> {
    tried.push(format!("{}/libonnxruntime.so*", dir.display()));
    for name in LIB_NAMES {
        let p = dir.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so.1."))
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

fn system_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let arch = std::env::consts::ARCH;
    for d in [
        "/usr/local/lib".to_string(),
        format!("/usr/lib/{arch}-linux-gnu"),
        "/usr/lib".to_string(),
        "/opt/edge-agent/lib".to_string(),
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Opens the library, reads its version through the ORT C API, and checks it is new enough.
pub fn probe(path: &Path, source: LibrarySource) -> Result<OrtLibrary, LibraryError> {
    if !path.is_file() {
        return Err(LibraryError::Missing {
            path: path.to_path_buf(),
            origin: source,
        });
    }
    // SAFETY: loading a shared library runs its initialisers; the path is the one the operator
    // configured for ONNX Runtime, which is exactly what we are about to load for inference anyway.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LibraryError::Dlopen {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release.
    let get_base: libloading::Symbol<GetApiBase> =
        unsafe { lib.get(b"OrtGetApiBase\0") }.map_err(|_| LibraryError::NotOnnxRuntime {
            path: path.to_path_buf(),
        })?;
    // SAFETY: calling the documented entry point; it returns a static struct or null.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(LibraryError::NotOnnxRuntime {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: `base` is non-null and points at the library's static OrtApiBase; GetVersionString
    // returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(((*base).GetVersionString)()) }
        .to_str()
        .map_err(|_| LibraryError::BadVersion {
            path: path.to_path_buf(),
        })?
        .to_string();
    let minor = parse_minor(&version).ok_or_else(|| LibraryError::BadVersion {
        path: path.to_path_buf(),
    })?;
    if minor < MIN_MINOR_VERSION {
        return Err(LibraryError::TooOld {
            path: path.to_path_buf(),
            version,
        });
    }
    Ok(OrtLibrary {
        path: path.to_path_buf(),
        version,
        source,
    })
}

fn parse_minor(version: &str) -> Option<u32> {
    let mut parts = version.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    (major == 1).then_some(minor)
}

/// Locates and probes the library.
pub fn find(configured: Option<&Path>) -> Result<OrtLibrary, LibraryError> {
    let (path, source) = locate(configured)?;
    probe(&path, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_version_parsing() {
        assert_eq!(parse_minor("1.31.1"), Some(31));
        assert_eq!(parse_minor("1.20.1"), Some(20));
        assert_eq!(parse_minor("2.0.0"), None);
        assert_eq!(parse_minor("garbage"), None);
    }

    #[test]
    fn configured_path_that_does_not_exist_is_reported_with_its_origin() {
        let err = locate(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1"))).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/libonnxruntime.so.1.31.1"),
            "{msg}"
        );
        assert!(msg.contains("config runtime.onnxruntime"), "{msg}");
        assert!(msg.contains("onnxruntime==1.31.1"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_library_fails_to_open_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&p, b"not an ELF file").unwrap();
        let err = probe(&p, LibrarySource::Config).unwrap_err();
        assert!(matches!(err, LibraryError::Dlopen { .. }), "{err}");
        assert!(err.to_string().contains(&p.display().to_string()));
    }
}
