//! Draws a camera's zones, lines, lane directions and calibration points onto a frame, so an
//! integrator can check a config by eye (`edge-agent zones`). Own tiny raster code and 5×7 bitmap
//! font: no font file to ship, no extra dependency.

use image::{Rgb, RgbImage};
use std::ops::{Add, Sub};

use super::config::{CameraGeometry, OwnedGeometry};
use super::geometry::{P, in_polygon};

/// Colours given to zones and lines in turn (distinct on road grey and at night).
const PALETTE: &[(&str, [u8; 3])] = &[
    ("orange", [255, 140, 0]),
    ("cyan", [0, 200, 255]),
    ("magenta", [230, 40, 220]),
    ("lime", [120, 230, 0]),
    ("yellow", [255, 220, 0]),
    ("red", [235, 30, 30]),
    ("blue", [40, 90, 255]),
    ("teal", [0, 170, 140]),
];

/// One drawn item, for the legend printed beside the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub what: &'static str,
    pub id: String,
    pub colour: &'static str,
    /// Rules that use the item (`id (kind)`).
    pub rules: Vec<String>,
}

/// Draws everything the camera's rules refer to onto `img` and returns the legend.
pub fn render(img: &mut RgbImage, cam: &CameraGeometry<'_>) -> Vec<LegendEntry> {
    let mut legend = Vec::new();
    let scale = (img.width().max(img.height()) / 500).clamp(1, 4);
    let used_by = |zone: Option<&str>, line: Option<&str>| -> Vec<String> {
        cam.rules
            .iter()
            .filter(|r| {
                (zone.is_some() && r.zone.as_deref() == zone)
                    || (line.is_some() && r.line.as_deref() == line)
            })
            .map(|r| format!("{} ({})", r.id, r.kind.as_str()))
            .collect()
    };
    for (i, z) in cam.zones.iter().enumerate() {
        let name = zone(img, cam, i, scale);
        legend.push(LegendEntry {
            what: "zone",
            id: z.id.clone(),
            colour: name,
            rules: used_by(Some(&z.id), None),
        });
    }
    for (i, l) in cam.lines.iter().enumerate() {
        let name = line(img, cam, i, scale);
        legend.push(LegendEntry {
            what: "line",
            id: l.id.clone(),
            colour: name,
            rules: used_by(None, Some(&l.id)),
        });
    }
    if let Some(cal) = &cam.calibration {
        let pts: Vec<P> = cal.image.iter().map(|p| P::from_arr(*p)).collect();
        for k in 0..pts.len() {
            dashed_line(img, pts[k], pts[(k + 1) % pts.len()], [255, 255, 255]);
            label(img, pts[k], &format!("{}", k + 1), [255, 255, 255], scale);
        }
        legend.push(LegendEntry {
            what: "calibration",
            id: "calibration".into(),
            colour: "white dashed",
            rules: cam
                .rules
                .iter()
                .filter(|r| {
                    r.min_distance_m.is_some()
                        || r.min_speed_kmh.is_some()
                        || r.kind.as_str() == "speeding"
                })
                .map(|r| format!("{} ({})", r.id, r.kind.as_str()))
                .collect(),
        });
    }
    legend
}

