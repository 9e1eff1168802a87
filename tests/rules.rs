//! End-to-end checks of the rules stage on the real junction footage: the example config
//! `configs/junction-rules.toml` drawn by `edge-agent zones`, rules problems reported by
//! `edge-agent check`, and the engine fed with the YOLOX boxes recorded on the clip's frames
//! (`models/reference/golden_frames.json`), played forwards, backwards and with a frozen stretch.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use edge_agent::config;
use edge_agent::rules::{EventKind, Lamp, Phase, RuleEngine, RuleEvent, TrackSample};

const FRAMES: &str = "footage/frames/vn_citycam_haiphong_10fps";

fn junction_config() -> PathBuf {
    repo_root().join("configs/junction-rules.toml")
}

#[test]
fn zones_draws_the_junction_config_on_the_cameras_first_frame() {
    let shared = shared_dir();
    let dir = tempfile::tempdir().unwrap();
    let out_png = dir.path().join("junction.png");
    let frame = shared.join(FRAMES).join("frame_0001.jpg");
    assert!(frame.is_file(), "missing footage frame {}", frame.display());
    let out = run(bin()
        .args(["zones", "--camera", "haiphong"])
        .arg("--config")
        .arg(junction_config())
        .arg("--out")
        .arg(&out_png)
        .arg("--frame")
        .arg(&frame));
    assert!(out.status.success());
    let legend = stdout(&out);
    for id in [
        "lane-cross-west",
        "keep-clear",
        "crosswalk-south",
        "stop-line-south",
    ] {
        assert!(legend.contains(id), "legend lacks {id}: {legend}");
    }
    let drawn = image::open(&out_png).unwrap().to_rgb8();
    let original = edge_agent::imageio::read_rgb(&frame).unwrap();
    assert_eq!(drawn.dimensions(), (1006, 720));
    let changed = drawn
        .pixels()
        .zip(original.pixels())
        .filter(|(a, b)| a != b)
        .count();
    let share = changed as f64 / f64::from(1006 * 720);
    assert!(
        (0.05..0.8).contains(&share),
        "{:.0} % of the pixels changed",
        share * 100.0
    );
}

#[test]
fn zones_takes_the_first_image_of_an_image_folder_camera() {
    let shared = shared_dir();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("folder.toml");
    std::fs::write(
        &cfg,
        format!(
            "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[[cameras]]\nid = \"f\"\nurl = \"{}\"\n\
             [[cameras.zones]]\nid = \"z\"\npolygon = [[10, 10], [300, 10], [300, 300]]\n",
            shared.join(FRAMES).display()
        ),
    )
    .unwrap();
    let png = dir.path().join("f.png");
    let out = run(bin()
        .args(["zones", "--camera", "f", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&png));
    assert!(out.status.success());
    assert_eq!(image::open(&png).unwrap().width(), 1006);
    // A video camera without --frame is a clear error, not a crash.
    let out = run(bin()
        .args(["zones", "--camera", "haiphong", "--config"])
        .arg(junction_config())
        .arg("--out")
        .arg(&png));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--frame"), "{}", stderr(&out));
}

#[test]
fn check_pins_a_bad_rule_to_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/x\"\n\
         [[cameras.rules]]\nid = \"r\"\nkind = \"wrong_way\"\nzone = \"lane-9\"\n",
    )
    .unwrap();
    let out = run(bin().args(["check", "--skip-model-hashes"]).arg(&cfg));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:10:8: error:", cfg.display())) && err.contains("lane-9"),
        "{err}"
    );
}

/// One frame of recorded detections.
struct Det {
    label: String,
    bbox: [f32; 4],
}

fn golden_frames() -> Vec<Vec<Det>> {
    let path = shared_dir().join("models/reference/golden_frames.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let frames = v["vn_citycam_haiphong_10fps"].as_object().unwrap();
    let mut names: Vec<&String> = frames.keys().collect();
    names.sort();
    assert_eq!(names.len(), 40, "expected 40 recorded frames");
    names
        .iter()
        .map(|n| {
            frames[n.as_str()]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["score"].as_f64().unwrap() >= 0.3)
                .map(|d| {
                    let b = d["box_xyxy"].as_array().unwrap();
                    Det {
                        label: d["label"].as_str().unwrap().to_string(),
                        bbox: std::array::from_fn(|i| b[i].as_f64().unwrap() as f32),
                    }
                })
                .collect()
        })
        .collect()
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = iw * ih;
    let u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i;
    if u > 0.0 { i / u } else { 0.0 }
}

