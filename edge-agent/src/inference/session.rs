//! ONNX Runtime sessions with the configured execution provider and threads.
//!
//! A provider that fails to register is an error: a Jetson silently running on its CPU would miss
//! every deadline while looking healthy.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use ort::ep;
use ort::session::Session;

use super::InferenceError;
use crate::runtime;
use crate::runtime::config::{ExecutionProviderKind, RuntimeConfig};

/// Creates one session for `model_path`. [`runtime::init`] must have succeeded.
pub fn create_session(model_path: &Path, rt: &RuntimeConfig) -> Result<Session, InferenceError> {
    build_session(model_path, None, rt)
}

/// Creates one session from model bytes held in memory (a rewritten copy of `model_path`, which
/// names it in errors).
pub(super) fn create_session_from_memory(
    model_path: &Path,
    bytes: &[u8],
    rt: &RuntimeConfig,
) -> Result<Session, InferenceError> {
    build_session(model_path, Some(bytes), rt)
}

/// The engine cache of one model: a folder named after the sha256 of the exact ONNX bytes, so an
/// engine built from another model (a replaced file, a planted engine for another graph) is never
/// loaded for this one — TensorRT would run it without a question.
fn engine_cache_dir(root: &Path, model: &[u8]) -> PathBuf {
    root.join(&hex::encode(Sha256::digest(model))[..16])
}

fn build_session(
    model_path: &Path,
    bytes: Option<&[u8]>,
    rt: &RuntimeConfig,
) -> Result<Session, InferenceError> {
    let env = runtime::environment().ok_or(InferenceError::RuntimeNotInitialised)?;
    let err = |stage: &str, e: ort::Error| InferenceError::Session {
        model: model_path.to_path_buf(),
        message: format!("{stage}: {e}"),
    };
    let mut builder = Session::builder(env).map_err(|e| err("session options", e))?;
    if rt.intra_threads > 0 {
        builder = builder
            .with_intra_threads(rt.intra_threads)
            .map_err(|e| err("intra_threads", e.into()))?;
    }
    builder = builder
        .with_intra_op_spinning(rt.spin_wait)
        .map_err(|e| err("spin_wait", e.into()))?
        .with_inter_op_spinning(rt.spin_wait)
        .map_err(|e| err("spin_wait", e.into()))?
        .with_inter_threads(rt.inter_threads.max(1))
        .map_err(|e| err("inter_threads", e.into()))?
        .with_memory_pattern(rt.cpu_arena)
        .map_err(|e| err("cpu_arena", e.into()))?;
    let providers = match rt.execution_provider {
        ExecutionProviderKind::Cpu => vec![
            ep::CPU::default()
                .with_arena_allocator(rt.cpu_arena)
                .build()
                .error_on_failure(),
        ],
        ExecutionProviderKind::Cuda => vec![
            ep::CUDA::default()
                .with_device_id(rt.cuda.device_id)
                .build()
                .error_on_failure(),
        ],
        ExecutionProviderKind::Tensorrt => {
            let mut trt = ep::TensorRT::default()
                .with_device_id(rt.cuda.device_id)
                .with_fp16(rt.tensorrt.fp16);
            if let Some(dir) = &rt.tensorrt.engine_cache_dir {
                let model = match bytes {
                    Some(b) => b.to_vec(),
                    None => std::fs::read(model_path).map_err(|e| InferenceError::Session {
                        model: model_path.to_path_buf(),
                        message: format!("reading it for the TensorRT engine cache: {e}"),
                    })?,
                };
                let dir = engine_cache_dir(dir, &model);
                std::fs::create_dir_all(&dir).map_err(|e| InferenceError::Session {
                    model: model_path.to_path_buf(),
                    message: format!("TensorRT engine cache {}: {e}", dir.display()),
                })?;
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.display());
            }
            if let Some(core) = rt.tensorrt.dla_core {
                trt = trt.with_dla(true).with_dla_core(core);
            }
            // CUDA runs the nodes TensorRT cannot take; both must register.
            vec![
                trt.build().error_on_failure(),
                ep::CUDA::default()
                    .with_device_id(rt.cuda.device_id)
                    .build()
                    .error_on_failure(),
            ]
        }
    };
    builder =
        builder
            .with_execution_providers(providers)
            .map_err(|e| InferenceError::Provider {
                provider: rt.execution_provider.as_str(),
                message: e.to_string(),
            })?;
    match bytes {
        Some(bytes) => builder.commit_from_memory(bytes),
        None => builder.commit_from_file(model_path),
    }
    .map_err(|e| err("loading the model", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_gets_its_own_engine_cache() {
        let root = Path::new("/var/cache/edge-agent/trt");
        let a = engine_cache_dir(root, b"model a");
        assert_eq!(a, engine_cache_dir(root, b"model a"));
        assert_ne!(a, engine_cache_dir(root, b"model b"));
        assert!(a.starts_with(root) && a.file_name().is_some_and(|n| n.len() == 16));
    }
}
