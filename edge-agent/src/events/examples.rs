//! One realistic example of every event kind, for the docs page and for tests that need events.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn details(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn object(class: &str, track: u64, bbox: [f32; 4], score: f32) -> Option<ObjectInfo> {
    Some(ObjectInfo {
        class: class.into(),
        track_id: Some(track),
        bbox,
        score,
        plate: None,
    })
}

fn rule(
    id: &str,
    zone: Option<&str>,
    line: Option<&str>,
    d: serde_json::Value,
) -> Option<RuleInfo> {
    Some(RuleInfo {
        id: id.into(),
        zone: zone.map(Into::into),
        line: line.map(Into::into),
        details: details(d),
    })
}

/// The example of `kind`, with fixed ids so the docs page is stable.
pub fn example(kind: EventKind) -> Event {
    let topics = Topics::new("edge", "tn-ql22-km12", "pole-03");
    let mut e = Event::new(
        kind,
        Phase::New,
        "tn-ql22-km12",
        "pole-03",
        "cam-north",
        at("2026-03-01T00:15:30.250Z"),
    );
    let index = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u64;
    e.event_id = Uuid::from_u128(0x0195_4f2a_7c10_7000_8000_0000_0000_0000 | u128::from(index));
    e.seq = 41_200 + index;
    e.time_sync = TimeSync::Synced;
    e.time_source = Some(crate::events::TimeSource::Receipt);
    e.config_hash = "5f1c0a9e2b7d".into();
    e.location = Some(Location {
        lat: 11.1312,
        lon: 106.3543,
        heading_deg: Some(325.0),
        address: Some("QL22 km 12, Trảng Bàng, Tây Ninh".into()),
    });
    e.models = vec![ModelId {
        name: "yolox_nano_coco_416".into(),
        sha256: "3d1e8a0c44f2".into(),
    }];
    let frame_sha = format!("{:064x}", 0xf7a3u128 + u128::from(index));
    e.evidence = vec![EvidenceRef {
        role: EvidenceRole::Frame,
        topic: topics.evidence(&frame_sha),
        sha256: frame_sha,
        width: 1280,
        height: 720,
        bytes: 98_304,
        clip: None,
        on_request: false,
    }];
    let plate = PlateInfo {
        text: "51F12345".into(),
        display: "51F-123.45".into(),
        confidence: 0.93,
        char_confidence: vec![0.99, 0.98, 0.97, 0.95, 0.96, 0.94, 0.97, 0.99],
        rows: 1,
        province: Some("TP. Hồ Chí Minh".into()),
        valid: true,
        text_hmac: None,
    };
    let car = [412.0, 288.0, 690.0, 540.0];
    match kind {
        EventKind::PlateRead | EventKind::WatchlistHit => {
            e.object = object("car", 1187, car, 0.88);
            if let Some(o) = e.object.as_mut() {
                o.plate = Some(plate);
            }
            e.models.push(ModelId {
                name: "vn_plate_ocr_9x37_64x128".into(),
                sha256: "a90b6e1f03c7".into(),
            });
            // The default reads every plate with a second slot OCR (`[models] plate_ocr_second`).
            e.models.push(ModelId {
                name: "vn_plate_ocr_ea_ctc_10x37_64x128".into(),
                sha256: "b4d586f8bfb2".into(),
            });
            let crop_sha = format!("{:064x}", 0xc0ffeeu128 + u128::from(index));
            e.evidence.push(EvidenceRef {
                role: EvidenceRole::Object,
                topic: topics.evidence(&crop_sha),
                sha256: crop_sha,
                width: 188,
                height: 52,
                bytes: 6_144,
                clip: None,
                on_request: false,
            });
            if kind == EventKind::WatchlistHit {
                e.rule = rule(
                    "watchlist",
                    None,
                    None,
                    json!({"label": "reported stolen 2026-02-27", "watchlist_version": "8c1f3e07a2d4",
                           "match": "exact", "match_distance": 0, "listed_plate": "51F12345",
                           "read_confidence": 0.93, "confident": true, "reads": 6, "agreeing_reads": 5, "at_track_end": false,
                           "plate_box": [520.0, 470.0, 604.0, 498.0]}),
                );
            }
        }
        EventKind::WrongWay => {
            e.object = object("motorcycle", 2210, [820.0, 300.0, 900.0, 470.0], 0.81);
            e.rule = rule(
                "ql22-northbound",
                None,
                Some("lane-2-stop"),
                json!({"expected_direction_deg": 0.0, "observed_direction_deg": 176.0}),
            );
        }
        EventKind::StoppedVehicle => {
            e.phase = Phase::Update;
            e.object = object("truck", 905, [100.0, 200.0, 480.0, 560.0], 0.9);
            e.rule = rule(
                "emergency-lane-stop",
                Some("emergency-lane"),
                None,
                json!({"stopped_s": 94.0, "limit_s": 60.0}),
            );
        }
        EventKind::Loitering => {
            e.object = object("person", 77, [1000.0, 380.0, 1060.0, 560.0], 0.76);
            e.rule = rule(
                "toll-booth-loitering",
                Some("booth-island"),
                None,
                json!({"dwell_s": 312.0, "limit_s": 300.0}),
            );
        }
        EventKind::Intrusion => {
            e.object = object("person", 78, [40.0, 400.0, 90.0, 600.0], 0.83);
            e.rule = rule(
                "median-no-pedestrians",
                Some("median"),
                None,
                json!({"inertia_frames": 3}),
            );
        }
        EventKind::LineCrossing => {
            e.object = object("car", 1190, car, 0.87);
            e.rule = rule(
                "count-southbound",
                None,
                Some("km12-south"),
                json!({"direction": "a_to_b"}),
            );
        }
        EventKind::LineCount => {
            e.evidence.clear();
            e.rule = rule(
                "count-southbound",
                None,
                Some("km12-south"),
                json!({"interval_s": 60, "counts": {"car": 31, "motorcycle": 142, "truck": 6, "bus": 2}}),
            );
        }
        EventKind::ZoneEnter | EventKind::ZoneExit => {
            if kind == EventKind::ZoneExit {
                e.phase = Phase::End;
            }
            e.object = object("bus", 640, [200.0, 150.0, 700.0, 620.0], 0.91);
            e.rule = rule("bus-bay", Some("bus-bay"), None, json!({}));
        }
        EventKind::Overcrowding => {
            e.rule = rule(
                "school-gate-crowd",
                Some("school-gate"),
                None,
                json!({"class": "person", "count": 46, "limit": 40}),
            );
        }
        EventKind::Congestion => {
            e.evidence.truncate(1);
            e.rule = rule(
                "ql22-congestion",
                Some("carriageway"),
                None,
                json!({"occupancy": 0.71, "mean_speed_kmh_estimate": 8.5, "window_s": 120}),
            );
        }
        EventKind::Speeding => {
            e.object = object("car", 1201, car, 0.9);
            e.rule = rule(
                "ql22-speed",
                Some("speed-trap"),
                None,
                json!({"speed_kmh_estimate": 96.4, "limit_kmh": 80.0, "method": "homography, 4 ground points", "estimate": true}),
            );
        }
        EventKind::SuddenStop => {
            e.object = object("car", 1202, car, 0.86);
            e.rule = rule(
                "sudden-stop",
                Some("carriageway"),
                None,
                json!({"decel_ms2_estimate": 7.9, "from_kmh_estimate": 54.0}),
            );
        }
        EventKind::RedLight => {
            e.phase = Phase::End;
            e.object = object("motorcycle", 3121, [610.0, 402.0, 668.0, 530.0], 0.84);
            e.rule = rule(
                "stop-line-red",
                Some("signal-north"),
                Some("stop-line-north"),
                json!({"direction": "forward", "red_for_s": 4.2, "red_since_s": 3512.8, "class": "motorcycle"}),
            );
        }
        EventKind::CameraHealth => {
            e.evidence.clear();
            e.models.clear();
            e.rule = rule(
                "camera-health",
                None,
                None,
                json!({"state": "lost", "reason": "RTSP: connection refused", "since": "2026-03-01T00:15:00Z"}),
            );
        }
    }
    e
}

