use super::*;
use crate::plate::fixtures::{code_digit_posterior, recorded};
use crate::plate::grammar::{PlateCategory, VehicleKind};

/// A 9×37 matrix for the VN slot OCR: each slot lists (char, prob); the rest of the mass is spread
/// evenly over the other classes. Slots past the list are pads at 0.99.
fn matrix(slots: &[&[(char, f32)]]) -> SlotProbs {
    let alphabet: Vec<char> = VN_PLATE_OCR_ALPHABET.chars().collect();
    let k = alphabet.len();
    let mut probs = Vec::with_capacity(9 * k);
    for s in 0..9 {
        let spec: &[(char, f32)] = slots.get(s).copied().unwrap_or(&[('_', 0.99)]);
        let named: f32 = spec.iter().map(|&(_, p)| p).sum();
        let rest = (1.0 - named).max(0.0) / (k - spec.len()) as f32;
        for &c in &alphabet {
            probs.push(
                spec.iter()
                    .find(|&&(x, _)| x == c)
                    .map_or(rest, |&(_, p)| p),
            );
        }
    }
    SlotProbs::vn_plate_ocr(probs)
}

/// Confident slots spelling `text` (pads after it), with overrides per slot.
fn confident(text: &str, overrides: &[(usize, &'static [(char, f32)])]) -> SlotProbs {
    let owned: Vec<Vec<(char, f32)>> = (0..9)
        .map(|s| {
            if let Some((_, o)) = overrides.iter().find(|(i, _)| *i == s) {
                o.to_vec()
            } else {
                vec![(text.chars().nth(s).unwrap_or('_'), 0.98)]
            }
        })
        .collect();
    let refs: Vec<&[(char, f32)]> = owned.iter().map(Vec::as_slice).collect();
    matrix(&refs)
}

fn decode(p: &SlotProbs) -> PlateDecode {
    decode_slots(p, &DecodeOptions::default()).unwrap()
}

#[test]
fn clean_plate_is_unchanged() {
    let d = decode(&confident("51F12345", &[]));
    assert_eq!(d.text, "51F12345");
    assert_eq!(d.raw_text, "51F12345");
    assert!(d.valid && !d.changed);
    assert_eq!(d.char_conf.len(), 8);
    assert!((d.confidence - 0.98).abs() < 1e-4, "{}", d.confidence);
    let plate = d.plate.unwrap();
    assert_eq!(plate.display, "51F-123.45");
    assert_eq!(plate.category, PlateCategory::Car);
}

#[test]
fn eight_read_for_b_in_the_series_becomes_b() {
    // Argmax 298125662: the series position holds 8, the grammar demands a letter.
    let d = decode(&confident("29B125662", &[(2, &[('8', 0.6), ('B', 0.3)])]));
    assert_eq!(d.raw_text, "298125662");
    assert_eq!(d.text, "29B125662");
    assert!(d.valid && d.changed);
    assert!((d.char_conf[2] - 0.3).abs() < 1e-6);
    assert!((d.confidence - 0.3).abs() < 1e-6);
    assert_eq!(d.plate.unwrap().display, "29-B1 256.62");
}

#[test]
fn letter_digit_confusions_follow_the_position() {
    // (plate, slot, argmax char, second char): each argmax char is of the wrong class there.
    type Case = (&'static str, usize, &'static [(char, f32)]);
    let cases: [Case; 10] = [
        ("51D12345", 2, &[('0', 0.7), ('D', 0.2)]), // 0 → D in the series
        ("51F12340", 7, &[('D', 0.7), ('0', 0.2)]), // D → 0 in the serial
        ("51F12340", 7, &[('O', 0.7), ('0', 0.2)]), // O → 0
        ("51F11345", 4, &[('I', 0.7), ('1', 0.2)]), // I → 1
        ("51S12345", 2, &[('5', 0.7), ('S', 0.2)]), // 5 → S
        ("51F12545", 5, &[('S', 0.7), ('5', 0.2)]), // S → 5
        ("29Z125662", 2, &[('2', 0.7), ('Z', 0.2)]), // 2 → Z
        ("29B125622", 7, &[('Z', 0.7), ('2', 0.2)]), // Z → 2
        ("30G70516", 2, &[('6', 0.7), ('G', 0.2)]), // 6 → G
        ("30G70516", 7, &[('G', 0.7), ('6', 0.2)]), // G → 6
    ];
    for (want, slot, spec) in cases {
        let d = decode(&confident(want, &[(slot, spec)]));
        assert_eq!(d.text, want, "slot {slot} {spec:?}");
        assert!(d.changed && d.valid);
        assert_ne!(d.raw_text, want);
        assert!((d.char_conf[slot] - 0.2).abs() < 1e-6);
    }
}

#[test]
fn forbidden_series_letters_take_the_next_letter() {
    // I and O are never series letters: the model's second choice among allowed letters wins.
    let d = decode(&confident(
        "51L12345",
        &[(2, &[('I', 0.6), ('1', 0.25), ('L', 0.1)])],
    ));
    assert_eq!(d.text, "51L12345");
    let d = decode(&confident(
        "51D12345",
        &[(2, &[('O', 0.6), ('0', 0.25), ('D', 0.1)])],
    ));
    assert_eq!(d.text, "51D12345");
}

#[test]
fn pad_in_the_middle_is_replaced() {
    // Nine slots, argmax `30K_31896`: pads may only trail, so slot 3 takes its best character.
    let d = decode(&confident("30K331896", &[(3, &[('_', 0.6), ('3', 0.35)])]));
    assert_eq!(d.raw_text, "30K_31896");
    assert_eq!(d.text, "30K331896");
    assert!(d.valid && d.changed && !d.text.contains('_'));
    assert!((d.char_conf[3] - 0.35).abs() < 1e-6);
}

#[test]
fn a_doubtful_pad_lowers_confidence() {
    // An 8-character plate whose last slot might hold a 9th character.
    let d = decode(&confident("51F12345", &[(8, &[('_', 0.55), ('7', 0.4)])]));
    assert_eq!(d.text, "51F12345");
    assert!((d.confidence - 0.55).abs() < 1e-6);
}

#[test]
fn province_prior_hard_soft_off() {
    // Argmax code 10 (not issued). Pairs: 17 = .5×.3, 70 = .4×.6, 77 = .4×.3.
    let p = confident(
        "70L12345",
        &[
            (0, &[('1', 0.5), ('7', 0.4)]),
            (1, &[('0', 0.6), ('7', 0.3)]),
        ],
    );
    let hard = decode_slots(&p, &DecodeOptions::default()).unwrap();
    assert_eq!(hard.raw_text, "10L12345");
    assert_eq!(hard.text, "70L12345");
    assert_eq!(hard.plate.as_ref().map(|p| p.province_code), Some(Some(70)));
    let soft = DecodeOptions {
        province: ProvincePrior::Soft {
            log_penalty: 0.01f32.ln(),
        },
        ..DecodeOptions::default()
    };
    assert_eq!(decode_slots(&p, &soft).unwrap().text, "70L12345");
    // A weak penalty lets the unissued code through, reported without a province.
    let weak = DecodeOptions {
        province: ProvincePrior::Soft {
            log_penalty: 0.9f32.ln(),
        },
        ..DecodeOptions::default()
    };
    let d = decode_slots(&p, &weak).unwrap();
    assert_eq!(d.text, "10L12345");
    assert!(d.valid);
    let plate = d.plate.unwrap();
    assert_eq!(plate.province_code, Some(10));
    assert!(plate.province.is_none());
    let off = DecodeOptions {
        province: ProvincePrior::Off,
        ..DecodeOptions::default()
    };
    assert_eq!(decode_slots(&p, &off).unwrap().text, "10L12345");
}

#[test]
fn local_province_prior_prefers_the_sites_codes() {
    // 37 (Nghệ An) is issued, so the grammar alone keeps it; a Gia Lai camera mostly sees 77.
    let p = confident("77L24314", &[(0, &[('3', 0.38), ('7', 0.3)])]);
    assert_eq!(decode(&p).text, "37L24314");
    let local = DecodeOptions {
        local_codes: CodeSet::of_province("Gia Lai"),
        local_log_bonus: 20f32.ln(),
        ..DecodeOptions::default()
    };
    let d = decode_slots(&p, &local).unwrap();
    assert_eq!(d.text, "77L24314");
    assert!(d.changed);
    // The reported probability is the model's, without the prior.
    assert!((d.log_prob - (0.3f32.ln() + 8.0 * 0.98f32.ln())).abs() < 1e-4);
    // The confidence is the posterior under the prior the search used: the first 7's marginal
    // over every pair of classes of the two code slots, local codes weighted 20.
    let digit = |c: usize| (c < 10).then_some(c);
    let want = code_digit_posterior(p.row(0), p.row(1), digit, local.local_codes, 20.0, 7);
    assert!(
        (d.char_conf[0] - want).abs() < 1e-4,
        "{:?} vs {want}",
        d.char_conf
    );
    assert!(
        d.char_conf[0] > 0.85,
        "the prior makes the 7 likely: {:?}",
        d.char_conf
    );
    assert!((d.confidence - d.char_conf.iter().copied().fold(1.0, f32::min)).abs() < 0.02);
    // Without local codes the confidence is the OCR's own.
    assert!((decode(&p).char_conf[0] - 0.38).abs() < 1e-6);
    // A plate clearly from elsewhere is not pulled over.
    let p = confident("51F12345", &[]);
    assert_eq!(decode_slots(&p, &local).unwrap().text, "51F12345");
}

#[test]
fn vehicle_class_narrows_the_formats() {
    // Argmax `51F123456` (a motorbike-shaped 9th character, weakly) on a car: 8 characters.
    let p = confident("51F123456", &[(8, &[('6', 0.6), ('_', 0.39)])]);
    assert_eq!(decode(&p).text, "51F123456");
    let on = |vehicle| DecodeOptions {
        hints: PlateHints {
            vehicle,
            rows: None,
        },
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_slots(&p, &on(VehicleKind::Car)).unwrap().text,
        "51F12345"
    );
    // Two civilian letters are a motorbike series: on a car only special series remain.
    let p = confident("30LD12345", &[(3, &[('B', 0.6), ('D', 0.35)])]);
    assert_eq!(decode(&p).text, "30LB12345");
    assert_eq!(
        decode_slots(&p, &on(VehicleKind::Car)).unwrap().text,
        "30LD12345"
    );
    // A 7-character plate is an old car plate: a motorbike takes an 8th character.
    let p = confident("51F1234", &[(7, &[('_', 0.6), ('5', 0.39)])]);
    assert_eq!(decode(&p).text, "51F1234");
    let d = decode_slots(&p, &on(VehicleKind::Motorbike)).unwrap();
    assert_eq!(d.text, "51F12345");
    assert_eq!(d.plate.unwrap().display, "51-F1 2345");
}

#[test]
fn implausible_text_is_returned_invalid_not_dropped() {
    // Confident letters everywhere: no format is within max_log_loss.
    let d = decode(&confident("ABCEFGHKL", &[]));
    assert!(!d.valid && !d.changed);
    assert_eq!(d.text, "ABCEFGHKL");
    assert_eq!(d.raw_text, "ABCEFGHKL");
    assert_eq!(d.confidence, 0.0);
    assert!(d.plate.is_none());
    assert_eq!(d.char_conf.len(), 9);
    assert!(d.char_conf.iter().all(|&c| (c - 0.98).abs() < 1e-6));
    // A generous loss budget forces the best format instead.
    let loose = DecodeOptions {
        max_log_loss: 1e9,
        ..DecodeOptions::default()
    };
    let d = decode_slots(&confident("ABCEFGHKL", &[]), &loose).unwrap();
    assert!(d.valid && d.changed && d.confidence < 0.01);
}

#[test]
fn noise_decodes_with_low_confidence() {
    // Near-uniform slots, as for a tail-light "plate": any answer must carry a low confidence.
    let flat: Vec<&[(char, f32)]> = vec![&[]; 9];
    let d = decode(&matrix(&flat));
    assert!(d.confidence < 0.05, "{d:?}");
}

#[test]
fn military_plates_are_optional() {
    let p = confident("TM1234", &[]);
    let d = decode(&p);
    assert_eq!(d.text, "TM1234");
    assert_eq!(d.plate.unwrap().category, PlateCategory::Military);
    let civil = DecodeOptions {
        allow_military: false,
        ..DecodeOptions::default()
    };
    let d = decode_slots(&p, &civil).unwrap();
    assert!(!d.valid && d.text == "TM1234");
}

#[test]
fn vehicle_hint_sets_the_display() {
    let p = confident("77Y37868", &[]);
    let opts = DecodeOptions {
        hints: PlateHints {
            vehicle: VehicleKind::Motorbike,
            rows: None,
        },
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_slots(&p, &opts).unwrap().plate.unwrap().display,
        "77-Y3 7868"
    );
    assert_eq!(decode(&p).plate.unwrap().display, "77Y-378.68");
}

#[test]
fn other_alphabets_map_onto_plate_symbols() {
    // Same plate, classes in another order with a lower-case duplicate and a foreign class.
    let alphabet: Vec<char> = "_zyxwvutsrqponmlkjihgfedcba9876543210Đ#".chars().collect();
    let want = "51D12345";
    let mut probs = Vec::new();
    for s in 0..9 {
        let c = want.chars().nth(s).unwrap_or('_');
        for &a in &alphabet {
            let hit = if c == 'D' {
                a == 'Đ'
            } else {
                a.to_ascii_uppercase() == c
            };
            probs.push(if hit { 0.9 } else { 0.1 / 38.0 });
        }
    }
    let sp = SlotProbs {
        alphabet,
        pad: '_',
        slots: 9,
        probs,
    };
    let d = decode_slots(&sp, &DecodeOptions::default()).unwrap();
    assert_eq!(d.text, want);
    // Đ and d add up for D.
    assert!(d.char_conf[2] > 0.9);
}

#[test]
fn bad_shapes_are_errors() {
    let mut p = confident("51F12345", &[]);
    p.probs.pop();
    assert!(matches!(
        decode_slots(&p, &DecodeOptions::default()),
        Err(DecodeError::Shape { len: 332, .. })
    ));
    let mut p = confident("51F12345", &[]);
    p.pad = '#';
    assert!(matches!(
        decode_slots(&p, &DecodeOptions::default()),
        Err(DecodeError::PadNotInAlphabet { .. })
    ));
    let p = SlotProbs {
        alphabet: vec!['_'],
        pad: '_',
        slots: 0,
        probs: vec![],
    };
    assert!(matches!(
        decode_slots(&p, &DecodeOptions::default()),
        Err(DecodeError::Slots { slots: 0 })
    ));
}

#[test]
fn non_finite_outputs_do_not_panic() {
    let mut p = confident("51F12345", &[]);
    p.probs[0] = f32::NAN;
    p.probs[40] = f32::INFINITY;
    p.probs[80] = -1.0;
    let d = decode(&p);
    assert!(d.confidence.is_finite() && d.log_prob.is_finite());
}

/// Slot probabilities reconstructed from golden_outputs.json (max prob per slot, the rest spread):
/// the real patterns of the legible plates decode to themselves.
#[test]
fn golden_slot_patterns_decode_unchanged() {
    let cases: [(&str, [f32; 9]); 3] = [
        (
            "29V737694",
            [1.0, 1.0, 0.8497, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ),
        (
            "88A29599",
            [0.9695, 0.9826, 1.0, 1.0, 0.9996, 0.9976, 1.0, 0.9998, 1.0],
        ),
        (
            "19D01370",
            [1.0, 1.0, 1.0, 0.9999, 1.0, 1.0, 1.0, 1.0, 0.9953],
        ),
    ];
    for (text, maxp) in cases {
        let specs: Vec<Vec<(char, f32)>> = (0..9)
            .map(|s| vec![(text.chars().nth(s).unwrap_or('_'), maxp[s])])
            .collect();
        let refs: Vec<&[(char, f32)]> = specs.iter().map(Vec::as_slice).collect();
        let d = decode(&matrix(&refs));
        assert_eq!(d.text, text);
        assert!(!d.changed);
        let min = maxp.iter().copied().fold(1f32, f32::min);
        assert!((d.confidence - min).abs() < 1e-6);
    }
}

/// Edit distance, to count character errors when lengths differ.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The real model output for every recorded crop: legible plates stay exact, garbage detections
/// stay low, and on the low-resolution provincial crops the grammar removes character errors —
/// most remaining ones are digit-for-digit (77 read as 37, 73, 71), which only a local province
/// prior or the per-track vote can fix.
#[test]
fn recorded_model_outputs() {
    let rec = recorded();
    assert_eq!(rec.alphabet, VN_PLATE_OCR_ALPHABET);
    let local = DecodeOptions {
        local_codes: CodeSet::of_province("Gia Lai"),
        local_log_bonus: 20f32.ln(),
        ..DecodeOptions::default()
    };
    let mut legible = 0;
    // (exact, character edits) for argmax, grammar, grammar + local prior, grammar + vehicle
    // class (from the crop's name) + local prior.
    let mut score = [(0usize, 0usize); 4];
    let mut crops = 0;
    for case in &rec.slot {
        let d = decode(&case.probs(&rec.alphabet));
        assert_eq!(d.raw_text, case.argmax, "{}", case.id);
        // Whatever the grammar outputs is a plate, or flagged.
        assert_eq!(
            d.valid,
            crate::plate::grammar::is_valid(&d.text),
            "{}",
            case.id
        );
        if case.id.ends_with(".jpg") {
            crops += 1;
            let dl = decode_slots(&case.probs(&rec.alphabet), &local).unwrap();
            let vehicle = if case.id.contains("person_moto") || case.id.contains("_cls1_") {
                VehicleKind::Motorbike
            } else {
                VehicleKind::Car
            };
            let hinted = DecodeOptions {
                hints: PlateHints {
                    vehicle,
                    rows: None,
                },
                ..local
            };
            let dh = decode_slots(&case.probs(&rec.alphabet), &hinted).unwrap();
            let texts = [&case.argmax, &d.text, &dl.text, &dh.text];
            for (k, text) in texts.into_iter().enumerate() {
                score[k].0 += usize::from(*text == case.gt);
                score[k].1 += levenshtein(text, &case.gt);
            }
        } else if case.gt.is_empty() {
            // Detector false positives (dog photo, tail light, window sticker).
            assert!(d.confidence < 0.3, "{}: {d:?}", case.id);
        } else {
            legible += 1;
            assert_eq!(d.text, case.gt, "{}", case.id);
            assert!(!d.changed && d.confidence > 0.8, "{}: {d:?}", case.id);
        }
    }
    assert_eq!((crops, legible), (60, 12));
    eprintln!(
        "plate crops (exact, char edits): argmax {:?}, grammar {:?}, + local prior {:?}, + vehicle {:?}",
        score[0], score[1], score[2], score[3]
    );
    assert_eq!(score[0], (14, 132));
    assert!(score[1].0 >= 14 && score[1].1 < 132, "{:?}", score[1]);
    assert!(score[2].0 >= 17 && score[2].1 <= 105, "{:?}", score[2]);
}

/// Timing printout (not an assertion): `cargo test --release --lib plate::decode::tests::bench
/// -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn bench_decode_slots() {
    let rec = recorded();
    let inputs: Vec<SlotProbs> = rec.slot.iter().map(|c| c.probs(&rec.alphabet)).collect();
    let opts = DecodeOptions::default();
    let (min, median) = crate::plate::fixtures::micros_per_call(&inputs, 200, |p| {
        decode_slots(p, &opts).map(|d| d.text.len()).unwrap_or(0)
    });
    eprintln!(
        "decode_slots: {min:.2} µs per decode (median pass {median:.2} µs; {} recorded 9×37 matrices, 200 passes)",
        inputs.len()
    );
}

/// Random peaked matrices: every answer follows the grammar, and no valid text one substitution
/// (or two, at the province code and the series) away scores higher — a check of the Viterbi
/// against brute force in the neighbourhood of its answer.
#[test]
fn random_matrices_give_locally_optimal_valid_text() {
    let alphabet: Vec<char> = VN_PLATE_OCR_ALPHABET.chars().collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let score = |p: &SlotProbs, text: &str| -> f32 {
        (0..9)
            .map(|s| {
                let c = text.chars().nth(s).unwrap_or('_');
                let k = alphabet.iter().position(|&a| a == c).unwrap();
                p.row(s)[k].max(1e-12).ln()
            })
            .sum()
    };
    let mut valid = 0;
    for _ in 0..100 {
        let mut probs = Vec::with_capacity(9 * 37);
        for _ in 0..9 {
            // A few strong classes per slot, like a real softmax.
            let mut row: Vec<f32> = (0..37).map(|_| rand().powi(8)).collect();
            let sum: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
            probs.extend(row);
        }
        let p = SlotProbs::vn_plate_ocr(probs);
        let d = decode_slots(
            &p,
            &DecodeOptions {
                max_log_loss: 1e9,
                ..DecodeOptions::default()
            },
        )
        .unwrap();
        assert!(d.valid, "with no loss budget some format always fits");
        assert!(crate::plate::grammar::is_valid(&d.text), "{}", d.text);
        assert!((0.0..=1.0).contains(&d.confidence));
        valid += 1;
        let best = score(&p, &d.text);
        assert!((best - d.log_prob).abs() < 1e-3);
        let chars: Vec<char> = d.text.chars().collect();
        let symbols: Vec<char> = VN_PLATE_OCR_ALPHABET[..36].chars().collect();
        for i in 0..chars.len() {
            for &a in &symbols {
                let mut alt = chars.clone();
                alt[i] = a;
                let alt: String = alt.into_iter().collect();
                if crate::plate::grammar::is_valid(&alt) {
                    assert!(score(&p, &alt) <= best + 1e-4, "{alt} beats {}", d.text);
                }
                // Pairs only where two positions constrain each other: province code, series.
                if (i == 0 || i == 2) && i + 1 < chars.len() {
                    for &b in &symbols {
                        let mut alt2 = chars.clone();
                        alt2[i] = a;
                        alt2[i + 1] = b;
                        let alt2: String = alt2.into_iter().collect();
                        if crate::plate::grammar::is_valid(&alt2) {
                            assert!(score(&p, &alt2) <= best + 1e-4, "{alt2} beats {}", d.text);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(valid, 100);
}

#[test]
fn two_slot_readers_that_disagree_are_decided_by_the_one_that_is_sure() {
    // The first reader hesitates between 7 and 1 in the code; the second is sure of 7 there but
    // hesitates in the serial, where the first is sure.
    let a = confident("77L24314", &[(1, &[('7', 0.5), ('1', 0.45)])]);
    let b = confident("77L24314", &[(5, &[('3', 0.5), ('8', 0.45)])]);
    assert_eq!(
        decode_slots(&a, &DecodeOptions::default()).unwrap().text,
        "77L24314"
    );
    let both = a.product(&b).unwrap();
    assert_eq!(both.slots, 9);
    for j in 0..9 {
        let sum: f32 = both.row(j).iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "slot {j} sums to {sum}");
    }
    let d = decode_slots(&both, &DecodeOptions::default()).unwrap();
    assert_eq!(d.text, "77L24314");
    let alone = |p: &SlotProbs| {
        decode_slots(p, &DecodeOptions::default())
            .unwrap()
            .confidence
    };
    assert!(
        d.confidence > alone(&a).max(alone(&b)),
        "together {} vs alone {} and {}",
        d.confidence,
        alone(&a),
        alone(&b)
    );
}

#[test]
fn a_tenth_slot_only_the_longer_reader_has_keeps_its_row() {
    let nine = confident("29MD12345", &[]);
    let mut ten = nine.clone();
    ten.slots = 10;
    let k = ten.alphabet.len();
    ten.probs.truncate(8 * k);
    for c in ['5', '6'] {
        ten.probs.extend(
            ten.alphabet
                .iter()
                .map(|&x| if x == c { 0.9 } else { 0.1 / 36.0 }),
        );
    }
    let both = nine.product(&ten).unwrap();
    assert_eq!(both.slots, 10);
    assert_eq!(both.row(9), ten.row(9));
    assert_eq!(both.probs.len(), 10 * k);
    assert_eq!(ten.product(&nine).unwrap().row(9), ten.row(9));
}

#[test]
fn slot_readers_with_other_alphabets_are_not_multiplied() {
    let a = confident("51F12345", &[]);
    let mut b = a.clone();
    b.pad = '#';
    assert_eq!(a.product(&b), Err(DecodeError::Alphabets));
    let mut short = a.clone();
    short.probs.pop();
    assert!(matches!(a.product(&short), Err(DecodeError::Shape { .. })));
}

#[test]
fn one_readers_underflow_does_not_veto_what_the_other_reads() {
    let a = confident("51F12345", &[]);
    let mut b = a.clone();
    let k = b.alphabet.len();
    // The second reader puts 1e-30 on `F` in the series slot: not evidence, a softmax tail.
    let f = b.alphabet.iter().position(|&c| c == 'F').unwrap();
    b.probs[2 * k + f] = 1e-30;
    let both = a.product(&b).unwrap();
    assert!(both.row(2)[f] > 1e-12, "{}", both.row(2)[f]);
}
