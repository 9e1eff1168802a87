//! `/metrics`: the live hub in the Prometheus text exposition format 0.0.4.
//!
//! Latency histograms are kept in fine log-spaced buckets ([`crate::pipeline::metrics`]); they are
//! exposed on a fixed set of `le` bounds so every scrape has the same series. A bound's count is the
//! samples at or below the largest fine bucket bound not above it (at most 9 % low in value).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::pipeline::live::{CameraLive, StreamState};
use crate::pipeline::metrics::Histogram;
use crate::publish::DeliveryStats;

/// `le` bounds of the stage latency histograms, in seconds.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", fmt_value(value));
    }
}

fn fmt_value(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.is_nan() {
        "NaN".into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Cumulative counts at each of `bounds` (seconds) from a fine histogram.
pub fn coarse_buckets(h: &Histogram, bounds: &[f64]) -> Vec<u64> {
    let fine = h.cumulative();
    let total = h.count();
    bounds
        .iter()
        .map(|&b| match fine.last() {
            Some(&(last, _)) if b >= last => total,
            _ => fine
                .iter()
                .take_while(|(fb, _)| *fb <= b * (1.0 + 1e-9))
                .last()
                .map_or(0, |&(_, c)| c),
        })
        .collect()
}

/// One per-camera value of a clip ring.
type RingValue = fn(&crate::clips::RingStats) -> u64;

/// Each camera's clip ring (memory held, bounded by `[clips] ring_mb`) and the clips made.
fn clip_metrics(o: &mut Out, c: &crate::clips::ClipStats) {
    let per_camera: [(&str, &str, RingValue); 4] = [
        (
            "edge_agent_clip_ring_bytes",
            "Encoded video held in memory for event clips ([clips] ring_mb bounds it).",
            |r| r.bytes,
        ),
        (
            "edge_agent_clip_ring_units",
            "Access units (pictures) held in the clip ring.",
            |r| r.units,
        ),
        (
            "edge_agent_clip_requests_waiting",
            "Clips waiting for their post_s.",
            |r| r.pending,
        ),
        (
            "edge_agent_clip_ring_evicted_total",
            "Pictures dropped from the ring before their time to stay within ring_mb.",
            |r| r.evicted_for_bytes,
        ),
    ];
    for (name, help, get) in per_camera {
        o.head(
            name,
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            },
            help,
        );
        for (camera, ring) in &c.rings {
            o.sample(name, &[("camera", camera)], get(ring) as f64);
        }
    }
    for (name, help, v) in [
        (
            "edge_agent_clips_made_total",
            "Event clips written to the device's clip store.",
            c.counts.made,
        ),
        (
            "edge_agent_clips_incomplete_total",
            "Clips closed early (stream lost or ended before post_s).",
            c.counts.incomplete,
        ),
        (
            "edge_agent_clips_failed_total",
            "Clips that could not be made (no keyframe kept, no disk room).",
            c.counts.failed,
        ),
    ] {
        o.head(name, "counter", help);
        o.sample(name, &[], v as f64);
    }
}

/// Renders everything `/metrics` shows.
pub fn render(
    cameras: &[CameraLive],
    delivery: Option<&DeliveryStats>,
    events: &BTreeMap<String, u64>,
    clips: Option<&crate::clips::ClipStats>,
    uptime: Duration,
) -> String {
    let mut o = Out(String::with_capacity(16 * 1024));
    o.head(
        "edge_agent_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
    );
    o.sample("edge_agent_uptime_seconds", &[], uptime.as_secs_f64());

    o.head(
        "edge_agent_camera_up",
        "gauge",
        "1 while the camera's stream delivers frames, else 0.",
    );
    for c in cameras {
        let up = matches!(c.stream, StreamState::Up { .. });
        o.sample(
            "edge_agent_camera_up",
            &[("camera", &c.id), ("state", c.stream.as_str())],
            if up { 1.0 } else { 0.0 },
        );
    }
    o.head(
        "edge_agent_camera_fps",
        "gauge",
        "Frames processed per second over the last 5 s.",
    );
    for c in cameras {
        o.sample("edge_agent_camera_fps", &[("camera", &c.id)], c.fps());
    }
    o.head(
        "edge_agent_camera_target_fps",
        "gauge",
        "Configured frames per second to analyse.",
    );
    for c in cameras {
        o.sample(
            "edge_agent_camera_target_fps",
            &[("camera", &c.id)],
            c.target_fps,
        );
    }
    type Counter = (&'static str, &'static str, fn(&CameraLive) -> u64);
    let counters: [Counter; 7] = [
        (
            "edge_agent_camera_frames_decoded_total",
            "Frames decoded by the camera's source.",
            |c| c.decoded,
        ),
        (
            "edge_agent_camera_frames_sampled_total",
            "Decoded frames admitted by the sampler for analysis.",
            |c| c.sampled,
        ),
        (
            "edge_agent_camera_frames_processed_total",
            "Frames that went through every stage.",
            |c| c.stats.processed,
        ),
        (
            "edge_agent_camera_frames_failed_total",
            "Frames whose processing failed (logged).",
            |c| c.failed,
        ),
        (
            "edge_agent_camera_decode_errors_total",
            "Pictures or packets the decoder rejected.",
            |c| c.source.decode_errors,
        ),
        (
            "edge_agent_camera_reconnects_total",
            "Connection losses of the camera's stream.",
            |c| c.source.reconnects,
        ),
        (
            "edge_agent_camera_stalls_total",
            "Times no frame arrived within the stall timeout.",
            |c| c.source.stalls,
        ),
    ];
    for (name, help, get) in counters {
        o.head(name, "counter", help);
        for c in cameras {
            o.sample(name, &[("camera", &c.id)], get(c) as f64);
        }
    }
    o.head(
        "edge_agent_camera_frames_dropped_total",
        "counter",
        "Frames dropped: reason=\"queue\" sampled frames dropped because inference was behind, reason=\"source\" frames the source dropped because the pipeline was behind.",
    );
    for c in cameras {
        o.sample(
            "edge_agent_camera_frames_dropped_total",
            &[("camera", &c.id), ("reason", "queue")],
            c.dropped as f64,
        );
        o.sample(
            "edge_agent_camera_frames_dropped_total",
            &[("camera", &c.id), ("reason", "source")],
            c.source.dropped as f64,
        );
    }
    o.head(
        "edge_agent_camera_last_frame_age_seconds",
        "gauge",
        "Seconds since the camera's last processed frame.",
    );
    for c in cameras {
        if let Some(age) = c.last_frame_age() {
            o.sample(
                "edge_agent_camera_last_frame_age_seconds",
                &[("camera", &c.id)],
                age.as_secs_f64(),
            );
        }
    }

    let name = "edge_agent_stage_latency_seconds";
    o.head(
        name,
        "histogram",
        "Time per frame in each pipeline stage; stage=\"frame\" is the whole frame, stage=\"capture_to_event\" from receipt of the frame to each event it produced.",
    );
    for c in cameras {
        let s = &c.stats;
        for (stage, h) in [
            ("detect", &s.detect),
            ("track", &s.track),
            ("plates", &s.plates),
            ("rules", &s.rules),
            ("frame", &s.frame),
            ("capture_to_event", &s.capture_to_event),
        ] {
            let bucket = format!("{name}_bucket");
            for (b, n) in LATENCY_BOUNDS.iter().zip(coarse_buckets(h, LATENCY_BOUNDS)) {
                let le = fmt_value(*b);
                o.sample(
                    &bucket,
                    &[("camera", &c.id), ("stage", stage), ("le", &le)],
                    n as f64,
                );
            }
            o.sample(
                &bucket,
                &[("camera", &c.id), ("stage", stage), ("le", "+Inf")],
                h.count() as f64,
            );
            o.sample(
                &format!("{name}_sum"),
                &[("camera", &c.id), ("stage", stage)],
                h.sum_seconds(),
            );
            o.sample(
                &format!("{name}_count"),
                &[("camera", &c.id), ("stage", stage)],
                h.count() as f64,
            );
        }
    }

    o.head(
        "edge_agent_events_total",
        "counter",
        "Events emitted since start, by kind.",
    );
    for (kind, n) in events {
        o.sample("edge_agent_events_total", &[("kind", kind)], *n as f64);
    }

    if let Some(c) = clips {
        clip_metrics(&mut o, c);
    }

    if let Some(d) = delivery {
        let s = &d.spool;
        let gauges: [(&str, &str, f64); 9] = [
            (
                "edge_agent_spool_events",
                "Event messages in the spool not yet acknowledged by the broker.",
                s.events as f64,
            ),
            (
                "edge_agent_spool_evidence",
                "Evidence images in the spool not yet acknowledged.",
                s.evidence as f64,
            ),
            (
                "edge_agent_spool_bytes",
                "Payload bytes held in the spool.",
                s.bytes as f64,
            ),
            (
                "edge_agent_spool_max_bytes",
                "Bound of the spool ([storage].max_size_mb).",
                s.max_bytes as f64,
            ),
            (
                "edge_agent_spool_disk_room_bytes",
                "Bytes the spool may add before its disk falls to [storage].min_free_mb.",
                s.disk_room_bytes.map_or(f64::NAN, |b| b as f64),
            ),
            (
                "edge_agent_spool_disk_low",
                "1 while the spool evicts because the disk, not its bound, is full.",
                if s.disk_low { 1.0 } else { 0.0 },
            ),
            (
                "edge_agent_uplink_hour_bytes",
                "Spooled bytes handed to the broker over the last hour (with an [mqtt] uplink budget).",
                d.link.uplink_hour_bytes as f64,
            ),
            (
                "edge_agent_uplink_day_bytes",
                "Spooled bytes handed to the broker over the last day (with an [mqtt] uplink budget).",
                d.link.uplink_day_bytes as f64,
            ),
            (
                "edge_agent_images_deferred",
                "Evidence images waiting in the spool because the uplink budget is reached.",
                d.link.images_deferred as f64,
            ),
        ];
        for (name, help, v) in gauges {
            o.head(name, "gauge", help);
            o.sample(name, &[], v);
        }
        o.head(
            "edge_agent_spool_evictions_total",
            "counter",
            "Spooled items dropped because the spool was full.",
        );
        o.sample(
            "edge_agent_spool_evictions_total",
            &[("what", "event")],
            s.evicted_events as f64,
        );
        o.sample(
            "edge_agent_spool_evictions_total",
            &[("what", "evidence")],
            s.evicted_evidence as f64,
        );
        let l = &d.link;
        o.head(
            "edge_agent_mqtt_connected",
            "gauge",
            "1 while connected to the MQTT broker.",
        );
        o.sample(
            "edge_agent_mqtt_connected",
            &[],
            if l.connected { 1.0 } else { 0.0 },
        );
        let link: [(&str, &str, u64); 4] = [
            (
                "edge_agent_mqtt_connects_total",
                "Successful connections to the broker.",
                l.connects,
            ),
            (
                "edge_agent_mqtt_failures_total",
                "Failed connection attempts and lost connections.",
                l.failures,
            ),
            (
                "edge_agent_mqtt_published_total",
                "Spooled messages handed to the broker (re-sends included).",
                l.published,
            ),
            (
                "edge_agent_mqtt_acked_total",
                "Broker acknowledgements of spooled messages.",
                l.acked,
            ),
        ];
        for (name, help, v) in link {
            o.head(name, "counter", help);
            o.sample(name, &[], v as f64);
        }
    }
    let broker = delivery.and_then(|d| d.broker.as_ref());
    o.head(
        "edge_agent_buffer_bytes",
        "gauge",
        "Bytes held in a bounded in-memory buffer: buffer=\"frame_queue\" a camera's decoded frames waiting for inference; buffer=\"tracker\" a camera's live tracks; buffer=\"publish_window\" payloads handed to the MQTT client and not yet acknowledged; buffer=\"broker\" the embedded broker's topic-filter logs (an upper estimate).",
    );
    if let Some(d) = delivery {
        o.sample(
            "edge_agent_buffer_bytes",
            &[("buffer", "publish_window")],
            d.link.window_bytes as f64,
        );
    }
    for c in cameras {
        o.sample(
            "edge_agent_buffer_bytes",
            &[("buffer", "frame_queue"), ("camera", &c.id)],
            c.queue.bytes() as f64,
        );
        o.sample(
            "edge_agent_buffer_bytes",
            &[("buffer", "tracker"), ("camera", &c.id)],
            c.tracker.bytes as f64,
        );
    }
    if let Some(b) = broker {
        o.sample(
            "edge_agent_buffer_bytes",
            &[("buffer", "broker")],
            b.held_bytes as f64,
        );
    }
    o.head(
        "edge_agent_buffer_limit_bytes",
        "gauge",
        "Bound of a buffer: frame_queue [pipeline].queue_capacity frames; tracker 1024 tracks; publish_window 4 MiB (one message always fits); broker [mqtt].embedded_log_kb per subscribed filter, times the filters.",
    );
    if let Some(d) = delivery {
        o.sample(
            "edge_agent_buffer_limit_bytes",
            &[("buffer", "publish_window")],
            d.link.window_limit_bytes as f64,
        );
    }
    for c in cameras {
        o.sample(
            "edge_agent_buffer_limit_bytes",
            &[("buffer", "frame_queue"), ("camera", &c.id)],
            c.queue.limit_bytes() as f64,
        );
        o.sample(
            "edge_agent_buffer_limit_bytes",
            &[("buffer", "tracker"), ("camera", &c.id)],
            c.tracker.limit_bytes as f64,
        );
    }
    o.head(
        "edge_agent_tracks_refused_total",
        "counter",
        "Confident detections that started no track because the camera's tracker held its bound of live tracks.",
    );
    for c in cameras {
        o.sample(
            "edge_agent_tracks_refused_total",
            &[("camera", &c.id)],
            c.tracker.refused as f64,
        );
    }
    if let Some(b) = broker {
        o.sample(
            "edge_agent_buffer_limit_bytes",
            &[("buffer", "broker")],
            b.limit_bytes as f64,
        );
        o.head(
            "edge_agent_broker_filters",
            "gauge",
            "Topic filters the embedded broker keeps a log for.",
        );
        o.sample("edge_agent_broker_filters", &[], b.filters as f64);
    }
    if let Some(p) = crate::process::stats() {
        let gauges: [(&str, &str, u64); 4] = [
            (
                "edge_agent_process_resident_bytes",
                "Resident memory of the agent's process.",
                p.resident_bytes,
            ),
            (
                "edge_agent_process_peak_resident_bytes",
                "Peak resident memory of the agent's process since start.",
                p.peak_resident_bytes,
            ),
            (
                "edge_agent_process_threads",
                "Threads of the agent's process.",
                p.threads,
            ),
            (
                "edge_agent_process_open_fds",
                "Open file descriptors of the agent's process.",
                p.open_fds,
            ),
        ];
        for (name, help, v) in gauges {
            o.head(name, "gauge", help);
            o.sample(name, &[], v as f64);
        }
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::live::LiveHub;
    use crate::pipeline::observer::{CameraLoad, PipelineObserver};
    use crate::source::SourceCounters;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
    }

    #[test]
    fn counters_and_histograms_in_the_exposition_format() {
        let hub = LiveHub::new();
        let counters = SourceCounters {
            decode_errors: 2,
            dropped: 1,
            ..SourceCounters::default()
        };
        for _ in 0..3 {
            hub.frame_decoded("gate \"1\"", true, counters);
        }
        hub.frame_done(
            "gate \"1\"",
            &CameraLoad {
                dropped: 0,
                failed: 0,
                queued: 1,
                capacity: 2,
                frame_bytes: 640 * 480 * 3,
                tracker: crate::track::TrackerUse {
                    bytes: 4096,
                    limit_bytes: 1 << 20,
                    refused: 3,
                },
            },
        );
        let mut cams = hub.cameras();
        for ms in [2u64, 20, 200] {
            cams[0].stats.detect.record(Duration::from_millis(ms));
        }
        let mut d = DeliveryStats::default();
        d.spool.events = 4;
        d.spool.evicted_evidence = 9;
        d.link.connected = true;
        d.link.window_bytes = 137_000;
        d.link.window_limit_bytes = 4 << 20;
        d.link.images_deferred = 7;
        d.broker = Some(crate::publish::embedded::BrokerMemory {
            filters: 2,
            held_bytes: 3 << 20,
            per_filter_limit_bytes: 4 << 20,
            limit_bytes: 8 << 20,
        });
        let mut events = BTreeMap::new();
        events.insert("plate_read".to_string(), 5);
        let t = render(&cams, Some(&d), &events, None, Duration::from_secs(12));
        assert_eq!(
            value(&t, "edge_agent_buffer_bytes{buffer=\"broker\"}"),
            f64::from(3 << 20)
        );
        assert_eq!(value(&t, "edge_agent_images_deferred"), 7.0);
        assert_eq!(
            value(&t, "edge_agent_buffer_limit_bytes{buffer=\"broker\"}"),
            f64::from(8 << 20)
        );
        assert_eq!(
            value(&t, "edge_agent_buffer_bytes{buffer=\"publish_window\"}"),
            137_000.0
        );
        assert_eq!(
            value(
                &t,
                "edge_agent_buffer_limit_bytes{buffer=\"publish_window\"}"
            ),
            f64::from(4 << 20)
        );
        assert!(value(&t, "edge_agent_process_resident_bytes") > 1e6);
        assert!(value(&t, "edge_agent_process_open_fds") >= 3.0);

        let cam = "camera=\"gate \\\"1\\\"\"";
        let tracker = format!("edge_agent_buffer_bytes{{buffer=\"tracker\",{cam}}}");
        assert_eq!(value(&t, &tracker), 4096.0);
        let tracker = format!("edge_agent_buffer_limit_bytes{{buffer=\"tracker\",{cam}}}");
        assert_eq!(value(&t, &tracker), f64::from(1 << 20));
        assert_eq!(
            value(&t, &format!("edge_agent_tracks_refused_total{{{cam}}}")),
            3.0
        );
        let queue = format!("edge_agent_buffer_limit_bytes{{buffer=\"frame_queue\",{cam}}}");
        assert_eq!(value(&t, &queue), 2.0 * 640.0 * 480.0 * 3.0);
        assert_eq!(
            value(
                &t,
                &format!("edge_agent_camera_frames_decoded_total{{{cam}}}")
            ),
            3.0
        );
        assert_eq!(
            value(
                &t,
                &format!("edge_agent_camera_decode_errors_total{{{cam}}}")
            ),
            2.0
        );
        assert_eq!(
            value(
                &t,
                &format!("edge_agent_camera_frames_dropped_total{{{cam},reason=\"source\"}}")
            ),
            1.0
        );
        let b = |le: &str| {
            value(
                &t,
                &format!(
                    "edge_agent_stage_latency_seconds_bucket{{{cam},stage=\"detect\",le=\"{le}\"}}"
                ),
            )
        };
        assert_eq!(b("0.001"), 0.0);
        assert_eq!(b("0.0025"), 1.0);
        assert_eq!(b("0.025"), 2.0);
        assert_eq!(b("0.25"), 3.0);
        assert_eq!(b("10"), 3.0);
        assert_eq!(b("+Inf"), 3.0);
        let sum = value(
            &t,
            &format!("edge_agent_stage_latency_seconds_sum{{{cam},stage=\"detect\"}}"),
        );
        assert!((sum - 0.222).abs() < 1e-9, "{sum}");
        assert_eq!(
            value(
                &t,
                &format!("edge_agent_stage_latency_seconds_count{{{cam},stage=\"detect\"}}")
            ),
            3.0
        );
        assert_eq!(value(&t, "edge_agent_spool_events"), 4.0);
        assert_eq!(
            value(&t, "edge_agent_spool_evictions_total{what=\"evidence\"}"),
            9.0
        );
        assert_eq!(value(&t, "edge_agent_mqtt_connected"), 1.0);
        assert_eq!(
            value(&t, "edge_agent_events_total{kind=\"plate_read\"}"),
            5.0
        );
        // Every sample belongs to a family declared with HELP and TYPE before it.
        let mut declared = std::collections::HashSet::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "undeclared {line}");
            }
        }
    }
}
