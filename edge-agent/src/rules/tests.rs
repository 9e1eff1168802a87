//! Every rule against made-up tracks (nothing real can produce a wrong-way car on demand),
//! including the field's edge cases: jitter on a line, leaving and re-entering, id switches,
//! jittering stationary boxes, slow cars, time windows.

use std::time::Duration;

use super::geometry::{Homography, P};
use super::*;
use crate::config::CameraConfig;

const W: u32 = 1000;
const H: u32 = 800;

fn cam(rules_toml: &str) -> CameraConfig {
    toml::from_str(&format!(
        "id = \"cam\"\nurl = \"x\"\nframe_size = [{W}, {H}]\n{rules_toml}"
    ))
    .unwrap()
}

/// A box of `w`×`h` pixels standing on `(x, y)` (bottom-centre anchor).
fn bx(x: f64, y: f64, w: f64, h: f64) -> [f32; 4] {
    [
        (x - w / 2.0) as f32,
        (y - h) as f32,
        (x + w / 2.0) as f32,
        y as f32,
    ]
}

/// Deterministic jitter in [-1, 1] (a tiny LCG; no rand dependency for tests).
struct Jitter(u64);
impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

type Obj = (u64, &'static str, [f32; 4]);

struct Sim {
    e: RuleEngine,
    fps: f64,
    frame: u64,
    events: Vec<RuleEvent>,
}

impl Sim {
    fn new(rules_toml: &str, fps: f64) -> Self {
        Self {
            e: RuleEngine::new(&cam(rules_toml).geometry(), (W, H)).unwrap(),
            fps,
            frame: 0,
            events: Vec::new(),
        }
    }
    fn t(&self) -> f64 {
        self.frame as f64 / self.fps
    }
    fn step(&mut self, objs: &[Obj], ended: &[u64]) {
        let samples: Vec<TrackSample<'_>> = objs
            .iter()
            .map(|(id, label, bbox)| TrackSample {
                track_id: *id,
                label,
                bbox: *bbox,
                score: 0.9,
            })
            .collect();
        let t = Duration::from_secs_f64(self.t());
        let ev = self.e.update(t, &samples, ended);
        self.events.extend(ev);
        self.frame += 1;
    }
    /// Runs `secs` seconds; `f(t)` gives the objects at stream time t.
    fn run(&mut self, secs: f64, f: impl Fn(f64) -> Vec<Obj>) {
        let end = self.t() + secs;
        while self.t() < end - 1e-9 {
            let objs = f(self.t());
            self.step(&objs, &[]);
        }
    }
    fn finish(&mut self) {
        let t = Duration::from_secs_f64(self.t());
        let ev = self.e.finish(t);
        self.events.extend(ev);
    }
    /// A stream gap (the camera reconnected) at the current time.
    fn gap(&mut self) {
        let t = Duration::from_secs_f64(self.t());
        let ev = self.e.discontinuity(t);
        self.events.extend(ev);
    }
    fn of(&self, kind: EventKind, phase: Phase) -> Vec<&RuleEvent> {
        self.events
            .iter()
            .filter(|e| e.kind == kind && e.phase == phase)
            .collect()
    }
    fn count(&self, kind: EventKind, phase: Phase) -> usize {
        self.of(kind, phase).len()
    }
}

const SQUARE_ZONE: &str = r#"
[[zones]]
id = "box"
polygon = [[200, 200], [600, 200], [600, 600], [200, 600]]
"#;

// ---------------------------------------------------------------- zones

#[test]
fn zone_enter_and_exit_need_inertia_frames() {
    let mut s = Sim::new(
        &format!("{SQUARE_ZONE}[[rules]]\nid = \"z\"\nkind = \"zone\"\nzone = \"box\"\n"),
        10.0,
    );
    // Walks in from the left at 100 px/s, stays, walks out to the right.
    s.run(12.0, |t| {
        let x = 100.0 + 100.0 * t;
        vec![(1, "person", bx(x, 400.0, 30.0, 80.0))]
    });
    assert_eq!(s.count(EventKind::ZoneEnter, Phase::New), 1);
    assert_eq!(s.count(EventKind::ZoneExit, Phase::End), 1);
    let new = s.of(EventKind::ZoneEnter, Phase::New)[0];
    // Crosses x = 200 at t = 1.0; membership after 3 inside frames (t = 1.2).
    assert!((new.t.as_secs_f64() - 1.2).abs() < 0.15, "{:?}", new.t);
    let end = s.of(EventKind::ZoneExit, Phase::End)[0];
    assert!((end.t.as_secs_f64() - 5.2).abs() < 0.15, "{:?}", end.t);
    assert_eq!(end.details["reason"], "left_zone");
    assert_eq!(end.zone.as_deref(), Some("box"));
    // Updates, rate-limited to one per 5 s during the 4 s stay: none.
    assert_eq!(s.count(EventKind::ZoneEnter, Phase::Update), 0);
}

#[test]
fn zone_flicker_on_the_edge_does_not_exit_but_leaving_and_reentering_does() {
    let mut s = Sim::new(
        &format!("{SQUARE_ZONE}[[rules]]\nid = \"z\"\nkind = \"zone\"\nzone = \"box\"\n"),
        10.0,
    );
    // Inside, with one-frame excursions outside every 5th frame (a box flickering on the edge).
    s.run(5.0, |t| {
        let k = (t * 10.0).round() as u64;
        let y = if k % 5 == 4 { 610.0 } else { 595.0 };
        vec![(1, "car", bx(400.0, y, 100.0, 80.0))]
    });
    assert_eq!(s.count(EventKind::ZoneEnter, Phase::New), 1);
    assert_eq!(s.count(EventKind::ZoneExit, Phase::End), 0);
    // Really leaves for 2 s, then comes back: a second stay.
    s.run(2.0, |_| vec![(1, "car", bx(400.0, 700.0, 100.0, 80.0))]);
    s.run(2.0, |_| vec![(1, "car", bx(400.0, 500.0, 100.0, 80.0))]);
    assert_eq!(s.count(EventKind::ZoneExit, Phase::End), 1);
    assert_eq!(s.count(EventKind::ZoneEnter, Phase::New), 2);
    s.finish();
    assert_eq!(s.count(EventKind::ZoneExit, Phase::End), 2);
    assert_eq!(s.events.last().unwrap().details["reason"], "stream_end");
}

#[test]
fn a_track_the_tracker_ends_inside_a_zone_exits_it() {
    let mut s = Sim::new(
        &format!("{SQUARE_ZONE}[[rules]]\nid = \"z\"\nkind = \"zone\"\nzone = \"box\"\n"),
        10.0,
    );
    s.run(1.0, |_| vec![(7, "car", bx(400.0, 400.0, 100.0, 80.0))]);
    s.step(&[], &[7]);
    let ends = s.of(EventKind::ZoneExit, Phase::End);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].track_id, Some(7));
    assert_eq!(ends[0].details["reason"], "track_ended");
}

