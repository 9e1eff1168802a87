//! Image → input tensor, driven by the manifest's [`InputSpec`].
//!
//! One pass per image: an OpenCV-exact bilinear resize of the region of interest (see [`super::resize`]:
//! outputs then equal the reference pipeline's), then a single loop that
//! converts layout, colour order and normalisation (through a per-channel lookup table) while
//! writing into the reused tensor buffer. The [`Geometry`] maps model coordinates back to the image.

use super::resize::LinearResizer;
use super::{InferenceError, Rect, RgbImage};
use crate::models::{ColorOrder, InputSpec, Layout, ResizeMode, TensorType};

/// How model-input coordinates relate to the source image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Input pixels per source pixel, horizontally and vertically.
    pub scale_x: f32,
    pub scale_y: f32,
    /// Where the resized image starts inside the input tensor.
    pub pad_x: f32,
    pub pad_y: f32,
    /// The region of the source image that was fed (crop origin and size).
    pub region: Rect,
    /// Size of the resized image inside the tensor.
    pub resized_w: u32,
    pub resized_h: u32,
}

impl Geometry {
    /// Maps an `[x1, y1, x2, y2]` box from input pixels to source-image pixels, clipped to the region.
    pub fn to_source(&self, b: [f32; 4]) -> [f32; 4] {
        let r = &self.region;
        let (x0, y0, x1, y1) = (
            r.x as f32,
            r.y as f32,
            (r.x + r.w) as f32,
            (r.y + r.h) as f32,
        );
        [
            ((b[0] - self.pad_x) / self.scale_x + x0).clamp(x0, x1),
            ((b[1] - self.pad_y) / self.scale_y + y0).clamp(y0, y1),
            ((b[2] - self.pad_x) / self.scale_x + x0).clamp(x0, x1),
            ((b[3] - self.pad_y) / self.scale_y + y0).clamp(y0, y1),
        ]
    }
}

/// Tensor element storage.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

/// A prepared input batch: data in the model's layout, the shape, and one geometry per image.
#[derive(Debug, Clone)]
pub struct InputBatch {
    pub shape: [usize; 4],
    pub data: TensorData,
    pub geometries: Vec<Geometry>,
}

impl InputBatch {
    fn new(dtype: TensorType) -> Self {
        let data = match dtype {
            TensorType::F32 => TensorData::F32(Vec::new()),
            TensorType::U8 => TensorData::U8(Vec::new()),
        };
        Self {
            shape: [0; 4],
            data,
            geometries: Vec::new(),
        }
    }
}

/// Size decisions for one image.
#[derive(Debug, Clone, Copy)]
struct Plan {
    resized_w: u32,
    resized_h: u32,
    tensor_w: u32,
    tensor_h: u32,
    pad_x: u32,
    pad_y: u32,
    scale_x: f32,
    scale_y: f32,
}

/// Turns images into tensors for one model; keeps its buffers between calls.
pub struct Preprocessor {
    spec: InputSpec,
    resizer: LinearResizer,
    /// `lut[c][v]` = normalised value of pixel value `v` for tensor channel `c`.
    lut: [[f32; 256]; 3],
    pad_norm: [f32; 3],
    batch: InputBatch,
    /// `fixed_height`: the caller's (minimum width, width multiple) replacing the manifest's
    /// `min_width` (see [`Preprocessor::set_fixed_height_width`]).
    width_rule: Option<(u32, u32)>,
}

