//! `edge-agent probe --config FILE`: the installer's self-test at the roadside. Every camera is
//! opened and a frame decoded, every model verified and run once, the broker connected with the
//! configured TLS and credentials, the clock and the spool disk checked; the answer is a table and
//! an exit code.
//!
//! Exit codes: 0 = no check failed (warnings allowed), 1 = at least one check failed,
//! 2 = the config could not be loaded or has errors (nothing else was checked).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edge_agent::config::{
    self, CameraConfig, LoadedConfig, RuntimeConfig, Severity, ValidateOptions,
};
use edge_agent::events::TimeSync;
use edge_agent::health::analysis::{Grey, measure};
use edge_agent::inference::{Model, RgbImage};
use edge_agent::models::{FileState, ManifestSet, ModelStore};
use edge_agent::publish::link::{Link, LinkEvent, hint};
use edge_agent::runtime;
use edge_agent::source::{self, Frame, SourceItem, SourceOptions, StreamStatus, redact_url};

use super::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file to check the device against.
    #[arg(long, short)]
    config: PathBuf,
    /// Seconds to wait for each camera's first frame and for the broker's CONNACK.
    #[arg(long, default_value_t = 15.0)]
    timeout_s: f64,
    /// Free space the spool's disk needs at least, in MiB (below: FAIL).
    #[arg(long, default_value_t = 512)]
    min_free_mb: u64,
    /// Report an unsynchronised clock as WARN instead of FAIL (a device whose time source comes
    /// up later, e.g. GPS or NTP over a VPN that is not up yet).
    #[arg(long)]
    allow_unsynced_clock: bool,
    /// Print one JSON object per check instead of the table.
    #[arg(long)]
    json: bool,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    check: &'static str,
    target: String,
    verdict: Verdict,
    detail: String,
}

