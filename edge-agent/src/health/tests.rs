//! The monitor on real footage: the city clips must raise nothing; real degradations of them (a
//! Gaussian blur, a dark overlay, the other clip, a repeated frame, dropped frames) must raise
//! their condition, and the original footage must clear it again.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::config::HealthConfig;
use crate::source::{self, Frame, SourceCounters, SourceItem, SourceOptions};

use super::analysis::{Grey, measure};
use super::monitor::{Monitor, Transition};

/// Frames are kept at a third of their size (box-averaged), so both clips fit in ~90 MB.
const SHRINK: usize = 3;

fn shared() -> PathBuf {
    let dir = std::env::var_os("EDGE_AGENT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.join("footage/video").is_dir(),
        "the shared footage mirror is missing at {}; set EDGE_AGENT_SHARED",
        dir.display()
    );
    dir
}

struct Pic {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn shrink(f: &Frame) -> Pic {
    let (w, h) = (f.width as usize / SHRINK, f.height as usize / SHRINK);
    let mut rgb = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut s = 0u32;
                for dy in 0..SHRINK {
                    for dx in 0..SHRINK {
                        let i = ((y * SHRINK + dy) * f.width as usize + x * SHRINK + dx) * 3 + c;
                        s += u32::from(f.rgb[i]);
                    }
                }
                rgb[(y * w + x) * 3 + c] = (s / (SHRINK * SHRINK) as u32) as u8;
            }
        }
    }
    Pic {
        width: w as u32,
        height: h as u32,
        rgb,
    }
}

/// Every frame of a shared clip, decoded by the agent's own file source.
fn decode(name: &str) -> Vec<Pic> {
    let path = shared().join("footage/video").join(name);
    assert!(path.is_file(), "missing footage {}", path.display());
    let mut src = source::open(path.to_str().unwrap(), &SourceOptions::default()).unwrap();
    let mut out = Vec::new();
    while let Some(item) = src.next_item().unwrap() {
        if let SourceItem::Frame(f) = item {
            out.push(shrink(&f));
        }
    }
    assert!(out.len() > 50, "{name}: only {} frames", out.len());
    out
}

fn haiphong() -> &'static [Pic] {
    static F: OnceLock<Vec<Pic>> = OnceLock::new();
    F.get_or_init(|| decode("vn_citycam_haiphong.mp4"))
}

fn citycam2() -> &'static [Pic] {
    static F: OnceLock<Vec<Pic>> = OnceLock::new();
    F.get_or_init(|| decode("vn_citycam_02.mp4"))
}

/// Settings scaled to the 7-10 s clips: learn for 2 s, check 4 times a second.
fn cfg() -> HealthConfig {
    HealthConfig {
        check_interval_s: 0.25,
        learn_s: 2.0,
        reference_s: 20.0,
        scene_change_checks: 6,
        frozen_s: 2.0,
        fps_window_s: 2.0,
        ..HealthConfig::default()
    }
}

/// Plays pictures into a monitor at `fps`, ping-ponging over the clip for continuity.
struct Player {
    monitor: Monitor,
    t: Duration,
    seq: u64,
    transitions: Vec<Transition>,
    /// Smallest frame-to-frame difference seen at a check.
    min_diff: f32,
}

impl Player {
    fn new(cfg: HealthConfig) -> Self {
        Self {
            monitor: Monitor::new(cfg, 10.0),
            t: Duration::ZERO,
            seq: 0,
            transitions: Vec::new(),
            min_diff: f32::INFINITY,
        }
    }

    fn feed(&mut self, pic: &Pic, rgb: Option<Vec<u8>>, dt: Duration) {
        let frame = Frame {
            seq: self.seq,
            capture_time: SystemTime::UNIX_EPOCH + self.t,
            clock: crate::source::CaptureClock::FileStart,
            stream_time: self.t,
            discontinuity: false,
            width: pic.width,
            height: pic.height,
            rgb: rgb.unwrap_or_else(|| pic.rgb.clone()),
        };
        let counters = SourceCounters {
            frames: self.seq,
            ..SourceCounters::default()
        };
        if let Some(tr) = self.monitor.on_frame(&frame, counters) {
            self.transitions.push(tr);
        }
        if let Some(d) = self.monitor.snapshot().frame_diff {
            self.min_diff = self.min_diff.min(d);
        }
        self.seq += 1;
        self.t += dt;
    }

    /// `seconds` of the clip at 20 fps, each picture passed through `degrade`.
    fn play(&mut self, clip: &[Pic], seconds: f64, degrade: &dyn Fn(&Pic) -> Option<Vec<u8>>) {
        let n = (seconds * 20.0) as usize;
        let period = 2 * clip.len() - 2;
        for i in 0..n {
            let k = i % period;
            let idx = if k < clip.len() { k } else { period - k };
            let pic = &clip[idx];
            self.feed(pic, degrade(pic), Duration::from_millis(50));
        }
    }

    fn states(&self) -> Vec<&'static str> {
        self.transitions.iter().map(|t| t.to).collect()
    }
}

fn none(_: &Pic) -> Option<Vec<u8>> {
    None
}

fn blur(p: &Pic) -> Option<Vec<u8>> {
    let img = image::RgbImage::from_raw(p.width, p.height, p.rgb.clone()).unwrap();
    // Sigma 2 at a third of the size is a lens about 6 px out of focus at full resolution.
    Some(image::imageops::blur(&img, 2.0).into_raw())
}

/// A hand or a bag over the lens: almost all light gone, a faint trace of the scene left.
fn cover(p: &Pic) -> Option<Vec<u8>> {
    Some(p.rgb.iter().map(|&v| 6 + v / 32).collect())
}

