//! Turns the pipeline's observations into contract events ([`crate::events::Event`]) with their
//! evidence JPEGs: the frame the event arose on and the object (the plate crop for plates).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::EvidenceConfig;
use crate::events::evidence::{self, EvidenceError, EvidenceImage};
use crate::events::{
    Event, EventKind, Location, ModelId, ObjectInfo, Phase, PlateInfo, RuleInfo, TimeSource,
    TimeSync,
};
use crate::inference::RgbImage;
use crate::plate::VoteResult;
use crate::privacy::{PlateDisclosure, PrivacyPolicy, pixelate_people};
use crate::source::{CaptureClock, SourceCounters, StreamStatus};
use crate::watchlist::MatchKind;

use super::camera::{FrameContext, Observation, PlateCrop};

/// Fills the fields every event of this device shares.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    pub site_id: String,
    pub device_id: String,
    pub config_hash: String,
    pub models: Vec<ModelId>,
    pub evidence: EvidenceConfig,
    pub time_sync: TimeSync,
    /// Plate hashing, the watchlist and per-camera pixelation of people.
    pub privacy: PrivacyPolicy,
    /// Where each camera stands (cameras without a configured location are absent).
    pub locations: BTreeMap<String, Location>,
}

fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

/// The event's plate from a track's vote.
pub fn plate_info(v: &VoteResult<std::sync::Arc<PlateCrop>>) -> PlateInfo {
    PlateInfo {
        text: v.text.clone(),
        display: v
            .plate
            .as_ref()
            .map_or_else(|| v.text.clone(), |p| p.display.clone()),
        confidence: v.confidence,
        char_confidence: v.char_conf.clone(),
        rows: v.plate.as_ref().and_then(|p| p.rows).unwrap_or(1),
        province: v
            .plate
            .as_ref()
            .and_then(|p| p.province.map(|x| x.name.to_string())),
        valid: v.plate.is_some(),
        text_hmac: None,
    }
}

/// A detection-frame box in the pixels of a frame `scale` times its size.
fn up(b: [f32; 4], scale: (f32, f32)) -> [f32; 4] {
    [
        b[0] * scale.0,
        b[1] * scale.1,
        b[2] * scale.0,
        b[3] * scale.1,
    ]
}

/// The plate as a pseudonym only: no text, display or province (which gives away the first two
/// digits), just what a reviewer needs to weigh the sighting.
fn hashed(mut info: PlateInfo, hmac: String) -> PlateInfo {
    info.text.clear();
    info.display.clear();
    info.province = None;
    info.text_hmac = Some(hmac);
    info
}

impl EventBuilder {
    fn base(&self, kind: EventKind, phase: Phase, camera: &str, t: SystemTime) -> Event {
        let mut e = Event::new(kind, phase, &self.site_id, &self.device_id, camera, utc(t));
        e.time_sync = self.time_sync;
        e.models = self.models.clone();
        e.config_hash = self.config_hash.clone();
        e.location = self.locations.get(camera).cloned();
        e
    }

