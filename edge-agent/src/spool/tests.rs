//! Spool unit tests on a real SQLite file in a temporary directory.

use std::collections::HashSet;

use super::*;
use crate::events::{EventKind, EvidenceRole, Phase};

fn event(device: &str) -> Event {
    Event::new(
        EventKind::PlateRead,
        Phase::New,
        "site",
        device,
        "cam",
        chrono::Utc::now(),
    )
}

/// Evidence content does not matter to the spool; sizes and hashes do.
fn image(fill: u8, size: usize) -> EvidenceImage {
    EvidenceImage::from_jpeg(EvidenceRole::Frame, vec![fill; size], 10, 10)
}

fn topics() -> Topics {
    Topics::new("edge", "site", "dev")
}

#[test]
fn seq_is_per_device_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    let mut a = event("a");
    assert_eq!(s.submit(&mut a, &[], &topics()).unwrap(), 1);
    assert_eq!(a.seq, 1);
    assert_eq!(s.submit(&mut event("a"), &[], &topics()).unwrap(), 2);
    assert_eq!(s.submit(&mut event("b"), &[], &topics()).unwrap(), 1);
    drop(s);
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s.stats().events, 3);
    assert_eq!(s.submit(&mut event("a"), &[], &topics()).unwrap(), 3);
}

#[test]
fn an_event_is_queued_before_its_evidence_which_it_references() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    let imgs = [image(1, 100), image(2, 50)];
    let mut e = event("dev");
    s.submit(&mut e, &imgs, &topics()).unwrap();
    let batch = s.pending(10).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].topic, "edge/site/dev/events/plate_read");
    let sent: Event = serde_json::from_slice(&batch[0].payload).unwrap();
    assert_eq!(sent, e);
    assert_eq!(sent.evidence.len(), 2);
    assert_eq!(sent.evidence[1].sha256, imgs[1].sha256);
    assert_eq!(sent.evidence[1].bytes, 50);
    assert_eq!(batch[1].topic, topics().evidence(&imgs[0].sha256));
    assert_eq!(batch[1].payload, imgs[0].jpeg);
    assert!(batch[0].id < batch[1].id && batch[1].id < batch[2].id);
    // rows on their way are left out; without evidence only the event is offered
    let skip: HashSet<i64> = [batch[0].id, batch[1].id].into();
    assert_eq!(s.next_batch(&skip, 10, true).unwrap().len(), 1);
    assert_eq!(s.next_batch(&HashSet::new(), 10, false).unwrap().len(), 1);
    assert_eq!(s.evidence_waiting().unwrap(), (2, 150));
}

