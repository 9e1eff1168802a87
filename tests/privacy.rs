//! Privacy end to end (issue #10): `edge-agent replay` with the real models on a real street photo
//! (`footage/images/vn_street_01.jpg`, played as a folder of frames so the tracker and the plate vote
//! work as on a camera). With `hash_plates` on, the events carry the HMAC of the plate instead of
//! the plate; a watchlist plate is a `watchlist_hit` in clear; people are pixelated in the evidence
//! frame unless the camera turns it off with a reason, which is audited; the audit log verifies.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use edge_agent::privacy::PlateHasher;
use serde_json::Value;

/// The plate the OCR reads on this photo (ground truth `30G-705.16`, a 2-row plate).
const PLATE: &str = "30G70516";
const KEY: &[u8] = b"tay-ninh-site-key-for-tests-0001";

fn street_photo() -> PathBuf {
    let p = shared_dir().join("footage/images/vn_street_01.jpg");
    assert!(p.is_file(), "missing footage {}", p.display());
    p
}

/// A folder of `n` links to the photo: a still camera.
fn still_camera(dir: &Path, n: usize) -> PathBuf {
    let folder = dir.join("frames");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..n {
        std::os::unix::fs::symlink(street_photo(), folder.join(format!("f{i:03}.jpg"))).unwrap();
    }
    folder
}

struct Run {
    events: Vec<Value>,
    evidence: PathBuf,
    audit: PathBuf,
}

fn replay(dir: &Path, name: &str, privacy: &str, camera_privacy: &str) -> Run {
    ort_lib();
    let key = dir.join("site.key");
    std::fs::write(&key, KEY).unwrap();
    let watchlist = dir.join("watchlist.txt");
    std::fs::write(&watchlist, "# test list\n30G-705.16  # wanted for review\n").unwrap();
    let base = dir.join(name);
    std::fs::create_dir_all(&base).unwrap();
    let frames = still_camera(&base, 30);
    let config = base.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nsite_id = \"test-site\"\ndevice_id = \"edge-1\"\n\n[storage]\nspool_dir = \"{spool}\"\n\n\
             [http]\nenabled = false\n\n{privacy}\n\n[[cameras]]\nid = \"street\"\nurl = \"{frames}\"\ntarget_fps = 10\n{camera_privacy}\n",
            spool = base.join("spool").display(),
            frames = frames.display(),
        )
        .replace("KEY_FILE", &key.display().to_string())
        .replace("WATCHLIST", &watchlist.display().to_string()),
    )
    .unwrap();
    let events = base.join("events.jsonl");
    let evidence = base.join("evidence");
    let audit = base.join("audit.jsonl");
    let out = run(bin()
        .args(["replay", "--json", "--config"])
        .arg(&config)
        .arg(&frames)
        .arg("--events")
        .arg(&events)
        .arg("--evidence")
        .arg(&evidence)
        .arg("--audit")
        .arg(&audit));
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    let events = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("event JSON line"))
        .collect();
    Run {
        events,
        evidence,
        audit,
    }
}

fn plate_events(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["object"]["plate"].is_object())
        .collect()
}

/// Person boxes from the real detector on the photo (`edge-agent detect`).
fn person_boxes() -> Vec<[f32; 4]> {
    let out = run(bin()
        .args(["detect", "--log-level", "warn", "-m", "yolox_nano_coco_416"])
        .arg(street_photo()));
    assert!(out.status.success(), "detect failed: {}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("detect JSON");
    let boxes: Vec<[f32; 4]> = v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["label"] == "person")
        .map(|d| {
            let b: Vec<f32> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            [b[0], b[1], b[2], b[3]]
        })
        .collect();
    assert!(
        !boxes.is_empty(),
        "the detector found no person on the photo"
    );
    boxes
}

/// Mean absolute difference between horizontally adjacent pixels in the box: texture. Pixelation
/// leaves texture only on cell borders.
fn texture(img: &image::RgbImage, b: [f32; 4]) -> f64 {
    let (mut sum, mut n) = (0f64, 0u64);
    for y in b[1].ceil() as u32..b[3].floor() as u32 {
        for x in b[0].ceil() as u32..(b[2].floor() as u32).saturating_sub(1) {
            let (p, q) = (img.get_pixel(x, y).0, img.get_pixel(x + 1, y).0);
            for c in 0..3 {
                sum += (f64::from(p[c]) - f64::from(q[c])).abs();
            }
            n += 3;
        }
    }
    sum / n.max(1) as f64
}

