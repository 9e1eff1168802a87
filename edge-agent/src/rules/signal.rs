//! A traffic-signal lamp read from the frame: the pixels of a zone drawn tightly around the red
//! lamp. The engine is otherwise fed tracks only; this is the one input it takes from pixels.
//!
//! A lit red lamp renders on a camera as bright, warm pixels (its core saturates towards orange
//! or yellow-white, its rim stays red); an unlit one is dark. Infrared night images are grey and
//! cannot tell, so the state is then unknown and rules that need it stay silent rather than guess.
//! LED lamps flicker against the shutter: on real junction footage a lamp that is red throughout
//! shows dark in up to 3 frames in a row at 10 fps. So red starts after [`CONFIRM_RED`] lit frames
//! in a row and ends only after [`RELEASE_S`] without a lit frame; the red runs of the last
//! minute are kept, so a moment can be judged once later frames have shown whether a dark frame
//! was flicker or the end of red.

use std::collections::VecDeque;

use super::geometry::{P, in_polygon};

/// Share of the zone's pixels that must be lit.
const LIT_SHARE: f64 = 0.08;
/// Lit frames in a row that start red.
const CONFIRM_RED: u32 = 2;
/// Seconds without a lit frame that end red (longer than any flicker).
pub(super) const RELEASE_S: f64 = 1.0;
/// Seconds of red runs kept.
const HISTORY_S: f64 = 60.0;
/// Pixels of a zone sampled at most (a lamp zone is small; a careless large one stays cheap).
const MAX_SAMPLES: usize = 4096;

/// What a lamp shows in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lamp {
    #[default]
    Unknown,
    Red,
    NotRed,
}

/// A lamp's red runs over frames.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal {
    /// Red runs: (first lit frame, last lit frame), oldest first; the last may be going on.
    runs: VecDeque<(f64, f64)>,
    /// Whether the last run is going on (no [`RELEASE_S`] without a lit frame since it).
    ongoing: bool,
    /// A lit streak not yet confirmed: its first frame and length.
    streak: Option<(f64, u32)>,
}

impl Signal {
    /// Feeds one frame's reading at stream time `t`.
    pub(crate) fn feed(&mut self, t: f64, seen: Lamp) {
        if seen == Lamp::Red {
            if self.ongoing
                && let Some(run) = self.runs.back_mut()
            {
                run.1 = t;
                return;
            }
            let (first, n) = self.streak.map_or((t, 1), |(f, n)| (f, n + 1));
            if n >= CONFIRM_RED {
                self.runs.push_back((first, t));
                self.ongoing = true;
                self.streak = None;
            } else {
                self.streak = Some((first, n));
            }
        } else {
            self.streak = None;
            if self.ongoing && self.runs.back().is_none_or(|r| t - r.1 >= RELEASE_S) {
                self.ongoing = false;
            }
        }
        while self.runs.front().is_some_and(|r| t - r.1 > HISTORY_S) {
            self.runs.pop_front();
        }
    }

    /// Since when the lamp had been red at stream time `t`, if lit frames on both sides of `t`
    /// (or at it) show it was; `None` also when later frames have not told yet.
    pub(crate) fn red_at(&self, t: f64) -> Option<f64> {
        self.runs
            .iter()
            .find(|(first, last)| *first <= t + 1e-9 && t <= *last + 1e-9)
            .map(|r| r.0)
    }

    /// Whether `t` can no longer turn out red: no run covers it and [`RELEASE_S`] has passed.
    pub(crate) fn settled_not_red(&self, t: f64, now: f64) -> bool {
        self.red_at(t).is_none() && now - t >= RELEASE_S
    }
}

