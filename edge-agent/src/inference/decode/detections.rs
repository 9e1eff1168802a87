//! Box decoders: YOLOX grid heads, NMS-free end-to-end heads, and the classic Ultralytics head.

use super::super::preprocess::Geometry;
use super::super::{Detection, InferenceError};

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter + 1e-9)
}

/// Greedy non-maximum suppression, per class unless `class_agnostic`; output sorted by score.
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f32, class_agnostic: bool) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        let suppressed = keep.iter().any(|k| {
            (class_agnostic || k.class_id == d.class_id) && iou(&k.bbox, &d.bbox) > iou_threshold
        });
        if !suppressed {
            keep.push(d);
        }
    }
    keep
}

/// `[x1, y1, x2, y2]` of a box given by centre and size.
fn corners(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

fn check_len(out: &[f32], expected: usize, what: &str) -> Result<(), InferenceError> {
    if out.len() == expected {
        Ok(())
    } else {
        Err(InferenceError::Output(format!(
            "{what}: expected {expected} values, got {}",
            out.len()
        )))
    }
}

/// Parameters of [`decode_yolox`].
#[derive(Debug, Clone)]
pub struct YoloxParams<'a> {
    pub strides: &'a [u32],
    pub input_w: u32,
    pub input_h: u32,
    pub num_classes: usize,
    pub score_threshold: f32,
    pub nms_iou: f32,
    pub class_agnostic: bool,
}

/// YOLOX: rows `[tx, ty, tw, th, obj, cls...]` over each stride's grid (row-major), obj and cls
/// already sigmoid-ed; score = obj × best cls.
pub fn decode_yolox(
    out: &[f32],
    p: &YoloxParams<'_>,
    g: &Geometry,
) -> Result<Vec<Detection>, InferenceError> {
    let cols = 5 + p.num_classes;
    let rows: usize = p
        .strides
        .iter()
        .map(|&s| ((p.input_w / s) * (p.input_h / s)) as usize)
        .sum();
    check_len(out, rows * cols, "yolox output")?;
    let mut dets = Vec::new();
    let mut row = 0;
    for &s in p.strides {
        let (gw, gh) = (p.input_w / s, p.input_h / s);
        let sf = s as f32;
        for gy in 0..gh {
            for gx in 0..gw {
                let r = &out[row * cols..(row + 1) * cols];
                row += 1;
                let obj = r[4];
                if obj <= p.score_threshold {
                    continue; // cls ≤ 1, so the score cannot pass
                }
                let (class_id, cls) = best(&r[5..]);
                let score = obj * cls;
                if score <= p.score_threshold {
                    continue;
                }
                let cx = (r[0] + gx as f32) * sf;
                let cy = (r[1] + gy as f32) * sf;
                let w = r[2].exp() * sf;
                let h = r[3].exp() * sf;
                let bbox = g.to_source(corners(cx, cy, w, h));
                dets.push(Detection {
                    class_id,
                    score,
                    bbox,
                });
            }
        }
    }
    Ok(nms(dets, p.nms_iou, p.class_agnostic))
}

fn best(scores: &[f32]) -> (usize, f32) {
    scores.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |acc, (i, s)| if s > acc.1 { (i, s) } else { acc },
    )
}

/// Parameters of [`decode_end2end`].
#[derive(Debug, Clone)]
pub struct EndToEndParams {
    pub rows: usize,
    pub score_threshold: f32,
    /// Optional NMS to remove the rare near-duplicate.
    pub nms_iou: Option<f32>,
}

/// NMS-free heads: rows `[x1, y1, x2, y2, score, class]` in input pixels.
pub fn decode_end2end(
    out: &[f32],
    p: &EndToEndParams,
    g: &Geometry,
) -> Result<Vec<Detection>, InferenceError> {
    check_len(out, p.rows * 6, "end-to-end output")?;
    let dets = out
        .chunks_exact(6)
        .filter(|r| r[4] > p.score_threshold)
        .map(|r| Detection {
            class_id: r[5].max(0.0) as usize,
            score: r[4],
            bbox: g.to_source([r[0], r[1], r[2], r[3]]),
        })
        .collect();
    Ok(match p.nms_iou {
        Some(t) => nms(dets, t, true),
        None => dets,
    })
}

