//! Every semantic check of a camera's zones, lines, rules and calibration, in one place, so that
//! `edge-agent check` (which pins each problem to `file:line:col`) and [`super::RuleEngine::new`]
//! refuse exactly the same configs. Also resolves each rule's thresholds with their defaults.

use std::collections::HashMap;
use std::ops::Sub;

use super::config::CalibrationConfig;
use super::config::CameraGeometry;
use super::geometry::{Homography, P, area2, self_intersection};
use super::kinds::{Key as RuleKey, LABELS};

/// A step of the path from the camera's table to the offending value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Key(&'static str),
    Index(usize),
}

/// One problem with a camera's rules config.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where, relative to the `[[cameras]]` table.
    pub at: Vec<At>,
    pub message: String,
    pub hint: String,
}

/// A parsed `"HH:MM-HH:MM"` window in minutes after local midnight; `end` may be below `start`
/// (the window wraps midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

impl Window {
    /// Whether a local time (seconds after midnight) falls in the window.
    pub fn contains(&self, secs_of_day: u32) -> bool {
        let m = (secs_of_day / 60) % 1440;
        if self.start < self.end {
            m >= self.start && m < self.end
        } else {
            m >= self.start || m < self.end
        }
    }
}

/// Parses `"HH:MM-HH:MM"`; `24:00` is allowed as an end.
pub fn parse_window(s: &str) -> Result<Window, String> {
    let hm = |part: &str, end: bool| -> Result<u32, String> {
        let (h, m) = part
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("`{part}` is not HH:MM"))?;
        let bad = || format!("`{part}` is not a time HH:MM");
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m >= 60 || h > 24 || (h == 24 && (m != 0 || !end)) {
            return Err(bad());
        }
        Ok(h * 60 + m)
    };
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("time window `{s}` is not HH:MM-HH:MM"))?;
    let (start, end) = (hm(a, false)?, hm(b, true)?);
    if start == end % 1440 && !(start == 0 && end == 1440) {
        return Err(format!(
            "time window `{s}` starts and ends at the same time"
        ));
    }
    Ok(Window {
        start,
        end: if end == 1440 && start != 0 { 0 } else { end },
    })
}

/// The calibration as a homography from image pixels to ground metres.
pub(super) fn calibration_homography(c: &CalibrationConfig) -> Result<Homography, Problem> {
    let problem = |key: &'static str, message: String, hint: &str| Problem {
        at: vec![At::Key("calibration"), At::Key(key)],
        message,
        hint: hint.into(),
    };
    if c.image.len() != 4 {
        return Err(problem(
            "image",
            format!(
                "calibration.image has {} points, needs exactly 4",
                c.image.len()
            ),
            "give the 4 corners of a measured quadrilateral on the road surface",
        ));
    }
    let img: [P; 4] = std::array::from_fn(|i| P::from_arr(c.image[i]));
    let ground: [P; 4] = match (&c.ground, &c.distances) {
        (Some(g), None) => {
            if g.len() != 4 {
                return Err(problem(
                    "ground",
                    format!("calibration.ground has {} points, needs exactly 4", g.len()),
                    "give the ground position in metres of each image point, in the same order",
                ));
            }
            std::array::from_fn(|i| P::from_arr(g[i]))
        }
        (None, Some(d)) => {
            if d.len() != 4 || d.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(problem(
                    "distances",
                    "calibration.distances needs 4 positive lengths in metres".into(),
                    "measure sides 1→2, 2→3, 3→4, 4→1 of a rectangle on the road",
                ));
            }
            let w = (d[0] + d[2]) / 2.0;
            let l = (d[1] + d[3]) / 2.0;
            [
                P::new(0.0, 0.0),
                P::new(w, 0.0),
                P::new(w, l),
                P::new(0.0, l),
            ]
        }
        (Some(_), Some(_)) => {
            return Err(problem(
                "distances",
                "calibration has both `ground` and `distances`".into(),
                "keep one: `ground` for surveyed points, `distances` for a measured rectangle",
            ));
        }
        (None, None) => {
            return Err(problem(
                "image",
                "calibration needs `ground` or `distances`".into(),
                "add the ground position of each point in metres, or the 4 side lengths",
            ));
        }
    };
    if self_intersection(&img).is_some() || area2(&img).abs() < 1.0 {
        return Err(problem(
            "image",
            "calibration.image points do not form a simple quadrilateral".into(),
            "list the 4 points in order around the shape, no three in a row",
        ));
    }
    Homography::from_4(&img, &ground).ok_or_else(|| {
        problem(
            "image",
            "the calibration points give a non-invertible homography".into(),
            "no three points may be in a row, and the ground points must match the image order",
        )
    })
}

