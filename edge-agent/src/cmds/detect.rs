//! `edge-agent detect --model NAME IMAGE...`: one JSON line per image, boxes in image pixels.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::config::{self, RuntimeConfig};
use edge_agent::inference::{Detection, Model, ModelOutput, RgbImage};
use edge_agent::models::{ManifestSet, ModelStore};
use edge_agent::runtime;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model manifest name (see `edge-agent models list`).
    #[arg(long, short)]
    model: String,
    /// Images to run on (JPEG or PNG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Write a PNG with the boxes drawn for each image into this directory.
    #[arg(long)]
    annotate: Option<PathBuf>,
    /// Override the manifest's score threshold.
    #[arg(long)]
    threshold: Option<f32>,
    /// Take runtime and model settings from this config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Model cache directory [default: env EDGE_AGENT_MODEL_CACHE, else /var/lib/edge-agent/models].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Loads a model by name the way every one-shot command does (config, cache dir, runtime).
pub fn load_model(
    name: &str,
    config: Option<&PathBuf>,
    cache_dir: Option<&PathBuf>,
    threads: usize,
) -> anyhow::Result<Model> {
    let (mut rt, mut cache, mut manifest_dir) = (RuntimeConfig::default(), None, None);
    if let Some(path) = config {
        let loaded =
            config::load_file(path).with_context(|| format!("loading {}", path.display()))?;
        rt = loaded.config.runtime.clone();
        rt.onnxruntime = rt.onnxruntime.map(|p| loaded.resolve_path(&p));
        cache = loaded
            .config
            .models
            .cache_dir
            .as_ref()
            .map(|d| loaded.resolve_path(d));
        manifest_dir = loaded
            .config
            .models
            .manifest_dir
            .as_ref()
            .map(|d| loaded.resolve_path(d));
    }
    if config.is_none() || threads > 0 {
        rt.intra_threads = threads;
    }
    // tract needs no ONNX Runtime library (armv7 devices have none).
    if rt.backend == config::InferenceBackend::Onnxruntime {
        let lib = runtime::init_with(rt.onnxruntime.as_deref(), runtime::SharedThreads::of(&rt))
            .context("starting ONNX Runtime")?;
        tracing::debug!(version = %lib.version, path = %lib.path.display(), "ONNX Runtime loaded");
    }
    let set = ManifestSet::load(manifest_dir.as_deref())?;
    let manifest = set.require(name)?;
    let store = ModelStore::new(ModelStore::default_dir(
        cache_dir.or(cache.as_ref()).map(PathBuf::as_path),
    ));
    Model::load(manifest, &store, &rt).with_context(|| format!("loading model `{name}`"))
}

fn round(v: f32, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v as f64 * k).round() / k
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut model = load_model(
        &args.model,
        args.config.as_ref(),
        args.cache_dir.as_ref(),
        args.threads,
    )?;
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    super::output::for_each_input(&args.images, |path| {
        let img = edge_agent::imageio::read_rgb(path)?;
        let dets: Vec<Detection> = match model.infer(&[(&img, None)])? {
            ModelOutput::Detections(mut d) => d.pop().unwrap_or_default(),
            ModelOutput::TextBoxes(mut b) => b
                .pop()
                .unwrap_or_default()
                .into_iter()
                .map(|bbox| Detection {
                    class_id: 0,
                    score: 1.0,
                    bbox,
                })
                .collect(),
            _ => anyhow::bail!(
                "`{}` is a {} model, not a detector; use `edge-agent plates` for OCR",
                args.model,
                model.manifest().decoder.kind()
            ),
        };
        let dets: Vec<Detection> = dets
            .into_iter()
            .filter(|d| args.threshold.is_none_or(|t| d.score > t))
            .collect();
        let json_dets: Vec<_> = dets
                .iter()
                .map(|d| json!({"label": &*model.label(d.class_id), "score": round(d.score, 4), "box": d.bbox.map(|v| round(v, 1))}))
                .collect();
        super::output::line(json!({"file": path, "detections": json_dets}))?;
        if let Some(dir) = &args.annotate {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
            let out = dir.join(format!("{stem}.png"));
            let mut canvas = img;
            for d in &dets {
                draw_box(&mut canvas, d.bbox, palette(d.class_id));
            }
            canvas
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        Ok(())
    })
}

fn palette(class_id: usize) -> [u8; 3] {
    const COLOURS: [[u8; 3]; 6] = [
        [255, 56, 56],
        [72, 249, 10],
        [0, 194, 255],
        [255, 178, 29],
        [207, 210, 49],
        [146, 204, 23],
    ];
    COLOURS[class_id % COLOURS.len()]
}

/// Draws a 2-pixel rectangle outline, clipped to the image.
pub fn draw_box(img: &mut RgbImage, b: [f32; 4], colour: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0, x1, y1) = (b[0] as i64, b[1] as i64, b[2] as i64, b[3] as i64);
    let mut put = |x: i64, y: i64| {
        if x >= 0 && y >= 0 && x < w && y < h {
            img.put_pixel(x as u32, y as u32, image::Rgb(colour));
        }
    };
    for t in 0..2 {
        for x in x0..=x1 {
            put(x, y0 + t);
            put(x, y1 - t);
        }
        for y in y0..=y1 {
            put(x0 + t, y);
            put(x1 - t, y);
        }
    }
}
