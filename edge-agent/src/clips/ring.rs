//! One camera's ring of encoded access units, and the clips waiting to be cut from it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::events::Event;
use crate::source::{EncodedSink, VideoCodec};

/// Clips asked for but not yet cut, per camera; beyond this the oldest request is dropped (and
/// counted): a camera that raises more events than this within `post_s` is misconfigured.
const MAX_PENDING: usize = 64;

/// One picture's worth of H.264 or H.265 in Annex B (start codes), as the source received it.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    /// Media time on the clock of the frames' `stream_time`.
    pub stream_time: Duration,
    /// Wall clock when the source received it (live) or file start plus media time (files).
    pub capture_time: SystemTime,
    /// An IDR (H.265: IRAP) picture: a clip may start here.
    pub keyframe: bool,
    pub codec: VideoCodec,
    pub annexb: Arc<[u8]>,
}

/// The units of one clip, and whether they cover the whole window asked for.
#[derive(Debug)]
pub struct ClipCut {
    /// The event the clip is evidence for.
    pub event: Box<Event>,
    pub units: Vec<AccessUnit>,
    /// Picture size of the stream, when known.
    pub dims: Option<(u32, u32)>,
    /// False when the stream was lost or ended before `post_s`, or the ring no longer held the
    /// keyframe before `pre_s`: the clip holds what existed.
    pub complete: bool,
}

/// What a camera's ring holds and has given up, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    pub bytes: u64,
    pub units: u64,
    /// Requests waiting for their `post_s`.
    pub pending: u64,
    /// Access units dropped to stay within the byte bound before their time.
    pub evicted_for_bytes: u64,
    /// Requests dropped because too many were waiting.
    pub requests_dropped: u64,
}

struct Pending {
    event: Box<Event>,
    start: Duration,
    end: Duration,
    /// The window begins before the stream did (an event in its first `pre` seconds).
    before_stream: bool,
}

struct Ring {
    units: VecDeque<AccessUnit>,
    bytes: usize,
    max_bytes: usize,
    pre: Duration,
    post: Duration,
    dims: Option<(u32, u32)>,
    pending: Vec<Pending>,
    ready: Vec<ClipCut>,
    evicted_for_bytes: u64,
    requests_dropped: u64,
}

/// The handle a source pushes into and the event sink asks clips from; clones share one ring.
#[derive(Clone)]
pub struct EncodedTap(Arc<Mutex<Ring>>);

impl std::fmt::Debug for EncodedTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EncodedTap").field(&self.stats()).finish()
    }
}

/// The source's side: every access unit it receives, and the breaks in its stream.
impl EncodedSink for EncodedTap {
    /// Adds one access unit (Annex B, parameter sets before keyframes, as decoders are fed) of a
    /// `dims` picture.
    fn push(
        &self,
        stream_time: Duration,
        capture_time: SystemTime,
        codec: VideoCodec,
        annexb: &[u8],
        dims: (u32, u32),
    ) {
        let unit = AccessUnit {
            stream_time,
            capture_time,
            keyframe: codec.is_keyframe(annexb),
            codec,
            annexb: Arc::from(annexb),
        };
        let mut r = self.ring();
        if r.units.back().is_some_and(|u| u.codec != codec) {
            // a camera that changed codec: no clip mixes the two
            r.restart();
        }
        r.dims = Some(dims);
        r.bytes += unit.annexb.len();
        r.units.push_back(unit);
        r.evict();
        r.cut_due();
    }

    /// The stream broke (reconnect, new session): waiting clips are closed at what exists and the
    /// ring starts again, so no clip joins two sessions.
    fn gap(&self) {
        self.ring().restart();
    }
}

