//! `edge-agent run --config FILE`: the agent. Start-up checks, models, durable event delivery, then
//! every enabled camera through the pipeline until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use edge_agent::pipeline::sink::EventSink;
use edge_agent::pipeline::{self, PipelineOptions};
use edge_agent::publish::Delivery;
use edge_agent::publish::status::StatusInfo;

use super::agent;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file.
    #[arg(long, short)]
    config: PathBuf,
    /// Also append every event as a JSON line to this file (for commissioning and debugging; the
    /// spool and MQTT remain the delivery path).
    #[arg(long)]
    events: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = agent::checked_config(&args.config)?;
    let cfg = &loaded.config;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the shutdown signal handlers")?;
    }
    let cameras = cfg
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| agent::camera_spec(c, None, None))
        .collect::<Vec<_>>();
    if cameras.is_empty() {
        anyhow::bail!(
            "{} has no enabled camera; add a [[cameras]] section",
            args.config.display()
        );
    }
    let models = agent::load_models(&loaded, true)?;
    let mut birth = StatusInfo::from_config(&loaded);
    birth.models = models.ids.clone();
    birth.execution_provider = models.provider.clone();
    birth.inference_backend = models.backend.clone();
    let delivery = Delivery::start(&loaded, birth).context("starting event delivery")?;
    let builder = agent::event_builder(&loaded, &models);
    let mut sink =
        EventSink::new(builder, delivery.topics().clone()).with_delivery(delivery.clone());
    if let Some(path) = &args.events {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the events file {}", path.display()))?;
        sink = sink.with_jsonl(file);
    }
    let sink = Arc::new(sink);
    tracing::info!(
        site = %cfg.device.site_id,
        device = %cfg.device.device_id,
        cameras = cameras.len(),
        "agent running"
    );
    let mut opts = PipelineOptions {
        utc_offset_minutes: cfg.device.utc_offset_minutes,
        ..PipelineOptions::default()
    };
    opts.source.stop = stop;
    // A file given as a camera plays at its own pace, like the camera it stands for.
    opts.source.realtime = true;
    let result = pipeline::run(cameras, models.workers, &opts, sink.clone());
    if let Err(e) = sink.flush() {
        tracing::warn!(error = %e, "cannot flush the events file");
    }
    let left = delivery.shutdown(Duration::from_secs(5));
    tracing::info!(
        unacknowledged = left,
        "stopped; unacknowledged events stay in the spool"
    );
    let summary = result.context("running the pipeline")?;
    for c in &summary.cameras {
        tracing::info!(
            camera = %c.id,
            decoded = c.decoded,
            processed = c.stats.processed,
            dropped = c.dropped,
            tracks = c.tracks,
            plates = c.stats.plates_reported,
            "camera summary"
        );
    }
    Ok(ExitCode::SUCCESS)
}