#[test]
fn zone_classes_filter_members() {
    let mut s = Sim::new(
        r#"
[[zones]]
id = "walk"
polygon = [[200, 200], [600, 200], [600, 600], [200, 600]]
classes = ["person"]
[[rules]]
id = "z"
kind = "zone"
zone = "walk"
"#,
        10.0,
    );
    s.run(1.0, |_| {
        vec![
            (1, "car", bx(400.0, 400.0, 100.0, 80.0)),
            (2, "person", bx(300.0, 400.0, 20.0, 60.0)),
        ]
    });
    let news = s.of(EventKind::ZoneEnter, Phase::New);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0].track_id, Some(2));
    assert_eq!(news[0].label.as_deref(), Some("person"));
}

// ---------------------------------------------------------------- lines

const LINE: &str = r#"
[[lines]]
id = "stop"
points = [[100, 400], [900, 400]]
direction = [[500, 300], [500, 500]]
"#;

fn crossing_sim(extra: &str) -> Sim {
    Sim::new(
        &format!("{LINE}{extra}[[rules]]\nid = \"x\"\nkind = \"line_crossing\"\nline = \"stop\"\n"),
        10.0,
    )
}

#[test]
fn a_crossing_in_the_line_direction_counts_once() {
    let mut s = crossing_sim("");
    s.run(4.0, |t| {
        vec![(1, "car", bx(500.0, 300.0 + 50.0 * t, 80.0, 60.0))]
    });
    assert_eq!(s.count(EventKind::LineCrossing, Phase::New), 1);
    assert_eq!(s.count(EventKind::LineCrossing, Phase::End), 1);
    let e = s.of(EventKind::LineCrossing, Phase::New)[0];
    assert_eq!(e.details["direction"], "forward");
    assert_eq!(e.line.as_deref(), Some("stop"));
    assert!((e.t.as_secs_f64() - 2.2).abs() < 0.11, "{:?}", e.t);
}

#[test]
fn jitter_on_the_line_does_not_count_and_does_not_double_count() {
    // ±5 px around the line, inside the 6 px dead band: never a crossing.
    let mut s = crossing_sim("");
    let j = std::cell::RefCell::new(Jitter(1));
    s.run(10.0, |_| {
        vec![(
            1,
            "car",
            bx(500.0, 400.0 + 5.0 * j.borrow_mut().next(), 80.0, 60.0),
        )]
    });
    assert_eq!(s.count(EventKind::LineCrossing, Phase::New), 0);
    // ±15 px: the box really goes from side to side, but one track counts once per direction.
    let mut s = crossing_sim("");
    s.run(10.0, |t| {
        let k = (t * 10.0).round() as i64;
        vec![(
            1,
            "car",
            bx(500.0, if k % 2 == 0 { 385.0 } else { 415.0 }, 80.0, 60.0),
        )]
    });
    assert_eq!(s.count(EventKind::LineCrossing, Phase::New), 1);
}

#[test]
fn backward_crossings_and_crossings_beyond_the_segment_do_not_count() {
    let mut s = crossing_sim("");
    s.run(4.0, |t| {
        vec![(1, "car", bx(500.0, 500.0 - 50.0 * t, 80.0, 60.0))]
    });
    // Past the end of the segment (x = 950 > 900).
    s.run(4.0, |t| {
        vec![(2, "car", bx(950.0, 300.0 + 50.0 * (t - 4.0), 80.0, 60.0))]
    });
    assert_eq!(s.count(EventKind::LineCrossing, Phase::New), 0);
}

#[test]
fn an_id_switch_at_the_line_counts_the_crossing_once() {
    let mut s = crossing_sim("");
    // Track 1 crosses at t≈2.2 and is lost at t = 2.5; the tracker gives the car id 2 at t = 2.8
    // and ends id 1 at t = 3.0.
    for k in 0..60u64 {
        let t = k as f64 / 10.0;
        let b = bx(500.0, 300.0 + 50.0 * t, 80.0, 60.0);
        match k {
            0..25 => s.step(&[(1, "car", b)], &[]),
            25..28 => s.step(&[], &[]),
            30 => s.step(&[(2, "car", b)], &[1]),
            _ => s.step(&[(2, "car", b)], &[]),
        }
    }
    assert_eq!(s.count(EventKind::LineCrossing, Phase::New), 1);
    // Id switch before the line: track 1 lost at y=380, id 3 appears at y=395 and goes on.
    let mut s = crossing_sim("");
    for k in 0..60u64 {
        let t = k as f64 / 10.0;
        let b = bx(500.0, 300.0 + 50.0 * t, 80.0, 60.0);
        match k {
            0..16 => s.step(&[(1, "car", b)], &[]),
            16 => s.step(&[], &[]),
            _ => s.step(&[(3, "car", b)], if k == 20 { &[1] } else { &[] }),
        }
    }
    let news = s.of(EventKind::LineCrossing, Phase::New);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0].track_id, Some(3));
    assert_eq!(
        news[0].details["previous_track_ids"],
        serde_json::json!([1])
    );
}

