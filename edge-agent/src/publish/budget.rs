//! The uplink byte budget of a metered link (a 4G pole): bytes handed to the broker per hour and
//! per day, over sliding windows of one-minute buckets (at most a day's 1,440 of them).
//!
//! The budget holds back evidence images only. Events are small and are the alert itself: they
//! always go (and count), and a spooled image waits until the windows have room for it; while it
//! waits the spool's retention and size bound apply to it like to any undelivered row.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const BUCKET: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Bytes sent over the last hour and day, against their limits.
#[derive(Debug)]
pub(super) struct UplinkBudget {
    per_hour: Option<u64>,
    per_day: Option<u64>,
    /// (start of the minute, bytes sent in it), oldest first.
    buckets: VecDeque<(Instant, u64)>,
}

impl UplinkBudget {
    /// `None` or 0: no limit for that window.
    pub(super) fn new(per_hour: Option<u64>, per_day: Option<u64>) -> Self {
        Self {
            per_hour: per_hour.filter(|b| *b > 0),
            per_day: per_day.filter(|b| *b > 0),
            buckets: VecDeque::new(),
        }
    }

    /// Whether any limit is set.
    pub(super) fn limited(&self) -> bool {
        self.per_hour.is_some() || self.per_day.is_some()
    }

    fn trim(&mut self, now: Instant) {
        while self
            .buckets
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= DAY)
        {
            self.buckets.pop_front();
        }
    }

    /// Bytes sent within `window` before `now`.
    pub(super) fn used(&self, now: Instant, window: Duration) -> u64 {
        self.buckets
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) < window)
            .map(|(_, b)| b)
            .sum()
    }

    /// Whether `bytes` more stay within every limit. A message larger than a whole limit goes
    /// when the window is empty, or it would wait for ever.
    pub(super) fn allows(&mut self, now: Instant, bytes: u64) -> bool {
        self.trim(now);
        [(self.per_hour, HOUR), (self.per_day, DAY)]
            .into_iter()
            .all(|(limit, window)| {
                limit.is_none_or(|l| {
                    let used = self.used(now, window);
                    used + bytes <= l || used == 0
                })
            })
    }

    /// Counts `bytes` handed to the link.
    pub(super) fn record(&mut self, now: Instant, bytes: u64) {
        match self.buckets.back_mut() {
            Some((start, b)) if now.saturating_duration_since(*start) < BUCKET => *b += bytes,
            _ => self.buckets.push_back((now, bytes)),
        }
        self.trim(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hour_and_the_day_limit_and_free_up_as_time_passes() {
        let t0 = Instant::now();
        let mut b = UplinkBudget::new(Some(1000), Some(1500));
        assert!(b.limited());
        assert!(b.allows(t0, 1000));
        b.record(t0, 900);
        assert!(!b.allows(t0, 200), "the hour is full");
        assert!(b.allows(t0, 100));
        // an hour later the hour has room again, but the day holds 900 of 1500
        let t1 = t0 + HOUR + BUCKET;
        assert!(b.allows(t1, 600));
        assert!(!b.allows(t1, 700), "the day is full");
        b.record(t1, 600);
        assert_eq!(b.used(t1, DAY), 1500);
        assert_eq!(b.used(t1, HOUR), 600);
        // a day after the first send only the second counts
        let t2 = t0 + DAY + BUCKET;
        assert_eq!(b.used(t2, DAY), 600);
        assert!(b.allows(t2, 400));
        // one message bigger than the limit goes once the windows are empty
        let t3 = t1 + DAY + BUCKET;
        assert!(b.allows(t3, 5000));
        assert!(!UplinkBudget::new(Some(0), None).limited());
    }

    #[test]
    fn a_day_of_sends_keeps_at_most_a_day_of_minute_buckets() {
        let t0 = Instant::now();
        let mut b = UplinkBudget::new(None, Some(u64::MAX));
        for k in 0..3000u32 {
            b.record(t0 + Duration::from_secs(30) * k, 10);
        }
        assert!(b.buckets.len() <= 1441, "{}", b.buckets.len());
    }
}