impl Preprocessor {
    pub fn new(spec: &InputSpec) -> Result<Self, InferenceError> {
        let bad = |m: &str| Err(InferenceError::Spec(format!("input `{}`: {m}", spec.name)));
        let fixed = matches!(
            spec.resize,
            ResizeMode::LetterboxTopLeft | ResizeMode::LetterboxCenter | ResizeMode::Stretch
        );
        if fixed && (spec.width.is_none() || spec.height.is_none()) {
            return bad("this resize mode needs width and height");
        }
        if spec.resize == ResizeMode::FixedHeight && spec.height.is_none() {
            return bad("fixed_height needs height");
        }
        if spec.resize == ResizeMode::MultipleOf && spec.size_multiple.is_none_or(|m| m == 0) {
            return bad("multiple_of needs size_multiple > 0");
        }
        if spec.dtype == TensorType::U8
            && (spec.scale != 1.0 || spec.mean != [0.0; 3] || spec.std != [1.0; 3])
        {
            return bad("u8 inputs cannot be normalised (scale 1, mean 0, std 1)");
        }
        if spec.std.contains(&0.0) {
            return bad("std must not be 0");
        }
        let mut lut = [[0f32; 256]; 3];
        let mut pad_norm = [0f32; 3];
        for c in 0..3 {
            for (v, slot) in lut[c].iter_mut().enumerate() {
                *slot = (v as f32 * spec.scale - spec.mean[c]) / spec.std[c];
            }
            pad_norm[c] = (spec.pad_value * spec.scale - spec.mean[c]) / spec.std[c];
        }
        Ok(Self {
            spec: spec.clone(),
            resizer: LinearResizer::new(),
            lut,
            pad_norm,
            batch: InputBatch::new(spec.dtype),
            width_rule: None,
        })
    }

    /// `fixed_height` only: pad each row's resized width up to a multiple of `multiple` and at
    /// least `min`, instead of the manifest's `min_width`. A reader that knows its rows are short
    /// (plate text rows at ~2.5:1) uses this to skip hundreds of columns of padding; the manifest's
    /// value stays what the reference pipeline (and the golden tests) use.
    pub fn set_fixed_height_width(
        &mut self,
        min: u32,
        multiple: u32,
    ) -> Result<(), InferenceError> {
        if self.spec.resize != ResizeMode::FixedHeight {
            return Err(InferenceError::Spec(format!(
                "input `{}`: a row width rule needs resize = fixed_height",
                self.spec.name
            )));
        }
        self.width_rule = Some((min.max(1), multiple.max(1)));
        Ok(())
    }

    /// Letterbox and stretch modes: the tensor's width and height (a size-free model's canvas for
    /// this call, see [`super::fit`]).
    pub fn set_input_size(&mut self, w: u32, h: u32) -> Result<(), InferenceError> {
        if !matches!(
            self.spec.resize,
            ResizeMode::LetterboxTopLeft | ResizeMode::LetterboxCenter | ResizeMode::Stretch
        ) || w == 0
            || h == 0
        {
            return Err(InferenceError::Spec(format!(
                "input `{}`: a {w}x{h} tensor size needs a letterbox or stretch resize",
                self.spec.name
            )));
        }
        self.spec.width = Some(w);
        self.spec.height = Some(h);
        Ok(())
    }