#[test]
fn line_counts_are_reported_per_class_and_direction_every_interval() {
    let mut s = Sim::new(
        r#"
[[lines]]
id = "mid"
points = [[100, 400], [900, 400]]
[[rules]]
id = "count"
kind = "line_count"
line = "mid"
interval_s = 10
"#,
        10.0,
    );
    // Three cars down, one motorbike up in the first 10 s; one car down in the next.
    s.run(25.0, |t| {
        let mut v = Vec::new();
        for (id, label, start, dir) in [
            (1, "car", 0.0, 1.0),
            (2, "car", 3.0, 1.0),
            (3, "car", 5.0, 1.0),
            (4, "motorcycle", 1.0, -1.0),
            (5, "car", 12.0, 1.0),
        ] {
            let dt = t - start;
            if (0.0..4.0).contains(&dt) {
                v.push((
                    id,
                    label,
                    bx(
                        300.0 + 100.0 * id as f64,
                        400.0 + dir * (-100.0 + 50.0 * dt),
                        60.0,
                        50.0,
                    ),
                ));
            }
        }
        v
    });
    let reports: Vec<&RuleEvent> = s
        .events
        .iter()
        .filter(|e| e.kind == EventKind::LineCount)
        .collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].phase, Phase::New);
    assert_eq!(reports[1].phase, Phase::Update);
    assert_eq!(reports[0].track_id, None);
    assert_eq!(reports[0].details["forward"]["car"], 3);
    assert_eq!(reports[0].details["backward"]["motorcycle"], 1);
    assert_eq!(reports[1].details["forward"]["car"], 1);
    assert_eq!(reports[1].details["total_forward"]["car"], 4);
    s.finish();
    let end = s.events.last().unwrap();
    assert_eq!((end.kind, end.phase), (EventKind::LineCount, Phase::End));
}

// ---------------------------------------------------------------- wrong way

const LANE: &str = r#"
[[zones]]
id = "lane"
polygon = [[100, 300], [900, 300], [900, 500], [100, 500]]
direction = [[150, 400], [850, 400]]
"#;

fn wrong_way(extra: &str) -> Sim {
    Sim::new(
        &format!("{LANE}[[rules]]\nid = \"ww\"\nkind = \"wrong_way\"\nzone = \"lane\"\n{extra}"),
        10.0,
    )
}

#[test]
fn wrong_way_fires_against_the_lane_and_not_along_it() {
    let mut s = wrong_way("min_distance_px = 80\nmin_duration_s = 1.5\n");
    let j = std::cell::RefCell::new(Jitter(7));
    // Car 1 goes with the lane, car 2 against it at 100 px/s, both with 3 px of jitter.
    s.run(6.0, |t| {
        let mut j = j.borrow_mut();
        vec![
            (
                1,
                "car",
                bx(
                    150.0 + 100.0 * t + 3.0 * j.next(),
                    350.0 + 3.0 * j.next(),
                    80.0,
                    60.0,
                ),
            ),
            (
                2,
                "car",
                bx(
                    850.0 - 100.0 * t + 3.0 * j.next(),
                    450.0 + 3.0 * j.next(),
                    80.0,
                    60.0,
                ),
            ),
        ]
    });
    let news = s.of(EventKind::WrongWay, Phase::New);
    assert_eq!(news.len(), 1, "{:?}", s.events);
    assert_eq!(news[0].track_id, Some(2));
    // Needs 1.5 s (and 80 px, reached at 0.8 s) after membership at 0.2 s.
    let t = news[0].t.as_secs_f64();
    assert!((1.6..=1.9).contains(&t), "fired at {t}");
    assert!(news[0].details["distance_px"].as_f64().unwrap() >= 80.0);
}

#[test]
fn no_motion_is_inferred_across_a_stream_gap() {
    // 1 s against the lane, a reconnect, 1 s more: 2 s in all but never 1.5 s on one stream.
    let mut s = wrong_way("min_distance_px = 60\nmin_duration_s = 1.5\n");
    s.run(1.0, |t| {
        vec![(1, "car", bx(800.0 - 100.0 * t, 400.0, 80.0, 60.0))]
    });
    s.gap();
    s.run(1.0, |t| {
        vec![(1, "car", bx(800.0 - 100.0 * t, 400.0, 80.0, 60.0))]
    });
    assert_eq!(
        s.count(EventKind::WrongWay, Phase::New),
        0,
        "{:?}",
        s.events
    );
    // Without the gap the same 2 s fire.
    let mut s = wrong_way("min_distance_px = 60\nmin_duration_s = 1.5\n");
    s.run(2.0, |t| {
        vec![(1, "car", bx(800.0 - 100.0 * t, 400.0, 80.0, 60.0))]
    });
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 1);
    // An open event of the track ends at the gap with reason `stream_gap`.
    s.gap();
    let ends = s.of(EventKind::WrongWay, Phase::End);
    assert_eq!(ends.len(), 1, "{:?}", s.events);
    assert_eq!(ends[0].track_id, Some(1));
    assert_eq!(ends[0].details["reason"], "stream_gap");
}

#[test]
fn wrong_way_needs_both_distance_and_duration() {
    // Short distance, long time: 30 px back over 4 s (a car rolling back at a light).
    let mut s = wrong_way("min_distance_px = 60\nmin_duration_s = 1\n");
    s.run(4.0, |t| {
        vec![(1, "car", bx(500.0 - 7.5 * t, 400.0, 80.0, 60.0))]
    });
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 0);
    // Long distance, short time: 150 px back in 0.5 s, then leaves the lane.
    let mut s = wrong_way("min_distance_px = 60\nmin_duration_s = 1\n");
    s.run(0.6, |t| {
        vec![(1, "car", bx(500.0 - 300.0 * t, 400.0, 80.0, 60.0))]
    });
    s.run(2.0, |_| vec![(1, "car", bx(320.0, 700.0, 80.0, 60.0))]);
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 0);
    // Both: 60 px/s for 3 s.
    let mut s = wrong_way("min_distance_px = 60\nmin_duration_s = 1\n");
    s.run(3.0, |t| {
        vec![(1, "car", bx(500.0 - 60.0 * t, 400.0, 80.0, 60.0))]
    });
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 1);
}

