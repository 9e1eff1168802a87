//! Several vehicle crops packed into one plate-detector input, so one detector call serves several
//! vehicles.
//!
//! The plate detector takes a fixed square input with batch 1 (`vn_plate_det_yolo26n_640_e2e`:
//! `[1, 3, 640, 640]`), and a vehicle crop of a 1006×720 camera frame is 50–250 px: letterboxed alone
//! it is upscaled 3–10×, which buys the detector nothing a 1.5–5× upscale does not. Laying the crops
//! out in a grid of cells on one canvas of the input's size costs one call instead of one per crop.
//! The grid is chosen to keep the smallest upscale as large as possible, each crop is letterboxed
//! into its cell with the same OpenCV-exact bilinear resize the preprocessor uses, and cells are
//! separated by a gutter of padding so a box cannot span two vehicles.

use crate::inference::resize::LinearResizer;
use crate::inference::{Detection, InferenceError, Rect, RgbImage};

/// Padding pixels between two cells.
const GUTTER: u32 = 8;

/// Where one crop went on the canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tile {
    /// The crop in frame pixels.
    pub source: Rect,
    /// The resized crop on the canvas.
    pub placed: Rect,
    /// Canvas pixels per frame pixel, horizontally and vertically (equal but for rounding).
    pub scale_x: f32,
    pub scale_y: f32,
}

impl Tile {
    /// A canvas box mapped back to frame pixels, clipped to the crop.
    pub fn to_frame(&self, b: [f32; 4]) -> [f32; 4] {
        let (px, py) = (self.placed.x as f32, self.placed.y as f32);
        let (sx, sy) = (self.source.x as f32, self.source.y as f32);
        let (ex, ey) = (sx + self.source.w as f32, sy + self.source.h as f32);
        [
            ((b[0] - px) / self.scale_x + sx).clamp(sx, ex),
            ((b[1] - py) / self.scale_y + sy).clamp(sy, ey),
            ((b[2] - px) / self.scale_x + sx).clamp(sx, ex),
            ((b[3] - py) / self.scale_y + sy).clamp(sy, ey),
        ]
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        self.placed.contains(x, y)
    }
}

/// A reusable canvas (one per inference worker: its buffers are kept between frames).
pub struct Mosaic {
    canvas: RgbImage,
    fill: u8,
    resizer: LinearResizer,
    tiles: Vec<Tile>,
}

impl std::fmt::Debug for Mosaic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mosaic")
            .field("size", &self.canvas.dimensions())
            .field("tiles", &self.tiles)
            .finish()
    }
}

/// Columns and rows of the grid for `regions` on a `w × h` canvas: the one whose smallest crop
/// scale is largest (tall crops prefer more columns, wide ones more rows).
fn grid(regions: &[Rect], w: u32, h: u32) -> (u32, u32) {
    let n = regions.len() as u32;
    let mut best = (1, n.max(1), f32::MIN);
    for cols in 1..=n.max(1) {
        let rows = n.div_ceil(cols).max(1);
        let Some((cw, ch)) = cell_size(w, h, cols, rows) else {
            continue;
        };
        let worst = regions
            .iter()
            .map(|r| (cw as f32 / r.w as f32).min(ch as f32 / r.h as f32))
            .fold(f32::MAX, f32::min);
        if worst > best.2 {
            best = (cols, rows, worst);
        }
    }
    (best.0, best.1)
}

fn cell_size(w: u32, h: u32, cols: u32, rows: u32) -> Option<(u32, u32)> {
    let cw = w.checked_sub(GUTTER * (cols - 1))? / cols;
    let ch = h.checked_sub(GUTTER * (rows - 1))? / rows;
    (cw >= 16 && ch >= 16).then_some((cw, ch))
}

impl Mosaic {
    /// A `width × height` canvas (the plate detector's input size) padded with `fill`.
    pub fn new(width: u32, height: u32, fill: u8) -> Self {
        Mosaic {
            canvas: RgbImage::from_pixel(width, height, image::Rgb([fill; 3])),
            fill,
            resizer: LinearResizer::new(),
            tiles: Vec::new(),
        }
    }

    /// The canvas size.
    pub fn size(&self) -> (u32, u32) {
        self.canvas.dimensions()
    }

    /// Lays `regions` of `frame` out on the canvas; returns the canvas to run the detector on.
    /// Regions must lie inside the frame.
    pub fn compose(
        &mut self,
        frame: &RgbImage,
        regions: &[Rect],
    ) -> Result<&RgbImage, InferenceError> {
        let items: Vec<(&RgbImage, Rect)> = regions.iter().map(|r| (frame, *r)).collect();
        self.compose_items(&items)
    }

