//! Start-up shared by `run` and `replay`: the checked config, ONNX Runtime, one set of model
//! sessions per inference worker, the cameras with their rules, and the event builder.

use std::path::Path;

use anyhow::Context;
use edge_agent::anpr::{PlateMode, PlateReader, ReaderOptions, Readers};
use edge_agent::audit::AuditTrail;
use edge_agent::config::{self, CameraConfig, LoadedConfig, Severity, ValidateOptions};
use edge_agent::events::{ModelId, TimeSync};
use edge_agent::inference::Model;
use edge_agent::models::ModelCard;
use edge_agent::pipeline::plates::PlateSchedule;
use edge_agent::pipeline::report::EventBuilder;
use edge_agent::pipeline::{self, CameraSpec, PipelineOptions, WorkerModels};
use edge_agent::privacy::{PlateHasher, PrivacyPolicy};
use edge_agent::runtime;
use edge_agent::spool::Retention;
use edge_agent::watchlist::{SharedWatchlist, Watchlist};
use serde_json::json;

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
    /// Model card summaries for the status message.
    pub cards: Vec<ModelCard>,
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
        let lib = runtime::init_with(
            lib_path.as_deref(),
            runtime::SharedThreads::of(&cfg.runtime),
        )
        .context("starting ONNX Runtime")?;
        tracing::info!(version = %lib.version, path = %lib.path.display(), "ONNX Runtime loaded");
    }
    let set = loaded.manifests()?;
    let store = loaded.model_store();
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
    let mut cards = Vec::new();
    let recognizer = (plates && cfg.plates.readers != Readers::Slot)
        .then_some(("plate_recognizer", cfg.plates.recognizer.as_str()));
    for (role, name) in cfg.models.roles().into_iter().chain(recognizer) {
        if !plates && role != "detector" {
            continue;
        }
        let m = set.require(name)?;
        ids.push(ModelId {
            name: m.name.clone(),
            sha256: m.sha256.chars().take(12).collect(),
        });
        cards.push(ModelCard::from_manifest(m));
    }
    // The tracker's second stage needs the detector's low-score boxes: the manifest threshold
    // (0.3 for YOLOX) would cut them off before the tracker sees them.
    let detector_manifest =
        pipeline::detector_manifest(set.require(&cfg.models.detector)?, &cfg.tracker);
    let mut workers = Vec::new();
    let mut provider = String::new();
    let mut backend = String::new();
    for _ in 0..cfg.runtime.workers.max(1) {
        let detector = Model::load(&detector_manifest, &store, &rt)
            .with_context(|| format!("loading the detector model `{}`", cfg.models.detector))?;
        provider = detector.provider().as_str().to_string();
        backend = detector.backend().as_str().to_string();
        let reader = if plates {
            let opts = cfg.plates.reader_options();
            // Vehicle crops need a vehicle detector of their own; the pipeline passes tracked
            // vehicles instead, so the reader reads whole frames on plates only.
            let opts = ReaderOptions {
                mode: PlateMode::FullFrame,
                ..opts
            };
            let reader = PlateReader::new(
                load("plate_detector", &cfg.models.plate_detector)?,
                load("plate_ocr", &cfg.models.plate_ocr)?,
                None,
                opts,
            )?;
            let reader = match cfg.models.plate_ocr_second() {
                Some(name) => reader.with_second_ocr(load("plate_ocr_second", name)?)?,
                None => reader,
            };
            let reader = match cfg.plates.readers {
                Readers::Slot => reader,
                Readers::Ppocr | Readers::Fused => {
                    reader.with_recognizer(load("plate_recognizer", &cfg.plates.recognizer)?)?
                }
            };
            if workers.is_empty() {
                tracing::info!(trusted = %reader.trust(), "plate reads");
            }
            Some(reader)
        } else {
            None
        };
        workers.push(WorkerModels::new(detector, reader));
    }
    tracing::info!(workers = workers.len(), provider = %provider, backend = %backend, "models loaded");
    Ok(Models {
        workers,
        ids,
        cards,
        provider,
        backend,
    })
}