#[test]
fn real_footage_raises_nothing() {
    for (name, clip) in [("haiphong", haiphong()), ("citycam_02", citycam2())] {
        let mut p = Player::new(cfg());
        p.play(clip, 30.0, &none);
        assert!(
            p.transitions.is_empty(),
            "{name}: false alarms {:?}; last {:?}",
            p.states(),
            p.monitor.snapshot()
        );
        let s = p.monitor.snapshot();
        assert!(s.sharpness_baseline.is_some() && s.scene_distance.is_some());
        assert!(p.monitor.checks() >= 100);
        // No check of real footage looks frozen. (The clips are recordings of camera feeds with
        // repeated frames; the closest pair of checks 0.25 s apart differs by about 0.2.)
        assert!(
            p.min_diff > cfg().frozen_max_diff as f32,
            "{name}: {}",
            p.min_diff
        );
        eprintln!("{name}: {s:?}, smallest frame difference {}", p.min_diff);
    }
}

#[test]
fn a_blurred_lens_is_defocused_until_refocused() {
    let mut p = Player::new(cfg());
    p.play(haiphong(), 6.0, &none);
    p.play(haiphong(), 4.0, &blur);
    assert_eq!(p.states(), ["defocused"], "{:?}", p.monitor.snapshot());
    let t = &p.transitions[0];
    eprintln!("defocused at {:?}", t.snapshot);
    let (s, b) = (t.snapshot.sharpness, t.snapshot.sharpness_baseline.unwrap());
    assert!(s < 0.35 * b, "sharpness {s} vs baseline {b}");
    assert_eq!(t.details()["previous"], "ok");
    p.play(haiphong(), 4.0, &none);
    assert_eq!(p.states(), ["defocused", "ok"]);
}

#[test]
fn a_covered_lens_is_covered_until_uncovered() {
    let mut p = Player::new(cfg());
    p.play(citycam2(), 6.0, &none);
    p.play(citycam2(), 4.0, &cover);
    // Covered, not also frozen or defocused: those checks stand aside while covered.
    assert_eq!(p.states(), ["covered"], "{:?}", p.monitor.snapshot());
    assert!(p.transitions[0].snapshot.mean < 16.0);
    p.play(citycam2(), 4.0, &none);
    assert_eq!(p.states(), ["covered", "ok"]);
}

#[test]
fn another_scene_is_a_scene_change_not_a_passing_bus() {
    let mut p = Player::new(cfg());
    p.play(haiphong(), 8.0, &none);
    // One second of the other scene (4 checks) is below scene_change_checks: nothing.
    p.play(citycam2(), 1.0, &none);
    p.play(haiphong(), 2.0, &none);
    assert!(p.transitions.is_empty(), "{:?}", p.states());
    p.play(citycam2(), 5.0, &none);
    assert_eq!(p.states(), ["scene_changed"], "{:?}", p.monitor.snapshot());
    eprintln!("scene change at {:?}", p.transitions[0].snapshot);
    let d = p.transitions[0].snapshot.scene_distance.unwrap();
    assert!(d > 0.45, "distance {d}");
    p.play(haiphong(), 3.0, &none);
    assert_eq!(p.states(), ["scene_changed", "ok"]);
}

#[test]
fn a_repeated_frame_is_frozen_until_the_picture_moves() {
    let mut p = Player::new(cfg());
    p.play(haiphong(), 5.0, &none);
    let still = &haiphong()[40];
    for _ in 0..80 {
        p.feed(still, None, Duration::from_millis(50));
    }
    assert_eq!(p.states(), ["frozen"], "{:?}", p.monitor.snapshot());
    assert!(p.transitions[0].snapshot.unchanged_s >= 2.0);
    p.play(haiphong(), 3.0, &none);
    assert_eq!(p.states(), ["frozen", "ok"]);
}

#[test]
fn too_few_frames_is_low_fps() {
    let mut p = Player::new(cfg());
    p.play(haiphong(), 5.0, &none);
    // 4 fps against an expected 10 (the limit is half).
    for pic in haiphong().iter().step_by(5).take(20) {
        p.feed(pic, None, Duration::from_millis(250));
    }
    assert_eq!(p.states(), ["low_fps"], "{:?}", p.monitor.snapshot());
    assert!(p.transitions[0].snapshot.fps.unwrap() < 5.0);
    p.play(haiphong(), 4.0, &none);
    assert_eq!(p.states(), ["low_fps", "ok"]);
}

#[test]
fn a_reconnect_resets_image_conditions_without_an_event() {
    let mut p = Player::new(cfg());
    p.play(haiphong(), 5.0, &none);
    p.play(haiphong(), 2.0, &cover);
    assert_eq!(p.monitor.state(), "covered");
    p.monitor
        .on_stream(&crate::source::StreamStatus::Disconnected {
            reason: "x".into(),
            retry_in: Duration::from_secs(1),
        });
    assert_eq!(p.monitor.state(), "down");
    p.play(haiphong(), 3.0, &none);
    assert_eq!(p.monitor.state(), "ok");
    assert_eq!(p.states(), ["covered"]);
}

#[test]
fn full_size_frames_are_measured_on_a_small_grey_copy() {
    let path = shared().join("footage/frames/vn_citycam_haiphong_10fps/frame_0001.jpg");
    let img = image::open(&path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let g = Grey::from_rgb(img.as_raw(), w, h, 320).unwrap();
    assert_eq!((g.width, g.height), (w as usize / 3, h as usize / 3));
    let m = measure(&g);
    assert!(
        m.std > 20.0 && m.sharpness > 10.0,
        "{:?}",
        (m.std, m.sharpness)
    );
    assert!(Grey::from_rgb(&[0; 5], 2, 2, 320).is_none());
}
