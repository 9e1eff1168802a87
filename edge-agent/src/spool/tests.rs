//! Spool unit tests on a real SQLite file in a temporary directory.

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
fn evidence_is_queued_before_its_event_and_referenced_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    let imgs = [image(1, 100), image(2, 50)];
    let mut e = event("dev");
    s.submit(&mut e, &imgs, &topics()).unwrap();
    let batch = s.next_batch(0, 10).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].topic, topics().evidence(&imgs[0].sha256));
    assert_eq!(batch[0].payload, imgs[0].jpeg);
    assert_eq!(batch[2].topic, "edge/site/dev/events/plate_read");
    let sent: Event = serde_json::from_slice(&batch[2].payload).unwrap();
    assert_eq!(sent, e);
    assert_eq!(sent.evidence.len(), 2);
    assert_eq!(sent.evidence[1].sha256, imgs[1].sha256);
    assert_eq!(sent.evidence[1].bytes, 50);
    assert!(batch[0].id < batch[1].id && batch[1].id < batch[2].id);
    assert_eq!(s.next_batch(batch[1].id, 10).unwrap().len(), 1);
}

#[test]
fn ack_deletes_and_updates_depth() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    s.submit(&mut event("dev"), &[image(1, 100)], &topics())
        .unwrap();
    let batch = s.next_batch(0, 10).unwrap();
    s.ack(&[batch[0].id]).unwrap();
    let st = s.stats();
    assert_eq!((st.events, st.evidence), (1, 0));
    // A second ack of the same id (a duplicate PUBACK) changes nothing.
    s.ack(&[batch[0].id]).unwrap();
    s.ack(&[batch[1].id]).unwrap();
    assert_eq!(s.stats().bytes, 0);
    assert!(s.next_batch(0, 10).unwrap().is_empty());
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
    let left = s.next_batch(0, 1000).unwrap();
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
