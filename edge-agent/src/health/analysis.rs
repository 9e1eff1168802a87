//! Cheap image measurements for tamper detection, on a small grey copy of the frame: sharpness
//! (variance of the Laplacian), brightness and contrast, a grey-level histogram and a coarse edge
//! map for comparing against the learned scene, and a thumbnail for spotting frozen pictures.

/// Bins of the grey-level histogram.
pub const HIST_BINS: usize = 32;
/// Cells of the coarse edge map, across and down.
pub const EDGE_GRID: (usize, usize) = (16, 12);
/// Thumbnail size used to compare consecutive checks.
const THUMB: (usize, usize) = (64, 48);

/// A grey image, one byte per pixel, row-major.
#[derive(Debug, Clone)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Grey {
    /// Box-averaged grey copy of packed RGB8, `target_width` wide at most (aspect kept).
    /// Returns `None` when the buffer does not match the size.
    pub fn from_rgb(rgb: &[u8], width: u32, height: u32, target_width: u32) -> Option<Self> {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 || rgb.len() != w * h * 3 {
            return None;
        }
        // Integer block size: every output pixel averages a step×step block.
        let step = (w / target_width.max(16) as usize).max(1);
        let (ow, oh) = (w / step, h / step);
        let mut data = vec![0u8; ow * oh];
        let area = (step * step) as u32;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0u32;
                for y in oy * step..(oy + 1) * step {
                    let row = &rgb[(y * w + ox * step) * 3..(y * w + (ox + 1) * step) * 3];
                    for px in row.chunks_exact(3) {
                        // ITU-R BT.601 luma in integers (weights sum to 256).
                        sum += (77 * u32::from(px[0])
                            + 150 * u32::from(px[1])
                            + 29 * u32::from(px[2]))
                            >> 8;
                    }
                }
                data[oy * ow + ox] = (sum / area) as u8;
            }
        }
        Some(Grey {
            width: ow,
            height: oh,
            data,
        })
    }

    fn at(&self, x: usize, y: usize) -> f32 {
        f32::from(self.data[y * self.width + x])
    }
}

/// What one check measured.
#[derive(Debug, Clone)]
pub struct Measures {
    /// Mean grey level, 0..255.
    pub mean: f32,
    /// Standard deviation of the grey level (spatial contrast).
    pub std: f32,
    /// Variance of the 4-neighbour Laplacian: falls when the picture loses focus.
    pub sharpness: f32,
    /// Normalised grey-level histogram (sums to 1).
    pub histogram: [f32; HIST_BINS],
    /// Mean gradient magnitude per cell of [`EDGE_GRID`], row-major.
    pub edges: Vec<f32>,
    /// Small grey thumbnail for frame-to-frame comparison.
    pub thumb: Vec<u8>,
}