impl EncodedTap {
    /// A ring of at most `max_bytes` that keeps enough for clips of `pre` before and `post` after
    /// an event.
    pub fn new(max_bytes: usize, pre: Duration, post: Duration) -> Self {
        EncodedTap(Arc::new(Mutex::new(Ring {
            units: VecDeque::new(),
            bytes: 0,
            max_bytes,
            pre,
            post,
            dims: None,
            pending: Vec::new(),
            ready: Vec::new(),
            evicted_for_bytes: 0,
            requests_dropped: 0,
        })))
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // A panic elsewhere mid-push leaves a usable ring; the video keeps flowing.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream ended: waiting clips are closed at what exists.
    pub fn finish(&self) {
        self.ring().close_all();
    }

    /// Asks for a clip around `at` (the event frame's stream time), evidence for `event`.
    pub fn request(&self, event: Event, at: Duration) {
        let mut r = self.ring();
        if r.pending.len() >= MAX_PENDING {
            r.pending.remove(0);
            r.requests_dropped += 1;
        }
        let (pre, post) = (r.pre, r.post);
        r.pending.push(Pending {
            event: Box::new(event),
            start: at.saturating_sub(pre),
            end: at + post,
            before_stream: at < pre,
        });
        r.cut_due();
    }

    /// Clips whose window has passed (or whose stream broke), cut and ready to be written.
    pub fn take_ready(&self) -> Vec<ClipCut> {
        std::mem::take(&mut self.ring().ready)
    }

    pub fn stats(&self) -> RingStats {
        let r = self.ring();
        RingStats {
            bytes: r.bytes as u64,
            units: r.units.len() as u64,
            pending: r.pending.len() as u64,
            evicted_for_bytes: r.evicted_for_bytes,
            requests_dropped: r.requests_dropped,
        }
    }
}

impl Ring {
    /// Closes the waiting clips at what exists and empties the ring.
    fn restart(&mut self) {
        self.close_all();
        self.units.clear();
        self.bytes = 0;
    }

    fn latest(&self) -> Option<Duration> {
        self.units.back().map(|u| u.stream_time)
    }

