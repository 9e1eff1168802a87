use super::*;
use crate::plate::decode::{DecodeOptions, SlotProbs, VN_PLATE_OCR_ALPHABET, decode_slots};
use crate::plate::grammar::{PlateCategory, VehicleKind};

/// A valid read with `conf` on every character, except `low` = (position, confidence).
fn read(text: &str, conf: f32, low: &[(usize, f32)], evidence: u64, quality: f32) -> PlateRead {
    let mut char_conf = vec![conf; text.len()];
    for &(i, c) in low {
        char_conf[i] = c;
    }
    PlateRead {
        text: text.to_string(),
        confidence: char_conf.iter().copied().fold(1f32, f32::min),
        char_conf,
        valid: crate::plate::grammar::is_valid(text),
        evidence,
        quality,
    }
}

fn vote(reads: Vec<PlateRead>) -> TrackVote {
    let mut v = TrackVote::new(VoteConfig::default());
    for r in reads {
        v.add(r);
    }
    v
}

#[test]
fn empty_track_has_no_result() {
    let v: TrackVote = TrackVote::new(VoteConfig::default());
    assert!(v.result().is_none() && v.is_empty() && !v.is_confident());
}

#[test]
fn noisy_reads_vote_per_character() {
    // No single read is fully right except two; errors sit at different places with low
    // confidence where the OCR was unsure.
    let v = vote(vec![
        read("29B125662", 0.9, &[], 1, 10.0),
        read("29B125682", 0.9, &[(7, 0.4)], 2, 30.0),
        read("28B125662", 0.9, &[(1, 0.35)], 3, 20.0),
        read("29B123662", 0.9, &[(5, 0.3)], 4, 15.0),
        read("29B125662", 0.8, &[], 5, 12.0),
    ]);
    let r = v.result().unwrap();
    assert_eq!(r.text, "29B125662");
    assert_eq!(r.group_reads, 5);
    assert_eq!(r.agreeing_reads, 2);
    // Position 7: four reads say 6 (0.9, 0.9, 0.9, 0.8), one says 8 → (3.5) / 5.
    assert!((r.char_conf[7] - 0.7).abs() < 1e-5, "{:?}", r.char_conf);
    assert!((r.confidence - 0.7).abs() < 1e-5);
    assert_eq!(r.plate.as_ref().unwrap().display, "29-B1 256.62");
    // Best crop among the reads that agree with the consensus, not the sharpest wrong one.
    assert_eq!(r.best_evidence, 5);
    assert!((r.share - 1.0).abs() < 1e-6);
    // Only two reads agree exactly: keep reading.
    assert!(!r.confident);
}

#[test]
fn stop_rule_needs_agreeing_confident_reads() {
    let mut v = vote(vec![
        read("51F12345", 0.95, &[], 1, 1.0),
        read("51F12345", 0.93, &[], 2, 1.0),
    ]);
    assert!(!v.is_confident(), "two reads are not enough");
    v.add(read("51F12345", 0.9, &[], 3, 1.0));
    assert!(v.is_confident());
    let r = v.result().unwrap();
    assert_eq!((r.agreeing_reads, r.text.as_str()), (3, "51F12345"));
    assert!(r.confidence >= 0.9 - 1e-6);

    // Three agreeing but weak reads do not stop the reading.
    let v = vote(vec![
        read("51F12345", 0.5, &[], 1, 1.0),
        read("51F12345", 0.6, &[], 2, 1.0),
        read("51F12345", 0.55, &[], 3, 1.0),
    ]);
    let r = v.result().unwrap();
    assert!(!r.confident && r.confidence < 0.8);
}

#[test]
fn rival_plates_in_one_track_block_the_stop() {
    // A tracker ID switch: two vehicles' plates in one track, equally strong.
    let v = vote(vec![
        read("51F12345", 0.95, &[], 1, 1.0),
        read("30K31896", 0.95, &[], 2, 1.0),
        read("51F12345", 0.95, &[], 3, 1.0),
        read("30K31896", 0.95, &[], 4, 1.0),
        read("51F12345", 0.95, &[], 5, 1.0),
        read("30K31896", 0.96, &[], 6, 1.0),
    ]);
    let r = v.result().unwrap();
    assert_eq!(r.text, "30K31896", "the heavier group wins");
    assert_eq!(r.group_reads, 3);
    assert!(r.share < 0.51 && r.share > 0.49);
    assert!(!r.confident, "no clear winner");
}

#[test]
fn different_lengths_form_separate_groups() {
    let v = vote(vec![
        read("29V52108", 0.9, &[], 1, 1.0),
        read("29V521088", 0.3, &[], 2, 1.0),
        read("29V52108", 0.85, &[], 3, 1.0),
    ]);
    let r = v.result().unwrap();
    assert_eq!(r.text, "29V52108");
    assert_eq!(r.group_reads, 2);
    assert_eq!(r.valid_reads, 3);
    assert!((r.share - 1.75 / 2.05).abs() < 1e-5);
}

#[test]
fn far_reads_do_not_join() {
    // Three characters apart: a different plate, not noise.
    let v = vote(vec![
        read("51F12345", 0.9, &[], 1, 1.0),
        read("51F19995", 0.95, &[], 2, 1.0),
    ]);
    let r = v.result().unwrap();
    assert_eq!(r.group_reads, 1);
    assert_eq!(r.text, "51F19995");
}

