use super::*;
use crate::plate::fixtures::csv_rows;

fn moto() -> PlateHints {
    PlateHints {
        vehicle: VehicleKind::Motorbike,
        rows: None,
    }
}

fn car(rows: Option<u8>) -> PlateHints {
    PlateHints {
        vehicle: VehicleKind::Car,
        rows,
    }
}

#[test]
fn normalize_strips_separators_and_maps_letters() {
    assert_eq!(normalize("51F-123.45"), "51F12345");
    assert_eq!(normalize("29-B1 256.62"), "29B125662");
    assert_eq!(normalize("29-B1\n256.62"), "29B125662");
    assert_eq!(normalize(" 50ld-004.54\r\n"), "50LD00454");
    assert_eq!(normalize("29-MĐ1 123.45"), "29MD112345");
    assert_eq!(normalize("đ"), "D");
    assert_eq!(normalize("29-MÐ1"), "29MD1");
    assert_eq!(normalize("30E:95863"), "30E95863");
    assert_eq!(normalize("３０Ａ－９９９．９９"), "30A99999");
    assert_eq!(normalize("·—_?"), "");
    assert_eq!(normalize_rows(&["29-V5", "2108"]), "29V52108");
}

struct Case {
    text: &'static str,
    hints: PlateHints,
    display: &'static str,
    category: PlateCategory,
    vehicle: VehicleKind,
    code: Option<u8>,
    series: &'static str,
    rows: Option<u8>,
}

#[test]
fn formats_display_and_classification() {
    let none = PlateHints::default();
    let cases = [
        Case {
            text: "51F12345",
            hints: none,
            display: "51F-123.45",
            category: PlateCategory::Car,
            vehicle: VehicleKind::Car,
            code: Some(51),
            series: "F",
            rows: None,
        },
        Case {
            text: "51F1234",
            hints: none,
            display: "51F-1234",
            category: PlateCategory::Car,
            vehicle: VehicleKind::Car,
            code: Some(51),
            series: "F",
            rows: None,
        },
        Case {
            text: "29B125662",
            hints: none,
            display: "29-B1 256.62",
            category: PlateCategory::Motorbike,
            vehicle: VehicleKind::Motorbike,
            code: Some(29),
            series: "B1",
            rows: Some(2),
        },
        Case {
            text: "29V52108",
            hints: moto(),
            display: "29-V5 2108",
            category: PlateCategory::Motorbike,
            vehicle: VehicleKind::Motorbike,
            code: Some(29),
            series: "V5",
            rows: Some(2),
        },
        // Without a hint the same text is a car with a 5-digit serial.
        Case {
            text: "29V52108",
            hints: none,
            display: "29V-521.08",
            category: PlateCategory::Car,
            vehicle: VehicleKind::Car,
            code: Some(29),
            series: "V",
            rows: None,
        },
        Case {
            text: "50LD00454",
            hints: none,
            display: "50LD-004.54",
            category: PlateCategory::Enterprise,
            vehicle: VehicleKind::Car,
            code: Some(50),
            series: "LD",
            rows: None,
        },
        Case {
            text: "51LD1234",
            hints: none,
            display: "51LD-1234",
            category: PlateCategory::Enterprise,
            vehicle: VehicleKind::Car,
            code: Some(51),
            series: "LD",
            rows: None,
        },
        Case {
            text: "77AA09026",
            hints: none,
            display: "77-AA 090.26",
            category: PlateCategory::Motorbike,
            vehicle: VehicleKind::Motorbike,
            code: Some(77),
            series: "AA",
            rows: Some(2),
        },
        Case {
            text: "80NG12345",
            hints: none,
            display: "80NG-123-45",
            category: PlateCategory::Diplomatic,
            vehicle: VehicleKind::Car,
            code: Some(80),
            series: "NG",
            rows: None,
        },
        Case {
            text: "41QT01201",
            hints: none,
            display: "41QT-012-01",
            category: PlateCategory::InternationalOrg,
            vehicle: VehicleKind::Car,
            code: Some(41),
            series: "QT",
            rows: None,
        },
        Case {
            text: "29KT12345",
            hints: none,
            display: "29KT-123.45",
            category: PlateCategory::MilitaryEnterprise,
            vehicle: VehicleKind::Car,
            code: Some(29),
            series: "KT",
            rows: None,
        },
        Case {
            text: "29CD01234",
            hints: none,
            display: "29CD-012.34",
            category: PlateCategory::PoliceSpecial,
            vehicle: VehicleKind::Car,
            code: Some(29),
            series: "CD",
            rows: None,
        },
        Case {
            text: "51R12345",
            hints: none,
            display: "51R-123.45",
            category: PlateCategory::Trailer,
            vehicle: VehicleKind::Car,
            code: Some(51),
            series: "R",
            rows: None,
        },
        Case {
            text: "TM1234",
            hints: none,
            display: "TM-12-34",
            category: PlateCategory::Military,
            vehicle: VehicleKind::Unknown,
            code: None,
            series: "TM",
            rows: None,
        },
        Case {
            text: "29MD112345",
            hints: none,
            display: "29-MĐ1 123.45",
            category: PlateCategory::ElectricMoped,
            vehicle: VehicleKind::Motorbike,
            code: Some(29),
            series: "MĐ1",
            rows: Some(2),
        },
        Case {
            text: "30A99999",
            hints: car(Some(2)),
            display: "30A-999.99",
            category: PlateCategory::Car,
            vehicle: VehicleKind::Car,
            code: Some(30),
            series: "A",
            rows: Some(2),
        },
    ];
    for c in cases {
        let p = parse_normalized(c.text, &c.hints).unwrap_or_else(|e| panic!("{}: {e}", c.text));
        assert_eq!(p.text, c.text);
        assert_eq!(p.display, c.display, "{}", c.text);
        assert_eq!(p.category, c.category, "{}", c.text);
        assert_eq!(p.vehicle, c.vehicle, "{}", c.text);
        assert_eq!(p.province_code, c.code, "{}", c.text);
        assert_eq!(p.province.map(|p| p.code), c.code, "{}", c.text);
        assert_eq!(p.series, c.series, "{}", c.text);
        assert_eq!(p.rows, c.rows, "{}", c.text);
        assert!(is_valid(c.text), "{}", c.text);
        // The display text normalises back to the text (Đ included).
        assert_eq!(normalize(&p.display), c.text);
    }
}