/// Pipeline settings from the config: tracker, queues and plate scheduling, health, local time.
pub fn pipeline_options(loaded: &LoadedConfig) -> PipelineOptions {
    let cfg = &loaded.config;
    let p = &cfg.pipeline;
    let defaults = PipelineOptions::default();
    let secs = |s: f64| std::time::Duration::try_from_secs_f64(s).unwrap_or_default();
    PipelineOptions {
        utc_offset_minutes: cfg.device.utc_offset_minutes,
        tracker: cfg.tracker.clone(),
        health: cfg.health.clone(),
        queue_capacity: p.queue_capacity,
        plates: PlateSchedule {
            max_reads_per_frame: p.plate_reads_per_frame,
            min_call_interval: secs(p.plate_call_interval_s),
            min_interval: secs(p.plate_read_interval_s),
            max_attempts: p.plate_max_attempts,
            min_box_height: p.plate_min_vehicle_height,
            ..defaults.plates.clone()
        },
        ..defaults
    }
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
        decoding: cam.decoding(),
        rules,
        evidence: cam.evidence_url.as_ref().map(|u| {
            (
                u.clone(),
                std::time::Duration::from_millis(u64::from(cam.evidence_match_ms)),
            )
        }),
    }
}

/// The clock's sync state now, logged when it is not synchronised (events carry it).
pub fn clock_sync() -> TimeSync {
    let state = edge_agent::health::clock_state();
    if state.sync != TimeSync::Synced {
        tracing::warn!(clock = %state.describe(), "the device clock is not known to be synchronised; event times are evidence of order only");
    }
    state.sync
}

/// Shared fields of this device's events.
pub fn event_builder(loaded: &LoadedConfig, models: &Models) -> EventBuilder {
    EventBuilder {
        site_id: loaded.config.device.site_id.clone(),
        device_id: loaded.config.device.device_id.clone(),
        config_hash: loaded.hash(),
        models: models.ids.clone(),
        evidence: loaded.config.evidence.clone(),
        // Read once at start; the `health` message carries the live state.
        time_sync: clock_sync(),
        privacy: PrivacyPolicy::default(),
        locations: loaded.config.camera_locations(),
    }
}

/// Opens the audit log (`[storage] audit_file`, default `<spool_dir>/audit.jsonl`) and records
/// the config this start runs with. A broken chain stops the start: it must be looked at, not
/// silently extended.
pub fn audit_trail(loaded: &LoadedConfig) -> anyhow::Result<AuditTrail> {
    let path = loaded.resolve_path(&loaded.config.storage.audit_path());
    // the running agent signs its records with the device key (the one its events are signed with)
    let key_path = loaded.resolve_path(&loaded.config.storage.device_key_path());
    let key = edge_agent::signing::DeviceKey::load_or_create(&key_path)
        .with_context(|| format!("loading the device key {}", key_path.display()))?;
    let max = loaded.config.storage.audit_max_mb.saturating_mul(1 << 20);
    let trail =
        AuditTrail::open_signed(&path, std::sync::Arc::new(key), Some(max)).with_context(|| {
            format!(
                "opening the audit log {}; `edge-agent audit verify {}` shows what is wrong",
                path.display(),
                path.display()
            )
        })?;
    record_start(loaded, &path, trail)
}

/// [`audit_trail`] at an explicit path (`replay --audit`).
pub fn audit_trail_at(loaded: &LoadedConfig, path: &Path) -> anyhow::Result<AuditTrail> {
    let trail = AuditTrail::open(path).with_context(|| {
        format!(
            "opening the audit log {}; `edge-agent audit verify {}` shows what is wrong",
            path.display(),
            path.display()
        )
    })?;
    record_start(loaded, path, trail)
}

