//! Decides which tracked vehicles get a plate read on each frame, and keeps each track's vote.
//!
//! Plate reading is the most expensive stage, so a track is read only until its vote is confident
//! (then never again), at most every `min_interval`; the plate detector runs at most once per
//! `min_call_interval` of stream time, on at most `max_reads_per_frame` vehicles packed into one
//! input (`crate::anpr::mosaic`) — the least-read tracks first (round-robin: every readable track gets
//! its turn before any gets a second one), the largest first among equals, since near plates read
//! best. Per-frame plate work is thereby bounded: one detector call and a few OCR crops.

use std::collections::HashMap;
use std::time::Duration;

use crate::plate::{PlateHints, PlateRead, TrackVote, VehicleKind, VoteConfig, VoteResult};

/// Scheduling settings.
#[derive(Debug, Clone)]
pub struct PlateSchedule {
    /// Tracks read per frame at most; their crops share one plate-detector call. Default 4: a
    /// 2×2 grid on the detector's 640×640 input still upscales a 1006×720 camera's vehicles 2×
    /// or more.
    pub max_reads_per_frame: usize,
    /// Least stream time between two plate-detector calls of one camera. Default 0.2 s: every
    /// other frame at 10 fps, every frame at 5 fps; one call costs about as much as the frame's
    /// vehicle detection.
    pub min_call_interval: Duration,
    /// Least time between two reads of one track. Default 0.2 s.
    pub min_interval: Duration,
    /// Reads of one track at most (a plate that never reads stops costing time). Default 25.
    pub max_attempts: u32,
    /// Vehicle boxes shorter than this (pixels) are too far to read. Default 40.
    pub min_box_height: f32,
    /// A track that ends without a confident vote is still reported (marked not confident) when
    /// its consensus confidence reaches this; below it the reads are noise. Default 0.3.
    pub min_report_confidence: f32,
    /// Plate boxes shorter than this (pixels) are not read: too few pixels per character. Default 10.
    pub min_plate_height: f32,
    /// Voting and stop rule.
    pub vote: VoteConfig,
}

impl Default for PlateSchedule {
    fn default() -> Self {
        PlateSchedule {
            max_reads_per_frame: 4,
            min_call_interval: Duration::from_millis(200),
            min_interval: Duration::from_millis(200),
            max_attempts: 25,
            min_box_height: 40.0,
            min_report_confidence: 0.3,
            min_plate_height: 10.0,
            vote: VoteConfig {
                max_reads: 16,
                ..VoteConfig::default()
            },
        }
    }
}

/// A vehicle that could be read this frame.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub track_id: u64,
    pub bbox: [f32; 4],
    pub kind: VehicleKind,
}

struct TrackPlates<E> {
    vote: TrackVote<E>,
    attempts: u32,
    last_attempt: Option<Duration>,
    reported: bool,
}

/// Per-camera plate state of every live track.
pub struct PlateScheduler<E> {
    cfg: PlateSchedule,
    tracks: HashMap<u64, TrackPlates<E>>,
    last_call: Option<Duration>,
}

impl<E: Clone> PlateScheduler<E> {
    pub fn new(cfg: PlateSchedule) -> Self {
        PlateScheduler {
            cfg,
            tracks: HashMap::new(),
            last_call: None,
        }
    }

