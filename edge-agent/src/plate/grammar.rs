//! Vietnamese plate grammar: normalise OCR text, validate it against the plate formats, classify
//! it, and write it the way the physical plate does.
//!
//! The formats are data (`TEMPLATES`): one list of per-position character classes per format, so
//! the validator here and the constrained decoders (`decode.rs`, `ctc.rs`) cannot disagree about
//! what a plate is. Rules (anchors §5b; Circular 58/2020, 24/2023, 79/2024/TT-BCA):
//! - civilian: province code (2 digits) + series + serial of 4 (old) or 5 digits;
//! - car series: one letter (`51F-123.45`, `51F-1234`); civilian series omit I, J, O, Q, W and R is
//!   reserved for trailers, so the car position takes those 20 letters plus R;
//! - motorbike series: letter + digit (`29-B1 256.62`, old `29-V5 2108`) or, for mopeds and since
//!   Circular 24/2023 for all motorbikes, two of the 20 civilian letters (`77-AA 090.26`);
//! - special two-letter series after the province code (`50LD-004.54`): LD, DA, KT, CD, HC, MK, TĐ,
//!   and for foreign owners NG, QT, CV, NN;
//! - military (red) plates: two letters naming the unit instead of a province, then 4 digits.

use std::fmt;

use super::province::{self, Province};
use super::symbols::{CharSet, DIGITS, LETTERS, index_of, symbol};

/// The 20 letters of civilian series (no I, J, O, Q, R, W).
pub const CIVIL_LETTERS: CharSet = CharSet::of(b"ABCDEFGHKLMNPSTUVXYZ");
/// Car series letters: the civilian ones plus R (trailers and semi-trailers).
pub const CAR_SERIES: CharSet = CIVIL_LETTERS.union(CharSet::of(b"R"));
/// First letters of military unit codes: A corps, B arms/commands, H academies, K military regions,
/// P special bodies, Q services, T general departments. \[verify\] against Circular
/// 169/2021/TT-BQP.
pub const MILITARY_FIRST: CharSet = CharSet::of(b"ABHKPQT");

/// Two-letter series written after a province code that mark a special owner.
/// `TD` is `TĐ` after normalisation. \[verify\] DA, HC, MK and TĐ against the Circular 79/2024
/// annex.
pub const SPECIAL_SERIES: &[([u8; 2], PlateCategory)] = &[
    (*b"LD", PlateCategory::Enterprise),
    (*b"DA", PlateCategory::Project),
    (*b"KT", PlateCategory::MilitaryEnterprise),
    (*b"CD", PlateCategory::PoliceSpecial),
    (*b"HC", PlateCategory::RestrictedRange),
    (*b"MK", PlateCategory::Tractor),
    (*b"TD", PlateCategory::Pilot),
    (*b"NG", PlateCategory::Diplomatic),
    (*b"QT", PlateCategory::InternationalOrg),
    (*b"CV", PlateCategory::ForeignStaff),
    (*b"NN", PlateCategory::Foreign),
];

const SPECIAL_FIRST: CharSet = CharSet::of(b"LDKCHMTNQ");
const SPECIAL_SECOND: CharSet = CharSet::of(b"DATCKGVN");

/// What kind of owner or vehicle a plate's series says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateCategory {
    /// Ordinary car series (one letter).
    Car,
    /// Ordinary motorbike series (letter + digit, or two civilian letters).
    Motorbike,
    /// Electric moped, series `MĐ` + digit. \[verify\]
    ElectricMoped,
    /// Trailer or semi-trailer, car series `R`.
    Trailer,
    /// `LD`: foreign-invested enterprise or leased foreign vehicle.
    Enterprise,
    /// `DA`: vehicle of a foreign-funded project. \[verify\]
    Project,
    /// `KT`: vehicle of a military-run enterprise.
    MilitaryEnterprise,
    /// `CD`: special-purpose vehicle of the People's Public Security.
    PoliceSpecial,
    /// `HC`: vehicle allowed only within a restricted area. \[verify\]
    RestrictedRange,
    /// `MK`: tractor. \[verify\]
    Tractor,
    /// `TĐ`: domestically built vehicle on a pilot scheme. \[verify\]
    Pilot,
    /// `NG`: diplomatic mission or consulate.
    Diplomatic,
    /// `QT`: international organisation.
    InternationalOrg,
    /// `CV`: technical/administrative staff of a mission.
    ForeignStaff,
    /// `NN`: other foreign organisation or person.
    Foreign,
    /// Red military plate with a unit code instead of a province.
    Military,
}