#[test]
fn invalid_reads_are_counted_not_voted() {
    let mut v = vote(vec![read("51F12345", 0.9, &[], 1, 1.0)]);
    let mut bad = read("5IF1234S", 0.99, &[], 2, 99.0);
    assert!(!bad.valid);
    v.add(bad.clone());
    bad.text.clear();
    bad.valid = true;
    v.add(bad);
    let r = v.result().unwrap();
    assert_eq!(r.text, "51F12345");
    assert_eq!((r.valid_reads, r.invalid_reads), (1, 2));
    assert_eq!(r.best_evidence, 1);
}

#[test]
fn a_mix_that_breaks_the_grammar_is_decoded_to_the_best_plate() {
    // QT and LD are both special series. Per position Q (0.9 vs 0.1) and D (0.8 vs 0.2) win, but
    // `50QD…` is no plate: the consensus is the best plate under the vote shares, QT (0.9 × 0.2)
    // over LD (0.1 × 0.8).
    let v = vote(vec![
        read("50QT00454", 0.9, &[(3, 0.2)], 1, 1.0),
        read("50LD00454", 0.8, &[(2, 0.1)], 2, 1.0),
    ]);
    let r = v.result().unwrap();
    assert_eq!(r.text, "50QT00454");
    assert_eq!(r.plate.unwrap().category, PlateCategory::InternationalOrg);
    // Character confidence is the mean support over the group's two reads.
    let want = [0.85, 0.85, 0.45, 0.1, 0.85, 0.85, 0.85, 0.85, 0.85];
    assert!(
        r.char_conf
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() < 1e-6),
        "{:?}",
        r.char_conf
    );
    assert!((r.confidence - 0.1).abs() < 1e-6);
    assert_eq!(r.agreeing_reads, 1);
}

#[test]
fn capacity_keeps_the_strongest_reads() {
    let cfg = VoteConfig {
        max_reads: 3,
        ..VoteConfig::default()
    };
    let mut v: TrackVote = TrackVote::new(cfg);
    for (i, c) in [0.5, 0.6, 0.7].into_iter().enumerate() {
        v.add(read("51F12345", c, &[], i as u64, 1.0));
    }
    v.add(read("51F12345", 0.4, &[], 10, 1.0));
    v.add(read("51F12345", 0.95, &[], 11, 1.0));
    assert_eq!(v.len(), 3);
    assert_eq!(v.dropped(), 2);
    let r = v.result().unwrap();
    // 0.5 was replaced by 0.95; 0.4 was refused.
    assert!((r.confidence - (0.6 + 0.7 + 0.95) / 3.0).abs() < 1e-5);
}

#[test]
fn hints_classify_the_consensus() {
    let mut v = vote(vec![read("77Y37868", 0.9, &[], 1, 1.0)]);
    assert_eq!(v.result().unwrap().plate.unwrap().display, "77Y-378.68");
    v.set_hints(PlateHints {
        vehicle: VehicleKind::Motorbike,
        rows: None,
    });
    assert_eq!(v.result().unwrap().plate.unwrap().display, "77-Y3 7868");
}

#[test]
fn reads_from_the_decoder() {
    // Three crops of one plate, each with a different weak slot; the decoder fixes the B/8 in the
    // first, the vote settles the rest.
    let make = |weak: usize, alt: char| {
        let text = "29B125662";
        let alphabet: Vec<char> = VN_PLATE_OCR_ALPHABET.chars().collect();
        let mut probs = Vec::new();
        for s in 0..9 {
            let want = text.chars().nth(s).unwrap_or('_');
            for &a in &alphabet {
                probs.push(if s == weak {
                    if a == alt {
                        0.55
                    } else if a == want {
                        0.4
                    } else {
                        0.05 / 35.0
                    }
                } else if a == want {
                    0.97
                } else {
                    0.03 / 36.0
                });
            }
        }
        SlotProbs::vn_plate_ocr(probs)
    };
    let mut v: TrackVote<&str> = TrackVote::new(VoteConfig::default());
    for (weak, alt, id) in [(2, '8', "a"), (6, '8', "b"), (4, '7', "c"), (0, '3', "d")] {
        let d = decode_slots(&make(weak, alt), &DecodeOptions::default()).unwrap();
        assert!(d.valid);
        v.add(PlateRead::from_decode(&d, id, 1.0));
    }
    let r = v.result().unwrap();
    assert_eq!(r.text, "29B125662");
    assert_eq!(r.group_reads, 4);
    assert_eq!(r.agreeing_reads, 1, "only the B/8 read was repaired alone");
    assert_eq!(r.best_evidence, "a");
}

#[test]
fn a_mix_that_makes_an_unissued_code_is_not_reported() {
    // 1 from the first read and 0 from the second would give province 10.
    let v = vote(vec![
        read("17A12345", 0.9, &[(1, 0.3)], 1, 1.0),
        read("70A12345", 0.8, &[(0, 0.2)], 2, 1.0),
    ]);
    let r = v.result().unwrap();
    assert_eq!(r.text, "17A12345");
    assert_eq!(r.plate.unwrap().province_code, Some(17));
}

#[test]
fn reads_admitted_by_a_soft_province_prior_keep_their_code() {
    // A site decoding with a soft prior may accept a code the table does not know yet.
    let mut r = read("10A12345", 0.9, &[], 1, 1.0);
    assert!(!r.valid);
    r.valid = true;
    let v = vote(vec![r.clone(), r.clone(), r]);
    let res = v.result().unwrap();
    assert_eq!(res.text, "10A12345");
    assert_eq!(res.agreeing_reads, 3);
    let plate = res.plate.unwrap();
    assert_eq!(plate.province_code, Some(10));
    assert!(plate.province.is_none());
}
