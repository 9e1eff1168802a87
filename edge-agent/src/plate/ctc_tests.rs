use super::*;
use crate::plate::fixtures::{code_digit_posterior, recorded, shared_dir};
use crate::plate::grammar::PlateCategory;

/// Column of a test label: `~` blank, `-`/`.`/space separator, `?` other, else a symbol.
fn col(c: char) -> usize {
    match c {
        '~' => COL_BLANK,
        '-' | '.' | ' ' => COL_SEP,
        '?' => COL_OTHER,
        c => 1 + usize::from(index_of(c as u8).expect("plate symbol")),
    }
}

/// One step per label at 0.9, the rest spread; `alt` adds a second label per step index.
fn lattice(labels: &str, alt: &[(usize, char, f32)]) -> CtcLattice {
    let steps = labels.chars().count();
    let mut probs = Vec::with_capacity(steps * CTC_WIDTH);
    for (t, c) in labels.chars().enumerate() {
        let mut row = vec![0f32; CTC_WIDTH];
        let extra: Vec<(usize, f32)> = alt
            .iter()
            .filter(|a| a.0 == t)
            .map(|a| (col(a.1), a.2))
            .collect();
        let main = 0.9 - extra.iter().map(|e| e.1).sum::<f32>();
        let rest = 0.1 / (CTC_WIDTH - 1 - extra.len()) as f32;
        for (k, r) in row.iter_mut().enumerate() {
            *r = rest;
            if k == col(c) {
                *r = main;
            }
            if let Some(e) = extra.iter().find(|e| e.0 == k) {
                *r = e.1;
            }
        }
        probs.extend(row);
    }
    CtcLattice { steps, probs }
}

fn decode(l: &CtcLattice) -> PlateDecode {
    decode_ctc(l, &DecodeOptions::default()).unwrap()
}

#[test]
fn ppocr_dictionary_folds_onto_plate_symbols() {
    let keys_path = shared_dir().join("models/ppocrv4_rec_keys.txt");
    let text = std::fs::read_to_string(keys_path).unwrap();
    let keys: Vec<&str> = text.lines().collect();
    assert_eq!(keys.len(), 6623);
    let map = CtcLabelMap::ppocr(&keys);
    assert_eq!(map.classes(), 6625);
    assert_eq!(map.column(0), COL_BLANK);
    assert_eq!(map.column(6624), COL_SEP, "last class is space");
    assert_eq!(map.column(6625), COL_OTHER, "past the end");
    let class_of = |s: &str| 1 + keys.iter().position(|k| *k == s).unwrap();
    assert_eq!(map.column(class_of("0")), 1);
    assert_eq!(map.column(class_of("A")), col('A'));
    assert_eq!(map.column(class_of("-")), COL_SEP);
    assert_eq!(map.column(class_of(".")), COL_SEP);
    assert_eq!(map.column(class_of("的")), COL_OTHER);
    // Every plate symbol is reachable from at least one class.
    for c in 1..=NUM_SYMBOLS {
        assert!((0..map.classes()).any(|k| map.column(k) == c), "column {c}");
    }
}