fn row(check: &'static str, target: impl Into<String>, verdict: Verdict, detail: String) -> Row {
    Row {
        check,
        target: target.into(),
        verdict,
        detail,
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs_f64(args.timeout_s.max(0.5));
    let mut rows = Vec::new();
    let loaded = match load(&args.config) {
        Ok(l) => {
            rows.push(row(
                "config",
                args.config.display().to_string(),
                Verdict::Pass,
                "parsed and validated".into(),
            ));
            l
        }
        Err(detail) => {
            rows.push(row(
                "config",
                args.config.display().to_string(),
                Verdict::Fail,
                detail,
            ));
            print(&rows, args.json)?;
            return Ok(ExitCode::from(2));
        }
    };
    let cfg = &loaded.config;

    let mut sample: Option<Frame> = None;
    let cams: Vec<&CameraConfig> = cfg.cameras.iter().filter(|c| c.enabled).collect();
    if cams.is_empty() {
        rows.push(row(
            "camera",
            "-",
            Verdict::Fail,
            "no enabled [[cameras]] in the config".into(),
        ));
    }
    for cam in cams {
        let (r, frame) = probe_camera(cam, &loaded, timeout);
        rows.push(r);
        if sample.is_none() {
            sample = frame;
        }
        if let Some(main) = &cam.evidence_url {
            rows.push(probe_main_stream(cam, main, &loaded, timeout));
        }
    }
    rows.extend(probe_models(&loaded, sample.as_ref()));
    rows.push(probe_broker(&loaded, timeout));
    rows.push(probe_clock(args.allow_unsynced_clock));
    rows.push(probe_disk(&loaded, args.min_free_mb));
    rows.push(probe_identity(&loaded));

    print(&rows, args.json)?;
    let failed = rows.iter().any(|r| r.verdict == Verdict::Fail);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The config with `check`'s validation; the first errors as one line.
fn load(path: &Path) -> Result<LoadedConfig, String> {
    let loaded = config::load_file(path).map_err(|e| one_line(&e.to_string()))?;
    let errors: Vec<String> = config::validate(&loaded, &ValidateOptions::default())
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| one_line(&d.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(format!(
            "{} error(s), see `edge-agent check`: {}",
            errors.len(),
            errors.join("; ")
        ))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn print(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        for r in rows {
            output::line(serde_json::json!({
                "check": r.check,
                "target": r.target,
                "result": r.verdict.as_str(),
                "detail": r.detail,
            }))?;
        }
        return Ok(());
    }
    let wc = rows.iter().map(|r| r.check.len()).max().unwrap_or(0).max(5);
    let wt = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut text = format!(
        "{:<wc$}  {:<wt$}  {:<6}  DETAIL\n",
        "CHECK", "TARGET", "RESULT"
    );
    for r in rows {
        text.push_str(&format!(
            "{:<wc$}  {:<wt$}  {:<6}  {}\n",
            r.check,
            r.target,
            r.verdict.as_str(),
            r.detail
        ));
    }
    let (pass, warn, fail) = rows.iter().fold((0, 0, 0), |(p, w, f), r| match r.verdict {
        Verdict::Pass => (p + 1, w, f),
        Verdict::Warn => (p, w + 1, f),
        Verdict::Fail => (p, w, f + 1),
    });
    text.push_str(&format!("{pass} passed, {warn} warnings, {fail} failed"));
    output::line(text)
}

/// What the camera thread reports.
enum CamNews {
    Frames {
        first_after: Duration,
        frames: Vec<Frame>,
        decode_errors: u64,
    },
    Failed(String),
}

/// A camera's main stream (`evidence_url`), probed like a camera; one that does not answer is a
/// warning: plates and evidence then come from the detection stream.
fn probe_main_stream(
    cam: &CameraConfig,
    url: &str,
    loaded: &LoadedConfig,
    timeout: Duration,
) -> Row {
    let mut main = cam.clone();
    main.id = format!("{} main", cam.id);
    main.url = url.to_string();
    // the rules' geometry and frame size are the detection stream's
    main.frame_size = None;
    let (mut r, _) = probe_camera(&main, loaded, timeout);
    if r.verdict == Verdict::Fail {
        r.verdict = Verdict::Warn;
        r.detail = format!(
            "{}; plates and evidence come from the detection stream meanwhile",
            r.detail
        );
    }
    r
}

/// Opens the camera, waits for a frame and measures its rate over up to 2 s (or 30 frames).
fn probe_camera(
    cam: &CameraConfig,
    loaded: &LoadedConfig,
    timeout: Duration,
) -> (Row, Option<Frame>) {
    let target = format!("{} {}", cam.id, redact_url(&cam.url));
    let stop = Arc::new(AtomicBool::new(false));
    let opts = SourceOptions {
        stall_timeout: timeout,
        realtime: false,
        stop: stop.clone(),
        decoding: cam.decoding(),
        ..SourceOptions::default()
    };
    let url = cam.url.clone();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name(format!("probe-{}", cam.id))
        .spawn(move || {
            let mut src = match source::open(&url, &opts) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(CamNews::Failed(e.to_string()));
                    return;
                }
            };
            let mut frames = Vec::new();
            let mut first_after = Duration::ZERO;
            loop {
                match src.next_item() {
                    Ok(Some(SourceItem::Frame(f))) => {
                        if frames.is_empty() {
                            first_after = started.elapsed();
                        }
                        frames.push(f);
                        let measured = started.elapsed() - first_after;
                        if frames.len() >= 30 || measured >= Duration::from_secs(2) {
                            break;
                        }
                    }
                    Ok(Some(SourceItem::Status(StreamStatus::Disconnected { reason, .. }))) => {
                        if frames.is_empty() {
                            let _ = tx.send(CamNews::Failed(reason));
                            return;
                        }
                        break;
                    }
                    Ok(Some(SourceItem::Status(StreamStatus::Stalled { for_ }))) => {
                        if frames.is_empty() {
                            let _ = tx.send(CamNews::Failed(format!(
                                "connected, but no frame within {:.1} s",
                                for_.as_secs_f64()
                            )));
                            return;
                        }
                        break;
                    }
                    Ok(Some(SourceItem::Status(StreamStatus::Connected { .. }))) => {}
                    Ok(None) => break,
                    Err(e) => {
                        if frames.is_empty() {
                            let _ = tx.send(CamNews::Failed(e.to_string()));
                            return;
                        }
                        break;
                    }
                }
            }
            let news = if frames.is_empty() {
                CamNews::Failed("the source ended without a frame".into())
            } else {
                CamNews::Frames {
                    first_after,
                    frames,
                    decode_errors: src.counters().decode_errors,
                }
            };
            let _ = tx.send(news);
        });
    if let Err(e) = spawned {
        return (
            row(
                "camera",
                target,
                Verdict::Fail,
                format!("cannot start a thread: {e}"),
            ),
            None,
        );
    }
    // The frame itself, then up to 2 s of measuring.
    let news = rx.recv_timeout(timeout + Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    match news {
        Err(_) => (
            row(
                "camera",
                target,
                Verdict::Fail,
                format!("no frame within {:.0} s", timeout.as_secs_f64()),
            ),
            None,
        ),
        Ok(CamNews::Failed(reason)) => (
            row(
                "camera",
                target,
                Verdict::Fail,
                if reason.contains(&redact_url(&cam.url)) {
                    one_line(&reason)
                } else {
                    format!("{}: {}", redact_url(&cam.url), one_line(&reason))
                },
            ),
            None,
        ),
        Ok(CamNews::Frames {
            first_after,
            mut frames,
            decode_errors,
        }) => {
            let first = frames.swap_remove(0);
            let last_t = frames.iter().map(|f| f.stream_time).max();
            let fps = last_t
                .filter(|&t| t > first.stream_time)
                .map(|t| frames.len() as f64 / (t - first.stream_time).as_secs_f64());
            let mut verdict = Verdict::Pass;
            let mut detail = format!(
                "{}x{}, {}, first frame after {:.2} s",
                first.width,
                first.height,
                fps.map_or_else(
                    || "fps unknown (one frame)".into(),
                    |f| format!("{f:.1} fps")
                ),
                first_after.as_secs_f64()
            );
            let h = &loaded.config.health;
            if let Some(f) = fps
                && f < h.min_fps_ratio * cam.target_fps
            {
                verdict = Verdict::Warn;
                detail.push_str(&format!("; below the target {:.1} fps", cam.target_fps));
            }
            if decode_errors > 0 {
                verdict = Verdict::Warn;
                detail.push_str(&format!("; {decode_errors} decode errors"));
            }
            // the agent would run this camera without its zones and rules (rules_disabled)
            if let Some([w, h]) = cam.frame_size
                && (w, h) != (first.width, first.height)
            {
                verdict = Verdict::Fail;
                detail.push_str(&format!(
                    "; frame_size is [{w}, {h}] but the stream sends {}x{}: its zones, lines and rules would be off (redraw them for this size or set the camera back)",
                    first.width, first.height
                ));
            }
            if let Some(g) = Grey::from_rgb(&first.rgb, first.width, first.height, h.analysis_width)
            {
                let m = measure(&g);
                detail.push_str(&format!(
                    "; brightness {:.0}, contrast {:.0}, sharpness {:.0}",
                    m.mean, m.std, m.sharpness
                ));
                if f64::from(m.std) < h.covered_max_std || f64::from(m.mean) < h.covered_max_mean {
                    verdict = Verdict::Warn;
                    detail.push_str("; picture nearly uniform: lens covered or capped?");
                }
            }
            (row("camera", target, verdict, detail), Some(first))
        }
    }
}

/// Weights verified and one inference per model on the sample frame.
fn probe_models(loaded: &LoadedConfig, sample: Option<&Frame>) -> Vec<Row> {
    let cfg = &loaded.config;
    let mut rows = Vec::new();
    let lib_path = cfg
        .runtime
        .onnxruntime
        .as_ref()
        .map(|p| loaded.resolve_path(p));
    let lib = match runtime::init_with(
        lib_path.as_deref(),
        runtime::SharedThreads::of(&cfg.runtime),
    ) {
        Ok(lib) => {
            rows.push(row(
                "runtime",
                lib.path.display().to_string(),
                Verdict::Pass,
                format!("ONNX Runtime {} loaded", lib.version),
            ));
            true
        }
        Err(e) => {
            rows.push(row(
                "runtime",
                "onnxruntime",
                Verdict::Fail,
                one_line(&e.to_string()),
            ));
            false
        }
    };
    let set = match loaded.manifests() {
        Ok(s) => s,
        Err(e) => {
            rows.push(row(
                "model",
                "manifests",
                Verdict::Fail,
                one_line(&e.to_string()),
            ));
            return rows;
        }
    };
    let store = loaded.model_store();
    let mut rt = cfg.runtime.clone();
    rt.onnxruntime = lib_path;
    let (image, from) =
        match sample.and_then(|f| RgbImage::from_raw(f.width, f.height, f.rgb.clone())) {
            Some(img) => (img, "a camera frame"),
            None => (
                RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128])),
                "a grey test image",
            ),
        };
    for (role, name) in cfg.models.roles() {
        let target = format!("{role} {name}");
        let probed = probe_model(&set, &store, &rt, name, lib, &image, from);
        rows.push(match probed {
            Ok((verdict, detail)) => row("model", target, verdict, detail),
            Err(e) => row("model", target, Verdict::Fail, one_line(&e)),
        });
    }
    rows
}

