//! `edge-agent emit`: submits synthetic events with real evidence JPEGs through the real spool and
//! publisher. It drives the delivery tests (SIGKILL mid-stream, broker restarts) and the delivery
//! benchmark (`--report`). Each committed event is printed as a JSON line once the spool commit is
//! on disk, so a test knows exactly which events must arrive.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use edge_agent::config;
use edge_agent::events::evidence::{self, EvidenceImage};
use edge_agent::events::{Event, EventKind, ObjectInfo, Phase, PlateInfo, TimeSync};
use edge_agent::publish::Delivery;
use serde_json::json;

use super::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent config (device ids, [mqtt], [storage], [evidence]).
    #[arg(long)]
    config: PathBuf,
    /// Events to submit; 0 only flushes what the spool holds.
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Events per second; 0 = as fast as the spool commits.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// JPEG frame for the evidence. Default: the first frame of the shared footage.
    #[arg(long)]
    frame: Option<PathBuf>,
    /// Submit events without evidence images.
    #[arg(long)]
    no_evidence: bool,
    /// Camera id written into the events.
    #[arg(long, default_value = "cam-1")]
    camera: String,
    /// Seconds to wait for the broker to acknowledge everything before exiting.
    #[arg(long, default_value_t = 30.0)]
    flush_timeout: f64,
    /// Print one JSON report line at the end (throughput, latency, spool recovery time, peak memory
    /// and the embedded broker's memory).
    #[arg(long)]
    report: bool,
    /// Do not print a line per committed event.
    #[arg(long)]
    quiet: bool,
    /// Submitting threads, like cameras feeding one agent; they share spool commits.
    #[arg(long, default_value_t = 1)]
    threads: u64,
}

fn default_frame() -> anyhow::Result<PathBuf> {
    let shared = std::env::var_os("EDGE_AGENT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"));
    let dir = shared.join("footage/frames/vn_citycam_haiphong_10fps");
    let mut frames: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "reading {} (set EDGE_AGENT_SHARED or pass --frame)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    frames.sort();
    frames
        .into_iter()
        .next()
        .with_context(|| format!("no .jpg frames in {}", dir.display()))
}

fn evidence_for(path: &Path, cfg: &config::EvidenceConfig) -> anyhow::Result<Vec<EvidenceImage>> {
    let img = image::open(path)
        .with_context(|| format!("decoding evidence frame {}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let rgb = img.into_raw();
    let frame = evidence::encode_frame(&rgb, w, h, cfg.frame_max_width, cfg.jpeg_quality)
        .with_context(|| format!("encoding {}", path.display()))?;
    let bbox = [
        w as f32 * 0.4,
        h as f32 * 0.6,
        w as f32 * 0.55,
        h as f32 * 0.68,
    ];
    let crop = evidence::encode_crop(&rgb, w, h, bbox, cfg.crop_padding, 0, cfg.jpeg_quality)
        .with_context(|| format!("cropping {}", path.display()))?;
    Ok(vec![frame, crop])
}

fn synthetic_event(loaded: &config::LoadedConfig, camera: &str, n: u64) -> Event {
    let d = &loaded.config.device;
    let mut e = Event::new(
        EventKind::PlateRead,
        Phase::New,
        &d.site_id,
        &d.device_id,
        camera,
        Utc::now(),
    );
    e.time_sync = TimeSync::Unknown;
    e.config_hash = loaded.hash();
    e.location = loaded.config.camera_locations().remove(camera);
    e.object = Some(ObjectInfo {
        class: "car".into(),
        track_id: Some(n),
        bbox: [400.0, 430.0, 560.0, 490.0],
        score: 0.9,
        plate: Some(PlateInfo {
            text: "51F12345".into(),
            display: "51F-123.45".into(),
            confidence: 0.9,
            char_confidence: vec![0.9; 8],
            rows: 1,
            province: None,
            valid: true,
            text_hmac: None,
        }),
    });
    e
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = config::load_file(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let images = if args.no_evidence || args.count == 0 {
        Vec::new()
    } else {
        let frame = match &args.frame {
            Some(f) => f.clone(),
            None => default_frame()?,
        };
        evidence_for(&frame, &loaded.config.evidence)?
    };
    let delivery = loaded
        .delivery_options()
        .and_then(|opts| Delivery::start_with(opts, loaded.birth()))
        .with_context(|| format!("starting delivery for {}", args.config.display()))?;
    let t0 = Instant::now();
    let threads = args.threads.max(1);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let (delivery, images, loaded, args) = (&delivery, &images, &loaded, &args);
                scope.spawn(move || -> anyhow::Result<()> {
                    // Thread k submits events k, k+threads, ...; the rate is shared.
                    for n in (k..args.count).step_by(threads as usize) {
                        if args.rate > 0.0 {
                            let due = t0 + Duration::from_secs_f64(n as f64 / args.rate);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        let event = synthetic_event(loaded, &args.camera, n);
                        let id = event.event_id;
                        let seq = delivery
                            .submit(event, images.clone())
                            .context("submitting an event to the spool")?;
                        if !args.quiet {
                            output::line(json!({"event_id": id, "seq": seq}))?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a submitting thread panicked"))??;
        }
        Ok(())
    })?;
    let submit_time = t0.elapsed();
    let flushed = delivery.wait_idle(Duration::from_secs_f64(args.flush_timeout));
    let total_time = t0.elapsed();
    let stats = delivery.stats();
    let left = delivery.shutdown(Duration::from_millis(if flushed { 2000 } else { 100 }));
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    if args.report {
        let evidence_bytes: usize = images.iter().map(|i| i.jpeg.len()).sum();
        output::line(json!({
            "report": "delivery",
            "submitted": args.count,
            "threads": threads,
            "left_in_spool": left,
            "flushed": flushed,
            "evidence_bytes_per_event": evidence_bytes,
            "submit_s": submit_time.as_secs_f64(),
            "submitted_per_s": args.count as f64 / submit_time.as_secs_f64().max(1e-9),
            "acked_per_s": if flushed { args.count as f64 / total_time.as_secs_f64().max(1e-9) } else { 0.0 },
            "latency_p50_ms": ms(stats.latency_p50),
            "latency_p99_ms": ms(stats.latency_p99),
            "latency_samples": stats.latency_samples,
            "spool_open_ms": stats.spool_open.as_secs_f64() * 1000.0,
            "spool": stats.spool,
            "mqtt": stats.link,
            "broker": stats.broker,
            "peak_rss_mb": super::resources::peak_rss_kb().map(|kb| kb as f64 / 1024.0),
        }))?;
    }
    if left > 0 {
        eprintln!(
            "warning: {left} messages left in the spool {} (sent at the next start)",
            loaded
                .resolve_path(&loaded.config.storage.spool_dir)
                .display()
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
