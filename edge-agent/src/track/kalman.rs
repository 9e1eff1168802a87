//! Constant-velocity Kalman filter for one box, on centre x/y, width and height.
//!
//! Frames arrive at a variable rate (VFR files, dropped frames, a sampler that skips frames under
//! load), so prediction takes the real elapsed time in seconds and the process noise grows with it
//! (continuous white-noise acceleration). The four coordinates are independent — the transition,
//! process and measurement noise are all block-diagonal — so the 8×8 covariance is kept as four
//! 2×2 blocks: the same estimate as the full filter at a fraction of the arithmetic.

/// Noise levels, relative to the box size so that near and far objects behave alike.
/// Measurement noise: standard deviation of a detector box coordinate, as a fraction of the size.
const MEAS_STD: f32 = 0.05;
/// Acceleration noise of the centre (size fractions per s^1.5): lets a track follow braking,
/// turning and detector drift without lagging behind.
const CENTRE_ACC: f32 = 1.0;
/// Acceleration noise of width and height; boxes change size slower than they move.
const SIZE_ACC: f32 = 0.3;
/// Standard deviation of the velocity of a new track (size fractions per second): unknown but
/// rarely more than two box sizes per second on a traffic camera.
const INIT_CENTRE_VEL: f32 = 2.0;
const INIT_SIZE_VEL: f32 = 0.5;
/// Smallest width/height a prediction may have, so IoU stays defined.
const MIN_SIZE: f32 = 1.0;

/// One coordinate and its velocity with their 2×2 covariance.
#[derive(Debug, Clone, Copy)]
struct Axis {
    x: f32,
    v: f32,
    p00: f32,
    p01: f32,
    p11: f32,
}

impl Axis {
    fn new(x: f32, pos_std: f32, vel_std: f32) -> Self {
        Self {
            x,
            v: 0.0,
            p00: pos_std * pos_std,
            p01: 0.0,
            p11: vel_std * vel_std,
        }
    }

    /// `x += v·dt`, `P = F P Fᵀ + Q` with `Q = q·[dt³/3, dt²/2; dt²/2, dt]`.
    fn predict(&mut self, dt: f32, q: f32) {
        let dt2 = dt * dt;
        self.x += self.v * dt;
        self.p00 += 2.0 * dt * self.p01 + dt2 * self.p11 + q * dt2 * dt / 3.0;
        self.p01 += dt * self.p11 + q * dt2 / 2.0;
        self.p11 += q * dt;
    }

    fn update(&mut self, z: f32, r: f32) {
        let s = self.p00 + r;
        if s <= 0.0 || !s.is_finite() {
            return;
        }
        let (k0, k1) = (self.p00 / s, self.p01 / s);
        let y = z - self.x;
        self.x += k0 * y;
        self.v += k1 * y;
        let (p00, p01) = (self.p00, self.p01);
        self.p00 = (1.0 - k0) * p00;
        self.p01 = (1.0 - k0) * p01;
        self.p11 -= k1 * p01;
    }
}

/// The filtered state of one tracked box.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxFilter {
    /// Centre x, centre y, width, height.
    axes: [Axis; 4],
}

impl BoxFilter {
    /// Starts at a detection with zero velocity and a wide velocity uncertainty.
    pub(crate) fn new(bbox: [f32; 4]) -> Self {
        let z = measure(bbox);
        let s = scale(z[2], z[3]);
        let pos = 2.0 * MEAS_STD * s;
        Self {
            axes: [
                Axis::new(z[0], pos, INIT_CENTRE_VEL * s),
                Axis::new(z[1], pos, INIT_CENTRE_VEL * s),
                Axis::new(z[2], pos, INIT_SIZE_VEL * s),
                Axis::new(z[3], pos, INIT_SIZE_VEL * s),
            ],
        }
    }