/// Watchlist hits go out before violations, violations before plate reads, counts and health,
/// whatever the order they were made in; within a class the events first (the alerts), then their
/// images, oldest first. A full spool drops the lowest class's images first.
#[test]
fn rows_go_out_by_class_and_a_full_spool_drops_the_lowest_class_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    let kinds = [
        EventKind::CameraHealth,
        EventKind::LineCount,
        EventKind::PlateRead,
        EventKind::WrongWay,
        EventKind::PlateRead,
        EventKind::WatchlistHit,
        EventKind::RedLight,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let mut e = event("dev");
        e.kind = *kind;
        s.submit(&mut e, &[image(i as u8, 100)], &topics()).unwrap();
    }
    let order: Vec<String> = s
        .pending(100)
        .unwrap()
        .iter()
        .map(|m| {
            if m.topic.contains("/events/") {
                let e: Event = serde_json::from_slice(&m.payload).unwrap();
                format!("{}#{}", e.kind.as_str(), e.seq)
            } else {
                "image".into()
            }
        })
        .collect();
    assert_eq!(
        order,
        [
            "watchlist_hit#6",
            "image",
            "wrong_way#4",
            "red_light#7",
            "image",
            "image",
            "plate_read#3",
            "plate_read#5",
            "image",
            "image",
            "line_count#2",
            "image",
            "camera_health#1",
            "image",
        ]
    );
    drop(s);
    // a spool with room for the events and two images: the images kept are the top classes'
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    for (i, kind) in kinds.iter().enumerate() {
        let mut e = event("dev");
        e.kind = *kind;
        s.submit(&mut e, &[image(i as u8, 10)], &topics()).unwrap();
    }
    let events_bytes = s.stats().bytes - 70;
    drop(s);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), events_bytes + 2 * 3000 + 2000).unwrap();
    for (i, kind) in kinds.iter().enumerate() {
        let mut e = event("dev");
        e.kind = *kind;
        s.submit(&mut e, &[image(i as u8, 3000)], &topics())
            .unwrap();
    }
    let st = s.stats();
    assert_eq!((st.events, st.evidence), (7, 2), "{st:?}");
    let kept: Vec<Vec<u8>> = s
        .pending(100)
        .unwrap()
        .into_iter()
        .filter(|m| !m.topic.contains("/events/"))
        .map(|m| m.payload)
        .collect();
    // the images of the watchlist hit (#6) and of the newest violation (red_light #7)
    assert_eq!(kept, [vec![5u8; 3000], vec![6u8; 3000]]);
    // a plate read now: its image gives way instead of a higher class's
    let before = s.stats();
    let mut e = event("dev");
    s.submit(&mut e, &[image(50, 3000)], &topics()).unwrap();
    let st = s.stats();
    assert_eq!((st.events, st.evidence), (8, 2), "{st:?}");
    assert_eq!(st.evicted_evidence, before.evicted_evidence + 1);
    let images: Vec<u8> = s
        .pending(100)
        .unwrap()
        .into_iter()
        .filter(|m| !m.topic.contains("/events/"))
        .map(|m| m.payload[0])
        .collect();
    assert_eq!(images, [5, 6]);
    drop(s);
    let s = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        s.stats().evicted_evidence,
        st.evicted_evidence,
        "counted on disk too"
    );
}

#[test]
fn ack_deletes_and_updates_depth() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    s.submit(&mut event("dev"), &[image(1, 100)], &topics())
        .unwrap();
    let batch = s.pending(10).unwrap();
    s.ack(&[batch[0].id]).unwrap();
    let st = s.stats();
    assert_eq!((st.events, st.evidence), (0, 1));
    // A second ack of the same id (a duplicate PUBACK) changes nothing.
    s.ack(&[batch[0].id]).unwrap();
    s.ack(&[batch[1].id]).unwrap();
    assert_eq!(s.stats().bytes, 0);
    assert!(s.pending(10).unwrap().is_empty());
    drop(s);
    let s = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s.stats().events, 0);
}

#[test]
fn full_spool_evicts_evidence_first_then_oldest_events_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let max = 4_000;
    let mut s = Spool::open(dir.path(), max).unwrap();
    let mut ids = Vec::new();
    for i in 0..20u8 {
        let mut e = event("dev");
        s.submit(&mut e, &[image(i, 300)], &topics()).unwrap();
        ids.push(e.event_id);
        assert!(s.stats().bytes <= max, "{:?}", s.stats());
    }
    let st = s.stats();
    assert!(st.evicted_evidence > 0);
    let left = s.pending(1000).unwrap();
    let events: Vec<Event> = left
        .iter()
        .filter(|m| m.topic.contains("/events/"))
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    // The newest event is always kept, with its evidence.
    assert_eq!(events.last().unwrap().event_id, *ids.last().unwrap());
    assert!(left.len() as u64 == st.events + st.evidence);
    // Evidence went first: no event was evicted while older evidence remained.
    if st.evicted_events > 0 {
        assert!(st.evidence <= 1, "{st:?}");
        let kept: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            *kept.first().unwrap(),
            st.evicted_events + 1,
            "oldest evicted"
        );
    }
    assert_eq!(st.evicted_events + st.events, 20);
    drop(s);
    let s = Spool::open(dir.path(), max).unwrap();
    assert_eq!(s.stats(), st, "counters survive a restart");
}