#[test]
fn crossing_the_lane_at_an_angle_or_a_box_jumping_back_once_is_not_wrong_way() {
    // Drifts 70 px back while crossing 100 px of lane (a car heading for the vanishing point).
    let mut s = wrong_way("min_distance_px = 50\nmin_duration_s = 0.5\n");
    s.run(2.0, |t| {
        vec![(
            1,
            "car",
            bx(500.0 - 70.0 * t / 2.0, 300.0 + 100.0 * t, 80.0, 60.0),
        )]
    });
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 0);
    // A parked car's box whose bottom jumps 80 px back once (occluded) and stays.
    let mut s = wrong_way("min_distance_px = 50\nmin_duration_s = 0.5\n");
    s.run(4.0, |t| {
        let x = if t < 1.0 { 500.0 } else { 420.0 };
        vec![(1, "car", bx(x, 400.0, 80.0, 60.0))]
    });
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 0);
}

#[test]
fn a_stationary_jittering_car_is_not_wrong_way() {
    let mut s = wrong_way("min_distance_px = 30\nmin_duration_s = 1\n");
    let j = std::cell::RefCell::new(Jitter(3));
    s.run(30.0, |_| {
        vec![(
            1,
            "car",
            bx(500.0 + 8.0 * j.borrow_mut().next(), 400.0, 80.0, 60.0),
        )]
    });
    assert_eq!(s.count(EventKind::WrongWay, Phase::New), 0);
}

#[test]
fn wrong_way_in_metres_uses_the_calibration() {
    // 100 px = 10 m along the lane: 5 m needs 50 px.
    let calib = r#"
[calibration]
image = [[100, 300], [900, 300], [900, 500], [100, 500]]
ground = [[0, 0], [80, 0], [80, 20], [0, 20]]
"#;
    let mut s = Sim::new(
        &format!(
            "{LANE}{calib}[[rules]]\nid = \"ww\"\nkind = \"wrong_way\"\nzone = \"lane\"\nmin_distance_m = 5\nmin_duration_s = 0.5\n"
        ),
        10.0,
    );
    s.run(3.0, |t| {
        vec![(1, "car", bx(600.0 - 40.0 * t, 400.0, 80.0, 60.0))]
    });
    let news = s.of(EventKind::WrongWay, Phase::New);
    assert_eq!(news.len(), 1);
    let m = news[0].details["distance_m"].as_f64().unwrap();
    assert!((5.0..6.0).contains(&m), "{m}");
    // 50 px at 40 px/s after entering at 0.2 s: about 1.45 s.
    assert!(
        (1.3..1.6).contains(&news[0].t.as_secs_f64()),
        "{:?}",
        news[0].t
    );
}

// ---------------------------------------------------------------- stopped vehicle

const NO_STOP: &str = r#"
[[zones]]
id = "keep-clear"
polygon = [[100, 100], [900, 100], [900, 700], [100, 700]]
[[rules]]
id = "stop"
kind = "stopped_vehicle"
zone = "keep-clear"
dwell_s = 30
"#;

#[test]
fn a_jittering_stationary_car_is_stopped_and_updates_are_rate_limited() {
    let mut s = Sim::new(NO_STOP, 5.0);
    let j = std::cell::RefCell::new(Jitter(11));
    // A 120x90 box whose corners jitter by ±4 px independently (anchor and size both wobble).
    s.run(45.0, |_| {
        let mut j = j.borrow_mut();
        let b = bx(500.0, 400.0, 120.0, 90.0);
        vec![(
            1,
            "car",
            [
                b[0] + 4.0 * j.next() as f32,
                b[1] + 4.0 * j.next() as f32,
                b[2] + 4.0 * j.next() as f32,
                b[3] + 4.0 * j.next() as f32,
            ],
        )]
    });
    let news = s.of(EventKind::StoppedVehicle, Phase::New);
    assert_eq!(news.len(), 1);
    // Membership needs 3 frames (0.4 s at 5 fps); stationary counts from the first frame.
    let t = news[0].t.as_secs_f64();
    assert!((30.0..=30.5).contains(&t), "{t}");
    assert_eq!(news[0].details["no_stopping_zone"], true);
    // 15 s more: updates at most every 5 s.
    let ups = s.count(EventKind::StoppedVehicle, Phase::Update);
    assert!((2..=3).contains(&ups), "{ups} updates");
    // Drives off: the event ends.
    s.run(3.0, |t| {
        vec![(1, "car", bx(500.0 + 80.0 * (t - 45.0), 400.0, 120.0, 90.0))]
    });
    let ends = s.of(EventKind::StoppedVehicle, Phase::End);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].details["reason"], "moved");
}

#[test]
fn a_slow_car_is_not_stopped() {
    // 2 px per frame at 5 fps (10 px/s), well under the 12 px still radius per frame but moving.
    let mut s = Sim::new(NO_STOP, 5.0);
    s.run(60.0, |t| {
        vec![(1, "car", bx(150.0 + 10.0 * t, 400.0, 120.0, 90.0))]
    });
    assert_eq!(s.count(EventKind::StoppedVehicle, Phase::New), 0);
}

#[test]
fn stopping_outside_the_zone_or_as_a_person_is_not_stopped_vehicle() {
    let mut s = Sim::new(NO_STOP, 5.0);
    s.run(40.0, |_| {
        vec![
            (1, "car", bx(950.0, 400.0, 80.0, 60.0)),
            (2, "person", bx(500.0, 400.0, 30.0, 80.0)),
        ]
    });
    assert_eq!(s.count(EventKind::StoppedVehicle, Phase::New), 0);
}

#[test]
fn an_id_switch_does_not_restart_the_stop_timer() {
    let mut s = Sim::new(NO_STOP, 5.0);
    let b = bx(500.0, 400.0, 120.0, 90.0);
    s.run(20.0, |_| vec![(1, "car", b)]);
    // The tracker loses the car for two frames and re-finds it as id 2, then ends id 1.
    s.step(&[], &[]);
    s.step(&[], &[]);
    s.step(&[(2, "car", b)], &[]);
    s.step(&[(2, "car", b)], &[1]);
    s.run(12.0, |_| vec![(2, "car", b)]);
    let news = s.of(EventKind::StoppedVehicle, Phase::New);
    assert_eq!(news.len(), 1, "{:?}", s.events);
    assert_eq!(news[0].track_id, Some(2));
    assert!(news[0].t.as_secs_f64() < 31.0);
    assert_eq!(
        news[0].details["previous_track_ids"],
        serde_json::json!([1])
    );
    assert_eq!(s.count(EventKind::StoppedVehicle, Phase::End), 0);
}