/// Checks a camera's zones, lines, rules and calibration. Empty means the engine will accept it.
/// Most corners a zone may have (config files, remote documents and the API alike).
pub(super) const MAX_POLYGON_POINTS: usize = 256;

pub fn check_camera(cam: &CameraGeometry<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |at: Vec<At>, message: String, hint: &str| {
        out.push(Problem {
            at,
            message,
            hint: hint.into(),
        })
    };
    use At::{Index, Key};
    let frame = cam.frame_size;
    if let Some([w, h]) = frame
        && (w == 0 || h == 0)
    {
        push(
            vec![Key("frame_size")],
            format!("frame_size [{w}, {h}] is empty"),
            "give the stream's width and height in pixels, e.g. [1920, 1080]",
        );
    }
    let check_point =
        |at: Vec<At>, p: [f64; 2], what: &str, push: &mut dyn FnMut(Vec<At>, String, &str)| {
            if !(p[0].is_finite() && p[1].is_finite()) {
                push(
                    at,
                    format!("{what} point {p:?} is not a number"),
                    "use pixel coordinates",
                );
            } else if let Some([w, h]) = frame
                && (p[0] < 0.0 || p[1] < 0.0 || p[0] > f64::from(w) || p[1] > f64::from(h))
            {
                push(
                    at,
                    format!(
                        "{what} point [{}, {}] is outside the {w}x{h} frame",
                        p[0], p[1]
                    ),
                    "coordinates are pixels of the full frame, origin top-left; check frame_size",
                );
            }
        };
    let check_classes =
        |at: Vec<At>, classes: &[String], push: &mut dyn FnMut(Vec<At>, String, &str)| {
            for (k, c) in classes.iter().enumerate() {
                if !LABELS.contains(&c.as_str()) {
                    let mut at = at.clone();
                    at.push(Index(k));
                    push(
                        at,
                        format!("unknown class `{c}`"),
                        "use COCO labels: person, bicycle, car, motorcycle, bus, truck",
                    );
                }
            }
        };

    let mut zone_ids: HashMap<&str, usize> = HashMap::new();
    for (i, z) in cam.zones.iter().enumerate() {
        let at = |k: &'static str| vec![Key("zones"), Index(i), Key(k)];
        if let Some(first) = zone_ids.insert(z.id.as_str(), i) {
            push(
                at("id"),
                format!("duplicate zone id `{}` (also zone #{})", z.id, first + 1),
                "give every zone of a camera its own id",
            );
        }
        id_ok(&z.id, "zone", at("id"), &mut push);
        if z.polygon.len() < 3 {
            push(
                at("polygon"),
                format!(
                    "zone `{}` has {} points; a polygon needs at least 3",
                    z.id,
                    z.polygon.len()
                ),
                "list the corners [[x, y], ...] in order around the zone",
            );
        } else if z.polygon.len() > MAX_POLYGON_POINTS {
            // the self-intersection check grows with the square of the points; a zone drawn on a
            // camera frame needs a few dozen
            push(
                at("polygon"),
                format!(
                    "zone `{}` has {} points; at most {MAX_POLYGON_POINTS} are accepted",
                    z.id,
                    z.polygon.len()
                ),
                "simplify the outline: a zone needs its corners, not every pixel of its edge",
            );
        } else {
            let poly: Vec<P> = z.polygon.iter().map(|p| P::from_arr(*p)).collect();
            if let Some((a, b)) = self_intersection(&poly) {
                push(
                    at("polygon"),
                    format!(
                        "zone `{}` polygon crosses itself (edge {}→{} crosses edge {}→{})",
                        z.id,
                        a + 1,
                        (a + 1) % poly.len() + 1,
                        b + 1,
                        (b + 1) % poly.len() + 1
                    ),
                    "list the corners in order around the zone (clockwise or anticlockwise)",
                );
            } else if area2(&poly).abs() < 1.0 {
                push(
                    at("polygon"),
                    format!("zone `{}` polygon has no area", z.id),
                    "the corners must not all lie on one line",
                );
            }
        }
        for (k, p) in z.polygon.iter().enumerate() {
            let mut a = at("polygon");
            a.push(Index(k));
            check_point(a, *p, &format!("zone `{}`", z.id), &mut push);
        }
        check_classes(at("classes"), &z.classes, &mut push);
        if z.inertia == 0 || z.inertia > 100 {
            push(
                at("inertia"),
                format!("inertia = {} is outside 1..=100 frames", z.inertia),
                "3 frames suits 5-10 fps",
            );
        }
        if let Some([a, b]) = z.direction {
            check_point(at("direction"), a, "direction", &mut push);
            check_point(at("direction"), b, "direction", &mut push);
            if P::from_arr(a).dist(P::from_arr(b)) < 1.0 {
                push(
                    at("direction"),
                    format!("zone `{}` direction has zero length", z.id),
                    "draw the arrow from a point to another point further along the lane",
                );
            }
        }
    }

    let mut line_ids: HashMap<&str, usize> = HashMap::new();
    for (i, l) in cam.lines.iter().enumerate() {
        let at = |k: &'static str| vec![Key("lines"), Index(i), Key(k)];
        if let Some(first) = line_ids.insert(l.id.as_str(), i) {
            push(
                at("id"),
                format!("duplicate line id `{}` (also line #{})", l.id, first + 1),
                "give every line of a camera its own id",
            );
        }
        id_ok(&l.id, "line", at("id"), &mut push);
        for (k, p) in l.points.iter().enumerate() {
            let mut a = at("points");
            a.push(Index(k));
            check_point(a, *p, &format!("line `{}`", l.id), &mut push);
        }
        for p in l.direction.iter().flatten() {
            check_point(
                at("direction"),
                *p,
                &format!("line `{}` direction", l.id),
                &mut push,
            );
        }
        let (a, b) = (P::from_arr(l.points[0]), P::from_arr(l.points[1]));
        if a.dist(b) < 2.0 {
            push(
                at("points"),
                format!("line `{}` is degenerate: its two points are the same", l.id),
                "give two distinct points [[x1, y1], [x2, y2]]",
            );
        } else if let Some([d0, d1]) = l.direction {
            let v = P::from_arr(d1).sub(P::from_arr(d0));
            let seg = b.sub(a);
            match v.unit() {
                None => push(
                    at("direction"),
                    format!("line `{}` direction has zero length", l.id),
                    "draw the arrow across the line, from one side to the other",
                ),
                Some(u) if seg.unit().is_some_and(|s| s.cross(u).abs() < 0.17) => push(
                    at("direction"),
                    format!(
                        "line `{}` direction runs along the line, not across it",
                        l.id
                    ),
                    "draw the arrow across the line in the direction of travel to count",
                ),
                Some(_) => {}
            }
        }
        if !(l.hysteresis_px.is_finite() && l.hysteresis_px >= 0.0 && l.hysteresis_px <= 200.0) {
            push(
                at("hysteresis_px"),
                format!("hysteresis_px = {} is outside 0..=200", l.hysteresis_px),
                "a few pixels (6) absorb box jitter",
            );
        }
    }

    if let Some(c) = &cam.calibration {
        for (k, p) in c.image.iter().enumerate() {
            check_point(
                vec![Key("calibration"), Key("image"), Index(k)],
                *p,
                "calibration",
                &mut push,
            );
        }
        if !(c.error_pct.is_finite() && (0.0..=50.0).contains(&c.error_pct)) {
            push(
                vec![Key("calibration"), Key("error_pct")],
                format!("error_pct = {} is outside 0..=50", c.error_pct),
                "a tape-measured rectangle is good to about 5 %",
            );
        }
        if let Err(p) = calibration_homography(c) {
            out_push(&mut push, p);
        }
    }

    let mut rule_ids: HashMap<&str, usize> = HashMap::new();
    for (i, r) in cam.rules.iter().enumerate() {
        let at = |k: &'static str| vec![Key("rules"), Index(i), Key(k)];
        if let Some(first) = rule_ids.insert(r.id.as_str(), i) {
            push(
                at("id"),
                format!("duplicate rule id `{}` (also rule #{})", r.id, first + 1),
                "give every rule of a camera its own id; events name it",
            );
        }
        id_ok(&r.id, "rule", at("id"), &mut push);
        let kind = r.kind.as_str();
        let spec = r.kind.spec();
        for key in RuleKey::ALL {
            let set = key.is_set(r);
            if set && !spec.keys.contains(&key) {
                let keys: Vec<&str> = spec.keys.iter().map(|k| k.name()).collect();
                push(
                    at(key.name()),
                    format!("`{}` does not apply to a {kind} rule", key.name()),
                    &format!("keys of {kind}: {}", keys.join(", ")),
                );
            }
            if !set && spec.required.contains(&key) {
                push(
                    at("kind"),
                    format!("a {kind} rule needs `{}`", key.name()),
                    "add the key to this [[cameras.rules]] entry",
                );
            }
        }
        for (key, id) in [(RuleKey::Zone, &r.zone), (RuleKey::Signal, &r.signal)] {
            let Some(z) = id.as_ref().filter(|_| spec.keys.contains(&key)) else {
                continue;
            };
            match cam.zones.iter().find(|zc| &zc.id == z) {
                None => push(
                    at(key.name()),
                    format!(
                        "rule `{}` names zone `{z}`, which this camera does not define",
                        r.id
                    ),
                    &known("zones", cam.zones.iter().map(|z| z.id.as_str())),
                ),
                Some(zc) if key == RuleKey::Zone && spec.lane && zc.direction.is_none() => push(
                    at("zone"),
                    format!("{kind} needs a lane: zone `{z}` has no `direction`"),
                    "add direction = [[x1, y1], [x2, y2]] (the travel direction) to the zone",
                ),
                Some(_) => {}
            }
        }
        if let Some(l) = &r.line
            && spec.keys.contains(&RuleKey::Line)
            && !cam.lines.iter().any(|lc| &lc.id == l)
        {
            push(
                at("line"),
                format!(
                    "rule `{}` names line `{l}`, which this camera does not define",
                    r.id
                ),
                &known("lines", cam.lines.iter().map(|l| l.id.as_str())),
            );
        }
        check_classes(at("classes"), &r.classes, &mut push);
        for (k, w) in r.active.iter().enumerate() {
            if let Err(e) = parse_window(w) {
                let mut a = at("active");
                a.push(Index(k));
                push(
                    a,
                    e,
                    "write windows as \"HH:MM-HH:MM\" in local time, e.g. \"22:00-05:00\"",
                );
            }
        }
        if !(r.update_every_s.is_finite() && r.update_every_s > 0.0 && r.update_every_s <= 86_400.0)
        {
            push(
                at("update_every_s"),
                format!(
                    "update_every_s = {} must be a positive number",
                    r.update_every_s
                ),
                "seconds between two updates of one event",
            );
        }
        for key in RuleKey::ALL {
            if let Some(v) = key.real(r) {
                let zero_ok = matches!(key, RuleKey::DwellS | RuleKey::MinDurationS);
                if !v.is_finite() || v < 0.0 || (v == 0.0 && !zero_ok) || v > 86_400.0 {
                    push(
                        at(key.name()),
                        format!("{} = {v} must be a positive number", key.name()),
                        "seconds, pixels, metres or km/h as the key name says",
                    );
                }
            }
            if key.count(r) == Some(0) {
                let example = match key {
                    RuleKey::MinCount => "e.g. 10 vehicles",
                    RuleKey::MinFrames => "3 frames is a good start",
                    _ => "2 vehicles is a good start",
                };
                push(
                    at(key.name()),
                    format!("{} must be at least 1", key.name()),
                    example,
                );
            }
        }
        for (key, both) in [
            (
                "min_distance_m",
                r.min_distance_m.is_some() && r.min_distance_px.is_some(),
            ),
            (
                "min_speed_kmh",
                r.min_speed_kmh.is_some() && r.min_speed_px_s.is_some(),
            ),
        ] {
            if both {
                push(
                    at(key),
                    format!("give `{key}` or its pixel form, not both"),
                    "metres need calibration; pixels work without",
                );
            }
        }
        let needs_calibration =
            spec.calibrated || r.min_distance_m.is_some() || r.min_speed_kmh.is_some();
        if needs_calibration && cam.calibration.is_none() {
            push(
                at("kind"),
                format!(
                    "rule `{}` works in metres but the camera has no [cameras.calibration]",
                    r.id
                ),
                "add [cameras.calibration] with 4 image points and their ground positions",
            );
        }
    }
    out
}