/// Mean absolute difference of two images of one size over the pixels `keep` accepts.
fn mean_diff(a: &image::RgbImage, b: &image::RgbImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    let (mut sum, mut n) = (0f64, 0u64);
    for (x, y, p) in a.enumerate_pixels() {
        if keep(x, y) {
            let q = b.get_pixel(x, y);
            for c in 0..3 {
                sum += (f64::from(p[c]) - f64::from(q[c])).abs();
            }
            n += 3;
        }
    }
    sum / n.max(1) as f64
}

fn near_any(boxes: &[[f32; 4]], x: u32, y: u32, margin: f32) -> bool {
    let (x, y) = (x as f32, y as f32);
    boxes.iter().any(|b| {
        x >= b[0] - margin && x <= b[2] + margin && y >= b[1] - margin && y <= b[3] + margin
    })
}

/// The frame evidence JPEG of the first event that has one, decoded.
fn frame_evidence(run: &Run) -> image::RgbImage {
    let sha = run
        .events
        .iter()
        .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
        .find(|r| r["role"] == "frame")
        .and_then(|r| r["sha256"].as_str().map(String::from))
        .expect("no event with frame evidence");
    image::open(run.evidence.join(format!("{sha}.jpg")))
        .expect("exported evidence JPEG")
        .to_rgb8()
}