    /// [`Mosaic::compose`] with each region taken from its own image (several frames on one
    /// canvas); tiles map back to their own image's pixels.
    pub fn compose_items(
        &mut self,
        items: &[(&RgbImage, Rect)],
    ) -> Result<&RgbImage, InferenceError> {
        let (w, h) = self.canvas.dimensions();
        // Only the padding has to be restored: every other pixel is overwritten below.
        let fill = self.fill;
        self.canvas.iter_mut().for_each(|p| *p = fill);
        self.tiles.clear();
        if items.is_empty() {
            return Ok(&self.canvas);
        }
        let regions: Vec<Rect> = items.iter().map(|i| i.1).collect();
        let (cols, rows) = grid(&regions, w, h);
        let Some((cw, ch)) = cell_size(w, h, cols, rows) else {
            return Err(InferenceError::Spec(format!(
                "a {w}×{h} canvas cannot hold {} crops",
                regions.len()
            )));
        };
        let stride = w as usize * 3;
        for (k, (frame, r)) in items.iter().enumerate() {
            let (col, row) = (k as u32 % cols, k as u32 / cols);
            let scale = (cw as f32 / r.w as f32).min(ch as f32 / r.h as f32);
            let rw = ((r.w as f32 * scale).round() as u32).clamp(1, cw);
            let rh = ((r.h as f32 * scale).round() as u32).clamp(1, ch);
            let x = col * (cw + GUTTER) + (cw - rw) / 2;
            let y = row * (ch + GUTTER) + (ch - rh) / 2;
            let canvas: &mut [u8] = &mut self.canvas;
            self.resizer.resize_rows(frame, *r, rw, rh, |yy, line| {
                let start = (y as usize + yy) * stride + x as usize * 3;
                canvas[start..start + line.len()].copy_from_slice(line);
            })?;
            self.tiles.push(Tile {
                source: *r,
                placed: Rect { x, y, w: rw, h: rh },
                scale_x: rw as f32 / r.w as f32,
                scale_y: rh as f32 / r.h as f32,
            });
        }
        Ok(&self.canvas)
    }

    /// The tiles of the last [`Mosaic::compose`], in the order of its regions.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Every detection whose box centre lies on a tile, with the tile's index, in frame pixels.
    pub fn assign_all(&self, detections: &[Detection]) -> Vec<(usize, Detection)> {
        detections
            .iter()
            .filter_map(|d| {
                let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
                let k = self.tiles.iter().position(|t| t.contains(cx, cy))?;
                Some((
                    k,
                    Detection {
                        bbox: self.tiles[k].to_frame(d.bbox),
                        ..d.clone()
                    },
                ))
            })
            .collect()
    }