fn out_push(push: &mut impl FnMut(Vec<At>, String, &str), p: Problem) {
    push(p.at, p.message, &p.hint);
}

fn known<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.collect();
    if ids.is_empty() {
        format!("this camera defines no {what}; add [[cameras.{what}]]")
    } else {
        format!("{what} of this camera: {}", ids.join(", "))
    }
}

fn id_ok(id: &str, what: &str, at: Vec<At>, push: &mut impl FnMut(Vec<At>, String, &str)) {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        push(
            at,
            format!("{what} id `{id}` must be 1-64 ASCII letters, digits, '-', '_' or '.'"),
            "use a short id such as `lane-1`; events carry it",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CameraConfig;
    use crate::config::{ValidateOptions, parse_str, validate};

    /// A zone of thousands of corners (a few KB of text, seconds of the quadratic crossing check on
    /// the API's validation) is refused by its count.
    #[test]
    fn a_zone_with_too_many_corners_is_refused_before_the_crossing_check() {
        let points: Vec<String> = (0..5000)
            .map(|i| {
                let a = i as f64 / 5000.0 * std::f64::consts::TAU;
                format!(
                    "[{:.1}, {:.1}]",
                    500.0 + 400.0 * a.cos(),
                    400.0 + 300.0 * a.sin()
                )
            })
            .collect();
        let text = format!(
            "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/x\"\nframe_size = [1000, 800]\n\n[[cameras.zones]]\nid = \"ring\"\npolygon = [{}]\n",
            points.join(", ")
        );
        let loaded = parse_str(std::path::Path::new("t.toml"), text).unwrap();
        let diags = validate(&loaded, &ValidateOptions::default());
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("5000 points; at most 256")),
            "{diags:?}"
        );
    }

    /// Each problem is reported at the value that causes it, as `line:col`.
    #[test]
    fn config_problems_are_pinned_to_their_value() {
        let text = r#"[device]
site_id = "s"
device_id = "d"

[[cameras]]
id = "c"
url = "rtsp://h/x"
frame_size = [1000, 800]

[[cameras.zones]]
id = "a"
polygon = [[0, 0], [100, 100], [100, 0], [0, 100]]

[[cameras.zones]]
id = "a"
polygon = [[0, 0], [1200, 0], [0, 100]]

[[cameras.lines]]
id = "l"
points = [[10, 10], [10, 10]]

[[cameras.rules]]
id = "r"
kind = "loitering"
zone = "b"
active = ["22:00-25:00"]
limit_kmh = 50

[cameras.calibration]
image = [[0, 0], [10, 10], [20, 20], [30, 30]]
ground = [[0, 0], [1, 0], [1, 1], [0, 1]]
"#;
        let loaded = parse_str(std::path::Path::new("t.toml"), text.into()).unwrap();
        let opts = ValidateOptions {
            skip_model_hashes: true,
            no_local_files: false,
        };
        let diags: Vec<String> = validate(&loaded, &opts)
            .iter()
            .filter(|d| d.severity == crate::config::Severity::Error)
            .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
            .collect();
        let all = diags.join("\n");
        for (at, needle) in [
            ("12:11", "crosses itself"),
            ("15:6", "duplicate zone id `a`"),
            ("16:20", "outside the 1000x800 frame"),
            ("20:10", "degenerate"),
            ("25:8", "zone `b`"),
            ("26:11", "is not a time"),
            ("27:13", "does not apply to a loitering rule"),
            ("30:9", "simple quadrilateral"),
        ] {
            assert!(
                diags
                    .iter()
                    .any(|d| d.starts_with(&format!("{at} ")) && d.contains(needle)),
                "no `{needle}` at {at} in:\n{all}"
            );
        }
        assert_eq!(diags.len(), 8, "{all}");
    }

    #[test]
    fn a_singular_calibration_and_a_line_direction_along_the_line_are_refused() {
        let cam: CameraConfig = toml::from_str(
            r#"id = "c"
url = "x"
[[lines]]
id = "l"
points = [[0, 0], [100, 0]]
direction = [[10, 5], [90, 5]]
[calibration]
image = [[0, 0], [100, 0], [100, 100], [0, 100]]
ground = [[0, 0], [1, 0], [2, 0], [3, 0]]
"#,
        )
        .unwrap();
        let problems = check_camera(&cam.geometry());
        let text: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            text.iter().any(|m| m.contains("runs along the line")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|m| m.contains("non-invertible")),
            "{text:?}"
        );
        assert_eq!(problems.len(), 2, "{text:?}");
    }

    #[test]
    fn windows_parse_wrap_and_reject_nonsense() {
        let w = parse_window("22:00-05:00").unwrap();
        assert!(w.contains(23 * 3600) && w.contains(3600) && !w.contains(12 * 3600));
        assert!(!w.contains(5 * 3600) && w.contains(22 * 3600));
        let day = parse_window("07:30-17:00").unwrap();
        assert!(day.contains(8 * 3600) && !day.contains(7 * 3600) && !day.contains(20 * 3600));
        let all = parse_window("00:00-24:00").unwrap();
        assert!(all.contains(0) && all.contains(86_399));
        for bad in [
            "25:00-01:00",
            "10:00",
            "10:00-10:00",
            "1000-1100",
            "10:60-11:00",
            "24:00-01:00",
            "a:00-b:00",
        ] {
            assert!(parse_window(bad).is_err(), "{bad} accepted");
        }
    }
}
