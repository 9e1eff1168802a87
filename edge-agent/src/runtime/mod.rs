//! ONNX Runtime: locating the shared library and creating the one process-wide environment.

mod library;

pub use library::{
    LibraryError, LibrarySource, MIN_MINOR_VERSION, OrtLibrary, RECOMMENDED_VERSION, find, locate,
    probe,
};

use std::path::Path;
use std::sync::OnceLock;

static ENVIRONMENT: OnceLock<(OrtLibrary, ort::environment::Environment)> = OnceLock::new();

/// Finds, checks and loads ONNX Runtime once per process; later calls return the same library.
///
/// ONNX Runtime allows a single environment per process, so the first caller's library wins.
pub fn init(configured: Option<&Path>) -> Result<&'static OrtLibrary, LibraryError> {
    if let Some((lib, _)) = ENVIRONMENT.get() {
        return Ok(lib);
    }
    let lib = find(configured)?;
    let ort_err = |e: &dyn std::fmt::Display| LibraryError::Ort {
        path: lib.path.clone(),
        message: e.to_string(),
    };
    let env = ort::init_from(&lib.path)
        .map_err(|e| ort_err(&e))?
        .with_name("edge-agent")
        .build()
        .map_err(|e| ort_err(&e))?;
    let (lib, _) = ENVIRONMENT.get_or_init(|| (lib, env));
    Ok(lib)
}

/// The process's ONNX Runtime environment, once [`init`] succeeded.
pub fn environment() -> Option<&'static ort::environment::Environment> {
    ENVIRONMENT.get().map(|(_, env)| env)
}
