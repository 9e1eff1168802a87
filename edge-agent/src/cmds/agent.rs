//! Start-up shared by `run` and `replay`: the checked config, ONNX Runtime, one set of model
//! sessions per inference worker, the cameras with their rules, and the event builder.

use std::path::Path;

use anyhow::Context;
use edge_agent::anpr::{PlateMode, PlateReader, ReaderOptions};
use edge_agent::config::{self, CameraConfig, LoadedConfig, Severity, ValidateOptions};
use edge_agent::events::{ModelId, TimeSync};
use edge_agent::inference::Model;
use edge_agent::models::{ManifestSet, ModelStore};
use edge_agent::pipeline::report::EventBuilder;
use edge_agent::pipeline::{CameraSpec, WorkerModels};
use edge_agent::publish::status::config_hash;
use edge_agent::runtime;

/// Loads and validates the config; any error stops the start with the same report as `check`.
pub fn checked_config(path: &Path) -> anyhow::Result<LoadedConfig> {
    let loaded = config::load_file(path).with_context(|| format!("loading {}", path.display()))?;
    let diags = config::validate(&loaded, &ValidateOptions::default());
    for d in &diags {
        match d.severity {
            Severity::Error => tracing::error!("{d}"),
            Severity::Warning => tracing::warn!("{d}"),
        }
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        anyhow::bail!(
            "{} has errors; see `edge-agent check {}`",
            path.display(),
            path.display()
        );
    }
    Ok(loaded)
}

/// The loaded models of every worker, and what events say about them.
pub struct Models {
    pub workers: Vec<WorkerModels>,
    pub ids: Vec<ModelId>,
    pub provider: String,
    /// The engine running them: `onnxruntime` or `tract`.
    pub backend: String,
}

/// Starts ONNX Runtime (unless `runtime.backend = "tract"`, which needs none: armv7 devices have no
/// ONNX Runtime build) and loads `runtime.workers` sets of sessions.
pub fn load_models(loaded: &LoadedConfig, plates: bool) -> anyhow::Result<Models> {
    let cfg = &loaded.config;
    let lib_path = cfg
        .runtime
        .onnxruntime
        .as_ref()
        .map(|p| loaded.resolve_path(p));
    if cfg.runtime.backend == config::InferenceBackend::Onnxruntime {
        let lib = runtime::init(lib_path.as_deref()).context("starting ONNX Runtime")?;
        tracing::info!(version = %lib.version, path = %lib.path.display(), "ONNX Runtime loaded");
    }
    let manifest_dir = cfg
        .models
        .manifest_dir
        .as_ref()
        .map(|d| loaded.resolve_path(d));
    let set = ManifestSet::load(manifest_dir.as_deref())?;
    let cache = cfg
        .models
        .cache_dir
        .as_ref()
        .map(|d| loaded.resolve_path(d));
    let store = ModelStore::new(ModelStore::default_dir(cache.as_deref()));
    let mut rt = cfg.runtime.clone();
    rt.onnxruntime = lib_path;
    let load = |role: &str, name: &str| -> anyhow::Result<Model> {
        let manifest = set.require(name)?;
        Model::load(manifest, &store, &rt)
            .with_context(|| format!("loading the {role} model `{name}`"))
    };
    let plates =
        plates && !cfg.models.plate_detector.is_empty() && !cfg.models.plate_ocr.is_empty();
    let mut ids = Vec::new();
    for (role, name) in cfg.models.roles() {
        if !plates && role != "detector" {
            continue;
        }
        let m = set.require(name)?;
        ids.push(ModelId {
            name: m.name.clone(),
            sha256: m.sha256.chars().take(12).collect(),
        });
    }
    let mut workers = Vec::new();
    let mut provider = String::new();
    let mut backend = String::new();
    for _ in 0..cfg.runtime.workers.max(1) {
        let detector = load("detector", &cfg.models.detector)?;
        provider = detector.provider().as_str().to_string();
        backend = detector.backend().as_str().to_string();
        let reader = if plates {
            let opts = ReaderOptions {
                mode: PlateMode::FullFrame,
                ..ReaderOptions::default()
            };
            Some(PlateReader::new(
                load("plate_detector", &cfg.models.plate_detector)?,
                load("plate_ocr", &cfg.models.plate_ocr)?,
                None,
                opts,
            )?)
        } else {
            None
        };
        workers.push(WorkerModels {
            detector,
            plates: reader,
        });
    }
    tracing::info!(workers = workers.len(), provider = %provider, backend = %backend, "models loaded");
    Ok(Models {
        workers,
        ids,
        provider,
        backend,
    })
}

/// A camera of the config as the pipeline runs it; `url` replaces the configured source.
pub fn camera_spec(cam: &CameraConfig, url: Option<&str>, fps: Option<f64>) -> CameraSpec {
    let rules = (!cam.rules.is_empty() || !cam.zones.is_empty() || !cam.lines.is_empty())
        .then(|| Box::new(cam.clone()));
    CameraSpec {
        id: cam.id.clone(),
        url: url.map_or_else(|| cam.url.clone(), str::to_string),
        target_fps: fps.unwrap_or(cam.target_fps),
        role: cam.role,
        rules,
    }
}

/// Shared fields of this device's events.
pub fn event_builder(loaded: &LoadedConfig, models: &Models) -> EventBuilder {
    EventBuilder {
        site_id: loaded.config.device.site_id.clone(),
        device_id: loaded.config.device.device_id.clone(),
        config_hash: config_hash(loaded),
        models: models.ids.clone(),
        evidence: loaded.config.evidence.clone(),
        time_sync: TimeSync::Unknown,
    }
}
