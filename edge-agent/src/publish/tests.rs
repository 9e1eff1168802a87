//! Delivery through the embedded broker, in process: spool → publisher → broker → subscriber.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::*;
use crate::events::{EventKind, Phase};

#[test]
fn submitted_events_reach_a_subscriber_in_order_and_leave_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut mqtt = MqttSettings::from_url(&url, "test").unwrap();
    mqtt.client_id = "dev-under-test".into();
    let opts = DeliveryOptions {
        mqtt: mqtt.clone(),
        topics: Topics::new("edge", "s", "d"),
        spool_dir: dir.path().join("spool"),
        max_spool_bytes: 1 << 24,
        min_free_bytes: None,
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        health_interval: Duration::from_secs(1),
        embedded: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        embedded_log_kb: 256,
        device_key: Some(dir.path().join("device.key")),
        uplink_per_hour: None,
        uplink_per_day: None,
        window_bytes: WINDOW_BYTES,
    };
    let delivery = Delivery::start_with(opts, StatusInfo::example()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sub = mqtt;
    sub.client_id = "subscriber".into();
    sub.clean_session = true;
    let (ids, seqs) = rt.block_on(async {
        let mut link = Link::connect(&sub, None);
        loop {
            match tokio::time::timeout(Duration::from_secs(10), link.events.recv()).await {
                Ok(Some(LinkEvent::Connected { .. })) => break,
                Ok(Some(LinkEvent::Closed(e))) => panic!("subscriber: {e}"),
                Ok(Some(_)) => {}
                other => panic!("subscriber did not connect: {other:?}"),
            }
        }
        link.subscribe("edge/s/d/events/#").await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), link.events.recv()).await {
                Ok(Some(LinkEvent::SubAck { granted })) => {
                    assert!(granted);
                    break;
                }
                Ok(Some(_)) => {}
                other => panic!("no SUBACK: {other:?}"),
            }
        }
        let mut submitted = Vec::new();
        for _ in 0..50 {
            let e = Event::new(
                EventKind::LineCrossing,
                Phase::New,
                "s",
                "d",
                "c",
                Utc::now(),
            );
            submitted.push(e.event_id);
            delivery.submit(e, Vec::new()).unwrap();
        }
        let key = crate::signing::DeviceKey::load_or_create(&dir.path().join("device.key"))
            .unwrap()
            .public_hex();
        let (mut ids, mut seqs, mut links) = (HashSet::new(), Vec::new(), Vec::new());
        while ids.len() < 50 {
            match tokio::time::timeout(Duration::from_secs(10), link.events.recv()).await {
                Ok(Some(LinkEvent::Message { topic, payload, .. })) => {
                    assert_eq!(topic, "edge/s/d/events/line_crossing");
                    let e: Event = serde_json::from_slice(&payload).unwrap();
                    // signed by the device, each after the one before
                    let sig = crate::signing::verify(&payload, &key).expect("signed");
                    if ids.insert(e.event_id) {
                        seqs.push(e.seq);
                        links.push((sig.prev.clone(), crate::signing::link(&sig)));
                    }
                }
                Ok(Some(_)) => {}
                other => panic!("only {} of 50 events arrived: {other:?}", ids.len()),
            }
        }
        assert!(submitted.iter().all(|id| ids.contains(id)));
        assert_eq!(links[0].0, crate::signing::GENESIS);
        for w in links.windows(2) {
            assert_eq!(w[1].0, w[0].1, "chained");
        }
        (ids, seqs)
    });
    assert_eq!(ids.len(), 50);
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<u64>>(),
        "published in seq order"
    );
    assert!(
        delivery.wait_idle(Duration::from_secs(10)),
        "{:?}",
        delivery.stats()
    );
    let stats = delivery.stats();
    assert_eq!(stats.spool.events, 0);
    assert!(
        stats.link.acked >= 50 && stats.link.connected,
        "{:?}",
        stats.link
    );
    assert_eq!(stats.latency_samples, 50);
    // rumqttd reports what each subscribed filter's log took in once a second
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let memory = loop {
        let m = delivery.stats().broker.expect("the embedded broker runs");
        if m.held_bytes > 0 || std::time::Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(memory.filters >= 1, "{memory:?}");
    assert!(memory.held_bytes > 0, "{memory:?}");
    assert_eq!(memory.per_filter_limit_bytes, 256 << 10);
    assert_eq!(
        memory.limit_bytes,
        memory.filters * (256 << 10),
        "{memory:?}"
    );
    assert_eq!(delivery.shutdown(Duration::from_secs(1)), 0);
}

