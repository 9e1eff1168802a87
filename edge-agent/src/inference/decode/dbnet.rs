//! DBNet text detection (PP-OCR det), simplified to axis-aligned boxes: plates are near level.
//!
//! Threshold the probability map, dilate 2×2, take 8-connected components, drop small or faint
//! ones, expand each box by `area × unclip / perimeter`, map back, sort top to bottom.

use super::super::InferenceError;
use super::super::preprocess::Geometry;

/// Parameters of [`decode_dbnet`].
#[derive(Debug, Clone, Copy)]
pub struct DbnetParams {
    pub threshold: f32,
    pub box_threshold: f32,
    pub unclip_ratio: f32,
    pub min_area: f32,
}

/// Text-line boxes `[x1, y1, x2, y2]` in source pixels, top line first.
pub fn decode_dbnet(
    prob: &[f32],
    width: usize,
    height: usize,
    p: &DbnetParams,
    g: &Geometry,
) -> Result<Vec<[f32; 4]>, InferenceError> {
    if prob.len() != width * height {
        return Err(InferenceError::Output(format!(
            "DBNet: expected {width}x{height} values, got {}",
            prob.len()
        )));
    }
    let on: Vec<bool> = prob.iter().map(|&v| v > p.threshold).collect();
    // 2x2 dilation with the kernel anchored at its centre (1,1): a pixel is set when it or its
    // left, upper or upper-left neighbour is.
    let mut mask = vec![false; on.len()];
    for y in 0..height {
        for x in 0..width {
            let at = |dx: usize, dy: usize| x >= dx && y >= dy && on[(y - dy) * width + (x - dx)];
            mask[y * width + x] = at(0, 0) || at(1, 0) || at(0, 1) || at(1, 1);
        }
    }
    let mut label = vec![0u32; mask.len()];
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    let mut next = 0u32;
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let (mut area, mut sum) = (0usize, 0f64);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            area += 1;
            sum += prob[i] as f64;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if mask[j] && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if (area as f32) < p.min_area || (sum / area as f64) < p.box_threshold as f64 {
            continue;
        }
        let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
        let d = area as f32 * p.unclip_ratio / (2.0 * (bw + bh));
        boxes.push(g.to_source([
            x0 as f32 - d,
            y0 as f32 - d,
            x0 as f32 + bw + d,
            y0 as f32 + bh + d,
        ]));
    }
    boxes.sort_by(|a, b| a[1].total_cmp(&b[1]));
    Ok(boxes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::Rect;

    #[test]
    fn two_lines_found_top_first_and_faint_blobs_dropped() {
        let (w, h) = (40, 20);
        let mut prob = vec![0f32; w * h];
        let mut paint = |x0: usize, y0: usize, x1: usize, y1: usize, v: f32| {
            for y in y0..y1 {
                for x in x0..x1 {
                    prob[y * w + x] = v;
                }
            }
        };
        paint(2, 12, 30, 17, 0.9); // bottom line
        paint(2, 2, 30, 7, 0.9); // top line
        paint(34, 2, 38, 6, 0.35); // faint: above threshold, below box threshold
        let g = Geometry {
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
            region: Rect {
                x: 0,
                y: 0,
                w: 40,
                h: 20,
            },
            resized_w: 40,
            resized_h: 20,
        };
        let p = DbnetParams {
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
            min_area: 10.0,
        };
        let boxes = decode_dbnet(&prob, w, h, &p, &g).unwrap();
        assert_eq!(boxes.len(), 2, "{boxes:?}");
        assert!(boxes[0][1] < boxes[1][1]);
        assert!(
            boxes[0][0] < 2.0 && boxes[0][2] > 30.0,
            "unclipped outwards: {:?}",
            boxes[0]
        );
    }
}
