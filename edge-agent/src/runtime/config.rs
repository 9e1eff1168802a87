//! `[runtime]`: how models are executed (this stage owns the section; the loader checks what
//! needs the file system, such as the library path).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checks::SectionProblem;

/// `[runtime]`: how models are executed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Path to `libonnxruntime.so.*`. Default: none, then `ORT_DYLIB_PATH`, next to the binary,
    /// system library directories.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Execution provider: `cpu`, `cuda` or `tensorrt`. Default `cpu`. A provider that fails to
    /// register is an error, never a silent fallback to CPU.
    #[serde(default)]
    pub execution_provider: ExecutionProviderKind,
    /// Threads inside one operator. Default 0 = let ONNX Runtime use one per core.
    #[serde(default)]
    pub intra_threads: usize,
    /// Threads across operators. Default 1.
    #[serde(default = "one")]
    pub inter_threads: usize,
    /// Inference workers, each with its own session per model. Default 1.
    #[serde(default = "one")]
    pub workers: usize,
    /// Let ONNX Runtime's worker threads spin-wait between runs. Default false: with several models
    /// run in turn on a few cores, idle sessions' spinning threads steal the cores from the active
    /// one (and burn power on a solar-powered pole).
    #[serde(default)]
    pub spin_wait: bool,
    /// One ONNX Runtime thread pool of `intra_threads` for all models of the process instead of
    /// one per session. Default true: a fixed thread count whatever the number of models, and
    /// `spin_wait` no longer lets idle sessions steal the cores (`runtime::SharedThreads`).
    #[serde(default = "yes")]
    pub shared_threads: bool,
    /// Keep ONNX Runtime's CPU memory arena (and its planned memory pattern). Default true:
    /// fastest, but each session keeps its peak activation memory; false frees it between runs,
    /// a few MB of resident memory less per model at some CPU cost.
    #[serde(default = "yes")]
    pub cpu_arena: bool,
    /// Run fixed-input detectors on whole frames at the smallest input (a multiple of 32) that holds
    /// the frame at the detector's own letterbox scale, from a copy of the model rewritten for it,
    /// instead of the full square input. Default true: a 16:9 frame costs the detector about half.
    /// CPU execution provider only (not checked on CUDA or TensorRT).
    #[serde(default = "yes")]
    pub fit_canvas: bool,
    /// `[runtime.cuda]`: CUDA options. Default device 0.
    #[serde(default)]
    pub cuda: CudaConfig,
    /// `[runtime.tensorrt]`: TensorRT options.
    #[serde(default)]
    pub tensorrt: TensorRtConfig,
    /// Inference engine: `onnxruntime` (default) or `tract` (pure Rust, CPU only, for devices with
    /// no ONNX Runtime build such as armv7; needs a binary built with the `tract` feature).
    #[serde(default)]
    pub backend: InferenceBackend,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            onnxruntime: None,
            execution_provider: ExecutionProviderKind::default(),
            intra_threads: 0,
            inter_threads: 1,
            workers: 1,
            spin_wait: false,
            shared_threads: true,
            cpu_arena: true,
            fit_canvas: true,
            cuda: CudaConfig::default(),
            tensorrt: TensorRtConfig::default(),
            backend: InferenceBackend::default(),
        }
    }
}

fn one() -> usize {
    1
}

impl RuntimeConfig {
    /// Values no device can run with, and combinations that cannot work; what needs this
    /// machine's files (the library, the engine cache) the loader checks.
    pub fn check(&self) -> Vec<SectionProblem> {
        let mut out = Vec::new();
        for (key, n) in [
            ("intra_threads", self.intra_threads),
            ("inter_threads", self.inter_threads),
        ] {
            if n > 64 {
                out.push(SectionProblem::error(
                    key,
                    format!("{key} = {n} is more threads than any supported device has"),
                    "use at most the number of cores (0 = automatic for intra_threads)",
                ));
            }
        }
        if self.inter_threads == 0 {
            out.push(SectionProblem::error(
                "inter_threads",
                "inter_threads must be at least 1",
                "use 1 unless models have parallel branches",
            ));
        }
        out.extend(SectionProblem::out_of_range(
            "workers",
            self.workers,
            1,
            16,
            "one worker per 2 cores is a good start",
        ));
        if self.backend == InferenceBackend::Tract {
            if self.execution_provider != ExecutionProviderKind::Cpu {
                out.push(SectionProblem::error(
                    "backend",
                    format!(
                        "backend = \"tract\" runs on the CPU only, but execution_provider = \"{}\"",
                        self.execution_provider.as_str()
                    ),
                    "use backend = \"onnxruntime\" for GPU providers, or execution_provider = \"cpu\"",
                ));
            }
            if !cfg!(feature = "tract") {
                out.push(SectionProblem::error(
                    "backend",
                    "backend = \"tract\" but this binary was built without the `tract` feature",
                    "use an edge-agent built with `--features tract` (cross/build.sh ... --features tract)",
                ));
            }
        }
        if self.execution_provider != ExecutionProviderKind::Tensorrt
            && self.tensorrt != TensorRtConfig::default()
        {
            out.push(SectionProblem::warning(
                "tensorrt",
                "[runtime.tensorrt] is set but execution_provider is not `tensorrt`",
                "set execution_provider = \"tensorrt\" or remove the section",
            ));
        }
        out
    }
}

/// Which engine runs the models.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InferenceBackend {
    #[default]
    Onnxruntime,
    Tract,
}

impl InferenceBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnxruntime => "onnxruntime",
            Self::Tract => "tract",
        }
    }
}

/// Which ONNX Runtime execution provider runs the models.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProviderKind {
    #[default]
    Cpu,
    Cuda,
    Tensorrt,
}

impl ExecutionProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Tensorrt => "tensorrt",
        }
    }
}

/// `[runtime.cuda]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CudaConfig {
    /// GPU index. Default 0.
    #[serde(default)]
    pub device_id: i32,
}

/// `[runtime.tensorrt]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorRtConfig {
    /// Build fp16 engines. Default true.
    #[serde(default = "yes")]
    pub fp16: bool,
    /// Where built engines are cached between restarts. Default: none (rebuilt at every start,
    /// which takes minutes on a Jetson).
    #[serde(default)]
    pub engine_cache_dir: Option<PathBuf>,
    /// Jetson DLA core to use. Default: none (GPU only).
    #[serde(default)]
    pub dla_core: Option<u32>,
}

impl Default for TensorRtConfig {
    fn default() -> Self {
        Self {
            fp16: true,
            engine_cache_dir: None,
            dla_core: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_section_checks_its_own_keys() {
        assert!(RuntimeConfig::default().check().is_empty());
        let bad = RuntimeConfig {
            inter_threads: 0,
            intra_threads: 65,
            workers: 17,
            execution_provider: ExecutionProviderKind::Cuda,
            backend: InferenceBackend::Tract,
            tensorrt: TensorRtConfig {
                fp16: false,
                ..TensorRtConfig::default()
            },
            ..RuntimeConfig::default()
        };
        let keys: Vec<&str> = bad.check().iter().map(|p| p.key).collect();
        assert!(
            [
                "intra_threads",
                "inter_threads",
                "workers",
                "backend",
                "tensorrt"
            ]
            .iter()
            .all(|k| keys.contains(k)),
            "{keys:?}"
        );
    }
}