/// One model's row: manifest known, files verified, then (with ONNX Runtime) loaded and run once on
/// `image`. An error is the detail of a failed row.
fn probe_model(
    set: &ManifestSet,
    store: &ModelStore,
    rt: &RuntimeConfig,
    name: &str,
    lib: bool,
    image: &RgbImage,
    from: &str,
) -> Result<(Verdict, String), String> {
    let manifest = set.require(name).map_err(|e| e.to_string())?;
    let files = store.verify(manifest).map_err(|e| e.to_string())?;
    if let Some(bad) = files.iter().find(|f| f.state != FileState::Ok) {
        return Err(bad.to_string());
    }
    let shipping = manifest.shipping();
    let sha = format!(
        "sha256 {} verified, licence {} ({shipping})",
        &manifest.sha256[..manifest.sha256.len().min(12)],
        manifest.licence
    );
    if !lib {
        return Err(format!("{sha}; not run (no ONNX Runtime)"));
    }
    let t0 = Instant::now();
    let (load, run, provider) = Model::load(manifest, store, rt)
        .and_then(|mut m| {
            let loaded_in = t0.elapsed();
            let t1 = Instant::now();
            m.infer(&[(image, None)])?;
            Ok((loaded_in, t1.elapsed(), m.provider()))
        })
        .map_err(|e| format!("{sha}; {e}"))?;
    // Runs, but the box may not go into production with it: the same call as `check`'s warning.
    let verdict = match shipping.may_ship() {
        true => Verdict::Pass,
        false => Verdict::Warn,
    };
    Ok((
        verdict,
        format!(
            "{sha}; loaded in {:.0} ms, one inference on {from} in {:.0} ms ({})",
            load.as_secs_f64() * 1e3,
            run.as_secs_f64() * 1e3,
            provider.as_str()
        ),
    ))
}

