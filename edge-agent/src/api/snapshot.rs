//! `/cameras/{id}/snapshot.jpg`: the camera's last processed frame with what the agent saw on it —
//! zones and lines (drawn as `edge-agent zones` draws them), object boxes with track ids and
//! labels, and plates once read. People are pixelated as in evidence unless the camera's privacy
//! setting turns that off.

use crate::config::CameraConfig;
use crate::events::evidence::{EvidenceError, encode_frame};
use crate::inference::RgbImage;
use crate::pipeline::live::LiveFrame;
use crate::rules::draw;

/// JPEG quality of snapshots: legible plates, small enough for a 4G link.
pub const QUALITY: u8 = 80;

const CONFIRMED: [u8; 3] = [40, 230, 60];
const PREDICTED: [u8; 3] = [170, 170, 170];
const PLATE: [u8; 3] = [255, 235, 0];

/// Draws the overlays onto a copy of the frame, pixelating people first when `blur_people`.
pub fn overlay(frame: &LiveFrame, cam: Option<&CameraConfig>, blur_people: bool) -> RgbImage {
    let mut img: RgbImage = (*frame.image).clone();
    if blur_people {
        let people: Vec<[f32; 4]> = frame
            .objects
            .iter()
            .filter(|o| &*o.label == "person")
            .map(|o| o.bbox)
            .collect();
        crate::privacy::pixelate_people(&mut img, &people);
    }
    if let Some(cam) = cam {
        draw::render(&mut img, &cam.geometry());
    }
    for o in &frame.objects {
        let mut text = format!("{} {}", o.track_id, o.label);
        if let Some(p) = &o.plate {
            text.push(' ');
            text.push_str(p);
        }
        let colour = match (&o.plate, o.confirmed) {
            (Some(_), _) => PLATE,
            (None, true) => CONFIRMED,
            (None, false) => PREDICTED,
        };
        draw::object_box(&mut img, o.bbox, &text, colour);
    }
    img
}

/// The overlaid frame as a JPEG.
pub fn encode(
    frame: &LiveFrame,
    cam: Option<&CameraConfig>,
    blur_people: bool,
) -> Result<Vec<u8>, EvidenceError> {
    let img = overlay(frame, cam, blur_people);
    let (w, h) = img.dimensions();
    Ok(encode_frame(img.as_raw(), w, h, 0, QUALITY)?.jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::live::OverlayObject;
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    #[test]
    fn boxes_and_zones_are_drawn_and_the_jpeg_decodes() {
        let frame = LiveFrame {
            image: Arc::new(RgbImage::new(320, 240)),
            seq: 1,
            capture_time: SystemTime::now(),
            at: Instant::now(),
            objects: vec![OverlayObject {
                track_id: 3,
                label: Arc::from("car"),
                bbox: [100.0, 100.0, 200.0, 180.0],
                confirmed: true,
                plate: None,
            }],
        };
        let cam: CameraConfig = toml::from_str(
            "id = \"c\"\nurl = \"x\"\n[[zones]]\nid = \"z\"\npolygon = [[10, 10], [60, 10], [60, 60]]\n",
        )
        .unwrap();
        let img = overlay(&frame, Some(&cam), true);
        // Box edge in the box colour, zone interior tinted, untouched elsewhere.
        assert_eq!(img.get_pixel(150, 180).0, CONFIRMED);
        assert_ne!(img.get_pixel(50, 20).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(300, 20).0, [0, 0, 0]);
        assert_eq!(
            frame.image.get_pixel(150, 180).0,
            [0, 0, 0],
            "frame untouched"
        );
        let jpeg = encode(&frame, Some(&cam), true).unwrap();
        let back = crate::imageio::decode_rgb(&jpeg).unwrap();
        assert_eq!(back.dimensions(), (320, 240));
    }

    #[test]
    fn people_are_pixelated_unless_the_camera_turns_it_off() {
        // A striped frame: pixelation averages the stripes inside the person's box to grey.
        let mut img = RgbImage::new(200, 200);
        for (x, _, p) in img.enumerate_pixels_mut() {
            p.0 = if x % 2 == 0 { [255; 3] } else { [0; 3] };
        }
        let frame = LiveFrame {
            image: Arc::new(img),
            seq: 1,
            capture_time: SystemTime::now(),
            at: Instant::now(),
            objects: vec![OverlayObject {
                track_id: 1,
                label: Arc::from("person"),
                bbox: [40.0, 40.0, 120.0, 190.0],
                confirmed: true,
                plate: None,
            }],
        };
        let inside = |img: &RgbImage| {
            (60..70)
                .map(|x| img.get_pixel(x, 100).0[0])
                .collect::<Vec<_>>()
        };
        let blurred = overlay(&frame, None, true);
        assert!(
            inside(&blurred).iter().all(|&v| (60..200).contains(&v)),
            "{:?}",
            inside(&blurred)
        );
        let clear = overlay(&frame, None, false);
        assert_eq!(inside(&clear)[..2], [255, 0]);
    }
}