/// The `update` that carries a `wrong_way` event's clip, kept on the device until requested.
pub fn clip_update() -> Event {
    let original = example(EventKind::WrongWay);
    let mut e = original.clone();
    e.event_id = uuid::Uuid::from_u128(0x0195_4e3a_9c10_7000_8000_0000_0000_0c11);
    e.phase = Phase::Update;
    e.refers_to = Some(original.event_id);
    let topics = Topics::new("edge", &e.site_id, &e.device_id);
    let sha = format!("{:064x}", 0xc11bu128);
    e.evidence = vec![EvidenceRef {
        role: EvidenceRole::Clip,
        topic: topics.evidence(&sha),
        sha256: sha,
        width: 1280,
        height: 720,
        bytes: 4_718_592,
        on_request: false,
        clip: Some(crate::events::ClipInfo {
            duration_ms: 11_400,
            start: original.capture_time - chrono::Duration::milliseconds(6_400),
            complete: true,
            on_request: true,
            parts: None,
        }),
    }];
    e
}

/// One example per kind, in contract order.
pub fn all() -> Vec<Event> {
    EventKind::ALL.into_iter().map(example).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_an_example_that_round_trips() {
        let all = all();
        assert_eq!(all.len(), EventKind::ALL.len());
        for (e, kind) in all.iter().zip(EventKind::ALL) {
            assert_eq!(e.kind, kind);
            let json = serde_json::to_string(e).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, e);
        }
        let clip = clip_update();
        let back: Event = serde_json::from_str(&serde_json::to_string(&clip).unwrap()).unwrap();
        assert_eq!(back, clip);
        assert_eq!(clip.refers_to, Some(example(EventKind::WrongWay).event_id));
    }
}
