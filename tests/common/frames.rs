//! Reading sources in the end-to-end tests: to the end, item by item within a time limit, and
//! through a camera outage (the RTSP test server killed and restarted).

use std::time::{Duration, Instant};

use edge_agent::source::{Frame, FrameSource, SourceItem, StreamStatus};

use super::rtsp::RtspServer;

/// Reads a file or folder source to the end: (Connected description, frames).
pub fn read_all(src: &mut dyn FrameSource) -> (String, Vec<Frame>) {
    let mut description = String::new();
    let mut frames = Vec::new();
    while let Some(item) = src.next_item().unwrap() {
        match item {
            SourceItem::Frame(f) => frames.push(f),
            SourceItem::Status(StreamStatus::Connected { description: d }) => description = d,
            SourceItem::Status(s) => panic!("file sources report no {s:?}"),
        }
    }
    (description, frames)
}

/// The next item of a live source, failing the test after `limit`.
pub fn next_within(src: &mut dyn FrameSource, limit: Duration, what: &str) -> SourceItem {
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < limit, "no {what} within {limit:?}");
        if let Some(item) = src.next_item().unwrap() {
            return item;
        }
    }
}

/// Connected first, then `n` frames numbered from 0 without a status in between.
pub fn connect_and_stream(
    src: &mut dyn FrameSource,
    limit: Duration,
    n: usize,
) -> (String, Vec<Frame>) {
    let description = match next_within(src, limit, "Connected") {
        SourceItem::Status(StreamStatus::Connected { description }) => description,
        other => panic!("expected Connected first, got {other:?}"),
    };
    let mut frames = Vec::new();
    while frames.len() < n {
        match next_within(src, limit, "frame") {
            SourceItem::Frame(f) => frames.push(f),
            SourceItem::Status(s) => panic!("unexpected {s:?} while streaming"),
        }
    }
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u64);
    }
    (description, frames)
}

/// A power cut at the camera: `server` is killed under the streaming `src` (whose last frame so
/// far is `last`) and back after 2 s on the same port. Checks that the source reports the loss
/// with the URL, sends no frame while the server is down, and that the 5 frames after it continue
/// the numbering without a gap, show an outage of at least `min_gap` in their media time, which
/// keeps rising, and were counted with a reconnect. Returns how long the source took to
/// reconnect once the server was back.
pub fn survive_outage(
    src: &mut dyn FrameSource,
    server: &mut RtspServer,
    mut last: Frame,
    limit: Duration,
    min_gap: Duration,
) -> Duration {
    server.kill();
    let killed = Instant::now();
    loop {
        match next_within(src, limit, "Disconnected") {
            // Queued before the kill.
            SourceItem::Frame(f) => last = f,
            SourceItem::Status(StreamStatus::Disconnected { reason, .. }) => {
                assert!(reason.contains(&server.url()), "{reason}");
                break;
            }
            SourceItem::Status(StreamStatus::Stalled { .. }) => {}
            SourceItem::Status(s) => panic!("unexpected {s:?}"),
        }
    }
    std::thread::sleep(Duration::from_secs(2).saturating_sub(killed.elapsed()));
    server.restart();
    let back = Instant::now();
    let reconnected = loop {
        match next_within(src, limit, "Connected after restart") {
            SourceItem::Status(StreamStatus::Connected { .. }) => break back.elapsed(),
            SourceItem::Status(_) => {}
            SourceItem::Frame(f) => panic!("frame {f:?} while the server was down"),
        }
    };
    eprintln!("reconnected {reconnected:?} after the server came back");
    let mut after = Vec::new();
    while after.len() < 5 {
        if let SourceItem::Frame(f) = next_within(src, limit, "frame after restart") {
            after.push(f);
        }
    }
    assert_eq!(after[0].seq, last.seq + 1, "seq has no gaps");
    let gap = after[0].stream_time - last.stream_time;
    assert!(gap >= min_gap, "stream_time shows the outage: {gap:?}");
    assert!(
        after
            .windows(2)
            .all(|w| w[1].stream_time > w[0].stream_time)
    );
    let c = src.counters();
    assert!(c.reconnects >= 1 && c.frames >= 15, "{c:?}");
    eprintln!("counters: {c:?}");
    reconnected
}

/// A hung camera: after 5 frames `server` keeps the socket open but sends nothing. Checks that
/// `src` (opened with a 1.5 s `stall_timeout`) reports `Stalled`, then `Disconnected` with the
/// reason, both within 4 s of the freeze (tearing the hung session down included), and that once
/// the server thaws it reconnects before any frame and counts the stall and the reconnect.
pub fn survive_stall(src: &mut dyn FrameSource, server: &RtspServer, limit: Duration) {
    let mut frames = 0;
    while frames < 5 {
        if let SourceItem::Frame(_) = next_within(src, limit, "frame") {
            frames += 1;
        }
    }
    // The socket stays open but nothing arrives: only the stall timer can notice.
    server.freeze(true);
    let frozen = Instant::now();
    let stalled = loop {
        match next_within(src, limit, "Stalled") {
            SourceItem::Status(StreamStatus::Stalled { for_ }) => break for_,
            SourceItem::Frame(_) => {} // queued before the freeze
            SourceItem::Status(s) => panic!("expected Stalled, got {s:?}"),
        }
    };
    assert!(stalled >= Duration::from_millis(1500), "{stalled:?}");
    match next_within(src, limit, "Disconnected") {
        SourceItem::Status(StreamStatus::Disconnected { reason, .. }) => {
            assert!(reason.contains("no frame for"), "{reason}");
        }
        other => panic!("expected Disconnected after Stalled, got {other:?}"),
    }
    let handled = frozen.elapsed();
    assert!(
        handled < Duration::from_secs(4),
        "stall handled after {handled:?}"
    );
    server.freeze(false);
    loop {
        match next_within(src, limit, "Connected after thaw") {
            SourceItem::Status(StreamStatus::Connected { .. }) => break,
            SourceItem::Status(_) => {}
            SourceItem::Frame(f) => panic!("frame {f:?} before reconnecting"),
        }
    }
    assert!(matches!(
        next_within(src, limit, "frame after thaw"),
        SourceItem::Frame(_)
    ));
    let c = src.counters();
    assert!(c.stalls >= 1 && c.reconnects >= 1, "{c:?}");
}