/// Reads the lamp in `poly` from an RGB frame (`width` × `height`, 3 bytes a pixel).
pub(super) fn read_lamp(rgb: &[u8], width: u32, height: u32, poly: &[P]) -> Lamp {
    let (w, h) = (width as usize, height as usize);
    if poly.len() < 3 || rgb.len() < w * h * 3 {
        return Lamp::Unknown;
    }
    let clamp = |v: f64, hi: usize| (v.max(0.0) as usize).min(hi);
    let x0 = clamp(poly.iter().map(|p| p.x).fold(f64::MAX, f64::min), w);
    let x1 = clamp(poly.iter().map(|p| p.x).fold(f64::MIN, f64::max).ceil(), w);
    let y0 = clamp(poly.iter().map(|p| p.y).fold(f64::MAX, f64::min), h);
    let y1 = clamp(poly.iter().map(|p| p.y).fold(f64::MIN, f64::max).ceil(), h);
    let area = (x1 - x0) * (y1 - y0);
    if area == 0 {
        return Lamp::Unknown;
    }
    let stride = ((area as f64 / MAX_SAMPLES as f64).sqrt().ceil() as usize).max(1);
    let (mut n, mut lit, mut colour) = (0usize, 0usize, 0usize);
    for y in (y0..y1).step_by(stride) {
        for x in (x0..x1).step_by(stride) {
            if !in_polygon(poly, P::new(x as f64 + 0.5, y as f64 + 0.5)) {
                continue;
            }
            let i = (y * w + x) * 3;
            let (r, g, b) = (
                i32::from(rgb[i]),
                i32::from(rgb[i + 1]),
                i32::from(rgb[i + 2]),
            );
            n += 1;
            if (r - g).abs() > 12 || (r - b).abs() > 12 || (g - b).abs() > 12 {
                colour += 1;
            }
            // bright and warm: the red rim and the orange / yellow-white saturated core
            if r >= 170 && r - b >= 60 {
                lit += 1;
            }
        }
    }
    if n == 0 || colour * 20 < n {
        // a grey picture (infrared at night): the lamp's colour cannot be seen
        return Lamp::Unknown;
    }
    if lit as f64 >= LIT_SHARE * n as f64 {
        Lamp::Red
    } else {
        Lamp::NotRed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40x30 frame: dark housing, with the lamp disc at (20, 15) in `lamp` colour.
    fn frame(lamp: [u8; 3], housing: [u8; 3]) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..30 {
            for x in 0..40 {
                let d = ((x as f64 - 20.0).powi(2) + (y as f64 - 15.0).powi(2)).sqrt();
                v.extend_from_slice(if d <= 6.0 { &lamp } else { &housing });
            }
        }
        v
    }

    fn square() -> Vec<P> {
        vec![
            P::new(10.0, 5.0),
            P::new(30.0, 5.0),
            P::new(30.0, 25.0),
            P::new(10.0, 25.0),
        ]
    }

    #[test]
    fn a_lit_red_lamp_an_unlit_one_and_a_grey_night_image_read_apart() {
        let housing = [30, 32, 28];
        let lit = frame([250, 60, 50], housing);
        assert_eq!(read_lamp(&lit, 40, 30, &square()), Lamp::Red);
        // a saturated core renders yellow-white: still the lit red lamp
        let core = frame([255, 225, 120], housing);
        assert_eq!(read_lamp(&core, 40, 30, &square()), Lamp::Red);
        let unlit = frame([90, 40, 35], housing);
        assert_eq!(read_lamp(&unlit, 40, 30, &square()), Lamp::NotRed);
        // a green lamp lit is not red
        let green = frame([40, 230, 120], housing);
        assert_eq!(read_lamp(&green, 40, 30, &square()), Lamp::NotRed);
        // infrared: everything grey, even the lamp
        let ir = frame([200, 200, 200], [40, 40, 40]);
        assert_eq!(read_lamp(&ir, 40, 30, &square()), Lamp::Unknown);
        // a zone outside the frame or a short buffer is unknown, not a panic
        let far = vec![
            P::new(100.0, 100.0),
            P::new(120.0, 100.0),
            P::new(120.0, 120.0),
        ];
        assert_eq!(read_lamp(&lit, 40, 30, &far), Lamp::Unknown);
        assert_eq!(read_lamp(&lit[..100], 40, 30, &square()), Lamp::Unknown);
    }

    #[test]
    fn red_starts_after_two_lit_frames_and_flicker_does_not_end_it() {
        let mut s = Signal::default();
        s.feed(0.0, Lamp::NotRed);
        s.feed(0.1, Lamp::Red);
        assert_eq!(s.red_at(0.1), None, "one lit frame is not red yet");
        s.feed(0.2, Lamp::Red);
        assert_eq!(s.red_at(0.15), Some(0.1));
        assert_eq!(s.red_at(0.05), None);
        // three dark frames (an LED between pulses), then lit again: red all along
        for t in [0.3, 0.4, 0.5] {
            s.feed(t, Lamp::NotRed);
        }
        assert_eq!(s.red_at(0.4), None, "not known until a later lit frame");
        assert!(!s.settled_not_red(0.4, 0.5));
        s.feed(0.6, Lamp::Red);
        assert_eq!(s.red_at(0.4), Some(0.1));
        // dark for good: red ended at the last lit frame
        for k in 7..=20 {
            s.feed(f64::from(k) / 10.0, Lamp::NotRed);
        }
        assert_eq!(s.red_at(0.6), Some(0.1));
        assert_eq!(s.red_at(0.7), None);
        assert!(s.settled_not_red(0.7, 2.0));
        // lit again after the release: a new run, timed from its own start
        s.feed(2.1, Lamp::Red);
        s.feed(2.2, Lamp::Red);
        assert_eq!(s.red_at(2.2), Some(2.1));
        // unknown (a grey infrared picture) never extends red
        for k in 23..=40 {
            s.feed(f64::from(k) / 10.0, Lamp::Unknown);
        }
        assert_eq!(s.red_at(3.0), None);
        assert!(s.settled_not_red(3.0, 4.0));
    }
}