impl PlateCategory {
    /// Stable lower-case name for events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PlateCategory::Car => "car",
            PlateCategory::Motorbike => "motorbike",
            PlateCategory::ElectricMoped => "electric_moped",
            PlateCategory::Trailer => "trailer",
            PlateCategory::Enterprise => "enterprise",
            PlateCategory::Project => "project",
            PlateCategory::MilitaryEnterprise => "military_enterprise",
            PlateCategory::PoliceSpecial => "police_special",
            PlateCategory::RestrictedRange => "restricted_range",
            PlateCategory::Tractor => "tractor",
            PlateCategory::Pilot => "pilot",
            PlateCategory::Diplomatic => "diplomatic",
            PlateCategory::InternationalOrg => "international_org",
            PlateCategory::ForeignStaff => "foreign_staff",
            PlateCategory::Foreign => "foreign",
            PlateCategory::Military => "military",
        }
    }

    fn is_foreign(self) -> bool {
        matches!(
            self,
            PlateCategory::Diplomatic
                | PlateCategory::InternationalOrg
                | PlateCategory::ForeignStaff
                | PlateCategory::Foreign
        )
    }
}

impl fmt::Display for PlateCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vehicle a plate is on, as far as text and hints tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleKind {
    /// Car, truck, bus, trailer (plates `51F-123.45`).
    Car,
    /// Motorbike or moped (two-row plates `29-B1 256.62`).
    Motorbike,
    /// Not decidable from the text and no hint was given.
    #[default]
    Unknown,
}

/// What the caller knows besides the text (from the vehicle detector and the plate box).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlateHints {
    /// Vehicle class of the track. Decides `DD L DDDDD`: a car with a 5-digit serial
    /// (`77Y-378.68`) unless the hint says motorbike (old 4-digit `77-Y3 7868`).
    pub vehicle: VehicleKind,
    /// Number of text rows if the caller knows it (aspect ratio of the plate box).
    pub rows: Option<u8>,
}

/// A validated, classified plate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlateInfo {
    /// Normalised text `[0-9A-Z]`, top row first: `29B125662`.
    pub text: String,
    /// As printed: `51F-123.45`, `29-B1 256.62`, `50LD-004.54`, `29-V5 2108`, `51F-1234`.
    pub display: String,
    /// Series kind.
    pub category: PlateCategory,
    /// Vehicle kind (from the series, else from the hint).
    pub vehicle: VehicleKind,
    /// Two-digit province code; `None` on military plates.
    pub province_code: Option<u8>,
    /// The province behind the code; `None` for military plates and, in lenient parsing, for codes
    /// that are not issued.
    pub province: Option<&'static Province>,
    /// Series as printed: `F`, `B1`, `LD`, `AA`, `MĐ1`, or the military unit code `TM`.
    pub series: String,
    /// Registration serial, digits only: `12345`.
    pub serial: String,
    /// Text rows: 2 for motorbikes, else the hint's value if any.
    pub rows: Option<u8>,
}

impl PlateInfo {
    /// The display text split into rows as printed (`["29-B1", "256.62"]`); one element for a
    /// one-row or unknown layout.
    pub fn display_rows(&self) -> Vec<String> {
        if self.rows != Some(2) {
            return vec![self.display.clone()];
        }
        let split = match self.vehicle {
            VehicleKind::Motorbike => self.display.split_once(' '),
            _ => self.display.split_once('-'),
        };
        match split {
            Some((top, bottom)) => vec![top.to_string(), bottom.to_string()],
            None => vec![self.display.clone()],
        }
    }
}