fn audit_actions(path: &Path) -> Vec<Value> {
    let out = run(bin().args(["audit", "verify"]).arg(path));
    assert!(
        out.status.success(),
        "audit log does not verify: {}",
        stdout(&out)
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn hashed_plates_watchlist_hits_and_pixelated_people_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let original = image::open(street_photo()).unwrap().to_rgb8();
    let people = person_boxes();
    let expected_hmac = PlateHasher::new(KEY).hash(PLATE);

    // 1. Hashing on, empty watchlist, people pixelated (the default).
    let hashed = replay(
        dir.path(),
        "hashed",
        "[privacy]\nhash_plates = true\nplate_key_file = \"KEY_FILE\"",
        "",
    );
    let plates = plate_events(&hashed.events);
    assert!(!plates.is_empty(), "no plate event: {:?}", hashed.events);
    let mut seen_hmac = false;
    for e in &plates {
        let p = &e["object"]["plate"];
        assert!(
            p.get("text").is_none() && p.get("display").is_none() && p.get("province").is_none(),
            "clear plate data in a hashed event: {e}"
        );
        let h = p["text_hmac"].as_str().expect("text_hmac");
        assert!(h.starts_with("hmac-sha256:") && h.len() == 12 + 64, "{h}");
        seen_hmac |= h == expected_hmac;
        if e["kind"] == "plate_read" {
            assert!(
                e["evidence"].as_array().unwrap().is_empty(),
                "a hashed plate_read carries images: {e}"
            );
        }
    }
    assert!(
        seen_hmac,
        "no event carries HMAC({PLATE}) under the site key"
    );
    let raw = serde_json::to_string(&hashed.events).unwrap();
    assert!(!raw.contains(PLATE), "the plate leaked in clear: {raw}");
    assert!(!raw.contains("30G-705"), "the plate leaked in clear: {raw}");

    // 2. Same key, the plate on the watchlist, people not pixelated on this camera (with a reason).
    let listed = replay(
        dir.path(),
        "listed",
        "[privacy]\nhash_plates = true\nplate_key_file = \"KEY_FILE\"\n\n[watchlist]\nfile = \"WATCHLIST\"",
        "\n[cameras.privacy]\nblur_people = false\nreason = \"court order 12/2026 for this junction\"",
    );
    let hits: Vec<&Value> = listed
        .events
        .iter()
        .filter(|e| e["kind"] == "watchlist_hit")
        .collect();
    assert!(!hits.is_empty(), "no watchlist_hit: {:?}", listed.events);
    for e in &hits {
        assert_eq!(e["object"]["plate"]["text"], PLATE, "{e}");
        assert!(e["object"]["plate"].get("text_hmac").is_none(), "{e}");
        assert_eq!(e["rule"]["details"]["label"], "wanted for review", "{e}");
    }
    assert!(
        !listed.events.iter().any(|e| e["kind"] == "plate_read"
            && e["object"]["plate"]["text_hmac"] == expected_hmac.as_str()),
        "the listed plate was also sent hashed"
    );

    // 3. Pixels: the hit's frame evidence shows the people (blurring off); run 1 had no frame
    // evidence for the hashed plate, so compare with a third run that has the hit and blurring on.
    let blurred = replay(
        dir.path(),
        "blurred",
        "[privacy]\nhash_plates = true\nplate_key_file = \"KEY_FILE\"\n\n[watchlist]\nfile = \"WATCHLIST\"",
        "",
    );
    let clear_frame = frame_evidence(&listed);
    let blur_frame = frame_evidence(&blurred);
    assert_eq!(blur_frame.dimensions(), original.dimensions());
    // Outside the person boxes both evidence frames are the photo, give or take JPEG loss.
    let outside = |x, y| !near_any(&people, x, y, 12.0);
    let d_blur = mean_diff(&blur_frame, &original, outside);
    let d_clear = mean_diff(&clear_frame, &original, outside);
    assert!(
        d_blur < 4.0 && d_clear < 4.0,
        "outside differs: {d_blur:.2} / {d_clear:.2}"
    );
    assert!(
        (d_blur - d_clear).abs() < 0.5,
        "pixelation changed the picture outside the people: {d_blur:.3} vs {d_clear:.3}"
    );
    // Inside, the pixelated frame lost its detail; the unblurred one kept it.
    for b in &people {
        let (t_orig, t_blur, t_clear) = (
            texture(&original, *b),
            texture(&blur_frame, *b),
            texture(&clear_frame, *b),
        );
        eprintln!(
            "person {b:?}: texture photo {t_orig:.1}, pixelated {t_blur:.1}, unblurred {t_clear:.1}; outside diff {d_blur:.2} / {d_clear:.2}"
        );
        assert!(
            t_blur < 0.6 * t_orig,
            "person {b:?} not pixelated: texture {t_blur:.1} vs {t_orig:.1} in the photo"
        );
        assert!(
            t_clear > 0.8 * t_orig,
            "person {b:?} lost detail with blurring off: {t_clear:.1} vs {t_orig:.1}"
        );
        let inside = |x, y| near_any(&[*b], x, y, -2.0);
        assert!(
            mean_diff(&blur_frame, &original, inside) > mean_diff(&clear_frame, &original, inside),
            "person {b:?}: the pixelated frame is not further from the photo than the clear one"
        );
    }

    // 4. The audit logs verify and record what happened.
    let actions = audit_actions(&listed.audit);
    let has = |a: &str| actions.iter().any(|r| r["action"] == a);
    assert!(has("config.load") && has("watchlist.load") && has("evidence.export"));
    let off = actions
        .iter()
        .find(|r| r["action"] == "privacy.blur_disabled")
        .expect("blur_disabled not audited");
    assert_eq!(off["details"]["camera"], "street");
    assert_eq!(
        off["details"]["reason"],
        "court order 12/2026 for this junction"
    );
    let exports: usize = actions
        .iter()
        .filter(|r| r["action"] == "evidence.export")
        .map(|r| r["details"]["sha256"].as_array().unwrap().len())
        .sum();
    let files = std::fs::read_dir(&listed.evidence).unwrap().count();
    assert_eq!(exports, files, "every exported file is in the audit log");
    let blurred_actions = audit_actions(&blurred.audit);
    assert!(
        !blurred_actions
            .iter()
            .any(|r| r["action"] == "privacy.blur_disabled")
    );
    let _ = audit_actions(&hashed.audit);
}

#[test]
fn check_refuses_blurring_off_without_a_reason_and_hashing_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n\n[privacy]\nhash_plates = true\n\n\
         [[cameras]]\nid = \"cam-1\"\nurl = \"rtsp://10.0.0.2/stream\"\n\n[cameras.privacy]\nblur_people = false\n",
    )
    .unwrap();
    let out = run(bin().arg("check").arg(&config));
    assert!(!out.status.success());
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("agent.toml:13:") && text.contains("without a reason"),
        "{text}"
    );
    assert!(
        text.contains("agent.toml:6:") && text.contains("needs plate_key_file"),
        "{text}"
    );
}

