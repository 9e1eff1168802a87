//! Turns the pipeline's observations into contract events ([`crate::events::Event`]) with their
//! evidence JPEGs: the frame the event arose on and the object (the plate crop for plates).

use std::borrow::Cow;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::EvidenceConfig;
use crate::events::evidence::{self, EvidenceError, EvidenceImage};
use crate::events::{Event, EventKind, ModelId, ObjectInfo, Phase, PlateInfo, RuleInfo, TimeSync};
use crate::inference::RgbImage;
use crate::plate::VoteResult;
use crate::privacy::{PlateDisclosure, PrivacyPolicy, pixelate_people};
use crate::rules::{self, RuleKind};
use crate::source::{SourceCounters, StreamStatus};

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
}

fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

fn kind_of(k: RuleKind) -> EventKind {
    match k {
        RuleKind::WrongWay => EventKind::WrongWay,
        RuleKind::StoppedVehicle => EventKind::StoppedVehicle,
        RuleKind::Loitering => EventKind::Loitering,
        RuleKind::Intrusion => EventKind::Intrusion,
        RuleKind::LineCrossing => EventKind::LineCrossing,
        RuleKind::LineCount => EventKind::LineCount,
        RuleKind::ZoneEnter => EventKind::ZoneEnter,
        RuleKind::ZoneExit => EventKind::ZoneExit,
        RuleKind::Overcrowding => EventKind::Overcrowding,
        RuleKind::Congestion => EventKind::Congestion,
        RuleKind::Speeding => EventKind::Speeding,
        RuleKind::SuddenStop => EventKind::SuddenStop,
    }
}

fn phase_of(p: rules::Phase) -> Phase {
    match p {
        rules::Phase::New => Phase::New,
        rules::Phase::Update => Phase::Update,
        rules::Phase::End => Phase::End,
    }
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
        e
    }

    /// The frame as evidence may show it: people pixelated unless this camera has it off.
    fn evidence_image<'f>(&self, camera: &str, frame: &'f FrameContext<'_>) -> Cow<'f, RgbImage> {
        if self.privacy.blurs(camera) && !frame.people.is_empty() {
            let mut img = frame.image.clone();
            pixelate_people(&mut img, &frame.people);
            Cow::Owned(img)
        } else {
            Cow::Borrowed(frame.image)
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
        let now = SystemTime::now();
        let t = frame.map_or(now, |f| f.capture_time);
        let mut images = Vec::new();
        match obs {
            Observation::Plate(p) => {
                let crop = &p.result.best_evidence;
                let mut details = Map::new();
                // A listed plate is an alert in clear; an unlisted one is a sighting, sent as a
                // pseudonym and without images when hashing is on (an image shows the plate).
                let (kind, plate, with_images) = match self.privacy.disclose(&p.result.text) {
                    PlateDisclosure::Hit { entry, list_hash } => {
                        if let Some(label) = entry.label {
                            details.insert("label".into(), Value::from(label));
                        }
                        details.insert(
                            "watchlist_version".into(),
                            Value::from(list_hash.chars().take(12).collect::<String>()),
                        );
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
                    images.push(self.frame_jpeg(&self.evidence_image(camera, f))?);
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
                let mut e = self.base(kind_of(ev.kind), phase_of(ev.phase), camera, t);
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
                if ev.phase == rules::Phase::New
                    && let Some(f) = frame
                {
                    let img = self.evidence_image(camera, f);
                    images.push(self.frame_jpeg(&img)?);
                    if let Some(b) = bbox {
                        images.push(evidence::encode_crop(
                            img.as_raw(),
                            img.width(),
                            img.height(),
                            b,
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
                &f.rgb,
                f.width,
                f.height,
                self.evidence.frame_max_width,
                self.evidence.jpeg_quality,
            )?],
            None => Vec::new(),
        };
        Ok((e, images))
    }
}