impl fmt::Display for PlateInfo {
    /// The plate as printed (`29-B1 256.62`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Why a text is not a plate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    /// Nothing left after normalisation.
    #[error("no plate characters in `{raw}`")]
    Empty {
        /// The input text.
        raw: String,
    },
    /// No format has this many characters.
    #[error(
        "`{text}` has {len} characters; Vietnamese plates have 6 to 10 (`51F12345`, `29B125662`)"
    )]
    Length {
        /// Normalised text.
        text: String,
        /// Its length.
        len: usize,
    },
    /// The two leading digits are not an issued province code.
    #[error("`{text}`: {code:02} is not an issued province code")]
    UnknownProvince {
        /// Normalised text.
        text: String,
        /// The code read.
        code: u8,
    },
    /// A character does not fit the closest format.
    #[error(
        "`{text}`: character {position} `{found}` does not fit a {format} plate (expected {expected})"
    )]
    Format {
        /// Normalised text.
        text: String,
        /// 1-based position of the first misfit in the closest format.
        position: usize,
        /// The character there.
        found: char,
        /// The closest format's name.
        format: &'static str,
        /// What that format wants there.
        expected: &'static str,
    },
}

/// Normalises OCR text to `[0-9A-Z]`: upper-cases ASCII letters, maps `Đ`/`đ` (and look-alikes) to
/// `D` and full-width forms to ASCII, and drops everything else (separators `-` `.` `·` `:`,
/// spaces, line breaks, and stray punctuation the OCR emits). Rows must come top row first, as OCR
/// reads them.
pub fn normalize(raw: &str) -> String {
    raw.chars().filter_map(normalize_char).collect()
}

/// Normalises rows given separately (top first) into one text.
pub fn normalize_rows<S: AsRef<str>>(rows: &[S]) -> String {
    rows.iter().map(|r| normalize(r.as_ref())).collect()
}

/// One character of [`normalize`]: the plate symbol it stands for, if any.
pub fn normalize_char(c: char) -> Option<char> {
    match c {
        '0'..='9' | 'A'..='Z' => Some(c),
        'a'..='z' => Some(c.to_ascii_uppercase()),
        // Đ, and the look-alike Eth (Ð) and African D (Ɖ) some OCR dictionaries use for it.
        'Đ' | 'đ' | 'Ð' | 'Ɖ' | 'ɖ' => Some('D'),
        // Full-width digits and letters, which CJK-trained OCR dictionaries contain.
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            let ascii = (c as u32 - 0xFF00 + 0x20) as u8 as char;
            Some(ascii.to_ascii_uppercase())
        }
        _ => None,
    }
}

/// Normalises `raw` and parses it; see [`parse_normalized`].
pub fn parse(raw: &str, hints: &PlateHints) -> Result<PlateInfo, PlateError> {
    let text = normalize(raw);
    if text.is_empty() {
        return Err(PlateError::Empty {
            raw: raw.to_string(),
        });
    }
    parse_normalized(&text, hints)
}

/// Validates and classifies normalised text (`[0-9A-Z]`, top row first). Province codes must be
/// issued ones.
pub fn parse_normalized(text: &str, hints: &PlateHints) -> Result<PlateInfo, PlateError> {
    parse_inner(text, hints, true)
}

/// Like [`parse_normalized`] but accepts any two digits as province code (the decoder's soft
/// province prior can produce codes that are not in the table); `province` is then `None`.
pub fn parse_lenient(text: &str, hints: &PlateHints) -> Result<PlateInfo, PlateError> {
    parse_inner(text, hints, false)
}

/// Whether normalised `text` is a plate (strict province codes).
pub fn is_valid(text: &str) -> bool {
    let Some(ix) = indices(text) else {
        return false;
    };
    TEMPLATES
        .iter()
        .any(|t| first_misfit(t, &ix, true).is_none())
}

fn parse_inner(text: &str, hints: &PlateHints, strict: bool) -> Result<PlateInfo, PlateError> {
    let len = text.len();
    let ix = indices(text).ok_or_else(|| misfit_error(text, None))?;
    let candidates: Vec<&Template> = TEMPLATES.iter().filter(|t| t.pos.len() == len).collect();
    if candidates.is_empty() {
        return Err(PlateError::Length {
            text: text.to_string(),
            len,
        });
    }
    // Formats of one length differ at a letter/digit position, so at most one matches; for the
    // error report the format that fits longest wins.
    let mut best: Option<(&Template, usize)> = None;
    for t in candidates {
        match first_misfit(t, &ix, false) {
            None => {
                if strict && t.pos[1].rule == Rule::Province {
                    let code = ix[0] * 10 + ix[1];
                    if !province::is_known_code(code) {
                        return Err(PlateError::UnknownProvince {
                            text: text.to_string(),
                            code,
                        });
                    }
                }
                return Ok(classify(t, text, hints));
            }
            Some(at) => {
                if best.is_none_or(|(_, b)| at > b) {
                    best = Some((t, at));
                }
            }
        }
    }
    Err(misfit_error(text, best))
}

