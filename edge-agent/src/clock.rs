//! Time behind a trait, so backoff, spool timestamps and events can be driven by a test clock
//! (the Moonfire NVR `Clocks` idea in DESIGN.md) instead of sleeping in tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Wall-clock UTC for event timestamps and monotonic time for intervals.
pub trait Clock: Send + Sync + 'static {
    /// Wall time; may jump when NTP corrects it, so never use it for intervals.
    fn now_utc(&self) -> DateTime<Utc>;
    /// Monotonic time for timeouts, backoff and latency.
    fn monotonic(&self) -> Instant;
    /// Waits until `monotonic()` reaches `deadline`; false, at once, when `stop` is set.
    fn sleep_until(&self, deadline: Instant, stop: &AtomicBool) -> bool;
}

/// The real clocks of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, deadline: Instant, stop: &AtomicBool) -> bool {
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }
}

/// A clock that only moves when told to, for deterministic tests.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(DateTime<Utc>, Instant)>,
}

impl ManualClock {
    /// Starts at the given wall time.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new((start, Instant::now())),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        s.1 += by;
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
    fn monotonic(&self) -> Instant {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
    /// Simulated time: the clock jumps to the deadline.
    fn sleep_until(&self, deadline: Instant, stop: &AtomicBool) -> bool {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let ahead = deadline.saturating_duration_since(self.monotonic());
        self.advance(ahead);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = ManualClock::new(start);
        let m0 = c.monotonic();
        assert_eq!(c.now_utc(), start);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.monotonic() - m0, Duration::from_millis(1500));
        assert_eq!((c.now_utc() - start).num_milliseconds(), 1500);
    }
}