#[test]
fn parse_accepts_display_text() {
    let p = parse("29-B1 256.62", &PlateHints::default()).unwrap();
    assert_eq!(p.text, "29B125662");
    assert_eq!(p.to_string(), "29-B1 256.62");
    assert_eq!(p.province.map(|p| p.name), Some("Hà Nội"));
    assert_eq!(
        parse("70A-123.45", &PlateHints::default())
            .unwrap()
            .province
            .map(|p| p.province_2025),
        Some("Tây Ninh")
    );
}

#[test]
fn display_rows_split_as_printed() {
    let p = parse_normalized("29B125662", &PlateHints::default()).unwrap();
    assert_eq!(p.display_rows(), vec!["29-B1", "256.62"]);
    let p = parse_normalized("30A99999", &car(Some(2))).unwrap();
    assert_eq!(p.display_rows(), vec!["30A", "999.99"]);
    let p = parse_normalized("30K31896", &car(Some(1))).unwrap();
    assert_eq!(p.display_rows(), vec!["30K-318.96"]);
}

/// Every scored plate in footage/ground_truth.csv validates and prints as the ground truth says.
#[test]
fn ground_truth_plates_validate_and_display() {
    let rows = csv_rows("footage/ground_truth.csv");
    let mut checked = 0;
    for r in rows.iter().filter(|r| !r["plate_norm"].is_empty()) {
        let hints = PlateHints {
            vehicle: if r["vehicle"].starts_with("motorbike") {
                VehicleKind::Motorbike
            } else {
                VehicleKind::Car
            },
            rows: r["rows"].parse().ok(),
        };
        let p = parse(&r["plate_display"], &hints)
            .unwrap_or_else(|e| panic!("{}: {e}", r["plate_display"]));
        assert_eq!(p.text, r["plate_norm"]);
        assert_eq!(p.display, r["plate_display"]);
        assert_eq!(p.rows, hints.rows, "{}", p.text);
        assert!(p.province.is_some());
        checked += 1;
    }
    assert_eq!(checked, 14);
}