    /// Indices into `candidates` to read now; their attempts are counted.
    pub fn select(&mut self, t: Duration, candidates: &[Candidate]) -> Vec<usize> {
        if self
            .last_call
            .is_some_and(|last| t.saturating_sub(last) < self.cfg.min_call_interval)
        {
            return Vec::new();
        }
        let mut eligible: Vec<(u32, f32, usize)> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let h = c.bbox[3] - c.bbox[1];
            let w = c.bbox[2] - c.bbox[0];
            if h.is_nan() || h < self.cfg.min_box_height {
                continue;
            }
            let state = self.tracks.get(&c.track_id);
            if let Some(s) = state {
                let too_soon = s
                    .last_attempt
                    .is_some_and(|last| t.saturating_sub(last) < self.cfg.min_interval);
                if s.reported || s.attempts >= self.cfg.max_attempts || too_soon {
                    continue;
                }
            }
            eligible.push((state.map_or(0, |s| s.attempts), -(w * h), i));
        }
        eligible.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        eligible.truncate(self.cfg.max_reads_per_frame);
        if !eligible.is_empty() {
            self.last_call = Some(t);
        }
        for &(_, _, i) in &eligible {
            let c = candidates[i];
            let s = self.state(c.track_id, c.kind);
            s.attempts += 1;
            s.last_attempt = Some(t);
        }
        eligible.into_iter().map(|e| e.2).collect()
    }

    fn state(&mut self, track_id: u64, kind: VehicleKind) -> &mut TrackPlates<E> {
        let vote_cfg = self.cfg.vote;
        self.tracks.entry(track_id).or_insert_with(|| {
            let mut vote = TrackVote::new(vote_cfg);
            vote.set_hints(PlateHints {
                vehicle: kind,
                rows: None,
            });
            TrackPlates {
                vote,
                attempts: 0,
                last_attempt: None,
                reported: false,
            }
        })
    }

    /// Adds a read; returns the consensus the moment it becomes confident (once per track).
    pub fn add(
        &mut self,
        track_id: u64,
        kind: VehicleKind,
        read: PlateRead<E>,
    ) -> Option<VoteResult<E>> {
        let s = self.state(track_id, kind);
        s.vote.add(read);
        if s.reported {
            return None;
        }
        let result = s.vote.result().filter(|r| r.confident)?;
        s.reported = true;
        Some(result)
    }

    /// The track ended: its consensus if it was never reported (possibly not confident — the
    /// event says so), and its state is dropped.
    pub fn end(&mut self, track_id: u64) -> Option<VoteResult<E>> {
        let s = self.tracks.remove(&track_id)?;
        if s.reported {
            return None;
        }
        s.vote
            .result()
            .filter(|r| r.confidence >= self.cfg.min_report_confidence)
    }

    /// The settings in force.
    pub fn schedule(&self) -> &PlateSchedule {
        &self.cfg
    }

    /// The current consensus text of a track, for rule events about it.
    pub fn consensus(&self, track_id: u64) -> Option<VoteResult<E>> {
        self.tracks.get(&track_id)?.vote.result()
    }

    /// Tracks with plate state (bounded by live tracks: ended tracks are removed).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no track has plate state.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_per_frame() -> PlateSchedule {
        PlateSchedule {
            max_reads_per_frame: 3,
            min_call_interval: Duration::ZERO,
            ..PlateSchedule::default()
        }
    }

    fn cand(id: u64, h: f32) -> Candidate {
        Candidate {
            track_id: id,
            bbox: [0.0, 0.0, h, h],
            kind: VehicleKind::Car,
        }
    }

    fn read(text: &str, conf: f32) -> PlateRead<u32> {
        PlateRead {
            text: text.into(),
            char_conf: vec![conf; text.len()],
            confidence: conf,
            valid: true,
            evidence: 0,
            quality: conf,
        }
    }

    #[test]
    fn largest_unread_first_and_budget() {
        let mut s: PlateScheduler<u32> = PlateScheduler::new(three_per_frame());
        let c = [
            cand(1, 50.0),
            cand(2, 200.0),
            cand(3, 100.0),
            cand(4, 20.0),
            cand(5, 60.0),
        ];
        let got = s.select(Duration::ZERO, &c);
        // Track 4 is too small; three largest of the rest.
        assert_eq!(got, vec![1, 2, 4]);
    }

    #[test]
    fn unread_track_first_after_interval() {
        let mut s: PlateScheduler<u32> = PlateScheduler::new(three_per_frame());
        let c = [cand(1, 50.0), cand(2, 200.0), cand(3, 100.0), cand(5, 60.0)];
        assert_eq!(s.select(Duration::ZERO, &c), vec![1, 2, 3]);
        // 100 ms later only the never-read track 1 is eligible.
        assert_eq!(s.select(Duration::from_millis(100), &c), vec![0]);
        // 300 ms later: all eligible; fewest attempts first (all have one), then size.
        assert_eq!(s.select(Duration::from_millis(300), &c), vec![1, 2, 3]);
    }

    #[test]
    fn stops_reading_once_confident_and_reports_once() {
        let mut s: PlateScheduler<u32> = PlateScheduler::new(three_per_frame());
        let c = [cand(7, 100.0)];
        let mut reported = 0;
        for i in 0..5u64 {
            let t = Duration::from_millis(300 * i);
            if s.select(t, &c).is_empty() {
                break;
            }
            if s.add(7, VehicleKind::Car, read("51F12345", 0.95)).is_some() {
                reported += 1;
            }
        }
        assert_eq!(reported, 1);
        assert!(s.select(Duration::from_secs(10), &c).is_empty());
        assert_eq!(s.consensus(7).map(|r| r.text), Some("51F12345".into()));
        // Already reported: nothing more at the end, and the state is gone.
        assert!(s.end(7).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn unconfident_track_reported_at_end_and_attempts_capped() {
        let cfg = PlateSchedule {
            max_attempts: 2,
            ..three_per_frame()
        };
        let mut s: PlateScheduler<u32> = PlateScheduler::new(cfg);
        let c = [cand(9, 100.0)];
        assert_eq!(s.select(Duration::ZERO, &c), vec![0]);
        assert!(s.add(9, VehicleKind::Car, read("30K31896", 0.6)).is_none());
        // A noise track: one weak read is never reported.
        assert_eq!(s.select(Duration::ZERO, &[cand(10, 100.0)]), vec![0]);
        assert!(s.add(10, VehicleKind::Car, read("51F12345", 0.1)).is_none());
        assert!(s.end(10).is_none());
        assert_eq!(s.select(Duration::from_secs(1), &c), vec![0]);
        assert!(s.select(Duration::from_secs(2), &c).is_empty());
        let end = s.end(9).map(|r| (r.text, r.confident));
        assert_eq!(end, Some(("30K31896".into(), false)));
    }

    #[test]
    fn one_call_per_interval_and_every_track_gets_its_turn() {
        let cfg = PlateSchedule {
            max_reads_per_frame: 2,
            min_call_interval: Duration::from_millis(200),
            min_interval: Duration::ZERO,
            ..PlateSchedule::default()
        };
        let mut s: PlateScheduler<u32> = PlateScheduler::new(cfg);
        let c = [
            cand(1, 300.0),
            cand(2, 200.0),
            cand(3, 100.0),
            cand(4, 50.0),
        ];
        let at = |ms: u64| Duration::from_millis(ms);
        assert_eq!(s.select(at(0), &c), vec![0, 1]);
        // The next frame (100 ms) is inside the call interval: nothing, however many wait.
        assert!(s.select(at(100), &c).is_empty());
        // Then the two not yet read, although smaller, before the big ones get a second read.
        assert_eq!(s.select(at(200), &c), vec![2, 3]);
        assert_eq!(s.select(at(400), &c), vec![0, 1]);
        // Frames with nothing to read do not use up the interval.
        let mut s: PlateScheduler<u32> = PlateScheduler::new(s.schedule().clone());
        assert!(s.select(at(0), &[cand(9, 10.0)]).is_empty());
        assert_eq!(s.select(at(100), &c), vec![0, 1]);
    }
}