/// Parameters of [`decode_ultralytics`].
#[derive(Debug, Clone)]
pub struct UltralyticsParams {
    pub num_classes: usize,
    pub anchors: usize,
    pub score_threshold: f32,
    pub nms_iou: f32,
    pub class_agnostic: bool,
}

/// Classic Ultralytics head `[4 + C, N]` (channel-major): `cx, cy, w, h`, then class scores.
pub fn decode_ultralytics(
    out: &[f32],
    p: &UltralyticsParams,
    g: &Geometry,
) -> Result<Vec<Detection>, InferenceError> {
    let n = p.anchors;
    check_len(out, (4 + p.num_classes) * n, "ultralytics output")?;
    let mut dets = Vec::new();
    for a in 0..n {
        let (mut class_id, mut score) = (0, f32::MIN);
        for c in 0..p.num_classes {
            let s = out[(4 + c) * n + a];
            if s > score {
                (class_id, score) = (c, s);
            }
        }
        if score <= p.score_threshold {
            continue;
        }
        let (cx, cy, w, h) = (out[a], out[n + a], out[2 * n + a], out[3 * n + a]);
        let bbox = g.to_source(corners(cx, cy, w, h));
        dets.push(Detection {
            class_id,
            score,
            bbox,
        });
    }
    Ok(nms(dets, p.nms_iou, p.class_agnostic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::Rect;

    fn identity(w: u32, h: u32) -> Geometry {
        Geometry {
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
            region: Rect { x: 0, y: 0, w, h },
            resized_w: w,
            resized_h: h,
        }
    }

    fn det(c: usize, s: f32, b: [f32; 4]) -> Detection {
        Detection {
            class_id: c,
            score: s,
            bbox: b,
        }
    }

    #[test]
    fn nms_is_per_class_unless_agnostic() {
        let d = vec![
            det(0, 0.9, [0., 0., 10., 10.]),
            det(1, 0.8, [0., 0., 10., 10.]),
            det(0, 0.7, [1., 1., 10., 10.]),
        ];
        let per_class = nms(d.clone(), 0.5, false);
        assert_eq!(per_class.len(), 2);
        assert_eq!(nms(d, 0.5, true).len(), 1);
    }

    #[test]
    fn yolox_grid_decoding() {
        // 8x8 input, one stride of 4: a 2x2 grid, 1 class.
        let mut out = vec![0f32; 4 * 6];
        let r = 3; // gx = 1, gy = 1
        out[r * 6..r * 6 + 6].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 0.9, 0.8]);
        let p = YoloxParams {
            strides: &[4],
            input_w: 8,
            input_h: 8,
            num_classes: 1,
            score_threshold: 0.3,
            nms_iou: 0.45,
            class_agnostic: false,
        };
        let d = decode_yolox(&out, &p, &identity(8, 8)).unwrap();
        assert_eq!(d.len(), 1);
        assert!((d[0].score - 0.72).abs() < 1e-6);
        assert_eq!(d[0].bbox, [4.0, 4.0, 8.0, 8.0]);
        assert!(decode_yolox(&out[..5], &p, &identity(8, 8)).is_err());
    }

    #[test]
    fn ultralytics_channel_major_layout() {
        // 2 anchors, 2 classes: anchor 1 is class 1 at 0.9.
        let out = vec![0., 5., 0., 5., 0., 2., 0., 2., 0.1, 0.2, 0.1, 0.9];
        let p = UltralyticsParams {
            num_classes: 2,
            anchors: 2,
            score_threshold: 0.35,
            nms_iou: 0.45,
            class_agnostic: false,
        };
        let d = decode_ultralytics(&out, &p, &identity(10, 10)).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].class_id, d[0].bbox), (1, [4.0, 4.0, 6.0, 6.0]));
    }

    #[test]
    fn end2end_threshold_and_mapping() {
        let mut g = identity(100, 100);
        g.scale_x = 2.0;
        g.scale_y = 2.0;
        g.pad_y = 10.0;
        let out = vec![20., 30., 40., 50., 0.8, 0., 0., 0., 1., 1., 0.1, 0.];
        let d = decode_end2end(
            &out,
            &EndToEndParams {
                rows: 2,
                score_threshold: 0.25,
                nms_iou: None,
            },
            &g,
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].bbox, [10.0, 10.0, 20.0, 20.0]);
    }
}
