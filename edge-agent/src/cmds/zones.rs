//! `edge-agent zones --config FILE --camera ID --out PNG [--frame IMAGE]`: draws a camera's zones,
//! lines, lane directions and calibration points on one of its frames, so an integrator can check
//! a config by eye before it goes to the pole.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use edge_agent::config::{
    self, CameraConfig, ConfigError, LoadedConfig, Severity, ValidateOptions,
};
use edge_agent::imageio;
use edge_agent::rules::draw;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file holding the camera.
    #[arg(long)]
    config: PathBuf,
    /// Camera id in that config.
    #[arg(long)]
    camera: String,
    /// PNG file to write.
    #[arg(long)]
    out: PathBuf,
    /// Image to draw on. Default: the first decodable image of the camera's source when it is an
    /// image file or an image folder (video files and streams need this option for now).
    #[arg(long)]
    frame: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match config::load_file(&args.config) {
        Ok(l) => l,
        Err(ConfigError::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{d}");
            }
            bail!(
                "{} does not parse; fix the errors above first",
                args.config.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    // Draw even when rules are wrong: seeing a crossed polygon is the quickest way to fix it.
    let opts = ValidateOptions {
        skip_model_hashes: true,
        no_local_files: false,
    };
    let problems: Vec<_> = config::validate(&loaded, &opts)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    for d in &problems {
        eprintln!("{d}");
    }
    let cam = loaded
        .config
        .cameras
        .iter()
        .find(|c| c.id == args.camera)
        .with_context(|| {
            let ids: Vec<&str> = loaded
                .config
                .cameras
                .iter()
                .map(|c| c.id.as_str())
                .collect();
            format!(
                "no camera `{}` in {} (cameras: {})",
                args.camera,
                args.config.display(),
                ids.join(", ")
            )
        })?;
    let mut img = match &args.frame {
        Some(p) => {
            imageio::read_rgb(p).with_context(|| format!("reading --frame {}", p.display()))?
        }
        None => first_frame(&loaded, cam)?,
    };
    if let Some([w, h]) = cam.frame_size
        && (w, h) != img.dimensions()
    {
        eprintln!(
            "warning: the frame is {}x{} but camera `{}` has frame_size = [{w}, {h}]; zones are in frame_size pixels",
            img.width(),
            img.height(),
            cam.id
        );
    }
    let legend = draw::render(&mut img, &cam.geometry());
    img.save_with_format(&args.out, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: camera `{}` ({}x{})",
        args.out.display(),
        cam.id,
        img.width(),
        img.height()
    );
    for e in &legend {
        let rules = if e.rules.is_empty() {
            "no rule".to_string()
        } else {
            e.rules.join(", ")
        };
        println!("  {:<11} {:<20} {:<13} {rules}", e.what, e.id, e.colour);
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The first decodable frame of a camera whose source is an image file or an image folder.
/// Video files and streams need a decoder: the hook for the video sources' first-frame grab.
fn first_frame(loaded: &LoadedConfig, cam: &CameraConfig) -> anyhow::Result<image::RgbImage> {
    let raw = cam.url.strip_prefix("file://").unwrap_or(&cam.url);
    if raw.contains("://") {
        bail!(
            "camera `{}` is a stream; pass --frame IMAGE with a snapshot from it",
            cam.id
        );
    }
    let path = loaded.resolve_path(Path::new(raw));
    let is_image = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .with_context(|| format!("listing camera `{}` folder {}", cam.id, path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_image(p))
            .collect();
        files.sort();
        for f in &files {
            match imageio::read_rgb(f) {
                Ok(img) => return Ok(img),
                Err(e) => tracing::warn!("skipping {e}"),
            }
        }
        bail!(
            "camera `{}` folder {} has no decodable JPEG/PNG; pass --frame IMAGE",
            cam.id,
            path.display()
        );
    }
    if is_image(&path) {
        return imageio::read_rgb(&path).with_context(|| format!("camera `{}` source", cam.id));
    }
    bail!(
        "camera `{}` source {} is a video; pass --frame IMAGE (a still from the same camera)",
        cam.id,
        path.display()
    )
}