#[test]
fn event_larger_than_the_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1_000).unwrap();
    let err = s
        .submit(&mut event("dev"), &[image(0, 2_000)], &topics())
        .unwrap_err();
    assert!(matches!(err, SpoolError::TooLarge { .. }), "{err}");
    assert_eq!(s.stats().events, 0);
}

#[test]
fn unwritable_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Spool::open(&file.join("spool"), 1 << 20).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn retention_deletes_old_rows_by_class_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let trail = crate::audit::AuditTrail::open(&dir.path().join("audit.jsonl")).unwrap();
    let mut s = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    s.set_audit(trail.clone());
    for i in 0..3 {
        s.submit(
            &mut event("a"),
            &[image(i, 1000), image(i + 10, 1000)],
            &topics(),
        )
        .unwrap();
    }
    assert_eq!(s.stats().evidence, 6);
    // Nothing is old yet.
    let none = s
        .set_retention(Retention::from_hours(1, 24))
        .expect("retention");
    assert_eq!(none, Expired::default());
    // Two hours on: evidence (1 h) goes, events (24 h) stay.
    let later = now_ms() + 2 * 3600 * 1000;
    let gone = s.expire_at(later).unwrap();
    assert_eq!((gone.events, gone.evidence, gone.bytes), (0, 6, 6000));
    let st = s.stats();
    assert_eq!((st.events, st.evidence, st.expired_evidence), (3, 0, 6));
    // Two days on: the events go too.
    let gone = s.expire_at(later + 48 * 3600 * 1000).unwrap();
    assert_eq!(gone.events, 3);
    assert_eq!(s.pending(100).unwrap().len(), 0);
    // Counters survive a restart; every deletion is in the audit log with class and count.
    drop(s);
    let s = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    assert_eq!(
        (s.stats().expired_events, s.stats().expired_evidence),
        (3, 6)
    );
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let deletes: Vec<(String, u64)> = recs
        .iter()
        .filter(|r| r["action"] == "retention.delete")
        .map(|r| {
            (
                r["details"]["class"].as_str().unwrap().to_string(),
                r["details"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(deletes, vec![("evidence".into(), 6), ("event".into(), 3)]);
    assert!(crate::audit::verify(&dir.path().join("audit.jsonl")).is_ok());
}

#[test]
fn size_eviction_is_recorded_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let trail = crate::audit::AuditTrail::open(&dir.path().join("audit.jsonl")).unwrap();
    let mut s = Spool::open(&dir.path().join("spool"), 20_000).unwrap();
    s.set_audit(trail);
    for i in 0..5 {
        s.submit(&mut event("a"), &[image(i, 6000)], &topics())
            .unwrap();
    }
    let evicted = s.stats().evicted_evidence;
    assert!(evicted > 0, "nothing evicted: {:?}", s.stats());
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let total: u64 = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "spool.evict" && r["details"]["class"] == "evidence")
        .map(|r| r["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, evicted);
}

#[test]
fn a_spool_without_creation_times_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,
                 bytes INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL);
             INSERT INTO outbox(kind, bytes, topic, payload) VALUES (0, 3, 't', x'010203');",
        )
        .unwrap();
    }
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s.stats().events, 1);
    // The old row counts as created at the upgrade: not expired now, expired a day later.
    s.set_retention(Retention::from_hours(0, 1)).unwrap();
    assert_eq!(s.stats().events, 1);
    assert_eq!(s.expire_at(now_ms() + 2 * 3600 * 1000).unwrap().events, 1);
}

/// A pretend filesystem of `DISK_CAP` bytes holding only the spool directory.
const DISK_CAP: u64 = 12 << 20;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn small_disk_free(dir: &Path) -> std::io::Result<u64> {
    Ok(DISK_CAP.saturating_sub(dir_bytes(dir)))
}