/// footage/plate_crops/labels.csv: the 58 well-formed labels validate, the malformed ones do not.
/// The crop names carry the vehicle class (`person_moto`/`cls1` motorbike, `car`/`cls2`/`cls4`
/// car), which decides the display of 8-character plates.
#[test]
fn crop_labels_validate_and_malformed_ones_do_not() {
    let rows = csv_rows("footage/plate_crops/labels.csv");
    let (mut ok, mut bad) = (0, 0);
    for r in &rows {
        let name = &r["filename"];
        let vehicle = if name.contains("person_moto") || name.contains("_cls1_") {
            VehicleKind::Motorbike
        } else {
            VehicleKind::Car
        };
        let res = parse_normalized(
            &r["plate_norm"],
            &PlateHints {
                vehicle,
                rows: None,
            },
        );
        if r["label_format_ok"] == "yes" {
            let p = res.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.vehicle, vehicle, "{name} {}", p.text);
            ok += 1;
        } else {
            assert!(res.is_err(), "{name}: {} accepted", r["plate_norm"]);
            bad += 1;
        }
    }
    assert!(ok >= 58 && bad >= 1, "ok {ok} bad {bad}");
    let hints = moto();
    let show = |t: &str, h: &PlateHints| parse_normalized(t, h).map(|p| p.display);
    assert_eq!(show("77Y37868", &hints).as_deref(), Ok("77-Y3 7868"));
    assert_eq!(show("77N54106", &hints).as_deref(), Ok("77-N5 4106"));
    assert_eq!(show("77AE05799", &hints).as_deref(), Ok("77-AE 057.99"));
    assert_eq!(show("81B334479", &hints).as_deref(), Ok("81-B3 344.79"));
    assert_eq!(show("77L5788", &car(None)).as_deref(), Ok("77L-5788"));
    assert_eq!(show("50H74018", &car(None)).as_deref(), Ok("50H-740.18"));
}

#[test]
fn unknown_province_codes_are_rejected() {
    for text in ["10A12345", "13A12345", "42B125662", "00F1234", "96LD00454"] {
        match parse_normalized(text, &PlateHints::default()) {
            Err(PlateError::UnknownProvince { code, .. }) => {
                assert_eq!(Some(code), text[..2].parse().ok())
            }
            other => panic!("{text}: {other:?}"),
        }
        assert!(!is_valid(text));
        // The lenient parser (soft province prior) accepts it without a province.
        let p = parse_lenient(text, &PlateHints::default()).unwrap();
        assert!(p.province.is_none() && p.province_code.is_some());
    }
}