#[test]
fn stopped_vehicle_without_zone_watches_the_whole_frame() {
    let mut s = Sim::new(
        "[[rules]]\nid = \"stall\"\nkind = \"stopped_vehicle\"\ndwell_s = 5\n",
        5.0,
    );
    s.run(6.0, |_| vec![(1, "truck", bx(950.0, 780.0, 80.0, 60.0))]);
    let news = s.of(EventKind::StoppedVehicle, Phase::New);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0].zone, None);
    assert_eq!(news[0].details["no_stopping_zone"], false);
}

// ---------------------------------------------------------------- loitering, intrusion

#[test]
fn loitering_needs_the_dwell_and_restarts_after_leaving() {
    let rules = format!(
        "{SQUARE_ZONE}[[rules]]\nid = \"loiter\"\nkind = \"loitering\"\nzone = \"box\"\ndwell_s = 20\n"
    );
    let mut s = Sim::new(&rules, 5.0);
    // 15 s in, 3 s out, 15 s in: never 20 s in one stay. A car stays all along: not a person.
    s.run(15.0, |_| {
        vec![
            (1, "person", bx(400.0, 400.0, 30.0, 80.0)),
            (2, "car", bx(300.0, 300.0, 80.0, 60.0)),
        ]
    });
    s.run(3.0, |_| {
        vec![
            (1, "person", bx(700.0, 400.0, 30.0, 80.0)),
            (2, "car", bx(300.0, 300.0, 80.0, 60.0)),
        ]
    });
    s.run(15.0, |_| {
        vec![
            (1, "person", bx(400.0, 400.0, 30.0, 80.0)),
            (2, "car", bx(300.0, 300.0, 80.0, 60.0)),
        ]
    });
    assert_eq!(s.count(EventKind::Loitering, Phase::New), 0);
    s.run(10.0, |_| vec![(1, "person", bx(400.0, 400.0, 30.0, 80.0))]);
    let news = s.of(EventKind::Loitering, Phase::New);
    assert_eq!(news.len(), 1);
    assert!(news[0].details["dwell_s"].as_f64().unwrap() >= 20.0);
}

fn intrusion(window: &str) -> Sim {
    Sim::new(
        &format!(
            r#"
[[zones]]
id = "expressway"
polygon = [[200, 200], [600, 200], [600, 600], [200, 600]]
[[rules]]
id = "no-motorbikes"
kind = "intrusion"
zone = "expressway"
classes = ["motorcycle", "person"]
{window}
"#
        ),
        10.0,
    )
}

#[test]
fn intrusion_fires_on_entry_for_the_listed_classes() {
    let mut s = intrusion("");
    s.run(2.0, |_| {
        vec![
            (1, "motorcycle", bx(400.0, 400.0, 40.0, 60.0)),
            (2, "car", bx(300.0, 400.0, 80.0, 60.0)),
        ]
    });
    let news = s.of(EventKind::Intrusion, Phase::New);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0].track_id, Some(1));
    assert!(news[0].t.as_secs_f64() < 0.3);
}

#[test]
fn time_windows_arm_and_disarm_a_rule() {
    // Armed 22:00-05:00 local; the stream starts at 21:59:50.
    let mut s = intrusion("active = [\"22:00-05:00\"]");
    s.e.set_local_time(Duration::ZERO, 21 * 3600 + 59 * 60 + 50);
    s.run(9.0, |_| vec![(1, "person", bx(400.0, 400.0, 30.0, 80.0))]);
    assert_eq!(
        s.count(EventKind::Intrusion, Phase::New),
        0,
        "fired before 22:00"
    );
    s.run(2.0, |_| vec![(1, "person", bx(400.0, 400.0, 30.0, 80.0))]);
    assert_eq!(
        s.count(EventKind::Intrusion, Phase::New),
        1,
        "did not fire after 22:00"
    );
    // At 05:00 the window closes and the open event ends.
    let t = s.t();
    s.e.set_local_time(Duration::from_secs_f64(t), 5 * 3600 - 1);
    s.run(2.0, |_| vec![(1, "person", bx(400.0, 400.0, 30.0, 80.0))]);
    let ends = s.of(EventKind::Intrusion, Phase::End);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].details["reason"], "window_closed");
    s.run(5.0, |_| vec![(1, "person", bx(400.0, 400.0, 30.0, 80.0))]);
    assert_eq!(s.count(EventKind::Intrusion, Phase::New), 1);
}

// ---------------------------------------------------------------- overcrowding, congestion

#[test]
fn overcrowding_needs_the_count_for_the_duration_and_clears() {
    let rules = format!(
        "{SQUARE_ZONE}[[rules]]\nid = \"crowd\"\nkind = \"overcrowding\"\nzone = \"box\"\nmin_count = 5\nmin_duration_s = 3\nclasses = [\"person\"]\n"
    );
    let mut s = Sim::new(&rules, 5.0);
    let people = |n: u64| -> Vec<Obj> {
        (0..n)
            .map(|i| {
                (
                    i + 1,
                    "person",
                    bx(250.0 + 60.0 * i as f64, 400.0, 30.0, 80.0),
                )
            })
            .collect()
    };
    s.run(2.0, |_| people(5));
    s.step(&people(4), &[5]);
    s.run(1.8, |_| people(4));
    s.run(5.0, |_| people(6));
    let news = s.of(EventKind::Overcrowding, Phase::New);
    assert_eq!(news.len(), 1);
    // 6 people from t=4 (members from 4.4 s), held 3 s.
    assert!(
        (7.3..=7.7).contains(&news[0].t.as_secs_f64()),
        "{:?}",
        news[0].t
    );
    assert_eq!(news[0].details["count"], 6);
    assert_eq!(news[0].track_id, None);
    s.run(6.0, |_| people(2));
    assert_eq!(s.count(EventKind::Overcrowding, Phase::End), 1);
}