/// Measures a grey image. Images smaller than 3×3 give zero sharpness and empty edges.
pub fn measure(g: &Grey) -> Measures {
    let n = g.data.len().max(1) as f64;
    let mut hist = [0u32; HIST_BINS];
    let mut sum = 0f64;
    let mut sum2 = 0f64;
    for &v in &g.data {
        hist[usize::from(v) * HIST_BINS / 256] += 1;
        let v = f64::from(v);
        sum += v;
        sum2 += v * v;
    }
    let mean = sum / n;
    let std = (sum2 / n - mean * mean).max(0.0).sqrt();
    let mut histogram = [0f32; HIST_BINS];
    for (o, &c) in histogram.iter_mut().zip(&hist) {
        *o = (f64::from(c) / n) as f32;
    }

    let (gw, gh) = EDGE_GRID;
    let mut cells = vec![0f64; gw * gh];
    let mut counts = vec![0u32; gw * gh];
    let (mut lsum, mut lsum2, mut ln) = (0f64, 0f64, 0f64);
    if g.width >= 3 && g.height >= 3 {
        for y in 1..g.height - 1 {
            let cy = y * gh / g.height;
            for x in 1..g.width - 1 {
                let c = g.at(x, y);
                let (l, r, u, d) = (
                    g.at(x - 1, y),
                    g.at(x + 1, y),
                    g.at(x, y - 1),
                    g.at(x, y + 1),
                );
                let lap = f64::from(l + r + u + d - 4.0 * c);
                lsum += lap;
                lsum2 += lap * lap;
                ln += 1.0;
                let grad = f64::from((r - l).abs() + (d - u).abs());
                let cell = cy * gw + x * gw / g.width;
                cells[cell] += grad;
                counts[cell] += 1;
            }
        }
    }
    let sharpness = if ln > 0.0 {
        let m = lsum / ln;
        (lsum2 / ln - m * m).max(0.0)
    } else {
        0.0
    };
    let edges = if ln > 0.0 {
        cells
            .iter()
            .zip(&counts)
            .map(|(&s, &c)| {
                if c > 0 {
                    (s / f64::from(c)) as f32
                } else {
                    0.0
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Measures {
        mean: mean as f32,
        std: std as f32,
        sharpness: sharpness as f32,
        histogram,
        edges,
        thumb: thumbnail(g),
    }
}

fn thumbnail(g: &Grey) -> Vec<u8> {
    let (tw, th) = THUMB;
    let mut out = Vec::with_capacity(tw * th);
    for ty in 0..th {
        for tx in 0..tw {
            let (x0, x1) = (
                tx * g.width / tw,
                ((tx + 1) * g.width / tw).max(tx * g.width / tw + 1),
            );
            let (y0, y1) = (
                ty * g.height / th,
                ((ty + 1) * g.height / th).max(ty * g.height / th + 1),
            );
            let (mut s, mut c) = (0u32, 0u32);
            for y in y0..y1.min(g.height) {
                for x in x0..x1.min(g.width) {
                    s += u32::from(g.data[y * g.width + x]);
                    c += 1;
                }
            }
            out.push(s.checked_div(c).unwrap_or(0) as u8);
        }
    }
    out
}

/// Mean absolute difference of two thumbnails, in grey levels; infinite when they don't compare.
pub fn thumb_diff(a: &[u8], b: &[u8]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return f32::INFINITY;
    }
    let s: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    s as f32 / a.len() as f32
}

/// The scene the camera is expected to see, learned slowly from good checks.
#[derive(Debug, Clone)]
pub struct SceneReference {
    pub histogram: [f32; HIST_BINS],
    pub edges: Vec<f32>,
}

impl SceneReference {
    pub fn from_measures(m: &Measures) -> Self {
        Self {
            histogram: m.histogram,
            edges: m.edges.clone(),
        }
    }

    /// Moves the reference towards `m` by `alpha` (0..1), an exponential moving average.
    pub fn learn(&mut self, m: &Measures, alpha: f32) {
        for (r, &v) in self.histogram.iter_mut().zip(&m.histogram) {
            *r += alpha * (v - *r);
        }
        if self.edges.len() == m.edges.len() {
            for (r, &v) in self.edges.iter_mut().zip(&m.edges) {
                *r += alpha * (v - *r);
            }
        } else {
            self.edges = m.edges.clone();
        }
    }

    /// Distance of `m` from the reference, 0 (same) ..1 (unrelated): the larger of the histogram
    /// distance (half the L1 difference) and the edge layout distance (1 − correlation, clamped).
    /// Passing traffic moves a few cells and bins; a moved camera or a new scene moves them all.
    pub fn distance(&self, m: &Measures) -> SceneDistance {
        let hist = 0.5
            * self
                .histogram
                .iter()
                .zip(&m.histogram)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>();
        let edges = 1.0 - correlation(&self.edges, &m.edges);
        SceneDistance {
            histogram: hist.clamp(0.0, 1.0),
            edges: edges.clamp(0.0, 1.0),
        }
    }
}

/// The two parts of a scene distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneDistance {
    pub histogram: f32,
    pub edges: f32,
}

impl SceneDistance {
    pub fn value(self) -> f32 {
        self.histogram.max(self.edges)
    }
}

/// Pearson correlation; 0 when either side is flat or they differ in length.
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.len() < 2 {
        return 0.0;
    }
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mb = b.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 1e-9 || sbb <= 1e-9 {
        return 0.0;
    }
    (sab / (saa * sbb).sqrt()) as f32
}