    /// Drops whole groups of pictures no waiting or future clip can start in, then whatever the
    /// byte bound demands.
    fn evict(&mut self) {
        let Some(latest) = self.latest() else {
            return;
        };
        // A clip asked for from now on starts at or after `latest - post - pre`; one waiting
        // started at or after that too (else it would have been cut).
        let oldest_needed = latest.saturating_sub(self.pre + self.post);
        let oldest_needed = self
            .pending
            .iter()
            .map(|p| p.start)
            .fold(oldest_needed, Duration::min);
        loop {
            let second_key = self.units.iter().skip(1).position(|u| u.keyframe);
            let over = self.bytes > self.max_bytes;
            match second_key {
                Some(i) if over || self.units[i + 1].stream_time <= oldest_needed => {
                    if over && self.units[i + 1].stream_time > oldest_needed {
                        self.evicted_for_bytes += (i + 1) as u64;
                    }
                    for u in self.units.drain(..=i) {
                        self.bytes -= u.annexb.len();
                    }
                }
                None if over => {
                    // One group larger than the bound: keep its newest pictures (a clip then
                    // starts at the next keyframe).
                    if let Some(u) = self.units.pop_front() {
                        self.bytes -= u.annexb.len();
                        self.evicted_for_bytes += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// Moves the requests whose window the ring now covers to `ready`: once a unit past the end
    /// has come (with B-frames, pictures shown before the last one may still follow it).
    fn cut_due(&mut self) {
        let Some(latest) = self.latest() else {
            return;
        };
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].end < latest {
                let p = self.pending.remove(i);
                let cut = self.cut(p, true);
                self.ready.push(cut);
            } else {
                i += 1;
            }
        }
    }

    fn close_all(&mut self) {
        let latest = self.latest();
        for p in std::mem::take(&mut self.pending) {
            let reached = latest.is_some_and(|l| l >= p.end);
            let cut = self.cut(p, reached);
            self.ready.push(cut);
        }
    }

    /// The units from the last keyframe at or before the window's start to its end.
    fn cut(&self, p: Pending, reached_end: bool) -> ClipCut {
        let first = self
            .units
            .iter()
            .rposition(|u| u.keyframe && u.stream_time <= p.start);
        let covers_start = first.is_some() && !p.before_stream;
        let first = first.or_else(|| self.units.iter().position(|u| u.keyframe));
        let units = match first {
            Some(f) => self
                .units
                .iter()
                .skip(f)
                .take_while(|u| u.stream_time <= p.end)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        ClipCut {
            event: p.event,
            units,
            dims: self.dims,
            complete: reached_end && covers_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Event {
        crate::events::examples::example(crate::events::EventKind::WrongWay)
    }

    /// A made-up access unit: an IDR slice or a non-IDR slice of `size` bytes.
    fn unit(key: bool, size: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
        v.resize(size.max(5), 0xAA);
        v
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// 10 fps with a keyframe every `gop` pictures, from `from` to `to` ms.
    fn feed(tap: &EncodedTap, from: u64, to: u64, gop: u64, size: usize) {
        for t in (from..to).step_by(100) {
            tap.push(
                ms(t),
                SystemTime::UNIX_EPOCH,
                VideoCodec::H264,
                &unit((t / 100) % gop == 0, size),
                (64, 48),
            );
        }
    }

    #[test]
    fn a_clip_starts_at_the_keyframe_before_pre_and_ends_after_post() {
        let tap = EncodedTap::new(1 << 20, ms(2000), ms(1000));
        feed(&tap, 0, 5000, 10, 100);
        tap.request(example(), ms(4500));
        assert!(tap.take_ready().is_empty(), "post has not passed yet");
        feed(&tap, 5000, 5600, 10, 100);
        assert!(
            tap.take_ready().is_empty(),
            "the picture at the end has come, not yet one past it (B-frames may still follow)"
        );
        feed(&tap, 5600, 5700, 10, 100);
        let ready = tap.take_ready();
        assert_eq!(ready.len(), 1);
        let c = &ready[0];
        assert!(c.complete);
        // window 2.5 s .. 5.5 s: the keyframe at 2.0 s opens it
        assert_eq!(c.units.first().map(|u| u.stream_time), Some(ms(2000)));
        assert!(c.units[0].keyframe);
        assert_eq!(c.units.last().map(|u| u.stream_time), Some(ms(5500)));
        assert_eq!(c.units.len(), 36);
    }

    #[test]
    fn an_event_in_the_streams_first_seconds_has_no_full_past_and_says_so() {
        let tap = EncodedTap::new(1 << 20, ms(2000), ms(1000));
        feed(&tap, 0, 3000, 10, 100);
        tap.request(example(), ms(500));
        let ready = tap.take_ready();
        assert_eq!(ready.len(), 1);
        assert!(
            !ready[0].complete,
            "1.5 s of the 2 s before it never existed"
        );
        assert_eq!(ready[0].units.first().map(|u| u.stream_time), Some(ms(0)));
    }

    #[test]
    fn the_ring_keeps_whole_groups_and_stays_within_its_bytes() {
        let tap = EncodedTap::new(10_000, ms(1000), ms(1000));
        feed(&tap, 0, 60_000, 10, 200);
        let s = tap.stats();
        assert!(s.bytes <= 10_000, "{s:?}");
        // pre + post = 2 s and 1 s groups: at most 3 groups (30 units) are ever needed
        assert!(s.units <= 30 && s.units >= 20, "{s:?}");
        let ring = tap.ring();
        assert!(ring.units.front().is_some_and(|u| u.keyframe));
        drop(ring);
        // a byte bound tighter than the window evicts early, and says so
        let small = EncodedTap::new(3_000, ms(1000), ms(1000));
        feed(&small, 0, 10_000, 10, 200);
        assert!(small.stats().bytes <= 3_000);
        assert!(small.stats().evicted_for_bytes > 0);
    }

    #[test]
    fn a_lost_stream_closes_waiting_clips_at_what_exists_marked_incomplete() {
        let tap = EncodedTap::new(1 << 20, ms(1000), ms(5000));
        feed(&tap, 0, 3000, 10, 100);
        tap.request(example(), ms(2500));
        tap.gap();
        let ready = tap.take_ready();
        assert_eq!(ready.len(), 1);
        assert!(!ready[0].complete);
        assert_eq!(
            ready[0].units.first().map(|u| u.stream_time),
            Some(ms(1000))
        );
        assert_eq!(ready[0].units.last().map(|u| u.stream_time), Some(ms(2900)));
        assert_eq!(tap.stats().units, 0, "the next session starts a new ring");
        // and a stream that ends does the same
        feed(&tap, 10_000, 11_000, 10, 100);
        tap.request(example(), ms(10_500));
        tap.finish();
        assert!(!tap.take_ready()[0].complete);
    }

    #[test]
    fn too_many_waiting_requests_drop_the_oldest_and_count_it() {
        let tap = EncodedTap::new(1 << 20, ms(1000), ms(60_000));
        feed(&tap, 0, 1000, 10, 100);
        for i in 0..(MAX_PENDING as u64 + 3) {
            tap.request(example(), ms(500 + i));
        }
        let s = tap.stats();
        assert_eq!((s.pending, s.requests_dropped), (MAX_PENDING as u64, 3));
    }
}