fn misfit_error(text: &str, best: Option<(&Template, usize)>) -> PlateError {
    match best {
        Some((t, at)) => PlateError::Format {
            text: text.to_string(),
            position: at + 1,
            found: text.chars().nth(at).unwrap_or('?'),
            format: t.shape.name(),
            expected: t.pos.get(at).map_or("nothing", |p| p.what),
        },
        // Not `[0-9A-Z]` at all: report the first offending character.
        None => {
            let (at, found) = text
                .chars()
                .enumerate()
                .find(|(_, c)| !c.is_ascii_digit() && !c.is_ascii_uppercase())
                .unwrap_or((0, '?'));
            PlateError::Format {
                text: text.to_string(),
                position: at + 1,
                found,
                format: "normalised",
                expected: "0-9 or A-Z (call normalize first)",
            }
        }
    }
}

/// Symbol indices of `text`, or `None` if a character is not `[0-9A-Z]`.
fn indices(text: &str) -> Option<Vec<u8>> {
    text.bytes().map(index_of).collect()
}

/// First position where `ix` breaks template `t` (same length assumed), or `None` if it fits.
fn first_misfit(t: &Template, ix: &[u8], strict_province: bool) -> Option<usize> {
    if ix.len() != t.pos.len() {
        return Some(0);
    }
    for (i, (p, &c)) in t.pos.iter().zip(ix).enumerate() {
        if !p.set.contains(c) {
            return Some(i);
        }
        if i > 0 && !pair_allowed(p.rule, ix[i - 1], c, strict_province) {
            return Some(i);
        }
    }
    None
}

/// Whether the pair (previous symbol, this symbol) is allowed by `rule`. The province rule is only
/// checked when `strict_province` is set: the decoders apply it themselves, hard or soft.
pub(crate) fn pair_allowed(rule: Rule, prev: u8, cur: u8, strict_province: bool) -> bool {
    match rule {
        Rule::Free => true,
        Rule::Province => !strict_province || province::is_known_code(prev * 10 + cur),
        Rule::SeriesPair => {
            (CIVIL_LETTERS.contains(prev) && CIVIL_LETTERS.contains(cur))
                || special_series(prev, cur).is_some()
        }
        Rule::SpecialPair => special_series(prev, cur).is_some(),
    }
}

/// Whether the decoders consider format `shape` for a vehicle: a car has no motorbike-only series
/// (letter + digit, electric moped) and a motorbike no 7-character car plate. Validation ignores
/// this; only the search space of the decoders shrinks.
pub(crate) fn shape_allowed(shape: Shape, vehicle: VehicleKind) -> bool {
    match vehicle {
        VehicleKind::Car => !matches!(shape, Shape::Moto5 | Shape::Electric),
        VehicleKind::Motorbike => shape != Shape::Car4,
        VehicleKind::Unknown => true,
    }
}

/// The pair rule the decoders apply for a vehicle: on a car, a two-letter series must be a
/// special one (two civilian letters are a motorbike series).
pub(crate) fn rule_for(rule: Rule, vehicle: VehicleKind) -> Rule {
    match (rule, vehicle) {
        (Rule::SeriesPair, VehicleKind::Car) => Rule::SpecialPair,
        (rule, _) => rule,
    }
}

/// The special category of a two-letter series given as symbol indices.
fn special_series(a: u8, b: u8) -> Option<PlateCategory> {
    let pair = [symbol(a), symbol(b)];
    SPECIAL_SERIES
        .iter()
        .find(|(p, _)| *p == pair)
        .map(|&(_, cat)| cat)
}

