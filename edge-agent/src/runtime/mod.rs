//! ONNX Runtime: locating the shared library and creating the one process-wide environment.

pub mod config;
mod library;

pub use library::{
    LibraryError, LibrarySource, MIN_MINOR_VERSION, OrtLibrary, RECOMMENDED_VERSION, find, locate,
    probe,
};

use std::path::Path;
use std::sync::OnceLock;

static ENVIRONMENT: OnceLock<(OrtLibrary, ort::environment::Environment)> = OnceLock::new();

/// One intra-op thread pool for every session of the process (`[runtime] shared_threads`).
///
/// Per-session pools give each model its own threads: with several models run in turn on a few
/// cores, an idle session's spinning threads steal the cores from the active one, so spinning had
/// to stay off, and every operator then paid a thread wake-up. One shared pool keeps the thread
/// count at `intra_threads` whatever the number of models, and spinning no longer starves the
/// running model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedThreads {
    /// Threads per operator, the calling thread included; 0 = one per core.
    pub intra: usize,
    /// Let the pool's threads spin-wait briefly for the next operator instead of sleeping.
    pub spin: bool,
}

impl SharedThreads {
    /// The shared pool `rt` asks for, if any.
    pub fn of(rt: &config::RuntimeConfig) -> Option<Self> {
        rt.shared_threads.then_some(Self {
            intra: rt.intra_threads,
            spin: rt.spin_wait,
        })
    }
}

/// Finds, checks and loads ONNX Runtime once per process with per-session thread pools; later
/// calls return the same library. See [`init_with`].
pub fn init(configured: Option<&Path>) -> Result<&'static OrtLibrary, LibraryError> {
    init_with(configured, None)
}

/// Finds, checks and loads ONNX Runtime once per process; later calls return the same library.
///
/// ONNX Runtime allows a single environment per process, so the first caller's library and thread
/// pool win; sessions use the shared pool when it exists.
pub fn init_with(
    configured: Option<&Path>,
    shared: Option<SharedThreads>,
) -> Result<&'static OrtLibrary, LibraryError> {
    if let Some((lib, _)) = ENVIRONMENT.get() {
        return Ok(lib);
    }
    let lib = find(configured)?;
    let ort_err = |e: &dyn std::fmt::Display| LibraryError::Ort {
        path: lib.path.clone(),
        message: e.to_string(),
    };
    let mut builder = ort::init_from(&lib.path)
        .map_err(|e| ort_err(&e))?
        .with_name("edge-agent");
    if let Some(t) = shared {
        let pool = ort::environment::GlobalThreadPoolOptions::default()
            .with_intra_threads(t.intra)
            .and_then(|p| p.with_inter_threads(1))
            .and_then(|p| p.with_spin_control(t.spin))
            .map_err(|e| ort_err(&e))?;
        builder = builder.with_global_thread_pool(pool);
    }
    let env = builder.build().map_err(|e| ort_err(&e))?;
    let (lib, _) = ENVIRONMENT.get_or_init(|| (lib, env));
    Ok(lib)
}

/// The process's ONNX Runtime environment, once [`init`] succeeded.
pub fn environment() -> Option<&'static ort::environment::Environment> {
    ENVIRONMENT.get().map(|(_, env)| env)
}