    /// Moves the state `dt` seconds ahead.
    pub(crate) fn predict(&mut self, dt: f32) {
        if dt <= 0.0 || !dt.is_finite() {
            return;
        }
        let s = self.scale();
        let qc = (CENTRE_ACC * s).powi(2);
        let qs = (SIZE_ACC * s).powi(2);
        self.axes[0].predict(dt, qc);
        self.axes[1].predict(dt, qc);
        self.axes[2].predict(dt, qs);
        self.axes[3].predict(dt, qs);
        for a in &mut self.axes[2..] {
            if a.x < MIN_SIZE {
                a.x = MIN_SIZE;
                a.v = a.v.max(0.0);
            }
        }
    }

    /// Corrects the state with a detected box.
    pub(crate) fn update(&mut self, bbox: [f32; 4]) {
        let z = measure(bbox);
        let r = (MEAS_STD * scale(z[2], z[3])).powi(2).max(1e-3);
        for (a, z) in self.axes.iter_mut().zip(z) {
            a.update(z, r);
        }
        for a in &mut self.axes[2..] {
            a.x = a.x.max(MIN_SIZE);
        }
    }

    /// Stops the size from drifting while nothing measures it (a lost track keeps its shape).
    pub(crate) fn freeze_size(&mut self) {
        self.axes[2].v = 0.0;
        self.axes[3].v = 0.0;
    }

    /// `[x1, y1, x2, y2]` of the current estimate.
    pub(crate) fn bbox(&self) -> [f32; 4] {
        let [cx, cy, w, h] = self.axes.map(|a| a.x);
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }

    /// Velocity of the box centre, px/s.
    pub(crate) fn velocity(&self) -> [f32; 2] {
        [self.axes[0].v, self.axes[1].v]
    }

    fn scale(&self) -> f32 {
        scale(self.axes[2].x, self.axes[3].x)
    }
}

/// Centre and size of a corner box; degenerate boxes get the minimum size.
fn measure(b: [f32; 4]) -> [f32; 4] {
    let w = (b[2] - b[0]).max(MIN_SIZE);
    let h = (b[3] - b[1]).max(MIN_SIZE);
    [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, w, h]
}

/// Noise reference length: the mean side, so wide cars and tall pedestrians are treated alike.
fn scale(w: f32, h: f32) -> f32 {
    ((w + h) / 2.0).max(MIN_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_constant_velocity_at_variable_intervals() {
        // 100 px/s to the right, 50 px/s down; frames 0.05–0.3 s apart.
        let at = |t: f32| {
            [
                10.0 + 100.0 * t,
                20.0 + 50.0 * t,
                70.0 + 100.0 * t,
                60.0 + 50.0 * t,
            ]
        };
        let mut f = BoxFilter::new(at(0.0));
        let mut t = 0.0;
        for (i, dt) in [0.1, 0.05, 0.3, 0.1, 0.2, 0.05, 0.15, 0.1, 0.3, 0.1]
            .iter()
            .cycle()
            .take(30)
            .enumerate()
        {
            t += dt;
            f.predict(*dt);
            if i > 10 {
                // After convergence the prediction lands on the true box before the update.
                let p = f.bbox();
                let truth = at(t);
                for k in 0..4 {
                    assert!(
                        (p[k] - truth[k]).abs() < 1.0,
                        "step {i}: {p:?} vs {truth:?}"
                    );
                }
            }
            f.update(at(t));
        }
        let v = f.velocity();
        assert!(
            (v[0] - 100.0).abs() < 2.0 && (v[1] - 50.0).abs() < 2.0,
            "{v:?}"
        );
        // One second without measurements: the box carries on at the learnt velocity.
        f.predict(1.0);
        let p = f.bbox();
        let truth = at(t + 1.0);
        assert!((p[0] - truth[0]).abs() < 3.0, "{p:?} vs {truth:?}");
    }

    #[test]
    fn size_never_collapses() {
        let mut f = BoxFilter::new([0.0, 0.0, 40.0, 40.0]);
        for i in 1..10 {
            let s = 40.0 - 4.0 * i as f32;
            f.predict(0.1);
            f.update([0.0, 0.0, s, s]);
        }
        f.predict(10.0);
        let b = f.bbox();
        assert!(b[2] - b[0] >= MIN_SIZE && b[3] - b[1] >= MIN_SIZE, "{b:?}");
        assert!(b.iter().all(|x| x.is_finite()));
    }
}