#[test]
fn reduce_sums_classes_and_checks_shape() {
    let map = CtcLabelMap::ppocr(&["A", "a", "-", "字"]);
    // classes: blank, A, a, -, 字, space
    let probs = [
        0.1, 0.2, 0.3, 0.1, 0.25, 0.05, /* step 2 */ 1.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let l = map.reduce(&probs, 2).unwrap();
    assert_eq!(l.steps, 2);
    let row = &l.probs[..CTC_WIDTH];
    assert!((row[COL_BLANK] - 0.1).abs() < 1e-6);
    assert!((row[col('A')] - 0.5).abs() < 1e-6, "A and a add up");
    assert!((row[COL_SEP] - 0.15).abs() < 1e-6, "- and space add up");
    assert!((row[COL_OTHER] - 0.25).abs() < 1e-6);
    assert!(matches!(
        map.reduce(&probs[..11], 2),
        Err(CtcError::Shape { len: 11, .. })
    ));
    let bad = CtcLattice {
        steps: 3,
        probs: vec![0.0; 5],
    };
    assert!(decode_ctc(&bad, &DecodeOptions::default()).is_err());
}

#[test]
fn clean_path_with_separators() {
    let d = decode(&lattice("~5~1F~-~1~2~3~.~4~5~~", &[]));
    assert_eq!(d.raw_text, "51F12345");
    assert_eq!(d.text, "51F12345");
    assert!(d.valid && !d.changed);
    assert_eq!(d.char_conf.len(), 8);
    assert!((d.confidence - 0.9).abs() < 1e-5);
    assert_eq!(d.plate.unwrap().display, "51F-123.45");
}

#[test]
fn repeated_digits_need_blanks() {
    let d = decode(&lattice("30EE-9~9~99~9~9", &[]));
    assert_eq!(d.text, "30E99999");
    // A run of the same label is one character.
    assert_eq!(d.char_conf.len(), 8);
}

#[test]
fn position_decides_letter_or_digit() {
    // Greedy `BBA29599` (the real PP-OCR error on 88A-295.99): a province needs digits.
    let l = lattice("~B~B~A-2~9~5~9~9", &[(1, '8', 0.3), (3, '8', 0.3)]);
    let d = decode(&l);
    assert_eq!(d.raw_text, "BBA29599");
    assert_eq!(d.text, "88A29599");
    assert!(d.changed && d.valid);
    assert!((d.char_conf[0] - 0.3).abs() < 1e-6);
    // …and a series needs a letter: 0 → D.
    let d = decode(&lattice("~1~9~0~-~0~1~3~7~0", &[(5, 'D', 0.2)]));
    assert_eq!(d.raw_text, "19001370");
    assert_eq!(d.text, "19D01370");
}

#[test]
fn other_characters_and_implausible_text() {
    // A stray non-plate glyph between characters is skipped as if blank, at its cost.
    let d = decode(&lattice("~3~0~K~?~3~1~8~9~6", &[(7, '~', 0.09)]));
    assert_eq!(d.raw_text, "30K?31896");
    assert_eq!(d.text, "30K31896");
    // Confident letters only: returned as read, invalid.
    let d = decode(&lattice("~A~B~C~E~F~G~H~K", &[]));
    assert!(!d.valid && d.confidence == 0.0);
    assert_eq!(d.text, "ABCEFGHK");
}

#[test]
fn military_text_through_ctc() {
    let d = decode(&lattice("~T~M~-~1~2~-~3~4", &[]));
    assert_eq!(d.text, "TM1234");
    assert_eq!(d.plate.unwrap().category, PlateCategory::Military);
}

/// PP-OCRv4 rec outputs on the one-row plates found in footage/images (all cars).
#[test]
fn recorded_ppocr_outputs() {
    let rec = recorded();
    assert_eq!(rec.ctc_columns.len(), CTC_WIDTH + 2);
    assert_eq!(rec.ctc.len(), 7);
    let car = DecodeOptions {
        hints: crate::plate::grammar::PlateHints {
            vehicle: crate::plate::grammar::VehicleKind::Car,
            rows: Some(1),
        },
        ..DecodeOptions::default()
    };
    let (mut exact, mut greedy_exact) = (0, 0);
    for case in &rec.ctc {
        let d = decode_ctc(&case.lattice(), &car).unwrap();
        assert_eq!(d.raw_text, normalize_greedy(&case.greedy), "{}", case.id);
        exact += usize::from(d.text == case.gt);
        greedy_exact += usize::from(d.raw_text == case.gt);
        if case.greedy.starts_with(&case.gt[..3]) && case.greedy.len() >= 9 {
            // Clean reads stay as they are.
            assert_eq!(d.text, case.gt, "{}", case.id);
            assert!(!d.changed && d.confidence > 0.4, "{}: {d:?}", case.id);
        }
    }
    assert_eq!(greedy_exact, 5);
    assert_eq!(exact, 6, "all but `30-999`, whose lattice lost two 9s");
    let bba = rec.ctc.iter().find(|c| c.greedy == "BBA29599").unwrap();
    // Without the vehicle class the two-letter motorbike series `BA` is a better path…
    assert_eq!(decode(&bba.lattice()).text, "88BA29599");
    // …on a car, the province digits are repaired: B → 8.
    let d = decode_ctc(&bba.lattice(), &car).unwrap();
    assert_eq!(d.text, "88A29599");
    assert!(d.changed);
    let lost = rec.ctc.iter().find(|c| c.greedy == "30-999").unwrap();
    assert!(decode_ctc(&lost.lattice(), &car).unwrap().confidence < 0.2);
}

fn normalize_greedy(s: &str) -> String {
    crate::plate::grammar::normalize(s)
}

/// Timing printout (not an assertion): `cargo test --release --lib plate::ctc::tests::bench
/// -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
fn bench_decode_ctc() {
    let rec = recorded();
    let inputs: Vec<CtcLattice> = rec.ctc.iter().map(|c| c.lattice()).collect();
    let opts = DecodeOptions::default();
    let (min, median) = crate::plate::fixtures::micros_per_call(&inputs, 50, |l| {
        decode_ctc(l, &opts).map(|d| d.text.len()).unwrap_or(0)
    });
    eprintln!(
        "decode_ctc: {min:.1} µs per decode (median pass {median:.1} µs; {} recorded 40-step lattices, 50 passes)",
        inputs.len()
    );
}

#[test]
fn local_prior_and_reported_probability() {
    // `37` read, `7` second: a Gia Lai camera prefers 77; log_prob stays the model's.
    let l = lattice("~3~7~L~1~2~3~4~5", &[(1, '7', 0.3)]);
    assert_eq!(decode(&l).text, "37L12345");
    let local = DecodeOptions {
        local_codes: crate::plate::province::CodeSet::of_province("Gia Lai"),
        local_log_bonus: 20f32.ln(),
        ..DecodeOptions::default()
    };
    let d = decode_ctc(&l, &local).unwrap();
    assert_eq!(d.text, "77L12345");
    // The first 7's confidence is its posterior under the prior: steps 1 and 3 hold the code,
    // local pairs of digit columns weigh 20.
    let row = |t: usize| &l.probs[t * CTC_WIDTH..(t + 1) * CTC_WIDTH];
    let digit = |k: usize| (1..=10).contains(&k).then(|| k - 1);
    let want = code_digit_posterior(row(1), row(3), digit, local.local_codes, 20.0, col('7'));
    assert!(
        (d.char_conf[0] - want).abs() < 1e-4,
        "{:?} vs {want}",
        d.char_conf
    );
    assert!(
        d.char_conf[0] > 0.8,
        "the prior makes the 7 likely: {:?}",
        d.char_conf
    );
    // 16 steps: the 7 at step 1 (0.3), every other step its own label (0.9).
    let expected = 0.3f32.ln() + 15.0 * 0.9f32.ln();
    assert!(
        (d.log_prob - expected).abs() < 1e-3,
        "{} vs {expected}",
        d.log_prob
    );
}

/// The Viterbi prunes prefixes that trail the greedy prefix by more than the loss budget; that must
/// never change a plausible answer. Without a budget nothing is pruned.
#[test]
fn pruning_keeps_plausible_answers() {
    let rec = recorded();
    let unpruned = DecodeOptions {
        max_log_loss: 1e9,
        ..DecodeOptions::default()
    };
    let mut lattices: Vec<CtcLattice> = rec.ctc.iter().map(|c| c.lattice()).collect();
    lattices.push(lattice("~B~B~A-2~9~5~9~9", &[(1, '8', 0.3), (3, '8', 0.3)]));
    lattices.push(lattice("~3~0~K~?~3~1~8~9~6", &[(7, '~', 0.09)]));
    let mut compared = 0;
    for l in &lattices {
        let pruned = decode(l);
        let full = decode_ctc(l, &unpruned).unwrap();
        if pruned.valid {
            assert_eq!(pruned.text, full.text);
            assert!((pruned.log_prob - full.log_prob).abs() < 1e-4);
            compared += 1;
        } else {
            // Invalid under the budget: the unpruned best is beyond it.
            let budget = DecodeOptions::default().max_log_loss;
            assert!(!full.valid || full.log_prob < pruned.log_prob - budget);
        }
    }
    assert!(compared >= 8, "{compared}");
}

#[test]
fn non_finite_outputs_do_not_panic() {
    let mut l = lattice("~5~1F~1~2~3~4~5", &[]);
    l.probs[3] = f32::NAN;
    l.probs[50] = f32::INFINITY;
    l.probs[90] = -3.0;
    let d = decode(&l);
    assert_eq!(d.text, "51F12345");
    assert!(d.confidence.is_finite() && d.log_prob.is_finite());
}

#[test]
fn two_rows_read_separately_join_top_first() {
    // PP-OCR reads `29-V5` and `2108` as two lines; the top row ends with 5, the bottom starts
    // with 2. A seam between equal characters must not merge them either.
    let top = lattice("~2~9~-~V~5~", &[]);
    let bottom = lattice("~2~1~0~8~", &[]);
    let joined = CtcLattice::join_rows(&[top.clone(), bottom]);
    assert_eq!(joined.steps, 11 + 1 + 9);
    let moto = DecodeOptions {
        hints: crate::plate::grammar::PlateHints {
            vehicle: crate::plate::grammar::VehicleKind::Motorbike,
            rows: Some(2),
        },
        ..DecodeOptions::default()
    };
    let d = decode_ctc(&joined, &moto).unwrap();
    assert_eq!(d.text, "29V52108");
    assert_eq!(d.plate.unwrap().display, "29-V5 2108");
    // `29-B1` / `125.62`: without the seam the two 1s would collapse into one.
    let a = lattice("~2~9-B1", &[]);
    let b = lattice("1~2~5.6~2", &[]);
    let naive = CtcLattice {
        steps: a.steps + b.steps,
        probs: [a.probs.clone(), b.probs.clone()].concat(),
    };
    assert_eq!(decode(&naive).raw_text, "29B12562");
    let d = decode(&CtcLattice::join_rows(&[a, b]));
    assert_eq!(d.raw_text, "29B112562");
    assert_eq!(d.text, "29B112562");
    assert_eq!(CtcLattice::join_rows(&[]).steps, 0);
    assert_eq!(CtcLattice::join_rows(&[top]).steps, 11);
}

/// Brute force on small random lattices: over every label path of a 7-step lattice with support
/// {blank, T, M, 1, 2, separator}, the best path whose collapsed text is a plate (military
/// `TM` + 4 digits; separators not first or last) has the probability the Viterbi reports.
#[test]
fn viterbi_matches_brute_force_on_small_lattices() {
    let support = [COL_BLANK, col('T'), col('M'), col('1'), col('2'), COL_SEP];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let steps = 7;
    let opts = DecodeOptions {
        max_log_loss: 1e9,
        ..DecodeOptions::default()
    };
    for _ in 0..6 {
        let mut probs = vec![0f32; steps * CTC_WIDTH];
        for t in 0..steps {
            let w: Vec<f32> = support.iter().map(|_| 0.05 + rand()).collect();
            let sum: f32 = w.iter().sum();
            for (&c, &v) in support.iter().zip(&w) {
                probs[t * CTC_WIDTH + c] = v / sum;
            }
        }
        let l = CtcLattice { steps, probs };
        let mut best = f32::NEG_INFINITY;
        let mut best_text = String::new();
        let mut labels = vec![0usize; steps];
        for code in 0..support.len().pow(steps as u32) {
            let mut rest = code;
            for lab in labels.iter_mut() {
                *lab = support[rest % support.len()];
                rest /= support.len();
            }
            // Collapse repeats, drop blanks; separators may not lead or trail.
            let mut tokens = Vec::new();
            let mut prev = usize::MAX;
            for &lab in &labels {
                if lab != prev && lab != COL_BLANK {
                    tokens.push(lab);
                }
                prev = lab;
            }
            if tokens.first() == Some(&COL_SEP) || tokens.last() == Some(&COL_SEP) {
                continue;
            }
            let text: String = tokens
                .iter()
                .filter(|&&c| c != COL_SEP)
                .map(|&c| symbol((c - 1) as u8) as char)
                .collect();
            if !crate::plate::grammar::is_valid(&text) {
                continue;
            }
            let s: f32 = labels
                .iter()
                .enumerate()
                .map(|(t, &c)| l.probs[t * CTC_WIDTH + c].ln())
                .sum();
            if s > best {
                best = s;
                best_text = text;
            }
        }
        assert!(best > f32::NEG_INFINITY);
        let d = decode_ctc(&l, &opts).unwrap();
        assert!(
            (d.log_prob - best).abs() < 1e-3,
            "{} {} vs {best_text} {best}",
            d.text,
            d.log_prob
        );
        assert_eq!(d.text, best_text);
    }
}
