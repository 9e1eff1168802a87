//! Plane geometry the rules need: polygon membership, segment crossings, the image→ground
//! homography. Small and exact enough for pixel coordinates; no external crate needed.

use std::ops::{Add, Sub};

/// A point or vector in pixels (or metres on the ground plane).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct P {
    pub x: f64,
    pub y: f64,
}

impl P {
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }
    pub fn from_arr(a: [f64; 2]) -> Self {
        Self::new(a[0], a[1])
    }
    pub fn scale(self, k: f64) -> P {
        P::new(self.x * k, self.y * k)
    }
    pub fn dot(self, o: P) -> f64 {
        self.x * o.x + self.y * o.y
    }
    /// z of the 3-D cross product: > 0 when `o` is clockwise of `self` on screen (y down).
    pub fn cross(self, o: P) -> f64 {
        self.x * o.y - self.y * o.x
    }
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }
    pub fn dist(self, o: P) -> f64 {
        self.sub(o).norm()
    }
    /// Unit vector, or `None` for a zero vector.
    pub fn unit(self) -> Option<P> {
        let n = self.norm();
        (n > 1e-9).then(|| self.scale(1.0 / n))
    }
}

impl Sub for P {
    type Output = P;
    fn sub(self, o: P) -> P {
        P::new(self.x - o.x, self.y - o.y)
    }
}

impl Add for P {
    type Output = P;
    fn add(self, o: P) -> P {
        P::new(self.x + o.x, self.y + o.y)
    }
}

/// Bottom-centre of an `[x1, y1, x2, y2]` box: where the object touches the road, the anchor every
/// rule uses (Frigate, DeepStream).
pub(super) fn anchor(bbox: [f32; 4]) -> P {
    P::new(
        (f64::from(bbox[0]) + f64::from(bbox[2])) / 2.0,
        f64::from(bbox[3]),
    )
}

/// Even-odd point-in-polygon test; points on an edge may fall either way.
pub(super) fn in_polygon(poly: &[P], p: P) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a.y > p.y) != (b.y > p.y) {
            let x = a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y);
            if p.x < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Whether segments `a1-a2` and `b1-b2` properly intersect or touch.
pub(super) fn segments_intersect(a1: P, a2: P, b1: P, b2: P) -> bool {
    let d1 = b2.sub(b1).cross(a1.sub(b1));
    let d2 = b2.sub(b1).cross(a2.sub(b1));
    let d3 = a2.sub(a1).cross(b1.sub(a1));
    let d4 = a2.sub(a1).cross(b2.sub(a1));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    let on = |p: P, q: P, r: P, d: f64| {
        d == 0.0
            && r.x >= p.x.min(q.x)
            && r.x <= p.x.max(q.x)
            && r.y >= p.y.min(q.y)
            && r.y <= p.y.max(q.y)
    };
    on(b1, b2, a1, d1) || on(b1, b2, a2, d2) || on(a1, a2, b1, d3) || on(a1, a2, b2, d4)
}

/// The first pair of non-adjacent edges that cross, as edge indices (edge i runs from corner i to
/// corner i+1).
pub(super) fn self_intersection(poly: &[P]) -> Option<(usize, usize)> {
    let n = poly.len();
    for i in 0..n {
        for j in i + 1..n {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            if adjacent {
                continue;
            }
            if segments_intersect(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n]) {
                return Some((i, j));
            }
        }
    }
    None
}

/// Twice the signed area; zero for a degenerate polygon.
pub(super) fn area2(poly: &[P]) -> f64 {
    let n = poly.len();
    (0..n).map(|i| poly[i].cross(poly[(i + 1) % n])).sum()
}

/// A projective map of the plane, `h[2][2]` normalised to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography {
    h: [[f64; 3]; 3],
}

