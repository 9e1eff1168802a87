//! Reconnect delays: exponential from a minimum to a maximum, each spread by random jitter so a
//! site's cameras do not all hammer a recovering NVR or switch at the same instant. It never gives
//! up: a camera that comes back after a day must be picked up again.

use std::time::Duration;

/// Exponential backoff with jitter. `next_delay` grows the delay; `reset` after a good session.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, jitter: f64) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Self::with_seed(min, max, jitter, seed)
    }

    /// Deterministic jitter, for tests.
    pub fn with_seed(min: Duration, max: Duration, jitter: f64, seed: u64) -> Self {
        let min = min.max(Duration::from_millis(1));
        Self {
            min,
            max: max.max(min),
            jitter: jitter.clamp(0.0, 1.0),
            current: min,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; each call doubles the base up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        // xorshift64: enough randomness to de-synchronise cameras, no dependency needed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        base.mul_f64(factor).min(self.max)
    }

    /// Back to the minimum delay, after a connection that delivered frames.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_bounded_jitter_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::with_seed(ms(100), ms(1000), 0.2, 42);
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, base) in [100u64, 200, 400, 800, 1000, 1000, 1000, 1000]
            .iter()
            .enumerate()
        {
            let lo = ms(base * 8 / 10);
            let hi = ms((base * 12 / 10).min(1000));
            assert!(d[i] >= lo && d[i] <= hi, "delay {i} = {:?}", d[i]);
        }
        // Jitter actually varies the delays at the cap.
        assert!(d[4..].iter().any(|x| *x != d[4]), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= ms(120));
    }

    #[test]
    fn no_jitter_is_exact() {
        let ms = Duration::from_millis;
        let mut b = Backoff::with_seed(ms(50), ms(120), 0.0, 7);
        let d: Vec<Duration> = (0..3).map(|_| b.next_delay()).collect();
        assert_eq!(d, vec![ms(50), ms(100), ms(120)]);
    }
}
