//! `edge-agent replay --config FILE VIDEO`: the whole pipeline on a recorded video, for tuning a
//! site's config and for tests; events as JSON lines and a summary of what happened.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use edge_agent::audit::AuditTrail;
use edge_agent::events::Topics;
use edge_agent::pipeline::sink::EventSink;
use edge_agent::pipeline::{self, Summary};
use serde_json::json;

use super::agent;
use super::resources;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file: the camera's role, rate and rules, the models and the runtime.
    #[arg(long, short)]
    config: PathBuf,
    /// Video file (MP4, H.264) or folder of images to run through the pipeline. Several videos
    /// run at once as several cameras with the same settings (ids `ID`, `ID-2`, `ID-3`, ...)
    /// sharing the inference workers: a multi-camera load test.
    #[arg(required = true)]
    video: Vec<String>,
    /// The camera of the config the videos stand for [default: the first camera].
    #[arg(long)]
    camera: Option<String>,
    /// Write every event as a JSON line (the event schema) to this file.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Save evidence JPEGs as DIR/{sha256}.jpg.
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Audit log that records the evidence exports [default: the config's `[storage]
    /// audit_file`]. Opened only with --evidence or when given.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Pace the video by its timestamps like a live camera; frames are dropped when inference
    /// falls behind. Default: as fast as possible, every sampled frame analysed.
    #[arg(long)]
    realtime: bool,
    /// Frames per second to analyse [default: the camera's target_fps].
    #[arg(long)]
    fps: Option<f64>,
    /// Skip plate reading (detection, tracking and rules only).
    #[arg(long)]
    no_plates: bool,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = agent::checked_config(&args.config)?;
    let cfg = &loaded.config;
    let cam = match &args.camera {
        Some(id) => cfg
            .cameras
            .iter()
            .find(|c| &c.id == id)
            .with_context(|| format!("{} has no camera `{id}`", args.config.display()))?,
        None => cfg
            .cameras
            .first()
            .with_context(|| format!("{} has no [[cameras]]", args.config.display()))?,
    };
    let specs: Vec<_> = args
        .video
        .iter()
        .enumerate()
        .map(|(i, video)| {
            let mut spec = agent::camera_spec(cam, Some(video), args.fps);
            if i > 0 {
                spec.id = format!("{}-{}", spec.id, i + 1);
            }
            spec
        })
        .collect();
    // Exported evidence is personal data leaving the agent's control: it is recorded.
    let trail = match (&args.audit, &args.evidence) {
        (Some(path), _) => agent::audit_trail_at(&loaded, path)?,
        (None, Some(_)) => agent::audit_trail(&loaded)?,
        (None, None) => AuditTrail::disabled(),
    };
    let watchlist = agent::watchlist(&loaded, &trail)?;
    let privacy = agent::privacy_policy(&loaded, watchlist, &trail)?;
    let models = agent::load_models(&loaded, !args.no_plates)?;
    let mut builder = agent::event_builder(&loaded, &models);
    builder.privacy = privacy;
    let topics = Topics::new(
        &cfg.mqtt.topic_prefix,
        &cfg.device.site_id,
        &cfg.device.device_id,
    );
    let mut sink = EventSink::new(builder, topics);
    if let Some(path) = &args.events {
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating the events file {}", path.display()))?;
        sink = sink.with_jsonl(file);
    }
    if let Some(dir) = &args.evidence {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the evidence folder {}", dir.display()))?;
        let hours = cfg.privacy.retention.export_hours;
        if hours > 0 {
            prune_exports(dir, std::time::Duration::from_secs(hours * 3600), &trail);
        }
        sink = sink
            .with_evidence_dir(dir.clone())
            .with_audit(trail.clone());
    }
    let sink = Arc::new(sink);
    let mut opts = agent::pipeline_options(&loaded);
    opts.lossless = !args.realtime;
    opts.source.realtime = args.realtime;
    let cpu_before = resources::process_cpu();
    let summary = pipeline::run(specs, models.workers, &opts, sink.clone())
        .with_context(|| format!("replaying {}", args.video.join(", ")))?;
    let cpu = resources::process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    let resources = Resources {
        cpu,
        peak_rss_kb: resources::peak_rss_kb(),
    };
    sink.flush().context("writing the events file")?;
    let counts = sink.counts();
    if args.json {
        let mut v = summary_json(&summary, &counts, sink.failures());
        v["cpu_s"] = json!(resources.cpu.map(|d| d.as_secs_f64()));
        v["cpu_ms_per_frame"] = json!(resources.cpu_ms_per_frame(&summary));
        v["peak_rss_mb"] = json!(resources.peak_rss_kb.map(|kb| kb as f64 / 1024.0));
        println!("{v}");
    } else {
        print_summary(&summary, &counts, sink.failures());
        resources.print(&summary);
    }
    Ok(if sink.failures() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// CPU time and memory of the run, measures that hold up on a loaded machine where wall-clock
/// figures do not.
struct Resources {
    /// User + system CPU time of the whole process during the pipeline run.
    cpu: Option<std::time::Duration>,
    /// Peak resident set size of the process (model loading included).
    peak_rss_kb: Option<u64>,
}

impl Resources {
    fn cpu_ms_per_frame(&self, summary: &Summary) -> Option<f64> {
        let frames: u64 = summary.cameras.iter().map(|c| c.stats.processed).sum();
        self.cpu
            .filter(|_| frames > 0)
            .map(|c| c.as_secs_f64() * 1e3 / frames as f64)
    }

    fn print(&self, summary: &Summary) {
        if let (Some(cpu), Some(per)) = (self.cpu, self.cpu_ms_per_frame(summary)) {
            println!(
                "cpu: {:.2} s user+system, {per:.1} ms per processed frame",
                cpu.as_secs_f64()
            );
        }
        if let Some(kb) = self.peak_rss_kb {
            println!("peak RSS: {:.1} MB", kb as f64 / 1024.0);
        }
    }
}

/// `[privacy.retention] export_hours`: deletes the evidence JPEGs older than `max_age` that an
/// earlier replay exported to `dir`, logging and auditing the count (never silent).
fn prune_exports(dir: &std::path::Path, max_age: std::time::Duration, trail: &AuditTrail) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut deleted = 0u64;
    for entry in entries.flatten() {
        let path = entry.path();
        // Only what an export writes: `{sha256}.jpg`.
        let is_export = path.extension().is_some_and(|e| e == "jpg")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > max_age);
        if is_export && old {
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot delete an expired export")
                }
            }
        }
    }
    if deleted > 0 {
        tracing::info!(dir = %dir.display(), deleted, "retention: deleted expired evidence exports");
        trail.record(
            "retention.delete",
            "agent",
            json!({"class": "evidence_export", "count": deleted, "dir": dir.display().to_string(),
                   "max_age_hours": max_age.as_secs() / 3600}),
        );
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn per_frame_ms(total: std::time::Duration, frames: u64) -> f64 {
    ms(total) / frames.max(1) as f64
}

type Counts = std::collections::BTreeMap<edge_agent::events::EventKind, u64>;

/// The summary as JSON: the same figures as the text.
pub fn summary_json(summary: &Summary, counts: &Counts, failures: u64) -> serde_json::Value {
    let wall = summary.wall.as_secs_f64();
    let cameras: Vec<_> = summary
        .cameras
        .iter()
        .map(|c| {
            let s = &c.stats;
            json!({
                "camera": c.id,
                "frames_decoded": c.decoded,
                "frames_sampled": c.sampled,
                "frames_processed": s.processed,
                "frames_dropped": c.dropped,
                "frames_failed": c.failed,
                "decode_errors": c.source.decode_errors,
                "reconnects": c.source.reconnects,
                "processing_fps": if wall > 0.0 { s.processed as f64 / wall } else { 0.0 },
                "tracks": c.tracks,
                "max_live_tracks": s.max_tracks,
                "plate_reads": s.plate_reads,
                "plates_reported": s.plates_reported,
                "model_calls": {
                    "detector": s.detector_calls,
                    "plate_detector": s.plate_detector_calls,
                    "vehicles_searched": s.vehicles_searched,
                    "ocr_crops": s.ocr_crops,
                },
                "ort_ms_per_frame": {
                    "detect": per_frame_ms(s.ort_detect, s.processed),
                    "plates": per_frame_ms(s.ort_plates, s.processed),
                },
                "stage_ms": {
                    "detect_p50": ms(s.detect.quantile(0.5)), "detect_p99": ms(s.detect.quantile(0.99)),
                    "track_p50": ms(s.track.quantile(0.5)), "track_p99": ms(s.track.quantile(0.99)),
                    "plates_p50": ms(s.plates.quantile(0.5)), "plates_p99": ms(s.plates.quantile(0.99)),
                    "rules_p50": ms(s.rules.quantile(0.5)), "rules_p99": ms(s.rules.quantile(0.99)),
                    "frame_p50": ms(s.frame.quantile(0.5)), "frame_p99": ms(s.frame.quantile(0.99)),
                    "capture_to_event_p50": ms(s.capture_to_event.quantile(0.5)),
                    "capture_to_event_p99": ms(s.capture_to_event.quantile(0.99)),
                    "capture_to_done_p50": ms(s.capture_to_done.quantile(0.5)),
                    "capture_to_done_p99": ms(s.capture_to_done.quantile(0.99)),
                },
            })
        })
        .collect();
    let events: serde_json::Map<String, serde_json::Value> = counts
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), json!(v)))
        .collect();
    json!({
        "wall_s": wall,
        "cameras": cameras,
        "events": events,
        "event_failures": failures,
    })
}