fn classify(t: &Template, text: &str, hints: &PlateHints) -> PlateInfo {
    let b = text.as_bytes();
    let s = |r: std::ops::Range<usize>| text.get(r).unwrap_or("").to_string();
    let code = || Some((b[0] - b'0') * 10 + (b[1] - b'0'));
    let moto_hint = hints.vehicle == VehicleKind::Motorbike;
    let car_or_hint = if moto_hint {
        VehicleKind::Motorbike
    } else {
        VehicleKind::Car
    };
    let (category, vehicle, series, serial, display);
    let pp = s(0..2);
    match t.shape {
        Shape::Car4 => {
            category = if b[2] == b'R' {
                PlateCategory::Trailer
            } else {
                PlateCategory::Car
            };
            vehicle = VehicleKind::Car;
            series = s(2..3);
            serial = s(3..7);
            display = format!("{pp}{series}-{serial}");
        }
        Shape::Car5 if b[2] != b'R' && moto_hint => {
            category = PlateCategory::Motorbike;
            vehicle = VehicleKind::Motorbike;
            series = s(2..4);
            serial = s(4..8);
            display = format!("{pp}-{series} {serial}");
        }
        Shape::Car5 => {
            category = if b[2] == b'R' {
                PlateCategory::Trailer
            } else {
                PlateCategory::Car
            };
            vehicle = VehicleKind::Car;
            series = s(2..3);
            serial = s(3..8);
            display = format!("{pp}{series}-{}", dotted(&serial));
        }
        Shape::Special4 => {
            category = special_series(index_byte(b[2]), index_byte(b[3]))
                .unwrap_or(PlateCategory::Enterprise);
            vehicle = car_or_hint;
            series = s(2..4);
            serial = s(4..8);
            display = if moto_hint {
                format!("{pp}-{series} {serial}")
            } else {
                format!("{pp}{series}-{serial}")
            };
        }
        Shape::Moto5 => {
            category = PlateCategory::Motorbike;
            vehicle = VehicleKind::Motorbike;
            series = s(2..4);
            serial = s(4..9);
            display = format!("{pp}-{series} {}", dotted(&serial));
        }
        Shape::TwoLetter5 => {
            series = s(2..4);
            serial = s(4..9);
            match special_series(index_byte(b[2]), index_byte(b[3])) {
                Some(cat) => {
                    category = cat;
                    vehicle = car_or_hint;
                    display = if moto_hint {
                        format!("{pp}-{series} {}", dotted(&serial))
                    } else if cat.is_foreign() {
                        // [verify] foreign plates group the serial as nationality/organisation
                        // code (3 digits) and order (2 digits).
                        format!("{pp}{series}-{}-{}", s(4..7), s(7..9))
                    } else {
                        format!("{pp}{series}-{}", dotted(&serial))
                    };
                }
                None => {
                    category = PlateCategory::Motorbike;
                    vehicle = VehicleKind::Motorbike;
                    display = format!("{pp}-{series} {}", dotted(&serial));
                }
            }
        }
        Shape::Electric => {
            category = PlateCategory::ElectricMoped;
            vehicle = VehicleKind::Motorbike;
            series = format!("MĐ{}", s(4..5));
            serial = s(5..10);
            display = format!("{pp}-{series} {}", dotted(&serial));
        }
        Shape::Military => {
            category = PlateCategory::Military;
            vehicle = hints.vehicle;
            series = s(0..2);
            serial = s(2..6);
            display = format!("{series}-{}-{}", s(2..4), s(4..6));
        }
    }
    let province_code = if t.shape == Shape::Military {
        None
    } else {
        code()
    };
    let rows = if vehicle == VehicleKind::Motorbike {
        Some(2)
    } else {
        hints.rows
    };
    PlateInfo {
        text: text.to_string(),
        display,
        category,
        vehicle,
        province_code,
        province: province_code.and_then(province::province),
        series,
        serial,
        rows,
    }
}

fn index_byte(c: u8) -> u8 {
    index_of(c).unwrap_or(u8::MAX)
}

/// `12345` → `123.45`; shorter serials are printed whole.
fn dotted(serial: &str) -> String {
    match (serial.get(..3), serial.get(3..)) {
        (Some(a), Some(b)) if serial.len() == 5 => format!("{a}.{b}"),
        _ => serial.to_string(),
    }
}