/// Logs where the audit log is and records this start's config in it.
fn record_start(
    loaded: &LoadedConfig,
    path: &Path,
    trail: AuditTrail,
) -> anyhow::Result<AuditTrail> {
    tracing::info!(path = %path.display(), "audit log open");
    trail.record(
        "config.load",
        "local",
        json!({
            "file": loaded.source.path.display().to_string(),
            "config_hash": loaded.hash(),
        }),
    );
    Ok(trail)
}

/// Loads `[watchlist] file` (an empty list when none is configured) and records its version.
pub fn watchlist(loaded: &LoadedConfig, trail: &AuditTrail) -> anyhow::Result<SharedWatchlist> {
    let Some(file) = &loaded.config.watchlist.file else {
        return Ok(SharedWatchlist::new(Watchlist::empty()));
    };
    let path = loaded.resolve_path(file);
    let list = Watchlist::load(&path).context("loading the watchlist")?;
    tracing::info!(path = %path.display(), plates = list.len(), version = list.version(), "watchlist loaded");
    trail.record(
        "watchlist.load",
        "local",
        json!({"file": path.display().to_string(), "plates": list.len(), "hash": list.hash()}),
    );
    Ok(SharedWatchlist::new(list))
}

/// Records every insecure link `check` accepted for the reason in `[mqtt] allow_insecure` (a plain
/// remote broker, an embedded broker beyond loopback) in the audit log: at every start.
pub fn audit_insecure_links(loaded: &LoadedConfig, trail: &AuditTrail) {
    let reason = loaded.config.mqtt.allow_insecure.as_deref().unwrap_or("");
    for what in edge_agent::config::insecure_links(&loaded.config.mqtt) {
        tracing::warn!(
            what,
            reason,
            "insecure link accepted by [mqtt] allow_insecure"
        );
        trail.record(
            "security.insecure_allowed",
            "local",
            json!({"what": what, "reason": reason}),
        );
    }
}

/// The privacy rules events are built under: the plate key when `hash_plates` is on, the watchlist,
/// and the cameras whose evidence is not pixelated — each of those logged with its reason and
/// recorded in the audit log, so the choice is visible long after start-up.
pub fn privacy_policy(
    loaded: &LoadedConfig,
    watchlist: SharedWatchlist,
    trail: &AuditTrail,
) -> anyhow::Result<PrivacyPolicy> {
    let p = &loaded.config.privacy;
    let hasher = match (&p.plate_key_file, p.hash_plates) {
        (Some(file), true) => Some(PlateHasher::load(&loaded.resolve_path(file))?),
        (None, true) => anyhow::bail!("[privacy] hash_plates = true needs plate_key_file"),
        (_, false) => None,
    };
    let mut policy = PrivacyPolicy {
        hasher,
        watchlist,
        fuzzy_watchlist: loaded.config.watchlist.fuzzy,
        ..PrivacyPolicy::default()
    };
    for cam in loaded.config.cameras.iter().filter(|c| c.enabled) {
        if cam.privacy.blur_people {
            continue;
        }
        let reason = cam.privacy.reason.as_deref().unwrap_or("").trim();
        if reason.is_empty() {
            anyhow::bail!(
                "camera `{}` has blur_people = false without a reason in [cameras.privacy]",
                cam.id
            );
        }
        tracing::warn!(camera = %cam.id, reason, "people are NOT pixelated in this camera's evidence");
        trail.record(
            "privacy.blur_disabled",
            "local",
            json!({"camera": cam.id, "reason": reason}),
        );
        policy.unblurred_cameras.insert(cam.id.clone());
    }
    tracing::info!(
        hash_plates = policy.hasher.is_some(),
        unblurred_cameras = policy.unblurred_cameras.len(),
        fuzzy_watchlist = policy.fuzzy_watchlist,
        "privacy settings in force"
    );
    Ok(policy)
}