fn print_summary(summary: &Summary, counts: &Counts, failures: u64) {
    let wall = summary.wall.as_secs_f64();
    println!("replay finished in {wall:.2} s");
    for c in &summary.cameras {
        let s = &c.stats;
        println!("camera {}:", c.id);
        println!(
            "  frames: {} decoded, {} sampled, {} processed, {} dropped, {} failed; {} decode errors",
            c.decoded, c.sampled, s.processed, c.dropped, c.failed, c.source.decode_errors
        );
        let fps = if wall > 0.0 {
            s.processed as f64 / wall
        } else {
            0.0
        };
        println!("  processing: {fps:.1} frames/s");
        println!(
            "  tracks: {} confirmed (at most {} at once); plates: {} reads, {} reported",
            c.tracks, s.max_tracks, s.plate_reads, s.plates_reported
        );
        println!(
            "  per frame p50/p99 ms: detect {:.1}/{:.1}, track {:.2}/{:.2}, plates {:.1}/{:.1}, rules {:.2}/{:.2}, whole {:.1}/{:.1}",
            ms(s.detect.quantile(0.5)),
            ms(s.detect.quantile(0.99)),
            ms(s.track.quantile(0.5)),
            ms(s.track.quantile(0.99)),
            ms(s.plates.quantile(0.5)),
            ms(s.plates.quantile(0.99)),
            ms(s.rules.quantile(0.5)),
            ms(s.rules.quantile(0.99)),
            ms(s.frame.quantile(0.5)),
            ms(s.frame.quantile(0.99)),
        );
        let per = |n: u64| n as f64 / s.processed.max(1) as f64;
        println!(
            "  model calls per frame: detector {:.2}, plate detector {:.2} ({:.2} vehicles searched), OCR {:.2} crops",
            per(s.detector_calls),
            per(s.plate_detector_calls),
            per(s.vehicles_searched),
            per(s.ocr_crops)
        );
        println!(
            "  ONNX Runtime ms per frame: detect {:.1}, plates {:.1}",
            per_frame_ms(s.ort_detect, s.processed),
            per_frame_ms(s.ort_plates, s.processed)
        );
        if s.capture_to_event.count() > 0 {
            println!(
                "  capture to event p50/p99 ms: {:.1}/{:.1} ({} events)",
                ms(s.capture_to_event.quantile(0.5)),
                ms(s.capture_to_event.quantile(0.99)),
                s.capture_to_event.count(),
            );
        }
        println!(
            "  capture to frame done p50/p99 ms (every frame, queue wait included): {:.1}/{:.1}",
            ms(s.capture_to_done.quantile(0.5)),
            ms(s.capture_to_done.quantile(0.99))
        );
    }
    let total: u64 = counts.values().sum();
    let by_kind: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "events: {total}{}{}",
        if by_kind.is_empty() { "" } else { " — " },
        by_kind.join(", ")
    );
    if failures > 0 {
        println!("events that could not be built or stored: {failures} (see the log)");
    }
}