/// A constraint between a position and the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// None.
    Free,
    /// The two digits ending here form a province code.
    Province,
    /// The two letters ending here are a motorbike series (two civilian letters) or a special one.
    SeriesPair,
    /// The two letters ending here are a special series.
    SpecialPair,
}

/// One character position of a format.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pos {
    pub set: CharSet,
    pub rule: Rule,
    pub what: &'static str,
}

/// The formats; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `DD L DDDD`: old car.
    Car4,
    /// `DD L DDDDD`: car, or old motorbike `DD LD DDDD` (same text).
    Car5,
    /// `DD SS DDDD`: special series, old 4-digit serial.
    Special4,
    /// `DD LD DDDDD`: motorbike.
    Moto5,
    /// `DD LL DDDDD`: two-letter motorbike series or special series.
    TwoLetter5,
    /// `DD MĐ D DDDDD`: electric moped.
    Electric,
    /// `LL DDDD`: military.
    Military,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Car4 => "car (4-digit serial)",
            Shape::Car5 => "car",
            Shape::Special4 => "special-series (4-digit serial)",
            Shape::Moto5 => "motorbike",
            Shape::TwoLetter5 => "two-letter-series",
            Shape::Electric => "electric-moped",
            Shape::Military => "military",
        }
    }
}

/// A plate format.
#[derive(Debug)]
pub(crate) struct Template {
    pub shape: Shape,
    pub pos: &'static [Pos],
}

const fn at(set: CharSet, rule: Rule, what: &'static str) -> Pos {
    Pos { set, rule, what }
}
const D: Pos = at(DIGITS, Rule::Free, "a digit");
const P0: Pos = at(DIGITS, Rule::Free, "a province-code digit");
const P1: Pos = at(DIGITS, Rule::Province, "a province-code digit");
const CAR: Pos = at(
    CAR_SERIES,
    Rule::Free,
    "a series letter (not I, J, O, Q, W)",
);
const MOTO: Pos = at(
    CIVIL_LETTERS,
    Rule::Free,
    "a series letter (not I, J, O, Q, R, W)",
);
const S1_ANY: Pos = at(
    CIVIL_LETTERS.union(SPECIAL_FIRST),
    Rule::Free,
    "a series letter",
);
const S2_ANY: Pos = at(
    CIVIL_LETTERS.union(SPECIAL_SECOND),
    Rule::SeriesPair,
    "a series letter",
);
const S1_SPECIAL: Pos = at(SPECIAL_FIRST, Rule::Free, "a special series (LD, NG, …)");
const S2_SPECIAL: Pos = at(
    SPECIAL_SECOND,
    Rule::SpecialPair,
    "a special series (LD, NG, …)",
);
const MIL0: Pos = at(MILITARY_FIRST, Rule::Free, "a military unit letter");
const MIL1: Pos = at(LETTERS, Rule::Free, "a military unit letter");

/// Every format. Order is irrelevant: formats of equal length differ in class at some position.
pub(crate) const TEMPLATES: &[Template] = &[
    Template {
        shape: Shape::Military,
        pos: &[MIL0, MIL1, D, D, D, D],
    },
    Template {
        shape: Shape::Car4,
        pos: &[P0, P1, CAR, D, D, D, D],
    },
    Template {
        shape: Shape::Car5,
        pos: &[P0, P1, CAR, D, D, D, D, D],
    },
    Template {
        shape: Shape::Special4,
        pos: &[P0, P1, S1_SPECIAL, S2_SPECIAL, D, D, D, D],
    },
    Template {
        shape: Shape::Moto5,
        pos: &[P0, P1, MOTO, D, D, D, D, D, D],
    },
    Template {
        shape: Shape::TwoLetter5,
        pos: &[P0, P1, S1_ANY, S2_ANY, D, D, D, D, D],
    },
    Template {
        shape: Shape::Electric,
        pos: &[
            P0,
            P1,
            at(CharSet::of(b"M"), Rule::Free, "M (of MĐ)"),
            at(CharSet::of(b"D"), Rule::Free, "Đ (of MĐ)"),
            D,
            D,
            D,
            D,
            D,
            D,
        ],
    },
];

#[cfg(test)]
#[path = "grammar_tests.rs"]
mod tests;