impl Homography {
    /// The map taking each `src[i]` to `dst[i]`; `None` when no unique invertible map exists
    /// (three points in a row, repeated points).
    pub fn from_4(src: &[P; 4], dst: &[P; 4]) -> Option<Self> {
        // Direct linear transform with h33 = 1: two equations per correspondence.
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y, u, v) = (src[i].x, src[i].y, dst[i].x, dst[i].y);
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let sol = solve8(a)?;
        let h = Self {
            h: [
                [sol[0], sol[1], sol[2]],
                [sol[3], sol[4], sol[5]],
                [sol[6], sol[7], 1.0],
            ],
        };
        // Reject maps that are singular or send a calibration point to infinity.
        let det = h.det();
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        for (s, d) in src.iter().zip(dst) {
            let m = h.map(*s)?;
            if m.dist(*d) > 1e-6 * (1.0 + d.norm()) {
                return None;
            }
        }
        Some(h)
    }

    fn det(&self) -> f64 {
        let h = &self.h;
        h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
            - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
            + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0])
    }

    /// Maps a point; `None` on the horizon line (and beyond it nothing is on the ground).
    pub fn map(&self, p: P) -> Option<P> {
        let h = &self.h;
        let w = h[2][0] * p.x + h[2][1] * p.y + h[2][2];
        if w.abs() < 1e-12 || !w.is_finite() {
            return None;
        }
        let out = P::new(
            (h[0][0] * p.x + h[0][1] * p.y + h[0][2]) / w,
            (h[1][0] * p.x + h[1][1] * p.y + h[1][2]) / w,
        );
        (out.x.is_finite() && out.y.is_finite()).then_some(out)
    }

    /// Ground metres per image pixel around `p` (the larger singular value of the local
    /// Jacobian, estimated by finite differences): how far one pixel of box jitter moves the
    /// ground point.
    pub fn scale_at(&self, p: P) -> Option<f64> {
        let o = self.map(p)?;
        let dx = self.map(p.add(P::new(1.0, 0.0)))?.sub(o);
        let dy = self.map(p.add(P::new(0.0, 1.0)))?.sub(o);
        Some(dx.norm().max(dy.norm()))
    }
}

/// Gaussian elimination with partial pivoting on an 8×9 augmented matrix.
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-10 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, r) in a.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot_row[col];
                for (x, p) in r.iter_mut().zip(pivot_row.iter()).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut x = [0.0; 8];
    for i in 0..8 {
        x[i] = a[i][8] / a[i][i];
        if !x[i].is_finite() {
            return None;
        }
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sq() -> Vec<P> {
        vec![
            P::new(0.0, 0.0),
            P::new(10.0, 0.0),
            P::new(10.0, 10.0),
            P::new(0.0, 10.0),
        ]
    }

    #[test]
    fn polygon_membership() {
        assert!(in_polygon(&sq(), P::new(5.0, 5.0)));
        assert!(!in_polygon(&sq(), P::new(15.0, 5.0)));
        assert!(!in_polygon(&sq(), P::new(5.0, -0.1)));
    }

    #[test]
    fn bow_tie_is_self_intersecting_square_is_not() {
        assert_eq!(self_intersection(&sq()), None);
        let bow = [
            P::new(0.0, 0.0),
            P::new(10.0, 10.0),
            P::new(10.0, 0.0),
            P::new(0.0, 10.0),
        ];
        assert_eq!(self_intersection(&bow), Some((0, 2)));
    }

    #[test]
    fn homography_maps_its_points_and_rejects_collinear_ones() {
        let src = [
            P::new(100.0, 400.0),
            P::new(500.0, 400.0),
            P::new(400.0, 100.0),
            P::new(200.0, 100.0),
        ];
        let dst = [
            P::new(0.0, 0.0),
            P::new(10.0, 0.0),
            P::new(10.0, 30.0),
            P::new(0.0, 30.0),
        ];
        let h = Homography::from_4(&src, &dst).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            assert!(h.map(*s).unwrap().dist(*d) < 1e-6);
        }
        let line = [
            P::new(0.0, 0.0),
            P::new(1.0, 1.0),
            P::new(2.0, 2.0),
            P::new(3.0, 3.0),
        ];
        assert!(Homography::from_4(&line, &dst).is_none());
    }
}