/// A real connection with the configured TLS and credentials, up to the CONNACK.
fn probe_broker(loaded: &LoadedConfig, timeout: Duration) -> Row {
    let m = &loaded.config.mqtt;
    let Some(url) = &m.broker else {
        return row(
            "broker",
            format!("embedded {}", m.embedded_listen),
            Verdict::Warn,
            "no [mqtt].broker: events stay on the device's embedded broker (development only)"
                .into(),
        );
    };
    let target = redact_url(url);
    let mut s = match loaded.mqtt_settings() {
        Ok(s) => s,
        Err(e) => return row("broker", target, Verdict::Fail, one_line(&e.to_string())),
    };
    // Its own client id and a clean session: taking over the agent's id would disconnect a
    // running agent and could drop the session the broker keeps for it.
    s.client_id = format!("{}-probe", s.client_id);
    s.clean_session = true;
    let ca = m
        .tls
        .as_ref()
        .map(|t| loaded.resolve_path(&t.ca_file).display().to_string())
        .unwrap_or_default();
    let how = match &s.tls {
        None => "plain TCP".to_string(),
        Some(t) if t.client.is_some() => format!("TLS with client certificate, CA {ca}"),
        Some(_) => format!("TLS, CA {ca}"),
    };
    let how = match &s.username {
        Some(u) => format!("{how}, user {u}"),
        None => how,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return row(
                "broker",
                target,
                Verdict::Fail,
                format!("no async runtime: {e}"),
            );
        }
    };
    let t0 = Instant::now();
    let outcome = rt.block_on(async {
        let mut link = Link::connect(&s, None);
        let wait = async {
            while let Some(ev) = link.events.recv().await {
                match ev {
                    LinkEvent::Connected { .. } => return Ok(()),
                    LinkEvent::Closed(reason) => return Err(reason),
                    _ => {}
                }
            }
            Err("the connection ended before a CONNACK".to_string())
        };
        let r = tokio::time::timeout(timeout, wait).await;
        link.disconnect().await;
        r
    });
    match outcome {
        Ok(Ok(())) => row(
            "broker",
            target,
            Verdict::Pass,
            format!(
                "CONNACK in {:.0} ms ({how})",
                t0.elapsed().as_secs_f64() * 1e3
            ),
        ),
        Ok(Err(reason)) => row(
            "broker",
            target,
            Verdict::Fail,
            format!("{} ({how}) — {}", one_line(&reason), hint(&reason)),
        ),
        Err(_) => row(
            "broker",
            target,
            Verdict::Fail,
            format!(
                "no CONNACK within {:.0} s ({how}); is the broker reachable from here?",
                timeout.as_secs_f64()
            ),
        ),
    }
}

