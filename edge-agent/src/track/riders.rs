//! Motorbikes carrying a rider. A COCO detector sees the rider of a motorbike as a confident
//! `person` and the bike under them often at 0.4-0.5: below the score that starts a track, so on
//! Vietnamese streets most motorbikes were tracked late or never, and only as people, which
//! vehicle rules (wrong way, red light, counts) do not look at. On the Hải Phòng clip the stop-line
//! count saw none of the motorbikes that crossed it. A bike with a rider on it is as certain as
//! the rider: it gets the rider's score.

use crate::inference::Detection;

/// Least horizontal overlap of rider and bike, as a share of the narrower box.
const MIN_OVERLAP: f32 = 0.5;

/// Raises each bike detection (`bikes`: motorcycle, bicycle classes) that carries a `person`
/// detection to that person's score, when higher. Returns how many were raised.
pub fn carry(dets: &mut [Detection], person: usize, bikes: &[usize]) -> usize {
    let riders: Vec<(f32, [f32; 4])> = dets
        .iter()
        .filter(|d| d.class_id == person)
        .map(|d| (d.score, d.bbox))
        .collect();
    let mut raised = 0;
    for d in dets.iter_mut().filter(|d| bikes.contains(&d.class_id)) {
        let best = riders
            .iter()
            .filter(|(_, p)| rides(p, &d.bbox))
            .map(|(s, _)| *s)
            .fold(d.score, f32::max);
        if best > d.score {
            d.score = best;
            raised += 1;
        }
    }
    raised
}

/// Whether a person box `p` sits on a bike box `b`: side by side over most of the narrower
/// width, the head above the bike's top, and the person's lower part on the bike (not standing
/// below it or beside it).
fn rides(p: &[f32; 4], b: &[f32; 4]) -> bool {
    let overlap = (p[2].min(b[2]) - p[0].max(b[0])).max(0.0);
    let narrower = (p[2] - p[0]).min(b[2] - b[0]);
    let (bike_h, person_h) = (b[3] - b[1], p[3] - p[1]);
    narrower > 0.0
        && bike_h > 0.0
        && overlap >= MIN_OVERLAP * narrower
        && p[1] < b[1]
        && p[3] > b[1] + 0.25 * bike_h
        && p[3] <= b[3] + 0.25 * bike_h
        && person_h < 3.0 * bike_h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            class_id,
            score,
            bbox,
        }
    }

    /// Boxes measured on the Hải Phòng clip (frame 15 and 20, YOLOX-Nano at 416).
    #[test]
    fn a_bike_under_a_rider_takes_the_riders_score_and_others_do_not() {
        const PERSON: usize = 0;
        const MOTO: usize = 3;
        let mut dets = vec![
            det(PERSON, 0.80, [802.0, 284.0, 858.0, 443.0]),
            det(MOTO, 0.42, [795.0, 371.0, 852.0, 467.0]),
            det(PERSON, 0.76, [763.0, 302.0, 807.0, 393.0]),
            det(MOTO, 0.46, [763.0, 308.0, 810.0, 409.0]),
            // a parked bike with a pedestrian standing beside it
            det(MOTO, 0.45, [100.0, 400.0, 160.0, 470.0]),
            det(PERSON, 0.9, [165.0, 330.0, 200.0, 470.0]),
            // a bike with a person walking far in front of it (feet well below the bike)
            det(MOTO, 0.44, [300.0, 300.0, 360.0, 360.0]),
            det(PERSON, 0.9, [300.0, 280.0, 350.0, 450.0]),
        ];
        assert_eq!(carry(&mut dets, PERSON, &[MOTO]), 2);
        assert_eq!(dets[1].score, 0.80);
        assert_eq!(dets[3].score, 0.76);
        assert_eq!(dets[4].score, 0.45);
        assert_eq!(dets[6].score, 0.44);
        // people keep theirs; nothing changes without a person class
        assert_eq!(dets[0].score, 0.80);
        let before: Vec<f32> = dets.iter().map(|d| d.score).collect();
        assert_eq!(carry(&mut dets, 99, &[MOTO]), 0);
        assert_eq!(dets.iter().map(|d| d.score).collect::<Vec<_>>(), before);
    }
}
