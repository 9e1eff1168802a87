//! The `stream_time` of a live source, written once for RTSP and GStreamer: media time (RTP, PTS)
//! anchored at the time since the source opened, so a reconnect's gap shows; never backwards; and
//! re-anchored when the media time jumps within a session — back (an NVR looping a recording, a
//! camera restarting its clock) or far ahead — instead of freezing or leaping. Such a jump is a
//! discontinuity: the pipeline ends the camera's tracks so no motion is inferred across it.

use std::time::{Duration, Instant};

/// A forward step of media time larger than this within a session is a jump, not a late frame.
pub(crate) const MAX_MEDIA_STEP: Duration = Duration::from_secs(5);

/// Stamps one live source's pictures.
#[derive(Debug)]
pub(crate) struct LiveClock {
    opened: Instant,
    last: Option<Duration>,
    /// (media time, stream_time) of the session's anchor picture.
    base: Option<(Duration, Duration)>,
}

impl LiveClock {
    pub(super) fn new(opened: Instant) -> Self {
        Self {
            opened,
            last: None,
            base: None,
        }
    }

    /// A new session (reconnect): its media time starts afresh.
    pub(super) fn new_session(&mut self) {
        self.base = None;
    }

    /// The stream_time of a picture with media time `media` (None: no timestamp, use receipt),
    /// received `now`; and whether it follows a jump in the media time.
    pub(super) fn stamp(&mut self, media: Option<Duration>, now: Instant) -> (Duration, bool) {
        let since_open = now.saturating_duration_since(self.opened);
        let floor = self.last.map(|l| l + Duration::from_micros(1));
        let mut jumped = false;
        let t = match media {
            None => since_open,
            Some(m) => {
                let anchor =
                    |t_floor: Option<Duration>| (m, since_open.max(t_floor.unwrap_or_default()));
                // a new session's first picture is anchored, not a jump (its gap is the outage)
                let fresh = self.base.is_none();
                let (m0, t0) = *self.base.get_or_insert_with(|| anchor(floor));
                let t = m.checked_sub(m0).map(|d| t0 + d);
                match (t, self.last) {
                    (Some(t), Some(last)) if !fresh && t > last + MAX_MEDIA_STEP => {
                        jumped = true;
                        None
                    }
                    (Some(t), _) => Some(t),
                    (None, _) => {
                        jumped = true;
                        None
                    }
                }
                .unwrap_or_else(|| {
                    let (m0, t0) = anchor(floor);
                    self.base = Some((m0, t0));
                    t0
                })
            }
        };
        let t = match floor {
            Some(f) if t < f => f,
            _ => t,
        };
        self.last = Some(t);
        (t, jumped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn media_time_is_anchored_at_open_and_follows_the_media_clock() {
        let open = Instant::now();
        let mut c = LiveClock::new(open);
        let (t0, j0) = c.stamp(Some(MS(90_000)), open + MS(500));
        let (t1, j1) = c.stamp(Some(MS(90_100)), open + MS(640));
        assert_eq!((t0, t1), (MS(500), MS(600)), "receipt jitter does not show");
        assert!(!j0 && !j1);
    }

    #[test]
    fn a_loop_back_in_media_time_is_a_discontinuity_not_a_frozen_clock() {
        let open = Instant::now();
        let mut c = LiveClock::new(open);
        c.stamp(Some(MS(60_000)), open);
        let (before, _) = c.stamp(Some(MS(61_000)), open + MS(1000));
        // the recording starts again from its beginning
        let (at_seam, jumped) = c.stamp(Some(MS(0)), open + MS(1100));
        assert!(jumped);
        assert_eq!(at_seam, MS(1100), "re-anchored at the time since open");
        assert!(at_seam > before);
        let (next, jumped) = c.stamp(Some(MS(100)), open + MS(1200));
        assert!(!jumped);
        assert_eq!(next, MS(1200), "and the media clock runs on from there");
    }

    #[test]
    fn a_leap_ahead_is_a_discontinuity_and_a_small_step_is_not() {
        let open = Instant::now();
        let mut c = LiveClock::new(open);
        c.stamp(Some(MS(0)), open);
        let (t, jumped) = c.stamp(Some(MS(4_000)), open + MS(200));
        assert!(
            !jumped,
            "a late frame after a 4 s hole is still the same session"
        );
        assert_eq!(t, MS(4_000));
        let (t, jumped) = c.stamp(Some(MS(3_600_000)), open + MS(300));
        assert!(jumped);
        assert!(t > MS(4_000) && t < MS(5_000), "{t:?}");
    }

    #[test]
    fn a_new_session_continues_after_the_last_time_and_never_goes_back() {
        let open = Instant::now();
        let mut c = LiveClock::new(open);
        c.stamp(Some(MS(10_000)), open);
        let (last, _) = c.stamp(Some(MS(12_000)), open + MS(100));
        assert_eq!(last, MS(2_000));
        c.new_session();
        // reconnected quickly: the time since open (300 ms) is behind the last stream_time
        let (t, jumped) = c.stamp(Some(MS(0)), open + MS(300));
        assert!(
            !jumped,
            "a reconnect is reported by the source, not as a jump"
        );
        assert!(t > last);
        // no timestamps at all: receipt time, still never backwards
        let (u, _) = c.stamp(None, open + MS(400));
        assert!(u > t);
    }
}