/// Zone `i` of `cam`: filled, outlined, its direction arrow and its id; returns its colour's name.
fn zone(img: &mut RgbImage, cam: &CameraGeometry<'_>, i: usize, scale: u32) -> &'static str {
    let z = &cam.zones[i];
    let (name, c) = PALETTE[i % PALETTE.len()];
    let poly: Vec<P> = z.polygon.iter().map(|p| P::from_arr(*p)).collect();
    fill_polygon(img, &poly, c, 0.3);
    for k in 0..poly.len() {
        thick_line(img, poly[k], poly[(k + 1) % poly.len()], 2.0, c);
    }
    if let Some([a, b]) = z.direction {
        arrow(img, P::from_arr(a), P::from_arr(b), 4.0, [255, 255, 255]);
        arrow(img, P::from_arr(a), P::from_arr(b), 2.0, c);
    }
    if let Some(first) = poly
        .iter()
        .min_by(|a, b| (a.y + a.x * 0.01).total_cmp(&(b.y + b.x * 0.01)))
    {
        label(img, *first, &z.id, c, scale);
    }
    name
}

/// Line `i` of `cam`: the line, its direction (or forward side) and its id; returns its colour's
/// name.
fn line(img: &mut RgbImage, cam: &CameraGeometry<'_>, i: usize, scale: u32) -> &'static str {
    let l = &cam.lines[i];
    let (name, c) = PALETTE[(cam.zones.len() + i) % PALETTE.len()];
    let (a, b) = (P::from_arr(l.points[0]), P::from_arr(l.points[1]));
    thick_line(img, a, b, 5.0, [0, 0, 0]);
    thick_line(img, a, b, 3.0, c);
    let (d0, d1) = match l.direction {
        Some([d0, d1]) => (P::from_arr(d0), P::from_arr(d1)),
        None => {
            // Undirected: show the `forward` side (right of first → second point).
            let mid = a.add(b).scale(0.5);
            let n = b
                .sub(a)
                .unit()
                .map_or(P::new(0.0, 1.0), |u| P::new(-u.y, u.x));
            (mid.sub(n.scale(20.0)), mid.add(n.scale(20.0)))
        }
    };
    arrow(img, d0, d1, 4.0, [255, 255, 255]);
    arrow(img, d0, d1, 2.0, c);
    // At the far end, above the line, so it does not hide a zone label at the near end.
    label(
        img,
        P::new(
            a.x.max(b.x) - 6.0 * (l.id.len() as f64 + 1.0) * f64::from(scale),
            a.y.min(b.y) - 12.0 * f64::from(scale),
        ),
        &l.id,
        c,
        scale,
    );
    name
}

/// Colour of the offending object's box on a rule event's frame: red, seen on every palette colour.
const OFFENDER: [u8; 3] = [255, 30, 30];

/// The camera's zones and lines in the pixels of a frame `sx` × `sy` times the size of the one
/// they were drawn for (a main stream's frame), for [`event_marks`] on it.
pub fn scaled(cam: &CameraGeometry<'_>, sx: f64, sy: f64) -> OwnedGeometry {
    let p = |q: [f64; 2]| [q[0] * sx, q[1] * sy];
    let mut out = OwnedGeometry::of(*cam);
    for z in &mut out.zones {
        z.polygon.iter_mut().for_each(|q| *q = p(*q));
        z.direction = z.direction.map(|d| d.map(p));
    }
    for l in &mut out.lines {
        l.points = l.points.map(p);
        l.direction = l.direction.map(|d| d.map(p));
    }
    out
}

/// What a rule event's frame shows an operator: the zone and the line the rule watches (as
/// `edge-agent zones` draws them) and the offending object's box with `text` above it. Draw on a
/// copy: the clean frame is what the object crop is cut from.
pub fn event_marks(
    img: &mut RgbImage,
    cam: Option<&CameraGeometry<'_>>,
    zone_id: Option<&str>,
    line_id: Option<&str>,
    bbox: Option<[f32; 4]>,
    text: &str,
) {
    let scale = (img.width().max(img.height()) / 500).clamp(1, 4);
    if let Some(cam) = cam {
        if let Some(i) = zone_id.and_then(|id| cam.zones.iter().position(|z| z.id == id)) {
            zone(img, cam, i, scale);
        }
        if let Some(i) = line_id.and_then(|id| cam.lines.iter().position(|l| l.id == id)) {
            line(img, cam, i, scale);
        }
    }
    if let Some(b) = bbox {
        object_box(img, b, text, OFFENDER);
    }
}

/// An object's box outlined in `c` with `text` above it (the live snapshot's overlay).
pub fn object_box(img: &mut RgbImage, bbox: [f32; 4], text: &str, c: [u8; 3]) {
    let scale = (img.width().max(img.height()) / 700).clamp(1, 3);
    let [x0, y0, x1, y1] = bbox.map(f64::from);
    let corners = [
        P::new(x0, y0),
        P::new(x1, y0),
        P::new(x1, y1),
        P::new(x0, y1),
    ];
    for k in 0..4 {
        thick_line(img, corners[k], corners[(k + 1) % 4], 2.0, c);
    }
    if !text.is_empty() {
        let h = f64::from(9 * scale) + 3.0;
        label(img, P::new(x0 - 3.0, y0 - 3.0 - h), text, c, scale);
    }
}

fn blend(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3], alpha: f64) {
    if x < 0 || y < 0 || x >= i64::from(img.width()) || y >= i64::from(img.height()) {
        return;
    }
    let px = img.get_pixel_mut(x as u32, y as u32);
    for (ch, cv) in px.0.iter_mut().zip(c) {
        *ch = (f64::from(*ch) * (1.0 - alpha) + f64::from(cv) * alpha).round() as u8;
    }
}

fn fill_polygon(img: &mut RgbImage, poly: &[P], c: [u8; 3], alpha: f64) {
    if poly.len() < 3 {
        return;
    }
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let x0 = poly.iter().map(|p| p.x).fold(f64::MAX, f64::min).max(0.0) as i64;
    let x1 = poly
        .iter()
        .map(|p| p.x)
        .fold(f64::MIN, f64::max)
        .min(w - 1.0) as i64;
    let y0 = poly.iter().map(|p| p.y).fold(f64::MAX, f64::min).max(0.0) as i64;
    let y1 = poly
        .iter()
        .map(|p| p.y)
        .fold(f64::MIN, f64::max)
        .min(h - 1.0) as i64;
    for y in y0..=y1 {
        for x in x0..=x1 {
            if in_polygon(poly, P::new(x as f64 + 0.5, y as f64 + 0.5)) {
                blend(img, x, y, c, alpha);
            }
        }
    }
}

/// A segment `width` pixels wide: every pixel whose centre is within width/2 of it.
fn thick_line(img: &mut RgbImage, a: P, b: P, width: f64, c: [u8; 3]) {
    let r = width / 2.0;
    let x0 = (a.x.min(b.x) - r).floor() as i64;
    let x1 = (a.x.max(b.x) + r).ceil() as i64;
    let y0 = (a.y.min(b.y) - r).floor() as i64;
    let y1 = (a.y.max(b.y) + r).ceil() as i64;
    let ab = b.sub(a);
    let len2 = ab.dot(ab).max(1e-9);
    for y in y0.max(0)..=y1.min(i64::from(img.height()) - 1) {
        for x in x0.max(0)..=x1.min(i64::from(img.width()) - 1) {
            let p = P::new(x as f64 + 0.5, y as f64 + 0.5);
            let k = (p.sub(a).dot(ab) / len2).clamp(0.0, 1.0);
            if p.dist(a.add(ab.scale(k))) <= r {
                blend(img, x, y, c, 1.0);
            }
        }
    }
}

fn dashed_line(img: &mut RgbImage, a: P, b: P, c: [u8; 3]) {
    let len = a.dist(b);
    let n = (len / 8.0).ceil().max(1.0) as usize;
    for k in (0..n).step_by(2) {
        let p0 = a.add(b.sub(a).scale(k as f64 / n as f64));
        let p1 = a.add(b.sub(a).scale(((k + 1) as f64 / n as f64).min(1.0)));
        thick_line(img, p0, p1, 2.0, c);
    }
}

fn arrow(img: &mut RgbImage, a: P, b: P, width: f64, c: [u8; 3]) {
    thick_line(img, a, b, width, c);
    let Some(u) = a.sub(b).unit() else { return };
    let head = (a.dist(b) * 0.3).clamp(10.0, 28.0);
    for angle in [0.45f64, -0.45] {
        let (s, co) = angle.sin_cos();
        let v = P::new(u.x * co - u.y * s, u.x * s + u.y * co);
        thick_line(img, b, b.add(v.scale(head)), width, c);
    }
}

/// Text on a dark box at `at` (top-left), clamped inside the image.
fn label(img: &mut RgbImage, at: P, text: &str, c: [u8; 3], scale: u32) {
    let s = i64::from(scale);
    let w = text.chars().count() as i64 * 6 * s + 2 * s;
    let h = 9 * s;
    let x0 = (at.x as i64 + 3).clamp(0, (i64::from(img.width()) - w).max(0));
    let y0 = (at.y as i64 + 3).clamp(0, (i64::from(img.height()) - h).max(0));
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            blend(img, x, y, [0, 0, 0], 0.7);
        }
    }
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        for (ry, row) in rows.iter().enumerate() {
            for rx in 0..5 {
                if row & (0x10 >> rx) != 0 {
                    for dy in 0..s {
                        for dx in 0..s {
                            let x = x0 + s + i as i64 * 6 * s + rx * s + dx;
                            let y = y0 + s + ry as i64 * s + dy;
                            blend(img, x, y, c, 1.0);
                        }
                    }
                }
            }
        }
    }
}