#[test]
fn a_small_disk_fills_to_its_reserve_keeping_the_newest_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // The size bound alone (64 MiB) would never evict on this 12 MiB disk.
    let mut s = Spool::open(dir.path(), 64 << 20).unwrap();
    s.free_space = small_disk_free;
    s.set_min_free(6 << 20);
    let mut peak = 0;
    let mut last = 0;
    for n in 0..100u8 {
        last = s
            .submit(&mut event("dev"), &[image(n, 100_000)], &topics())
            .unwrap();
        peak = peak.max(dir_bytes(dir.path()));
    }
    let st = s.stats();
    assert!(st.disk_low, "{st:?}");
    assert!(st.disk_evictions > 0 && st.evicted_evidence > 0, "{st:?}");
    assert!(peak < DISK_CAP, "the spool used {peak} of {DISK_CAP} bytes");
    // Evidence goes first: every event is still there, the newest with its image.
    assert_eq!(st.events, 100);
    let all = s.pending(1000).unwrap();
    let newest: Event = serde_json::from_slice(&all[99].payload).unwrap();
    assert_eq!(newest.seq, last);
    assert_eq!(all.last().unwrap().payload, vec![99u8; 100_000]);
    // Delivered: the freed pages make room again without the file shrinking.
    let ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    s.ack(&ids).unwrap();
    s.submit(&mut event("dev"), &[image(1, 100_000)], &topics())
        .unwrap();
    let st = s.stats();
    assert!(!st.disk_low, "{st:?}");
    assert!(st.disk_room_bytes.unwrap() > 1 << 20, "{st:?}");
    // The counters survive a restart.
    let evictions = st.disk_evictions;
    drop(s);
    let s = Spool::open(dir.path(), 64 << 20).unwrap();
    assert_eq!(s.stats().disk_evictions, evictions);
}

/// A wall clock the test steps: the real one plus `CLOCK_OFFSET_MS`.
static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn stepped_wall() -> i64 {
    now_ms() + CLOCK_OFFSET_MS.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_wall_clock_step_keeps_ages_seq_and_retention() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let trail = crate::audit::AuditTrail::open(&dir.path().join("audit.jsonl")).unwrap();
    let mut s = Spool::open(dir.path(), 1 << 24).unwrap();
    s.wall_ms = stepped_wall;
    s.set_audit(trail.clone());
    s.set_retention(Retention::from_hours(0, 1)).unwrap();
    let a = s.submit(&mut event("dev"), &[], &topics()).unwrap();
    // NTP steps the clock 2 h forward: the event is seconds old, not two hours.
    CLOCK_OFFSET_MS.store(2 * 3_600_000, SeqCst);
    assert_eq!(s.expire().unwrap(), Expired::default());
    // ... and 5 min back: seq goes on, nothing expires or reorders.
    CLOCK_OFFSET_MS.store(2 * 3_600_000 - 300_000, SeqCst);
    let b = s.submit(&mut event("dev"), &[], &topics()).unwrap();
    assert_eq!(b, a + 1);
    assert_eq!(s.expire().unwrap(), Expired::default());
    let st = s.stats();
    assert_eq!((st.events, st.clock_steps), (2, 2), "{st:?}");
    // Retention still works on the stepped clock: an hour later (on both clocks' reckoning) both
    // rows are past their limit. Ages follow real elapsed time, so ask at now + 1 h directly.
    let gone = s.expire_at(stepped_wall() + 3_600_001).unwrap();
    assert_eq!(gone.events, 2);
    let steps: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "clock.step")
        .collect();
    assert_eq!(steps.len(), 2);
    assert!((steps[0]["details"]["step_s"].as_f64().unwrap() - 7200.0).abs() < 2.0);
    CLOCK_OFFSET_MS.store(0, SeqCst);
}