/// Feeds frames through a greedy IoU association (the project's tracker is a separate stage)
/// into the engine at 10 fps and returns every event.
fn play(frames: &[&Vec<Det>]) -> Vec<RuleEvent> {
    play_with(frames, |_, _, _| None)
}

/// [`play`], with `each(engine, frame index, t)` called before each frame's update; what it
/// returns joins the frame's tracks.
fn play_with(
    frames: &[&Vec<Det>],
    mut each: impl FnMut(&mut RuleEngine, usize, Duration) -> Option<TrackSample<'static>>,
) -> Vec<RuleEvent> {
    let loaded = config::load_file(&junction_config()).unwrap();
    let cam = &loaded.config.cameras[0];
    let mut engine = RuleEngine::new(&cam.geometry(), (1006, 720)).unwrap();
    let mut tracks: HashMap<u64, ([f32; 4], String, u32)> = HashMap::new();
    let mut next = 1u64;
    let mut events = Vec::new();
    for (k, dets) in frames.iter().enumerate() {
        let mut pairs: Vec<(f32, u64, usize)> = Vec::new();
        for (id, (b, label, _)) in &tracks {
            for (j, d) in dets.iter().enumerate() {
                let v = iou(*b, d.bbox);
                if v >= 0.3 && *label == d.label {
                    pairs.push((v, *id, j));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut used_t, mut used_d) = (Vec::new(), vec![false; dets.len()]);
        let mut ids = vec![0u64; dets.len()];
        for (_, id, j) in pairs {
            if !used_t.contains(&id) && !used_d[j] {
                used_t.push(id);
                used_d[j] = true;
                ids[j] = id;
            }
        }
        for (j, d) in dets.iter().enumerate() {
            if ids[j] == 0 {
                ids[j] = next;
                next += 1;
            }
            tracks.insert(ids[j], (d.bbox, d.label.clone(), 0));
        }
        let mut ended = Vec::new();
        tracks.retain(|id, t| {
            if !ids.contains(id) {
                t.2 += 1;
            }
            let keep = t.2 <= 5;
            if !keep {
                ended.push(*id);
            }
            keep
        });
        let mut samples: Vec<TrackSample<'_>> = dets
            .iter()
            .zip(&ids)
            .map(|(d, id)| TrackSample {
                track_id: *id,
                label: &d.label,
                bbox: d.bbox,
                score: 0.9,
            })
            .collect();
        let t = Duration::from_millis(100 * k as u64);
        samples.extend(each(&mut engine, k, t));
        events.extend(engine.update(t, &samples, &ended));
    }
    events.extend(engine.finish(Duration::from_millis(100 * frames.len() as u64)));
    for e in events.iter().filter(|e| e.phase == Phase::New) {
        eprintln!(
            "{:>5.1}s {:<20} {:?} track {:?} {}",
            e.t.as_secs_f64(),
            e.rule_id,
            e.kind,
            e.track_id,
            e.details
        );
    }
    events
}

fn news(events: &[RuleEvent], kind: EventKind) -> Vec<&RuleEvent> {
    events
        .iter()
        .filter(|e| e.kind == kind && e.phase == Phase::New)
        .collect()
}

#[test]
fn recorded_boxes_forwards_give_no_wrong_way_and_backwards_do() {
    let frames = golden_frames();
    let forward: Vec<&Vec<Det>> = frames.iter().collect();
    let events = play(&forward);
    let ww = news(&events, EventKind::WrongWay);
    assert!(ww.is_empty(), "forward clip gave wrong_way: {ww:#?}");
    assert!(
        news(&events, EventKind::StoppedVehicle).is_empty(),
        "forward clip gave stopped_vehicle"
    );
    let backward: Vec<&Vec<Det>> = frames.iter().rev().collect();
    let events = play(&backward);
    let ww = news(&events, EventKind::WrongWay);
    assert!(!ww.is_empty(), "reversed clip gave no wrong_way");
}

#[test]
fn a_frozen_stretch_gives_stopped_vehicle_in_the_keep_clear_box() {
    let frames = golden_frames();
    // Frames 1-15, frame 15 held for 8 s (a stalled decoder or a real standstill), then 16-40.
    let mut seq: Vec<&Vec<Det>> = frames[..15].iter().collect();
    seq.extend(std::iter::repeat_n(&frames[14], 80));
    seq.extend(frames[15..].iter());
    let events = play(&seq);
    let stopped = news(&events, EventKind::StoppedVehicle);
    assert!(
        !stopped.is_empty(),
        "no stopped_vehicle in the frozen stretch"
    );
    assert!(
        stopped
            .iter()
            .all(|e| e.zone.as_deref() == Some("keep-clear"))
    );
}

/// The junction's signal lamp read from the clip's real pixels: red throughout the 4 s (the cars
/// of the approach wait at the stop line), through the LED's dark frames. A made-up car crossing
/// the line in a dark frame (t = 1.1 s; lamp lit from 0 s) is reported once a later frame shows the
/// lamp lit again. Of the recorded vehicles only motorbikes cross the line into the junction (by
/// eye: straight on, past the waiting cars; the head's green arrow is for right turns); played
/// backwards every crossing is against the line's direction and nothing is raised.
#[test]
fn the_junction_lamp_reads_red_through_its_flicker_on_the_real_frames() {
    let frames = golden_frames();
    let dir = shared_dir().join(FRAMES);
    let pixels: Vec<_> = (1..=frames.len())
        .map(|k| {
            let path = dir.join(format!("frame_{k:04}.jpg"));
            edge_agent::imageio::read_rgb(&path)
                .unwrap_or_else(|e| panic!("cannot read footage frame {}: {e}", path.display()))
        })
        .collect();
    let (mut red, mut dark) = (0, 0);
    let forwards: Vec<&Vec<Det>> = frames.iter().collect();
    let events = play_with(&forwards, |engine, k, t| {
        assert!(engine.watches_signals());
        let img = &pixels[k];
        let seen = engine.observe_frame(t, img.as_raw(), img.width(), img.height());
        assert_eq!(seen.len(), 1);
        match seen[0].1 {
            Lamp::Red => red += 1,
            Lamp::NotRed => dark += 1,
            Lamp::Unknown => panic!("daylight frame {k} read as unknown"),
        }
        // the made-up car drives up through the stop line (y = 390) at 60 px per frame
        let y = 390.0 + 60.0 * (11.0 - k as f32) - 30.0;
        (200.0..720.0).contains(&y).then_some(TrackSample {
            track_id: 999,
            label: "car",
            bbox: [480.0, y - 80.0, 600.0, y],
            score: 0.9,
        })
    });
    assert!(
        red >= 20 && dark >= 3,
        "lamp lit in {red} and dark in {dark} of 40 frames"
    );
    let reds = news(&events, EventKind::RedLight);
    let car: Vec<_> = reds.iter().filter(|e| e.track_id == Some(999)).collect();
    assert_eq!(car.len(), 1, "{reds:?}");
    assert_eq!(car[0].details["crossed_s"].as_f64(), Some(1.1));
    assert_eq!(car[0].details["red_since_s"].as_f64(), Some(0.0));
    assert!(
        car[0].t > Duration::from_millis(1100),
        "judged after the dark frames"
    );
    assert_eq!(car[0].zone.as_deref(), Some("signal-approach-red"));
    for e in reds.iter().filter(|e| e.track_id != Some(999)) {
        assert_eq!(e.label.as_deref(), Some("motorcycle"), "{e:?}");
        assert_eq!(e.details["direction"], "forward");
    }

    let backwards: Vec<&Vec<Det>> = frames.iter().rev().collect();
    let events = play_with(&backwards, |engine, k, t| {
        let img = &pixels[frames.len() - 1 - k];
        engine.observe_frame(t, img.as_raw(), img.width(), img.height());
        None
    });
    assert!(news(&events, EventKind::RedLight).is_empty());
}
