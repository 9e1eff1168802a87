//! A cut between two consecutive pictures — a PTZ camera moved to another preset, an encoder
//! switched to another input — with the timestamps running on: the tracks must restart, as after
//! a reconnect, so no motion is inferred across it. The health monitor's `scene_changed` says the
//! same seconds later (it compares with a learned reference at its check interval); this looks at
//! every decoded picture, from a 32x18 grey thumbnail.

/// Thumbnail size: enough structure to tell two views apart, small enough for every frame.
const COLS: usize = 32;
const ROWS: usize = 18;
/// Luma samples averaged per thumbnail cell (a 4x4 grid).
const SAMPLES: usize = 4;
/// Below this correlation of consecutive thumbnails the view changed. Consecutive pictures of one
/// view correlate near 1 (a bus crossing close to the lens lowers it to about 0.9); two different
/// views near 0 (at most about 0.3 between the two shared junction clips).
const MIN_CORRELATION: f64 = 0.5;
/// Thumbnails flatter than this (standard deviation, grey levels) have no structure to compare:
/// a covered or black picture is the health monitor's to judge, not a cut.
const MIN_STRUCTURE: f64 = 4.0;

/// Remembers the last picture's thumbnail of one camera.
#[derive(Debug, Default)]
pub struct SceneCut {
    last: Option<Vec<f64>>,
}

impl SceneCut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the picture (packed RGB8, `width` x `height`) shows another view than the one
    /// before it.
    pub fn is_cut(&mut self, rgb: &[u8], width: u32, height: u32) -> bool {
        let Some(thumb) = thumbnail(rgb, width as usize, height as usize) else {
            return false;
        };
        let cut = self
            .last
            .as_ref()
            .and_then(|last| correlation(last, &thumb))
            .is_some_and(|c| c < MIN_CORRELATION);
        self.last = Some(thumb);
        cut
    }

    /// Forgets the last picture (after a reconnect the next one is not compared).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// Mean luma of each cell, from a grid of samples; `None` for a picture too small or short of
/// bytes.
fn thumbnail(rgb: &[u8], width: usize, height: usize) -> Option<Vec<f64>> {
    if width < COLS * SAMPLES || height < ROWS * SAMPLES || rgb.len() < width * height * 3 {
        return None;
    }
    let mut out = Vec::with_capacity(COLS * ROWS);
    for row in 0..ROWS {
        for col in 0..COLS {
            let mut sum = 0u32;
            for sy in 0..SAMPLES {
                let y = (row * SAMPLES + sy) * height / (ROWS * SAMPLES);
                for sx in 0..SAMPLES {
                    let x = (col * SAMPLES + sx) * width / (COLS * SAMPLES);
                    let i = (y * width + x) * 3;
                    let (r, g, b) = (rgb[i], rgb[i + 1], rgb[i + 2]);
                    sum += u32::from(r) + 2 * u32::from(g) + u32::from(b);
                }
            }
            out.push(f64::from(sum) / (4 * SAMPLES * SAMPLES) as f64);
        }
    }
    Some(out)
}

/// Pearson correlation of two thumbnails; `None` when either has no structure.
fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    let flat = MIN_STRUCTURE * MIN_STRUCTURE * n;
    (aa > flat && bb > flat).then(|| ab / (aa * bb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{self, SourceItem, SourceOptions};

    /// Every picture of a shared clip, as RGB.
    fn pictures(name: &str) -> Vec<(Vec<u8>, u32, u32)> {
        let path = crate::plate::fixtures::footage_video(name);
        let mut src = source::open(path.to_str().unwrap_or_default(), &SourceOptions::default())
            .expect("open the clip");
        let mut out = Vec::new();
        while let Some(item) = src.next_item().expect("decode") {
            if let SourceItem::Frame(f) = item {
                out.push((f.rgb, f.width, f.height));
            }
        }
        out
    }

    #[test]
    fn a_switch_between_two_real_junction_views_is_a_cut_and_their_own_pictures_are_not() {
        let a = pictures("vn_citycam_02.mp4");
        let b = pictures("vn_citycam_haiphong.mp4");
        assert!(a.len() > 100 && b.len() > 100);
        let mut cut = SceneCut::new();
        // one view after the other, then the first view's start again (a preset and back)
        let played: Vec<&(Vec<u8>, u32, u32)> =
            a.iter().chain(&b).chain(a.iter().take(5)).collect();
        let cuts: Vec<usize> = played
            .iter()
            .enumerate()
            .filter(|(_, (rgb, w, h))| cut.is_cut(rgb, *w, *h))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(cuts, [a.len(), a.len() + b.len()]);
        // a recording looped end to start is the same view: no cut (its timestamps tell)
        let mut cut = SceneCut::new();
        for (rgb, w, h) in b.iter().chain(b.iter().take(3)) {
            assert!(!cut.is_cut(rgb, *w, *h));
        }
    }

    #[test]
    fn flat_small_or_short_pictures_are_never_a_cut() {
        let mut cut = SceneCut::new();
        let (w, h) = (320u32, 180u32);
        let grey = vec![128u8; (w * h * 3) as usize];
        let mut stripes = grey.clone();
        for (i, px) in stripes.chunks_mut(3).enumerate() {
            px.fill(if (i % w as usize) < 160 { 20 } else { 230 });
        }
        assert!(!cut.is_cut(&stripes, w, h));
        assert!(!cut.is_cut(&grey, w, h), "a covered lens is not a new view");
        assert!(!cut.is_cut(&stripes[..100], w, h), "short of bytes");
        assert!(!cut.is_cut(&stripes, 64, 36), "too small to judge");
        let mut flipped = stripes.clone();
        for (i, px) in flipped.chunks_mut(3).enumerate() {
            px.fill(if (i % w as usize) < 160 { 230 } else { 20 });
        }
        let mut cut = SceneCut::new();
        assert!(!cut.is_cut(&stripes, w, h));
        assert!(cut.is_cut(&flipped, w, h), "the opposite picture");
        cut.reset();
        assert!(
            !cut.is_cut(&stripes, w, h),
            "nothing to compare after a reset"
        );
    }
}