#[test]
fn check_names_the_bad_line_of_a_watchlist_and_a_short_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("watchlist.txt"),
        "51F-123.45 # stolen\n51F*999.99\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("site.key"), "short\n").unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n\n[watchlist]\nfile = \"watchlist.txt\"\n\n\
         [privacy]\nhash_plates = true\nplate_key_file = \"site.key\"\n",
    )
    .unwrap();
    let out = run(bin().arg("check").arg(&config));
    assert!(!out.status.success());
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("agent.toml:6:") && text.contains("watchlist.txt, line 2"),
        "{text}"
    );
    assert!(
        text.contains("agent.toml:10:") && text.contains("shorter than 16 bytes"),
        "{text}"
    );
}

/// People the real detector finds (score ≥ 0.1, far below its 0.3 threshold) in each image.
fn people_in(images: &[PathBuf]) -> usize {
    images
        .iter()
        .map(|img| {
            let out = run(bin()
                .args(["detect", "--log-level", "warn", "-m", "yolox_nano_coco_416"])
                .args(["--threshold", "0.1"])
                .arg(img));
            assert!(out.status.success(), "detect failed: {}", stderr(&out));
            let v: Value = serde_json::from_str(stdout(&out).trim()).expect("detect JSON");
            v["detections"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["label"] == "person")
                .count()
        })
        .sum()
}

/// The frame evidence images of one replay of `clip` with configs/junction-rules.toml, plus
/// `camera_privacy` for its camera.
fn junction_frames(dir: &Path, clip: &Path, name: &str, camera_privacy: &str) -> Vec<PathBuf> {
    let base = dir.join(name);
    std::fs::create_dir_all(&base).unwrap();
    let text = std::fs::read_to_string(repo_root().join("configs/junction-rules.toml"))
        .unwrap()
        .replace(
            "spool_dir = \"/var/lib/edge-agent/spool\"",
            &format!("spool_dir = \"{}\"", base.join("spool").display()),
        );
    let config = base.join("agent.toml");
    std::fs::write(&config, format!("{text}\n{camera_privacy}\n")).unwrap();
    let (events, evidence) = (base.join("events.jsonl"), base.join("evidence"));
    let out = run(bin()
        .env("EDGE_AGENT_SHARED", shared_dir())
        .args(["replay", "--no-plates", "--config"])
        .arg(&config)
        .arg(clip)
        .arg("--events")
        .arg(&events)
        .arg("--evidence")
        .arg(&evidence)
        .arg("--audit")
        .arg(base.join("audit.jsonl")));
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "wrong_way")
        .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["role"] == "frame")
        .filter_map(|r| {
            r["sha256"]
                .as_str()
                .map(|s| evidence.join(format!("{s}.jpg")))
        })
        .collect()
}

/// Issue 19: riders the detector only half sees were left sharp in the demo's `wrong_way` frames.
/// On the Hải Phòng junction clip played backwards (wrong_way events with full frames), the real
/// detector far below its threshold counts the people in the frames a camera with pixelation off
/// sends, and in the same frames as sent by default: none may be left.
#[test]
fn no_person_is_left_sharp_in_the_wrong_way_frames_of_a_real_junction() {
    ort_lib();
    let dir = tempfile::tempdir().unwrap();
    let source = shared_dir().join("footage/video/vn_citycam_haiphong.mp4");
    assert!(source.is_file(), "missing footage {}", source.display());
    let clip = dir.path().join("reversed.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&source)
        .args([
            "-vf",
            "reverse",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-pix_fmt", "yuv420p", "-g", "20"])
        .arg(&clip)
        .status()
        .expect("ffmpeg (scripts/lib.sh installs it)");
    assert!(status.success(), "ffmpeg could not reverse the clip");

    let sent = junction_frames(dir.path(), &clip, "default", "");
    let clear = junction_frames(
        dir.path(),
        &clip,
        "clear",
        "[cameras.privacy]\nblur_people = false\nreason = \"test: the people in clear, to count them\"",
    );
    assert!(!sent.is_empty(), "no wrong_way frame evidence");
    assert_eq!(sent.len(), clear.len(), "the same events either way");
    let (in_clear, left_sharp) = (people_in(&clear), people_in(&sent));
    eprintln!(
        "{} wrong_way frames: {in_clear} people found in clear, {left_sharp} left sharp",
        sent.len()
    );
    assert!(in_clear >= 5, "the frames should show riders: {in_clear}");
    assert_eq!(left_sharp, 0, "people left sharp in evidence frames");
}