#[test]
fn congestion_counts_queued_vehicles_and_measures_the_queue() {
    let rules = format!(
        "{LANE}[[rules]]\nid = \"queue\"\nkind = \"congestion\"\nzone = \"lane\"\nmin_count = 3\nmin_duration_s = 5\n"
    );
    let mut s = Sim::new(&rules, 5.0);
    // Four cars stopped nose to tail at x = 800, 700, 600, 500; one car moving through.
    s.run(10.0, |t| {
        let mut v: Vec<Obj> = (0..4)
            .map(|i| {
                (
                    i + 1,
                    "car",
                    bx(800.0 - 100.0 * i as f64, 400.0, 90.0, 60.0),
                )
            })
            .collect();
        v.push((9, "car", bx(100.0 + 80.0 * t, 350.0, 90.0, 60.0)));
        v
    });
    let news = s.of(EventKind::Congestion, Phase::New);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0].details["count"], 4);
    assert_eq!(news[0].details["queue_length_px"], 300.0);
    // Queued after 2 s still, then held 5 s.
    assert!(
        (7.0..=7.5).contains(&news[0].t.as_secs_f64()),
        "{:?}",
        news[0].t
    );
}

// ---------------------------------------------------------------- speeding

/// A perspective road: image trapezoid ↔ ground rectangle 10 m wide, 40 m long.
const CALIB: &str = r#"
[calibration]
image = [[300, 700], [700, 700], [600, 300], [400, 300]]
ground = [[0, 0], [10, 0], [10, 40], [0, 40]]
"#;

fn ground_to_image() -> Homography {
    let img = [
        P::new(300.0, 700.0),
        P::new(700.0, 700.0),
        P::new(600.0, 300.0),
        P::new(400.0, 300.0),
    ];
    let g = [
        P::new(0.0, 0.0),
        P::new(10.0, 0.0),
        P::new(10.0, 40.0),
        P::new(0.0, 40.0),
    ];
    Homography::from_4(&g, &img).unwrap()
}

fn speeding_sim(kmh: f64, jitter_px: f64) -> Sim {
    let mut s = Sim::new(
        &format!("{CALIB}[[rules]]\nid = \"speed\"\nkind = \"speeding\"\nlimit_kmh = 60\n"),
        10.0,
    );
    let h = ground_to_image();
    let j = std::cell::RefCell::new(Jitter(5));
    let v = kmh / 3.6;
    s.run(1.8, |t| {
        let p = h.map(P::new(5.0, 2.0 + v * t)).unwrap();
        let mut j = j.borrow_mut();
        vec![(
            1,
            "car",
            bx(
                p.x + jitter_px * j.next(),
                p.y + jitter_px * j.next(),
                80.0,
                60.0,
            ),
        )]
    });
    s
}

#[test]
fn speed_from_a_known_homography_is_right_within_its_uncertainty() {
    for (kmh, jitter) in [(80.0, 0.0), (80.0, 1.5), (100.0, 1.0)] {
        let s = speeding_sim(kmh, jitter);
        let news = s.of(EventKind::Speeding, Phase::New);
        assert_eq!(news.len(), 1, "{kmh} km/h: {:?}", s.events);
        let d = &news[0].details;
        let (v, u) = (
            d["speed_kmh"].as_f64().unwrap(),
            d["uncertainty_kmh"].as_f64().unwrap(),
        );
        assert!((v - kmh).abs() <= u, "{kmh} km/h estimated {v} ± {u}");
        assert!(
            u > 0.0 && u < 0.3 * kmh,
            "uncertainty {u} out of proportion"
        );
        assert_eq!(d["estimate"], true);
        assert_eq!(d["limit_kmh"], 60.0);
    }
}

#[test]
fn speeding_ends_below_the_limit_and_a_measured_rectangle_calibrates_too() {
    // The same road calibrated by its side lengths instead of ground coordinates.
    let calib = CALIB.replace(
        "ground = [[0, 0], [10, 0], [10, 40], [0, 40]]",
        "distances = [10, 40, 10, 40]",
    );
    let mut s = Sim::new(
        &format!("{calib}[[rules]]\nid = \"speed\"\nkind = \"speeding\"\nlimit_kmh = 60\n"),
        10.0,
    );
    let h = ground_to_image();
    // 90 km/h for 1.5 s, then 30 km/h.
    s.run(4.0, |t| {
        let y = if t < 1.5 {
            2.0 + 25.0 * t
        } else {
            2.0 + 37.5 + 8.33 * (t - 1.5)
        };
        let p = h.map(P::new(5.0, y)).unwrap();
        vec![(1, "car", bx(p.x, p.y, 80.0, 60.0))]
    });
    let news = s.of(EventKind::Speeding, Phase::New);
    assert_eq!(news.len(), 1, "{:?}", s.events);
    let v = news[0].details["speed_kmh"].as_f64().unwrap();
    assert!(
        (v - 90.0).abs() <= news[0].details["uncertainty_kmh"].as_f64().unwrap(),
        "{v}"
    );
    let ends = s.of(EventKind::Speeding, Phase::End);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].details["reason"], "below_limit");
    assert!(ends[0].details["max_speed_kmh"].as_f64().unwrap() >= 80.0);
}

#[test]
fn under_the_limit_is_not_speeding() {
    let s = speeding_sim(45.0, 1.0);
    assert_eq!(
        s.count(EventKind::Speeding, Phase::New),
        0,
        "{:?}",
        s.events
    );
}

// ---------------------------------------------------------------- sudden stop

fn sudden(extra: &str) -> Sim {
    Sim::new(
        &format!(
            "{LANE}[[rules]]\nid = \"halt\"\nkind = \"sudden_stop\"\nzone = \"lane\"\nmin_speed_px_s = 100\nwithin_s = 1.5\n{extra}"
        ),
        10.0,
    )
}