#[test]
fn misplaced_letters_and_digits_are_rejected() {
    let cases = [
        ("51F1234S", 8),  // letter in the serial
        ("5161234", 3),   // digit in the series position
        ("5G112345", 2),  // letter in the province code
        ("51I12345", 3),  // I is not a series letter
        ("51O12345", 3),  // nor O
        ("51Q12345", 4),  // nor Q (closest format: a special series like QT)
        ("51W12345", 3),  // nor W
        ("51J1234", 3),   // nor J
        ("29R125662", 3), // R is for trailers, not motorbikes
    ];
    for (text, pos) in cases {
        match parse_normalized(text, &PlateHints::default()) {
            Err(PlateError::Format { position, .. }) => assert_eq!(position, pos, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
        assert!(!is_valid(text), "{text}");
    }
    // Two civilian letters are a valid motorbike series since Circular 24/2023.
    assert!(is_valid("29BB25662"));
    // …but a pair with a non-civilian letter must be a special series.
    assert!(!is_valid("50QX00454"));
    assert!(!is_valid("50LW00454"));
    // Four-digit serials with two letters only exist for special series.
    assert!(is_valid("50LD0045"));
    assert!(!is_valid("50AB0045"));
    // Military: unit letters first, then four digits.
    assert!(is_valid("KA1234"));
    assert!(!is_valid("ZZ1234"));
    assert!(!is_valid("KA12345"));
    assert!(!is_valid("1A1234"));
}

#[test]
fn lengths_and_empty_input() {
    assert!(matches!(
        parse("--", &PlateHints::default()),
        Err(PlateError::Empty { .. })
    ));
    for text in ["5", "51F12", "51F1234567A", "51F123456789"] {
        assert!(
            matches!(
                parse_normalized(text, &PlateHints::default()),
                Err(PlateError::Length { .. })
            ),
            "{text}"
        );
    }
    // Lower case or separators must be normalised first.
    assert!(parse_normalized("51f12345", &PlateHints::default()).is_err());
    assert!(parse_normalized("51F-12345", &PlateHints::default()).is_err());
    assert!(parse("51f-123.45", &PlateHints::default()).is_ok());
}

#[test]
fn errors_say_what_was_expected() {
    let e = parse_normalized("51F1234S", &PlateHints::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("character 8 `S`") && msg.contains("a digit"),
        "{msg}"
    );
    let e = parse_normalized("10A12345", &PlateHints::default()).unwrap_err();
    assert!(e.to_string().contains("10 is not an issued province code"));
}

#[test]
fn every_special_series_parses_in_both_serial_lengths() {
    for (pair, cat) in SPECIAL_SERIES {
        let pair = std::str::from_utf8(pair).unwrap();
        let p5 = parse_normalized(&format!("29{pair}12345"), &PlateHints::default()).unwrap();
        assert_eq!(p5.category, *cat);
        let p4 = parse_normalized(&format!("29{pair}1234"), &PlateHints::default()).unwrap();
        assert_eq!(p4.category, *cat);
        assert_eq!(p4.display, format!("29{pair}-1234"));
    }
}

/// A read that lost a character can still be a plate: `30E-9999` (PP-OCR on `30E-999.99`) is a
/// well-formed old car plate. The grammar cannot catch it; confidence and the vote must.
#[test]
fn a_dropped_digit_can_still_be_valid() {
    let p = parse("30E-9999", &PlateHints::default()).unwrap();
    assert_eq!(
        (p.text.as_str(), p.display.as_str()),
        ("30E9999", "30E-9999")
    );
    assert_eq!(p.serial.len(), 4);
}

#[test]
fn serialises_for_events() {
    for (_, cat) in SPECIAL_SERIES {
        assert_eq!(
            serde_json::to_value(cat).unwrap(),
            serde_json::Value::from(cat.as_str())
        );
    }
    let p = parse("29-B1 256.62", &PlateHints::default()).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["display"], "29-B1 256.62");
    assert_eq!(v["category"], "motorbike");
    assert_eq!(v["vehicle"], "motorbike");
    assert_eq!(v["province"]["code"], 29);
    assert_eq!(v["province"]["province_2025"], "Hà Nội");
    assert_eq!(v["rows"], 2);
}

/// The plate generator that trains our OCR (`models/training/plategen.py`) speaks this grammar: a
/// sample of its strings (`--texts 2000 --seed 7`) must all parse, as the kind each format is
/// meant to be, and every format must be in the sample.
#[test]
fn every_generated_training_plate_is_valid_and_every_format_is_generated() {
    let sample = include_str!("../../../models/training/testdata/generated_plates.txt");
    let mut per_format = std::collections::BTreeMap::<&str, usize>::new();
    for (n, line) in sample.lines().enumerate() {
        let (text, format) = line
            .split_once(',')
            .unwrap_or_else(|| panic!("line {}: `{line}` is not TEXT,FORMAT", n + 1));
        let hints = match format {
            "moto_old4" | "moto5" | "moto_2letter" => moto(),
            "car1_5" | "car1_4" => car(Some(1)),
            "car2_5" | "car2_4" => car(Some(2)),
            _ => PlateHints::default(),
        };
        let info = parse_normalized(text, &hints)
            .unwrap_or_else(|e| panic!("line {}: generated `{text}` ({format}): {e}", n + 1));
        let kind_ok = match format {
            "car1_5" | "car1_4" | "car2_5" | "car2_4" => {
                matches!(info.category, PlateCategory::Car | PlateCategory::Trailer)
            }
            "moto_old4" | "moto5" => info.category == PlateCategory::Motorbike,
            // two letters may also be a special series (`CD`, `KT`, ...): same shape
            "moto_2letter" => !matches!(
                info.category,
                PlateCategory::Car | PlateCategory::Military | PlateCategory::ElectricMoped
            ),
            "electric" => info.category == PlateCategory::ElectricMoped,
            "military" => info.category == PlateCategory::Military,
            "special" => !matches!(
                info.category,
                PlateCategory::Car | PlateCategory::Motorbike | PlateCategory::Military
            ),
            other => panic!("line {}: unknown generator format `{other}`", n + 1),
        };
        assert!(
            kind_ok,
            "line {}: `{text}` ({format}) parsed as {:?}",
            n + 1,
            info.category
        );
        *per_format.entry(format).or_default() += 1;
    }
    let formats = [
        "car1_5",
        "car1_4",
        "car2_5",
        "car2_4",
        "moto_old4",
        "moto5",
        "moto_2letter",
        "special",
        "electric",
        "military",
    ];
    for f in formats {
        assert!(
            per_format.get(f).copied().unwrap_or(0) >= 20,
            "format {f}: {per_format:?}"
        );
    }
    assert_eq!(per_format.len(), formats.len(), "{per_format:?}");
}
