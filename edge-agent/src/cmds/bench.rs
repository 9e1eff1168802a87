//! `edge-agent bench`: steady-state preprocessing, ONNX Runtime and postprocessing time per model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use edge_agent::inference::{Rect, RgbImage};
use edge_agent::models::{DecoderSpec, ManifestSet};

use super::detect::load_model;
use super::resources;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Models to measure [default: every built-in model].
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// ONNX Runtime intra-op thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed iterations per model and thread count (after 5 warm-up runs).
    #[arg(long, default_value_t = 30)]
    iterations: usize,
    /// Camera frame for detectors [default: footage/images/vn_hwcam_03.jpg under EDGE_AGENT_SHARED].
    #[arg(long)]
    frame: Option<PathBuf>,
    /// Directory of plate crops for OCR models [default: footage/plate_crops under EDGE_AGENT_SHARED].
    #[arg(long)]
    crops: Option<PathBuf>,
    /// OCR batch size (slot OCR is also measured at batch 1).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Model cache directory.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Instead of single models, measure the whole plate reader: images/s on a folder of images
    /// (each plate mode) and crops/s on plate crops, beside the ONNX Runtime time inside them.
    #[arg(long)]
    plates: Option<PathBuf>,
    /// With --plates: parallel plate readers, each with its own sessions and `--threads` ONNX
    /// Runtime threads (the agent's `[runtime] workers`).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// With --plates: images each reader reads together, sharing full-frame detector calls
    /// (`plates --frames-per-call`).
    #[arg(long, default_value_t = 1)]
    frames_per_call: usize,
    /// With --plates: only these OCR readers [default: slot and fused].
    #[arg(long, value_delimiter = ',')]
    readers: Vec<edge_agent::anpr::Readers>,
    /// With --plates: only these plate modes [default: full-frame and both].
    #[arg(long, value_delimiter = ',')]
    modes: Vec<edge_agent::anpr::PlateMode>,
    /// With --plates: the plate OCR model.
    #[arg(long, default_value = edge_agent::anpr::DEFAULT_PLATE_OCR)]
    ocr_model: String,
    /// With --plates: `fused` sends plates whose slot read is under this confidence to the text
    /// recogniser (`[plates] fuse_below`).
    #[arg(long, default_value_t = edge_agent::anpr::DEFAULT_FUSE_BELOW)]
    fuse_below: f32,
    /// With --plates: the second slot OCR (`plates --ocr-second`; `none` for the OCR alone).
    #[arg(long, default_value = edge_agent::anpr::DEFAULT_PLATE_OCR_SECOND)]
    ocr_second: String,
    /// Instead of models, measure event clips on an MP4's H.264 track: the camera ring's memory at
    /// the video's bitrate (default `[clips]`: 5 s before, 5 s after, 16 MiB) and the remux of each
    /// clip, without decoding.
    #[arg(long, value_name = "VIDEO")]
    clips: Option<PathBuf>,
    /// With --clips: ask for a clip every this many seconds of video.
    #[arg(long, default_value_t = 10.0)]
    clip_every: f64,
    /// Agent config whose `[runtime]` (spin_wait, cpu_arena, ONNX Runtime library) the sessions use;
    /// `--threads` still sets the intra-op threads.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn shared_default(rel: &str) -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("EDGE_AGENT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"));
    let p = base.join(rel);
    anyhow::ensure!(
        p.exists(),
        "{} not found: pass --frame/--crops or set EDGE_AGENT_SHARED",
        p.display()
    );
    Ok(p)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.plates {
        return plates(&args, dir);
    }
    if let Some(video) = &args.clips {
        return clips(&args, video);
    }
    let frame_path = match &args.frame {
        Some(p) => p.clone(),
        None => shared_default("footage/images/vn_hwcam_03.jpg")?,
    };
    let crops_dir = match &args.crops {
        Some(p) => p.clone(),
        None => shared_default("footage/plate_crops")?,
    };
    let frame = edge_agent::imageio::read_rgb(&frame_path)?;
    let crops = read_images(&crops_dir, Some(args.batch.max(1)))?;
    let set = ManifestSet::builtin()?;
    let names: Vec<String> = if args.models.is_empty() {
        set.names().iter().map(|s| s.to_string()).collect()
    } else {
        args.models.clone()
    };
    println!(
        "frame {} ({}x{}), {} plate crops from {}",
        frame_path.display(),
        frame.width(),
        frame.height(),
        crops.len(),
        crops_dir.display()
    );
    println!(
        "{:<38} {:>3} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "model", "thr", "batch", "pre ms", "ort ms", "post ms", "total ms", "pre+post"
    );
    for name in &names {
        let manifest = set.require(name)?;
        let is_ocr = matches!(
            manifest.decoder,
            DecoderSpec::SlotOcr { .. } | DecoderSpec::CtcOcr { .. } | DecoderSpec::Dbnet { .. }
        );
        for &threads in &args.threads {
            let mut model =
                load_model(name, args.config.as_ref(), args.cache_dir.as_ref(), threads)?;
            let mut batches: Vec<Vec<(&RgbImage, Option<Rect>)>> = Vec::new();
            if !is_ocr {
                batches.push(vec![(&frame, None)]);
            } else if matches!(manifest.decoder, DecoderSpec::SlotOcr { .. }) {
                batches.push(vec![(&crops[0], None)]);
                batches.push(
                    crops
                        .iter()
                        .take(args.batch.min(manifest.input.max_batch))
                        .map(|c| (c, None))
                        .collect(),
                );
            } else {
                batches.push(vec![(&crops[0], None)]);
            }
            for items in &batches {
                let (mut pre, mut ort, mut post) = (Vec::new(), Vec::new(), Vec::new());
                for i in 0..args.iterations + 5 {
                    model
                        .infer(items)
                        .with_context(|| format!("running {name}"))?;
                    if i >= 5 {
                        let t = model.last_times();
                        pre.push(t.preprocess);
                        ort.push(t.run);
                        post.push(t.postprocess);
                    }
                }
                let (p, o, q) = (median(pre), median(ort), median(post));
                println!(
                    "{:<38} {:>3} {:>5} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7.1}%",
                    name,
                    threads,
                    items.len(),
                    ms(p),
                    ms(o),
                    ms(q),
                    ms(p + o + q),
                    100.0 * (ms(p) + ms(q)) / ms(o)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `.jpg`/`.png` files of a folder in name order; an error when there are none.
fn image_paths(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no images in {}", dir.display());
    Ok(files)
}

/// The images of a folder in name order: all of them, or exactly `n` (repeating the list as needed).
fn read_images(dir: &Path, n: Option<usize>) -> anyhow::Result<Vec<RgbImage>> {
    let files = image_paths(dir)?;
    let n = n.unwrap_or(files.len());
    files
        .iter()
        .cycle()
        .take(n)
        .map(|p| Ok(edge_agent::imageio::read_rgb(p)?))
        .collect()
}

/// The image files of a folder in name order, as bytes (decoding is part of what is measured).
fn read_files(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    image_paths(dir)?
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

/// What one timed pass of every worker over its share of the inputs measured.
#[derive(Default)]
struct Pass {
    items: usize,
    wall: Duration,
    /// Summed over workers.
    jpeg: Duration,
    ort: Duration,
    cpu: Option<Duration>,
    recognized: u64,
    plates: u64,
}

impl Pass {
    fn line(&self, what: &str, unit: &str, workers: usize) -> String {
        let n = self.items as f64;
        // Per item of wall time on `workers` lanes: the share of the lanes' time spent in ORT.
        let lanes = self.wall.as_secs_f64() * workers as f64;
        let cpu = self
            .cpu
            .map(|c| format!(", CPU {:.2} ms/{unit}", ms(c) / n))
            .unwrap_or_default();
        let jpeg = if self.jpeg.is_zero() {
            String::new()
        } else {
            format!(" (JPEG decode {:.2})", ms(self.jpeg) / n)
        };
        format!(
            "{what}: {:.1} {unit}s/s, {:.3} ms/{unit} per worker{jpeg}, ONNX Runtime {:.3} ms/{unit} per worker ({:.0}% of the time){cpu}",
            n / self.wall.as_secs_f64(),
            lanes * 1e3 / n,
            ms(self.ort) / n,
            100.0 * self.ort.as_secs_f64() / lanes,
        )
    }
}

/// One worker's share of a timed pass: (items done, JPEG decode time).
type Work<'a> = dyn Fn(&mut edge_agent::anpr::PlateReader, usize) -> anyhow::Result<(usize, Duration)>
    + Sync
    + 'a;

/// Runs `work(reader, worker)` on `workers` threads, each with its own reader built by `build`,
/// all starting together after `warm_up`; returns the pass with the summed timings.
fn timed_pass(
    workers: usize,
    build: &(dyn Fn() -> anyhow::Result<edge_agent::anpr::PlateReader> + Sync),
    warm_up: &(dyn Fn(&mut edge_agent::anpr::PlateReader) -> anyhow::Result<()> + Sync),
    work: &Work,
) -> anyhow::Result<Pass> {
    let start = std::sync::Barrier::new(workers + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let start = &start;
                scope.spawn(move || {
                    let prepared = build().and_then(|mut r| {
                        warm_up(&mut r)?;
                        r.take_model_time();
                        r.take_counts();
                        Ok(r)
                    });
                    // Every worker reaches the barrier, failed or not, so none waits forever.
                    start.wait();
                    let mut reader = prepared?;
                    let (items, jpeg) = work(&mut reader, w)?;
                    let counts = reader.take_counts();
                    Ok::<_, anyhow::Error>((items, jpeg, reader.take_model_time(), counts))
                })
            })
            .collect();
        start.wait();
        let (t, cpu0) = (std::time::Instant::now(), resources::process_cpu());
        let mut pass = Pass::default();
        for h in handles {
            let (items, jpeg, ort, counts) = h
                .join()
                .map_err(|_| anyhow::anyhow!("a bench worker panicked"))??;
            pass.items += items;
            pass.jpeg += jpeg;
            pass.ort += ort;
            pass.recognized += counts.recognized;
            pass.plates += counts.plates;
        }
        pass.wall = t.elapsed();
        pass.cpu = resources::process_cpu()
            .zip(cpu0)
            .map(|(b, a)| b.saturating_sub(a));
        Ok(pass)
    })
}

fn plates(args: &Args, images_dir: &Path) -> anyhow::Result<ExitCode> {
    use edge_agent::anpr::{PlateMode, PlateReader, ReaderOptions, Readers};
    use edge_agent::imageio::decode_rgb;
    let images = read_files(images_dir)?;
    let crops_dir = match &args.crops {
        Some(p) => p.clone(),
        None => shared_default("footage/plate_crops")?,
    };
    let crops = read_images(&crops_dir, None)?;
    let threads = args.threads.last().copied().unwrap_or(2);
    let workers = args.workers.max(1);
    println!(
        "{} images from {} (JPEG decode included), {} crops; {workers} worker(s) × {threads} ONNX Runtime threads, {} image(s) per reader call",
        images.len(),
        images_dir.display(),
        crops.len(),
        args.frames_per_call.max(1)
    );
    let decode = |b: &[u8]| decode_rgb(b).map_err(|e| anyhow::anyhow!("decoding an image: {e}"));
    let readers_list = if args.readers.is_empty() {
        vec![Readers::Slot, Readers::Fused]
    } else {
        args.readers.clone()
    };
    let modes = if args.modes.is_empty() {
        vec![PlateMode::FullFrame, PlateMode::Both]
    } else {
        args.modes.clone()
    };
    let rounds = args.iterations.max(1).div_ceil(images.len()).max(3);
    for &readers in &readers_list {
        for &mode in &modes {
            let build = || -> anyhow::Result<PlateReader> {
                let load = |name: &str| {
                    load_model(name, args.config.as_ref(), args.cache_dir.as_ref(), threads)
                };
                let vehicles = (mode != PlateMode::FullFrame)
                    .then(|| load("yolox_nano_coco_416"))
                    .transpose()?;
                let opts = ReaderOptions {
                    mode,
                    readers,
                    frames_per_call: args.frames_per_call.max(1),
                    fuse_below: args.fuse_below,
                    ..ReaderOptions::default()
                };
                let reader = PlateReader::new(
                    load("vn_plate_det_yolo26n_640_e2e")?,
                    load(&args.ocr_model)?,
                    vehicles,
                    opts,
                )?;
                let reader = match super::plates::second_ocr(&args.ocr_second, &args.ocr_model) {
                    Some(second) => reader.with_second_ocr(load(second)?)?,
                    None => reader,
                };
                Ok(if readers != Readers::Slot {
                    reader.with_recognizer(load("ppocrv4_rec")?)?
                } else {
                    reader
                })
            };
            // Image i goes to worker i % workers, every round.
            let pass = timed_pass(
                workers,
                &build,
                &|r| {
                    for b in &images {
                        r.read_frame(&decode(b)?)?;
                    }
                    Ok(())
                },
                &|r, w| {
                    let (mut n, mut jpeg) = (0, Duration::ZERO);
                    let mine: Vec<&Vec<u8>> = images.iter().skip(w).step_by(workers).collect();
                    for _ in 0..rounds {
                        for group in mine.chunks(args.frames_per_call.max(1)) {
                            let t0 = std::time::Instant::now();
                            let imgs = group
                                .iter()
                                .map(|b| decode(b))
                                .collect::<Result<Vec<_>, _>>()?;
                            jpeg += t0.elapsed();
                            r.read_frames(&imgs.iter().collect::<Vec<_>>())?;
                            n += group.len();
                        }
                    }
                    Ok((n, jpeg))
                },
            )?;
            println!(
                "{}",
                pass.line(&format!("images {readers:?} {mode:?}"), "image", workers)
            );
            if mode == PlateMode::FullFrame {
                // Crop j goes to worker j % workers, read in one batched call per round.
                let share = |w: usize| -> Vec<&RgbImage> {
                    crops.iter().skip(w).step_by(workers).collect()
                };
                let pass = timed_pass(
                    workers,
                    &build,
                    &|r| {
                        r.read_crops(&crops.iter().collect::<Vec<_>>())
                            .map(drop)
                            .map_err(Into::into)
                    },
                    &|r, w| {
                        let mine = share(w);
                        for _ in 0..rounds {
                            r.read_crops(&mine)?;
                        }
                        Ok((rounds * mine.len(), Duration::ZERO))
                    },
                )?;
                println!(
                    "{}, text recogniser on {}/{} crops",
                    pass.line(&format!("crops {readers:?} (batched)"), "crop", workers),
                    pass.recognized,
                    pass.plates
                );
            }
        }
    }
    if let Some(kb) = resources::peak_rss_kb() {
        println!("peak RSS of this run: {:.1} MB", kb as f64 / 1024.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench --clips VIDEO`: the event-clip ring and remux on a file's H.264 track, without
/// decoding: the memory a camera's ring holds at the stream's bitrate and what cutting a clip
/// costs. A clip is asked for every `--clip-every` seconds of the video.
fn clips(args: &Args, video: &Path) -> anyhow::Result<ExitCode> {
    use edge_agent::clips::{ClipsConfig, EncodedTap, LengthPrefixed, VideoCodec};
    use edge_agent::source::EncodedSink;
    let file =
        std::fs::File::open(video).with_context(|| format!("opening {}", video.display()))?;
    let size = file.metadata()?.len();
    let mut reader = mp4::Mp4Reader::read_header(std::io::BufReader::new(file), size)
        .with_context(|| format!("{}: not an MP4 file", video.display()))?;
    let track = reader
        .tracks()
        .values()
        .find(|t| matches!(t.media_type(), Ok(mp4::MediaType::H264)))
        .with_context(|| format!("{}: no H.264 track", video.display()))?;
    let (track_id, timescale, samples) = (
        track.track_id(),
        u64::from(track.timescale().max(1)),
        track.sample_count(),
    );
    let dims = (u32::from(track.width()), u32::from(track.height()));
    let units =
        LengthPrefixed::of_h264_track(track).context("the H.264 track has no avc1 sample entry")?;
    let config = ClipsConfig::default();
    let ring_limit = usize::try_from(config.ring_mb << 20).unwrap_or(usize::MAX);
    let tap = EncodedTap::new(ring_limit, config.pre(), config.post());
    let every = Duration::from_secs_f64(args.clip_every.max(0.1));
    let (mut next_request, mut bytes, mut last) = (every, 0u64, Duration::ZERO);
    let (mut peak, mut remux, mut sizes, mut lengths) = (
        edge_agent::clips::RingStats::default(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let event = edge_agent::events::examples::example(edge_agent::events::EventKind::WrongWay);
    let mut cut_ready = |tap: &EncodedTap| -> anyhow::Result<()> {
        for cut in tap.take_ready() {
            let started = Instant::now();
            let mp4 = edge_agent::clips::remux(&cut.units, dims)?;
            remux.push(started.elapsed());
            sizes.push(mp4.len() as f64);
            if let (Some(a), Some(b)) = (cut.units.first(), cut.units.last()) {
                lengths.push(b.stream_time.saturating_sub(a.stream_time).as_secs_f64());
            }
        }
        Ok(())
    };
    for id in 1..=samples {
        let Some(sample) = reader.read_sample(track_id, id)? else {
            break;
        };
        let annexb = units.to_annexb(&sample.bytes, sample.is_sync)?;
        let pts = u64::try_from(sample.start_time as i64 + i64::from(sample.rendering_offset))
            .unwrap_or(0);
        let t = Duration::from_nanos(pts * 1_000_000_000 / timescale);
        tap.push(
            t,
            std::time::SystemTime::now(),
            VideoCodec::H264,
            &annexb,
            dims,
        );
        bytes += annexb.len() as u64;
        last = last.max(t);
        let s = tap.stats();
        if s.bytes > peak.bytes {
            peak = s;
        }
        if t >= next_request {
            tap.request(event.clone(), t);
            next_request += every;
        }
        cut_ready(&tap)?;
    }
    tap.finish();
    cut_ready(&tap)?;
    let secs = last.as_secs_f64().max(1e-3);
    println!(
        "{}: H.264 {}x{}, {samples} pictures in {secs:.1} s, {:.2} Mbit/s",
        video.display(),
        dims.0,
        dims.1,
        bytes as f64 * 8.0 / secs / 1e6
    );
    println!(
        "ring (pre_s {} s, post_s {} s, ring_mb {}): peak {:.1} MiB in {} access units",
        config.pre_s,
        config.post_s,
        config.ring_mb,
        peak.bytes as f64 / f64::from(1 << 20),
        peak.units
    );
    anyhow::ensure!(
        !remux.is_empty(),
        "the video is too short for a clip (--clip-every)"
    );
    let n = remux.len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{n} clips of {:.1} s on average, {:.2} MB each; remux median {:.1} ms, max {:.1} ms",
        mean(&lengths),
        mean(&sizes) / 1e6,
        ms(median(remux.clone())),
        ms(remux.iter().copied().max().unwrap_or_default())
    );
    Ok(ExitCode::SUCCESS)
}