/// The clip recorder of `[clips]` (`None` when no enabled camera makes clips): clips in
/// `<spool_dir>/clips`, bounded by `store_mb` and `[privacy.retention] clip_hours`, never taking the
/// spool's `min_free_mb`.
pub fn clip_recorder(
    loaded: &LoadedConfig,
    topics: &edge_agent::events::Topics,
) -> Option<std::sync::Arc<edge_agent::clips::ClipRecorder>> {
    let cfg = &loaded.config;
    if cfg.clips_store_mb() == 0 {
        return None;
    }
    let hours = cfg.privacy.retention.clip_hours;
    let store = edge_agent::clips::ClipStore::new(
        loaded.resolve_path(&cfg.storage.clips_dir()),
        cfg.clips.store_mb.saturating_mul(1 << 20),
        (hours > 0).then(|| std::time::Duration::from_secs(hours.saturating_mul(3600))),
        cfg.storage.min_free_mb.saturating_mul(1 << 20),
    );
    tracing::info!(dir = %store.dir().display(), mode = cfg.clips.mode.as_str(), pre_s = cfg.clips.pre_s, post_s = cfg.clips.post_s, "event clips on");
    Some(std::sync::Arc::new(edge_agent::clips::ClipRecorder::new(
        cfg.clips.clone(),
        store,
        topics.clone(),
        cfg.clip_modes(),
    )))
}

/// The store of evidence images kept until requested (`[mqtt] evidence = "on_request"`):
/// `<spool_dir>/held`, bounded by `[clips] store_mb` and `[privacy.retention] evidence_hours`, never
/// taking the spool's `min_free_mb`. `None` when images travel with their events.
pub fn held_images(loaded: &LoadedConfig) -> Option<edge_agent::clips::ClipStore> {
    let cfg = &loaded.config;
    if cfg.mqtt.evidence != edge_agent::config::EvidenceDelivery::OnRequest {
        return None;
    }
    let hours = cfg.privacy.retention.evidence_hours;
    let store = edge_agent::clips::ClipStore::new(
        loaded.resolve_path(&cfg.storage.spool_dir.join("held")),
        cfg.clips.store_mb.saturating_mul(1 << 20),
        (hours > 0).then(|| std::time::Duration::from_secs(hours.saturating_mul(3600))),
        cfg.storage.min_free_mb.saturating_mul(1 << 20),
    )
    .with_extension("jpg");
    tracing::info!(dir = %store.dir().display(), "evidence images kept on the device until the centre asks (evidence/get)");
    Some(store)
}

/// Puts `[privacy.retention]` and the audit trail in force on the delivery's spool, and checks ages
/// once a minute from a background thread (a quiet camera submits nothing that would trigger it).
pub fn spool_retention(
    loaded: &LoadedConfig,
    delivery: &edge_agent::publish::Delivery,
    trail: &AuditTrail,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clips: Option<std::sync::Arc<edge_agent::clips::ClipRecorder>>,
) -> anyhow::Result<()> {
    let r = &loaded.config.privacy.retention;
    let retention = Retention::from_hours(r.evidence_hours, r.event_hours);
    delivery.set_audit(trail.clone());
    delivery
        .with_spool(|s| {
            s.set_audit(trail.clone());
            s.set_retention(retention)
        })
        .context("enforcing [privacy.retention] on the spool")?;
    tracing::info!(
        evidence_hours = r.evidence_hours,
        event_hours = r.event_hours,
        "retention in force (0 = no age limit)"
    );
    if retention == Retention::default() && clips.is_none() {
        return Ok(());
    }
    let delivery = delivery.clone();
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let mut waited = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_secs(1));
                waited += 1;
                if waited >= 60 {
                    waited = 0;
                    if let Err(e) = delivery.with_spool(|s| s.expire()) {
                        tracing::error!(error = %e, "spool retention check failed");
                    }
                    // a quiet camera saves no clip that would prune the old ones
                    if let Some(c) = &clips {
                        let pruned = c.store().prune(std::time::SystemTime::now());
                        if pruned.expired > 0 {
                            tracing::info!(
                                expired = pruned.expired,
                                "clips past [privacy.retention] clip_hours deleted"
                            );
                        }
                    }
                }
            }
        })
        .context("starting the retention thread")?;
    Ok(())
}