fn probe_clock(allow_unsynced: bool) -> Row {
    let state = edge_agent::health::clock_state();
    let verdict = match state.sync {
        TimeSync::Synced => Verdict::Pass,
        TimeSync::Unsynced if !allow_unsynced => Verdict::Fail,
        _ => Verdict::Warn,
    };
    let mut detail = state.describe();
    if verdict != Verdict::Pass {
        detail.push_str("; event times are evidence of order only until NTP/chrony synchronises");
    }
    row("clock", "system clock", verdict, detail)
}

/// Free space on the spool's file system, and that the spool directory is writable.
/// The device's public signing key, for the centre to pin at commissioning. Only read: the agent
/// makes the key at its first start, as its own user (a probe run as root must not own it).
fn probe_identity(loaded: &LoadedConfig) -> Row {
    let path = loaded.resolve_path(&loaded.config.storage.device_key_path());
    let target = path.display().to_string();
    if !path.exists() {
        return row(
            "identity",
            target,
            Verdict::Warn,
            "no device key yet: the agent makes it at its first start (then probe again to read it)".into(),
        );
    }
    match edge_agent::signing::DeviceKey::load_or_create(&path) {
        Ok(k) => row(
            "identity",
            target,
            Verdict::Pass,
            format!(
                "public key {} (pin it at the centre for this device)",
                k.public_hex()
            ),
        ),
        Err(e) => row("identity", target, Verdict::Fail, e.to_string()),
    }
}

fn probe_disk(loaded: &LoadedConfig, min_free_mb: u64) -> Row {
    let st = &loaded.config.storage;
    let dir = loaded.resolve_path(&st.spool_dir);
    let target = dir.display().to_string();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return row(
            "disk",
            target,
            Verdict::Fail,
            format!("cannot create the spool directory: {e}"),
        );
    }
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let writable = std::fs::File::create(&probe).and_then(|mut f| f.write_all(b"probe"));
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = writable {
        return row(
            "disk",
            target,
            Verdict::Fail,
            format!("the spool directory is not writable: {e}"),
        );
    }
    let free = match edge_agent::spool::free_bytes(&dir) {
        Ok(b) => b / (1 << 20),
        Err(e) => return row("disk", target, Verdict::Fail, format!("statvfs: {e}")),
    };
    let (verdict, note) = if free < min_free_mb {
        (
            Verdict::Fail,
            format!("; below the minimum {min_free_mb} MiB"),
        )
    } else if free < st.max_size_mb {
        (
            Verdict::Warn,
            format!(
                "; less than [storage].max_size_mb = {} MiB, the spool cannot fill up to its bound",
                st.max_size_mb
            ),
        )
    } else {
        (Verdict::Pass, String::new())
    };
    row(
        "disk",
        target,
        verdict,
        format!("{free} MiB free, writable{note}"),
    )
}
