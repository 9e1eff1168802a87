//! Reconnect delays, for cameras and for the broker alike: exponential from a minimum to a maximum,
//! each spread by random jitter so a site's cameras do not all hammer a recovering NVR, and a fleet
//! of devices that lost the same broker does not reconnect in lockstep when it returns. It never
//! gives up: a camera or a broker that comes back after a day must be picked up again.

use std::time::Duration;

/// How each delay is spread around the doubling base `d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Uniform in `[d·(1−f), d·(1+f)]` (capped at the maximum): cameras, `f` from the config.
    Symmetric(f64),
    /// "Equal jitter", uniform in `[d/2, d]`: the broker connection, which must never wait
    /// longer than its maximum.
    Equal,
}

/// Exponential backoff with jitter. `next_delay` grows the delay; `reset` after a good session.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: Jitter,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, jitter: Jitter) -> Self {
        Self::with_rng(min, max, jitter, fastrand::Rng::new())
    }

    /// Deterministic jitter, for tests.
    pub fn with_seed(min: Duration, max: Duration, jitter: Jitter, seed: u64) -> Self {
        Self::with_rng(min, max, jitter, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(min: Duration, max: Duration, jitter: Jitter, rng: fastrand::Rng) -> Self {
        let min = min.max(Duration::from_millis(1));
        let jitter = match jitter {
            Jitter::Symmetric(f) => Jitter::Symmetric(f.clamp(0.0, 1.0)),
            Jitter::Equal => Jitter::Equal,
        };
        Self {
            min,
            max: max.max(min),
            jitter,
            attempt: 0,
            rng,
        }
    }

    /// The delay before the next attempt; each call doubles the base up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        match self.jitter {
            Jitter::Symmetric(f) => base
                .mul_f64(1.0 + f * (2.0 * self.rng.f64() - 1.0))
                .min(self.max),
            Jitter::Equal => {
                let half = base / 2;
                let spread = half.as_nanos().min(u128::from(u64::MAX)) as u64;
                half + Duration::from_nanos(self.rng.u64(0..=spread))
            }
        }
    }

    /// Back to the minimum delay, after a connection that delivered.
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

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn symmetric_grows_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::with_seed(MS(100), MS(1000), Jitter::Symmetric(0.2), 42);
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, base) in [100u64, 200, 400, 800, 1000, 1000, 1000, 1000]
            .iter()
            .enumerate()
        {
            let lo = MS(base * 8 / 10);
            let hi = MS((base * 12 / 10).min(1000));
            assert!(d[i] >= lo && d[i] <= hi, "delay {i} = {:?}", d[i]);
        }
        // Jitter actually varies the delays at the cap.
        assert!(d[4..].iter().any(|x| *x != d[4]), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= MS(120));
    }

    #[test]
    fn no_jitter_is_exact() {
        let mut b = Backoff::with_seed(MS(50), MS(120), Jitter::Symmetric(0.0), 7);
        let d: Vec<Duration> = (0..3).map(|_| b.next_delay()).collect();
        assert_eq!(d, vec![MS(50), MS(100), MS(120)]);
    }

    #[test]
    fn equal_jitter_doubles_up_to_the_cap_and_never_exceeds_it() {
        let (min, max) = (MS(100), Duration::from_secs(2));
        let mut b = Backoff::with_seed(min, max, Jitter::Equal, 7);
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
        assert_eq!(b.attempts(), 10);
        // Two devices with different seeds do not wait the same.
        let mut other = Backoff::with_seed(min, max, Jitter::Equal, 8);
        let theirs: Vec<_> = (0..10).map(|_| other.next_delay()).collect();
        assert_ne!(seen, theirs);
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
