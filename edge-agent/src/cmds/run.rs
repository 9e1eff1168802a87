//! `edge-agent run --config FILE`: the agent. Start-up checks, models, durable event delivery, then
//! every enabled camera through the pipeline until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use edge_agent::api::{ApiServer, AuditSink};
use edge_agent::pipeline;
use edge_agent::pipeline::live::LiveHub;
use edge_agent::pipeline::sink::EventSink;
use edge_agent::publish::Delivery;
use edge_agent::service::{self, Liveness, Notifier};

use super::{agent, remote};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file.
    #[arg(long, short)]
    config: PathBuf,
    /// Also append every event as a JSON line to this file (for commissioning and debugging; the
    /// spool and MQTT remain the delivery path).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Bound of the events file in MiB: past it the file becomes `FILE.1` (replacing the one
    /// before) and a new one starts, so a months-long run keeps at most about twice this.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    events_max_mb: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let disk = agent::checked_config(&args.config)?;
    let trail = agent::audit_trail(&disk)?;
    let watchlist = agent::watchlist(&disk, &trail)?;
    // A remote config stored by an earlier run may replace the file's cameras (docs/remote.md),
    // unless remote configuration is switched off: then the file is all there is.
    let remote_setup = disk
        .config
        .remote
        .enabled
        .then(|| remote::startup(disk.clone(), &watchlist));
    let loaded = remote_setup
        .as_ref()
        .map_or_else(|| disk.clone(), |s| s.loaded().clone());
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
    // The local API comes up before the models load, so an installer sees the device at once.
    let hub = Arc::new(LiveHub::new());
    for c in cfg.cameras.iter().filter(|c| c.enabled) {
        hub.add_camera(c, &c.url, c.target_fps);
    }
    let api = if cfg.http.enabled {
        let access = trail.clone();
        let audit: AuditSink = Box::new(move |actor, details| {
            access.record("api.access", actor, details);
        });
        Some(
            ApiServer::start(&loaded, hub.clone(), Some(audit))
                .context("starting the local HTTP API")?,
        )
    } else {
        None
    };
    agent::audit_insecure_links(&loaded, &trail);
    let privacy = agent::privacy_policy(&loaded, watchlist.clone(), &trail)?;
    for c in cfg.cameras.iter().filter(|c| c.enabled) {
        hub.set_blur_people(&c.id, privacy.blurs(&c.id));
    }
    let models = agent::load_models(&loaded, true)?;
    let mut birth = loaded.birth();
    birth.models = models.ids.clone();
    birth.execution_provider = models.provider.clone();
    birth.inference_backend = models.backend.clone();
    birth.model_cards = models.cards.clone();
    let delivery = loaded
        .delivery_options()
        .and_then(|opts| Delivery::start_with(opts, birth))
        .context("starting event delivery")?;
    hub.set_delivery(delivery.clone());
    let clips = agent::clip_recorder(&loaded, delivery.topics());
    agent::spool_retention(&loaded, &delivery, &trail, stop.clone(), clips.clone())?;
    let mut builder = agent::event_builder(&loaded, &models);
    builder.privacy = privacy;
    let mut sink = EventSink::new(builder, delivery.topics().clone())
        .with_delivery(delivery.clone())
        .with_audit(trail.clone());
    if let Some(path) = &args.events {
        sink = sink
            .with_jsonl_bounded(path, args.events_max_mb << 20)
            .with_context(|| format!("opening the events file {}", path.display()))?;
    }
    if api.is_some() {
        sink = sink.with_live(hub.clone());
    }
    if let Some(clips) = &clips {
        sink = sink.with_clips(clips.clone());
        hub.set_clips(clips.clone());
    }
    if let Some(store) = agent::held_images(&loaded) {
        sink = sink.with_held_images(store);
    }
    let sink = Arc::new(sink);
    tracing::info!(
        site = %cfg.device.site_id,
        device = %cfg.device.device_id,
        cameras = cameras.len(),
        watchlist = watchlist.current().len(),
        "agent running"
    );
    let mut opts = agent::pipeline_options(&loaded);
    if api.is_some() {
        opts.observers.push(hub.clone());
    }
    // A file given as a camera plays at its own pace, like the camera it stands for.
    opts.source.realtime = true;
    let (control, control_rx) = pipeline::control();
    match remote_setup {
        Some(setup) => remote::serve(
            setup,
            &delivery,
            sink.clone(),
            control,
            watchlist.clone(),
            hub.clone(),
            trail.clone(),
        )?,
        None => tracing::info!(
            "remote configuration off ([remote] enabled = false): config/set and watchlist/set are not subscribed"
        ),
    }
    // systemd (Type=notify): READY=1 once cameras are open and workers run, WATCHDOG=1 only while
    // every camera makes progress, STOPPING=1 at shutdown.
    let notifier = Notifier::from_env().context("opening $NOTIFY_SOCKET")?;
    let liveness = Arc::new(Liveness::new(
        Duration::from_secs_f64(cfg.health.watchdog_stale_s.max(1.0)),
        // A reconnect attempt may take a connection step per stall timeout.
        opts.source.stall_timeout * 4,
    ));
    opts.observers.push(liveness.clone());
    let supervisor_stop = Arc::new(AtomicBool::new(false));
    let supervisor = {
        let (liveness, stop, pipeline_stop) =
            (liveness.clone(), supervisor_stop.clone(), stop.clone());
        let status = format!("running {} camera(s)", cameras.len());
        std::thread::Builder::new()
            .name("sd-notify".into())
            .spawn(move || {
                // A signal stops the pipeline; systemd hears STOPPING=1 at once.
                let either = AtomicBool::new(false);
                let watch =
                    || pipeline_stop.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        while !watch() {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        either.store(true, Ordering::Relaxed);
                    });
                    service::supervise(&notifier, &liveness, &either, &status);
                });
            })
            .context("starting the systemd notification thread")?
    };
    opts.source.stop = stop;
    let result = pipeline::run_controlled(
        cameras,
        models.workers,
        &opts,
        sink.clone(),
        Some(control_rx),
    );
    supervisor_stop.store(true, Ordering::Relaxed);
    if supervisor.join().is_err() {
        tracing::error!("the systemd notification thread panicked");
    }
    if let Err(e) = sink.flush() {
        tracing::warn!(error = %e, "cannot flush the events file");
    }
    let left = delivery.shutdown(Duration::from_secs(5));
    tracing::info!(
        unacknowledged = left,
        "stopped; unacknowledged events stay in the spool"
    );
    if let Some(api) = api {
        api.stop();
    }
    let summary = result.context("running the pipeline")?;
    for c in &summary.cameras {
        tracing::info!(
            camera = %c.id,
            decoded = c.decoded,
            processed = c.stats.processed,
            dropped = c.dropped,
            tracks = c.tracks,
            plates = c.stats.plates_reported,
            plate_reads = c.stats.plate_reads,
            main_stream_frames = c.stats.main_stream_frames,
            "camera summary"
        );
    }
    Ok(ExitCode::SUCCESS)
}