#[test]
fn a_hard_stop_in_a_lane_is_a_sudden_stop_and_a_gentle_one_is_not() {
    let mut s = sudden("");
    // 200 px/s, then stops dead at t = 2.
    s.run(5.0, |t| {
        vec![(1, "car", bx(150.0 + 200.0 * t.min(2.0), 400.0, 80.0, 60.0))]
    });
    let news = s.of(EventKind::SuddenStop, Phase::New);
    assert_eq!(news.len(), 1);
    assert_eq!(news[0].track_id, Some(1));
    assert!(news[0].details["from_speed_px_s"].as_f64().unwrap() >= 100.0);
    let t = news[0].t.as_secs_f64();
    assert!((2.5..=3.0).contains(&t), "{t}");
    // Decelerating from 200 px/s to 0 over 6 s: not sudden.
    let mut s = sudden("");
    s.run(10.0, |t| {
        let tt = t.min(6.0);
        vec![(
            1,
            "car",
            bx(
                150.0 + 200.0 * tt - 200.0 / 12.0 * tt * tt,
                400.0,
                80.0,
                60.0,
            ),
        )]
    });
    assert_eq!(
        s.count(EventKind::SuddenStop, Phase::New),
        0,
        "{:?}",
        s.events
    );
}

#[test]
fn several_vehicles_stopping_together_are_a_possible_incident() {
    let mut s = sudden("min_vehicles = 2\ngroup_s = 5\n");
    s.run(6.0, |t| {
        vec![
            (1, "car", bx(150.0 + 200.0 * t.min(2.0), 350.0, 80.0, 60.0)),
            (2, "car", bx(150.0 + 200.0 * t.min(2.5), 450.0, 80.0, 60.0)),
        ]
    });
    let group: Vec<&RuleEvent> = s
        .events
        .iter()
        .filter(|e| e.kind == EventKind::SuddenStop && e.track_id.is_none())
        .collect();
    assert_eq!(
        group.first().map(|e| e.phase),
        Some(Phase::New),
        "{:?}",
        s.events
    );
    assert_eq!(group[0].details["possible_incident"], true);
    assert_eq!(group[0].details["vehicles"], 2);
    // Both drive off: the incident ends.
    s.run(3.0, |t| {
        vec![
            (1, "car", bx(550.0 + 150.0 * (t - 6.0), 350.0, 80.0, 60.0)),
            (2, "car", bx(650.0 + 150.0 * (t - 6.0), 450.0, 80.0, 60.0)),
        ]
    });
    assert!(
        s.events.iter().any(|e| e.kind == EventKind::SuddenStop
            && e.track_id.is_none()
            && e.phase == Phase::End)
    );
}

// ---------------------------------------------------------------- engine, config

#[test]
fn the_engine_refuses_what_check_refuses() {
    let bad = cam("[[rules]]\nid = \"r\"\nkind = \"loitering\"\nzone = \"nowhere\"\n");
    let err = RuleEngine::new(&bad.geometry(), (W, H))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nowhere") && err.contains("cam"), "{err}");
    let err = RuleEngine::new(&cam("").geometry(), (640, 480))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("frame_size"), "{err}");
}

/// The kinds table is the one place a kind is described: its config name, its events' names and
/// the keys `configs/README.md` documents for it all agree with it.
#[test]
fn the_kinds_table_agrees_with_the_config_names_the_events_and_the_readme() {
    let readme = include_str!("../../../configs/README.md");
    for kind in RuleKind::ALL {
        let name = kind.as_str();
        assert_eq!(serde_json::to_value(kind).unwrap(), name);
        let spec = kind.spec();
        let (event, end) = (spec.event.as_str(), spec.end_event.as_str());
        if kind == RuleKind::Zone {
            assert_eq!((event, end), ("zone_enter", "zone_exit"));
        } else {
            assert_eq!((event, end), (name, name), "{name}");
        }
        assert_eq!(serde_json::to_value(spec.event).unwrap(), event);
        for key in spec.required {
            assert!(
                spec.keys.contains(key),
                "{name}: required {key:?} not a key"
            );
        }
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("configs/README.md has no row for `{name}`"));
        // the `needs` and `optional keys` columns
        let row: String = row.split('|').skip(2).take(2).collect();
        for key in spec.keys {
            assert!(
                row.contains(&format!("`{}`", key.name())),
                "configs/README.md: the `{name}` row does not name `{}`",
                key.name()
            );
        }
        for key in kinds::Key::ALL {
            if !spec.keys.contains(&key) {
                assert!(
                    !row.contains(&format!("`{}`", key.name())),
                    "configs/README.md: the `{name}` row names `{}`, which {name} refuses",
                    key.name()
                );
            }
        }
    }
    assert_eq!(serde_json::to_value(Phase::Update).unwrap(), "update");
}

// ---------------------------------------------------------------- red light

/// A lamp zone top-right, a stop line across the road at y = 500 counted upwards.
const JUNCTION: &str = r#"
[[zones]]
id = "lamp"
polygon = [[900, 20], [940, 20], [940, 60], [900, 60]]

[[lines]]
id = "stop"
points = [[100, 500], [900, 500]]
direction = [[500, 560], [500, 440]]

[[rules]]
id = "red"
kind = "red_light"
line = "stop"
signal = "lamp"
"#;

/// A frame of the junction: a dark green-grey scene with the lamp disc lit in `lamp`.
fn junction_frame(lamp: [u8; 3], grey: bool) -> Vec<u8> {
    let scene: [u8; 3] = if grey { [70, 70, 70] } else { [60, 75, 55] };
    let mut v = Vec::with_capacity((W * H * 3) as usize);
    for y in 0..H {
        for x in 0..W {
            let d = ((f64::from(x) - 920.0).powi(2) + (f64::from(y) - 40.0).powi(2)).sqrt();
            v.extend_from_slice(if d <= 12.0 { &lamp } else { &scene });
        }
    }
    v
}