    /// Sizes computed in f64, as the reference (Python) does: an exact integer product must not
    /// become x.99999 and truncate one pixel short.
    fn plan(&self, w: u32, h: u32) -> Plan {
        let s = &self.spec;
        let (fw, fh) = (s.width.unwrap_or(0), s.height.unwrap_or(0));
        let (wf, hf) = (w as f64, h as f64);
        let fixed = |rw: u32, rh: u32, pad_x: u32, pad_y: u32, sx: f64, sy: f64| Plan {
            resized_w: rw,
            resized_h: rh,
            tensor_w: fw,
            tensor_h: fh,
            pad_x,
            pad_y,
            scale_x: sx as f32,
            scale_y: sy as f32,
        };
        match s.resize {
            ResizeMode::LetterboxTopLeft => {
                let r = (fw as f64 / wf).min(fh as f64 / hf);
                // Truncation, as YOLOX's own preprocessing does.
                let (rw, rh) = (
                    ((wf * r) as u32).clamp(1, fw),
                    ((hf * r) as u32).clamp(1, fh),
                );
                fixed(rw, rh, 0, 0, r, r)
            }
            ResizeMode::LetterboxCenter => {
                let r = (fw as f64 / wf).min(fh as f64 / hf);
                let rw = ((wf * r).round_ties_even() as u32).clamp(1, fw);
                let rh = ((hf * r).round_ties_even() as u32).clamp(1, fh);
                // Ultralytics rounds (d - 0.1) so an odd padding puts the extra pixel at the end.
                let pad_x = ((fw - rw) as f64 / 2.0 - 0.1).round_ties_even().max(0.0) as u32;
                let pad_y = ((fh - rh) as f64 / 2.0 - 0.1).round_ties_even().max(0.0) as u32;
                fixed(rw, rh, pad_x, pad_y, r, r)
            }
            ResizeMode::Stretch => fixed(fw, fh, 0, 0, fw as f64 / wf, fh as f64 / hf),
            ResizeMode::FixedHeight => {
                let rw = ((fh as f64 * wf / hf).ceil() as u32).max(1);
                let tw = match self.width_rule {
                    Some((min, multiple)) => {
                        rw.div_ceil(multiple).saturating_mul(multiple).max(min)
                    }
                    None => rw.max(s.min_width.unwrap_or(0)),
                };
                Plan {
                    tensor_w: tw,
                    ..fixed(rw, fh, 0, 0, rw as f64 / wf, fh as f64 / hf)
                }
            }
            ResizeMode::MultipleOf => {
                let m = s.size_multiple.unwrap_or(32);
                let k = (s.min_short_side.unwrap_or(0) as f64 / wf.min(hf)).max(1.0);
                let round = |v: f64| (((v * k / m as f64).round_ties_even() as u32) * m).max(m);
                let (tw, th) = (round(wf), round(hf));
                Plan {
                    tensor_w: tw,
                    tensor_h: th,
                    ..fixed(tw, th, 0, 0, tw as f64 / wf, th as f64 / hf)
                }
            }
        }
    }

    /// Prepares a batch from image regions (`None` = whole image). All images share one tensor
    /// size: fixed for most models; the widest for `fixed_height`; equal sizes for `multiple_of`.
    pub fn prepare(
        &mut self,
        items: &[(&RgbImage, Option<Rect>)],
    ) -> Result<&InputBatch, InferenceError> {
        if items.is_empty() || items.len() > self.spec.max_batch {
            return Err(InferenceError::Batch {
                got: items.len(),
                max: self.spec.max_batch,
            });
        }
        let mut plans = Vec::with_capacity(items.len());
        for (img, region) in items {
            let r = region.unwrap_or(Rect::whole(img));
            if r.w == 0 || r.h == 0 || r.x + r.w > img.width() || r.y + r.h > img.height() {
                return Err(InferenceError::Region {
                    region: r,
                    width: img.width(),
                    height: img.height(),
                });
            }
            plans.push((r, self.plan(r.w, r.h)));
        }
        let tw = plans.iter().map(|(_, p)| p.tensor_w).max().unwrap_or(0);
        let th = plans[0].1.tensor_h;
        if plans.iter().any(|(_, p)| {
            p.tensor_h != th || (self.spec.resize != ResizeMode::FixedHeight && p.tensor_w != tw)
        }) {
            return Err(InferenceError::Spec(
                "images of different sizes cannot share a batch for this model".into(),
            ));
        }
        let (n, w, h) = (items.len(), tw as usize, th as usize);
        let per_image = 3 * w * h;
        self.batch.shape = match self.spec.layout {
            Layout::Nchw => [n, 3, h, w],
            Layout::Nhwc => [n, h, w, 3],
        };
        self.batch.geometries.clear();
        match &mut self.batch.data {
            TensorData::F32(v) => v.resize(n * per_image, 0.0),
            TensorData::U8(v) => v.resize(n * per_image, 0),
        }
        let swap = self.spec.color == ColorOrder::Bgr;
        for (i, ((img, _), (region, plan))) in items.iter().zip(plans).enumerate() {
            let (px, py, rw, rh) = (
                plan.pad_x as usize,
                plan.pad_y as usize,
                plan.resized_w as usize,
                plan.resized_h as usize,
            );
            match &mut self.batch.data {
                TensorData::F32(v) => {
                    let out = &mut v[i * per_image..(i + 1) * per_image];
                    let plane = w * h;
                    for c in 0..3 {
                        fill_outside(
                            &mut out[c * plane..(c + 1) * plane],
                            w,
                            h,
                            (px, py, rw, rh),
                            self.pad_norm[c],
                        );
                    }
                    let lut = &self.lut;
                    self.resizer.resize_rows(
                        img,
                        region,
                        plan.resized_w,
                        plan.resized_h,
                        |y, row| {
                            let at = (y + py) * w + px;
                            for c in 0..3 {
                                let src_c = if swap { 2 - c } else { c };
                                let dst = &mut out[c * plane + at..c * plane + at + rw];
                                for (d, p) in dst.iter_mut().zip(row.chunks_exact(3)) {
                                    *d = lut[c][p[src_c] as usize];
                                }
                            }
                        },
                    )?;
                }
                TensorData::U8(v) => {
                    let out = &mut v[i * per_image..(i + 1) * per_image];
                    let pad = self.spec.pad_value.clamp(0.0, 255.0) as u8;
                    out.fill(pad);
                    self.resizer.resize_rows(
                        img,
                        region,
                        plan.resized_w,
                        plan.resized_h,
                        |y, row| {
                            let start = ((y + py) * w + px) * 3;
                            let dst = &mut out[start..start + rw * 3];
                            if swap {
                                for (d, s) in dst.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
                                    d.copy_from_slice(&[s[2], s[1], s[0]]);
                                }
                            } else {
                                dst.copy_from_slice(row);
                            }
                        },
                    )?;
                }
            }
            self.batch.geometries.push(Geometry {
                scale_x: plan.scale_x,
                scale_y: plan.scale_y,
                pad_x: plan.pad_x as f32,
                pad_y: plan.pad_y as f32,
                region,
                resized_w: plan.resized_w,
                resized_h: plan.resized_h,
            });
        }
        Ok(&self.batch)
    }
}

