//! Evidence JPEGs: the frame (downscaled, so a 4G link can carry it) and the object (the plate crop
//! for plate events), each named by its sha256 so a consumer can verify what it received.
//!
//! Encoding uses `jpeg-encoder` with SIMD (about 4x faster than the `image` crate's encoder, see
//! stack-facts §7) and `fast_image_resize` for downscaling.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::EvidenceRole;

/// `[evidence]`: the JPEGs attached to events (this module owns the section and its checks).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Frames wider than this are downscaled before encoding (0 = full size). Default 1280.
    #[serde(default = "default_frame_max_width")]
    pub frame_max_width: u32,
    /// JPEG quality 1..=100. Default 80.
    #[serde(default = "default_jpeg_quality")]
    pub jpeg_quality: u8,
    /// Margin around the object crop, as a fraction of the box size on each side. Default 0.15.
    #[serde(default = "default_crop_padding")]
    pub crop_padding: f32,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            frame_max_width: default_frame_max_width(),
            jpeg_quality: default_jpeg_quality(),
            crop_padding: default_crop_padding(),
        }
    }
}

fn default_frame_max_width() -> u32 {
    1280
}
fn default_jpeg_quality() -> u8 {
    80
}
fn default_crop_padding() -> f32 {
    0.15
}

impl EvidenceConfig {
    /// Values the encoder cannot work with.
    pub fn check(&self) -> Vec<crate::checks::SectionProblem> {
        use crate::checks::SectionProblem;
        let mut out: Vec<SectionProblem> = [
            SectionProblem::out_of_range(
                "jpeg_quality",
                self.jpeg_quality,
                1,
                100,
                "75-85 keeps plates legible at a fraction of the size",
            ),
            SectionProblem::out_of_range(
                "crop_padding",
                self.crop_padding,
                0.0,
                2.0,
                "0.15 adds 15% of the box on each side",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.frame_max_width != 0 && self.frame_max_width < 64 {
            out.push(SectionProblem::error(
                "frame_max_width",
                format!(
                    "frame_max_width = {} is too small to show anything",
                    self.frame_max_width
                ),
                "use 0 (full size) or at least 320",
            ));
        }
        out
    }
}

/// The event's evidence references for the files submitted with it: one per image (or clip
/// piece), after the event's clips and the images kept on the device (neither travels as one
/// submitted file).
pub fn evidence_refs(
    current: &[super::EvidenceRef],
    images: &[EvidenceImage],
    topics: &super::Topics,
) -> Vec<super::EvidenceRef> {
    let held = current
        .iter()
        .filter(|r| {
            (r.role == EvidenceRole::Clip || r.on_request)
                && !images.iter().any(|im| im.sha256 == r.sha256)
        })
        .cloned();
    let sent = images.iter().map(|im| super::EvidenceRef {
        role: im.role,
        sha256: im.sha256.clone(),
        topic: topics.evidence(&im.sha256),
        width: im.width,
        height: im.height,
        bytes: im.jpeg.len() as u64,
        clip: current
            .iter()
            .find(|r| r.sha256 == im.sha256)
            .and_then(|r| r.clip.clone()),
        on_request: false,
    });
    held.chain(sent).collect()
}

/// An encoded evidence image, ready to submit with its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceImage {
    pub role: EvidenceRole,
    pub jpeg: Vec<u8>,
    /// Lowercase hex sha256 of `jpeg`.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
}

impl EvidenceImage {
    /// Wraps already-encoded JPEG bytes (e.g. a camera snapshot), computing the hash.
    pub fn from_jpeg(role: EvidenceRole, jpeg: Vec<u8>, width: u32, height: u32) -> Self {
        let sha256 = sha256_hex(&jpeg);
        Self {
            role,
            jpeg,
            sha256,
            width,
            height,
        }
    }
}

/// Why an evidence image could not be made; always a caller bug or a corrupt frame.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("RGB buffer of {len} bytes is too small for {width}x{height}")]
    BufferSize { len: usize, width: u32, height: u32 },
    #[error("image size {width}x{height} cannot be encoded (JPEG allows 1..=65535 per side)")]
    Size { width: u32, height: u32 },
    #[error("box {bbox:?} does not overlap the {width}x{height} frame")]
    BoxOutside {
        bbox: [f32; 4],
        width: u32,
        height: u32,
    },
    #[error("JPEG quality {0} is outside 1..=100")]
    Quality(u8),
    #[error("resizing evidence: {0}")]
    Resize(String),
    #[error("encoding evidence JPEG: {0}")]
    Encode(String),
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<(), EvidenceError> {
    if width == 0 || height == 0 || width > 65535 || height > 65535 {
        return Err(EvidenceError::Size { width, height });
    }
    if rgb.len() < width as usize * height as usize * 3 {
        return Err(EvidenceError::BufferSize {
            len: rgb.len(),
            width,
            height,
        });
    }
    if !(1..=100).contains(&quality) {
        return Err(EvidenceError::Quality(quality));
    }
    Ok(())
}

/// Encodes the whole frame, downscaled to at most `max_width` pixels wide (0 = full size).
pub fn encode_frame(
    rgb: &[u8],
    width: u32,
    height: u32,
    max_width: u32,
    quality: u8,
) -> Result<EvidenceImage, EvidenceError> {
    check(rgb, width, height, quality)?;
    encode_scaled(
        EvidenceRole::Frame,
        &rgb[..width as usize * height as usize * 3],
        width,
        height,
        max_width,
        quality,
    )
}

/// Encodes the box `[x1, y1, x2, y2]` (frame pixels) grown by `pad_fraction` of its size on each
/// side and clipped to the frame, downscaled to at most `max_width` wide (0 = crop size).
pub fn encode_crop(
    rgb: &[u8],
    width: u32,
    height: u32,
    bbox: [f32; 4],
    pad_fraction: f32,
    max_width: u32,
    quality: u8,
) -> Result<EvidenceImage, EvidenceError> {
    check(rgb, width, height, quality)?;
    let [x1, y1, x2, y2] = bbox;
    let pad = pad_fraction.max(0.0);
    let (pw, ph) = ((x2 - x1).max(0.0) * pad, (y2 - y1).max(0.0) * pad);
    let cx1 = (x1 - pw).floor().clamp(0.0, width as f32) as u32;
    let cy1 = (y1 - ph).floor().clamp(0.0, height as f32) as u32;
    let cx2 = (x2 + pw).ceil().clamp(0.0, width as f32) as u32;
    let cy2 = (y2 + ph).ceil().clamp(0.0, height as f32) as u32;
    if !(x1.is_finite() && y1.is_finite() && x2.is_finite() && y2.is_finite())
        || cx2 <= cx1
        || cy2 <= cy1
    {
        return Err(EvidenceError::BoxOutside {
            bbox,
            width,
            height,
        });
    }
    let (cw, ch) = (cx2 - cx1, cy2 - cy1);
    let mut crop = Vec::with_capacity(cw as usize * ch as usize * 3);
    let stride = width as usize * 3;
    for y in cy1..cy2 {
        let row = y as usize * stride;
        crop.extend_from_slice(&rgb[row + cx1 as usize * 3..row + cx2 as usize * 3]);
    }
    encode_scaled(EvidenceRole::Object, &crop, cw, ch, max_width, quality)
}

fn encode_scaled(
    role: EvidenceRole,
    rgb: &[u8],
    width: u32,
    height: u32,
    max_width: u32,
    quality: u8,
) -> Result<EvidenceImage, EvidenceError> {
    if max_width == 0 || width <= max_width {
        return encode(role, rgb, width, height, quality);
    }
    let dw = max_width;
    let dh = ((u64::from(height) * u64::from(dw) + u64::from(width) / 2) / u64::from(width)).max(1)
        as u32;
    let src = ImageRef::new(width, height, rgb, PixelType::U8x3)
        .map_err(|e| EvidenceError::Resize(e.to_string()))?;
    let mut dst = Image::new(dw, dh, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| EvidenceError::Resize(e.to_string()))?;
    encode(role, dst.buffer(), dw, dh, quality)
}

fn encode(
    role: EvidenceRole,
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<EvidenceImage, EvidenceError> {
    let mut jpeg = Vec::with_capacity(rgb.len() / 8);
    jpeg_encoder::Encoder::new(&mut jpeg, quality)
        .encode(
            rgb,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| EvidenceError::Encode(e.to_string()))?;
    Ok(EvidenceImage::from_jpeg(role, jpeg, width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evidence_section_checks_its_own_keys() {
        assert!(EvidenceConfig::default().check().is_empty());
        let bad = EvidenceConfig {
            jpeg_quality: 0,
            crop_padding: 3.0,
            frame_max_width: 10,
        };
        let keys: Vec<&str> = bad.check().iter().map(|p| p.key).collect();
        assert_eq!(keys, ["jpeg_quality", "crop_padding", "frame_max_width"]);
    }

    /// A real footage frame, decoded; evidence tests use real pictures, not noise.
    fn footage_frame() -> (Vec<u8>, u32, u32) {
        let shared = std::env::var_os("EDGE_AGENT_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
            });
        let dir = shared.join("footage/frames");
        let mut jpgs: Vec<_> = walk(&dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
            .collect();
        jpgs.sort();
        let first = jpgs.first().unwrap_or_else(|| {
            panic!(
                "no .jpg under {}; set EDGE_AGENT_SHARED to the models/footage mirror",
                dir.display()
            )
        });
        let img = image::open(first).unwrap().to_rgb8();
        let (w, h) = img.dimensions();
        (img.into_raw(), w, h)
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.extend(walk(&p));
                } else {
                    out.push(p);
                }
            }
        }
        out
    }

    #[test]
    fn frame_is_downscaled_and_hashed() {
        let (rgb, w, h) = footage_frame();
        let img = encode_frame(&rgb, w, h, 320, 75).unwrap();
        assert_eq!(img.width, 320.min(w));
        assert_eq!(img.role, EvidenceRole::Frame);
        assert_eq!(img.sha256, sha256_hex(&img.jpeg));
        let back = image::load_from_memory(&img.jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (img.width, img.height));
        let expected_h = (u64::from(h) * u64::from(img.width) + u64::from(w) / 2) / u64::from(w);
        assert_eq!(u64::from(img.height), expected_h.max(1));
    }

    #[test]
    fn crop_is_padded_and_clipped_to_the_frame() {
        let (rgb, w, h) = footage_frame();
        let img = encode_crop(&rgb, w, h, [-10.0, 10.0, 90.0, 60.0], 0.1, 0, 90).unwrap();
        // x: -10-10 clipped to 0, 90+10 = 100; y: 10-5 = 5, 60+5 = 65.
        assert_eq!((img.width, img.height), (100, 60));
        assert_eq!(img.role, EvidenceRole::Object);
        let back = image::load_from_memory(&img.jpeg).unwrap().to_rgb8();
        // The crop's top-left pixel is the frame's (0, 5), give or take JPEG loss.
        let frame_px = &rgb[(5 * w as usize) * 3..(5 * w as usize) * 3 + 3];
        let crop_px = back.get_pixel(0, 0).0;
        for c in 0..3 {
            assert!((i32::from(frame_px[c]) - i32::from(crop_px[c])).abs() < 40);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            encode_frame(&[0; 10], 4, 4, 0, 75),
            Err(EvidenceError::BufferSize { .. })
        ));
        assert!(matches!(
            encode_frame(&[0; 48], 4, 4, 0, 0),
            Err(EvidenceError::Quality(0))
        ));
        assert!(matches!(
            encode_crop(&[0; 48], 4, 4, [10.0, 10.0, 20.0, 20.0], 0.0, 0, 75),
            Err(EvidenceError::BoxOutside { .. })
        ));
    }
}