    /// The frame as evidence may show it — the main stream's of the same moment when there is
    /// one — with people pixelated unless this camera has it off; and the scale from detection
    /// pixels to its pixels.
    fn evidence_image<'f>(
        &self,
        camera: &str,
        frame: &'f FrameContext<'_>,
    ) -> (Cow<'f, RgbImage>, (f32, f32)) {
        let (image, scale) = match frame.main {
            Some(m) => (m.image, (m.sx, m.sy)),
            None => (frame.image, (1.0, 1.0)),
        };
        if self.privacy.blurs(camera) && !frame.people.is_empty() {
            let mut img = image.clone();
            let people: Vec<[f32; 4]> = frame.people.iter().map(|b| up(*b, scale)).collect();
            pixelate_people(&mut img, &people);
            (Cow::Owned(img), scale)
        } else {
            (Cow::Borrowed(image), scale)
        }
    }

    fn frame_jpeg(&self, image: &RgbImage) -> Result<EvidenceImage, EvidenceError> {
        evidence::encode_frame(
            image.as_raw(),
            image.width(),
            image.height(),
            self.evidence.frame_max_width,
            self.evidence.jpeg_quality,
        )
    }

    /// A rule event's plate as it may be disclosed (in clear only when listed or hashing is off).
    fn rule_plate(&self, v: &VoteResult<std::sync::Arc<PlateCrop>>) -> PlateInfo {
        let info = plate_info(v);
        match self.privacy.disclose(&v.text) {
            PlateDisclosure::Hashed(h) => hashed(info, h),
            PlateDisclosure::Hit { .. } | PlateDisclosure::Clear => info,
        }
    }

    /// The event and its evidence for one observation. `frame` is absent for reports made at the
    /// end of a stream; such events carry only the object crop they kept.
    pub fn build(
        &self,
        camera: &str,
        obs: &Observation,
        frame: Option<&FrameContext<'_>>,
    ) -> Result<(Event, Vec<EvidenceImage>), EvidenceError> {
        let (mut e, images) = self.build_event(camera, obs, frame)?;
        e.time_source = Some(match frame.map(|f| f.clock) {
            Some(CaptureClock::Receipt) => TimeSource::Receipt,
            Some(CaptureClock::FileStart) => TimeSource::FileStart,
            None => TimeSource::Agent,
        });
        Ok((e, images))
    }

    fn build_event(
        &self,
        camera: &str,
        obs: &Observation,
        frame: Option<&FrameContext<'_>>,
    ) -> Result<(Event, Vec<EvidenceImage>), EvidenceError> {
        let now = SystemTime::now();
        let t = frame.map_or(now, |f| f.capture_time);
        let mut images = Vec::new();
        match obs {
            Observation::RulesDisabled(reason) => {
                let mut e = self.base(EventKind::CameraHealth, Phase::New, camera, t);
                let mut details = Map::new();
                details.insert("state".into(), Value::from("rules_disabled"));
                details.insert("reason".into(), Value::from(reason.clone()));
                e.rule = Some(RuleInfo {
                    id: "camera_health".into(),
                    zone: None,
                    line: None,
                    details,
                });
                Ok((e, images))
            }
            Observation::Plate(p) => {
                let crop = &p.result.best_evidence;
                let mut details = Map::new();
                // A listed plate is an alert in clear; an unlisted one is a sighting, sent as a
                // pseudonym and without images when hashing is on (an image shows the plate).
                let (kind, plate, with_images) = match self.privacy.disclose(&p.result.text) {
                    PlateDisclosure::Hit {
                        entry,
                        list_hash,
                        kind,
                        distance,
                        candidates,
                    } => {
                        if let Some(label) = entry.label {
                            details.insert("label".into(), Value::from(label));
                        }
                        details.insert(
                            "watchlist_version".into(),
                            Value::from(list_hash.chars().take(12).collect::<String>()),
                        );
                        // A fuzzy hit is a possible hit: the listed plate differs from the read,
                        // so both are sent, with how sure the read was, for a person to check.
                        details.insert("match".into(), Value::from(kind.as_str()));
                        details.insert("match_distance".into(), Value::from(distance));
                        details.insert("listed_plate".into(), Value::from(entry.plate));
                        details.insert(
                            "read_confidence".into(),
                            Value::from((f64::from(p.result.confidence) * 1000.0).round() / 1000.0),
                        );
                        if kind == MatchKind::Fuzzy {
                            details.insert("candidates".into(), Value::from(candidates));
                        }
                        (EventKind::WatchlistHit, plate_info(&p.result), true)
                    }
                    PlateDisclosure::Hashed(h) => (
                        EventKind::PlateRead,
                        hashed(plate_info(&p.result), h),
                        false,
                    ),
                    PlateDisclosure::Clear => (EventKind::PlateRead, plate_info(&p.result), true),
                };
                let mut e = self.base(kind, Phase::New, camera, t);
                e.object = Some(ObjectInfo {
                    class: p.label.to_string(),
                    track_id: Some(p.track_id),
                    bbox: p.bbox,
                    score: p.result.confidence,
                    plate: Some(plate),
                });
                details.insert("confident".into(), Value::Bool(p.result.confident));
                details.insert("reads".into(), Value::from(p.result.valid_reads));
                details.insert(
                    "agreeing_reads".into(),
                    Value::from(p.result.agreeing_reads),
                );
                details.insert("at_track_end".into(), Value::Bool(p.at_track_end));
                details.insert("plate_box".into(), Value::from(crop.bbox.to_vec()));
                e.rule = Some(RuleInfo {
                    id: if kind == EventKind::WatchlistHit {
                        "watchlist".into()
                    } else {
                        "plate_reader".into()
                    },
                    zone: None,
                    line: None,
                    details,
                });
                if !with_images {
                    return Ok((e, images));
                }
                if let Some(f) = frame
                    && !p.at_track_end
                {
                    images.push(self.frame_jpeg(&self.evidence_image(camera, f).0)?);
                }
                // The plate crop is the plate itself: never pixelated.
                if crop.image.width() > 1 {
                    images.push(evidence::encode_crop(
                        crop.image.as_raw(),
                        crop.image.width(),
                        crop.image.height(),
                        [
                            0.0,
                            0.0,
                            crop.image.width() as f32,
                            crop.image.height() as f32,
                        ],
                        0.0,
                        0,
                        self.evidence.jpeg_quality,
                    )?);
                }
                Ok((e, images))
            }
            Observation::Rule(r) => {
                let ev = &r.event;
                let mut e = self.base(ev.kind, ev.phase, camera, t);
                let bbox = ev.bbox.or(r.track.as_ref().map(|tr| tr.bbox));
                if let Some(bbox) = bbox {
                    let class = ev
                        .label
                        .clone()
                        .or_else(|| r.label.as_ref().map(|l| l.to_string()))
                        .unwrap_or_default();
                    e.object = Some(ObjectInfo {
                        class,
                        track_id: ev.track_id,
                        bbox,
                        score: r.track.as_ref().map_or(0.0, |tr| tr.score),
                        plate: r.plate.as_ref().map(|v| self.rule_plate(v)),
                    });
                }
                let details = match &ev.details {
                    Value::Object(m) => m.clone(),
                    Value::Null => Map::new(),
                    other => {
                        let mut m = Map::new();
                        m.insert("value".into(), other.clone());
                        m
                    }
                };
                e.rule = Some(RuleInfo {
                    id: ev.rule_id.clone(),
                    zone: ev.zone.clone(),
                    line: ev.line.clone(),
                    details,
                });
                // Evidence for the start of a situation; updates and ends refer back to it.
                if ev.phase == Phase::New
                    && let Some(f) = frame
                {
                    let (img, scale) = self.evidence_image(camera, f);
                    // The frame shows what happened: the zone or line and the offender's box, on
                    // a copy (the object crop below is cut from the clean frame).
                    let mut marked = img.clone().into_owned();
                    let text = match ev.track_id {
                        Some(id) => format!("{} #{id}", ev.kind.as_str()),
                        None => ev.kind.as_str().to_string(),
                    };
                    let geometry = f.geometry.as_deref().map(|g| g.geometry());
                    // on a main-stream frame, the zones and lines scaled onto its pixels
                    let scaled = geometry.filter(|_| scale != (1.0, 1.0)).map(|g| {
                        crate::rules::draw::scaled(&g, f64::from(scale.0), f64::from(scale.1))
                    });
                    let geometry = scaled.as_ref().map(|s| s.view()).or(geometry);
                    crate::rules::draw::event_marks(
                        &mut marked,
                        geometry.as_ref(),
                        ev.zone.as_deref(),
                        ev.line.as_deref(),
                        bbox.map(|b| up(b, scale)),
                        &text,
                    );
                    images.push(self.frame_jpeg(&marked)?);
                    if let Some(b) = bbox {
                        images.push(evidence::encode_crop(
                            img.as_raw(),
                            img.width(),
                            img.height(),
                            up(b, scale),
                            self.evidence.crop_padding,
                            0,
                            self.evidence.jpeg_quality,
                        )?);
                    }
                }
                Ok((e, images))
            }
        }
    }

    /// A `camera_health` event for a stream going up, down or stalling.
    pub fn camera_health(
        &self,
        camera: &str,
        status: &StreamStatus,
        counters: SourceCounters,
    ) -> Event {
        let (phase, state, mut details) = match status {
            StreamStatus::Connected { description } => {
                let mut d = Map::new();
                d.insert("description".into(), Value::from(description.clone()));
                (Phase::End, "online", d)
            }
            StreamStatus::Disconnected { reason, retry_in } => {
                let mut d = Map::new();
                d.insert("reason".into(), Value::from(reason.clone()));
                d.insert("retry_in_s".into(), Value::from(retry_in.as_secs_f64()));
                (Phase::New, "reconnecting", d)
            }
            StreamStatus::Stalled { for_ } => {
                let mut d = Map::new();
                d.insert("stalled_s".into(), Value::from(for_.as_secs_f64()));
                (Phase::New, "stalled", d)
            }
        };
        details.insert("state".into(), Value::from(state));
        details.insert("frames".into(), Value::from(counters.frames));
        details.insert("decode_errors".into(), Value::from(counters.decode_errors));
        details.insert("reconnects".into(), Value::from(counters.reconnects));
        details.insert("stalls".into(), Value::from(counters.stalls));
        let mut e = self.base(EventKind::CameraHealth, phase, camera, SystemTime::now());
        e.rule = Some(RuleInfo {
            id: "camera_health".into(),
            zone: None,
            line: None,
            details,
        });
        e
    }

    /// A `camera_health` event for a change of the camera's image health (frozen, covered,
    /// defocused, scene changed, low fps, back to ok), with the measurements and, when the frame is
    /// given, the picture that decided it as evidence (what the reviewer needs to see).
    pub fn health_transition(
        &self,
        camera: &str,
        tr: &crate::health::Transition,
        frame: Option<&crate::source::Frame>,
    ) -> Result<(Event, Vec<EvidenceImage>), EvidenceError> {
        let phase = match (tr.from, tr.to) {
            ("ok", _) => Phase::New,
            (_, "ok") => Phase::End,
            _ => Phase::Update,
        };
        let mut e = self.base(EventKind::CameraHealth, phase, camera, tr.capture_time);
        e.rule = Some(RuleInfo {
            id: "camera_health".into(),
            zone: None,
            line: None,
            details: tr.details(),
        });
        let images = match frame {
            Some(f) => vec![evidence::encode_frame(
                &self.health_pixels(camera, f),
                f.width,
                f.height,
                self.evidence.frame_max_width,
                self.evidence.jpeg_quality,
            )?],
            None => Vec::new(),
        };
        Ok((e, images))
    }

    /// A health frame as evidence may show it. It comes with no detections to find people or
    /// plates in, so wherever evidence is private (people pixelated, or plates hashed) the whole
    /// frame is pixelated coarsely: a covered, frozen or blurred view still shows, faces and plate
    /// text do not (issue 19: this frame once left raw).
    fn health_pixels<'f>(&self, camera: &str, f: &'f crate::source::Frame) -> Cow<'f, [u8]> {
        if !self.privacy.blurs(camera) && self.privacy.hasher.is_none() {
            return Cow::Borrowed(&f.rgb);
        }
        match RgbImage::from_raw(f.width, f.height, f.rgb.clone()) {
            Some(mut img) => {
                let block = (f.width / HEALTH_BLOCKS_ACROSS).max(8);
                let whole = [0.0, 0.0, f.width as f32, f.height as f32];
                crate::privacy::pixelate(&mut img, whole, 0.0, block);
                Cow::Owned(img.into_raw())
            }
            // A frame of the wrong size: encode_frame refuses it with the sizes named.
            None => Cow::Borrowed(&f.rgb),
        }
    }
}