#[test]
fn connection_errors_get_a_hint_naming_what_to_fix() {
    // The texts rumqttc 0.25 gives against mosquitto (stack-facts §5 and tests/delivery.rs).
    let cases = [
        (
            "TLS: I/O: invalid peer certificate: UnknownIssuer",
            "ca_file",
        ),
        (
            "Mqtt state: Mqtt serialization/deserialization error: IO: received fatal alert: CertificateRequired",
            "client_cert_file",
        ),
        (
            "Connection refused, return code: `NotAuthorized`",
            "password_file",
        ),
        ("I/O: Connection refused (os error 111)", "broker running"),
    ];
    for (error, key) in cases {
        assert!(
            link::hint(error).contains(key),
            "{error} -> {}",
            link::hint(error)
        );
    }
}

#[test]
fn concurrent_submitters_share_commits_and_get_unique_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut mqtt = MqttSettings::from_url(&format!("mqtt://127.0.0.1:{dead}"), "test").unwrap();
    mqtt.client_id = "dev-group".into();
    let opts = DeliveryOptions {
        mqtt,
        topics: Topics::new("edge", "s", "d"),
        spool_dir: dir.path().join("spool"),
        max_spool_bytes: 1 << 24,
        min_free_bytes: None,
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        health_interval: Duration::from_secs(1),
        embedded: None,
        embedded_log_kb: 256,
        device_key: None,
        uplink_per_hour: None,
        uplink_per_day: None,
        window_bytes: WINDOW_BYTES,
    };
    let delivery = Delivery::start_with(opts, StatusInfo::example()).unwrap();
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let d = delivery.clone();
                s.spawn(move || {
                    (0..50)
                        .map(|_| {
                            let e = Event::new(
                                EventKind::Intrusion,
                                Phase::New,
                                "s",
                                "d",
                                "c",
                                Utc::now(),
                            );
                            d.submit(e, Vec::new()).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    assert_eq!(delivery.stats().spool.events, 200);
    // Nothing is reachable: everything stays spooled for the next start.
    assert_eq!(delivery.shutdown(Duration::ZERO), 200);
}

/// A broker that takes publishes and never acknowledges them (a stalled uplink): the publisher
/// stops handing messages to the MQTT client once the window holds its byte bound, so the client
/// never holds more than about 4 MiB of evidence however many images wait in the spool.
#[test]
fn a_broker_that_never_acknowledges_holds_the_window_to_its_byte_bound() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = vec![0u8; 64 << 10];
        // CONNECT in, CONNACK (accepted, no session) out, then swallow everything
        if s.read(&mut buf).is_err() || s.write_all(&[0x20, 0x02, 0x00, 0x00]).is_err() {
            return;
        }
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut mqtt = MqttSettings::from_url(&format!("mqtt://127.0.0.1:{port}"), "test").unwrap();
    mqtt.client_id = "dev-under-test".into();
    let opts = DeliveryOptions {
        mqtt,
        topics: Topics::new("edge", "s", "d"),
        spool_dir: dir.path().join("spool"),
        max_spool_bytes: 1 << 28,
        min_free_bytes: None,
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        health_interval: Duration::from_secs(60),
        embedded: None,
        embedded_log_kb: 16,
        device_key: None,
        uplink_per_hour: None,
        uplink_per_day: None,
        window_bytes: WINDOW_BYTES,
    };
    let delivery = Delivery::start_with(opts, StatusInfo::example()).unwrap();
    const IMAGE: usize = 600 << 10;
    for i in 0..30u8 {
        let e = Event::new(
            EventKind::LineCrossing,
            Phase::New,
            "s",
            "d",
            "c",
            Utc::now(),
        );
        let jpeg = vec![i; IMAGE];
        let image = EvidenceImage::from_jpeg(crate::events::EvidenceRole::Frame, jpeg, 1, 1);
        delivery.submit(e, vec![image]).unwrap();
    }
    // wait until the publisher stops handing out messages
    let mut last = u64::MAX;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        std::thread::sleep(Duration::from_millis(500));
        let s = delivery.stats();
        if s.link.connected && s.link.published == last {
            break s;
        }
        assert!(Instant::now() < deadline, "the window never settled: {s:?}");
        last = s.link.published;
    };
    assert_eq!(stats.link.acked, 0, "{:?}", stats.link);
    assert_eq!(stats.link.window_limit_bytes, WINDOW_BYTES);
    let images_out = stats.link.window_bytes / IMAGE as u64;
    assert!(
        stats.link.window_bytes >= WINDOW_BYTES
            && stats.link.window_bytes < WINDOW_BYTES + IMAGE as u64 + (64 << 10),
        "{:?}",
        stats.link
    );
    assert!(
        images_out < 8 && stats.link.published < 20,
        "{:?}",
        stats.link
    );
    assert_eq!(
        stats.spool.evidence + stats.spool.events,
        60,
        "all still spooled"
    );
    let _ = delivery.shutdown(Duration::from_millis(100));
}

/// Options for a delivery to an embedded broker on `broker`, connecting through `via` (the
/// broker itself, or a proxy in front of it), unsigned.
fn embedded_options(
    dir: &std::path::Path,
    client_id: &str,
    via: u16,
    broker: u16,
) -> DeliveryOptions {
    let mut mqtt = MqttSettings::from_url(&format!("mqtt://127.0.0.1:{via}"), "test").unwrap();
    mqtt.client_id = client_id.into();
    DeliveryOptions {
        mqtt,
        topics: Topics::new("edge", "s", "d"),
        spool_dir: dir.join("spool"),
        max_spool_bytes: 1 << 24,
        min_free_bytes: None,
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        health_interval: Duration::from_secs(1),
        embedded: Some(format!("127.0.0.1:{broker}").parse().unwrap()),
        embedded_log_kb: 4096,
        device_key: None,
        uplink_per_hour: None,
        uplink_per_day: None,
        window_bytes: WINDOW_BYTES,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The centre: a clean-session subscriber on the broker, subscribed to events and evidence.
async fn centre(broker: u16) -> Link {
    let mut sub = MqttSettings::from_url(&format!("mqtt://127.0.0.1:{broker}"), "test").unwrap();
    sub.client_id = "centre".into();
    sub.clean_session = true;
    let mut link = Link::connect(&sub, None);
    let mut subscribed = 0;
    while subscribed < 2 {
        match tokio::time::timeout(Duration::from_secs(10), link.events.recv()).await {
            Ok(Some(LinkEvent::Connected { .. })) => {
                link.subscribe("edge/s/d/events/#").await.unwrap();
                link.subscribe("edge/s/d/evidence/+").await.unwrap();
            }
            Ok(Some(LinkEvent::SubAck { granted })) => {
                assert!(granted);
                subscribed += 1;
            }
            Ok(Some(LinkEvent::Closed(e))) => panic!("subscriber: {e}"),
            Ok(Some(_)) => {}
            other => panic!("subscriber did not connect: {other:?}"),
        }
    }
    link
}

/// An evidence image of `bytes` bytes, every one `fill`.
fn image_of(fill: u8, bytes: usize) -> EvidenceImage {
    EvidenceImage::from_jpeg(
        crate::events::EvidenceRole::Frame,
        vec![fill; bytes],
        10,
        10,
    )
}

/// A metered uplink: past the hour's budget evidence images wait in the spool and are counted,
/// while every event (the alerts) still goes, a watchlist hit included.
#[test]
fn an_uplink_budget_holds_images_back_and_lets_every_event_through() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let opts = DeliveryOptions {
        uplink_per_hour: Some(40_000),
        ..embedded_options(dir.path(), "metered", port, port)
    };
    let delivery = Delivery::start_with(opts, StatusInfo::example()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (events, images) = rt.block_on(async {
        let mut link = centre(port).await;
        for fill in 0..5u8 {
            let e = Event::new(EventKind::PlateRead, Phase::New, "s", "d", "c", Utc::now());
            delivery.submit(e, vec![image_of(fill, 15_000)]).unwrap();
        }
        let hit = Event::new(
            EventKind::WatchlistHit,
            Phase::New,
            "s",
            "d",
            "c",
            Utc::now(),
        );
        delivery.submit(hit, Vec::new()).unwrap();
        let (mut events, mut images) = (Vec::new(), 0);
        let quiet = Duration::from_secs(2);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout(quiet, link.events.recv()).await {
                Ok(Some(LinkEvent::Message { topic, payload, .. })) => {
                    if topic.contains("/evidence/") {
                        images += 1;
                    } else {
                        events.push(serde_json::from_slice::<Event>(&payload).unwrap().kind);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("subscriber closed"),
                // nothing more for a while: the budget holds the rest
                Err(_) if events.len() == 6 => break,
                Err(_) if Instant::now() < deadline => {}
                Err(_) => panic!("only {} of 6 events arrived", events.len()),
            }
        }
        (events, images)
    });
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(events.contains(&EventKind::WatchlistHit));
    // 5 events of ~0.5 KB and 2 images of 15 KB fit in 40 KB; a third image does not
    assert_eq!(images, 2);
    let stats = delivery.stats();
    assert_eq!(stats.spool.evidence, 3, "{:?}", stats.spool);
    assert_eq!(stats.spool.events, 0, "{:?}", stats.spool);
    assert_eq!(stats.link.images_deferred, 3, "{:?}", stats.link);
    assert!(
        (30_000..=40_000).contains(&stats.link.uplink_hour_bytes),
        "{:?}",
        stats.link
    );
}

/// A TCP proxy on loopback that carries client → server bytes at `rate` bytes a second (a thin
/// uplink) and server → client bytes as they come. Returns its port.
fn throttling_proxy(server: u16, rate: u64) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", server)) else {
                continue;
            };
            let (mut c_read, mut u_write) =
                (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut u_read, mut c_write) = (upstream, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || u_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                }
                let _ = u_write.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = u_read.read(&mut buf) {
                    if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

/// What a subscriber sees when 20 plate reads with 40 KB images queue on a 400 KB/s uplink and a
/// watchlist hit is made 0.3 s later, with a publish window of `window` bytes: the kinds and
/// images in arrival order.
fn thin_link_arrivals(window: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port();
    let proxy = throttling_proxy(broker, 400_000);
    let opts = DeliveryOptions {
        health_interval: Duration::from_secs(30),
        window_bytes: window,
        ..embedded_options(dir.path(), "pole", proxy, broker)
    };
    let delivery = Delivery::start_with(opts, StatusInfo::example()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut link = centre(broker).await;
        for fill in 0..20u8 {
            let e = Event::new(EventKind::PlateRead, Phase::New, "s", "d", "c", Utc::now());
            delivery.submit(e, vec![image_of(fill, 40_000)]).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let hit = Event::new(
            EventKind::WatchlistHit,
            Phase::New,
            "s",
            "d",
            "c",
            Utc::now(),
        );
        delivery.submit(hit, vec![image_of(99, 40_000)]).unwrap();
        let mut order = Vec::new();
        while order.len() < 42 {
            match tokio::time::timeout(Duration::from_secs(20), link.events.recv()).await {
                Ok(Some(LinkEvent::Message { topic, payload, .. })) => {
                    order.push(if topic.contains("/evidence/") {
                        if payload[0] == 99 {
                            "hit image"
                        } else {
                            "image"
                        }
                        .to_string()
                    } else {
                        serde_json::from_slice::<Event>(&payload)
                            .unwrap()
                            .kind
                            .as_str()
                            .to_string()
                    });
                }
                Ok(Some(_)) => {}
                other => panic!("{} of 42 messages arrived: {other:?}", order.len()),
            }
        }
        order
    })
}

/// On a thin uplink a watchlist hit made while 20 plate-read images queue waits only for the
/// publish window, not for the queue: with a 64 KiB window its event and image arrive before most
/// of the older images; with the default 4 MiB window (everything already handed to the link) it
/// arrives last.
#[test]
fn on_a_thin_link_a_watchlist_hit_overtakes_the_queue_within_the_window() {
    let small = thin_link_arrivals(64 << 10);
    let at = |order: &[String], what: &str| order.iter().position(|k| k == what).unwrap();
    let images_after = |order: &[String], what: &str| {
        order[at(order, what)..]
            .iter()
            .filter(|k| *k == "image")
            .count()
    };
    eprintln!("64 KiB window: {small:?}");
    assert!(
        images_after(&small, "watchlist_hit") >= 10,
        "the hit waited behind the queue: {small:?}"
    );
    assert!(images_after(&small, "hit image") >= 10, "{small:?}");
    let large = thin_link_arrivals(WINDOW_BYTES);
    eprintln!("4 MiB window: {large:?}");
    // (here it arrived last; on a loaded machine the queue may not all be handed over yet)
    assert!(
        images_after(&large, "hit image") <= images_after(&small, "hit image"),
        "{large:?}"
    );
}