    /// The best detection on each tile (by the box centre), in frame pixels; `None` where a tile
    /// has none.
    pub fn assign(&self, detections: &[Detection]) -> Vec<Option<Detection>> {
        let mut out: Vec<Option<Detection>> = vec![None; self.tiles.len()];
        for (k, d) in self.assign_all(detections) {
            if out[k].as_ref().is_none_or(|b| d.score > b.score) {
                out[k] = Some(d);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u32, y: u32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    /// A frame whose pixel value encodes its position, so copies can be checked exactly.
    fn frame() -> RgbImage {
        RgbImage::from_fn(400, 300, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
        })
    }

    #[test]
    fn one_crop_fills_the_canvas_like_a_letterbox() {
        let mut m = Mosaic::new(640, 640, 114);
        let f = frame();
        m.compose(&f, &[rect(10, 20, 160, 80)]).unwrap();
        let t = m.tiles()[0];
        // 4× upscale, centred vertically: the preprocessor's letterbox_center.
        assert_eq!(t.placed, rect(0, 160, 640, 320));
        assert_eq!((t.scale_x, t.scale_y), (4.0, 4.0));
        let back = t.to_frame([0.0, 160.0, 640.0, 480.0]);
        assert_eq!(back, [10.0, 20.0, 170.0, 100.0]);
    }

    #[test]
    fn two_wide_frames_stack_and_map_back_to_their_own_pixels() {
        let mut m = Mosaic::new(640, 640, 114);
        let (a, b) = (
            frame(),
            RgbImage::from_pixel(800, 300, image::Rgb([9, 9, 9])),
        );
        let whole = |f: &RgbImage| rect(0, 0, f.width(), f.height());
        let canvas = m
            .compose_items(&[(&a, whole(&a)), (&b, whole(&b))])
            .unwrap()
            .clone();
        let tiles = m.tiles().to_vec();
        // One column, two rows of (640 - 8) / 2 = 316 px: the first frame is scaled to that height.
        assert!((tiles[0].scale_y - 316.0 / 300.0).abs() < 0.01, "{tiles:?}");
        assert!(tiles[1].placed.y >= tiles[0].placed.y + tiles[0].placed.h + GUTTER);
        assert_eq!(tiles[1].placed.w, 640);
        // Each tile holds its own frame's pixels.
        let p = tiles[1].placed;
        assert_eq!(canvas.get_pixel(p.x + 5, p.y + 5).0, [9, 9, 9]);
        // A box on the second tile comes back in the second frame's pixels.
        let (sx, sy) = (tiles[1].scale_x, tiles[1].scale_y);
        let on_b = [
            p.x as f32 + 100.0 * sx,
            p.y as f32 + 50.0 * sy,
            p.x as f32 + 180.0 * sx,
            p.y as f32 + 80.0 * sy,
        ];
        let got = m.assign_all(&[Detection {
            bbox: on_b,
            score: 0.7,
            class_id: 0,
        }]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
        let back = got[0].1.bbox;
        assert!(
            back.iter()
                .zip([100.0, 50.0, 180.0, 80.0])
                .all(|(g, w)| (g - w).abs() < 0.01),
            "{back:?}"
        );
    }

    #[test]
    fn crops_get_separate_cells_and_detections_map_back_to_their_vehicle() {
        let mut m = Mosaic::new(640, 640, 114);
        let f = frame();
        let regions = [
            rect(0, 0, 100, 150),
            rect(200, 100, 60, 120),
            rect(300, 0, 90, 90),
            rect(50, 200, 120, 100),
        ];
        let canvas = m.compose(&f, &regions).unwrap().clone();
        let tiles = m.tiles().to_vec();
        assert_eq!(tiles.len(), 4);
        for (a, t) in tiles.iter().enumerate() {
            assert_eq!(t.source, regions[a]);
            // At least 2× upscale for each crop in a 2×2 grid of ~316 px cells.
            assert!(t.scale_x.min(t.scale_y) >= 2.0, "{t:?}");
            for u in &tiles[a + 1..] {
                let (p, q) = (t.placed, u.placed);
                let apart = p.x + p.w + GUTTER <= q.x
                    || q.x + q.w + GUTTER <= p.x
                    || p.y + p.h + GUTTER <= q.y
                    || q.y + q.h + GUTTER <= p.y;
                assert!(apart, "{p:?} and {q:?} overlap or touch");
            }
            // The tile's top-left pixel is the crop's top-left pixel of the frame.
            let px = canvas.get_pixel(t.placed.x, t.placed.y);
            let src = f.get_pixel(t.source.x, t.source.y);
            assert!(px.0.iter().zip(src.0).all(|(a, b)| a.abs_diff(b) <= 2));
        }
        // Beside a crop narrower than its cell is padding.
        assert_eq!(
            canvas
                .get_pixel(tiles[0].placed.x + tiles[0].placed.w + 1, 300)
                .0,
            [114; 3]
        );

        // A detection in tile 1 and two in tile 3 (the better one wins); one on padding is dropped.
        let det = |b: [f32; 4], score: f32| Detection {
            bbox: b,
            score,
            class_id: 0,
        };
        let on = |t: &Tile, fx: f32, fy: f32, fw: f32, fh: f32| {
            let (x, y) = (
                t.placed.x as f32 + fx * t.scale_x,
                t.placed.y as f32 + fy * t.scale_y,
            );
            [x, y, x + fw * t.scale_x, y + fh * t.scale_y]
        };
        let dets = [
            det(on(&tiles[1], 10.0, 80.0, 30.0, 12.0), 0.8),
            det(on(&tiles[3], 5.0, 60.0, 40.0, 14.0), 0.5),
            det(on(&tiles[3], 50.0, 70.0, 40.0, 14.0), 0.9),
            det([630.0, 630.0, 639.0, 639.0], 0.99),
        ];
        // Every detection on a tile, in frame pixels; the one on padding is dropped.
        let all = m.assign_all(&dets);
        assert_eq!(
            all.iter().map(|(k, d)| (*k, d.score)).collect::<Vec<_>>(),
            [(1, 0.8), (3, 0.5), (3, 0.9)]
        );
        let got = m.assign(&dets);
        assert_eq!(got[1].as_ref(), Some(&all[0].1));
        assert!(got[0].is_none() && got[2].is_none());
        let b1 = got[1].as_ref().unwrap().bbox;
        let want1 = [210.0, 180.0, 240.0, 192.0];
        assert!(
            b1.iter().zip(want1).all(|(a, b)| (a - b).abs() < 0.01),
            "{b1:?}"
        );
        let d3 = got[3].as_ref().unwrap();
        assert_eq!(d3.score, 0.9);
        let want3 = [100.0, 270.0, 140.0, 284.0];
        assert!(
            d3.bbox.iter().zip(want3).all(|(a, b)| (a - b).abs() < 0.01),
            "{:?}",
            d3.bbox
        );
    }

    #[test]
    fn tall_crops_prefer_columns() {
        let tall = [
            rect(0, 0, 40, 160),
            rect(50, 0, 40, 160),
            rect(100, 0, 40, 160),
        ];
        assert_eq!(grid(&tall, 640, 640), (3, 1));
        let wide = [rect(0, 0, 200, 50), rect(0, 60, 200, 50)];
        assert_eq!(grid(&wide, 640, 640), (1, 2));
    }
}