/// Pixel blocks across a private camera-health frame: coarse enough that no plate character or
/// face survives at any stream size, fine enough to see a covered or frozen view.
const HEALTH_BLOCKS_ACROSS: u32 = 40;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::privacy::PlateHasher;
    use crate::watchlist::{SharedWatchlist, Watchlist};

    fn shared() -> PathBuf {
        std::env::var_os("EDGE_AGENT_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
    }

    /// The first Hải Phòng frame and the YOLOX person boxes recorded for it in MODELS.md's
    /// reference outputs (real detections on real footage).
    fn frame_with_people() -> (RgbImage, Vec<[f32; 4]>) {
        let dir = shared().join("footage/frames/vn_citycam_haiphong_10fps");
        let path = dir.join("frame_0001.jpg");
        let img = image::open(&path)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot open {} ({e}); set EDGE_AGENT_SHARED to the footage mirror",
                    path.display()
                )
            })
            .to_rgb8();
        let golden = shared().join("models/reference/golden_frames.json");
        let text = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("cannot read {} ({e})", golden.display()));
        let v: serde_json::Value = serde_json::from_str(&text).expect("golden JSON");
        let people: Vec<[f32; 4]> = v["vn_citycam_haiphong_10fps"]["frame_0001.jpg"]
            .as_array()
            .expect("frame list")
            .iter()
            .filter(|d| d["label"] == "person")
            .map(|d| {
                let b: Vec<f32> = d["box_xyxy"]
                    .as_array()
                    .expect("box")
                    .iter()
                    .map(|x| x.as_f64().expect("number") as f32)
                    .collect();
                [b[0], b[1], b[2], b[3]]
            })
            .collect();
        assert!(people.len() >= 2, "expected people in the reference frame");
        (img, people)
    }

    fn builder(privacy: PrivacyPolicy) -> EventBuilder {
        EventBuilder {
            site_id: "s".into(),
            device_id: "d".into(),
            config_hash: "abc".into(),
            models: Vec::new(),
            evidence: EvidenceConfig::default(),
            time_sync: TimeSync::Unknown,
            privacy,
            locations: BTreeMap::new(),
        }
    }

    fn ctx<'a>(img: &'a RgbImage, people: &[[f32; 4]]) -> FrameContext<'a> {
        FrameContext {
            image: img,
            capture_time: SystemTime::now(),
            clock: crate::source::CaptureClock::Receipt,
            stream_time: Duration::ZERO,
            seq: 1,
            people: people.to_vec(),
            geometry: None,
            main: None,
        }
    }

    /// Inside a (padded) person box, or not.
    fn inside(people: &[[f32; 4]], x: u32, y: u32) -> bool {
        people.iter().any(|b| {
            let (pw, ph) = ((b[2] - b[0]) * 0.05, (b[3] - b[1]) * 0.05);
            let (x, y) = (x as f32 + 0.5, y as f32 + 0.5);
            x >= (b[0] - pw).floor() - 1.0
                && x <= (b[2] + pw).ceil() + 1.0
                && y >= (b[1] - ph).floor() - 1.0
                && y <= (b[3] + ph).ceil() + 1.0
        })
    }

    fn checkerboard_frame(width: u32, height: u32) -> crate::source::Frame {
        crate::source::Frame {
            seq: 0,
            capture_time: SystemTime::now(),
            clock: crate::source::CaptureClock::Receipt,
            stream_time: Duration::ZERO,
            discontinuity: false,
            width,
            height,
            rgb: (0..width * height)
                .flat_map(|i| {
                    let v = if (i % width + i / width).is_multiple_of(2) {
                        255
                    } else {
                        0
                    };
                    [v, v, v]
                })
                .collect(),
        }
    }

    /// Every event of a camera carries its location; a camera without one carries none.
    #[test]
    fn events_carry_their_cameras_location() {
        let mut b = builder(PrivacyPolicy::default());
        let here = Location {
            lat: 11.13,
            lon: 106.35,
            heading_deg: Some(325.0),
            address: Some("QL22 km 12".into()),
        };
        b.locations.insert("cam".into(), here.clone());
        let status = StreamStatus::Connected {
            description: "test".into(),
        };
        let e = b.camera_health("cam", &status, SourceCounters::default());
        assert_eq!(e.location.as_ref(), Some(&here));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["location"]["heading_deg"], 325.0);
        let other = b.camera_health("other", &status, SourceCounters::default());
        assert_eq!(other.location, None);
        assert!(
            serde_json::to_value(&other)
                .unwrap()
                .get("location")
                .is_none()
        );
    }

    #[test]
    fn camera_health_frames_are_pixelated_whole_unless_evidence_is_in_clear() {
        let f = checkerboard_frame(640, 360);
        let b = builder(PrivacyPolicy::default());
        let px = b.health_pixels("cam", &f);
        assert_eq!(px.len(), f.rgb.len());
        // 640 / 40 = 16-px blocks: every block is one colour, so no detail survives.
        let at = |x: u32, y: u32| px[((y * 640 + x) * 3) as usize];
        for (x, y) in [(0, 0), (16, 16), (320, 176), (624, 336)] {
            for (dx, dy) in [(1, 0), (0, 1), (15, 15), (7, 3)] {
                assert_eq!(at(x, y), at(x + dx, y + dy), "block at {x},{y}");
            }
        }
        // Plates hashed, people in clear on this camera: still pixelated.
        let mut hashed = PrivacyPolicy {
            hasher: Some(PlateHasher::new(b"k")),
            ..PrivacyPolicy::default()
        };
        hashed.unblurred_cameras.insert("cam".into());
        assert_ne!(builder(hashed).health_pixels("cam", &f), f.rgb.as_slice());
        // Evidence in clear on purpose (no blur for this camera, plates not hashed): untouched.
        let mut clear = PrivacyPolicy::default();
        clear.unblurred_cameras.insert("cam".into());
        assert_eq!(builder(clear).health_pixels("cam", &f), f.rgb.as_slice());
    }

    #[test]
    fn people_are_pixelated_in_evidence_and_nothing_else_changes() {
        let (img, people) = frame_with_people();
        let b = builder(PrivacyPolicy::default());
        let f = ctx(&img, &people);
        let (out, scale) = b.evidence_image("cam-1", &f);
        assert_eq!(scale, (1.0, 1.0));
        assert!(matches!(out, Cow::Owned(_)));
        let mut changed_inside = 0u64;
        let mut total_inside = 0u64;
        for (x, y, p) in out.enumerate_pixels() {
            let before = img.get_pixel(x, y);
            if inside(&people, x, y) {
                total_inside += 1;
                changed_inside += u64::from(p != before);
            } else {
                assert_eq!(
                    p, before,
                    "pixel ({x},{y}) outside every person box changed"
                );
            }
        }
        // Every cell is flattened to its mean: almost every pixel of a textured person changes.
        assert!(
            changed_inside * 10 > total_inside * 7,
            "only {changed_inside} of {total_inside} pixels inside person boxes changed"
        );
        // Each person box holds few distinct colours now (cells, not detail).
        for p in &people {
            let mut colours = std::collections::HashSet::new();
            for y in p[1] as u32..p[3] as u32 {
                for x in p[0] as u32..p[2] as u32 {
                    colours.insert(out.get_pixel(x, y).0);
                }
            }
            let cells =
                ((p[2] - p[0]) / 8.0).ceil() as usize * ((p[3] - p[1]) / 8.0).ceil() as usize + 64;
            assert!(colours.len() <= cells, "{} colours in {p:?}", colours.len());
        }
        // The encoded evidence differs from the unblurred frame's.
        let blurred = b.frame_jpeg(&out).expect("jpeg");
        let plain = b.frame_jpeg(&img).expect("jpeg");
        assert_ne!(blurred.sha256, plain.sha256);
    }

    #[test]
    fn a_camera_with_blurring_off_keeps_its_pixels() {
        let (img, people) = frame_with_people();
        let mut policy = PrivacyPolicy::default();
        policy.unblurred_cameras.insert("cam-1".into());
        let b = builder(policy);
        let f = ctx(&img, &people);
        assert!(matches!(b.evidence_image("cam-1", &f).0, Cow::Borrowed(_)));
        assert!(matches!(b.evidence_image("cam-2", &f).0, Cow::Owned(_)));
        // No people on the frame: nothing to copy.
        let empty = ctx(&img, &[]);
        assert!(matches!(
            b.evidence_image("cam-2", &empty).0,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn evidence_comes_from_the_main_stream_with_people_scaled_onto_it() {
        let (img, people) = frame_with_people();
        let main = image::imageops::resize(
            &img,
            img.width() * 2,
            img.height() * 2,
            image::imageops::FilterType::Nearest,
        );
        let b = builder(PrivacyPolicy::default());
        let mut f = ctx(&img, &people);
        f.main = Some(super::super::camera::MainView {
            image: &main,
            sx: 2.0,
            sy: 2.0,
        });
        let (out, scale) = b.evidence_image("cam-1", &f);
        assert_eq!(scale, (2.0, 2.0));
        assert_eq!(out.dimensions(), main.dimensions());
        // what changed is inside the people's boxes scaled onto the main frame, and they did
        let scaled: Vec<[f32; 4]> = people.iter().map(|b| b.map(|v| v * 2.0)).collect();
        let mut changed = 0u64;
        for (x, y, px) in out.enumerate_pixels() {
            if px != main.get_pixel(x, y) {
                assert!(
                    inside(&scaled, x, y),
                    "({x}, {y}) changed outside every person"
                );
                changed += 1;
            }
        }
        assert!(changed > 100, "{changed} pixels pixelated");
    }

    #[test]
    fn a_rule_event_frame_shows_the_offender_and_its_zone_and_the_crop_stays_clean() {
        let img = RgbImage::from_pixel(400, 200, image::Rgb([90, 90, 90]));
        let cam: crate::config::CameraConfig = toml::from_str(
            r#"id = "cam-1"
url = "x"
[[zones]]
id = "lane"
polygon = [[20, 20], [380, 20], [380, 180], [20, 180]]
"#,
        )
        .unwrap();
        let mut f = ctx(&img, &[]);
        f.geometry = Some(Arc::new(cam));
        let bbox = [100.0, 60.0, 160.0, 140.0];
        let obs = Observation::Rule(Box::new(super::super::camera::RuleObservation {
            event: crate::rules::RuleEvent {
                rule_id: "no_entry".into(),
                kind: EventKind::WrongWay,
                phase: Phase::New,
                track_id: Some(12),
                zone: Some("lane".into()),
                line: None,
                t: Duration::ZERO,
                details: Value::Null,
                label: Some("motorcycle".into()),
                bbox: Some(bbox),
            },
            track: None,
            label: None,
            plate: None,
        }));
        let (_, images) = builder(PrivacyPolicy::default())
            .build("cam-1", &obs, Some(&f))
            .unwrap();
        assert_eq!(images.len(), 2);
        let frame = crate::imageio::decode_rgb(&images[0].jpeg).unwrap();
        let crop = crate::imageio::decode_rgb(&images[1].jpeg).unwrap();
        let reddish = |p: &image::Rgb<u8>| p.0[0] > 180 && p.0[1] < 110 && p.0[2] < 110;
        // the box's left edge, halfway down
        assert!(
            reddish(frame.get_pixel(100, 100)),
            "{:?}",
            frame.get_pixel(100, 100)
        );
        // the zone's tint inside it, away from the box
        assert_ne!(frame.get_pixel(300, 150).0, [90, 90, 90]);
        assert!(
            !crop.pixels().any(reddish),
            "the object crop is cut from the clean frame"
        );
    }

    fn plate_obs(text: &str) -> Observation {
        let crop = Arc::new(PlateCrop {
            image: RgbImage::from_pixel(40, 12, image::Rgb([200, 200, 200])),
            bbox: [10.0, 10.0, 50.0, 22.0],
        });
        let plate = crate::plate::grammar::parse(text, &Default::default()).ok();
        Observation::Plate(Box::new(super::super::camera::PlateObservation {
            track_id: 7,
            label: Arc::from("car"),
            bbox: [0.0, 0.0, 100.0, 60.0],
            result: VoteResult {
                text: text.into(),
                char_conf: vec![0.95; text.len()],
                confidence: 0.95,
                plate,
                group_reads: 3,
                agreeing_reads: 3,
                valid_reads: 3,
                invalid_reads: 0,
                share: 1.0,
                best_evidence: crop,
                best_quality: 1.0,
                confident: true,
            },
            at_track_end: false,
        }))
    }

    #[test]
    fn hashed_plates_carry_no_text_and_no_images_and_hits_stay_clear() {
        let (img, people) = frame_with_people();
        let f = ctx(&img, &people);
        let policy = PrivacyPolicy {
            hasher: Some(PlateHasher::new(b"site-key-tay-ninh-0001")),
            watchlist: SharedWatchlist::new(
                Watchlist::parse("51F-123.45 # stolen\n").expect("list"),
            ),
            ..PrivacyPolicy::default()
        };
        let b = builder(policy);

        let (e, images) = b
            .build("cam-1", &plate_obs("30K31896"), Some(&f))
            .expect("event");
        assert_eq!(e.kind, EventKind::PlateRead);
        let p = e.object.and_then(|o| o.plate).expect("plate");
        assert_eq!(
            p.text_hmac.as_deref(),
            Some(
                PlateHasher::new(b"site-key-tay-ninh-0001")
                    .hash("30K31896")
                    .as_str()
            )
        );
        assert!(p.text.is_empty() && p.display.is_empty() && p.province.is_none());
        assert!(images.is_empty(), "a hashed plate went out with images");
        let json = serde_json::to_string(&e.rule).expect("json")
            + &serde_json::to_string(&p).expect("json");
        assert!(!json.contains("30K"), "clear text leaked: {json}");

        let (e, images) = b
            .build("cam-1", &plate_obs("51F12345"), Some(&f))
            .expect("event");
        assert_eq!(e.kind, EventKind::WatchlistHit);
        let rule = e.rule.clone().expect("rule");
        assert_eq!(rule.id, "watchlist");
        assert_eq!(rule.details["label"], "stolen");
        assert_eq!(rule.details["match"], "exact");
        assert_eq!(rule.details["match_distance"], 0);
        assert_eq!(rule.details["listed_plate"], "51F12345");
        assert!(rule.details.get("candidates").is_none());
        let p = e.object.and_then(|o| o.plate).expect("plate");
        assert_eq!((p.text.as_str(), p.text_hmac), ("51F12345", None));
        assert_eq!(
            images.len(),
            2,
            "a hit carries the frame and the plate crop"
        );
    }

    #[test]
    fn a_read_one_confusable_symbol_off_is_a_fuzzy_hit_unless_switched_off() {
        let policy = PrivacyPolicy {
            hasher: Some(PlateHasher::new(b"site-key-tay-ninh-0001")),
            watchlist: SharedWatchlist::new(
                Watchlist::parse("51F-123.45 # stolen\n").expect("list"),
            ),
            ..PrivacyPolicy::default()
        };
        let mut b = builder(policy);
        // The listed `5` at the end read as `S`.
        let (e, images) = b
            .build("cam-1", &plate_obs("51F1234S"), None)
            .expect("event");
        assert_eq!(e.kind, EventKind::WatchlistHit);
        let rule = e.rule.clone().expect("rule");
        assert_eq!(rule.id, "watchlist");
        assert_eq!(rule.details["match"], "fuzzy");
        assert_eq!(rule.details["match_distance"], 1);
        assert_eq!(rule.details["listed_plate"], "51F12345");
        assert_eq!(rule.details["candidates"], 1);
        assert_eq!(rule.details["read_confidence"], 0.95);
        assert_eq!(rule.details["label"], "stolen");
        assert_eq!(
            rule.details["watchlist_version"].as_str().map(str::len),
            Some(12)
        );
        // The read itself goes out in clear, with the plate crop, like an exact hit.
        let p = e.object.and_then(|o| o.plate).expect("plate");
        assert_eq!((p.text.as_str(), p.text_hmac), ("51F1234S", None));
        assert_eq!(images.len(), 1, "a hit carries the plate crop");

        // `[watchlist] fuzzy = false`: the same read is an ordinary, hashed sighting.
        b.privacy.fuzzy_watchlist = false;
        let (e, images) = b
            .build("cam-1", &plate_obs("51F1234S"), None)
            .expect("event");
        assert_eq!(e.kind, EventKind::PlateRead);
        let p = e.object.and_then(|o| o.plate).expect("plate");
        assert!(p.text.is_empty() && p.text_hmac.is_some());
        assert!(images.is_empty());
    }
}