/// Fills the part of a `w × h` plane outside the `(x, y, rw, rh)` image rectangle with `value`.
fn fill_outside(
    plane: &mut [f32],
    w: usize,
    h: usize,
    (x, y, rw, rh): (usize, usize, usize, usize),
    value: f32,
) {
    plane[..y * w].fill(value);
    plane[(y + rh) * w..h * w].fill(value);
    for row in y..y + rh {
        plane[row * w..row * w + x].fill(value);
        plane[row * w + x + rw..(row + 1) * w].fill(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resize: ResizeMode, w: Option<u32>, h: Option<u32>) -> InputSpec {
        InputSpec {
            name: "x".into(),
            dtype: TensorType::F32,
            layout: Layout::Nchw,
            width: w,
            height: h,
            color: ColorOrder::Bgr,
            resize,
            pad_value: 114.0,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            max_batch: 4,
            min_width: Some(320),
            size_multiple: Some(32),
            min_short_side: Some(160),
        }
    }

    #[test]
    fn top_left_letterbox_pads_right_and_bottom_and_swaps_to_bgr() {
        let mut p =
            Preprocessor::new(&spec(ResizeMode::LetterboxTopLeft, Some(8), Some(8))).unwrap();
        let img = RgbImage::from_pixel(4, 2, image::Rgb([10, 20, 30]));
        let b = p.prepare(&[(&img, None)]).unwrap();
        assert_eq!(b.shape, [1, 3, 8, 8]);
        let TensorData::F32(v) = &b.data else {
            panic!("f32")
        };
        // Resized to 8x4 at the top-left; channel 0 is blue.
        assert_eq!(v[0], 30.0);
        assert_eq!(v[64 * 2], 10.0);
        assert_eq!(v[4 * 8], 114.0, "row 4 is padding");
        let g = b.geometries[0];
        assert_eq!(g.to_source([0.0, 0.0, 8.0, 4.0]), [0.0, 0.0, 4.0, 2.0]);
    }

    #[test]
    fn centred_letterbox_splits_padding() {
        let mut s = spec(ResizeMode::LetterboxCenter, Some(10), Some(10));
        s.color = ColorOrder::Rgb;
        let mut p = Preprocessor::new(&s).unwrap();
        let img = RgbImage::from_pixel(10, 4, image::Rgb([1, 2, 3]));
        let b = p.prepare(&[(&img, None)]).unwrap();
        let g = b.geometries[0];
        assert_eq!((g.pad_x, g.pad_y, g.resized_h), (0.0, 3.0, 4));
        let TensorData::F32(v) = &b.data else {
            panic!("f32")
        };
        assert_eq!(v[2 * 10], 114.0);
        assert_eq!(v[3 * 10], 1.0);
        assert_eq!(g.to_source([0.0, 3.0, 10.0, 7.0]), [0.0, 0.0, 10.0, 4.0]);
    }

    #[test]
    fn fixed_height_batches_pad_to_the_widest_and_min_width() {
        let mut s = spec(ResizeMode::FixedHeight, None, Some(48));
        s.pad_value = 127.5;
        s.scale = 1.0 / 255.0;
        s.mean = [0.5; 3];
        s.std = [0.5; 3];
        let mut p = Preprocessor::new(&s).unwrap();
        let a = RgbImage::from_pixel(100, 10, image::Rgb([255, 255, 255]));
        let b = RgbImage::from_pixel(20, 10, image::Rgb([0, 0, 0]));
        let batch = p.prepare(&[(&a, None), (&b, None)]).unwrap();
        assert_eq!(batch.shape, [2, 3, 48, 480]);
        let TensorData::F32(v) = &batch.data else {
            panic!("f32")
        };
        assert!(
            (v[0] - 1.0).abs() < 1e-6 && (v[479] - 1.0).abs() < 1e-6,
            "first image fills 480 columns"
        );
        let second = 3 * 48 * 480;
        assert!((v[second] + 1.0).abs() < 1e-6, "black normalises to -1");
        assert!(
            (v[second + 95] + 1.0).abs() < 1e-6 && v[second + 96].abs() < 1e-6,
            "96 image columns, then pad normalised to 0"
        );
    }

    #[test]
    fn a_row_width_rule_replaces_min_width() {
        let mut s = spec(ResizeMode::FixedHeight, None, Some(48));
        s.min_width = Some(320);
        let mut p = Preprocessor::new(&s).unwrap();
        // 62x24 -> 124 px at height 48: the manifest pads to 320, the rule to 128 (multiple of 8).
        let row = RgbImage::from_pixel(62, 24, image::Rgb([9, 9, 9]));
        assert_eq!(p.prepare(&[(&row, None)]).unwrap().shape, [1, 3, 48, 320]);
        p.set_fixed_height_width(32, 8).unwrap();
        assert_eq!(p.prepare(&[(&row, None)]).unwrap().shape, [1, 3, 48, 128]);
        // A tiny row gets the rule's minimum.
        let dot = RgbImage::from_pixel(4, 24, image::Rgb([9, 9, 9]));
        assert_eq!(p.prepare(&[(&dot, None)]).unwrap().shape, [1, 3, 48, 32]);
        let mut fixed = Preprocessor::new(&spec(ResizeMode::Stretch, Some(8), Some(8))).unwrap();
        assert!(fixed.set_fixed_height_width(32, 8).is_err());
    }

    #[test]
    fn regions_outside_the_image_are_errors_not_panics() {
        let mut p = Preprocessor::new(&spec(ResizeMode::Stretch, Some(8), Some(8))).unwrap();
        let img = RgbImage::new(10, 10);
        let err = p
            .prepare(&[(
                &img,
                Some(Rect {
                    x: 5,
                    y: 5,
                    w: 6,
                    h: 2,
                }),
            )])
            .unwrap_err();
        assert!(matches!(err, InferenceError::Region { .. }));
        assert!(p.prepare(&[]).is_err());
    }
}
