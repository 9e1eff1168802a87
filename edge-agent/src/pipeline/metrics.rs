//! Per-stage timing of the pipeline, kept as fixed log-spaced histograms: constant memory however
//! long the agent runs, percentiles good to a few per cent, and the same buckets the Prometheus
//! endpoint can expose.

use std::time::Duration;

/// Bucket upper bounds grow by this factor (≈ 9 % resolution).
const GROWTH: f64 = 1.09;
/// Smallest bucket bound: 10 µs.
const FIRST_US: f64 = 10.0;
const BUCKETS: usize = 160; // up to ≈ 10 µs × 1.09^159 ≈ 9 × 10^6 s … far beyond any stage

/// Per-stage times and counts of one camera.
#[derive(Debug, Clone, Default)]
pub struct CameraStats {
    pub processed: u64,
    pub detect: Histogram,
    pub track: Histogram,
    pub plates: Histogram,
    pub rules: Histogram,
    /// Whole frame, from taking it off the queue to the last observation.
    pub frame: Histogram,
    /// From receipt of the frame by the decode thread to each observation it produced.
    pub capture_to_event: Histogram,
    /// From receipt of the frame by the decode thread to the end of its processing, for every
    /// frame: the latency any event of it would have, queue wait included.
    pub capture_to_done: Histogram,
    pub plate_reads: u64,
    /// Frames whose plates were searched on the main stream's frame of the same moment.
    pub main_stream_frames: u64,
    pub plates_reported: u64,
    pub max_tracks: usize,
    /// Model calls: the detector, the plate detector, and plate crops through the OCR.
    pub detector_calls: u64,
    pub plate_detector_calls: u64,
    pub ocr_crops: u64,
    /// Vehicle crops searched for a plate (several per plate-detector call).
    pub vehicles_searched: u64,
    /// ONNX Runtime time alone (session runs, no pre/postprocessing) of the detector and of the
    /// plate models.
    pub ort_detect: Duration,
    pub ort_plates: Duration,
}

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_us: f64,
    max_us: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum_us: 0.0,
            max_us: 0.0,
        }
    }
}

fn bound_us(i: usize) -> f64 {
    FIRST_US * GROWTH.powi(i as i32)
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        let i = if us <= FIRST_US {
            0
        } else {
            (((us / FIRST_US).ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
        };
        self.counts[i] += 1;
        self.total += 1;
        self.sum_us += us;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Mean, or zero without samples.
    pub fn mean(&self) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.sum_us / self.total as f64 / 1e6)
    }

    /// Largest sample.
    pub fn max(&self) -> Duration {
        Duration::from_secs_f64(self.max_us / 1e6)
    }

    /// The `q`-quantile (0–1): the upper bound of the bucket holding it, capped at the maximum.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_secs_f64(bound_us(i).min(self.max_us) / 1e6);
            }
        }
        self.max()
    }

    /// Cumulative counts at each bucket bound (seconds), for Prometheus `_bucket` lines; only
    /// bounds up to the largest sample are returned.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            out.push((bound_us(i) / 1e6, seen));
            if seen == self.total {
                break;
            }
        }
        out
    }

    /// Sum of all samples in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_bucket_resolution() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1e3;
        let p99 = h.quantile(0.99).as_secs_f64() * 1e3;
        assert!((50.0..=50.0 * GROWTH).contains(&p50), "p50 {p50}");
        assert!((99.0..=100.0).contains(&p99), "p99 {p99}");
        assert_eq!(h.max(), Duration::from_millis(100));
        assert_eq!(h.count(), 100);
        assert!((h.mean().as_secs_f64() - 0.0505).abs() < 1e-6);
    }

    #[test]
    fn empty_and_merge() {
        let mut a = Histogram::default();
        assert_eq!(a.quantile(0.99), Duration::ZERO);
        let mut b = Histogram::default();
        b.record(Duration::from_micros(5));
        b.record(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.quantile(1.0), Duration::from_secs(2));
        let cum = a.cumulative();
        assert_eq!(cum.last().map(|c| c.1), Some(2));
        assert_eq!(cum.first().map(|c| c.1), Some(1));
    }
}