/// 5×7 glyphs (bit 4 = leftmost column); lower case is drawn as upper case.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        ' ' => [0x00; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

/// Sets every pixel to `c` (test helper and blank canvases).
pub fn solid(w: u32, h: u32, c: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CameraConfig;

    #[test]
    fn zone_fill_is_translucent_inside_and_absent_outside() {
        let cam: CameraConfig = toml::from_str(
            r#"id = "c"
url = "x"
[[zones]]
id = "z"
polygon = [[10, 10], [90, 10], [90, 90], [10, 90]]
"#,
        )
        .unwrap();
        let mut img = solid(200, 100, [100, 100, 100]);
        let legend = render(&mut img, &cam.geometry());
        assert_eq!(legend.len(), 1);
        let inside = img.get_pixel(60, 60).0;
        assert_ne!(inside, [100, 100, 100]);
        assert!(
            inside[0] > 100 && inside[2] < 100,
            "{inside:?} not orange-tinted"
        );
        assert_eq!(img.get_pixel(150, 50).0, [100, 100, 100]);
    }

    #[test]
    fn an_event_frame_shows_only_its_zone_and_line_and_the_offender() {
        let cam: CameraConfig = toml::from_str(
            r#"id = "c"
url = "x"
[[zones]]
id = "lane"
polygon = [[10, 10], [90, 10], [90, 90], [10, 90]]
[[zones]]
id = "other"
polygon = [[110, 10], [190, 10], [190, 90], [110, 90]]
[[lines]]
id = "stop"
points = [[0, 95], [200, 95]]
"#,
        )
        .unwrap();
        let grey = [100, 100, 100];
        let mut img = solid(200, 100, grey);
        event_marks(
            &mut img,
            Some(&cam.geometry()),
            Some("lane"),
            None,
            Some([40.0, 40.0, 70.0, 80.0]),
            "",
        );
        assert_ne!(img.get_pixel(20, 60).0, grey, "the event's zone is drawn");
        assert_eq!(img.get_pixel(150, 50).0, grey, "another zone is not");
        assert_eq!(
            img.get_pixel(100, 95).0,
            grey,
            "a line the rule does not use is not"
        );
        assert_eq!(img.get_pixel(40, 60).0, OFFENDER, "the offender's box");
        let mut img = solid(200, 100, grey);
        event_marks(
            &mut img,
            Some(&cam.geometry()),
            None,
            Some("stop"),
            None,
            "",
        );
        assert_ne!(img.get_pixel(100, 95).0, grey, "the event's line is drawn");
        // Without the camera's geometry only the box is drawn.
        let mut img = solid(200, 100, grey);
        event_marks(
            &mut img,
            None,
            Some("lane"),
            None,
            Some([40.0, 40.0, 70.0, 80.0]),
            "",
        );
        assert_eq!(img.get_pixel(20, 60).0, grey);
        assert_eq!(img.get_pixel(70, 60).0, OFFENDER);
    }
}
