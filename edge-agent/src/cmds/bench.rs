//! `edge-agent bench`: steady-state preprocessing, ONNX Runtime and postprocessing time per model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use edge_agent::inference::{Rect, RgbImage};
use edge_agent::models::{DecoderSpec, ManifestSet};

use super::detect::load_model;

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
            let mut model = load_model(name, None, args.cache_dir.as_ref(), threads)?;
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

/// The images of a folder in name order: all of them, or exactly `n` (repeating the list as needed).
fn read_images(dir: &Path, n: Option<usize>) -> anyhow::Result<Vec<RgbImage>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no images in {}", dir.display());
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
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no images in {}", dir.display());
    files
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
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
    println!(
        "{} images from {} (JPEG decode included), {} crops, {threads} ONNX Runtime threads",
        images.len(),
        images_dir.display(),
        crops.len()
    );
    let decode = |b: &[u8]| decode_rgb(b).map_err(|e| anyhow::anyhow!("decoding an image: {e}"));
    for readers in [Readers::Slot, Readers::Fused] {
        for mode in [PlateMode::FullFrame, PlateMode::Both] {
            let load = |name: &str| load_model(name, None, args.cache_dir.as_ref(), threads);
            let vehicles = (mode != PlateMode::FullFrame)
                .then(|| load("yolox_nano_coco_416"))
                .transpose()?;
            let opts = ReaderOptions {
                mode,
                readers,
                ..ReaderOptions::default()
            };
            let mut reader = PlateReader::new(
                load("vn_plate_det_yolo26n_640_e2e")?,
                load("vn_plate_ocr_9x37_64x128")?,
                vehicles,
                opts,
            )?;
            if readers != Readers::Slot {
                reader = reader.with_recognizer(load("ppocrv4_rec")?)?;
            }
            for b in &images {
                reader.read_frame(&decode(b)?)?; // warm-up
            }
            reader.take_model_time();
            let rounds = args.iterations.max(1).div_ceil(images.len()).max(3);
            let mut jpeg = Duration::ZERO;
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                for b in &images {
                    let t0 = std::time::Instant::now();
                    let img = decode(b)?;
                    jpeg += t0.elapsed();
                    reader.read_frame(&img)?;
                }
            }
            let wall = t.elapsed();
            let ort = reader.take_model_time();
            let n = (rounds * images.len()) as f64;
            println!(
                "images {readers:?} {mode:?}: {:.1} images/s, {:.2} ms/image (JPEG decode {:.2}), ONNX Runtime {:.2} ms/image ({:.0}% of the time)",
                n / wall.as_secs_f64(),
                ms(wall) / n,
                ms(jpeg) / n,
                ms(ort) / n,
                100.0 * ort.as_secs_f64() / wall.as_secs_f64()
            );
            if mode == PlateMode::FullFrame {
                let refs: Vec<&RgbImage> = crops.iter().collect();
                reader.read_crops(&refs)?;
                reader.take_model_time();
                reader.take_counts();
                let t = std::time::Instant::now();
                for _ in 0..rounds {
                    reader.read_crops(&refs)?;
                }
                let wall = t.elapsed();
                let ort = reader.take_model_time();
                let counts = reader.take_counts();
                let n = (rounds * crops.len()) as f64;
                println!(
                    "crops {readers:?} (batched): {:.1} crops/s, {:.3} ms/crop, ONNX Runtime {:.3} ms/crop ({:.0}% of the time), text recogniser on {}/{} crops",
                    n / wall.as_secs_f64(),
                    ms(wall) / n,
                    ms(ort) / n,
                    100.0 * ort.as_secs_f64() / wall.as_secs_f64(),
                    counts.recognized,
                    counts.plates
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
