//! Inference: manifest-driven preprocessing, ONNX Runtime sessions, and decoders for every model
//! family (yolox, yolo_end2end, ultralytics, slot_ocr, ctc_ocr, dbnet).

pub mod decode;
pub mod fit;
mod model;
pub mod preprocess;
pub mod resize;
mod session;
#[cfg(feature = "tract")]
mod tract;

use std::path::PathBuf;

pub use image::RgbImage;
pub use model::{Model, ModelOutput, StageTimes};
pub use preprocess::{Geometry, InputBatch, Preprocessor, TensorData};
pub use session::create_session;

/// A pixel rectangle inside an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The whole of `img`.
    pub fn whole(img: &RgbImage) -> Rect {
        Rect {
            x: 0,
            y: 0,
            w: img.width(),
            h: img.height(),
        }
    }

    /// Whether the point lies inside (start inclusive, end exclusive).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x as f32
            && y >= self.y as f32
            && x < (self.x + self.w) as f32
            && y < (self.y + self.h) as f32
    }

    /// The integer rectangle covering `[x1, y1, x2, y2]` (floor of the start, ceil of the end),
    /// clipped to a `width × height` image; `None` when nothing is left.
    pub fn covering(b: [f32; 4], width: u32, height: u32) -> Option<Rect> {
        let x0 = b[0].max(0.0).floor() as u32;
        let y0 = b[1].max(0.0).floor() as u32;
        let x1 = (b[2].ceil().max(0.0) as u32).min(width);
        let y1 = (b[3].ceil().max(0.0) as u32).min(height);
        (x1 > x0 && y1 > y0).then(|| Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }
}

/// One detected object, box in source-image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub class_id: usize,
    pub score: f32,
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
}

/// Inference failures.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("ONNX Runtime is not initialised; call runtime::init first")]
    RuntimeNotInitialised,
    #[error(
        "execution provider `{provider}` failed to register: {message}. edge-agent does not fall back to the CPU silently; fix the provider (drivers, the onnxruntime-gpu build) or set runtime.execution_provider = \"cpu\""
    )]
    Provider {
        provider: &'static str,
        message: String,
    },
    #[error("model {model}: {message}")]
    Session { model: PathBuf, message: String },
    #[error("model `{model}`: inference failed: {message}")]
    Run { model: String, message: String },
    #[error("manifest input spec: {0}")]
    Spec(String),
    #[error("unexpected model output: {0}")]
    Output(String),
    #[error("batch of {got} images; this model takes 1 to {max}")]
    Batch { got: usize, max: usize },
    #[error("region {region:?} is not inside the {width}x{height} image")]
    Region {
        region: Rect,
        width: u32,
        height: u32,
    },
    #[error("resize failed: {0}")]
    Resize(String),
    #[error("model `{model}` is a {kind} model; {wanted} was asked of it")]
    WrongKind {
        model: String,
        kind: &'static str,
        wanted: &'static str,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "runtime.backend = \"tract\" but this binary was built without the `tract` feature; build with `--features tract`"
    )]
    NoTract,
}
