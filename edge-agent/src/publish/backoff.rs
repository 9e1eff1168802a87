//! Reconnect delays: exponential with jitter, so a fleet of devices that lost the same broker does
//! not reconnect in lockstep when it returns.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is uniform in `[d/2, d]`, `d` doubling from
/// `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// Same, with a fixed random seed (tests).
    pub fn with_seed(min: Duration, max: Duration, seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            ..Self::new(min, max)
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter_ns = self
            .rng
            .u64(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_nanos(jitter_ns)
    }

    /// Call after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut b = Backoff::with_seed(min, max, 7);
        let mut ceiling = min;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            seen.push(d);
            ceiling = (ceiling * 2).min(max);
        }
        assert!(seen[9] >= Duration::from_secs(1));
        // Jitter: two devices with different seeds do not wait the same.
        let mut other = Backoff::with_seed(min, max, 8);
        let theirs: Vec<_> = (0..10).map(|_| other.next_delay()).collect();
        assert_ne!(seen, theirs);
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
