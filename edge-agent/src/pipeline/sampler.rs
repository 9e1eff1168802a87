//! Brings a camera's frames down to its target rate before anything expensive happens, by stream
//! time rather than by frame count: variable-frame-rate files and cameras that skip frames still
//! give evenly spaced samples.

use std::time::Duration;

/// Admits frames at most `target_fps` times per second of stream time.
#[derive(Debug, Clone)]
pub struct FpsSampler {
    interval: Duration,
    /// A frame this early counts as on time: sources jitter by a few ms around their nominal rate.
    tolerance: Duration,
    next_due: Option<Duration>,
}

impl FpsSampler {
    /// `target_fps` ≤ 0 or not finite admits every frame.
    pub fn new(target_fps: f64) -> Self {
        let interval = if target_fps.is_finite() && target_fps > 0.0 {
            Duration::from_secs_f64(1.0 / target_fps)
        } else {
            Duration::ZERO
        };
        FpsSampler {
            interval,
            tolerance: interval / 10,
            next_due: None,
        }
    }

    /// Whether the frame at `t` is analysed.
    pub fn admit(&mut self, t: Duration) -> bool {
        let Some(due) = self.next_due else {
            self.next_due = Some(t + self.interval);
            return true;
        };
        if t + self.tolerance < due {
            return false;
        }
        // After a gap (or a stream time reset) start the grid again from this frame instead of
        // admitting a burst of frames to catch up.
        let next = due + self.interval;
        self.next_due = Some(if next + self.tolerance <= t {
            t + self.interval
        } else {
            next
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn admitted(s: &mut FpsSampler, times: &[u64]) -> Vec<u64> {
        times.iter().copied().filter(|&t| s.admit(ms(t))).collect()
    }

    #[test]
    fn halves_a_20fps_stream_to_10fps() {
        let mut s = FpsSampler::new(10.0);
        let times: Vec<u64> = (0..40).map(|i| i * 50).collect();
        let got = admitted(&mut s, &times);
        assert_eq!(got.len(), 20);
        assert!(got.windows(2).all(|w| w[1] - w[0] == 100), "{got:?}");
    }

    #[test]
    fn variable_frame_rate_keeps_even_spacing() {
        // Frames with jittered intervals of 30–70 ms, as in the VFR city clips.
        let mut t = 0;
        let mut times = Vec::new();
        for i in 0..200u64 {
            times.push(t);
            t += 30 + (i * 37 % 41);
        }
        let mut s = FpsSampler::new(5.0);
        let got = admitted(&mut s, &times);
        let span = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
        let rate = got.len() as f64 / span;
        assert!((rate - 5.0).abs() < 0.5, "rate {rate}");
        assert!(got.windows(2).all(|w| w[1] - w[0] >= 150), "{got:?}");
    }

    #[test]
    fn slower_source_passes_every_frame() {
        let mut s = FpsSampler::new(10.0);
        let times: Vec<u64> = (0..10).map(|i| i * 200).collect();
        assert_eq!(admitted(&mut s, &times), times);
    }

    #[test]
    fn gap_restarts_the_grid_without_a_burst() {
        let mut s = FpsSampler::new(10.0);
        let mut times: Vec<u64> = (0..10).map(|i| i * 40).collect();
        times.extend((0..10).map(|i| 5000 + i * 40));
        let got = admitted(&mut s, &times);
        let after: Vec<u64> = got.iter().copied().filter(|&t| t >= 5000).collect();
        assert_eq!(after, vec![5000, 5120, 5200, 5320]);
    }

    #[test]
    fn zero_fps_admits_everything() {
        let mut s = FpsSampler::new(0.0);
        let times: Vec<u64> = (0..10).collect();
        assert_eq!(admitted(&mut s, &times), times);
    }
}