/// Runs the junction at 10 fps: `lamp(t)` picks the frame, `objs(t)` the vehicles.
fn junction(
    secs: f64,
    lamp: impl Fn(f64) -> usize,
    frames: &[Vec<u8>],
    objs: impl Fn(f64) -> Vec<Obj>,
) -> Sim {
    let mut s = Sim::new(JUNCTION, 10.0);
    while s.t() < secs - 1e-9 {
        let t = Duration::from_secs_f64(s.t());
        s.e.observe_frame(t, &frames[lamp(s.t())], W, H);
        let o = objs(s.t());
        s.step(&o, &[]);
    }
    s
}

/// A car driving up the road at 100 px/s, crossing the stop line (y = 500) at `cross_t`.
fn car_crossing(id: u64, x: f64, cross_t: f64) -> impl Fn(f64) -> Vec<Obj> {
    move |t| {
        let y = 500.0 - (t - cross_t) * 100.0;
        if (300.0..=750.0).contains(&y) {
            vec![(id, "car", bx(x, y, 80.0, 60.0))]
        } else {
            vec![]
        }
    }
}

#[test]
fn crossing_the_stop_line_on_red_is_a_red_light_event_and_on_green_or_amber_it_is_not() {
    assert!(Sim::new(JUNCTION, 10.0).e.watches_signals());
    let frames = [
        junction_frame([250, 45, 40], false), // red lit
        junction_frame([80, 40, 35], false),  // red unlit
    ];
    // red from t = 1 s; the car crosses at t = 3.5 s: 2.5 s into red
    let s = junction(
        6.0,
        |t| usize::from(t < 1.0),
        &frames,
        car_crossing(7, 400.0, 3.5),
    );
    let news = s.of(EventKind::RedLight, Phase::New);
    assert_eq!(news.len(), 1, "{:?}", s.events);
    let e = news[0];
    assert_eq!(e.track_id, Some(7));
    assert_eq!(e.line.as_deref(), Some("stop"));
    assert_eq!(
        e.zone.as_deref(),
        Some("lamp"),
        "the lamp is drawn on the evidence"
    );
    let red_for = e.details["red_for_s"].as_f64().unwrap();
    assert!((2.2..=2.8).contains(&red_for), "{red_for}");
    assert_eq!(e.details["direction"], "forward");
    assert_eq!(s.count(EventKind::RedLight, Phase::End), 1);

    // the LED dark in the 3 frames around the crossing (flicker): still red, judged once lit again
    let flicker = |t: f64| usize::from(t < 1.0 || (3.45..3.75).contains(&t));
    let s = junction(6.0, flicker, &frames, car_crossing(7, 400.0, 3.5));
    let news = s.of(EventKind::RedLight, Phase::New);
    assert_eq!(news.len(), 1, "{:?}", s.events);
    assert!(
        news[0].t > Duration::from_secs_f64(3.7),
        "judged after the dark frames"
    );
    assert!(news[0].details["crossed_s"].as_f64().unwrap() < 3.7);
    // the lamp went dark for good 0.3 s before the crossing (green): nothing
    let s = junction(
        6.0,
        |t| usize::from(!(1.0..3.2).contains(&t)),
        &frames,
        car_crossing(7, 400.0, 3.5),
    );
    assert_eq!(
        s.count(EventKind::RedLight, Phase::New),
        0,
        "{:?}",
        s.events
    );
    // never red: nothing
    let s = junction(6.0, |_| 1, &frames, car_crossing(7, 400.0, 3.5));
    assert_eq!(
        s.count(EventKind::RedLight, Phase::New),
        0,
        "{:?}",
        s.events
    );
    // red only 0.4 s before the crossing (under min_duration_s = 1): nothing
    let s = junction(
        6.0,
        |t| usize::from(t < 3.1),
        &frames,
        car_crossing(7, 400.0, 3.5),
    );
    assert_eq!(
        s.count(EventKind::RedLight, Phase::New),
        0,
        "{:?}",
        s.events
    );
    // red, but the car drives the other way (the line counts upwards only): nothing
    let s = junction(
        6.0,
        |_| 0,
        &frames,
        |t| {
            let y = 300.0 + t * 100.0;
            vec![(9, "car", bx(400.0, y, 80.0, 60.0))]
        },
    );
    assert_eq!(
        s.count(EventKind::RedLight, Phase::New),
        0,
        "{:?}",
        s.events
    );
}

#[test]
fn a_grey_infrared_picture_leaves_the_lamp_unknown_and_raises_nothing() {
    let frames = [junction_frame([230, 230, 230], true)];
    let mut s = Sim::new(JUNCTION, 10.0);
    let seen = s.e.observe_frame(Duration::ZERO, &frames[0], W, H);
    assert_eq!(seen, vec![("lamp".to_string(), Lamp::Unknown)]);
    let s = junction(6.0, |_| 0, &frames, car_crossing(7, 400.0, 3.5));
    assert_eq!(
        s.count(EventKind::RedLight, Phase::New),
        0,
        "{:?}",
        s.events
    );
}

#[test]
fn a_red_light_rule_needs_its_stop_line_and_a_lamp_zone_that_exists() {
    let problems = |toml: &str| -> Vec<String> {
        check_camera(&cam(toml).geometry())
            .into_iter()
            .map(|p| p.message)
            .collect()
    };
    let p = problems(
        "[[lines]]\nid = \"stop\"\npoints = [[0, 0], [100, 0]]\n[[rules]]\nid = \"r\"\nkind = \"red_light\"\nline = \"stop\"\n",
    );
    assert_eq!(p, ["a red_light rule needs `signal`"]);
    let p = problems(
        "[[lines]]\nid = \"stop\"\npoints = [[0, 0], [100, 0]]\n[[rules]]\nid = \"r\"\nkind = \"red_light\"\nline = \"stop\"\nsignal = \"lamp\"\n",
    );
    assert!(
        p.len() == 1 && p[0].contains("names zone `lamp`, which this camera does not define"),
        "{p:?}"
    );
    // `signal` belongs to red_light only
    let p = problems(&format!(
        "{SQUARE_ZONE}[[rules]]\nid = \"r\"\nkind = \"loitering\"\nzone = \"box\"\nsignal = \"box\"\n"
    ));
    assert_eq!(p, ["`signal` does not apply to a loitering rule"]);
}
